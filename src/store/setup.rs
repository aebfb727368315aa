//! The store a gateway uses, built from `[store]`: the embedded store, or Redis standalone or
//! Cluster. Every store holds the review queue too: one object, seen through both interfaces.
//!
//! It must never print a store password (URLs are redacted in notes and errors; `store.password` is a
//! [`Secret`](crate::config::Secret)), nor fall back to the embedded store when a configured Redis
//! cannot be reached, nor send a configured TLS CA or client certificate over a plain `redis://` link.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{ConfigError, StoreConfig};
use crate::crypto::blind_index::BlindIndexer;
use crate::live::Live;
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisAccess, RedisOptions, RedisStore, RedisTls};
use crate::store::{ReviewQueue, Store};

/// Why the configured store could not be used. Never a silent fall-back to the embedded store.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `[store]` is inconsistent, or one of its files could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configured Redis could not be reached or refused the login (the URL shown redacted).
    #[error("{0}")]
    Unreachable(String),
}

/// The store and its review queue (the same object).
pub struct Stores {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn ReviewQueue>,
}

/// Connects the store `config` names; case records live `record_ttl` and carry a tag under
/// `record_keys` (never stored in Redis). Adds one line for the start-up banner to `notes`.
pub async fn connect(
    config: &StoreConfig,
    record_ttl: Duration,
    record_keys: &Live<BlindIndexer>,
    notes: &mut Vec<String>,
) -> Result<Stores, SetupError> {
    let redis_options = RedisOptions {
        record_ttl,
        // Case records carry an integrity tag under the gateway's keys (never stored in Redis).
        record_keys: Some(record_keys.clone()),
        access: access(config)?,
        ..RedisOptions::default()
    };
    let (store, queue): (Arc<dyn Store>, Arc<dyn ReviewQueue>) =
        if let (Some(_), Some(_)) = (&config.url, &config.cluster_nodes) {
            return Err(ConfigError::Invalid("set store.url or store.cluster_nodes, not both".into()).into());
        } else if let Some(url) = &config.url {
            let redis = RedisStore::standalone(url, redis_options)
                .await
                .map_err(|e| SetupError::Unreachable(format!("store.url {}: {e}", redact_url(url))))?;
            notes.push(format!("store: Redis {}", redact_url(url)));
            let redis = Arc::new(redis);
            (redis.clone(), redis)
        } else if let Some(nodes) = &config.cluster_nodes {
            let redis = RedisStore::cluster(nodes, redis_options)
                .await
                .map_err(|e| SetupError::Unreachable(format!("store.cluster_nodes: {e}")))?;
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
fn access(store: &StoreConfig) -> Result<RedisAccess, SetupError> {
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
