//! Key files: where sealing keys and key-encryption keys live, and how they rotate.
//!
//! Layout of a key directory (created with mode 0700; each file 0600, refused if group or others can
//! read it — [`ensure_private`], the one check every key and secret file of the gateway goes through;
//! two files of one kind claiming the same id are refused too):
//!
//! ```text
//! <dir>/sealing/<id>.key   HPKE X25519 sealing keys; newest = current, the one before = previous
//! <dir>/kek/<id>.key       key-encryption keys for data at rest; newest wraps, all not retired open
//! <dir>/blind/<id>.key     the blind-index root key (keyed HMACs of ID numbers); newest is used
//! ```
//!
//! A key file is TOML: `id`, `kind`, `version` (1, 2, … per kind), `created_at_unix`, `secret` (64 hex
//! chars). Rotation adds a newer file with the next version; nothing is rewritten in place. A KEK
//! whose version is below `keys.kek_min_version` is retired: it is not loaded, so records still
//! wrapped by it no longer open (run the re-wrap pass to completion before retiring).
//!
//! KEKs are time-boxed. A KEK file also holds `wraps_until_unix` (the end of its epoch,
//! `keys.kek_epoch_seconds` after creation) and `destroy_after_unix` (`wraps_until` + the longest
//! time a data key it wrapped can stay within retention + `keys.kek_destroy_grace_seconds`), both
//! fixed when the key is made ([`KekSchedule`]). The dates are never rewritten, a configuration
//! change does not move them, and they are bound into the key itself: the KEK in use is
//! HMAC-SHA256(secret, label ‖ id ‖ dates), so a file whose dates were edited opens nothing. A KEK
//! past its `destroy_after` is not loaded ([`load_kek_ring`] names it in
//! [`LoadedKeks::refused`]), and [`maintain_keks`] overwrites and unlinks its file — the file it was
//! read from, never one found by the id inside it. A KEK file
//! without dates (written by an earlier version) opens and re-wraps from, but never wraps.
//!
//! Key material never leaves this module except as [`SecretKey32`], and no error message contains
//! it.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

use super::SecretKey32;
use super::blind_index::{BlindIndexer, BlindKey};
use super::envelope::{Kek, KekDates, KekRing};
use super::random;
use super::sealing::{IdentifiedKey, OpeningKey, SealingKeyring};
use crate::clock::Clock;

/// Which kind of key a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Sealing,
    Kek,
    BlindIndex,
}

impl KeyKind {
    fn subdir(self) -> &'static str {
        match self {
            KeyKind::Sealing => "sealing",
            KeyKind::Kek => "kek",
            KeyKind::BlindIndex => "blind",
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Sealing => "sk",
            KeyKind::Kek => "kek",
            KeyKind::BlindIndex => "bk",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("key file {0} is not a valid key file")]
    Malformed(PathBuf),
    #[error(
        "{0} is open to group or others (mode {1:04o}): a key or secret file must be readable by its owner only; run `chmod 600` on it"
    )]
    TooOpen(PathBuf, u32),
    /// Two files of one kind claim the same key id: one of them is not what it says (a copy, a
    /// planted file). Refused rather than guessed at: the ring would open with either, and upkeep
    /// could destroy the wrong one.
    #[error("key files {first} and {second} both claim key id {id}: remove the one that is not that key")]
    DuplicateId {
        id: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("a KEK in {0} must be made with its dates (`idgate keys rotate --kind kek`)")]
    Undated(PathBuf),
    #[error("no {0:?} key in {1}; create one with `idgate keys rotate --dir {1}`")]
    Missing(KeyKind, PathBuf),
    #[error(transparent)]
    Random(#[from] random::RandomError),
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    id: String,
    kind: KeyKind,
    #[serde(default)]
    version: u32,
    created_at_unix: i64,
    /// KEKs only: the end of the epoch (absent in files of earlier versions: undated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wraps_until_unix: Option<i64>,
    /// KEKs only: the destruction date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    destroy_after_unix: Option<i64>,
    secret: String,
}

/// One key as loaded from disk.
pub struct LoadedKey {
    /// The file it was read from (`None` for keys given in `keys.keks`): what destruction removes,
    /// whatever id the file claims.
    pub file: Option<PathBuf>,
    pub id: String,
    pub version: u32,
    pub created_at_unix: i64,
    /// A KEK's dates; `None` for other kinds and for undated KEKs.
    pub dates: Option<KekDates>,
    pub secret: SecretKey32,
}

