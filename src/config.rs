//! The typed configuration, layered: defaults, then a TOML file, then `IDGATE_<SECTION>__<KEY>`
//! environment variables (docs/api.md §6). Secrets may come from files (`secret_key_file`).
//!
//! Nothing here prints a secret: secret values are [`Secret`], whose `Debug` is `***SECRET***` and
//! whose refusal of a value of another type names the key and the type, never the value; a TOML
//! syntax error is reported without the line it quotes. Secret files must be their owner's only
//! ([`ensure_private`]). Values that would break the gateway (a 0 deadline, TTL or limit, a case
//! record outlived by its sealed data) are refused at load, each by key with the rule it breaks.
//!
//! Configuration holds plain settings: durations are [`Duration`]s (the key names their unit, `_ms`
//! or `_seconds`, and the file holds a whole number of it), and nothing here builds another module's
//! type — the gateway turns `[server]` into the transport's limits, `providers::setup` turns
//! `[providers.breaker]` into a breaker's thresholds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};

use crate::decision::Thresholds;

/// A secret string from configuration. Wiped on drop, never printed — also not in the error that
/// refuses a value of another type (a number or a boolean): that error names the key and the type
/// expected, never the value (see [`SecretText`]).
#[derive(Clone, Default, Serialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(transparent)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_string(SecretText)
    }
}

/// Reads a [`Secret`]: a string, and nothing else. serde's default refusals quote the value they
/// refuse (figment prints `found unsigned int `12345678``, into logs); these name only its type.
struct SecretText;

impl SecretText {
    fn refuse<E: serde::de::Error>(&self, kind: &'static str) -> Result<Secret, E> {
        Err(E::invalid_type(serde::de::Unexpected::Other(kind), self))
    }
}

impl serde::de::Visitor<'_> for SecretText {
    type Value = Secret;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string (a secret: quote it; its value is not shown)")
    }
    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Secret, E> {
        Ok(Secret(value.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Secret, E> {
        Ok(Secret(value))
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
        self.refuse("a boolean")
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
        self.refuse("a number")
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
        self.refuse("a number")
    }
    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<Secret, E> {
        self.refuse("a number")
    }
    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<Secret, E> {
        self.refuse("a number")
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
        self.refuse("a number")
    }
    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        self.refuse("bytes")
    }
}

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***SECRET***")
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub keys: KeysConfig,
    pub store: StoreConfig,
    pub retention: RetentionConfig,
    pub review: ReviewConfig,
    pub decision: Thresholds,
    pub providers: Vec<ProviderConfig>,
    pub limits: LimitsConfig,
    pub telemetry: TelemetryConfig,
}

/// A duration key whose name ends in `_ms`: a whole number of milliseconds in the file and the
/// environment, a [`Duration`] in the typed configuration.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

/// A duration key whose name ends in `_seconds`: a whole number of seconds in the file and the
/// environment, a [`Duration`] in the typed configuration.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

/// Abuse limits. Counters are keyed by account id and by a blind index of the ID number (never the
/// number itself) and expire with their window.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// `Verify` calls one account may make per hour (0 = no limit).
    pub verifications_per_account_per_hour: u64,
    /// `Verify` calls for one ID number per day, across accounts (0 = no limit).
    pub verifications_per_id_per_day: u64,
    /// How many different accounts one ID number may verify as ANCHOR.
    pub max_anchor_accounts_per_id: u32,
    /// How long an ID number's anchor accounts are remembered after the last one was added.
    #[serde(with = "seconds")]
    pub anchor_binding_ttl_seconds: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            verifications_per_account_per_hour: 20,
            verifications_per_id_per_day: 10,
            max_anchor_accounts_per_id: 1,
            anchor_binding_ttl_seconds: Duration::from_secs(365 * 86_400),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on, e.g. `0.0.0.0:50051`.
    pub listen: Option<SocketAddr>,
    /// Server certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PKCS#8 PEM).
    pub tls_key: Option<PathBuf>,
    /// CA that issues client certificates (PEM).
    pub client_ca: Option<PathBuf>,
    /// Revoked client certificates: serials and SHA-256 fingerprints, one a line (see
    /// `transport::revocation`). Re-read when it changes and on SIGHUP.
    pub client_deny_list: Option<PathBuf>,
    /// How often the deny list is looked at for changes.
    #[serde(with = "millis")]
    pub client_deny_list_poll_ms: Duration,
    #[serde(with = "millis")]
    pub handshake_timeout_ms: Duration,
    /// Longest a `Verify` call may take when the client sets no shorter deadline.
    #[serde(with = "millis")]
    pub verify_deadline_ms: Duration,
    /// The deadline of any call that sets none, and the longest any call may take.
    #[serde(with = "millis")]
    pub call_deadline_ms: Duration,
    /// Kept back from a `Verify` deadline to decide and store: provider calls get the rest.
    #[serde(with = "millis")]
    pub decide_reserve_ms: Duration,
    /// A `Verify` whose deadline leaves providers less than this (after `decide_reserve_ms`) starts
    /// nothing and is answered `DEADLINE_EXCEEDED` / `DEADLINE_TOO_SHORT` (0: any deadline starts).
    #[serde(with = "millis")]
    pub min_provider_budget_ms: Duration,
    /// How long shutdown waits for in-flight calls.
    #[serde(with = "millis")]
    pub shutdown_grace_ms: Duration,
    /// `Verify` calls in flight at once; past it, calls are shed with `RESOURCE_EXHAUSTED` (0: no limit).
    pub max_in_flight_verify: usize,
    /// `SubmitSupplement` calls in flight at once (each opens up to three 4 MiB images); past it,
    /// calls are shed like `Verify`'s, with slots of their own (0: no limit).
    pub max_in_flight_supplement: usize,
    /// The retry delay a shed call is told (`google.rpc.RetryInfo`) when shedding starts.
    #[serde(with = "millis")]
    pub shed_retry_after_ms: Duration,
    /// The longest retry delay it is raised to while shedding lasts (steering to about one shed call
    /// for every two admitted). It may exceed a caller's deadline: under that much overload, such a
    /// caller gives up rather than waits. At most [`MAX_SHED_RETRY_AFTER_MS`].
    #[serde(with = "millis")]
    pub shed_retry_after_max_ms: Duration,
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// HTTP/2 initial window of each stream: request body bytes a client may send unread.
    pub http2_stream_window_bytes: u32,
    /// HTTP/2 window of a whole connection.
    pub http2_connection_window_bytes: u32,
    /// Largest request of the verification service, in bytes: `Verify`'s limit, and a cap on the
    /// service's other methods (a supplement takes at most three images' worth, the others 128 KiB).
    pub max_verification_message_bytes: usize,
    /// Largest request of the review and audit services, in bytes: a cap on their methods' 128 KiB.
    pub max_review_message_bytes: usize,
    /// How often readiness (the store answers) is probed for `grpc.health.v1`.
    #[serde(with = "millis")]
    pub health_probe_interval_ms: Duration,
    /// A readiness probe that takes longer counts as a failure.
    #[serde(with = "millis")]
    pub health_probe_timeout_ms: Duration,
}

