//! Tencent Cloud FaceID (`faceid`, API version 2018-03-01) as an identity [`Provider`].
//!
//! Two actions: `IdCardVerification` (name + ID number, for the two-factor check; used when the
//! request has no face image) and `ImageRecognitionV2` (name + ID number + face photo compared with
//! the authority's ID photo; used for live-account anchors). Requests are JSON `POST`s to `/` signed
//! with TC3-HMAC-SHA256 ([`signing`]); answers are mapped by table ([`codes`]).
//!
//! This adapter must never:
//! - retry: every call may be billed, and a retried call may bill twice. It makes exactly one HTTP
//!   request per [`Provider::check`], with a hard per-call timeout, and the [`http_client`] it
//!   recommends has reqwest's own retries, redirects and proxies switched off;
//! - put any part of a request (name, ID number, image) into an error, a log line or `Debug` output,
//!   nor Tencent's `Message` / `Description` text (they may echo the input): it does not even
//!   deserialize those fields, and logs only action, outcome, sanitized codes and the request id;
//! - send personal data over plain HTTP to anything but a loopback address (the simulator);
//! - turn an unknown or malformed answer into an outcome: those are [`ProviderError::Protocol`].

pub mod codes;
pub mod signing;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;

use crate::clock::Clock;
use crate::providers::credentials::SecretKey;
pub use crate::providers::http::{HttpClientError, http_client};
use crate::providers::{CheckFuture, Outcome, Provider, ProviderError, ProviderRequest};
use crate::providers::{http, image_base64, sanitize};

/// Tencent's public FaceID endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://faceid.tencentcloudapi.com";
/// The TC3 service name, also the first label of the endpoint host.
pub const SERVICE: &str = "faceid";
/// `X-TC-Version` of both actions.
pub const API_VERSION: &str = "2018-03-01";
/// The two-factor action.
pub const ACTION_ID_CARD: &str = "IdCardVerification";
/// The face-comparison action.
pub const ACTION_FACE: &str = "ImageRecognitionV2";
/// `ImageRecognitionV2` documents "Base64-encoded image data no larger than 3M, jpg or png only".
/// Larger photos are answered `PhotoUnusable` locally instead of shipping them to be refused.
pub const MAX_IMAGE_BASE64_BYTES: usize = 3 * 1024 * 1024;

/// Configuration of one Tencent FaceID account.
#[derive(Debug)]
pub struct TencentConfig {
    /// The provider name for case records and metrics (e.g. `tencent-primary`).
    pub name: String,
    /// Base URL, normally [`DEFAULT_ENDPOINT`]; `http://127.0.0.1:PORT` for the simulator.
    pub endpoint: String,
    pub secret_id: String,
    pub secret_key: SecretKey,
    /// `X-TC-Region`; FaceID does not need one.
    pub region: Option<String>,
    /// Hard limit for one call, connect to last response byte.
    pub timeout: Duration,
}

/// A [`TencentConfig`] that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TencentConfigError {
    #[error("provider name is empty")]
    EmptyName,
    #[error("endpoint is not a URL with a host")]
    EndpointNotUrl,
    #[error("endpoint must be https (plain http only to a loopback address)")]
    EndpointNotHttps,
    #[error("endpoint must have no path, query, fragment or user info")]
    EndpointNotBare,
    #[error("secret id must be a non-empty token without spaces, '/' or ','")]
    BadSecretId,
    #[error("secret key is empty")]
    EmptySecretKey,
    #[error("region must be a token of letters, digits and '-'")]
    BadRegion,
    #[error("timeout must be greater than zero")]
    ZeroTimeout,
}

