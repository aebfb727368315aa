//! Alibaba Cloud ID Verification (`cloudauth`, API version 2019-03-07) as an identity [`Provider`].
//!
//! Two actions: `Id2MetaVerify` (name + ID number against the authority, for the two-factor check;
//! used when the request has no face image) and `ContrastFaceVerify` (`ProductCode` `ID_MIN`: the
//! face photo, base64 in `FaceContrastPicture`, compared with the authority's ID photo; used for
//! live-account anchors, needs a `SceneId`). Requests are form-encoded `POST`s to `/` signed with
//! `ACS3-HMAC-SHA256` ([`signing`]); answers are mapped by one table ([`codes`]).
//!
//! Vendor pages this follows (see [`codes`] and [`signing`] for what each one settled):
//! - <https://help.aliyun.com/zh/id-verification/information-verification/developer-reference/vatsl9lfmbwe74iv>
//!   (`Id2MetaVerify`: `ParamType=normal`, `IdentifyNum`, `UserName`; `ResultObject.BizCode`)
//! - <https://help.aliyun.com/document_detail/163107.html> (`ContrastFaceVerify`: `SceneId`,
//!   `OuterOrderNo`, `ProductCode=ID_MIN`, `CertType=IDENTITY_CARD`, `CertName`, `CertNo`,
//!   `FaceContrastPicture`; photos under 1 MB)
//! - <https://help.aliyun.com/document_detail/2593177.html> (signature V3)
//!
//! Not found in the vendor's pages read for this module, hence not relied on: a similarity score in
//! `ContrastFaceVerify`'s answer (a passed check is [`Outcome::Match`], i.e. review for an anchor);
//! a retry time in throttling answers; whether business errors come with HTTP 200 or 4xx (both are
//! read: any JSON answer with a `Code` is mapped, whatever the status).
//!
//! This adapter must never: retry (one HTTP request per [`Provider::check`]); put any part of a
//! request (name, ID number, photo) into an error, a log line or `Debug` output, nor the vendor's
//! `Message` (it may echo the input; it is not even deserialized); send personal data in a URL or
//! over plain HTTP to anything but loopback; turn an unknown or malformed answer into an outcome.

pub mod codes;
pub mod signing;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::Value;

use crate::clock::Clock;
use crate::providers::credentials::SecretKey;
use crate::providers::{CheckFuture, Outcome, Provider, ProviderError, ProviderRequest};
use crate::providers::{http, sanitize};

pub use codes::{ACTION_FACE, ACTION_ID2};

/// The public endpoint of the Chinese mainland service.
pub const DEFAULT_ENDPOINT: &str = "https://cloudauth.aliyuncs.com";
/// `x-acs-version` of both actions.
pub const API_VERSION: &str = "2019-03-07";
/// `ContrastFaceVerify` asks for photos "小于1 MB"; larger ones are refused locally.
pub const MAX_IMAGE_BYTES: usize = 1024 * 1024;

/// Configuration of one Alibaba Cloud account.
#[derive(Debug)]
pub struct AliyunConfig {
    /// The provider name for case records and metrics.
    pub name: String,
    /// Base URL, normally [`DEFAULT_ENDPOINT`]; `http://127.0.0.1:PORT` for the simulator.
    pub endpoint: String,
    /// AccessKey ID.
    pub access_key_id: String,
    /// AccessKey secret.
    pub access_key_secret: SecretKey,
    /// `SceneId` of the face check (created in the console); without it anchors are not checked
    /// here (the call is refused locally, and the router fails over).
    pub scene_id: Option<String>,
    /// Hard limit for one call.
    pub timeout: Duration,
}

/// An [`AliyunConfig`] that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AliyunConfigError {
    #[error("provider name is empty")]
    EmptyName,
    #[error(transparent)]
    Endpoint(#[from] http::EndpointError),
    #[error("AccessKey ID must be a non-empty token of letters, digits, '-' and '_'")]
    BadAccessKeyId,
    #[error("AccessKey secret is empty")]
    EmptySecret,
    #[error("scene_id must be digits")]
    BadSceneId,
    #[error("timeout must be greater than zero")]
    ZeroTimeout,
}

