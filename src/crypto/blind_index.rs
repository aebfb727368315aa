//! Blind indexes: a keyed HMAC-SHA256 of a normalized value, so the store can count and limit by ID
//! number without ever holding the number.
//!
//! Each use gets its own key, derived from the blind-index root key with a use label, so an index
//! made for rate limiting can never be matched against one made for the anchor-account limit. The
//! index carries the root key's id, so a rotation starts new indexes instead of silently mixing two;
//! older keys stay loaded so that lookups consult every index that may still be alive (a rotation
//! never resets a limit). The same keys derive two keyed tags: the fingerprint of a request's sealed
//! content (idempotency bound to content) and the integrity tag of a stored case record — keys that
//! the gateway holds and the store never sees. Never log the input; the output is safe to store.

use hmac::{Hmac, Mac};

use super::SecretKey32;

type HmacSha256 = Hmac<sha2::Sha256>;

/// What an index or keyed digest is for. Each use has its own derived key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexUse {
    /// Rate limit per ID number.
    RateLimit,
    /// How many accounts one ID number may verify as anchor.
    AnchorAccounts,
    /// The fingerprint of what a request sealed (idempotency bound to content).
    RequestFingerprint,
    /// The integrity tag of a stored case record.
    RecordMac,
}

impl IndexUse {
    const ALL: [IndexUse; 4] = [
        IndexUse::RateLimit,
        IndexUse::AnchorAccounts,
        IndexUse::RequestFingerprint,
        IndexUse::RecordMac,
    ];

    fn label(self) -> &'static str {
        match self {
            IndexUse::RateLimit => "rate-limit",
            IndexUse::AnchorAccounts => "anchor-accounts",
            IndexUse::RequestFingerprint => "request-fingerprint",
            IndexUse::RecordMac => "record-mac",
        }
    }
}

/// One blind-index root key's derived keys.
struct Generation {
    key_id: String,
    version: u32,
    created_at_unix: i64,
    /// One derived key per [`IndexUse`], in the order of [`IndexUse::ALL`].
    derived: [SecretKey32; 4],
}

impl Generation {
    fn new(key_id: String, version: u32, created_at_unix: i64, root: &SecretKey32) -> Self {
        let derive = |use_: IndexUse| {
            SecretKey32::from_bytes(hmac(
                root.expose(),
                &[b"idgate.v1.blind-index", use_.label().as_bytes()],
            ))
        };
        Self {
            key_id,
            version,
            created_at_unix,
            derived: IndexUse::ALL.map(derive),
        }
    }

    fn key(&self, use_: IndexUse) -> &SecretKey32 {
        let slot = IndexUse::ALL.iter().position(|u| *u == use_).unwrap_or(0);
        #[allow(clippy::indexing_slicing)] // `slot` indexes `ALL`, which `derived` mirrors
        &self.derived[slot]
    }

    fn digest(&self, use_: IndexUse, parts: &[&[u8]]) -> [u8; 32] {
        hmac(self.key(use_).expose(), parts)
    }
}

/// The blind-index keys: the newest derives every new index and tag; older ones are kept so that
/// limits keep counting across a rotation and stored tags stay checkable.
pub struct BlindIndexer {
    /// Newest first.
    generations: Vec<Generation>,
}

