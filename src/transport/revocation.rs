//! Revoking client certificates without replacing the CA: a deny-list file of certificate serial
//! numbers and SHA-256 fingerprints (`server.client_deny_list`), re-read when it changes (polled) and
//! on SIGHUP.
//!
//! The list is consulted twice: by the TLS handshake (see [`super::tls`]), so a denied certificate
//! opens no new connection, and by every call (see [`super::admission`]), because a connection
//! opened before the certificate was listed stays open. A list that does not parse is refused as a
//! whole with one log line and the list in use stays, as with key reloads.
//!
//! File format, one entry a line, `#` starts a comment:
//!
//! ```text
//! # leaked reviewer laptop, 2026-11-30
//! sha256:9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08
//! serial:3A5F0C91
//! 0x3a5f0c92          # bare: 64 hex digits are a fingerprint, up to 40 a serial
//! ```
//!
//! Hex is case-insensitive, colons are ignored. A serial names an end-entity certificate of the client
//! CA (serials are unique per issuer only); a fingerprint, of the DER certificate, names any
//! certificate of the presented chain, intermediates included, and any certificate of
//! `server.client_ca` the presented chain leads to (one that signed a presented certificate, or
//! signed a `client_ca` certificate that did, and so on). A client need not present an intermediate
//! that `client_ca` holds, so listing that intermediate must not depend on the client sending it:
//! every client certificate it vouches for is refused. Such a listing is enforced, not refused at
//! start (the list is reloaded while serving, and a restart that failed on it would take the
//! gateway down); it is logged, so that the operator also takes the certificate out of `client_ca`.
//!
//! Must never log anything of a certificate but its serial and fingerprint (a subject can name a
//! person), and never let a list that failed to parse replace one that did.

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::live::Live;

/// A deny-list file larger than this is refused (about 30 000 fingerprint lines).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// The longest serial RFC 5280 allows, in octets (without a sign byte).
const MAX_SERIAL_OCTETS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum DenyListError {
    #[error("deny list {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("deny list {path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: String },
    #[error("deny list line {line}: {what}")]
    Line { line: usize, what: &'static str },
}

/// A parsed deny list. Serials are kept without leading zero octets, so `00:8f` and `8F` match alike.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DenyList {
    serials: HashSet<Vec<u8>>,
    fingerprints: HashSet<[u8; 32]>,
}

/// Why a certificate chain was refused, for log lines: the listed certificate's serial and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub serial: String,
    pub fingerprint: String,
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    let digits = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .unwrap_or(&digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // An odd count is a serial printed without its leading zero nibble.
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits.to_owned()
    };
    hex::decode(padded).ok()
}

/// `bytes` without leading zero octets (but at least one octet).
fn normalized_serial(bytes: &[u8]) -> Vec<u8> {
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    bytes[first.min(bytes.len())..].to_vec()
}

impl DenyList {
    /// Parses the file format of the module doc; any bad line refuses the whole list.
    pub fn parse(text: &str) -> Result<Self, DenyListError> {
        let mut list = Self::default();
        for (index, raw) in text.lines().enumerate() {
            let bad = |what| DenyListError::Line { line: index + 1, what };
            let entry = raw.split('#').next().unwrap_or_default().trim();
            if entry.is_empty() {
                continue;
            }
            let (kind, value) = match entry.split_once(':') {
                Some((label, rest)) if label.eq_ignore_ascii_case("sha256") => (Some(true), rest),
                Some((label, rest)) if label.eq_ignore_ascii_case("serial") => (Some(false), rest),
                _ => (None, entry),
            };
            let bytes = unhex(value.trim()).ok_or_else(|| bad("not a hex serial or fingerprint"))?;
            let fingerprint = kind.unwrap_or(bytes.len() == 32);
            if fingerprint {
                let digest: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| bad("a SHA-256 fingerprint has 64 hex digits"))?;
                list.fingerprints.insert(digest);
            } else {
                let serial = normalized_serial(&bytes);
                if serial.len() > MAX_SERIAL_OCTETS {
                    return Err(bad("a serial has at most 20 octets (40 hex digits)"));
                }
                list.serials.insert(serial);
            }
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.serials.is_empty() && self.fingerprints.is_empty()
    }