/// The Tencent FaceID adapter.
pub struct TencentFaceId {
    name: String,
    url: reqwest::Url,
    /// The `Host` header exactly as the HTTP client will send it (port only when not the default),
    /// because it is part of the signature.
    host: String,
    secret_id: String,
    secret_key: SecretKey,
    region: Option<String>,
    timeout: Duration,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TencentFaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TencentFaceId")
            .field("name", &self.name)
            .field("endpoint", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

fn is_token(s: &str, extra: &[u8]) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

impl TencentFaceId {
    /// Validates the configuration. `http` should come from [`http_client`] (no redirects: a
    /// followed 307 would re-send the personal data to wherever it points).
    pub fn new(
        config: TencentConfig,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, TencentConfigError> {
        if config.name.trim().is_empty() {
            return Err(TencentConfigError::EmptyName);
        }
        // The SecretId is embedded in the Authorization header between '=' and '/'.
        if !is_token(&config.secret_id, b"-_") {
            return Err(TencentConfigError::BadSecretId);
        }
        if config.secret_key.is_empty() {
            return Err(TencentConfigError::EmptySecretKey);
        }
        if let Some(region) = &config.region
            && !is_token(region, b"-")
        {
            return Err(TencentConfigError::BadRegion);
        }
        if config.timeout.is_zero() {
            return Err(TencentConfigError::ZeroTimeout);
        }
        let (url, host) = http::endpoint(&config.endpoint).map_err(|e| match e {
            http::EndpointError::NotUrl => TencentConfigError::EndpointNotUrl,
            http::EndpointError::NotHttps => TencentConfigError::EndpointNotHttps,
            http::EndpointError::NotBare => TencentConfigError::EndpointNotBare,
        })?;
        Ok(Self {
            name: config.name,
            url,
            host,
            secret_id: config.secret_id,
            secret_key: config.secret_key,
            region: config.region,
            timeout: config.timeout,
            http,
            clock,
        })
    }

    async fn call(
        &self,
        request: &ProviderRequest<'_>,
    ) -> (&'static str, Result<Outcome, ProviderError>, Option<String>) {
        let (action, body) = match request.face_image {
            None => (ACTION_ID_CARD, json_body(request, None)),
            Some(image) => {
                if let Some(reason) = unusable_image(image) {
                    // Documented to be refused by Tencent; no need to send personal data for that.
                    tracing::debug!(provider = %self.name, reason, "photo refused locally, no call made");
                    return (ACTION_FACE, Ok(Outcome::PhotoUnusable), None);
                }
                (ACTION_FACE, json_body(request, Some(image)))
            }
        };
        // Serializing two &str fields cannot fail; the message carries nothing of the input.
        let Ok(body) = body else {
            return (action, Err(ProviderError::Protocol("request encoding".into())), None);
        };

        let timestamp = self.clock.now_unix();
        let Ok(authorization) = signing::sign(&self.secret_id, &self.secret_key, SERVICE, &self.host, timestamp, &body)
        else {
            // Only a clock outside years 0..=9999 gets here; nothing was sent.
            return (action, Err(ProviderError::Unavailable("local-clock")), None);
        };

        let mut builder = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, signing::CONTENT_TYPE)
            .header(AUTHORIZATION, authorization)
            .header("X-TC-Action", action)
            .header("X-TC-Version", API_VERSION)
            .header("X-TC-Timestamp", timestamp.to_string());
        if let Some(region) = &self.region {
            builder = builder.header("X-TC-Region", region.as_str());
        }
        http::call_vendor(action, builder, body, self.timeout, interpret).await
    }
}

impl Provider for TencentFaceId {
    fn name(&self) -> &str {
        &self.name
    }

    fn check<'a>(&'a self, request: &'a ProviderRequest<'a>) -> CheckFuture<'a> {
        Box::pin(http::logged(&self.name, self.call(request)))
    }
}