impl LoadedKey {
    /// The key-encryption key as the gateway uses it: a dated KEK's key is bound to its id and
    /// dates (so that editing the dates makes it open nothing); an undated one is the secret itself.
    pub fn kek(&self) -> Result<Kek, KeyFileError> {
        let key = match self.dates {
            None => self.secret.clone(),
            Some(dates) => {
                let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.secret.expose())
                    .map_err(|_| KeyFileError::Malformed(PathBuf::from(&self.id)))?;
                mac.update(DATED_KEK_LABEL);
                mac.update(&(self.id.len() as u32).to_be_bytes());
                mac.update(self.id.as_bytes());
                mac.update(&dates.wraps_until_unix.to_be_bytes());
                mac.update(&dates.destroy_after_unix.to_be_bytes());
                SecretKey32::from_bytes(mac.finalize().into_bytes().into())
            }
        };
        Ok(Kek {
            id: self.id.clone(),
            created_at_unix: self.created_at_unix,
            key,
        })
    }
}

/// Binds a dated KEK to its id and dates (see [`LoadedKey::kek`]).
const DATED_KEK_LABEL: &[u8] = b"idgate.v1.dated-kek";

/// How long KEKs live, from configuration (`Config::kek_schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KekSchedule {
    /// How long a new KEK wraps data keys (`keys.kek_epoch_seconds`).
    pub epoch_seconds: i64,
    /// The longest a data key wrapped in an epoch can stay in the store after the epoch ends (the
    /// pending-review TTL plus one sweep interval, by which the embedded store may be late).
    pub longest_retention_seconds: i64,
    /// Margin for clock skew and late sweeps (`keys.kek_destroy_grace_seconds`).
    pub grace_seconds: i64,
}

impl KekSchedule {
    /// The dates of a KEK created at `created_at_unix`.
    pub fn dates_from(&self, created_at_unix: i64) -> KekDates {
        let wraps_until_unix = created_at_unix.saturating_add(self.epoch_seconds);
        KekDates {
            wraps_until_unix,
            destroy_after_unix: wraps_until_unix
                .saturating_add(self.longest_retention_seconds)
                .saturating_add(self.grace_seconds),
        }
    }

    /// The dates the gateway wraps by: a KEK stops wrapping early if, under today's retention, a
    /// data key it wraps could outlive its destruction date (retention raised after it was made).
    /// Never later than the file says.
    pub fn wrapping_dates(&self, dates: KekDates) -> KekDates {
        KekDates {
            wraps_until_unix: dates
                .wraps_until_unix
                .min(dates.destroy_after_unix.saturating_sub(self.longest_retention_seconds)),
            ..dates
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and parents) with owner-only permissions.
pub fn create_private_dir(dir: &Path) -> Result<(), KeyFileError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io(dir))
}

/// Refuses a key or secret file that group or others may read, write or run (mode `& 0o077`): the
/// one check for every such file — key files, `_file` secrets, TLS private keys. It follows
/// symbolic links (a mounted secret is one), so the mode of the file itself is judged. The error
/// names the path and the mode, never the content (nothing is read).
pub fn ensure_private(path: &Path) -> Result<(), KeyFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).map_err(io(path))?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen(path.to_path_buf(), mode));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes `contents` to a new file that only the owner can read. Fails if the file exists.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyFileError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(contents).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// Generates a new sealing or blind-index key in `dir`; it becomes current. Returns its id. KEKs
/// are made with [`generate_kek`] only (with dates): asked for one here, it refuses.
pub fn generate(dir: &Path, kind: KeyKind, now_unix: i64) -> Result<String, KeyFileError> {
    if kind == KeyKind::Kek {
        return Err(KeyFileError::Undated(dir.join(kind.subdir())));
    }
    generate_dated(dir, kind, now_unix, None)
}

/// Generates a new KEK in `dir` with its dates from `schedule`; it becomes current. Returns its id.
pub fn generate_kek(dir: &Path, now_unix: i64, schedule: &KekSchedule) -> Result<String, KeyFileError> {
    generate_dated(dir, KeyKind::Kek, now_unix, Some(schedule.dates_from(now_unix)))
}