    /// How many entries of each kind, for log lines.
    pub fn describe(&self) -> String {
        format!(
            "{} serials, {} fingerprints",
            self.serials.len(),
            self.fingerprints.len()
        )
    }

    /// Whether the presented chain (end entity first) names a listed certificate.
    pub fn check(&self, chain: &[CertificateDer<'_>]) -> Result<(), Denied> {
        if self.is_empty() {
            return Ok(());
        }
        for (position, cert) in chain.iter().enumerate() {
            let fingerprint: [u8; 32] = Sha256::digest(cert.as_ref()).into();
            let serial = X509Certificate::from_der(cert.as_ref())
                .map(|(_, parsed)| normalized_serial(parsed.raw_serial()))
                .unwrap_or_default();
            let serial_listed = position == 0 && !serial.is_empty() && self.serials.contains(&serial);
            if serial_listed || self.fingerprints.contains(&fingerprint) {
                return Err(denied(cert, &fingerprint));
            }
        }
        Ok(())
    }

    /// The listed certificates of `authorities` (the client CA file).
    fn listed<'a>(&'a self, authorities: &'a [Authority]) -> impl Iterator<Item = &'a Authority> + 'a {
        authorities
            .iter()
            .filter(|authority| self.fingerprints.contains(&authority.fingerprint))
    }

    /// [`Self::check`], and whether the chain leads to a listed certificate of `authorities`: one
    /// whose subject is the issuer of a presented certificate (or of an authority reached so) and
    /// whose key verifies that certificate's signature. Conservative: a chain that could be
    /// completed through a listed authority is denied even if another completion avoids it. Costs a
    /// signature check or two per handshake and call only while a `client_ca` certificate is listed.
    fn check_path(&self, chain: &[CertificateDer<'_>], authorities: &[Authority]) -> Result<(), Denied> {
        fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
            X509Certificate::from_der(der).ok().map(|(_, cert)| cert)
        }
        self.check(chain)?;
        if self.listed(authorities).next().is_none() {
            return Ok(());
        }
        let Some(leaf) = chain.first().and_then(|der| parse(der.as_ref())) else {
            return Ok(());
        };
        // The certificates a path may go through: presented intermediates, then the client CA's.
        let candidates: Vec<(X509Certificate<'_>, Option<&Authority>)> = chain
            .iter()
            .skip(1)
            .filter_map(|der| Some((parse(der.as_ref())?, None)))
            .chain(
                authorities
                    .iter()
                    .filter_map(|authority| Some((parse(authority.der.as_ref())?, Some(authority)))),
            )
            .collect();
        let mut reached = vec![false; candidates.len()];
        let mut to_visit = vec![&leaf];
        while let Some(cert) = to_visit.pop() {
            for (index, (issuer, authority)) in candidates.iter().enumerate() {
                if reached[index]
                    || issuer.subject().as_raw() != cert.issuer().as_raw()
                    || cert.verify_signature(Some(issuer.public_key())).is_err()
                {
                    continue;
                }
                reached[index] = true;
                if let Some(authority) = authority
                    && self.fingerprints.contains(&authority.fingerprint)
                {
                    return Err(denied(&authority.der, &authority.fingerprint));
                }
                to_visit.push(issuer);
            }
        }
        Ok(())
    }
}

/// A certificate of `server.client_ca`, which the deny list may name by fingerprint.
#[derive(Debug, Clone)]
struct Authority {
    der: CertificateDer<'static>,
    fingerprint: [u8; 32],
}

impl Authority {
    fn new(der: &CertificateDer<'_>) -> Self {
        Self {
            fingerprint: Sha256::digest(der.as_ref()).into(),
            der: der.clone().into_owned(),
        }
    }
}

/// Why `cert` is refused: its serial and fingerprint.
fn denied(cert: &CertificateDer<'_>, fingerprint: &[u8; 32]) -> Denied {
    let serial = X509Certificate::from_der(cert.as_ref())
        .map(|(_, parsed)| normalized_serial(parsed.raw_serial()))
        .unwrap_or_default();
    Denied {
        serial: hex::encode(serial),
        fingerprint: hex::encode(fingerprint),
    }
}

/// The loaded list and the digest of the file text it came from (so that polling re-parses only
/// what changed).
#[derive(Debug, Default)]
struct Loaded {
    list: DenyList,
    source_digest: [u8; 32],
}

/// The gateway's current deny list, shared by the TLS verifier, the call check and the reloaders.
/// Clones share the list.
#[derive(Debug, Clone)]
pub struct Revocation {
    /// The deny-list file; `None` when none is configured (nothing is ever denied).
    source: Option<PathBuf>,
    current: Live<Loaded>,
    /// How often the file is looked at for changes.
    poll_every: Duration,
    /// The certificates of `server.client_ca` ([`Self::trust`]): a chain that leads to one the list
    /// names is denied whether or not the client presents it.
    authorities: Live<Vec<Authority>>,
}

fn read_limited(path: &Path) -> Result<Vec<u8>, DenyListError> {
    let read_error = |source| DenyListError::Read {
        path: path.display().to_string(),
        source,
    };
    let length = std::fs::metadata(path).map_err(read_error)?.len();
    if length > MAX_FILE_BYTES {
        return Err(DenyListError::TooLarge {
            path: path.display().to_string(),
        });
    }
    std::fs::read(path).map_err(read_error)
}

fn parse_bytes(bytes: &[u8]) -> Result<DenyList, DenyListError> {
    let text = std::str::from_utf8(bytes).map_err(|_| DenyListError::Line {
        line: 0,
        what: "the file is not UTF-8 text",
    })?;
    DenyList::parse(text)
}

impl Revocation {
    /// No deny list: every certificate the CA vouches for is accepted.
    pub fn disabled() -> Self {
        Self {
            source: None,
            current: Live::new(Loaded::default()),
            poll_every: Duration::from_secs(3600),
            authorities: Live::new(Vec::new()),
        }
    }