/// The JSON body of either action: `{"IdCard":…,"Name":…}`, plus `"ImageBase64":…` with a face.
/// Byte for byte what `serde_json::to_vec` gives for the same fields (the tests compare), but the
/// base64 is encoded straight into the pre-sized body: serde_json would escape-scan the ~345 KB
/// string (base64 needs no escaping) and it would need a string of its own. Name and ID number go
/// through serde_json, so quotes and backslashes are escaped correctly. Not logged: it holds the
/// personal data.
#[doc(hidden)] // public for the benches only
pub fn json_body(request: &ProviderRequest<'_>, image: Option<&[u8]>) -> serde_json::Result<Vec<u8>> {
    let b64_len = image.map_or(0, |i| image_base64::encoded_len(i.len()));
    let mut out = Vec::with_capacity(64 + 2 * (request.id_number.len() + request.name.len()) + b64_len);
    out.extend_from_slice(b"{\"IdCard\":");
    serde_json::to_writer(&mut out, request.id_number)?;
    out.extend_from_slice(b",\"Name\":");
    serde_json::to_writer(&mut out, request.name)?;
    if let Some(image) = image {
        out.extend_from_slice(b",\"ImageBase64\":\"");
        image_base64::encode_into(&mut out, image);
        out.push(b'"');
    }
    out.push(b'}');
    Ok(out)
}

/// Why a photo is known to be refused before any call: empty, over the documented size, or not
/// JPEG/PNG (the only formats `ImageRecognitionV2` accepts).
fn unusable_image(image: &[u8]) -> Option<&'static str> {
    if image.is_empty() {
        return Some("empty");
    }
    if image_base64::encoded_len(image.len()) > MAX_IMAGE_BASE64_BYTES {
        return Some("too large");
    }
    if !http::is_jpeg_or_png(image) {
        return Some("not jpeg or png");
    }
    None
}

// Only the fields we act on. `Message` and `Description` are deliberately absent: what is not
// deserialized cannot leak.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: ResponseBody,
}

#[derive(Deserialize)]
struct ResponseBody {
    #[serde(rename = "Error")]
    error: Option<ErrorBody>,
    #[serde(rename = "Result")]
    result: Option<String>,
    #[serde(rename = "Sim")]
    sim: Option<f64>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "Code")]
    code: String,
}

