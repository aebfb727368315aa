//! Key maintenance: re-wrapping the data keys of pending cases under a new key-encryption key (KEK)
//! after a KEK rotation.
//!
//! The store only lists wrapped keys and swaps one for another by compare-and-set; unwrapping and
//! re-wrapping happen in the use case. Must never see an unwrapped data key, and never touch a sealed
//! body.

use super::PiiPart;
use super::StoreError;
use crate::crypto::envelope::WrappedKey;

/// Finding and replacing wrapped data keys.
#[async_trait::async_trait]
pub trait KeyMaintenance: Send + Sync + 'static {
    /// Data keys of pending cases (each part: identity and face) wrapped by a KEK other than `kek_id`
    /// (for re-wrapping), at most `limit`.
    async fn wrapped_keys_not_under(
        &self,
        kek_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, PiiPart, WrappedKey)>, StoreError>;

    /// Replaces the wrapped data key of a case's `part` if it is still `old` (compare-and-set).
    /// `false` if the case or that part is gone or the key changed meanwhile.
    async fn replace_wrapped_key(
        &self,
        case_id: &str,
        part: PiiPart,
        old: &WrappedKey,
        new: WrappedKey,
    ) -> Result<bool, StoreError>;
}
