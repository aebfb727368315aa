//! The data map for the privacy office (`idgate privacy report`): what a configuration does with each
//! category of personal data — which providers and store receive it, how it is protected, how long
//! it lives — as a [`DataMap`] that serializes to JSON and renders as Markdown.
//!
//! Every figure and every recipient comes from the [`Config`] the gateway would run with and from the
//! constants and rules the use cases enforce (the verify flow's "face only where the purpose requires
//! it", each adapter's actions, the rate windows, the envelope's nonce, the HPKE suite ids); nothing
//! is typed in a second time. A map that the gateway would refuse to start with is refused too.
//!
//! It must never carry a secret: provider credentials, KEKs and secret files are not read at all, and
//! provider endpoints, Redis URLs and the OTLP endpoint are reduced to host and port.

mod markdown;

pub use markdown::duration;

use serde::Serialize;

use crate::config::{Config, ProviderConfig, ProviderKind};
use crate::crypto::{SecretKey32, envelope, sealing};
use crate::decision::{ACCOUNT_WINDOW_SECONDS, ID_WINDOW_SECONDS};
use crate::domain::{FaceUse, Purpose, Reason, ReviewReason, reads_face};
use crate::material;
use crate::providers::{aliyun, http, tencent};
use crate::store::memory;
use crate::store::redis as redis_store;

/// Every purpose, in the order the report shows them.
const PURPOSES: [Purpose; 3] = [Purpose::ShortVideo, Purpose::Radio, Purpose::Anchor];

/// A well-formed biometric consent record, granted at 1 and judged at 1 (its content is not what the
/// map is about).
const A_BIOMETRIC_CONSENT: (&str, i64) = ("v1", 1);

/// The face path of a request for `purpose` with the biometric consent given (the normal path).
/// (`A_BIOMETRIC_CONSENT` is well formed, so no refusal is hidden here; the tests check that the
/// anchor path sends the face.)
fn face_path(purpose: Purpose) -> FaceUse {
    FaceUse::decide(purpose, false, Some(A_BIOMETRIC_CONSENT), 1).unwrap_or(FaceUse::NotCompared)
}

/// The face path of a request for `purpose` that asks for document review, if the purpose offers it.
fn document_path(purpose: Purpose) -> Option<FaceUse> {
    FaceUse::decide(purpose, true, None, 0)
        .ok()
        .filter(|f| *f == FaceUse::DocumentReview)
}

/// The purposes whose face recognition is refused without the biometric consent.
fn biometric_consent_required_for() -> Vec<&'static str> {
    PURPOSES
        .into_iter()
        .filter(|p| {
            FaceUse::decide(*p, false, None, 0)
                .err()
                .is_some_and(|r| r.reason() == Reason::BiometricConsentMissing)
        })
        .map(Purpose::as_str)
        .collect()
}

/// Every call of a provider of `kind`: one per purpose on the normal path, and one per purpose that
/// offers document review on that path.
fn calls(kind: ProviderKind, has_scene: bool) -> (Vec<PurposeCall>, Vec<PurposeCall>) {
    let normal = PURPOSES
        .into_iter()
        .map(|p| call(kind, has_scene, p, &face_path(p)))
        .collect();
    let documents = PURPOSES
        .into_iter()
        .filter_map(|p| document_path(p).map(|f| call(kind, has_scene, p, &f)))
        .collect();
    (normal, documents)
}

/// A category of personal data an applicant hands over (the fields of `IdentityPayload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Name,
    IdNumber,
    Phone,
    FaceImage,
    IdCardFront,
    IdCardBack,
    HandheldIdPhoto,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Name,
        Category::IdNumber,
        Category::Phone,
        Category::FaceImage,
        Category::IdCardFront,
        Category::IdCardBack,
        Category::HandheldIdPhoto,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Category::Name => "name",
            Category::IdNumber => "ID number",
            Category::Phone => "phone",
            Category::FaceImage => "face image",
            Category::IdCardFront => "ID card front",
            Category::IdCardBack => "ID card back",
            Category::HandheldIdPhoto => "handheld-ID photo",
        }
    }

    /// The purposes for which `Verify` refuses a request without it (the local checks' rules).
    fn required_for(self) -> Vec<&'static str> {
        let rule: fn(Purpose) -> bool = match self {
            Category::Name | Category::IdNumber => |_| true,
            Category::Phone => Purpose::requires_phone,
            Category::FaceImage => Purpose::requires_face,
            Category::IdCardFront | Category::IdCardBack | Category::HandheldIdPhoto => |_| false,
        };
        PURPOSES.into_iter().filter(|p| rule(*p)).map(Purpose::as_str).collect()
    }

    fn is_review_supplement(self) -> bool {
        matches!(
            self,
            Category::IdCardFront | Category::IdCardBack | Category::HandheldIdPhoto
        )
    }
}

