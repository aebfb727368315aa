//! Key files: where sealing keys and key-encryption keys live, and how they rotate.
//!
//! Layout of a key directory (created with mode 0700; each file 0600, refused if others can read it):
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
//! wrapped by it no longer open (run the re-wrap pass to completion before retiring). Key material never leaves this module except as
//! [`SecretKey32`], and no error message contains it.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

use super::SecretKey32;
use super::blind_index::{BlindIndexer, BlindKey};
use super::envelope::{Kek, KekRing};
use super::random;
use super::sealing::{IdentifiedKey, OpeningKey, SealingKeyring};

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
    #[error("key file {0} can be read by other users; run `chmod 600` on it")]
    TooOpen(PathBuf),
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
    secret: String,
}

/// One key as loaded from disk.
pub struct LoadedKey {
    pub id: String,
    pub version: u32,
    pub created_at_unix: i64,
    pub secret: SecretKey32,
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

/// Generates a new key of `kind` in `dir`; it becomes current. Returns its id.
pub fn generate(dir: &Path, kind: KeyKind, now_unix: i64) -> Result<String, KeyFileError> {
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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).map_err(io(&path))?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(KeyFileError::TooOpen(path));
            }
        }
        let text = Zeroizing::new(fs::read_to_string(&path).map_err(io(&path))?);
        let file: KeyFile = toml::from_str(&text).map_err(|_| KeyFileError::Malformed(path.clone()))?;
        let KeyFile {
            id,
            kind: file_kind,
            version,
            created_at_unix,
            secret,
        } = file;
        let secret = Zeroizing::new(secret);
        let mut bytes = Zeroizing::new([0u8; 32]);
        if file_kind != kind || hex::decode_to_slice(secret.as_bytes(), bytes.as_mut()).is_err() {
            return Err(KeyFileError::Malformed(path));
        }
        keys.push(LoadedKey {
            id,
            version,
            created_at_unix,
            secret: SecretKey32::from_bytes(*bytes),
        });
    }
    Ok(keys)
}

/// Creates one key of each kind in `dir` if it has none (the quickstart's dev mode).
pub fn ensure_dev_keys(dir: &Path, now_unix: i64) -> Result<(), KeyFileError> {
    create_private_dir(dir)?;
    for kind in [KeyKind::Sealing, KeyKind::Kek, KeyKind::BlindIndex] {
        if load(dir, kind)?.is_empty() {
            generate(dir, kind, now_unix)?;
        }
    }
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

/// Parses KEKs given outside files (an environment variable or a mounted secret):
/// entries `<id>:<version>:<64 hex chars>` separated by commas or new lines. Errors never echo input.
pub fn parse_key_list(text: &str) -> Result<Vec<LoadedKey>, KeyFileError> {
    let malformed = || KeyFileError::Malformed(PathBuf::from("<KEK list from the environment>"));
    let mut keys = Vec::new();
    for entry in text.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
        let mut parts = entry.splitn(3, ':');
        let (Some(id), Some(version), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed());
        };
        let valid_id = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let version: u32 = version.parse().map_err(|_| malformed())?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        if !valid_id || hex::decode_to_slice(secret.as_bytes(), bytes.as_mut()).is_err() {
            return Err(malformed());
        }
        keys.push(LoadedKey {
            id: id.to_owned(),
            version,
            created_at_unix: 0,
            secret: SecretKey32::from_bytes(*bytes),
        });
    }
    Ok(keys)
}