/// The Alibaba Cloud ID Verification adapter.
pub struct AliyunCloudAuth {
    name: String,
    url: reqwest::Url,
    /// The `Host` header as the client sends it; it is signed.
    host: String,
    access_key_id: String,
    secret: SecretKey,
    scene_id: Option<String>,
    timeout: Duration,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AliyunCloudAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AliyunCloudAuth")
            .field("name", &self.name)
            .field("endpoint", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl AliyunCloudAuth {
    /// Validates the configuration. `http` should come from [`http::http_client`].
    pub fn new(config: AliyunConfig, http: reqwest::Client, clock: Arc<dyn Clock>) -> Result<Self, AliyunConfigError> {
        if config.name.trim().is_empty() {
            return Err(AliyunConfigError::EmptyName);
        }
        // It goes into the Authorization header between '=' and ','.
        let id = &config.access_key_id;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(AliyunConfigError::BadAccessKeyId);
        }
        if config.access_key_secret.is_empty() {
            return Err(AliyunConfigError::EmptySecret);
        }
        if let Some(scene) = &config.scene_id
            && (scene.is_empty() || !scene.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(AliyunConfigError::BadSceneId);
        }
        if config.timeout.is_zero() {
            return Err(AliyunConfigError::ZeroTimeout);
        }
        let (url, host) = http::endpoint(&config.endpoint)?;
        Ok(Self {
            name: config.name,
            url,
            host,
            access_key_id: config.access_key_id,
            secret: config.access_key_secret,
            scene_id: config.scene_id,
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
            None => (
                ACTION_ID2,
                signing::form_body(&[
                    ("ParamType", "normal"),
                    ("IdentifyNum", request.id_number),
                    ("UserName", request.name),
                ])
                .into_bytes(),
            ),
            Some(image) => {
                if let Some(reason) = unusable_image(image) {
                    tracing::debug!(provider = %self.name, reason, "photo refused locally, no call made");
                    return (ACTION_FACE, Ok(Outcome::PhotoUnusable), None);
                }
                let Some(scene) = &self.scene_id else {
                    return (ACTION_FACE, Err(ProviderError::NotConfigured("scene_id")), None);
                };
                let Ok(order) = crate::crypto::random::bytes::<16>() else {
                    return (ACTION_FACE, Err(ProviderError::Unavailable("randomness")), None);
                };
                let order = hex::encode(order);
                (
                    ACTION_FACE,
                    signing::form_body_with_base64(
                        &[
                            ("SceneId", scene),
                            ("OuterOrderNo", &order),
                            ("ProductCode", "ID_MIN"),
                            ("CertType", "IDENTITY_CARD"),
                            ("CertName", request.name),
                            ("CertNo", request.id_number),
                        ],
                        "FaceContrastPicture",
                        image,
                    ),
                )
            }
        };
        let Some(date) = signing::format_date(self.clock.now_unix()) else {
            return (action, Err(ProviderError::Unavailable("local-clock")), None);
        };
        let Ok(nonce) = crate::crypto::random::bytes::<16>().map(hex::encode) else {
            return (action, Err(ProviderError::Unavailable("randomness")), None);
        };
        let signed = signing::Signed {
            host: &self.host,
            action,
            version: API_VERSION,
            date: &date,
            nonce: &nonce,
            content_type: signing::CONTENT_TYPE,
            body: &body,
        };
        let authorization = signing::authorization(&self.access_key_id, &self.secret, &signed);
        let content_sha256 = signing::sha256_hex(&body);
        let builder = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, signing::CONTENT_TYPE)
            .header(AUTHORIZATION, authorization)
            .header("x-acs-action", action)
            .header("x-acs-version", API_VERSION)
            .header("x-acs-date", date.as_str())
            .header("x-acs-signature-nonce", nonce.as_str())
            .header("x-acs-content-sha256", content_sha256);
        http::call_vendor(action, builder, body, self.timeout, interpret).await
    }
}

impl Provider for AliyunCloudAuth {
    fn name(&self) -> &str {
        &self.name
    }

