//! The keys step: the gateway's sealing keys, key-encryption keys (KEKs) and blind-index keys,
//! loaded together from `keys.dir` (and `keys.keks` / `keys.keks_file`), held live so that a reload
//! (SIGHUP) replaces them in place for every use case at once.
//!
//! It must never print key material (log lines carry key ids only), nor make a partly loaded set
//! current: a reload takes effect only if every key loads.

use std::path::{Path, PathBuf};

use super::StartError;
use crate::config::KeysConfig;
use crate::crypto::blind_index::BlindIndexer;
use crate::crypto::envelope::KekRing;
use crate::crypto::keyfile;
use crate::crypto::live::Live;
use crate::crypto::sealing::SealingKeyring;

/// The gateway's keys, loaded together.
struct LoadedKeys {
    sealing: SealingKeyring,
    keks: KekRing,
    indexer: BlindIndexer,
}

impl LoadedKeys {
    fn load(dir: &Path, keys: &KeysConfig) -> Result<Self, StartError> {
        let sealing = keyfile::load_sealing_keyring(dir, keys.sealing_grace_seconds)?;
        let extra_keks = match keys.kek_list()? {
            Some(list) => keyfile::parse_key_list(list.expose())?,
            None => Vec::new(),
        };
        let keks = keyfile::load_kek_ring(dir, extra_keks, keys.kek_min_version)?;
        let indexer = keyfile::load_blind_indexer(dir)?;
        Ok(Self { sealing, keks, indexer })
    }

    /// The current key ids, for log lines (ids only, never key material).
    fn describe(&self) -> String {
        format!(
            "sealing key {}, key-encryption key {}, blind-index key {}",
            self.sealing.current().id,
            self.keks.current_id(),
            self.indexer.current_id()
        )
    }
}

/// The keys of a running gateway: what the use cases hold, and what a reload replaces.
pub(super) struct Keys {
    pub(super) sealing: Live<SealingKeyring>,
    pub(super) keks: Live<KekRing>,
    pub(super) indexer: Live<BlindIndexer>,
    pub(super) reloader: KeyReloader,
}

/// Loads every key from `dir` and notes their ids.
pub(super) fn load(dir: &Path, config: &KeysConfig, notes: &mut Vec<String>) -> Result<Keys, StartError> {
    let loaded = LoadedKeys::load(dir, config)?;
    notes.push(format!("keys: {} ({})", dir.display(), loaded.describe()));
    let LoadedKeys { sealing, keks, indexer } = loaded;
    let (sealing, keks, indexer) = (Live::new(sealing), Live::new(keks), Live::new(indexer));
    let reloader = KeyReloader {
        dir: dir.to_path_buf(),
        config: config.clone(),
        sealing: sealing.clone(),
        keks: keks.clone(),
        indexer: indexer.clone(),
    };
    Ok(Keys {
        sealing,
        keks,
        indexer,
        reloader,
    })
}

/// Reloads the keys of a running gateway from where they were loaded at start.
#[derive(Clone)]
pub struct KeyReloader {
    dir: PathBuf,
    config: KeysConfig,
    sealing: Live<SealingKeyring>,
    keks: Live<KekRing>,
    indexer: Live<BlindIndexer>,
}

impl KeyReloader {
    /// Loads every key afresh and, only if all of them load, makes them current; calls already
    /// running keep the keys they started with. On error nothing changes. Returns the new key ids.
    pub fn reload(&self) -> Result<String, StartError> {
        let loaded = LoadedKeys::load(&self.dir, &self.config)?;
        let described = loaded.describe();
        let LoadedKeys { sealing, keks, indexer } = loaded;
        self.sealing.replace(sealing);
        self.keks.replace(keks);
        self.indexer.replace(indexer);
        Ok(described)
    }
}