/// The key-encryption keys from `dir` plus `extra` (from the environment), without those retired
/// (`version < min_version`). The highest version wraps new data keys.
pub fn load_kek_ring(dir: &Path, extra: Vec<LoadedKey>, min_version: u32) -> Result<KekRing, KeyFileError> {
    let mut all = load(dir, KeyKind::Kek)?;
    for key in extra {
        if all.iter().any(|k| k.id == key.id) {
            return Err(KeyFileError::Malformed(dir.join("kek").join(format!("{}.key", key.id))));
        }
        all.push(key);
    }
    // Versions order keys across sources (environment keys carry no creation time); the real
    // creation times are kept apart, for the key-age metric.
    let all: Vec<LoadedKey> = all.into_iter().filter(|k| k.version >= min_version).collect();
    let created: HashMap<String, i64> = all
        .iter()
        .filter(|k| k.created_at_unix > 0)
        .map(|k| (k.id.clone(), k.created_at_unix))
        .collect();
    let keys = all
        .into_iter()
        .map(|k| LoadedKey {
            created_at_unix: i64::from(k.version),
            ..k
        })
        .map(|k| Kek {
            id: k.id,
            created_at_unix: k.created_at_unix,
            key: k.secret,
        })
        .collect();
    KekRing::new(keys)
        .map(|ring| ring.with_creation_times(created))
        .ok_or_else(|| KeyFileError::Missing(KeyKind::Kek, dir.to_path_buf()))
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

    #[test]
    fn dev_keys_are_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        ensure_dev_keys(&keys, 1_000).unwrap();
        let first = load_sealing_keyring(&keys, 60).unwrap().current().id.clone();
        ensure_dev_keys(&keys, 2_000).unwrap();
        assert_eq!(
            load_sealing_keyring(&keys, 60).unwrap().current().id,
            first,
            "reused on restart"
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
        assert!(load_kek_ring(&keys, Vec::new(), 0).is_ok());
        assert!(load_blind_indexer(&keys).is_ok());
    }

    #[test]
    fn kek_versions_count_up_and_old_ones_retire() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), KeyKind::Kek, 1_000).unwrap();
        let (old_wrapped, old_body) = load_kek_ring(dir.path(), Vec::new(), 0)
            .unwrap()
            .seal("vf_a", "identity", b"x")
            .unwrap();
        let second = generate(dir.path(), KeyKind::Kek, 2_000).unwrap();
        let mut versions: Vec<u32> = load(dir.path(), KeyKind::Kek)
            .unwrap()
            .iter()
            .map(|k| k.version)
            .collect();
        versions.sort();
        assert_eq!(versions, [1, 2]);

        let ring = load_kek_ring(dir.path(), Vec::new(), 0).unwrap();
        assert_eq!(ring.current_id(), second, "the newest wraps new records");
        assert!(
            ring.open("vf_a", "identity", &old_wrapped, &old_body).is_ok(),
            "old records still open"
        );

        let retired = load_kek_ring(dir.path(), Vec::new(), 2).unwrap();
        assert!(
            retired.open("vf_a", "identity", &old_wrapped, &old_body).is_err(),
            "version 1 retired"
        );
        let moved = ring.rewrap("vf_a", "identity", &old_wrapped).unwrap();
        assert!(
            retired.open("vf_a", "identity", &moved, &old_body).is_ok(),
            "re-wrapped records survive"
        );
        assert!(matches!(
            load_kek_ring(dir.path(), Vec::new(), 3),
            Err(KeyFileError::Missing(..))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_key_file_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let id = generate(dir.path(), KeyKind::Kek, 1).unwrap();
        let path = dir.path().join("kek").join(format!("{id}.key"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_kek_ring(dir.path(), Vec::new(), 0),
            Err(KeyFileError::TooOpen(_))
        ));
    }

    #[test]
    fn keks_from_the_environment_join_the_files_and_never_echo() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), KeyKind::Kek, 1_000).unwrap();
        let secret = "ab".repeat(32);
        let list = parse_key_list(&format!("kek-env-7:7:{secret}, \n")).unwrap();
        assert_eq!((list[0].id.as_str(), list[0].version), ("kek-env-7", 7));
        let ring = load_kek_ring(dir.path(), list, 0).unwrap();
        assert_eq!(ring.current_id(), "kek-env-7", "the highest version wraps");
        for bad in [
            "kek:1",
            "kek:x:00",
            &format!("bad id:1:{secret}"),
            &format!("k:1:{}", "zz".repeat(32)),
        ] {
            let error = parse_key_list(bad).err().expect("refused").to_string();
            assert!(!error.contains(&secret) && !error.contains("zz"), "{error}");
        }
    }
}