/// The whole map.
#[derive(Debug, Clone, Serialize)]
pub struct DataMap {
    /// `production`, or `dev` (`--dev`: the built-in simulator stands in for missing providers).
    pub mode: &'static str,
    pub categories: Vec<CategoryUse>,
    /// In failover order.
    pub providers: Vec<ProviderRoute>,
    pub store: StoreMap,
    pub review: ReviewMap,
    /// Faces: separate consent, the document-review alternative, kept apart, withdrawal.
    pub biometrics: BiometricsMap,
    pub telemetry: TelemetryMap,
    pub protection: Protection,
    pub lifetimes: Vec<Lifetime>,
    /// How often retention runs (`retention.sweep_interval_seconds`); on Redis, TTLs remove data
    /// even when no gateway runs.
    pub retention_sweep_seconds: u64,
}

/// One category: when it is required, and who receives it.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryUse {
    pub category: Category,
    /// Purposes whose `Verify` requires it (optional otherwise).
    pub required_for: Vec<&'static str>,
    /// Required before an ANCHOR case is offered to reviewers (`review.anchor_requires_supplement`).
    pub required_for_anchor_review: bool,
    /// Providers that are sent it, with the purposes for which they are.
    pub providers: Vec<ProviderUse>,
    /// Kept in the store, sealed, only while its case waits for manual review.
    pub stored_while_pending_review: bool,
    /// Handed to the reviewer holding the case, re-sealed to the reviewer's key.
    pub reviewers: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderUse {
    pub provider: String,
    pub purposes: Vec<&'static str>,
}

/// One provider, as the router tries it.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderRoute {
    /// 1 = tried first.
    pub order: usize,
    /// The provider's configured name (an operator's label, not personal data).
    pub name: String,
    pub kind: &'static str,
    /// Host (and port if not the default) of the endpoint; never a path, query or credential.
    pub host: String,
    /// The built-in simulator of `--dev` (loopback; nothing leaves the machine).
    pub built_in: bool,
    pub calls: Vec<PurposeCall>,
    /// What it is sent, for the purposes that compare a face, when the applicant chose document
    /// review instead (`VerifyRequest.document_review`).
    pub document_review_calls: Vec<PurposeCall>,
}