/// The longest retry delay a shed call may be told (5 minutes): longer is no longer "retry later".
pub const MAX_SHED_RETRY_AFTER_MS: u64 = 300_000;

/// The defaults are the transport's and the router's own (`transport::server::Limits::default()`,
/// `providers::router::DEFAULT_MIN_PROVIDER_BUDGET`), written out here so that configuration holds
/// plain settings; the gateway converts them, and its tests check the two agree.
impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: None,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            client_deny_list: None,
            client_deny_list_poll_ms: Duration::from_millis(5_000),
            handshake_timeout_ms: Duration::from_millis(5_000),
            verify_deadline_ms: Duration::from_millis(10_000),
            call_deadline_ms: Duration::from_millis(15_000),
            decide_reserve_ms: Duration::from_millis(100),
            min_provider_budget_ms: Duration::from_millis(200),
            shutdown_grace_ms: Duration::from_millis(15_000),
            max_in_flight_verify: 32,
            max_in_flight_supplement: 8,
            shed_retry_after_ms: Duration::from_millis(1_000),
            shed_retry_after_max_ms: Duration::from_millis(30_000),
            max_concurrent_streams: 256,
            http2_stream_window_bytes: 1024 * 1024,
            http2_connection_window_bytes: 1024 * 1024,
            max_verification_message_bytes: 18 * 1024 * 1024,
            max_review_message_bytes: 1024 * 1024,
            health_probe_interval_ms: Duration::from_millis(2_000),
            health_probe_timeout_ms: Duration::from_millis(1_000),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Directory of sealing keys and key-encryption keys (see `idgate keys`).
    pub dir: Option<PathBuf>,
    /// How long the previous sealing key is still accepted after a rotation.
    pub sealing_grace_seconds: i64,
    /// KEKs with a lower version are retired (not loaded). Raise it only after the re-wrap pass has
    /// moved every pending record to a newer KEK.
    pub kek_min_version: u32,
    /// How often the background pass re-wraps data keys still under an older KEK.
    #[serde(with = "seconds")]
    pub rewrap_interval_seconds: Duration,
    /// KEKs given outside key files, e.g. from a secret manager through the environment
    /// (`IDGATE_KEYS__KEKS`): entries `<id>:<version>:<64 hex>` separated by commas.
    pub keks: Option<Secret>,
    /// The same list read from a file (`IDGATE_KEYS__KEKS_FILE`, e.g. a mounted secret).
    pub keks_file: Option<PathBuf>,
    /// How long a new KEK wraps data keys (its epoch). Past it the KEK only opens; a gateway with no
    /// KEK in its epoch refuses to seal (`idgate keys maintain` rotates ahead of time). Default 7 days.
    #[serde(with = "seconds")]
    pub kek_epoch_seconds: Duration,
    /// Added to a KEK's destruction date (end of epoch + longest retention) for clock skew and late
    /// sweeps. Default 1 day.
    #[serde(with = "seconds")]
    pub kek_destroy_grace_seconds: Duration,
}

impl KeysConfig {
    /// The KEK list from `keks` or `keks_file` (not both); `None` when neither is set.
    pub fn kek_list(&self) -> Result<Option<Secret>, ConfigError> {
        match (&self.keks, &self.keks_file) {
            (Some(_), Some(_)) => Err(ConfigError::Invalid("set keys.keks or keys.keks_file, not both".into())),
            (Some(list), None) => Ok(Some(list.clone())),
            (None, Some(path)) => {
                let text = read_secret_file("keys.keks_file", path)?;
                Ok(Some(Secret::new(text.to_string())))
            }
            (None, None) => Ok(None),
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            dir: None,
            sealing_grace_seconds: 86_400,
            kek_min_version: 0,
            rewrap_interval_seconds: Duration::from_secs(300),
            keks: None,
            keks_file: None,
            kek_epoch_seconds: Duration::from_secs(7 * 86_400),
            kek_destroy_grace_seconds: Duration::from_secs(86_400),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Standalone Redis: `redis://host:port[/db]` or `rediss://…`.
    pub url: Option<String>,
    /// Redis Cluster seed nodes. In the environment: comma-separated.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub cluster_nodes: Option<Vec<String>>,
    /// The Redis ACL user (standalone and Cluster); absent: `default`.
    pub username: Option<String>,
    /// The ACL user's password (a secret; `IDGATE_STORE__PASSWORD`). Replaces one in the URLs.
    pub password: Option<Secret>,
    /// The same password read from a file (`IDGATE_STORE__PASSWORD_FILE`; trailing newline trimmed).
    pub password_file: Option<PathBuf>,
    /// PEM CA certificates that sign Redis's certificate, for `rediss://`; absent: the system's roots.
    pub tls_ca_file: Option<PathBuf>,
    /// A PEM client certificate for Redis servers that require one (with `tls_key_file`).
    pub tls_cert_file: Option<PathBuf>,
    /// The client certificate's PEM private key (mode 0600).
    pub tls_key_file: Option<PathBuf>,
}

impl StoreConfig {
    /// The Redis password from `password` or `password_file` (not both); `None` when neither is set.
    pub fn resolve_password(&self) -> Result<Option<Secret>, ConfigError> {
        match (&self.password, &self.password_file) {
            (Some(_), Some(_)) => Err(ConfigError::Invalid(
                "set store.password or store.password_file, not both".into(),
            )),
            (Some(password), None) => Ok(Some(password.clone())),
            (None, Some(path)) => {
                let text = read_secret_file("store.password_file", path)?;
                Ok(Some(Secret::new(text.trim_end_matches(['\r', '\n']).to_owned())))
            }
            (None, None) => Ok(None),
        }
    }

    /// Whether any TLS file is set (then every Redis URL must be `rediss://`).
    pub fn has_tls_files(&self) -> bool {
        self.tls_ca_file.is_some() || self.tls_cert_file.is_some() || self.tls_key_file.is_some()
    }
}

fn list_or_comma_separated<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::List(list)) => Some(list),
        Some(Either::Text(text)) => Some(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
    })
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// How long a case pending review keeps its (sealed) personal data. Default 72 h.
    #[serde(with = "seconds")]
    pub pending_review_ttl_seconds: Duration,
    /// How long a finished case record (no personal data) is kept. Default 90 days.
    #[serde(with = "seconds")]
    pub case_record_ttl_seconds: Duration,
    /// How often retention runs.
    #[serde(with = "seconds")]
    pub sweep_interval_seconds: Duration,
    /// How long audit events (no personal data) are kept. Default 3 years.
    #[serde(with = "seconds")]
    pub audit_ttl_seconds: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            pending_review_ttl_seconds: Duration::from_secs(259_200),
            case_record_ttl_seconds: Duration::from_secs(90 * 86_400),
            sweep_interval_seconds: Duration::from_secs(30),
            audit_ttl_seconds: Duration::from_secs(3 * 365 * 86_400),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    #[serde(with = "seconds")]
    pub lease_seconds: Duration,
    /// 1, or 2 for four-eyes.
    pub approvals_required: u8,
    /// An ANCHOR case is offered to reviewers only once its documents (ID card front, back,
    /// handheld-ID photo; sealed in the request or supplemented) are all in. A document-review case
    /// always waits for them, whatever this says.
    pub anchor_requires_supplement: bool,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            lease_seconds: Duration::from_secs(300),
            approvals_required: 1,
            anchor_requires_supplement: true,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP gRPC endpoint; traces and metrics are exported when set.
    pub otlp_endpoint: Option<String>,
    /// `text` (default) or `json` log lines.
    pub log_format: Option<LogFormat>,
}