/// Turns one HTTP answer into an outcome. Pure, total, and never panics on any input.
pub(crate) fn interpret(action: &str, status: u16, body: &[u8]) -> (Result<Outcome, ProviderError>, Option<String>) {
    if (500..=599).contains(&status) {
        // Tencent answers API errors with 200 and an Error object; a 5xx comes from its front end.
        return (Err(ProviderError::Unavailable("http-5xx")), None);
    }
    if status == 429 {
        // A front end's rate limit; no retry time is read (the router backs off by configuration).
        return (
            Err(ProviderError::RateLimited {
                code: "http-429".into(),
                retry_after: None,
            }),
            None,
        );
    }
    if status != 200 {
        return (Err(ProviderError::Protocol(format!("http status {status}"))), None);
    }
    // serde_json's error text can quote the offending value; it is dropped, never forwarded.
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return (Err(ProviderError::Protocol("malformed response".into())), None);
    };
    let answer = envelope.response;
    let request_id = answer.request_id.as_deref().and_then(sanitize::request_id);
    let result = match (answer.error, answer.result) {
        // An Error object means the call failed, whatever else is present.
        (Some(error), _) => codes::error_code(&error.code),
        (None, None) => Err(ProviderError::Protocol("response without Result".into())),
        (None, Some(result)) if action == ACTION_ID_CARD => codes::id_card_result(&result),
        (None, Some(result)) => codes::face_result(&result, answer.sim),
    };
    (result, request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, SystemClock};
    use crate::providers::sim::SimConfig;
    use crate::providers::sim::test_support::{RunningSim, start};
    use base64::Engine as _;
    use std::sync::Mutex;

    const SECRET_ID: &str = "AKIDsimulator";
    const SECRET: &str = "sim-secret-key";
    const NAME: &str = "测试姓名";
    /// Smallest thing that passes the local JPEG check; the simulator never decodes images.
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00];

    /// An 18-character ID with a valid check digit and the given 3-digit sequence code.
    fn id_with_seq(seq: u16) -> String {
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        const CHECK: &[u8; 11] = b"10X98765432";
        let first17 = format!("11010519491231{seq:03}");
        let sum: u32 = first17.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
        let check = char::from(CHECK[(sum % 11) as usize]);
        format!("{first17}{check}")
    }

    /// The hand-built body is exactly what serde_json writes for the same fields, with names that
    /// need escaping and images of every base64 padding length.
    #[test]
    fn json_body_is_what_serde_json_writes() {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            #[serde(rename = "IdCard")]
            id_card: &'a str,
            #[serde(rename = "Name")]
            name: &'a str,
            #[serde(rename = "ImageBase64", skip_serializing_if = "Option::is_none")]
            image_base64: Option<&'a str>,
        }
        let id = id_with_seq(1);
        for name in [NAME, "a\"b\\c\u{1}", ""] {
            for len in [None, Some(0), Some(1), Some(2), Some(3), Some(1000)] {
                let image: Option<Vec<u8>> = len.map(|n| (0..n).map(|i| (i * 13 + 7) as u8).collect());
                let b64 = image
                    .as_ref()
                    .map(|i| base64::engine::general_purpose::STANDARD.encode(i));
                let request = ProviderRequest {
                    name,
                    id_number: &id,
                    face_image: image.as_deref(),
                };
                let expected = serde_json::to_vec(&Body {
                    id_card: &id,
                    name,
                    image_base64: b64.as_deref(),
                })
                .unwrap();
                assert_eq!(json_body(&request, image.as_deref()).unwrap(), expected, "{len:?}");
            }
        }
    }

    fn sim_config() -> SimConfig {
        SimConfig::new(SECRET_ID, SecretKey::new(SECRET.to_owned()))
    }

    fn adapter_with(
        endpoint: String,
        secret_id: &str,
        secret: &str,
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> TencentFaceId {
        let http = http_client(timeout, rustls::RootCertStore::empty());
        let config = TencentConfig {
            name: "tencent-test".into(),
            endpoint,
            secret_id: secret_id.into(),
            secret_key: SecretKey::new(secret.to_owned()),
            region: Some("ap-guangzhou".into()),
            timeout,
        };
        match http.map(|http| TencentFaceId::new(config, http, clock)) {
            Ok(Ok(adapter)) => adapter,
            other => panic!("test adapter: {:?}", other.map(|r| r.err())),
        }
    }

    /// The adapter against a plain HTTP server on `addr`, with a 5 s timeout.
    fn adapter_at(addr: std::net::SocketAddr) -> TencentFaceId {
        adapter_with(
            format!("http://{addr}"),
            SECRET_ID,
            SECRET,
            Arc::new(SystemClock),
            Duration::from_secs(5),
        )
    }

    fn adapter(sim: &RunningSim, timeout: Duration) -> TencentFaceId {
        adapter_with(
            format!("http://{}", sim.addr),
            SECRET_ID,
            SECRET,
            Arc::new(SystemClock),
            timeout,
        )
    }

    async fn ask(adapter: &TencentFaceId, seq: u16, face: bool) -> Result<Outcome, ProviderError> {
        let id = id_with_seq(seq);
        let request = ProviderRequest {
            name: NAME,
            id_number: &id,
            face_image: face.then_some(JPEG),
        };
        // Every call is bounded so that a broken timeout fails the test instead of hanging it.
        tokio::time::timeout(Duration::from_secs(10), adapter.check(&request))
            .await
            .unwrap_or_else(|_| panic!("call for {seq:03} did not finish"))
    }

    #[tokio::test]
    async fn the_callers_trace_goes_along_to_the_provider() {
        use opentelemetry::trace::TraceContextExt as _;
        use tracing::Instrument as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        use tracing_subscriber::layer::SubscriberExt as _;

        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |headers: axum::http::HeaderMap| async move {
                let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok());
                record.lock().unwrap().push(traceparent.unwrap_or("none").to_owned());
                "{}"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let adapter = adapter_at(addr);

        // Outside any trace: no header.
        let _ = ask(&adapter, 0, false).await;
        let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::registry().with(crate::telemetry::otel_layer(&tracer)),
        );
        let span = tracing::info_span!("attempt");
        let trace_id = span.context().span().span_context().trace_id().to_string();
        let _ = ask(&adapter, 0, false).instrument(span).await;
        server.abort();

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0], "none");
        assert!(
            seen[1].starts_with("00-") && seen[1].contains(&trace_id),
            "traceparent {} for trace {trace_id}",
            seen[1]
        );
    }

    #[tokio::test]
    async fn every_simulator_row_maps_for_both_actions() {
        let sim = start(sim_config(), Arc::new(SystemClock)).await;
        let adapter = adapter(&sim, Duration::from_secs(5));
        let compared = |similarity| Ok(Outcome::FaceCompared { similarity });
        type Row = (u16, Result<Outcome, ProviderError>, Result<Outcome, ProviderError>);
        let rows: [Row; 12] = [
            (0, Ok(Outcome::Match), compared(92.5)),
            (899, Ok(Outcome::Match), compared(92.5)),
            (900, Ok(Outcome::Mismatch), Ok(Outcome::Mismatch)),
            (939, Ok(Outcome::Mismatch), Ok(Outcome::Mismatch)),
            (940, Ok(Outcome::CannotDecide), Ok(Outcome::CannotDecide)),
            (959, Ok(Outcome::CannotDecide), Ok(Outcome::CannotDecide)),
            (960, Ok(Outcome::Match), compared(35.0)),
            (969, Ok(Outcome::Match), compared(35.0)),
            (970, Ok(Outcome::Match), compared(62.0)),
            (979, Ok(Outcome::Match), compared(62.0)),
            (
                980,
                Err(ProviderError::Unavailable("-4")),
                Err(ProviderError::Unavailable("FailedOperation.CompareSystemError")),
            ),
            (
                989,
                Err(ProviderError::Unavailable("-4")),
                Err(ProviderError::Unavailable("FailedOperation.CompareSystemError")),
            ),
        ];
        for (seq, two_factor, face) in rows {
            assert_eq!(ask(&adapter, seq, false).await, two_factor, "{seq:03} two-factor");
            assert_eq!(ask(&adapter, seq, true).await, face, "{seq:03} face");
        }
        sim.stop().await;
    }

    #[tokio::test]
    async fn a_hanging_provider_times_out_and_the_simulator_still_shuts_down() {
        let mut sim = start(sim_config(), Arc::new(SystemClock)).await;
        let adapter = adapter(&sim, Duration::from_millis(200));
        for seq in [990, 999] {
            for face in [false, true] {
                let started = std::time::Instant::now();
                assert_eq!(ask(&adapter, seq, face).await, Err(ProviderError::Timeout));
                assert!(started.elapsed() < Duration::from_secs(5));
            }
        }
        // Leave one more hang in flight, with a client that would wait 30 s: shutdown must still
        // complete promptly, and the waiting client gets a failure, not an outcome.
        let patient = Arc::new(adapter_with(
            format!("http://{}", sim.addr),
            SECRET_ID,
            SECRET,
            Arc::new(SystemClock),
            Duration::from_secs(30),
        ));
        while sim.hangs.try_recv().is_ok() {} // forget the hangs above
        let in_flight = tokio::spawn({
            let patient = patient.clone();
            async move {
                let id = id_with_seq(995);
                let request = ProviderRequest {
                    name: NAME,
                    id_number: &id,
                    face_image: None,
                };
                patient.check(&request).await
            }
        });
        let started = tokio::time::timeout(Duration::from_secs(5), sim.hangs.recv()).await;
        assert!(
            matches!(started, Ok(Some(()))),
            "the 995 request never reached the simulator"
        );
        sim.stop().await;
        let answered = tokio::time::timeout(Duration::from_secs(5), in_flight).await;
        assert!(
            matches!(answered, Ok(Ok(Err(ProviderError::Unavailable("ServiceUnavailable"))))),
            "{answered:?}"
        );
    }

    #[tokio::test]
    async fn wrong_secret_is_refused_with_the_code_only() {
        let sim = start(sim_config(), Arc::new(SystemClock)).await;
        let endpoint = format!("http://{}", sim.addr);
        let timeout = Duration::from_secs(5);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);

        let wrong_key = adapter_with(endpoint.clone(), SECRET_ID, "not-the-key", clock.clone(), timeout);
        for face in [false, true] {
            assert_eq!(
                ask(&wrong_key, 0, face).await,
                Err(ProviderError::Refused("AuthFailure.SignatureFailure".into()))
            );
        }
        let wrong_id = adapter_with(endpoint.clone(), "AKIDother", SECRET, clock, timeout);
        assert_eq!(
            ask(&wrong_id, 0, false).await,
            Err(ProviderError::Refused("AuthFailure.SecretIdNotFound".into()))
        );
        // A gateway clock ten minutes off is a signature problem operators must fix.
        let skewed: Arc<dyn Clock> = Arc::new(ManualClock::new(SystemClock.now_unix() - 600));
        let late = adapter_with(endpoint, SECRET_ID, SECRET, skewed, timeout);
        assert_eq!(
            ask(&late, 0, false).await,
            Err(ProviderError::Refused("AuthFailure.SignatureExpire".into()))
        );
        sim.stop().await;
    }

    #[tokio::test]
    async fn scope_date_follows_utc_across_the_cst_midnight() {
        // 2024-03-01 00:30 in China is still 2024-02-29 in UTC; both sides must agree on UTC.
        let clock = Arc::new(ManualClock::new(1_709_224_200));
        let sim = start(sim_config(), clock.clone()).await;
        let adapter = adapter_with(
            format!("http://{}", sim.addr),
            SECRET_ID,
            SECRET,
            clock,
            Duration::from_secs(5),
        );
        assert_eq!(ask(&adapter, 1, false).await, Ok(Outcome::Match));
        sim.stop().await;
    }

    #[tokio::test]
    async fn injected_faults_are_unavailable() {
        let config = sim_config();
        config
            .control
            .set_faults(crate::providers::sim::Faults {
                error_rate: 1.0,
                ..Default::default()
            })
            .unwrap();
        let sim = start(config, Arc::new(SystemClock)).await;
        let adapter = adapter(&sim, Duration::from_secs(5));
        for face in [false, true] {
            assert_eq!(
                ask(&adapter, 0, face).await,
                Err(ProviderError::Unavailable("InternalError"))
            );
        }
        sim.stop().await;
    }

    #[tokio::test]
    async fn connection_refused_is_unavailable_connect() {
        // Bind, learn a free port, release it: nothing listens there now.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
        let addr = match listener.and_then(|l| l.local_addr()) {
            Ok(addr) => addr,
            Err(e) => panic!("bind: {e}"),
        };
        let adapter = adapter_at(addr);
        assert_eq!(
            ask(&adapter, 0, false).await,
            Err(ProviderError::Unavailable("connect"))
        );
    }

    #[tokio::test]
    async fn unusable_photos_are_answered_without_a_call() {
        // The endpoint is closed: any attempt to call would be Unavailable("connect").
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
        let addr = match listener.and_then(|l| l.local_addr()) {
            Ok(addr) => addr,
            Err(e) => panic!("bind: {e}"),
        };
        let adapter = adapter_at(addr);
        let id = id_with_seq(0);
        let mut too_large = JPEG.to_vec();
        too_large.resize(MAX_IMAGE_BASE64_BYTES / 4 * 3 + 1, 0);
        let gif = b"GIF89a....".to_vec();
        for image in [Vec::new(), too_large, gif] {
            let request = ProviderRequest {
                name: NAME,
                id_number: &id,
                face_image: Some(&image),
            };
            assert_eq!(adapter.check(&request).await, Ok(Outcome::PhotoUnusable));
        }
        // The largest photo that fits the documented limit is sent (and here fails to connect).
        let mut largest = JPEG.to_vec();
        largest.resize(MAX_IMAGE_BASE64_BYTES / 4 * 3, 0);
        let request = ProviderRequest {
            name: NAME,
            id_number: &id,
            face_image: Some(&largest),
        };
        assert_eq!(
            adapter.check(&request).await,
            Err(ProviderError::Unavailable("connect"))
        );
    }

    #[test]
    fn configuration_is_validated() {
        let build = |endpoint: &str, secret_id: &str, region: Option<&str>| {
            let http = http_client(Duration::from_secs(1), rustls::RootCertStore::empty());
            let Ok(http) = http else { panic!("http client") };
            TencentFaceId::new(
                TencentConfig {
                    name: "t".into(),
                    endpoint: endpoint.into(),
                    secret_id: secret_id.into(),
                    secret_key: SecretKey::new("k".into()),
                    region: region.map(str::to_owned),
                    timeout: Duration::from_secs(1),
                },
                http,
                Arc::new(SystemClock),
            )
            .map(|a| a.host)
        };
        assert_eq!(
            build(DEFAULT_ENDPOINT, "AKID1", None),
            Ok("faceid.tencentcloudapi.com".into())
        );
        assert_eq!(
            build("https://faceid.tencentcloudapi.com:443/", "AKID1", None),
            Ok("faceid.tencentcloudapi.com".into())
        );
        assert_eq!(
            build("http://127.0.0.1:8080", "AKID1", None),
            Ok("127.0.0.1:8080".into())
        );
        assert_eq!(build("http://[::1]:8080", "AKID1", None), Ok("[::1]:8080".into()));
        assert_eq!(build("http://localhost:81", "AKID1", None), Ok("localhost:81".into()));
        for (endpoint, expected) in [
            (
                "http://faceid.tencentcloudapi.com",
                TencentConfigError::EndpointNotHttps,
            ),
            ("http://10.0.0.1:80", TencentConfigError::EndpointNotHttps),
            ("ftp://127.0.0.1", TencentConfigError::EndpointNotHttps),
            (
                "https://faceid.tencentcloudapi.com/v1",
                TencentConfigError::EndpointNotBare,
            ),
            (
                "https://faceid.tencentcloudapi.com/?a=b",
                TencentConfigError::EndpointNotBare,
            ),
            (
                "https://u:p@faceid.tencentcloudapi.com",
                TencentConfigError::EndpointNotBare,
            ),
            ("faceid.tencentcloudapi.com", TencentConfigError::EndpointNotUrl),
        ] {
            assert_eq!(build(endpoint, "AKID1", None), Err(expected), "{endpoint}");
        }
        for bad_id in ["", "AKID 1", "AKID/1", "AKID,1", "密钥"] {
            assert_eq!(
                build(DEFAULT_ENDPOINT, bad_id, None),
                Err(TencentConfigError::BadSecretId)
            );
        }
        assert_eq!(
            build(DEFAULT_ENDPOINT, "AKID1", Some("ap guangzhou")),
            Err(TencentConfigError::BadRegion)
        );
    }

    #[test]
    fn debug_output_holds_no_secrets() {
        let config = TencentConfig {
            name: "t".into(),
            endpoint: DEFAULT_ENDPOINT.into(),
            secret_id: "AKID1".into(),
            secret_key: SecretKey::new("very-secret-value".into()),
            region: None,
            timeout: Duration::from_secs(1),
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("SecretKey(***)"), "{shown}");
        assert!(!shown.contains("very-secret-value"));
    }

    #[test]
    fn malformed_answers_never_panic_and_never_match() {
        let junk: &[&[u8]] = &[
            b"",
            b"null",
            b"{}",
            b"[]",
            b"\xff\xfe",
            br#"{"Response":null}"#,
            br#"{"Response":{}}"#,
            br#"{"Response":{"Result":0}}"#,
            br#"{"Response":{"Result":"Success"}}"#,
            br#"{"Response":{"Result":"Success","Sim":"92"}}"#,
            br#"{"Response":{"Result":"Success","Sim":101}}"#,
            br#"{"Response":{"Result":"Success","Sim":-1}}"#,
            br#"{"Response":{"Error":{}}}"#,
            br#"{"Response":{"Error":{"Code":7}}}"#,
            br#"{"Response":{"Error":{"Code":"FailedOperation.Brand.New"}}}"#,
            br#"{"Response":{"Error":{"Code":"Success"}},"Result":"Success","Sim":99}"#,
            br#"{"Response":{"Result":"0","Sim":99}"#,
        ];
        for body in junk {
            for action in [ACTION_ID_CARD, ACTION_FACE] {
                let (result, _) = interpret(action, 200, body);
                assert!(
                    !matches!(result, Ok(Outcome::Match) | Ok(Outcome::FaceCompared { .. })),
                    "{action} {:?} gave {result:?}",
                    String::from_utf8_lossy(body)
                );
            }
        }
        // An Error object wins over a Result that looks like success.
        let both =
            br#"{"Response":{"Error":{"Code":"InternalError"},"Result":"Success","Sim":99,"RequestId":"abc-1"}}"#;
        assert_eq!(
            interpret(ACTION_FACE, 200, both),
            (Err(ProviderError::Unavailable("InternalError")), Some("abc-1".into()))
        );
        // A Result of the other action is not accepted.
        let (result, _) = interpret(ACTION_ID_CARD, 200, br#"{"Response":{"Result":"Success","Sim":99}}"#);
        assert!(matches!(result, Err(ProviderError::Protocol(_))));
        // HTTP-level failures.
        assert_eq!(
            interpret(ACTION_FACE, 503, b"").0,
            Err(ProviderError::Unavailable("http-5xx"))
        );
        assert_eq!(
            interpret(ACTION_FACE, 302, b"").0,
            Err(ProviderError::Protocol("http status 302".into()))
        );
        // A request id that is not an id is not logged.
        let echo = "{\"Response\":{\"Result\":\"0\",\"RequestId\":\"110105194912310021 张三\"}}";
        assert_eq!(
            interpret(ACTION_ID_CARD, 200, echo.as_bytes()),
            (Ok(Outcome::Match), None)
        );
    }

    /// A `MakeWriter` target that keeps everything written, for inspecting log output.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut inner) = self.0.lock() {
                inner.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            self.0
                .lock()
                .map(|inner| String::from_utf8_lossy(&inner).into_owned())
                .unwrap_or_default()
        }
    }

    // Single-threaded runtime: the subscriber is thread-local, and the simulator's tasks run on the
    // same thread, so its log lines are captured too.
    #[tokio::test(flavor = "current_thread")]
    async fn no_personal_data_reaches_the_logs() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);

        let sim = start(sim_config(), Arc::new(SystemClock)).await;
        let good = adapter(&sim, Duration::from_secs(5));
        let bad = adapter_with(
            format!("http://{}", sim.addr),
            SECRET_ID,
            "wrong",
            Arc::new(SystemClock),
            Duration::from_secs(5),
        );
        let mut ids = Vec::new();
        for seq in [0, 900, 940, 960, 980] {
            ids.push(id_with_seq(seq));
            for face in [false, true] {
                let _ = ask(&good, seq, face).await;
            }
        }
        ids.push(id_with_seq(0));
        let _ = ask(&bad, 0, true).await;
        sim.stop().await;
        drop(guard);

        let logs = captured.text();
        assert!(logs.contains(ACTION_ID_CARD) && logs.contains(ACTION_FACE), "{logs}");
        assert!(logs.contains("sim answered"), "{logs}");
        assert!(!logs.contains(NAME), "{logs}");
        for id in &ids {
            assert!(!logs.contains(id.as_str()), "{logs}");
            // Not even the part that encodes the birth date.
            assert!(!logs.contains(&id[6..14]), "{logs}");
        }
        let image_b64 = base64::engine::general_purpose::STANDARD.encode(JPEG);
        assert!(!logs.contains(&image_b64), "{logs}");
        assert!(!logs.contains(SECRET), "{logs}");
    }
}