fn generate_dated(dir: &Path, kind: KeyKind, now_unix: i64, dates: Option<KekDates>) -> Result<String, KeyFileError> {
    let sub = dir.join(kind.subdir());
    create_private_dir(&sub)?;
    let id = random::id(&format!("{}-{now_unix}-", kind.prefix()))?;
    // Keep ids short enough to read in logs: prefix, time, 8 random characters.
    let id: String = id
        .chars()
        .take(kind.prefix().len() + 1 + now_unix.to_string().len() + 1 + 8)
        .collect();
    let version = load(dir, kind)?.iter().map(|k| k.version).max().unwrap_or(0) + 1;
    let secret = SecretKey32::random()?;
    let file = KeyFile {
        id: id.clone(),
        kind,
        version,
        created_at_unix: now_unix,
        wraps_until_unix: dates.map(|d| d.wraps_until_unix),
        destroy_after_unix: dates.map(|d| d.destroy_after_unix),
        secret: hex::encode(secret.expose()),
    };
    let text = Zeroizing::new(toml::to_string(&file).map_err(|_| KeyFileError::Malformed(sub.clone()))?);
    let KeyFile {
        secret: mut hex_secret, ..
    } = file;
    zeroize::Zeroize::zeroize(&mut hex_secret);
    write_private_file(&sub.join(format!("{id}.key")), text.as_bytes())?;
    Ok(id)
}

/// Every key of `kind` in `dir`, in no particular order.
pub fn load(dir: &Path, kind: KeyKind) -> Result<Vec<LoadedKey>, KeyFileError> {
    let sub = dir.join(kind.subdir());
    let entries = match fs::read_dir(&sub) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&sub)(e)),
    };
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(io(&sub))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("key") {
            continue;
        }
        ensure_private(&path)?;
        let text = Zeroizing::new(fs::read_to_string(&path).map_err(io(&path))?);
        let file: KeyFile = toml::from_str(&text).map_err(|_| KeyFileError::Malformed(path.clone()))?;
        let KeyFile {
            id,
            kind: file_kind,
            version,
            created_at_unix,
            wraps_until_unix,
            destroy_after_unix,
            secret,
        } = file;
        let secret = Zeroizing::new(secret);
        let mut bytes = Zeroizing::new([0u8; 32]);
        let dates = match (wraps_until_unix, destroy_after_unix) {
            (Some(wraps_until_unix), Some(destroy_after_unix)) if kind == KeyKind::Kek => Some(KekDates {
                wraps_until_unix,
                destroy_after_unix,
            }),
            (None, None) => None,
            // One date without the other, or dates on a key that has none: not a file we wrote.
            _ => return Err(KeyFileError::Malformed(path)),
        };
        if file_kind != kind || hex::decode_to_slice(secret.as_bytes(), bytes.as_mut()).is_err() {
            return Err(KeyFileError::Malformed(path));
        }
        if let Some(other) = keys.iter().find(|k: &&LoadedKey| k.id == id) {
            return Err(KeyFileError::DuplicateId {
                id,
                first: other.file.clone().unwrap_or_default(),
                second: path,
            });
        }
        keys.push(LoadedKey {
            file: Some(path),
            id,
            version,
            created_at_unix,
            dates,
            secret: SecretKey32::from_bytes(*bytes),
        });
    }
    Ok(keys)
}

/// Creates one key of each kind in `dir` if it has none (the quickstart's dev mode), and keeps the
/// dev KEKs on schedule: a new KEK when none wraps now, and those past their destruction date
/// destroyed ([`maintain_keks`] with no lead), so that `--dev` keeps working across epochs.
pub fn ensure_dev_keys(dir: &Path, now_unix: i64, schedule: &KekSchedule) -> Result<(), KeyFileError> {
    create_private_dir(dir)?;
    for kind in [KeyKind::Sealing, KeyKind::BlindIndex] {
        if load(dir, kind)?.is_empty() {
            generate(dir, kind, now_unix)?;
        }
    }
    maintain_keks(dir, now_unix, schedule, 0)?;
    Ok(())
}

/// The sealing keyring from `dir`.
pub fn load_sealing_keyring(dir: &Path, grace_seconds: i64) -> Result<SealingKeyring, KeyFileError> {
    let keys = load(dir, KeyKind::Sealing)?
        .into_iter()
        .map(|k| IdentifiedKey {
            key: OpeningKey::from_secret(&k.secret),
            id: k.id,
            created_at_unix: k.created_at_unix,
        })
        .collect();
    SealingKeyring::new(keys, grace_seconds).ok_or_else(|| KeyFileError::Missing(KeyKind::Sealing, dir.to_path_buf()))
}

