//! [`KeyMaintenance`] on Redis: every case holding sealed data is in the expiry index, so the
//! re-wrapping scan walks it and reads both wrapped keys of each case (identity and face); a key is
//! replaced by compare-and-set in one script, keeping its TTL.
//!
//! Script: `keys_replace_key.lua`.

use std::sync::LazyLock;

use redis::Script;

use super::record::{decode_wrapped_key, encode_wrapped_key};
use super::{BATCH, RedisStore};
use crate::crypto::envelope::WrappedKey;
use crate::store::{KeyMaintenance, PiiPart, StoreError};

/// Replaces a wrapped data key if unchanged, keeping its TTL (`keys_replace_key.lua`).
static REPLACE_KEY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("keys_replace_key.lua")));

#[async_trait::async_trait]
impl KeyMaintenance for RedisStore {
    async fn wrapped_keys_not_under(
        &self,
        kek_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, PiiPart, WrappedKey)>, StoreError> {
        const OP: &str = "wrapped_keys_not_under";
        let keys = &self.inner.keys;
        let mut found = Vec::new();
        // Every case holding personal data is in the expiry index (stale entries are skipped).
        let mut offset = 0;
        while found.len() < limit {
            let ids: Vec<String> = self
                .query(
                    OP,
                    redis::cmd("ZRANGE")
                        .arg(keys.expiry())
                        .arg(offset)
                        .arg(offset + BATCH - 1),
                )
                .await?;
            'cases: for id in &ids {
                // Both wrapped keys share the case's slot: one MGET.
                let (identity, face): (Option<Vec<u8>>, Option<Vec<u8>>) = self
                    .query(OP, redis::cmd("MGET").arg(keys.pii_key(id)).arg(keys.face_key(id)))
                    .await?;
                for (part, key) in [(PiiPart::Identity, identity), (PiiPart::Face, face)] {
                    let Some(key) = key else { continue };
                    let key = decode_wrapped_key(OP, &key)?;
                    if key.kek_id != kek_id {
                        found.push((id.clone(), part, key));
                        if found.len() == limit {
                            break 'cases;
                        }
                    }
                }
            }
            if ids.len() < BATCH as usize {
                break;
            }
            offset += BATCH;
        }
        Ok(found)
    }

    async fn replace_wrapped_key(
        &self,
        case_id: &str,
        part: PiiPart,
        old: &WrappedKey,
        new: WrappedKey,
    ) -> Result<bool, StoreError> {
        let (key, body) = self.inner.keys.part(case_id, part);
        let mut invocation = REPLACE_KEY.prepare_invoke();
        invocation
            .key(key)
            .key(body)
            .arg(encode_wrapped_key(old)?)
            .arg(encode_wrapped_key(&new)?);
        let replaced: i64 = self.eval("replace_wrapped_key", &invocation).await?;
        Ok(replaced == 1)
    }
}