    fn check<'a>(&'a self, request: &'a ProviderRequest<'a>) -> CheckFuture<'a> {
        Box::pin(http::logged(&self.name, self.call(request)))
    }
}

/// Why a photo is refused before any call: empty, 1 MB or more, not JPEG/PNG.
fn unusable_image(image: &[u8]) -> Option<&'static str> {
    if image.is_empty() {
        Some("empty")
    } else if image.len() >= MAX_IMAGE_BYTES {
        Some("too large")
    } else if !http::is_jpeg_or_png(image) {
        Some("not jpeg or png")
    } else {
        None
    }
}

// Only the fields acted on; `Message` is deliberately absent. Values are kept as JSON because the
// codes are documented as strings but seen as numbers in the wild.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Code")]
    code: Option<Value>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
    #[serde(rename = "ResultObject")]
    result: Option<ResultObject>,
}

#[derive(Deserialize)]
struct ResultObject {
    #[serde(rename = "BizCode")]
    biz_code: Option<Value>,
    #[serde(rename = "Passed")]
    passed: Option<Value>,
    #[serde(rename = "SubCode")]
    sub_code: Option<Value>,
}

fn code_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// Turns one HTTP answer into an outcome. Pure, total, never panics.
pub(crate) fn interpret(action: &str, status: u16, body: &[u8]) -> (Result<Outcome, ProviderError>, Option<String>) {
    let envelope = serde_json::from_slice::<Envelope>(body).ok();
    let request_id = envelope
        .as_ref()
        .and_then(|e| e.request_id.as_deref())
        .and_then(sanitize::request_id);
    let code = envelope.as_ref().and_then(|e| e.code.as_ref()).and_then(code_text);
    let result = match (status, code) {
        (429, _) => Err(ProviderError::RateLimited {
            code: "http-429".into(),
            retry_after: None,
        }),
        (200, Some(code)) => match codes::top_level(action, &code) {
            Ok(Some(outcome)) => Ok(outcome),
            Err(e) => Err(e),
            Ok(None) => {
                let result = envelope.and_then(|e| e.result);
                read_result(action, result)
            }
        },
        // Gateway errors come with 4xx/5xx and a JSON body naming the code.
        (_, Some(code)) => match codes::top_level(action, &code) {
            Err(e) => Err(e),
            Ok(_) if status >= 500 => Err(ProviderError::Unavailable("http-5xx")),
            Ok(_) => Err(ProviderError::Protocol(format!("http status {status} with a result"))),
        },
        (500..=599, None) => Err(ProviderError::Unavailable("http-5xx")),
        (200, None) => Err(ProviderError::Protocol("malformed response".into())),
        (_, None) => Err(ProviderError::Protocol(format!("http status {status}"))),
    };
    (result, request_id)
}