/// Parses KEKs given outside files (an environment variable or a mounted secret): entries
/// `<id>:<version>:<64 hex chars>[:<wraps_until_unix>:<destroy_after_unix>]` separated by commas or
/// new lines. An entry without dates is undated (opens, never wraps). Errors never echo input.
pub fn parse_key_list(text: &str) -> Result<Vec<LoadedKey>, KeyFileError> {
    let malformed = || KeyFileError::Malformed(PathBuf::from("<KEK list from the environment>"));
    let mut keys = Vec::new();
    for entry in text.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
        let parts: Vec<&str> = entry.split(':').collect();
        let (id, version, secret, dates) = match parts[..] {
            [id, version, secret] => (id, version, secret, None),
            [id, version, secret, wraps_until, destroy_after] => {
                let date = |text: &str| text.parse::<i64>().map_err(|_| malformed());
                let dates = KekDates {
                    wraps_until_unix: date(wraps_until)?,
                    destroy_after_unix: date(destroy_after)?,
                };
                (id, version, secret, Some(dates))
            }
            _ => return Err(malformed()),
        };
        let valid_id = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let version: u32 = version.parse().map_err(|_| malformed())?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        if !valid_id || hex::decode_to_slice(secret.as_bytes(), bytes.as_mut()).is_err() {
            return Err(malformed());
        }
        keys.push(LoadedKey {
            file: None,
            id: id.to_owned(),
            version,
            created_at_unix: 0,
            dates,
            secret: SecretKey32::from_bytes(*bytes),
        });
    }
    Ok(keys)
}

/// The KEKs a gateway loaded, and the ids of those it refused.
pub struct LoadedKeks {
    pub ring: KekRing,
    /// KEKs past their destruction date: not loaded, never used (ids only, for a warning).
    pub refused: Vec<String>,
}

/// The key-encryption keys from `dir` plus `extra` (from the environment), without those retired
/// (`version < min_version`) and without those past their destruction date at `clock`'s now
/// (named in [`LoadedKeks::refused`]). The highest version is current; the ring is time-boxed on
/// `clock` with each KEK's dates ([`KekSchedule::wrapping_dates`]).
pub fn load_kek_ring(
    dir: &Path,
    extra: Vec<LoadedKey>,
    min_version: u32,
    schedule: &KekSchedule,
    clock: Arc<dyn Clock>,
) -> Result<LoadedKeks, KeyFileError> {
    let mut all = load(dir, KeyKind::Kek)?;
    for key in extra {
        if all.iter().any(|k| k.id == key.id) {
            return Err(KeyFileError::Malformed(dir.join("kek").join(format!("{}.key", key.id))));
        }
        all.push(key);
    }
    let now = clock.now_unix();
    let (destroyed, all): (Vec<LoadedKey>, Vec<LoadedKey>) = all
        .into_iter()
        .filter(|k| k.version >= min_version)
        .partition(|k| k.dates.is_some_and(|d| d.destroyed_at(now)));
    let mut refused: Vec<String> = destroyed.into_iter().map(|k| k.id).collect();
    refused.sort();
    // Versions order keys across sources (environment keys carry no creation time); the real
    // creation times are kept apart, for the key-age metric.
    let created: HashMap<String, i64> = all
        .iter()
        .filter(|k| k.created_at_unix > 0)
        .map(|k| (k.id.clone(), k.created_at_unix))
        .collect();
    let dates: HashMap<String, KekDates> = all
        .iter()
        .filter_map(|k| Some((k.id.clone(), schedule.wrapping_dates(k.dates?))))
        .collect();
    let keys = all
        .iter()
        .map(|k| {
            Ok(Kek {
                created_at_unix: i64::from(k.version),
                ..k.kek()?
            })
        })
        .collect::<Result<Vec<_>, KeyFileError>>()?;
    let ring = KekRing::new(keys)
        .map(|ring| ring.with_creation_times(created).with_dates(dates, clock))
        .ok_or_else(|| KeyFileError::Missing(KeyKind::Kek, dir.to_path_buf()))?;
    Ok(LoadedKeks { ring, refused })
}

/// What [`maintain_keks`] did, by key id only.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KekUpkeep {
    /// The new KEK, if the current one's epoch was ending.
    pub rotated: Option<String>,
    /// KEK files past their destruction date, overwritten and unlinked.
    pub destroyed: Vec<String>,
    /// KEK files without dates (from an earlier version): left alone, listed for the operator.
    pub undated: Vec<String>,
}