/// Declares a configuration value chosen from a fixed list: an enum whose variants serialize to
/// their strings (serde `rename`), `ALL`, `as_str()`, and a refusal at load that names the value and
/// the supported ones (`<key> "x" is not supported (supported: a, b)`).
macro_rules! config_choice {
    (
        $(#[$meta:meta])*
        $name:ident as $key:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String")]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The configuration string.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),*
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(text: String) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text).ok_or_else(|| {
                    let supported: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!(
                        concat!($key, " {:?} is not supported (supported: {})"),
                        text,
                        supported.join(", ")
                    )
                })
            }
        }
    };
}

config_choice! {
    /// The format of log lines (`telemetry.log_format`).
    LogFormat as "log_format" {
        /// Human-readable lines (the default).
        Text => "text",
        /// One JSON object a line.
        Json => "json",
    }
}

config_choice! {
    /// Which provider protocol a `[[providers]]` entry speaks (`kind`).
    ProviderKind as "kind" {
        /// Tencent Cloud FaceID (API 3.0, TC3-HMAC-SHA256).
        TencentFaceId => "tencent-faceid",
        /// Alibaba Cloud ID Verification (CloudAuth, ACS3-HMAC-SHA256).
        AliyunCloudAuth => "aliyun-cloudauth",
    }
}

/// One identity provider, tried in the order listed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    /// `tencent-faceid` or `aliyun-cloudauth`; any other value is refused at load.
    pub kind: ProviderKind,
    pub endpoint: String,
    pub secret_id: String,
    #[serde(default)]
    pub secret_key: Option<Secret>,
    #[serde(default)]
    pub secret_key_file: Option<PathBuf>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default = "default_provider_timeout")]
    #[serde(with = "millis")]
    pub timeout_ms: Duration,
    #[serde(default = "default_provider_concurrency")]
    pub max_concurrency: usize,
    /// Alibaba Cloud ID Verification scene (`SceneId`); unused by Tencent.
    #[serde(default)]
    pub scene_id: Option<String>,
    /// How long the provider is left alone after a rate-limit answer that names no time.
    #[serde(default = "default_rate_limit_backoff")]
    #[serde(with = "millis")]
    pub rate_limit_backoff_ms: Duration,
    /// Circuit-breaker thresholds (`[providers.breaker]` after the provider's `[[providers]]`).
    #[serde(default)]
    pub breaker: BreakerSettings,
}

/// Thresholds of one provider's circuit breaker (see `providers::breaker` for what each does).
/// Defaults suit a provider with a 1.5 s timeout and a few calls a second.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    /// Calls remembered in the sliding window (count-based).
    pub window: usize,
    /// Rates are only judged once the window holds this many calls.
    pub min_calls: usize,
    /// Opens when failed calls / calls in the window reach this (0 < rate <= 1).
    pub failure_rate: f64,
    /// Opens after this many failures in a row, whatever the window says (0 = off).
    pub consecutive_failures: u32,
    /// A successful call that took at least this long is "slow" (0 = off).
    #[serde(with = "millis")]
    pub slow_call_ms: Duration,
    /// Opens when slow calls / calls in the window reach this (0 < rate <= 1).
    pub slow_call_rate: f64,
    /// How long it stays open before letting probes through.
    #[serde(with = "millis")]
    pub open_ms: Duration,
    /// Probe calls let through while half-open; all must succeed to close.
    pub half_open_probes: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            window: 20,
            min_calls: 10,
            failure_rate: 0.5,
            consecutive_failures: 5,
            slow_call_ms: Duration::from_millis(1_000),
            slow_call_rate: 0.8,
            open_ms: Duration::from_millis(30_000),
            half_open_probes: 2,
        }
    }
}

/// [`BreakerSettings`] with which a breaker cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakerSettingsError {
    #[error("breaker window must hold at least one call")]
    EmptyWindow,
    #[error("breaker min_calls must be between 1 and the window size")]
    MinCalls,
    #[error("breaker rates must be in (0, 1]")]
    Rate,
    #[error("breaker open_ms must be greater than zero")]
    ZeroOpen,
    #[error("breaker half_open_probes must be at least 1")]
    NoProbes,
}

impl BreakerSettings {
    pub fn validate(&self) -> Result<(), BreakerSettingsError> {
        if self.window == 0 {
            return Err(BreakerSettingsError::EmptyWindow);
        }
        if self.min_calls == 0 || self.min_calls > self.window {
            return Err(BreakerSettingsError::MinCalls);
        }
        let rate_ok = |r: f64| r > 0.0 && r <= 1.0;
        if !rate_ok(self.failure_rate) || !rate_ok(self.slow_call_rate) {
            return Err(BreakerSettingsError::Rate);
        }
        if self.open_ms.is_zero() {
            return Err(BreakerSettingsError::ZeroOpen);
        }
        if self.half_open_probes == 0 {
            return Err(BreakerSettingsError::NoProbes);
        }
        Ok(())
    }
}

