//! [`KeyMaintenance`] of the embedded store: wrapped keys of the cases holding sealed data.

use super::MemoryStore;
use crate::crypto::envelope::WrappedKey;
use crate::store::{KeyMaintenance, StoreError};

#[async_trait::async_trait]
impl KeyMaintenance for MemoryStore {
    async fn wrapped_keys_not_under(
        &self,
        kek_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, WrappedKey)>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .cases
            .values()
            .filter_map(|e| e.pii.as_ref().map(|p| (e.record.id.clone(), p.wrapped_key.clone())))
            .filter(|(_, w)| w.kek_id != kek_id)
            .take(limit)
            .collect())
    }

    async fn replace_wrapped_key(&self, case_id: &str, old: &WrappedKey, new: WrappedKey) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        match state.cases.get_mut(case_id).and_then(|e| e.pii.as_mut()) {
            Some(pii) if &pii.wrapped_key == old => {
                pii.wrapped_key = new;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