    /// Loads the list at `path` (when configured); a list that does not load refuses the start.
    pub fn load(path: Option<&Path>, poll_every: Duration) -> Result<Self, DenyListError> {
        let Some(path) = path else {
            return Ok(Self::disabled());
        };
        let bytes = read_limited(path)?;
        let list = parse_bytes(&bytes)?;
        Ok(Self {
            source: Some(path.to_path_buf()),
            current: Live::new(Loaded {
                list,
                source_digest: Sha256::digest(&bytes).into(),
            }),
            poll_every,
            authorities: Live::new(Vec::new()),
        })
    }

    /// Takes the certificates of `server.client_ca` into account (for this value and its clones):
    /// from now on a chain that leads to one the list names is denied, presented or not. Logs each
    /// listed one: it belongs out of `client_ca`.
    pub fn trust(&self, client_ca: &[CertificateDer<'_>]) {
        self.authorities.replace(client_ca.iter().map(Authority::new).collect());
        self.warn_listed_authorities();
    }

    /// One warning per `client_ca` certificate the list in force names.
    fn warn_listed_authorities(&self) {
        let authorities = self.authorities.load();
        for authority in self.current.load().list.listed(&authorities) {
            let denied = denied(&authority.der, &authority.fingerprint);
            tracing::warn!(
                serial = %denied.serial,
                fingerprint = %denied.fingerprint,
                "the deny list names a certificate of server.client_ca: every client certificate it \
                 vouches for is refused; take it out of client_ca"
            );
        }
    }

    /// The list in force now, applied to `chain` (end entity first) and to the `client_ca`
    /// certificates it leads to.
    pub fn check(&self, chain: &[CertificateDer<'_>]) -> Result<(), Denied> {
        self.current.load().list.check_path(chain, &self.authorities.load())
    }

    /// Reads the file again and, if it parses, makes it current. `Ok(None)` when no list is
    /// configured; on error the list in use stays.
    pub fn reload(&self) -> Result<Option<String>, DenyListError> {
        let Some(path) = &self.source else {
            return Ok(None);
        };
        let bytes = read_limited(path)?;
        let list = parse_bytes(&bytes)?;
        let described = list.describe();
        self.current.replace(Loaded {
            list,
            source_digest: Sha256::digest(&bytes).into(),
        });
        self.warn_listed_authorities();
        Ok(Some(described))
    }

    /// Looks at the file once: reloads it if its text changed since the list in use (or since the last
    /// refused text) and it parses. Blocking file I/O.
    fn poll_once(&self, last_refused: &mut Option<Refused>) -> Polled {
        let Some(path) = &self.source else {
            return Polled::Unchanged;
        };
        let bytes = match read_limited(path) {
            Ok(bytes) => bytes,
            Err(error) if *last_refused != Some(Refused::Unreadable) => {
                *last_refused = Some(Refused::Unreadable);
                return Polled::Refused(error);
            }
            Err(_) => return Polled::Unchanged,
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if digest == self.current.load().source_digest || *last_refused == Some(Refused::Text(digest)) {
            return Polled::Unchanged;
        }
        match parse_bytes(&bytes) {
            Ok(list) => {
                let described = list.describe();
                self.current.replace(Loaded {
                    list,
                    source_digest: digest,
                });
                self.warn_listed_authorities();
                *last_refused = None;
                Polled::Reloaded(described)
            }
            Err(error) => {
                *last_refused = Some(Refused::Text(digest));
                Polled::Refused(error)
            }
        }
    }

    /// Polls the file every `poll_every` until `stop` resolves. A change that does not load is logged
    /// once (until the file changes again) and the list in use stays.
    pub async fn watch(self, stop: impl Future<Output = ()>) {
        if self.source.is_none() {
            return;
        }
        tokio::pin!(stop);
        let mut ticks = tokio::time::interval(self.poll_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate; the list was just loaded
        let mut last_refused = None;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = &mut stop => return,
            }
            let this = self.clone();
            let Ok((polled, refused)) = tokio::task::spawn_blocking(move || {
                let polled = this.poll_once(&mut last_refused);
                (polled, last_refused)
            })
            .await
            else {
                return;
            };
            last_refused = refused;
            match polled {
                Polled::Unchanged => {}
                Polled::Reloaded(described) => tracing::info!("deny list changed: reloaded ({described})"),
                Polled::Refused(error) => {
                    tracing::error!(%error, "deny list changed but refused; the list in use stays")
                }
            }
        }
    }
}

/// What the last refused look at the file saw, so that the same refusal is logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Unreadable,
    Text([u8; 32]),
}

/// What one look at the file found.
#[derive(Debug)]
enum Polled {
    Unchanged,
    Reloaded(String),
    Refused(DenyListError),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn certificate(serial: &[u8]) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(vec!["client".into()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn fingerprint_of(cert: &CertificateDer<'_>) -> String {
        hex::encode(Sha256::digest(cert.as_ref()))
    }

    #[test]
    fn entries_comments_prefixes_and_colons() {
        let fp = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let colons: Vec<String> = fp
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into())
            .collect();
        let text = format!(
            "# a comment\n\n  serial:3A5F  # trailing comment\n{}\nsha256:{}\n0x00AB\nSERIAL:0f\nabc\n",
            fp.to_uppercase(),
            colons.join(":")
        );
        let list = DenyList::parse(&text).unwrap();
        assert_eq!(list.fingerprints.len(), 1, "the same fingerprint twice");
        let serials: HashSet<Vec<u8>> = [vec![0x3a, 0x5f], vec![0xab], vec![0x0f], vec![0x0a, 0xbc]].into();
        assert_eq!(list.serials, serials);
        assert_eq!(list.describe(), "4 serials, 1 fingerprints");
        assert!(DenyList::parse("# only comments\n\n").unwrap().is_empty());
    }

    #[test]
    fn a_bad_line_refuses_the_list_and_names_the_line() {
        for (text, line) in [
            ("serial:01\nnot-hex\n", 2),
            ("sha256:abcd\n", 1),
            ("\n\nserial:\n", 3),
            // 21 octets: longer than any RFC 5280 serial, and not a fingerprint.
            (&*format!("{}\n", "ab".repeat(21)), 1),
            ("md5:00\n", 1),
        ] {
            match DenyList::parse(text) {
                Err(DenyListError::Line { line: got, .. }) => assert_eq!(got, line, "{text:?}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
        // A 20-octet serial with a sign byte is still a serial.
        assert_eq!(
            DenyList::parse(&format!("00{}", "ff".repeat(20)))
                .unwrap()
                .serials
                .len(),
            1
        );
    }

    #[test]
    fn a_listed_serial_or_fingerprint_denies_and_others_pass() {
        let listed_by_serial = certificate(&[0x00, 0x8f, 0x01]);
        let listed_by_fingerprint = certificate(&[0x42]);
        let other = certificate(&[0x43]);
        let list = DenyList::parse(&format!("8F01\n{}\n", fingerprint_of(&listed_by_fingerprint))).unwrap();
        let denied = list.check(std::slice::from_ref(&listed_by_serial)).unwrap_err();
        assert_eq!(denied.serial, "8f01");
        assert_eq!(denied.fingerprint, fingerprint_of(&listed_by_serial));
        assert!(list.check(std::slice::from_ref(&listed_by_fingerprint)).is_err());
        assert_eq!(list.check(std::slice::from_ref(&other)), Ok(()));
        // A listed intermediate denies by fingerprint; a serial names the end entity only.
        assert!(list.check(&[other.clone(), listed_by_fingerprint]).is_err());
        assert_eq!(list.check(&[other, listed_by_serial]), Ok(()));
    }

    /// A CA certificate named `name`, self-signed or issued by `parent`.
    fn authority(
        name: &str,
        parent: Option<&rcgen::Issuer<'_, rcgen::KeyPair>>,
    ) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        match parent {
            None => rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
            Some(parent) => rcgen::CertifiedIssuer::signed_by(params, key, parent).unwrap(),
        }
    }

    fn leaf(issuer: &rcgen::Issuer<'_, rcgen::KeyPair>) -> CertificateDer<'static> {
        let params = rcgen::CertificateParams::new(vec!["client".into()]).unwrap();
        params
            .signed_by(&rcgen::KeyPair::generate().unwrap(), issuer)
            .unwrap()
            .der()
            .clone()
    }

    #[test]
    fn a_listed_client_ca_certificate_denies_the_chains_that_lead_to_it_presented_or_not() {
        let root = authority("root", None);
        let listed = authority("intermediate", Some(&root));
        // The same name under a new key, as after re-keying the listed one: not listed.
        let rekeyed = authority("intermediate", Some(&root));
        let (under_listed, under_rekeyed) = (leaf(&listed), leaf(&rekeyed));
        let authorities: Vec<Authority> = [&root, &listed, &rekeyed].map(|ca| Authority::new(ca.der())).to_vec();
        let list = DenyList::parse(&fingerprint_of(listed.der())).unwrap();
        // The client presents only its own certificate: the intermediate comes from client_ca.
        let denied = list
            .check_path(std::slice::from_ref(&under_listed), &authorities)
            .unwrap_err();
        assert_eq!(denied.fingerprint, fingerprint_of(listed.der()));
        assert_eq!(
            list.check(std::slice::from_ref(&under_listed)),
            Ok(()),
            "what the presented chain alone says"
        );
        assert_eq!(
            list.check_path(std::slice::from_ref(&under_rekeyed), &authorities),
            Ok(())
        );
        // Presented or not, the same answer.
        assert!(
            list.check_path(&[under_listed.clone(), listed.der().clone()], &authorities)
                .is_err()
        );
        assert!(
            list.check_path(&[under_listed.clone(), listed.der().clone()], &[])
                .is_err()
        );

        // A listed root denies what it vouches for through client_ca's intermediates, too.
        let list = DenyList::parse(&fingerprint_of(root.der())).unwrap();
        assert!(
            list.check_path(std::slice::from_ref(&under_rekeyed), &authorities)
                .is_err()
        );
        // Nothing of client_ca listed: only the presented chain counts.
        let other = certificate(&[0x01]);
        let list = DenyList::parse(&fingerprint_of(&other)).unwrap();
        assert_eq!(
            list.check_path(std::slice::from_ref(&under_listed), &authorities),
            Ok(())
        );
    }

    #[test]
    fn trusting_the_client_ca_reaches_every_clone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deny");
        let root = authority("root", None);
        let intermediate = authority("intermediate", Some(&root));
        let client = leaf(&intermediate);
        std::fs::write(&path, format!("sha256:{}\n", fingerprint_of(intermediate.der()))).unwrap();
        let revocation = Revocation::load(Some(&path), Duration::from_secs(1)).unwrap();
        let per_call = revocation.clone();
        assert_eq!(
            per_call.check(std::slice::from_ref(&client)),
            Ok(()),
            "client_ca not known yet"
        );
        revocation.trust(&[root.der().clone(), intermediate.der().clone()]);
        assert!(per_call.check(std::slice::from_ref(&client)).is_err());
    }

    #[test]
    fn reload_replaces_only_with_a_list_that_parses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deny");
        let cert = certificate(&[0x10, 0x20]);
        std::fs::write(&path, "# empty\n").unwrap();
        let revocation = Revocation::load(Some(&path), Duration::from_secs(1)).unwrap();
        assert_eq!(revocation.check(std::slice::from_ref(&cert)), Ok(()));
        std::fs::write(&path, "serial:1020\n").unwrap();
        assert_eq!(
            revocation.reload().unwrap().as_deref(),
            Some("1 serials, 0 fingerprints")
        );
        assert!(revocation.check(std::slice::from_ref(&cert)).is_err());
        std::fs::write(&path, "serial:zz\n").unwrap();
        assert!(revocation.reload().is_err());
        assert!(
            revocation.check(std::slice::from_ref(&cert)).is_err(),
            "the old list stays"
        );
        std::fs::remove_file(&path).unwrap();
        assert!(revocation.reload().is_err());
        assert!(
            revocation.check(std::slice::from_ref(&cert)).is_err(),
            "the old list stays"
        );
        // Nothing configured: nothing to reload, nothing denied.
        assert_eq!(Revocation::disabled().reload().unwrap(), None);
        assert!(
            Revocation::load(Some(&path), Duration::from_secs(1)).is_err(),
            "a missing file refuses the start"
        );
    }

    #[test]
    fn polling_reloads_a_changed_file_and_reports_a_bad_change_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deny");
        let cert = certificate(&[0x77]);
        std::fs::write(&path, "").unwrap();
        let revocation = Revocation::load(Some(&path), Duration::from_secs(5)).unwrap();
        let mut refused = None;
        assert!(matches!(revocation.poll_once(&mut refused), Polled::Unchanged));
        std::fs::write(&path, "serial:77\n").unwrap();
        assert!(matches!(revocation.poll_once(&mut refused), Polled::Reloaded(_)));
        assert!(revocation.check(std::slice::from_ref(&cert)).is_err());
        assert!(matches!(revocation.poll_once(&mut refused), Polled::Unchanged));
        // A bad change: refused once, then quiet until the file changes again; the list stays.
        std::fs::write(&path, "serial:77\nnot hex\n").unwrap();
        assert!(matches!(revocation.poll_once(&mut refused), Polled::Refused(_)));
        assert!(matches!(revocation.poll_once(&mut refused), Polled::Unchanged));
        assert!(revocation.check(std::slice::from_ref(&cert)).is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(revocation.poll_once(&mut refused), Polled::Refused(_)));
        assert!(matches!(revocation.poll_once(&mut refused), Polled::Unchanged));
        assert!(revocation.check(std::slice::from_ref(&cert)).is_err());
        std::fs::write(&path, "# cleared\n").unwrap();
        assert!(matches!(revocation.poll_once(&mut refused), Polled::Reloaded(_)));
        assert_eq!(revocation.check(std::slice::from_ref(&cert)), Ok(()));
    }
}