/// The scheduled upkeep of the KEKs in `dir` (what `idgate keys maintain` and `--dev` run):
/// destroys every KEK file past its destruction date (overwritten with zeros, synced, unlinked; the
/// file read, whatever its name — two files claiming one id are refused by [`load`]),
/// then makes a new KEK if none will still wrap `rotate_lead_seconds` from now (the newest KEK's
/// epoch is ending, or there is no dated KEK). Never touches a date; never destroys an undated KEK.
pub fn maintain_keks(
    dir: &Path,
    now_unix: i64,
    schedule: &KekSchedule,
    rotate_lead_seconds: i64,
) -> Result<KekUpkeep, KeyFileError> {
    let mut upkeep = KekUpkeep::default();
    let keys = load(dir, KeyKind::Kek)?;
    let mut destroyed = Vec::new();
    for key in &keys {
        match (key.dates, &key.file) {
            // The file that was read is the one destroyed, not one named after the id it claims.
            (Some(dates), Some(file)) if dates.destroyed_at(now_unix) => {
                destroy_key_file(file)?;
                destroyed.push(file);
                upkeep.destroyed.push(key.id.clone());
            }
            (Some(_), _) => {}
            (None, _) => upkeep.undated.push(key.id.clone()),
        }
    }
    // The newest KEK is the one gateways wrap with; a rotation is due when it stops wrapping soon.
    let newest = keys
        .iter()
        .filter(|k| k.file.as_ref().is_none_or(|f| !destroyed.contains(&f)))
        .max_by(|a, b| a.version.cmp(&b.version).then_with(|| a.id.cmp(&b.id)));
    let wraps_on = newest
        .and_then(|k| k.dates)
        .map(|d| schedule.wrapping_dates(d))
        .is_some_and(|d| d.wraps_at(now_unix.saturating_add(rotate_lead_seconds)));
    if !wraps_on {
        upkeep.rotated = Some(generate_kek(dir, now_unix, schedule)?);
    }
    upkeep.destroyed.sort();
    upkeep.undated.sort();
    Ok(upkeep)
}

/// Destroys a key file: its bytes overwritten with zeros and synced, then unlinked, then the
/// directory synced. (On copy-on-write or wear-levelled storage an overwrite may not reach the old
/// blocks; docs/keys-and-retention.md says where KEK files should live.)
fn destroy_key_file(path: &Path) -> Result<(), KeyFileError> {
    let len = fs::metadata(path).map_err(io(path))?.len();
    let mut file = fs::OpenOptions::new().write(true).open(path).map_err(io(path))?;
    file.write_all(&vec![0u8; len as usize]).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    drop(file);
    fs::remove_file(path).map_err(io(path))?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent).and_then(|d| d.sync_all()).map_err(io(parent))?;
    }
    Ok(())
}

