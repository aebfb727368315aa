//! The store step: the embedded store, or Redis standalone or Cluster, chosen by `[store]`.
//! Every store holds the review queue too: one object, seen through both interfaces.
//!
//! It must never print a store password (URLs are redacted in notes and errors), nor fall back to
//! the embedded store when a configured Redis cannot be reached.
//!
//! (Construction lives here rather than in `crate::store` while the storage interface is being
//! split; it can move there unchanged.)

use std::sync::Arc;
use std::time::Duration;

use super::StartError;
use crate::config::{Config, ConfigError};
use crate::crypto::blind_index::BlindIndexer;
use crate::crypto::live::Live;
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisOptions, RedisStore};
use crate::store::{ReviewQueue, Store};

/// The store and its review queue (the same object).
pub(super) struct Stores {
    pub(super) store: Arc<dyn Store>,
    pub(super) queue: Arc<dyn ReviewQueue>,
}

/// Connects the configured store; `record_keys` tag every case record (never stored in Redis).
pub(super) async fn connect(
    config: &Config,
    record_keys: &Live<BlindIndexer>,
    notes: &mut Vec<String>,
) -> Result<Stores, StartError> {
    let redis_options = RedisOptions {
        record_ttl: Duration::from_secs(config.retention.case_record_ttl_seconds),
        // Case records carry an integrity tag under the gateway's keys (never stored in Redis).
        record_keys: Some(record_keys.clone()),
        ..RedisOptions::default()
    };
    let (store, queue): (Arc<dyn Store>, Arc<dyn ReviewQueue>) =
        if let (Some(_), Some(_)) = (&config.store.url, &config.store.cluster_nodes) {
            return Err(ConfigError::Invalid("set store.url or store.cluster_nodes, not both".into()).into());
        } else if let Some(url) = &config.store.url {
            let redis = RedisStore::standalone(url, redis_options)
                .await
                .map_err(|e| StartError::Unsupported(format!("store.url {}: {e}", redact_url(url))))?;
            notes.push(format!("store: Redis {}", redact_url(url)));
            let redis = Arc::new(redis);
            (redis.clone(), redis)
        } else if let Some(nodes) = &config.store.cluster_nodes {
            let redis = RedisStore::cluster(nodes, redis_options)
                .await
                .map_err(|e| StartError::Unsupported(format!("store.cluster_nodes: {e}")))?;
            let shown: Vec<String> = nodes.iter().map(|n| redact_url(n)).collect();
            notes.push(format!("store: Redis Cluster {}", shown.join(", ")));
            let redis = Arc::new(redis);
            (redis.clone(), redis)
        } else {
            notes.push("store: embedded (in-process); it keeps NOTHING across restarts".into());
            let memory = Arc::new(MemoryStore::new());
            (memory.clone(), memory)
        };
    Ok(Stores { store, queue })
}

/// A Redis URL without its password, for log lines.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_owned(),
    }
}