/// What one provider is sent for one purpose.
#[derive(Debug, Clone, Serialize)]
pub struct PurposeCall {
    pub purpose: &'static str,
    /// The vendor action called; `None` when this provider is passed over for the purpose.
    pub action: Option<&'static str>,
    pub categories: Vec<Category>,
    /// Why nothing is sent, when nothing is.
    pub skipped_because: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoreMap {
    /// In-process: nothing survives a restart.
    Embedded,
    Redis {
        nodes: Vec<RedisNode>,
    },
    RedisCluster {
        nodes: Vec<RedisNode>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct RedisNode {
    /// Host and port, or `unix socket`; never a user name or password.
    pub host: String,
    /// `rediss://`: TLS to Redis.
    pub tls: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReviewMap {
    /// What a reviewer holding a case receives: the case's whole sealed material.
    pub receives: Vec<Category>,
    /// HPKE `info` of the re-sealing to the reviewer's registered X25519 key.
    pub sealed_with_info: String,
    /// Reviewers who must approve (2 = four-eyes); each of them sees the case.
    pub approvals_required: u8,
    pub lease_seconds: u64,
}

/// Face recognition as the law asks (PIPL Art. 29; the face-recognition measures Art. 6 and 10;
/// GB/T 35273-2020 §6.3), as the code enforces it.
#[derive(Debug, Clone, Serialize)]
pub struct BiometricsMap {
    /// Purposes whose face recognition needs the separate biometric consent (`Consent.biometric`).
    pub consent_required_for: Vec<&'static str>,
    /// The refusal of a face-recognition request without it (nothing stored or sent).
    pub missing_consent_refusal: &'static str,
    /// Purposes that offer the non-face alternative.
    pub document_review_for: Vec<&'static str>,
    /// Whether a face goes to any provider on the document-review path.
    pub document_review_sends_face: bool,
    /// The review reason reviewers see on that path.
    pub document_review_reason: &'static str,
    /// What a reviewer decides from on that path.
    pub document_review_material: Vec<Category>,
    /// Purposes that compare no face: a face sealed with one anyway is dropped unread (never checked,
    /// sent, fingerprinted, stored or shown to a reviewer), as on the document-review path.
    pub face_dropped_for: Vec<&'static str>,
    /// The envelope field the face is sealed under, with a data key of its own.
    pub face_sealed_as: &'static str,
    /// The envelope field of the identity material (another data key).
    pub identity_sealed_as: &'static str,
    /// The RPC by which an applicant withdraws consent (all, or only the biometric part).
    pub withdrawal_rpc: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct TelemetryMap {
    /// Where traces and metrics go (host and port), if anywhere. They carry no personal data.
    pub otlp_host: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Protection {
    pub transport: &'static str,
    pub client_sealing: HpkeSuite,
    /// HPKE `info` strings of what clients seal (`Verify`, `SubmitSupplement`).
    pub client_sealing_info: Vec<String>,
    pub at_rest: AtRest,
    pub key_rotation: KeyRotation,
    pub blind_index: &'static str,
}

/// An HPKE (RFC 9180) suite, mode Base, by its registry ids.
#[derive(Debug, Clone, Serialize)]
pub struct HpkeSuite {
    pub kem_id: u16,
    pub kem: &'static str,
    pub kdf_id: u16,
    pub kdf: &'static str,
    pub aead_id: u16,
    pub aead: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct AtRest {
    /// A fresh random data key per case, wrapped by a versioned key-encryption key (KEK).
    pub data_key_bits: usize,
    pub aead: &'static str,
    pub nonce_bits: usize,
    pub format_version: u8,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyRotation {
    /// The previous sealing key is accepted this long after a rotation.
    pub sealing_grace_seconds: i64,
    /// Data keys under an older KEK are re-wrapped to the current one this often.
    pub rewrap_interval_seconds: u64,
    /// KEKs below this version are retired (not loaded).
    pub kek_min_version: u32,
    /// How long a KEK wraps new data keys (`keys.kek_epoch_seconds`).
    pub kek_epoch_seconds: i64,
    /// How long after its epoch ends a KEK is destroyed: the pending-review TTL + one sweep interval
    /// + `keys.kek_destroy_grace_seconds` (from `Config::kek_schedule`).
    pub kek_destroyed_after_epoch_seconds: i64,
    /// Where the keys come from: `keys.dir`, dev keys, plus `keys.keks` / `keys.keks_file` if set.
    pub sources: Vec<&'static str>,
}

/// How long one kind of data lives.
#[derive(Debug, Clone, Serialize)]
pub struct Lifetime {
    /// Stable id of the row.
    pub data: &'static str,
    pub what: String,
    /// The longest it is kept, in seconds; `None`: not kept at all.
    pub seconds: Option<u64>,
    /// What ends it earlier, if anything.
    pub ends_earlier: &'static str,
    /// The setting or code constant the figure comes from.
    pub source: &'static str,
}

/// A configuration the gateway would refuse to start with.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("[[providers]] is missing (at least one); with --dev the built-in simulator stands in")]
    NoProviders,
    #[error("provider {provider}: {source}")]
    Endpoint {
        provider: String,
        source: http::EndpointError,
    },
    #[error("set store.url or store.cluster_nodes, not both")]
    StoreConflict,
    #[error("{0} is not a Redis URL")]
    StoreUrl(&'static str),
}

/// What the verify flow asks a provider of `kind` for `purpose` on the face path `face_use`: name and
/// ID number always, the face image only where that path sends one (`ProviderRequest` has no other
/// field), and the action the adapter picks for that request.
fn call(kind: ProviderKind, has_scene: bool, purpose: Purpose, face_use: &FaceUse) -> PurposeCall {
    let face = face_use.sends_face();
    let mut categories = vec![Category::Name, Category::IdNumber];
    if face {
        categories.push(Category::FaceImage);
    }
    let (action, skipped_because) = match (kind, face) {
        (ProviderKind::TencentFaceId, false) => (Some(tencent::ACTION_ID_CARD), None),
        (ProviderKind::TencentFaceId, true) => (Some(tencent::ACTION_FACE), None),
        (ProviderKind::AliyunCloudAuth, false) => (Some(aliyun::ACTION_ID2), None),
        (ProviderKind::AliyunCloudAuth, true) if has_scene => (Some(aliyun::ACTION_FACE), None),
        (ProviderKind::AliyunCloudAuth, true) => (None, Some("no scene_id: the face check is not configured here")),
    };
    if action.is_none() {
        categories.clear();
    }
    PurposeCall {
        purpose: purpose.as_str(),
        action,
        categories,
        skipped_because,
    }
}

impl DataMap {
    /// The map of what `serve` (with `--dev` if `dev`) would do with `config`.
    pub fn new(config: &Config, dev: bool) -> Result<Self, ReportError> {
        let providers = providers(config, dev)?;
        let store = store(config)?;
        let categories = Category::ALL
            .into_iter()
            .map(|category| CategoryUse {
                category,
                required_for: category.required_for(),
                required_for_anchor_review: category.is_review_supplement() && config.review.anchor_requires_supplement,
                providers: providers
                    .iter()
                    .filter_map(|p| {
                        let purposes: Vec<&'static str> = p
                            .calls
                            .iter()
                            .filter(|c| c.categories.contains(&category))
                            .map(|c| c.purpose)
                            .collect();
                        (!purposes.is_empty()).then(|| ProviderUse {
                            provider: p.name.clone(),
                            purposes,
                        })
                    })
                    .collect(),
                stored_while_pending_review: true,
                reviewers: true,
            })
            .collect();
        let review = ReviewMap {
            receives: Category::ALL.to_vec(),
            sealed_with_info: info(&sealing::Context::review("", "")),
            approvals_required: config.review.approvals_required,
            lease_seconds: config.review.lease_seconds.as_secs(),
        };
        let document_review_for: Vec<&'static str> = PURPOSES
            .into_iter()
            .filter(|p| document_path(*p).is_some())
            .map(Purpose::as_str)
            .collect();
        let biometrics = BiometricsMap {
            consent_required_for: biometric_consent_required_for(),
            missing_consent_refusal: Reason::BiometricConsentMissing.code(),
            document_review_sends_face: PURPOSES.into_iter().filter_map(document_path).any(|f| f.sends_face()),
            document_review_for,
            document_review_reason: ReviewReason::DocumentReviewRequested.code(),
            document_review_material: Category::ALL.into_iter().filter(|c| c.is_review_supplement()).collect(),
            face_dropped_for: PURPOSES
                .into_iter()
                .filter(|p| !reads_face(*p, &face_path(*p)))
                .map(Purpose::as_str)
                .collect(),
            face_sealed_as: material::PII_FIELD_FACE,
            identity_sealed_as: material::PII_FIELD_IDENTITY,
            withdrawal_rpc: "VerificationService.WithdrawConsent",
        };
        let telemetry = TelemetryMap {
            otlp_host: config
                .telemetry
                .otlp_endpoint
                .as_deref()
                .map(|e| url_host(e).unwrap_or_else(|| "(not a URL)".to_owned())),
        };
        let lifetimes = lifetimes(config, &store);
        Ok(Self {
            mode: if dev { "dev" } else { "production" },
            categories,
            providers,
            store,
            review,
            biometrics,
            telemetry,
            protection: protection(config, dev),
            lifetimes,
            retention_sweep_seconds: config.retention.sweep_interval_seconds.as_secs(),
        })
    }
}

fn providers(config: &Config, dev: bool) -> Result<Vec<ProviderRoute>, ReportError> {
    // `serve --dev` fills in the built-in simulator only when no provider is configured.
    if config.providers.is_empty() {
        if !dev {
            return Err(ReportError::NoProviders);
        }
        // The simulator speaks the Tencent protocol.
        let kind = ProviderKind::TencentFaceId;
        let (calls, document_review_calls) = calls(kind, false);
        return Ok(vec![ProviderRoute {
            order: 1,
            name: "simulator".to_owned(),
            kind: kind.as_str(),
            host: "127.0.0.1".to_owned(),
            built_in: true,
            calls,
            document_review_calls,
        }]);
    }
    config
        .providers
        .iter()
        .enumerate()
        .map(|(i, p)| route(i + 1, p))
        .collect()
}

fn route(order: usize, p: &ProviderConfig) -> Result<ProviderRoute, ReportError> {
    let (_, host) = http::endpoint(&p.endpoint).map_err(|source| ReportError::Endpoint {
        provider: p.name.clone(),
        source,
    })?;
    // Only the Alibaba adapter reads `scene_id`.
    let (calls, document_review_calls) = calls(p.kind, p.scene_id.is_some());
    Ok(ProviderRoute {
        order,
        name: p.name.clone(),
        kind: p.kind.as_str(),
        host,
        built_in: false,
        calls,
        document_review_calls,
    })
}

fn store(config: &Config) -> Result<StoreMap, ReportError> {
    let node = |key: &'static str, url: &str| {
        let parsed = reqwest::Url::parse(url).map_err(|_| ReportError::StoreUrl(key))?;
        Ok(RedisNode {
            host: host_port(&parsed).unwrap_or_else(|| "unix socket".to_owned()),
            tls: parsed.scheme() == "rediss",
        })
    };
    match (&config.store.url, &config.store.cluster_nodes) {
        (Some(_), Some(_)) => Err(ReportError::StoreConflict),
        (Some(url), None) => Ok(StoreMap::Redis {
            nodes: vec![node("store.url", url)?],
        }),
        (None, Some(nodes)) => Ok(StoreMap::RedisCluster {
            nodes: nodes
                .iter()
                .map(|n| node("store.cluster_nodes", n))
                .collect::<Result<_, _>>()?,
        }),
        (None, None) => Ok(StoreMap::Embedded),
    }
}

fn host_port(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str().filter(|h| !h.is_empty())?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

fn url_host(url: &str) -> Option<String> {
    reqwest::Url::parse(url).ok().as_ref().and_then(host_port)
}

fn info(context: &sealing::Context) -> String {
    String::from_utf8_lossy(context.info()).into_owned()
}

fn protection(config: &Config, dev: bool) -> Protection {
    let schedule = config.kek_schedule();
    use hpke::Kem as _;
    use hpke::aead::Aead as _;
    use hpke::kdf::Kdf as _;
    let (kem_id, kdf_id, aead_id) = (sealing::Kem::KEM_ID, sealing::Kdf::KDF_ID, sealing::Aead::AEAD_ID);
    let mut sources = vec![match (&config.keys.dir, dev) {
        (Some(_), _) => "keys.dir",
        (None, true) => "dev keys (serve --dev, in its --dev-dir)",
        (None, false) => "keys.dir (not set: serve refuses to start)",
    }];
    if config.keys.keks.is_some() {
        sources.push("keys.keks");
    }
    if config.keys.keks_file.is_some() {
        sources.push("keys.keks_file");
    }
    Protection {
        transport: "TLS 1.3 only (rustls); every client presents a certificate from server.client_ca",
        client_sealing: HpkeSuite {
            kem_id,
            kem: hpke_name(kem_id, &[(0x0020, "DHKEM(X25519, HKDF-SHA256)")]),
            kdf_id,
            kdf: hpke_name(kdf_id, &[(0x0001, "HKDF-SHA256")]),
            aead_id,
            aead: hpke_name(aead_id, &[(0x0003, "ChaCha20-Poly1305")]),
        },
        client_sealing_info: vec![
            info(&sealing::Context::identity(0, "", "")),
            info(&sealing::Context::supplement("", "")),
        ],
        at_rest: AtRest {
            data_key_bits: std::mem::size_of::<SecretKey32>() * 8,
            // `at_rest_names_the_envelope_aead` ties the name to the envelope's nonce length.
            aead: "XChaCha20-Poly1305",
            nonce_bits: envelope::NONCE_LEN * 8,
            format_version: envelope::FORMAT_VERSION,
        },
        key_rotation: KeyRotation {
            sealing_grace_seconds: config.keys.sealing_grace_seconds,
            rewrap_interval_seconds: config.keys.rewrap_interval_seconds.as_secs(),
            kek_min_version: config.keys.kek_min_version,
            kek_epoch_seconds: schedule.epoch_seconds,
            kek_destroyed_after_epoch_seconds: schedule
                .longest_retention_seconds
                .saturating_add(schedule.grace_seconds),
            sources,
        },
        blind_index: "keyed HMAC-SHA256, one derived key per use; the store never holds an ID number",
    }
}

/// The RFC 9180 registry name of an id the code uses (the id itself when the table lacks it).
fn hpke_name(id: u16, registry: &[(u16, &'static str)]) -> &'static str {
    registry
        .iter()
        .find(|(known, _)| *known == id)
        .map_or("(see the id)", |(_, name)| name)
}

fn lifetimes(config: &Config, store: &StoreMap) -> Vec<Lifetime> {
    let retention = &config.retention;
    let limits = &config.limits;
    let embedded = matches!(store, StoreMap::Embedded);
    // How long a rate-window counter outlives its window start: the Redis key's TTL, or the embedded
    // store's keep time plus the sweep that drops it.
    let counter = |window: u64, limit: u64| {
        (limit > 0).then(|| {
            if embedded {
                memory::WINDOW_KEEP_SECONDS.unsigned_abs() + retention.sweep_interval_seconds.as_secs()
            } else {
                window + redis_store::WINDOW_MARGIN_SECONDS
            }
        })
    };
    let call = config.server.verify_deadline_ms;
    vec![
        Lifetime {
            data: "plaintext",
            what: "name, ID number, phone and images in the gateway's memory (wiped on drop); a case a \
                   provider decides keeps nothing else"
                .to_owned(),
            seconds: Some(call.as_secs() + u64::from(call.subsec_nanos() > 0)),
            ends_earlier: "the Verify call ends",
            source: "server.verify_deadline_ms",
        },
        Lifetime {
            data: "pending_review_material",
            what: format!(
                "sealed identity material (name, ID number, phone, ID card images; envelope field `{}`) of a \
                 case waiting for manual review",
                material::PII_FIELD_IDENTITY
            ),
            seconds: Some(retention.pending_review_ttl_seconds.as_secs()),
            ends_earlier: "the review decision or an erasure (the data key is destroyed)",
            source: "retention.pending_review_ttl_seconds",
        },
        Lifetime {
            data: "pending_review_face",
            what: format!(
                "sealed face of a case waiting for manual review, under a data key of its own (envelope field `{}`)",
                material::PII_FIELD_FACE
            ),
            seconds: Some(retention.pending_review_ttl_seconds.as_secs()),
            ends_earlier: "the last review decision the case needs, a withdrawal of the biometric consent \
                           (the case goes on to document review) or an erasure (its data key is destroyed)",
            source: "retention.pending_review_ttl_seconds",
        },
        Lifetime {
            data: "case_record",
            what: "case record: ids, purpose, status, times, provider, reviewers, and the request \
                   fingerprint (keyed HMAC of the sealed content, for idempotency); no personal data"
                .to_owned(),
            seconds: Some(retention.case_record_ttl_seconds.as_secs()),
            ends_earlier: "",
            source: "retention.case_record_ttl_seconds",
        },
        Lifetime {
            data: "audit_event",
            what: "audit events: who claimed, viewed, decided, erased what and when; no personal data".to_owned(),
            seconds: Some(retention.audit_ttl_seconds.as_secs()),
            ends_earlier: "",
            source: "retention.audit_ttl_seconds",
        },
        Lifetime {
            data: "rate_limit_account",
            what: format!(
                "Verify count per account id, window {ACCOUNT_WINDOW_SECONDS} s, limit {}",
                limits.verifications_per_account_per_hour
            ),
            seconds: counter(ACCOUNT_WINDOW_SECONDS, limits.verifications_per_account_per_hour),
            ends_earlier: "",
            source: "limits.verifications_per_account_per_hour",
        },
        Lifetime {
            data: "rate_limit_id_number",
            what: format!(
                "Verify count per blind-index tag of the ID number, window {ID_WINDOW_SECONDS} s, limit {}",
                limits.verifications_per_id_per_day
            ),
            seconds: counter(ID_WINDOW_SECONDS, limits.verifications_per_id_per_day),
            ends_earlier: "",
            source: "limits.verifications_per_id_per_day",
        },
        Lifetime {
            data: "anchor_binding",
            what: format!(
                "anchor accounts bound to a blind-index tag of the ID number (at most {})",
                limits.max_anchor_accounts_per_id
            ),
            seconds: Some(limits.anchor_binding_ttl_seconds.as_secs()),
            ends_earlier: "",
            source: "limits.anchor_binding_ttl_seconds",
        },
    ]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const PROVIDER_SECRET: &str = "tc-secret-do-not-print-7f3a";
    const ALIYUN_SECRET: &str = "ali-secret-do-not-print-91c2";
    const REDIS_PASSWORD: &str = "redis-pass-do-not-print-55e1";
    const KEKS: &str = "kek-a:1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn tencent(name: &str, endpoint: &str) -> ProviderConfig {
        toml::from_str(&format!(
            "name = \"{name}\"\nkind = \"tencent-faceid\"\nendpoint = \"{endpoint}\"\nsecret_id = \"AKIDsecretid\"\nsecret_key = \"{PROVIDER_SECRET}\""
        ))
        .expect("provider")
    }

    fn aliyun(name: &str, scene: Option<&str>) -> ProviderConfig {
        let mut p: ProviderConfig = toml::from_str(&format!(
            "name = \"{name}\"\nkind = \"aliyun-cloudauth\"\nendpoint = \"https://cloudauth.aliyuncs.com\"\nsecret_id = \"LTAIsecretid\"\nsecret_key = \"{ALIYUN_SECRET}\""
        ))
        .expect("provider");
        p.scene_id = scene.map(str::to_owned);
        p
    }

    fn config() -> Config {
        Config {
            providers: vec![tencent("tencent-primary", "https://faceid.tencentcloudapi.com")],
            ..Config::default()
        }
    }

    fn row<'a>(map: &'a DataMap, data: &str) -> &'a Lifetime {
        map.lifetimes.iter().find(|l| l.data == data).expect("row")
    }

    #[test]
    fn faces_have_their_own_consent_alternative_key_and_lifetime() {
        let map = DataMap::new(&config(), false).unwrap();
        let b = &map.biometrics;
        assert_eq!(b.consent_required_for, [Purpose::Anchor.as_str()]);
        assert_eq!(b.missing_consent_refusal, "BIOMETRIC_CONSENT_MISSING");
        assert_eq!(b.document_review_for, [Purpose::Anchor.as_str()]);
        assert_eq!(
            b.face_dropped_for,
            [Purpose::ShortVideo.as_str(), Purpose::Radio.as_str()]
        );
        assert!(!b.document_review_sends_face);
        assert_eq!(b.document_review_reason, "DOCUMENT_REVIEW_REQUESTED");
        assert_eq!(
            b.document_review_material,
            [Category::IdCardFront, Category::IdCardBack, Category::HandheldIdPhoto]
        );
        // On the document path the provider gets name and ID number by the two-factor action; on
        // the normal anchor path, the face too.
        let p = &map.providers[0];
        assert_eq!(p.document_review_calls.len(), 1);
        assert_eq!(p.document_review_calls[0].action, Some(tencent::ACTION_ID_CARD));
        assert_eq!(
            p.document_review_calls[0].categories,
            [Category::Name, Category::IdNumber]
        );
        let anchor = p.calls.iter().find(|c| c.purpose == "anchor").unwrap();
        assert_eq!(anchor.action, Some(tencent::ACTION_FACE));
        assert!(anchor.categories.contains(&Category::FaceImage));
        // Kept apart under its own field (and data key), with its own lifetime row.
        assert_eq!(
            (b.face_sealed_as, b.identity_sealed_as),
            (material::PII_FIELD_FACE, material::PII_FIELD_IDENTITY)
        );
        assert_ne!(b.face_sealed_as, b.identity_sealed_as);
        let face = row(&map, "pending_review_face");
        assert_eq!(face.seconds, row(&map, "pending_review_material").seconds);
        assert!(face.ends_earlier.contains("biometric consent"));
        let mut shorter = config();
        shorter.retention.pending_review_ttl_seconds = Duration::from_secs(1_800);
        let shorter = DataMap::new(&shorter, false).unwrap();
        assert_eq!(row(&shorter, "pending_review_face").seconds, Some(1_800));
        let md = map.to_markdown();
        for text in [
            "## Faces",
            "BIOMETRIC_CONSENT_MISSING",
            "DOCUMENT_REVIEW_REQUESTED",
            "`face`",
            "WithdrawConsent",
            "Not compared, not kept (short_video, radio)",
        ] {
            assert!(md.contains(text), "{text} missing from the Markdown");
        }
        let json = serde_json::to_string(&map).unwrap();
        assert!(json.contains("\"document_review_calls\"") && json.contains("\"face_sealed_as\":\"face\""));
    }

    #[test]
    fn retention_settings_change_the_report() {
        let before = DataMap::new(&config(), false).unwrap();
        let mut changed = config();
        changed.retention.pending_review_ttl_seconds = Duration::from_secs(7_200);
        changed.retention.case_record_ttl_seconds = Duration::from_secs(30 * 86_400);
        changed.retention.audit_ttl_seconds = Duration::from_secs(400 * 86_400);
        changed.limits.verifications_per_account_per_hour = 0;
        let after = DataMap::new(&changed, false).unwrap();
        for (data, was, now) in [
            ("pending_review_material", Some(259_200), Some(7_200)),
            ("case_record", Some(90 * 86_400), Some(30 * 86_400)),
            ("audit_event", Some(3 * 365 * 86_400), Some(400 * 86_400)),
            ("rate_limit_account", Some(86_400 + 30), None),
        ] {
            assert_eq!(row(&before, data).seconds, was, "{data} before");
            assert_eq!(row(&after, data).seconds, now, "{data} after");
        }
        assert!(after.to_markdown().contains("| 7200 s (2 h) |"));
        assert!(!before.to_markdown().contains("7200 s"));
    }

    #[test]
    fn rate_windows_follow_the_verify_constants_and_the_store() {
        let embedded = DataMap::new(&config(), false).unwrap();
        let keep = memory::WINDOW_KEEP_SECONDS.unsigned_abs() + config().retention.sweep_interval_seconds.as_secs();
        assert_eq!(row(&embedded, "rate_limit_id_number").seconds, Some(keep));
        let mut on_redis = config();
        on_redis.store.url = Some("redis://cache.internal:6379/0".into());
        let redis = DataMap::new(&on_redis, false).unwrap();
        assert_eq!(
            row(&redis, "rate_limit_id_number").seconds,
            Some(ID_WINDOW_SECONDS + redis_store::WINDOW_MARGIN_SECONDS)
        );
        assert_eq!(
            row(&redis, "rate_limit_account").seconds,
            Some(ACCOUNT_WINDOW_SECONDS + redis_store::WINDOW_MARGIN_SECONDS)
        );
    }

    #[test]
    fn providers_decide_where_data_goes() {
        let one = DataMap::new(&config(), false).unwrap();
        let face = |map: &DataMap| map.categories[3].providers.clone();
        assert_eq!(one.categories[3].category, Category::FaceImage);
        let only: Vec<_> = face(&one).into_iter().map(|p| (p.provider, p.purposes)).collect();
        assert_eq!(
            only,
            vec![("tencent-primary".to_owned(), vec!["anchor"])],
            "the face: anchor only"
        );
        let names = &one.categories[0].providers[0];
        assert_eq!(names.purposes, vec!["short_video", "radio", "anchor"]);
        for never in [
            Category::Phone,
            Category::IdCardFront,
            Category::IdCardBack,
            Category::HandheldIdPhoto,
        ] {
            let use_ = one.categories.iter().find(|c| c.category == never).unwrap();
            assert!(use_.providers.is_empty(), "{never:?} is never sent to a provider");
        }
        assert_eq!(one.providers[0].host, "faceid.tencentcloudapi.com");

        // Adding providers: an Alibaba account without a face scene gets name and ID only.
        let mut more = config();
        more.providers.push(aliyun("ali-backup", None));
        more.providers.push(tencent(
            "tencent-dr",
            "https://faceid.ap-shanghai.tencentcloudapi.com:8443",
        ));
        let map = DataMap::new(&more, false).unwrap();
        let hosts: Vec<_> = map.providers.iter().map(|p| (p.order, p.host.as_str())).collect();
        assert_eq!(
            hosts,
            vec![
                (1, "faceid.tencentcloudapi.com"),
                (2, "cloudauth.aliyuncs.com"),
                (3, "faceid.ap-shanghai.tencentcloudapi.com:8443")
            ]
        );
        let face_to: Vec<_> = face(&map).into_iter().map(|p| p.provider).collect();
        assert_eq!(face_to, vec!["tencent-primary", "tencent-dr"]);
        let ali = &map.providers[1].calls;
        assert_eq!(ali[0].action, Some(aliyun::ACTION_ID2));
        assert_eq!((ali[2].action, ali[2].categories.len()), (None, 0));
        let markdown = map.to_markdown();
        assert!(markdown.contains("cloudauth.aliyuncs.com") && markdown.contains("tencent-dr (anchor)"));

        // With a scene the Alibaba account compares faces too.
        more.providers[1] = aliyun("ali-backup", Some("1000000"));
        let map = DataMap::new(&more, false).unwrap();
        assert_eq!(map.providers[1].calls[2].action, Some(aliyun::ACTION_FACE));
        assert_eq!(face(&map).len(), 3);

        // Removing every provider: refused as `serve` refuses, or the built-in simulator with --dev.
        assert!(matches!(
            DataMap::new(&Config::default(), false),
            Err(ReportError::NoProviders)
        ));
        let dev = DataMap::new(&Config::default(), true).unwrap();
        assert!(dev.providers[0].built_in && dev.providers[0].host == "127.0.0.1");
        assert!(!dev.to_markdown().contains("tencentcloudapi"));
    }

    #[test]
    fn the_report_never_contains_a_secret() {
        let mut config = config();
        config.providers.push(aliyun("ali", Some("1000000")));
        config.store.cluster_nodes = Some(vec![
            format!("rediss://idgate:{REDIS_PASSWORD}@redis-a.internal:7000"),
            format!("redis://:{REDIS_PASSWORD}@redis-b.internal:7001/0"),
        ]);
        config.keys.keks = Some(crate::config::Secret::new(KEKS.to_owned()));
        config.telemetry.otlp_endpoint = Some(format!("http://otel:{REDIS_PASSWORD}@collector:4317/v1?token=x"));
        let map = DataMap::new(&config, false).unwrap();
        let json = serde_json::to_string(&map).unwrap();
        let markdown = map.to_markdown();
        for text in [&json, &markdown, &format!("{map:?}")] {
            for secret in [
                PROVIDER_SECRET,
                ALIYUN_SECRET,
                REDIS_PASSWORD,
                KEKS,
                "AKIDsecretid",
                "LTAIsecretid",
            ] {
                assert!(!text.contains(secret), "{secret} leaked");
            }
            assert!(
                !text.contains("token=") && !text.contains("idgate:"),
                "no URL parts beyond the host"
            );
        }
        assert!(markdown.contains("redis-a.internal:7000 (TLS), redis-b.internal:7001"));
        assert!(markdown.contains("to collector:4317"));
        // An endpoint the gateway would refuse (user info in it) is refused, without echoing it.
        config.providers[0].endpoint = format!("https://user:{PROVIDER_SECRET}@faceid.tencentcloudapi.com");
        let error = DataMap::new(&config, false).unwrap_err().to_string();
        assert!(!error.contains(PROVIDER_SECRET), "{error}");
        config.providers.truncate(0);
        config.store.url = Some(format!("redis://:{REDIS_PASSWORD}@x:1"));
        let error = DataMap::new(&config, true).unwrap_err().to_string();
        assert!(!error.contains(REDIS_PASSWORD) && error.contains("not both"), "{error}");
    }

    #[test]
    fn json_and_markdown_agree_on_the_figures() {
        let mut config = config();
        config.retention.pending_review_ttl_seconds = Duration::from_secs(5_400);
        config.review.lease_seconds = Duration::from_secs(420);
        config.keys.rewrap_interval_seconds = Duration::from_secs(123);
        config.keys.kek_epoch_seconds = Duration::from_secs(7_200);
        config.keys.kek_destroy_grace_seconds = Duration::from_secs(60);
        config.server.verify_deadline_ms = Duration::from_millis(7_500);
        let map = DataMap::new(&config, false).unwrap();
        let json: serde_json::Value = serde_json::to_value(&map).unwrap();
        let markdown = map.to_markdown();
        let rows = json["lifetimes"].as_array().unwrap();
        assert_eq!(rows.len(), map.lifetimes.len());
        for row in rows {
            let source = row["source"].as_str().unwrap();
            let kept = row["seconds"]
                .as_u64()
                .map_or("not kept (limit off)".to_owned(), duration);
            assert!(markdown.contains(&format!("| {kept} |")), "{source}: {kept}");
            assert!(markdown.contains(&format!("`{source}`")), "{source}");
        }
        assert_eq!(row(&map, "plaintext").seconds, Some(8), "7.5 s rounds up");
        config.retention.sweep_interval_seconds = Duration::from_secs(45);
        let swept = DataMap::new(&config, false).unwrap();
        assert_eq!(serde_json::to_value(&swept).unwrap()["retention_sweep_seconds"], 45);
        assert!(swept.to_markdown().contains("Retention runs every 45 s"));
        let protection = &json["protection"];
        for (figure, shown) in [
            (&protection["key_rotation"]["rewrap_interval_seconds"], "every 123 s"),
            (
                &protection["key_rotation"]["kek_epoch_seconds"],
                "new data keys for 7200 s (2 h)",
            ),
            (&json["review"]["lease_seconds"], "lease 420 s (7 min)"),
            (&protection["at_rest"]["nonce_bits"], "192-bit random nonces"),
            (&protection["at_rest"]["data_key_bits"], "256-bit data key"),
            (&protection["client_sealing"]["kem_id"], "(0x0020)"),
            (&protection["client_sealing"]["aead_id"], "(0x0003)"),
        ] {
            assert!(figure.is_u64(), "{figure}");
            assert!(markdown.contains(shown), "{shown}");
        }
        assert_eq!(protection["client_sealing"]["kem_id"], 0x0020);
        assert_eq!(protection["client_sealing"]["aead_id"], 0x0003);
        assert_eq!(json["review"]["lease_seconds"], 420);
        assert_eq!(protection["key_rotation"]["rewrap_interval_seconds"], 123);
        for provider in json["providers"].as_array().unwrap() {
            assert!(markdown.contains(provider["host"].as_str().unwrap()));
        }
        assert_eq!(protection["client_sealing_info"][0], "idgate.v1.identity");
        assert_eq!(json["review"]["sealed_with_info"], "idgate.v1.review");
    }

    #[test]
    fn at_rest_names_the_envelope_aead() {
        // XChaCha20-Poly1305 is the ChaCha20-Poly1305 variant with 192-bit nonces.
        assert_eq!(envelope::NONCE_LEN, chacha20poly1305::XNonce::default().len());
        let map = DataMap::new(&config(), false).unwrap();
        assert_eq!(map.protection.at_rest.aead, "XChaCha20-Poly1305");
    }

    #[test]
    fn durations_read_in_whole_units() {
        assert_eq!(duration(259_200), "259200 s (3 d)");
        assert_eq!(duration(7_200), "7200 s (2 h)");
        assert_eq!(duration(300), "300 s (5 min)");
        assert_eq!(duration(90), "90 s");
        assert_eq!(duration(0), "0 s");
    }
}