fn read_result(action: &str, result: Option<ResultObject>) -> Result<Outcome, ProviderError> {
    let missing = || ProviderError::Protocol("response without ResultObject".into());
    let result = result.ok_or_else(missing)?;
    if action == ACTION_ID2 {
        let biz = result.biz_code.as_ref().and_then(code_text).ok_or_else(missing)?;
        codes::biz_code(&biz)
    } else {
        let passed = result.passed.as_ref().and_then(code_text).ok_or_else(missing)?;
        let sub = result.sub_code.as_ref().and_then(code_text).ok_or_else(missing)?;
        codes::face_result(&passed, &sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interprets_documented_shapes() {
        let ok = br#"{"RequestId":"130A2C10-B9EE-4D84-88E3-5384FF039795","Code":"200","Message":"success","ResultObject":{"BizCode":"1"}}"#;
        assert_eq!(
            interpret(ACTION_ID2, 200, ok),
            (Ok(Outcome::Match), Some("130A2C10-B9EE-4D84-88E3-5384FF039795".into()))
        );
        let numeric = br#"{"Code":200,"ResultObject":{"BizCode":2}}"#;
        assert_eq!(interpret(ACTION_ID2, 200, numeric).0, Ok(Outcome::Mismatch));
        let face = br#"{"Code":"200","ResultObject":{"Passed":"F","SubCode":"204","CertifyId":"x"}}"#;
        assert_eq!(interpret(ACTION_FACE, 200, face).0, Ok(Outcome::Mismatch));
        let down = br#"{"Code":"402","Message":"x"}"#;
        assert_eq!(
            interpret(ACTION_ID2, 200, down).0,
            Err(ProviderError::Unavailable("402"))
        );
        let sig = br#"{"RequestId":"r","HostId":"h","Code":"SignatureDoesNotMatch","Message":"m"}"#;
        assert_eq!(
            interpret(ACTION_ID2, 400, sig).0,
            Err(ProviderError::Refused("SignatureDoesNotMatch".into()))
        );
        let throttled = br#"{"Code":"Throttling.User","Message":"m"}"#;
        assert!(matches!(
            interpret(ACTION_FACE, 400, throttled).0,
            Err(ProviderError::RateLimited { .. })
        ));
        assert_eq!(
            interpret(ACTION_ID2, 503, b"<html>").0,
            Err(ProviderError::Unavailable("http-5xx"))
        );
        assert_eq!(
            interpret(ACTION_ID2, 503, br#"{"Code":"200","ResultObject":{"BizCode":"1"}}"#).0,
            Err(ProviderError::Unavailable("http-5xx"))
        );
        assert!(matches!(
            interpret(ACTION_ID2, 200, b"{}").0,
            Err(ProviderError::Protocol(_))
        ));
        assert!(matches!(
            interpret(ACTION_ID2, 200, br#"{"Code":"200"}"#).0,
            Err(ProviderError::Protocol(_))
        ));
        assert!(matches!(
            interpret(ACTION_ID2, 200, br#"{"Code":"200","ResultObject":{"BizCode":"9"}}"#).0,
            Err(ProviderError::Protocol(_))
        ));
    }

    #[test]
    fn nothing_of_a_hostile_answer_leaks_into_errors() {
        let hostile = br#"{"Code":"11010519491231002X","RequestId":"<script>","Message":"11010519491231002X"}"#;
        let (result, request_id) = interpret(ACTION_ID2, 200, hostile);
        assert_eq!(request_id, None);
        let text = format!("{:?}", result);
        assert!(!text.contains("110105"), "{text}");
    }

    #[test]
    fn config_is_validated() {
        let http = http::http_client(Duration::from_secs(1), rustls::RootCertStore::empty()).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let config = |endpoint: &str, id: &str, scene: Option<&str>| AliyunConfig {
            name: "aliyun".into(),
            endpoint: endpoint.into(),
            access_key_id: id.into(),
            access_key_secret: SecretKey::new("s".into()),
            scene_id: scene.map(str::to_owned),
            timeout: Duration::from_secs(1),
        };
        let make = |c| AliyunCloudAuth::new(c, http.clone(), clock.clone()).map(|_| ());
        assert_eq!(make(config(DEFAULT_ENDPOINT, "LTAI5t", Some("1000000006"))), Ok(()));
        assert_eq!(make(config("http://127.0.0.1:9", "LTAI5t", None)), Ok(()));
        assert_eq!(
            make(config("http://example.com", "LTAI5t", None)),
            Err(AliyunConfigError::Endpoint(http::EndpointError::NotHttps))
        );
        assert_eq!(
            make(config(DEFAULT_ENDPOINT, "a,b", None)),
            Err(AliyunConfigError::BadAccessKeyId)
        );
        assert_eq!(
            make(config(DEFAULT_ENDPOINT, "LTAI5t", Some("12a"))),
            Err(AliyunConfigError::BadSceneId)
        );
        let dbg = format!("{:?}", config(DEFAULT_ENDPOINT, "LTAI5t", None));
        assert!(!dbg.contains("\"s\""), "{dbg}");
    }
}
