//! [`KeyMaintenance`] of the embedded store: wrapped keys (identity and face) of the cases holding
//! sealed data.

use super::MemoryStore;
use crate::crypto::envelope::WrappedKey;
use crate::store::{KeyMaintenance, PiiPart, SealedPii, StoreError};

/// The wrapped key of `part` in `pii`, mutable, if that part is held.
fn wrapped_key_mut(pii: &mut SealedPii, part: PiiPart) -> Option<&mut WrappedKey> {
    match part {
        PiiPart::Identity => Some(&mut pii.wrapped_key),
        PiiPart::Face => pii.face.as_mut().map(|f| &mut f.wrapped_key),
    }
}

#[async_trait::async_trait]
impl KeyMaintenance for MemoryStore {
    async fn wrapped_keys_not_under(
        &self,
        kek_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, PiiPart, WrappedKey)>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .cases
            .values()
            .filter_map(|e| e.pii.as_ref().map(|p| (e.record.id.clone(), p)))
            .flat_map(|(id, pii)| {
                PiiPart::ALL
                    .into_iter()
                    .filter_map(move |part| pii.part(part).map(|v| (id.clone(), part, v.wrapped_key)))
            })
            .filter(|(_, _, w)| w.kek_id != kek_id)
            .take(limit)
            .collect())
    }

    async fn replace_wrapped_key(
        &self,
        case_id: &str,
        part: PiiPart,
        old: &WrappedKey,
        new: WrappedKey,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        let slot = state
            .cases
            .get_mut(case_id)
            .and_then(|e| e.pii.as_mut())
            .and_then(|pii| wrapped_key_mut(pii, part));
        match slot {
            Some(key) if &*key == old => {
                *key = new;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