impl std::fmt::Debug for BlindIndexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.generations.iter().map(|g| g.key_id.as_str()).collect();
        f.debug_struct("BlindIndexer")
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty MAC state anyway
    // rather than panic.
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0u8; 32],
    };
    for part in parts {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A blind-index root key as loaded.
pub struct BlindKey {
    pub id: String,
    /// Orders keys: the highest version is current (the creation time breaks ties).
    pub version: u32,
    pub created_at_unix: i64,
    pub root: SecretKey32,
}

impl BlindIndexer {
    /// One key (derives one key per use from `root` with HMAC-SHA256 and a use label).
    pub fn new(key_id: String, root: &SecretKey32) -> Self {
        Self {
            generations: vec![Generation::new(key_id, 0, 0, root)],
        }
    }

    /// Several keys; the newest (by version, then creation time, then id) is current. `None` when
    /// empty.
    pub fn ring(keys: Vec<BlindKey>) -> Option<Self> {
        let mut generations: Vec<Generation> = keys
            .into_iter()
            .map(|k| Generation::new(k.id, k.version, k.created_at_unix, &k.root))
            .collect();
        generations
            .sort_by(|a, b| (b.version, b.created_at_unix, &b.key_id).cmp(&(a.version, a.created_at_unix, &a.key_id)));
        (!generations.is_empty()).then_some(Self { generations })
    }

    fn current(&self) -> &Generation {
        // `ring` and `new` never build an empty indexer; `ring` refuses an empty list.
        #[allow(clippy::indexing_slicing)]
        &self.generations[0]
    }

    pub fn current_id(&self) -> &str {
        &self.current().key_id
    }

    fn render(use_: IndexUse, generation: &Generation, normalized: &str) -> String {
        format!(
            "{}:{}:{}",
            use_.label(),
            generation.key_id,
            hex::encode(generation.digest(use_, &[normalized.as_bytes()]))
        )
    }

    /// `<use>:<key id>:<hex HMAC>` of `normalized` under the current key (the caller normalizes,
    /// e.g. upper-case check digit).
    pub fn index(&self, use_: IndexUse, normalized: &str) -> String {
        Self::render(use_, self.current(), normalized)
    }

    /// The index of `normalized` under every key that may still have live entries: the current one
    /// and each older key whose successor was created less than `lifetime_seconds` before `now_unix`
    /// (entries made under it can still be alive). Current first.
    pub fn indexes_within(
        &self,
        use_: IndexUse,
        normalized: &str,
        now_unix: i64,
        lifetime_seconds: u64,
    ) -> Vec<String> {
        let lifetime = i64::try_from(lifetime_seconds).unwrap_or(i64::MAX);
        let mut out = vec![self.index(use_, normalized)];
        for pair in self.generations.windows(2) {
            let (newer, older) = (&pair[0], &pair[1]);
            if now_unix.saturating_sub(newer.created_at_unix) < lifetime {
                out.push(Self::render(use_, older, normalized));
            } else {
                break;
            }
        }
        out
    }

    /// A keyed digest of `parts` (length-prefixed) for `use_` under the current key:
    /// `<key id>:<hex>`. For request fingerprints and record tags.
    pub fn tag(&self, use_: IndexUse, parts: &[&[u8]]) -> String {
        let g = self.current();
        format!("{}:{}", g.key_id, hex::encode(g.digest(use_, parts)))
    }

    /// Whether `stored` (made by [`BlindIndexer::tag`], under any key still held) is the tag of
    /// `parts`. Compared in constant time; `false` when its key is no longer held.
    pub fn tag_matches(&self, use_: IndexUse, stored: &str, parts: &[&[u8]]) -> bool {
        use subtle::ConstantTimeEq;
        let Some((key_id, _)) = stored.rsplit_once(':') else {
            return false;
        };
        let Some(g) = self.generations.iter().find(|g| g.key_id == key_id) else {
            return false;
        };
        let expected = format!("{}:{}", g.key_id, hex::encode(g.digest(use_, parts)));
        bool::from(expected.as_bytes().ct_eq(stored.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_use_keyed_and_versioned() {
        let root = SecretKey32::from_bytes([7; 32]);
        let a = BlindIndexer::new("bk-1".into(), &root);
        let id = "11010519491231002X";
        let rl = a.index(IndexUse::RateLimit, id);
        assert_eq!(rl, a.index(IndexUse::RateLimit, id));
        assert_ne!(rl, a.index(IndexUse::RateLimit, "110105194912310039"));
        let anchor = a.index(IndexUse::AnchorAccounts, id);
        assert_ne!(
            rl.rsplit(':').next(),
            anchor.rsplit(':').next(),
            "separate keys per use"
        );
        assert!(rl.starts_with("rate-limit:bk-1:"));
        assert!(!rl.contains(id) && !rl.contains("19491231"));
        let other = BlindIndexer::new("bk-2".into(), &SecretKey32::from_bytes([8; 32]));
        assert_ne!(other.index(IndexUse::RateLimit, id), rl);
        assert!(!format!("{a:?}").contains("07070707"));
    }

    fn key(id: &str, version: u32, created: i64, byte: u8) -> BlindKey {
        BlindKey {
            id: id.into(),
            version,
            created_at_unix: created,
            root: SecretKey32::from_bytes([byte; 32]),
        }
    }

    #[test]
    fn a_rotation_keeps_older_indexes_consulted_within_their_lifetime() {
        let old = BlindIndexer::ring(vec![key("bk-1", 1, 1_000, 1)]).unwrap();
        let both = BlindIndexer::ring(vec![key("bk-1", 1, 1_000, 1), key("bk-2", 2, 5_000, 2)]).unwrap();
        assert_eq!(both.current_id(), "bk-2");
        let id = "11010519491231002X";
        let before = old.index(IndexUse::AnchorAccounts, id);
        let consulted = both.indexes_within(IndexUse::AnchorAccounts, id, 6_000, 10_000);
        assert_eq!(consulted.len(), 2);
        assert_eq!(consulted[0], both.index(IndexUse::AnchorAccounts, id));
        assert_eq!(consulted[1], before, "the old key's index is still consulted");
        // Once the new key is older than the lifetime, nothing made under the old one can be alive.
        assert_eq!(
            both.indexes_within(IndexUse::AnchorAccounts, id, 15_001, 10_000).len(),
            1
        );
    }

    #[test]
    fn tags_verify_under_the_key_that_made_them_and_nothing_else() {
        let old = BlindIndexer::ring(vec![key("bk-1", 1, 1_000, 1)]).unwrap();
        let parts: [&[u8]; 2] = [b"purpose", b"content"];
        let tag = old.tag(IndexUse::RequestFingerprint, &parts);
        assert!(tag.starts_with("bk-1:"));
        let both = BlindIndexer::ring(vec![key("bk-1", 1, 1_000, 1), key("bk-2", 2, 5_000, 2)]).unwrap();
        assert!(
            both.tag_matches(IndexUse::RequestFingerprint, &tag, &parts),
            "old tags stay checkable"
        );
        assert!(!both.tag_matches(IndexUse::RecordMac, &tag, &parts), "another use");
        assert!(!both.tag_matches(IndexUse::RequestFingerprint, &tag, &[b"purpose", b"other"]));
        let forged = format!("bk-2:{}", &tag[5..]);
        assert!(!both.tag_matches(IndexUse::RequestFingerprint, &forged, &parts));
        let gone = BlindIndexer::ring(vec![key("bk-2", 2, 5_000, 2)]).unwrap();
        assert!(
            !gone.tag_matches(IndexUse::RequestFingerprint, &tag, &parts),
            "its key is gone"
        );
        assert!(!gone.tag_matches(IndexUse::RequestFingerprint, "garbage", &parts));
    }

    /// The derived keys, ID-number indexes and keyed tags against fixed vectors computed without this
    /// code (`tests/vectors/at_rest.py`, checked by openssl too). Indexes and tags stay in the store
    /// across versions (limits, bindings, fingerprints, record tags): a failure here is a change of
    /// what they are, which needs a migration, not new vectors.
    #[test]
    fn indexes_and_tags_match_the_independent_vectors() {
        use crate::crypto::vectors::{at_rest, bytes32, list, text};
        let all = at_rest();
        let v = &all["blind_index"];
        let key_id = text(v, "key_id");
        let root = SecretKey32::from_bytes(bytes32(v, "root"));
        let indexer = BlindIndexer::new(key_id.into(), &root);
        let by_label = |label: &str| {
            IndexUse::ALL
                .into_iter()
                .find(|u| u.label() == label)
                .unwrap_or_else(|| panic!("no use labelled {label:?}"))
        };
        for use_ in IndexUse::ALL {
            assert_eq!(
                hex::encode(indexer.current().key(use_).expose()),
                text(&v["derived"], use_.label()),
                "{use_:?}"
            );
        }
        let indexes = list(v, "indexes");
        assert_eq!(indexes.len(), 2);
        for ix in indexes {
            let use_ = by_label(text(ix, "use"));
            let expected = text(ix, "expected");
            assert_eq!(indexer.index(use_, text(ix, "normalized")), expected);
            assert_eq!(indexer.indexes_within(use_, text(ix, "normalized"), 0, 1), [expected]);
        }
        let tags = list(v, "tags");
        assert_eq!(tags.len(), 2);
        for tag in tags {
            let use_ = by_label(text(tag, "use"));
            let parts: Vec<Vec<u8>> = list(tag, "parts")
                .iter()
                .map(|p| hex::decode(p.as_str().unwrap()).unwrap())
                .collect();
            let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let expected = text(tag, "expected");
            assert_eq!(indexer.tag(use_, &parts), expected);
            assert!(indexer.tag_matches(use_, expected, &parts));
        }
    }
}
