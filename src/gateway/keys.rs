//! The keys step: the gateway's sealing keys, key-encryption keys (KEKs) and blind-index keys,
//! loaded together from `keys.dir` (and `keys.keks` / `keys.keks_file`), held live so that a reload
//! (SIGHUP) replaces them in place for every use case at once.
//!
//! KEKs are time-boxed (see `crypto::keyfile`): a KEK past its destruction date is skipped — at
//! start and on every reload — with a warning that names only its id, and never used. Skipped rather
//! than refused as a configuration error: the destruction date passing before `idgate keys
//! maintain` has removed the file must not take a fleet down at its next restart or SIGHUP, and a
//! skipped key is as unusable as a missing one. A ring in which no KEK may wrap now loads (cases
//! already sealed still open and can be reviewed) but is logged as an error: sealing refuses until
//! the operator rotates.
//!
//! Key files, and `keys.keks_file`, that group or others may read are refused
//! (`keyfile::ensure_private`), as are two files claiming one key id.
//!
//! It must never print key material (log lines carry key ids only), nor make a partly loaded set
//! current: a reload takes effect only if every key loads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::StartError;
use crate::clock::Clock;
use crate::config::{Config, KeysConfig};
use crate::crypto::blind_index::BlindIndexer;
use crate::crypto::envelope::KekRing;
use crate::crypto::keyfile::{self, KekSchedule};
use crate::crypto::sealing::SealingKeyring;
use crate::live::Live;

/// The gateway's keys, loaded together.
struct LoadedKeys {
    sealing: SealingKeyring,
    keks: KekRing,
    indexer: BlindIndexer,
    /// KEKs skipped for being past their destruction date (ids only).
    refused_keks: Vec<String>,
}

/// Where keys are loaded from, and what decides which KEKs may be used.
#[derive(Clone)]
struct KeySource {
    dir: PathBuf,
    keys: KeysConfig,
    /// From the keys and retention settings.
    schedule: KekSchedule,
    clock: Arc<dyn Clock>,
}

impl KeySource {
    fn load(&self) -> Result<LoadedKeys, StartError> {
        let keys = &self.keys;
        let sealing = keyfile::load_sealing_keyring(&self.dir, keys.sealing_grace_seconds)?;
        let extra_keks = match keys.kek_list()? {
            Some(list) => keyfile::parse_key_list(list.expose())?,
            None => Vec::new(),
        };
        let keyfile::LoadedKeks { ring: keks, refused } = keyfile::load_kek_ring(
            &self.dir,
            extra_keks,
            keys.kek_min_version,
            &self.schedule,
            self.clock.clone(),
        )?;
        for kek in &refused {
            tracing::warn!(kek = %kek, "key-encryption key is past its destruction date: not loaded; run `idgate keys maintain` to destroy its file");
        }
        if !keks.can_wrap() {
            tracing::error!(
                kek = %keks.current_id(),
                "no key-encryption key may wrap new data keys (epoch over or undated): cases that need review cannot be stored; run `idgate keys maintain` and reload"
            );
        }
        let indexer = keyfile::load_blind_indexer(&self.dir)?;
        Ok(LoadedKeys {
            sealing,
            keks,
            indexer,
            refused_keks: refused,
        })
    }
}

impl LoadedKeys {
    /// The current key ids, for log lines (ids only, never key material).
    fn describe(&self) -> String {
        let wraps = match self.keks.current_wraps_for() {
            Some(seconds) if seconds > 0 => format!("wraps for {seconds} s more"),
            Some(_) => "its epoch is over".to_owned(),
            None => "undated: never wraps".to_owned(),
        };
        let refused = match self.refused_keks.as_slice() {
            [] => String::new(),
            ids => format!("; not loaded, past their destruction date: {}", ids.join(", ")),
        };
        format!(
            "sealing key {}, key-encryption key {} ({wraps}), blind-index key {}{refused}",
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

/// Loads every key from `dir` and notes their ids; KEKs are time-boxed on `clock`.
pub(super) fn load(
    dir: &Path,
    config: &Config,
    clock: &Arc<dyn Clock>,
    notes: &mut Vec<String>,
) -> Result<Keys, StartError> {
    let source = KeySource {
        dir: dir.to_path_buf(),
        keys: config.keys.clone(),
        schedule: config.kek_schedule(),
        clock: clock.clone(),
    };
    let loaded = source.load()?;
    notes.push(format!("keys: {} ({})", dir.display(), loaded.describe()));
    let LoadedKeys {
        sealing, keks, indexer, ..
    } = loaded;
    let (sealing, keks, indexer) = (Live::new(sealing), Live::new(keks), Live::new(indexer));
    let reloader = KeyReloader {
        source,
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
    source: KeySource,
    sealing: Live<SealingKeyring>,
    keks: Live<KekRing>,
    indexer: Live<BlindIndexer>,
}

impl KeyReloader {
    /// Loads every key afresh and, only if all of them load, makes them current; calls already
    /// running keep the keys they started with. On error nothing changes. Returns the new key ids.
    pub fn reload(&self) -> Result<String, StartError> {
        let loaded = self.source.load()?;
        let described = loaded.describe();
        let LoadedKeys {
            sealing, keks, indexer, ..
        } = loaded;
        self.sealing.replace(sealing);
        self.keks.replace(keks);
        self.indexer.replace(indexer);
        Ok(described)
    }
}
