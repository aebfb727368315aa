//! The store step: the embedded store, or Redis standalone or Cluster, chosen by `[store]`.
//! Every store holds the review queue too: one object, seen through both interfaces.
//!
//! It must never print a store password (URLs are redacted in notes and errors; `store.password` is a
//! [`Secret`](crate::config::Secret)), nor fall back to the embedded store when a configured Redis
//! cannot be reached, nor send a configured TLS CA or client certificate over a plain `redis://` link.
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
use crate::store::redis::{RedisAccess, RedisOptions, RedisStore, RedisTls};
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
        access: access(config)?,
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

/// The ACL login and TLS material of `[store]`, files read. TLS files need `rediss://` URLs.
fn access(config: &Config) -> Result<RedisAccess, StartError> {
    let store = &config.store;
    let urls: Vec<&String> = store.url.iter().chain(store.cluster_nodes.iter().flatten()).collect();
    if store.has_tls_files() && urls.iter().any(|u| !u.starts_with("rediss://")) {
        return Err(ConfigError::Invalid("store.tls_* files are set: every Redis URL must be rediss://".into()).into());
    }
    let read = |what: &'static str, path: &std::path::PathBuf| {
        std::fs::read(path).map_err(|source| ConfigError::Read {
            what,
            path: path.clone(),
            source,
        })
    };
    let client = match (&store.tls_cert_file, &store.tls_key_file) {
        (Some(cert), Some(key)) => Some((
            read("store.tls_cert_file", cert)?,
            zeroize::Zeroizing::new(read("store.tls_key_file", key)?),
        )),
        (None, None) => None,
        _ => {
            return Err(ConfigError::Invalid("set store.tls_cert_file and store.tls_key_file together".into()).into());
        }
    };
    let tls = match (&store.tls_ca_file, client) {
        (None, None) => None,
        (ca, client) => Some(RedisTls {
            ca_pem: ca.as_ref().map(|ca| read("store.tls_ca_file", ca)).transpose()?,
            client,
        }),
    };
    Ok(RedisAccess {
        username: store.username.clone(),
        password: store
            .resolve_password()?
            .map(|p| zeroize::Zeroizing::new(p.expose().to_owned())),
        tls,
    })
}

/// A Redis URL without its password, for log lines.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_owned(),
    }
}