/// Every blind-index key from `dir`; the newest (by version, then creation time) is current. Older
/// keys stay loaded so that limits and stored tags keep working across a rotation.
pub fn load_blind_indexer(dir: &Path) -> Result<BlindIndexer, KeyFileError> {
    let keys = load(dir, KeyKind::BlindIndex)?
        .into_iter()
        .map(|k| BlindKey {
            id: k.id,
            version: k.version,
            created_at_unix: k.created_at_unix,
            root: k.secret,
        })
        .collect();
    BlindIndexer::ring(keys).ok_or_else(|| KeyFileError::Missing(KeyKind::BlindIndex, dir.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// A 1 000 s epoch, 300 s of retention, 100 s of grace: a KEK made at t wraps until t + 1 000
    /// and is destroyed at t + 1 400.
    const SCHEDULE: KekSchedule = KekSchedule {
        epoch_seconds: 1_000,
        longest_retention_seconds: 300,
        grace_seconds: 100,
    };

    fn at(now: i64) -> Arc<dyn Clock> {
        Arc::new(ManualClock::new(now))
    }

    fn ring(dir: &Path, min_version: u32, now: i64) -> Result<KekRing, KeyFileError> {
        load_kek_ring(dir, Vec::new(), min_version, &SCHEDULE, at(now)).map(|l| l.ring)
    }

    fn kek_path(dir: &Path, id: &str) -> PathBuf {
        dir.join("kek").join(format!("{id}.key"))
    }

    #[test]
    fn dev_keys_are_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        ensure_dev_keys(&keys, 1_000, &SCHEDULE).unwrap();
        let first = load_sealing_keyring(&keys, 60).unwrap().current().id.clone();
        let first_kek = ring(&keys, 0, 1_000).unwrap().current_id().to_owned();
        ensure_dev_keys(&keys, 1_500, &SCHEDULE).unwrap();
        assert_eq!(
            load_sealing_keyring(&keys, 60).unwrap().current().id,
            first,
            "reused on restart"
        );
        assert_eq!(
            ring(&keys, 0, 1_500).unwrap().current_id(),
            first_kek,
            "still in its epoch"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for entry in fs::read_dir(keys.join("sealing")).unwrap() {
                let mode = entry.unwrap().metadata().unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
            let mode = fs::metadata(keys.join("kek")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let rotated = generate(&keys, KeyKind::Sealing, 3_000).unwrap();
        assert_eq!(load_sealing_keyring(&keys, 60).unwrap().current().id, rotated);
        assert!(load_blind_indexer(&keys).is_ok());
        // Past the first KEK's epoch, a dev start makes a new one; past its destruction date, the
        // old one is destroyed: `--dev` keeps working out of the box.
        ensure_dev_keys(&keys, 2_000, &SCHEDULE).unwrap();
        let second = ring(&keys, 0, 2_000).unwrap();
        assert_ne!(second.current_id(), first_kek);
        assert!(second.can_wrap());
        ensure_dev_keys(&keys, 2_400, &SCHEDULE).unwrap();
        assert!(!kek_path(&keys, &first_kek).exists(), "destroyed");
    }

    #[test]
    fn kek_versions_count_up_and_old_ones_retire() {
        let dir = tempfile::tempdir().unwrap();
        generate_kek(dir.path(), 1_000, &SCHEDULE).unwrap();
        let (old_wrapped, old_body) = ring(dir.path(), 0, 1_000)
            .unwrap()
            .seal("vf_a", "identity", b"x")
            .unwrap();
        let second = generate_kek(dir.path(), 1_500, &SCHEDULE).unwrap();
        let mut versions: Vec<u32> = load(dir.path(), KeyKind::Kek)
            .unwrap()
            .iter()
            .map(|k| k.version)
            .collect();
        versions.sort();
        assert_eq!(versions, [1, 2]);

        let ring_now = ring(dir.path(), 0, 1_500).unwrap();
        assert_eq!(ring_now.current_id(), second, "the newest wraps new records");
        assert!(
            ring_now.open("vf_a", "identity", &old_wrapped, &old_body).is_ok(),
            "old records still open"
        );

        let retired = ring(dir.path(), 2, 1_500).unwrap();
        assert!(
            retired.open("vf_a", "identity", &old_wrapped, &old_body).is_err(),
            "version 1 retired"
        );
        let moved = ring_now.rewrap("vf_a", "identity", &old_wrapped).unwrap();
        assert!(
            retired.open("vf_a", "identity", &moved, &old_body).is_ok(),
            "re-wrapped records survive"
        );
        assert!(matches!(ring(dir.path(), 3, 1_500), Err(KeyFileError::Missing(..))));
    }

    #[test]
    fn a_kek_past_its_destruction_date_is_refused_and_maintenance_destroys_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = generate_kek(dir.path(), 1_000, &SCHEDULE).unwrap();
        let dates = load(dir.path(), KeyKind::Kek).unwrap()[0].dates.unwrap();
        assert_eq!(
            dates,
            KekDates {
                wraps_until_unix: 2_000,
                destroy_after_unix: 2_400
            }
        );
        // Early in the epoch nothing is due; near its end (within the lead) a new KEK is made.
        assert_eq!(
            maintain_keks(dir.path(), 1_500, &SCHEDULE, 100).unwrap(),
            KekUpkeep::default()
        );
        let upkeep = maintain_keks(dir.path(), 1_950, &SCHEDULE, 100).unwrap();
        let second = upkeep.rotated.clone().expect("rotated near the epoch's end");
        assert!(upkeep.destroyed.is_empty());

        let path = kek_path(dir.path(), &first);
        let copy = fs::read(&path).unwrap();
        // The last second before the destruction date the KEK loads; from then on it is refused.
        let loaded = load_kek_ring(dir.path(), Vec::new(), 0, &SCHEDULE, at(2_399)).unwrap();
        assert!(loaded.refused.is_empty());
        let loaded = load_kek_ring(dir.path(), Vec::new(), 0, &SCHEDULE, at(2_400)).unwrap();
        assert_eq!(loaded.refused, [first.as_str()]);
        assert_eq!(loaded.ring.current_id(), second);

        let upkeep = maintain_keks(dir.path(), 2_400, &SCHEDULE, 100).unwrap();
        assert_eq!(upkeep.destroyed, [first.as_str()]);
        assert_eq!(upkeep.rotated, None, "the second KEK still wraps");
        assert!(!path.exists(), "unlinked");

        // Put back from a copy, it is still refused (its dates are in the file and bound to the key).
        write_private_file(&path, &copy).unwrap();
        let loaded = load_kek_ring(dir.path(), Vec::new(), 0, &SCHEDULE, at(2_500)).unwrap();
        assert_eq!(loaded.refused, [first.as_str()]);
        // With its dates edited to look younger, it loads but is another key: it opens nothing it
        // wrapped.
        let text = String::from_utf8(copy).unwrap();
        let edited = text.replace("destroy_after_unix = 2400", "destroy_after_unix = 99999");
        assert_ne!(edited, text);
        fs::remove_file(&path).unwrap();
        write_private_file(&path, edited.as_bytes()).unwrap();
        let original = LoadedKey {
            file: None,
            id: first.clone(),
            version: 1,
            created_at_unix: 1_000,
            dates: Some(dates),
            secret: load(dir.path(), KeyKind::Kek)
                .unwrap()
                .into_iter()
                .find(|k| k.id == first)
                .unwrap()
                .secret,
        };
        let wrapping = KekRing::new(vec![original.kek().unwrap()]).unwrap();
        let (w, b) = wrapping.seal("vf_a", "identity", b"x").unwrap();
        let tampered = ring(dir.path(), 0, 2_500).unwrap();
        assert!(tampered.open("vf_a", "identity", &w, &b).is_err());
    }

    #[test]
    fn no_data_key_wrapped_in_an_epoch_outlives_its_kek() {
        // For every second a KEK wraps, a case sealed then is out of retention before the KEK's
        // destruction date, also when retention was raised after the KEK was made.
        for schedule in [
            SCHEDULE,
            KekSchedule {
                epoch_seconds: 7 * 86_400,
                longest_retention_seconds: 259_200 + 30,
                grace_seconds: 0,
            },
        ] {
            let dates = schedule.dates_from(1_000);
            let raised = KekSchedule {
                longest_retention_seconds: schedule.longest_retention_seconds * 2,
                ..schedule
            };
            for s in [schedule, raised] {
                let wrapping = s.wrapping_dates(dates);
                assert!(wrapping.wraps_until_unix <= dates.wraps_until_unix, "never extended");
                let last_wrap = wrapping.wraps_until_unix - 1;
                assert!(wrapping.wraps_at(last_wrap) && !wrapping.wraps_at(last_wrap + 1));
                assert!(last_wrap + s.longest_retention_seconds < dates.destroy_after_unix);
            }
        }
    }

    #[test]
    fn an_undated_kek_from_an_earlier_version_opens_but_never_wraps_and_is_never_destroyed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            generate(dir.path(), KeyKind::Kek, 1_000),
            Err(KeyFileError::Undated(_))
        ));
        // A file as the earlier version wrote it: no dates.
        let old = generate_kek(dir.path(), 1_000, &SCHEDULE).unwrap();
        let path = kek_path(dir.path(), &old);
        let text = fs::read_to_string(&path).unwrap();
        let legacy: String = text
            .lines()
            .filter(|l| !l.starts_with("wraps_until_unix") && !l.starts_with("destroy_after_unix"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(legacy, text);
        fs::remove_file(&path).unwrap();
        write_private_file(&path, legacy.as_bytes()).unwrap();
        let undated = ring(dir.path(), 0, 1_000).unwrap();
        assert!(!undated.can_wrap());
        let upkeep = maintain_keks(dir.path(), 1_000_000, &SCHEDULE, 0).unwrap();
        assert_eq!(upkeep.undated, [old.as_str()]);
        assert!(upkeep.rotated.is_some(), "a dated KEK to wrap with");
        assert!(kek_path(dir.path(), &old).exists());
        let loaded = load(dir.path(), KeyKind::Kek).unwrap();
        let legacy = loaded.iter().find(|k| k.id == old).unwrap();
        assert_eq!(
            legacy.kek().unwrap().key.expose(),
            legacy.secret.expose(),
            "its records still open"
        );
    }

    /// Two KEK files whose names and ids are swapped (a restore, a hand copy): the KEK past its date
    /// is destroyed by the file it was read from, and the live KEK's file — named after the dead
    /// one's id — stays. (Destroying by id removed the live KEK and kept the dead one.)
    #[test]
    fn a_kek_is_destroyed_by_the_file_it_was_read_from_not_the_id_inside() {
        let dir = tempfile::tempdir().unwrap();
        let old = generate_kek(dir.path(), 1_000, &SCHEDULE).unwrap();
        let live = generate_kek(dir.path(), 1_900, &SCHEDULE).unwrap();
        let (old_file, live_file) = (kek_path(dir.path(), &old), kek_path(dir.path(), &live));
        let swap = dir.path().join("kek").join("swap");
        fs::rename(&old_file, &swap).unwrap();
        fs::rename(&live_file, &old_file).unwrap();
        fs::rename(&swap, &live_file).unwrap();
        let live_secret = fs::read(&old_file).unwrap();

        let upkeep = maintain_keks(dir.path(), 2_400, &SCHEDULE, 0).unwrap();
        assert_eq!(upkeep.destroyed, [old.as_str()]);
        assert_eq!(upkeep.rotated, None, "the live KEK still wraps");
        assert!(!live_file.exists(), "the file that held the dead KEK is destroyed");
        assert_eq!(
            fs::read(&old_file).unwrap(),
            live_secret,
            "the live KEK's file is untouched"
        );
        let loaded = load_kek_ring(dir.path(), Vec::new(), 0, &SCHEDULE, at(2_400)).unwrap();
        assert_eq!(loaded.ring.current_id(), live);
        assert!(loaded.refused.is_empty());
    }

    /// A second file claiming a live KEK's id (planted, or a stale copy) with a past destruction
    /// date: upkeep refuses rather than destroying either, the gateway refuses to load the pair,
    /// and the error names both files.
    #[test]
    fn two_files_claiming_one_key_id_are_refused_and_nothing_is_destroyed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = generate_kek(dir.path(), 1_000, &SCHEDULE).unwrap();
        let live = generate_kek(dir.path(), 1_900, &SCHEDULE).unwrap();
        let (dead_file, live_file) = (kek_path(dir.path(), &dead), kek_path(dir.path(), &live));
        let planted = fs::read_to_string(&dead_file)
            .unwrap()
            .replace(&format!("id = \"{dead}\""), &format!("id = \"{live}\""));
        fs::remove_file(&dead_file).unwrap();
        write_private_file(&dead_file, planted.as_bytes()).unwrap();
        let live_text = fs::read(&live_file).unwrap();

        let refused = maintain_keks(dir.path(), 2_400, &SCHEDULE, 0).expect_err("refused");
        let text = refused.to_string();
        assert!(matches!(refused, KeyFileError::DuplicateId { .. }), "{text}");
        assert!(
            text.contains(&live)
                && text.contains(&dead_file.display().to_string())
                && text.contains(&live_file.display().to_string()),
            "{text}"
        );
        assert_eq!(fs::read(&live_file).unwrap(), live_text, "the live KEK stays");
        assert!(dead_file.exists(), "nothing is guessed at");
        assert!(matches!(
            ring(dir.path(), 0, 2_400),
            Err(KeyFileError::DuplicateId { .. })
        ));
        // The same for every kind of key.
        let sealing = generate(dir.path(), KeyKind::Sealing, 1_000).unwrap();
        let copy = dir.path().join("sealing").join("copy.key");
        write_private_file(
            &copy,
            &fs::read(dir.path().join("sealing").join(format!("{sealing}.key"))).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            load_sealing_keyring(dir.path(), 60),
            Err(KeyFileError::DuplicateId { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_key_file_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let id = generate_kek(dir.path(), 1, &SCHEDULE).unwrap();
        let path = kek_path(dir.path(), &id);
        for mode in [0o644, 0o640, 0o604, 0o620, 0o610] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let Err(refused) = ring(dir.path(), 0, 1) else {
                panic!("mode {mode:o} is refused")
            };
            assert!(matches!(refused, KeyFileError::TooOpen(_, m) if m == mode), "{refused}");
            let text = refused.to_string();
            assert!(
                text.contains(&path.display().to_string()) && text.contains("chmod 600"),
                "{text}"
            );
            let secret = load_secret_hex(&path);
            assert!(!text.contains(&secret), "{text}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(ring(dir.path(), 0, 1).is_ok(), "read-only for its owner is fine");
    }

    /// The hex secret in a key file (to show an error does not hold it).
    fn load_secret_hex(path: &Path) -> String {
        let text = fs::read_to_string(path).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("secret = \""))
            .unwrap()
            .trim_end_matches('"')
            .to_owned()
    }

    #[test]
    fn keks_from_the_environment_join_the_files_and_never_echo() {
        let dir = tempfile::tempdir().unwrap();
        generate_kek(dir.path(), 1_000, &SCHEDULE).unwrap();
        let secret = "ab".repeat(32);
        let list = parse_key_list(&format!("kek-env-7:7:{secret}:2000:2400, \n")).unwrap();
        assert_eq!((list[0].id.as_str(), list[0].version), ("kek-env-7", 7));
        assert!(list[0].dates.is_some());
        let loaded = load_kek_ring(dir.path(), list, 0, &SCHEDULE, at(1_000)).unwrap();
        assert_eq!(loaded.ring.current_id(), "kek-env-7", "the highest version wraps");
        assert!(loaded.ring.can_wrap());
        let undated = parse_key_list(&format!("kek-env-8:8:{secret}")).unwrap();
        assert!(undated[0].dates.is_none());
        for bad in [
            "kek:1",
            "kek:x:00",
            &format!("bad id:1:{secret}"),
            &format!("k:1:{}", "zz".repeat(32)),
            &format!("k:1:{secret}:2000"),
            &format!("k:1:{secret}:soon:2400"),
        ] {
            let error = parse_key_list(bad).err().expect("refused").to_string();
            assert!(!error.contains(&secret) && !error.contains("zz"), "{error}");
        }
    }
}