fn default_provider_timeout() -> Duration {
    Duration::from_millis(1_500)
}
fn default_provider_concurrency() -> usize {
    64
}
fn default_rate_limit_backoff() -> Duration {
    Duration::from_millis(1_000)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration lacks {0}")]
    Missing(&'static str),
    #[error("{what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A key or secret file group or others may read (names the path and the mode, never content).
    #[error("{what}: {source}")]
    NotPrivate {
        what: &'static str,
        source: crate::crypto::keyfile::KeyFileError,
    },
}

/// Refuses the key or secret file at `path` (the setting `what`) if group or others may read it:
/// the check `crypto::keyfile` applies to key files, for every other file that holds a secret.
pub fn ensure_private(what: &'static str, path: &Path) -> Result<(), ConfigError> {
    use crate::crypto::keyfile::{self, KeyFileError};
    keyfile::ensure_private(path).map_err(|e| match e {
        KeyFileError::Io { path, source } => ConfigError::Read { what, path, source },
        other => ConfigError::NotPrivate { what, source: other },
    })
}

/// Reads the secret file `path` (the setting `what`), refused if group or others may read it.
fn read_secret_file(what: &'static str, path: &Path) -> Result<zeroize::Zeroizing<String>, ConfigError> {
    ensure_private(what, path)?;
    std::fs::read_to_string(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|source| ConfigError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })
}

impl ProviderConfig {
    /// The secret key, from `secret_key` or the file `secret_key_file` (trailing newline trimmed).
    pub fn resolve_secret_key(&self) -> Result<Secret, ConfigError> {
        match (&self.secret_key, &self.secret_key_file) {
            (Some(secret), None) => Ok(secret.clone()),
            (None, Some(path)) => {
                let text = read_secret_file("provider secret_key_file", path)?;
                Ok(Secret::new(text.trim_end_matches(['\r', '\n']).to_owned()))
            }
            (Some(_), Some(_)) => Err(ConfigError::Invalid(format!(
                "provider {}: set secret_key or secret_key_file, not both",
                self.name
            ))),
            (None, None) => Err(ConfigError::Invalid(format!(
                "provider {}: secret_key or secret_key_file is required",
                self.name
            ))),
        }
    }
}

impl Config {
    /// Defaults, then `file` (if any), then the `IDGATE_` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, Self::environment("IDGATE_"))
    }

    /// The configuration part of the environment: only `<PREFIX><SECTION>__<KEY>` variables. Others
    /// that share the prefix — `IDGATE_LOG`, or `IDGATE_SERVICE_HOST` / `IDGATE_PORT` that Kubernetes
    /// injects for a Service named `idgate` — are not configuration and are left alone.
    fn environment(prefix: &str) -> Env {
        Env::prefixed(prefix)
            .filter(|key| key.as_str().contains("__"))
            .split("__")
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Read {
                    what: "config file",
                    path: file.to_path_buf(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
            figment = figment.merge(Toml::file(file));
        }
        Self::extract(figment.merge(env))
    }

    /// Defaults, then `text` as the TOML file, and no environment (the fuzz harness's entry).
    pub(crate) fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::extract(Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)))
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(without_quoted_lines(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    /// Every configured file that holds a key or a secret, with its setting: each must be readable
    /// by its owner only ([`ensure_private`]). (`keys.dir` is checked file by file as it loads.)
    pub fn private_files(&self) -> Vec<(&'static str, &Path)> {
        let mut files = vec![
            ("server.tls_key", self.server.tls_key.as_deref()),
            ("store.tls_key_file", self.store.tls_key_file.as_deref()),
            ("store.password_file", self.store.password_file.as_deref()),
            ("keys.keks_file", self.keys.keks_file.as_deref()),
        ];
        files.extend(
            self.providers
                .iter()
                .map(|p| ("provider secret_key_file", p.secret_key_file.as_deref())),
        );
        files
            .into_iter()
            .filter_map(|(what, path)| Some((what, path?)))
            .collect()
    }

    /// How long KEKs live under this configuration: the epoch, the longest a data key wrapped in
    /// it can stay within retention after the epoch (the pending-review TTL, plus one sweep interval
    /// by which the embedded store may remove data late — the only retention that keeps wrapped
    /// keys: decided, expired and erased cases keep none), and the grace.
    pub fn kek_schedule(&self) -> crate::crypto::keyfile::KekSchedule {
        let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        crate::crypto::keyfile::KekSchedule {
            epoch_seconds: seconds(self.keys.kek_epoch_seconds),
            longest_retention_seconds: seconds(self.retention.pending_review_ttl_seconds)
                .saturating_add(seconds(self.retention.sweep_interval_seconds)),
            grace_seconds: seconds(self.keys.kek_destroy_grace_seconds),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let broken = self.breaking_values();
        if !broken.is_empty() {
            return Err(ConfigError::Invalid(broken.join("; ")));
        }
        if self.decision.checked().is_none() {
            return Err(ConfigError::Invalid(
                "decision thresholds must satisfy 0 <= review_at <= verified_at <= 100".into(),
            ));
        }
        if !(1..=2).contains(&self.review.approvals_required) {
            return Err(ConfigError::Invalid("review.approvals_required must be 1 or 2".into()));
        }
        if self.retention.audit_ttl_seconds < self.retention.case_record_ttl_seconds {
            return Err(ConfigError::Invalid(
                "retention.audit_ttl_seconds must be at least retention.case_record_ttl_seconds".into(),
            ));
        }
        if self.server.decide_reserve_ms >= self.server.verify_deadline_ms {
            return Err(ConfigError::Invalid(
                "server.decide_reserve_ms must be shorter than server.verify_deadline_ms".into(),
            ));
        }
        if self
            .server
            .decide_reserve_ms
            .saturating_add(self.server.min_provider_budget_ms)
            >= self.server.verify_deadline_ms
        {
            return Err(ConfigError::Invalid(
                "server.decide_reserve_ms + server.min_provider_budget_ms must be shorter than \
                 server.verify_deadline_ms (else no Verify could start)"
                    .into(),
            ));
        }
        let (base, max) = (self.server.shed_retry_after_ms, self.server.shed_retry_after_max_ms);
        if base.is_zero() || base > max || max > Duration::from_millis(MAX_SHED_RETRY_AFTER_MS) {
            return Err(ConfigError::Invalid(format!(
                "server.shed_retry_after_ms must be positive and at most server.shed_retry_after_max_ms, \
                 which is at most {MAX_SHED_RETRY_AFTER_MS}"
            )));
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.providers {
            if !names.insert(p.name.as_str()) {
                return Err(ConfigError::Invalid(format!("provider name {} is used twice", p.name)));
            }
            p.breaker
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("provider {}: {e}", p.name)))?;
        }
        Ok(())
    }
}

/// A loading error without the configuration lines it quotes: a TOML syntax error shows the line
/// it stopped at (`3 | password = "…`), which may hold a secret. The position and the reason stay.
fn without_quoted_lines(text: &str) -> String {
    let quoted = |line: &str| {
        let line = line.trim_start();
        line.starts_with('|')
            || line
                .split_once(" |")
                .is_some_and(|(number, _)| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
    };
    text.lines().filter(|line| !quoted(line)).collect::<Vec<_>>().join("\n")
}

/// The longest period a `_seconds` key may name (100 years): past it, the gateway's arithmetic on
/// unix times would overflow.
pub const MAX_PERIOD_SECONDS: u64 = 100 * 365 * 86_400;

/// HTTP/2's largest flow-control window (2^31 - 1 bytes); the HTTP/2 library refuses more.
pub const MAX_HTTP2_WINDOW_BYTES: u32 = (1 << 31) - 1;

/// The values a configuration breaks the gateway with, each named by its key with the rule it
/// breaks (and why, when the rule is not obvious).
struct Rules(Vec<String>);

impl Rules {
    /// `key` is not 0: `zero` says what 0 would do.
    fn positive(&mut self, key: &str, value: u64, zero: &str) {
        if value == 0 {
            self.0.push(format!("{key} must be positive ({zero})"));
        }
    }
    /// A duration `key` is not 0: `zero` says what 0 would do.
    fn lasts(&mut self, key: &str, value: Duration, zero: &str) {
        self.require(!value.is_zero(), || format!("{key} must be positive ({zero})"));
    }
    /// A period in seconds: positive, and at most [`MAX_PERIOD_SECONDS`].
    fn period(&mut self, key: &str, value: Duration, zero: &str) {
        self.lasts(key, value, zero);
        if value.as_secs() > MAX_PERIOD_SECONDS {
            self.0
                .push(format!("{key} must be at most {MAX_PERIOD_SECONDS} (100 years)"));
        }
    }
    /// An HTTP/2 window: 1 ..= 2^31 - 1 bytes.
    fn window(&mut self, key: &str, value: u32) {
        self.positive(key, u64::from(value), "no request body could be sent");
        if value > MAX_HTTP2_WINDOW_BYTES {
            self.0.push(format!(
                "{key} must be at most {MAX_HTTP2_WINDOW_BYTES} (HTTP/2's largest window)"
            ));
        }
    }
    fn require(&mut self, holds: bool, rule: impl FnOnce() -> String) {
        if !holds {
            self.0.push(rule());
        }
    }
}

impl Config {
    /// Every duration, TTL and limit that would break the gateway: a 0 where 0 is not "off", and
    /// the orderings retention relies on. Each problem names its key and the rule it breaks.
    fn breaking_values(&self) -> Vec<String> {
        let mut rules = Rules(Vec::new());
        let server = &self.server;
        rules.lasts(
            "server.client_deny_list_poll_ms",
            server.client_deny_list_poll_ms,
            "the deny list would be re-read without pause",
        );
        rules.lasts(
            "server.handshake_timeout_ms",
            server.handshake_timeout_ms,
            "every TLS handshake would time out",
        );
        rules.lasts(
            "server.verify_deadline_ms",
            server.verify_deadline_ms,
            "every Verify call would run out of time",
        );
        rules.lasts(
            "server.call_deadline_ms",
            server.call_deadline_ms,
            "every call would run out of time",
        );
        rules.lasts(
            "server.decide_reserve_ms",
            server.decide_reserve_ms,
            "providers would use the whole deadline, leaving none to decide and store",
        );
        rules.positive(
            "server.max_concurrent_streams",
            u64::from(server.max_concurrent_streams),
            "no call could be made",
        );
        rules.window("server.http2_stream_window_bytes", server.http2_stream_window_bytes);
        rules.window(
            "server.http2_connection_window_bytes",
            server.http2_connection_window_bytes,
        );
        for (key, value) in [
            (
                "server.max_verification_message_bytes",
                server.max_verification_message_bytes,
            ),
            ("server.max_review_message_bytes", server.max_review_message_bytes),
        ] {
            rules.positive(key, value as u64, "every request would be too large");
        }
        rules.lasts(
            "server.health_probe_interval_ms",
            server.health_probe_interval_ms,
            "the store would be probed without pause",
        );
        rules.lasts(
            "server.health_probe_timeout_ms",
            server.health_probe_timeout_ms,
            "every readiness probe would fail",
        );

        let keys = &self.keys;
        rules.require(keys.sealing_grace_seconds >= 0, || {
            "keys.sealing_grace_seconds must not be negative".to_owned()
        });
        rules.period(
            "keys.rewrap_interval_seconds",
            keys.rewrap_interval_seconds,
            "the re-wrap pass would run without pause",
        );
        rules.period(
            "keys.kek_epoch_seconds",
            keys.kek_epoch_seconds,
            "a new KEK would never wrap",
        );
        rules.require(keys.kek_destroy_grace_seconds.as_secs() <= MAX_PERIOD_SECONDS, || {
            format!("keys.kek_destroy_grace_seconds must be at most {MAX_PERIOD_SECONDS} (100 years)")
        });

        let retention = &self.retention;
        rules.period(
            "retention.pending_review_ttl_seconds",
            retention.pending_review_ttl_seconds,
            "a case would expire the moment it goes to review",
        );
        rules.period(
            "retention.case_record_ttl_seconds",
            retention.case_record_ttl_seconds,
            "a case record would expire as it is written",
        );
        rules.period(
            "retention.sweep_interval_seconds",
            retention.sweep_interval_seconds,
            "retention would run without pause",
        );
        rules.period(
            "retention.audit_ttl_seconds",
            retention.audit_ttl_seconds,
            "audit events would expire as they are written",
        );
        // The record is how erasure and the sweep find a case's sealed data: it must outlive that
        // data until the sweep that removes it has run.
        let sealed_data_lives = retention
            .pending_review_ttl_seconds
            .saturating_add(retention.sweep_interval_seconds);
        rules.require(retention.case_record_ttl_seconds >= sealed_data_lives, || {
            format!(
                "retention.case_record_ttl_seconds ({}) must be at least retention.pending_review_ttl_seconds \
                 + retention.sweep_interval_seconds ({}): a case record that expires before \
                 its sealed data leaves that data where erasure does not find it",
                retention.case_record_ttl_seconds.as_secs(),
                sealed_data_lives.as_secs()
            )
        });

        rules.period(
            "review.lease_seconds",
            self.review.lease_seconds,
            "every lease would end as it is granted",
        );

        rules.positive(
            "limits.max_anchor_accounts_per_id",
            u64::from(self.limits.max_anchor_accounts_per_id),
            "no ANCHOR verification could succeed",
        );
        rules.period(
            "limits.anchor_binding_ttl_seconds",
            self.limits.anchor_binding_ttl_seconds,
            "anchor bindings would be forgotten at once, lifting the anchor-accounts limit",
        );

        for p in &self.providers {
            rules.lasts(
                &format!("providers.{}.timeout_ms", p.name),
                p.timeout_ms,
                "every call to it would time out",
            );
            rules.positive(
                &format!("providers.{}.max_concurrency", p.name),
                p.max_concurrency as u64,
                "it could never be called",
            );
        }
        rules.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_and_read_in_the_unit_their_key_names() {
        let written = toml::to_string(&Config::default()).expect("serialize");
        for line in [
            "verify_deadline_ms = 10000",
            "shed_retry_after_max_ms = 30000",
            "pending_review_ttl_seconds = 259200",
            "lease_seconds = 300",
            "kek_epoch_seconds = 604800",
        ] {
            assert!(written.contains(line), "{line} in {written}");
        }
        let config = Config::from_toml(
            "[server]\nverify_deadline_ms = 2500\n[review]\nlease_seconds = 90\n[[providers]]\nname = \"p\"\n\
             kind = \"tencent-faceid\"\nendpoint = \"https://x\"\nsecret_id = \"a\"\ntimeout_ms = 700\n\
             [providers.breaker]\nopen_ms = 1500\n",
        )
        .expect("loads");
        assert_eq!(config.server.verify_deadline_ms, Duration::from_millis(2_500));
        assert_eq!(config.review.lease_seconds, Duration::from_secs(90));
        assert_eq!(config.providers[0].timeout_ms, Duration::from_millis(700));
        assert_eq!(config.providers[0].breaker.open_ms, Duration::from_millis(1_500));
    }

    #[test]
    fn default_config_is_valid_and_bad_ones_are_refused() {
        assert_eq!(BreakerSettings::default().validate(), Ok(()));
        let bad = |f: fn(&mut BreakerSettings)| {
            let mut c = BreakerSettings::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.window = 0), BreakerSettingsError::EmptyWindow);
        assert_eq!(bad(|c| c.min_calls = 0), BreakerSettingsError::MinCalls);
        assert_eq!(bad(|c| c.min_calls = 21), BreakerSettingsError::MinCalls);
        assert_eq!(bad(|c| c.failure_rate = 0.0), BreakerSettingsError::Rate);
        assert_eq!(bad(|c| c.slow_call_rate = 1.5), BreakerSettingsError::Rate);
        assert_eq!(bad(|c| c.failure_rate = f64::NAN), BreakerSettingsError::Rate);
        assert_eq!(bad(|c| c.open_ms = Duration::ZERO), BreakerSettingsError::ZeroOpen);
        assert_eq!(bad(|c| c.half_open_probes = 0), BreakerSettingsError::NoProbes);
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API
    fn file_then_environment_layering() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("idgate.toml");
        std::fs::write(
            &file,
            r#"
[store]
url = "redis://127.0.0.1:6379"
[retention]
pending_review_ttl_seconds = 100
[[providers]]
name = "tencent-primary"
kind = "tencent-faceid"
endpoint = "https://faceid.tencentcloudapi.com"
secret_id = "AKIDexample"
secret_key = "do-not-print-me"
[providers.breaker]
consecutive_failures = 3
"#,
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("IDGATE_RETENTION__PENDING_REVIEW_TTL_SECONDS", "200");
            jail.set_env("IDGATE_STORE__CLUSTER_NODES", "redis://a:1, redis://b:2");
            let config = Config::load(Some(&file)).unwrap();
            assert_eq!(config.retention.pending_review_ttl_seconds, Duration::from_secs(200));
            assert_eq!(config.store.url.as_deref(), Some("redis://127.0.0.1:6379"));
            assert_eq!(
                config.store.cluster_nodes,
                Some(vec!["redis://a:1".into(), "redis://b:2".into()])
            );
            assert_eq!(config.providers[0].timeout_ms, Duration::from_millis(1_500));
            assert_eq!(config.providers[0].breaker.consecutive_failures, 3);
            assert_eq!(config.providers[0].breaker.window, 20, "defaults fill the rest");
            assert_eq!(config.providers[0].rate_limit_backoff_ms, Duration::from_millis(1_000));
            assert!(!format!("{config:?}").contains("do-not-print-me"));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API
    fn only_section_variables_are_configuration() {
        figment::Jail::expect_with(|jail| {
            // What a shell, a log setting and Kubernetes put beside our configuration.
            jail.set_env("IDGATE_LOG", "debug");
            jail.set_env("IDGATE_SERVICE_HOST", "10.0.0.7");
            jail.set_env("IDGATE_SERVICE_PORT", "50051");
            jail.set_env("IDGATE_PORT", "tcp://10.0.0.7:50051");
            jail.set_env("IDGATE_PORT_50051_TCP_ADDR", "10.0.0.7");
            jail.set_env("IDGATE_RETENTION__PENDING_REVIEW_TTL_SECONDS", "300");
            let config = Config::load(None).expect("loads beside foreign variables");
            assert_eq!(config.retention.pending_review_ttl_seconds, Duration::from_secs(300));
            // An unknown key under a real section is still refused, by name.
            jail.set_env("IDGATE_RETENTION__PENDING_REVIEW_TTL", "1");
            let error = Config::load(None).expect_err("refused").to_string();
            assert!(error.contains("pending_review_ttl"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn kinds_and_log_formats_are_their_strings_and_others_are_refused_at_load() {
        let load = |text: &str| Config::from_toml(text).map_err(|e| e.to_string());
        let provider = |kind: &str| {
            format!("[[providers]]\nname = \"p\"\nkind = \"{kind}\"\nendpoint = \"https://x\"\nsecret_id = \"a\"\n")
        };
        for kind in ProviderKind::ALL {
            let config = load(&provider(kind.as_str())).expect("a known kind loads");
            assert_eq!(config.providers[0].kind, *kind);
            let written = toml::to_string(&config).expect("serialize");
            assert!(written.contains(&format!("kind = \"{}\"", kind.as_str())), "{written}");
        }
        assert_eq!(ProviderKind::TencentFaceId.as_str(), "tencent-faceid");
        assert_eq!(ProviderKind::AliyunCloudAuth.as_str(), "aliyun-cloudauth");
        let refused = load(&provider("openai")).expect_err("an unknown kind is refused at load");
        assert!(
            refused.contains(r#"kind "openai" is not supported (supported: tencent-faceid, aliyun-cloudauth)"#),
            "{refused}"
        );
        assert!(refused.contains("providers"), "the key is named: {refused}");

        for format in LogFormat::ALL {
            let config = load(&format!("[telemetry]\nlog_format = \"{}\"\n", format.as_str())).expect("loads");
            assert_eq!(config.telemetry.log_format, Some(*format));
        }
        assert_eq!((LogFormat::Text.as_str(), LogFormat::Json.as_str()), ("text", "json"));
        assert_eq!(load("").expect("loads").telemetry.log_format, None, "text by default");
        let refused = load("[telemetry]\nlog_format = \"pretty\"\n").expect_err("refused at load");
        assert!(
            refused.contains(r#"log_format "pretty" is not supported (supported: text, json)"#),
            "{refused}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[store]\nurll = \"x\"\n").unwrap();
        assert!(Config::load_from(Some(&file), Env::prefixed("IDGATE_TEST_NONE_")).is_err());
        let named = Config::load_from(Some(&file), Env::prefixed("IDGATE_TEST_NONE_"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(named.contains("urll"), "the unknown key is named: {named}");
        std::fs::write(&file, "[decision]\nverified_at = 40.0\nreview_at = 60.0\n").unwrap();
        assert!(Config::load_from(Some(&file), Env::prefixed("IDGATE_TEST_NONE_")).is_err());
        std::fs::write(
            &file,
            "[[providers]]\nname = \"p\"\nkind = \"tencent-faceid\"\nendpoint = \"https://x\"\nsecret_id = \"a\"\n[providers.breaker]\nmin_calls = 0\n",
        )
        .unwrap();
        assert!(Config::load_from(Some(&file), Env::prefixed("IDGATE_TEST_NONE_")).is_err());
        // Shed retry delays: positive, base ≤ max ≤ 5 minutes.
        for server in [
            "shed_retry_after_ms = 0",
            "shed_retry_after_ms = 2000\nshed_retry_after_max_ms = 1000",
            "shed_retry_after_max_ms = 300001",
        ] {
            std::fs::write(&file, format!("[server]\n{server}\n")).unwrap();
            let refused = Config::load_from(Some(&file), Env::prefixed("IDGATE_TEST_NONE_"));
            assert!(
                refused
                    .err()
                    .is_some_and(|e| e.to_string().contains("shed_retry_after")),
                "{server}"
            );
        }
        std::fs::write(
            &file,
            "[server]\nshed_retry_after_ms = 300000\nshed_retry_after_max_ms = 300000\n",
        )
        .unwrap();
        assert!(Config::load_from(Some(&file), Env::prefixed("IDGATE_TEST_NONE_")).is_ok());
        assert!(
            Config::load_from(
                Some(&dir.path().join("missing.toml")),
                Env::prefixed("IDGATE_TEST_NONE_")
            )
            .is_err()
        );
    }

    /// Every secret key, given a number or a boolean — in the environment and in the file — is
    /// refused by name and expected type, and the error never holds the value (it goes to logs).
    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API
    fn a_secret_of_another_type_is_refused_by_key_without_its_value() {
        let values = ["12345678", "-4242424242", "31415.9265", "true", "false"];
        let provider = |secret: &str| {
            format!(
                "[[providers]]\nname = \"p\"\nkind = \"tencent-faceid\"\nendpoint = \"https://x\"\nsecret_id = \"a\"\nsecret_key = {secret}\n"
            )
        };
        figment::Jail::expect_with(|jail| {
            for value in values {
                let mut refused = Vec::new();
                for (key, env) in [
                    ("store.password", "IDGATE_STORE__PASSWORD"),
                    ("keys.keks", "IDGATE_KEYS__KEKS"),
                ] {
                    jail.set_env(env, value);
                    refused.push((key, Config::load(None).map(drop)));
                    jail.clear_env();
                    let (section, name) = key.split_once('.').unwrap();
                    jail.create_file("idgate.toml", &format!("[{section}]\n{name} = {value}\n"))?;
                    refused.push((key, Config::load(Some(Path::new("idgate.toml"))).map(drop)));
                }
                jail.create_file("idgate.toml", &provider(value))?;
                refused.push(("secret_key", Config::load(Some(Path::new("idgate.toml"))).map(drop)));
                for (key, result) in refused {
                    let error = result.expect_err("a secret must be a string").to_string();
                    assert!(error.to_lowercase().contains(key), "names the key {key}: {error}");
                    assert!(error.contains("expected a string"), "names the type: {error}");
                    assert!(!error.contains(value), "{value} is shown: {error}");
                }
            }
            // A TOML syntax error on a secret's line: the line is not quoted, the position is.
            jail.create_file("idgate.toml", "[store]\npassword = \"hunter2-unterminated\n")?;
            let error = Config::load(Some(Path::new("idgate.toml")))
                .map(drop)
                .expect_err("syntax")
                .to_string();
            assert!(!error.contains("hunter2"), "{error}");
            assert!(error.contains("line 2"), "{error}");
            // A string (quoted in the environment too) loads.
            jail.set_env("IDGATE_STORE__PASSWORD", "\"12345678\"");
            jail.create_file("idgate.toml", "")?;
            let config = Config::load(Some(Path::new("idgate.toml"))).expect("a quoted number is a string");
            assert_eq!(config.store.password.as_ref().map(Secret::expose), Some("12345678"));
            Ok(())
        });
    }

    /// Each duration, TTL and limit that would break the gateway is refused by its key, with the
    /// rule it breaks; what is "off" at 0 stays allowed.
    #[test]
    fn values_that_break_the_gateway_are_refused_by_name_and_rule() {
        let provider = "[[providers]]\nname = \"p\"\nkind = \"tencent-faceid\"\nendpoint = \"https://x\"\nsecret_id = \"a\"\nsecret_key = \"s\"\n";
        for (text, named, rule) in [
            (
                "[review]\nlease_seconds = 0",
                "review.lease_seconds",
                "must be positive",
            ),
            (
                "[retention]\npending_review_ttl_seconds = 0",
                "retention.pending_review_ttl_seconds",
                "must be positive",
            ),
            (
                "[retention]\ncase_record_ttl_seconds = 0",
                "retention.case_record_ttl_seconds",
                "must be positive",
            ),
            (
                "[retention]\nsweep_interval_seconds = 0",
                "retention.sweep_interval_seconds",
                "must be positive",
            ),
            (
                "[retention]\naudit_ttl_seconds = 0",
                "retention.audit_ttl_seconds",
                "must be positive",
            ),
            (
                "[retention]\npending_review_ttl_seconds = 7200\ncase_record_ttl_seconds = 3600",
                "retention.case_record_ttl_seconds (3600) must be at least retention.pending_review_ttl_seconds",
                "erasure does not find it",
            ),
            (
                // Equal is not enough: the sealed data may stay until the next sweep.
                "[retention]\npending_review_ttl_seconds = 7200\ncase_record_ttl_seconds = 7200",
                "retention.case_record_ttl_seconds (7200)",
                "+ retention.sweep_interval_seconds (7230)",
            ),
            (
                "[retention]\npending_review_ttl_seconds = 9223372036854775807",
                "retention.pending_review_ttl_seconds",
                "100 years",
            ),
            (
                "[server]\ncall_deadline_ms = 0",
                "server.call_deadline_ms",
                "must be positive",
            ),
            (
                "[server]\nverify_deadline_ms = 0",
                "server.verify_deadline_ms",
                "must be positive",
            ),
            (
                "[server]\nhandshake_timeout_ms = 0",
                "server.handshake_timeout_ms",
                "must be positive",
            ),
            (
                "[server]\ndecide_reserve_ms = 0",
                "server.decide_reserve_ms",
                "must be positive",
            ),
            (
                "[server]\nmax_concurrent_streams = 0",
                "server.max_concurrent_streams",
                "must be positive",
            ),
            (
                "[server]\nhttp2_stream_window_bytes = 0",
                "server.http2_stream_window_bytes",
                "must be positive",
            ),
            (
                "[server]\nhttp2_connection_window_bytes = 0",
                "server.http2_connection_window_bytes",
                "must be positive",
            ),
            (
                "[server]\nhttp2_stream_window_bytes = 2147483648",
                "server.http2_stream_window_bytes",
                "at most 2147483647",
            ),
            (
                "[server]\nmax_verification_message_bytes = 0",
                "server.max_verification_message_bytes",
                "must be positive",
            ),
            (
                "[server]\nmax_review_message_bytes = 0",
                "server.max_review_message_bytes",
                "must be positive",
            ),
            (
                "[server]\nhealth_probe_interval_ms = 0",
                "server.health_probe_interval_ms",
                "must be positive",
            ),
            (
                "[server]\nhealth_probe_timeout_ms = 0",
                "server.health_probe_timeout_ms",
                "must be positive",
            ),
            (
                "[server]\nclient_deny_list_poll_ms = 0",
                "server.client_deny_list_poll_ms",
                "must be positive",
            ),
            (
                "[keys]\nrewrap_interval_seconds = 0",
                "keys.rewrap_interval_seconds",
                "must be positive",
            ),
            (
                "[keys]\nkek_epoch_seconds = 0",
                "keys.kek_epoch_seconds",
                "must be positive",
            ),
            (
                "[keys]\nsealing_grace_seconds = -1",
                "keys.sealing_grace_seconds",
                "must not be negative",
            ),
            (
                "[limits]\nmax_anchor_accounts_per_id = 0",
                "limits.max_anchor_accounts_per_id",
                "must be positive",
            ),
            (
                "[limits]\nanchor_binding_ttl_seconds = 0",
                "limits.anchor_binding_ttl_seconds",
                "anchor-accounts limit",
            ),
            (
                &format!("{provider}timeout_ms = 0"),
                "providers.p.timeout_ms",
                "must be positive",
            ),
            (
                &format!("{provider}max_concurrency = 0"),
                "providers.p.max_concurrency",
                "must be positive",
            ),
        ] {
            let error = Config::from_toml(text).map(drop).expect_err(text).to_string();
            assert!(error.contains(named) && error.contains(rule), "{text}: {error}");
        }
        // Several at once: each is named.
        let error = Config::from_toml("[review]\nlease_seconds = 0\n[server]\ncall_deadline_ms = 0\n")
            .map(drop)
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("review.lease_seconds") && error.contains("server.call_deadline_ms"),
            "{error}"
        );
        // 0 where it means "off" (no limit), and the smallest sound values, load.
        Config::from_toml(
            "[server]\nmax_in_flight_verify = 0\nshutdown_grace_ms = 0\ndecide_reserve_ms = 1\n\
             [limits]\nverifications_per_account_per_hour = 0\nverifications_per_id_per_day = 0\n\
             [keys]\nkek_destroy_grace_seconds = 0\nsealing_grace_seconds = 0\n\
             [retention]\npending_review_ttl_seconds = 60\nsweep_interval_seconds = 1\ncase_record_ttl_seconds = 61\naudit_ttl_seconds = 61\n\
             [review]\nlease_seconds = 1\n",
        )
        .expect("sound values load");
    }

    /// `_file` secrets group or others may read are refused, naming the setting, the path and the
    /// rule — never the content; the same files at 0600 are read.
    #[cfg(unix)]
    #[test]
    fn secret_files_others_may_read_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, "content-not-shown\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        let refused = |result: Result<(), ConfigError>, what: &str, path: &Path| {
            let error = result.expect_err("refused");
            assert!(matches!(error, ConfigError::NotPrivate { .. }), "{error}");
            let text = error.to_string();
            assert!(
                text.contains(what) && text.contains(&path.display().to_string()),
                "{text}"
            );
            assert!(
                text.contains("chmod 600") && !text.contains("content-not-shown"),
                "{text}"
            );
        };
        for mode in [0o640, 0o604, 0o660, 0o644] {
            let path = file(&format!("password-{mode:o}"), mode);
            let store = StoreConfig {
                password_file: Some(path.clone()),
                ..StoreConfig::default()
            };
            refused(store.resolve_password().map(drop), "store.password_file", &path);
        }
        let path = file("keks", 0o644);
        let keys = KeysConfig {
            keks_file: Some(path.clone()),
            ..KeysConfig::default()
        };
        refused(keys.kek_list().map(drop), "keys.keks_file", &path);
        let path = file("tencent", 0o640);
        let mut config = Config::from_toml(&format!(
            "[[providers]]\nname = \"p\"\nkind = \"tencent-faceid\"\nendpoint = \"https://x\"\nsecret_id = \"a\"\nsecret_key_file = {:?}\n",
            path.display().to_string()
        ))
        .unwrap();
        refused(
            config.providers[0].resolve_secret_key().map(drop),
            "secret_key_file",
            &path,
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            config.providers[0].resolve_secret_key().unwrap().expose(),
            "content-not-shown"
        );
        // Every such file is listed for the start-up check, TLS private keys included.
        config.server.tls_key = Some(dir.path().join("server.key"));
        config.store.tls_key_file = Some(dir.path().join("redis.key"));
        config.store.password_file = Some(dir.path().join("redis.password"));
        config.keys.keks_file = Some(dir.path().join("keks"));
        let listed: Vec<&str> = config.private_files().iter().map(|(what, _)| *what).collect();
        assert_eq!(
            listed,
            [
                "server.tls_key",
                "store.tls_key_file",
                "store.password_file",
                "keys.keks_file",
                "provider secret_key_file"
            ]
        );
    }

    #[test]
    fn a_minimum_provider_budget_that_no_verify_deadline_leaves_is_refused() {
        let load = |text: &str| Config::from_toml(text).map_err(|e| e.to_string());
        assert_eq!(
            load("").expect("defaults").server.min_provider_budget_ms,
            Duration::from_millis(200)
        );
        assert!(
            load("[server]\nmin_provider_budget_ms = 0\n").is_ok(),
            "0: any deadline starts"
        );
        let refused =
            load("[server]\nverify_deadline_ms = 1000\ndecide_reserve_ms = 100\nmin_provider_budget_ms = 900\n")
                .expect_err("no Verify could start");
        assert!(refused.contains("server.min_provider_budget_ms"), "{refused}");
        assert!(
            load("[server]\nverify_deadline_ms = 1000\ndecide_reserve_ms = 100\nmin_provider_budget_ms = 899\n")
                .is_ok()
        );
    }
}
