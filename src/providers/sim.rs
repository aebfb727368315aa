//! A stand-in for Tencent Cloud FaceID or (with [`Protocol::Aliyun`]) Alibaba Cloud ID
//! Verification ([`aliyun`] has its outcome table), speaking the vendor's wire protocol over plain
//! HTTP/1.1 on a listener the caller binds (normally `127.0.0.1:0`), for tests, demos and load
//! drills that must not reach the real, billed service.
//!
//! Faults ([`Faults`]: latency fixed and uniformly jittered, vendor internal errors, hangs, HTTP
//! 5xx, malformed bodies, signature failures, rate-limit answers, a daily cap) are drawn per
//! request from the seed, and can be changed at run time through [`SimControl`] or, from loopback
//! only, `POST /_sim/faults` (JSON [`Faults`]); `GET /_sim/stats` reports `{"requests": n}`.
//!
//! It verifies TC3-HMAC-SHA256 signatures exactly as documented (SecretId, UTC scope date, service,
//! timestamp window, signature over the received body and `Host`) and answers by the ID number's
//! three-digit sequence code (characters 15–17):
//!
//! | seq     | `IdCardVerification` | `ImageRecognitionV2`                              |
//! |---------|----------------------|---------------------------------------------------|
//! | 000–899 | `"0"`                | `Success`, Sim 92.5                               |
//! | 900–939 | `"-1"`               | `FailedOperation.IdNameMisMatch`                  |
//! | 940–959 | `"-5"`               | `FailedOperation.IdPhotoNoExist`                  |
//! | 960–969 | `"0"`                | `FailedOperation.CompareLowSimilarity`, Sim 35.0  |
//! | 970–979 | `"0"`                | `Success`, Sim 62.0                               |
//! | 980–989 | `"-4"`               | `FailedOperation.CompareSystemError`              |
//! | 990–999 | never answers (until the server shuts down)              | same          |
//!
//! As Tencent documents for `ImageRecognitionV2`, business outcomes (`Success` and the
//! `FailedOperation.*` codes) come in `Response.Result` next to `Sim`; failures of the call itself
//! (signature, parameters, internal errors) come in `Response.Error`.
//!
//! It must never: log names, ID numbers or images (it logs the action and the answer code only),
//! echo any input in an answer, let a hanging request keep the server from shutting down, or
//! accept fault changes from anything but a loopback peer.

mod aliyun;
pub mod dev;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::providers::credentials::SecretKey;
use crate::providers::tencent::{ACTION_FACE, ACTION_ID_CARD, API_VERSION, MAX_IMAGE_BASE64_BYTES, SERVICE, signing};

/// Largest request body accepted; larger ones get `RequestSizeLimitExceeded`.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Which vendor the simulator speaks (`idgate provider-sim --protocol tencent|aliyun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Protocol {
    /// Tencent Cloud FaceID 2018-03-01, TC3-HMAC-SHA256.
    #[default]
    Tencent,
    /// Alibaba Cloud ID Verification 2019-03-07, ACS3-HMAC-SHA256.
    Aliyun,
}

/// Injected faults. Rates are shares (0..=1) of requests, drawn per request in this order: hang,
/// HTTP 5xx, malformed body, bad signature, rate limit, internal error; latency applies to all.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added before every answer.
    pub latency_ms: u64,
    /// Plus a uniformly drawn 0..=this many milliseconds.
    pub latency_jitter_ms: u64,
    /// Never answers (until shutdown).
    pub hang_rate: f64,
    /// HTTP 503 with an HTML body, as a front end answers.
    pub http_5xx_rate: f64,
    /// HTTP 200 with a truncated JSON body.
    pub malformed_rate: f64,
    /// Answered as a signature failure whatever was sent.
    pub bad_signature_rate: f64,
    /// Answered with the vendor's rate-limit code (`RequestLimitExceeded` / `Throttling.User`).
    pub rate_limit_rate: f64,
    /// An otherwise valid, authenticated request gets the vendor's internal error.
    pub error_rate: f64,
    /// Business answers per day (China time) before the vendor's quota code
    /// (`LimitExceeded` / `Throttling.User`); `None` = no cap.
    pub daily_cap: Option<u64>,
}

/// Faults that cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FaultsError {
    #[error("fault rates must be between 0 and 1")]
    Rate,
}

impl Faults {
    pub fn validate(&self) -> Result<(), FaultsError> {
        let rates = [
            self.hang_rate,
            self.http_5xx_rate,
            self.malformed_rate,
            self.bad_signature_rate,
            self.rate_limit_rate,
            self.error_rate,
        ];
        if rates.iter().all(|r| (0.0..=1.0).contains(r)) {
            Ok(())
        } else {
            Err(FaultsError::Rate)
        }
    }
}

/// The run-time handle on a simulator: its faults and its request counter. Shared with the
/// caller (tests keep a clone) and with the admin endpoint.
#[derive(Debug, Default)]
pub struct SimControl {
    faults: Mutex<Faults>,
    requests: AtomicU64,
    /// (day, business answers that day) for the daily cap.
    answered: Mutex<Option<(time::Date, u64)>>,
}

impl SimControl {
    pub fn new(faults: Faults) -> Result<Arc<Self>, FaultsError> {
        faults.validate()?;
        Ok(Arc::new(Self {
            faults: Mutex::new(faults),
            ..Self::default()
        }))
    }

    /// Replaces the faults (for requests that arrive from now on).
    pub fn set_faults(&self, faults: Faults) -> Result<(), FaultsError> {
        faults.validate()?;
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
        Ok(())
    }

    pub fn faults(&self) -> Faults {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Requests received so far (admin requests excluded).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Counts one business answer; false once today's cap is used up.
    fn within_daily_cap(&self, cap: Option<u64>, today: time::Date) -> bool {
        let Some(cap) = cap else { return true };
        let mut answered = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        let count = match &mut *answered {
            Some((day, count)) if *day == today => count,
            slot => &mut slot.insert((today, 0)).1,
        };
        if *count >= cap {
            return false;
        }
        *count += 1;
        true
    }
}

/// How the simulator behaves.
#[derive(Debug)]
pub struct SimConfig {
    /// The one SecretId / AccessKey ID it accepts.
    pub secret_id: String,
    /// Its SecretKey / AccessKey secret.
    pub secret_key: SecretKey,
    pub protocol: Protocol,
    /// Allowed clock distance (Tencent: 300 s, Alibaba Cloud: 900 s).
    pub max_skew_seconds: i64,
    /// Seeds the fault draws and request ids, so a run with the same seed and request order
    /// faults on the same requests.
    pub seed: u64,
    /// Faults and counters, changeable while running.
    pub control: Arc<SimControl>,
}

impl SimConfig {
    /// Tencent protocol, no faults, a 300-second window, seed 0.
    pub fn new(secret_id: impl Into<String>, secret_key: SecretKey) -> Self {
        Self {
            secret_id: secret_id.into(),
            secret_key,
            protocol: Protocol::Tencent,
            max_skew_seconds: 300,
            seed: 0,
            control: Arc::new(SimControl::default()),
        }
    }

    /// Alibaba Cloud protocol, no faults, a 900-second window, seed 0.
    pub fn aliyun(access_key_id: impl Into<String>, secret: SecretKey) -> Self {
        Self {
            protocol: Protocol::Aliyun,
            max_skew_seconds: 900,
            ..Self::new(access_key_id, secret)
        }
    }
}

/// A fault chosen for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fault {
    Hang,
    Http5xx,
    Malformed,
    BadSignature,
    RateLimited,
    Error,
}

struct Sim {
    config: SimConfig,
    clock: Arc<dyn Clock>,
    stopping: watch::Receiver<bool>,
    /// Alibaba Cloud nonces seen within the time window (replays are refused).
    nonces: Mutex<std::collections::HashMap<String, i64>>,
    /// Told each time a request starts hanging; lets tests wait for that instead of sleeping.
    hang_probe: Option<tokio::sync::mpsc::UnboundedSender<()>>,
}

/// Serves the simulator on `listener` until `shutdown` completes, then finishes in-flight requests
/// (hanging ones are released) and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: SimConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run(listener, config, clock, shutdown, None).await
}

async fn run(
    listener: tokio::net::TcpListener,
    config: SimConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    hang_probe: Option<tokio::sync::mpsc::UnboundedSender<()>>,
) -> std::io::Result<()> {
    let (stop_tx, stopping) = watch::channel(false);
    let sim = Arc::new(Sim {
        config,
        clock,
        stopping,
        nonces: Mutex::new(std::collections::HashMap::new()),
        hang_probe,
    });
    let app = Router::new()
        .route("/", post(handle).fallback(not_found))
        .route("/_sim/faults", post(set_faults).get(get_faults))
        .route("/_sim/stats", get(stats))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(sim);
    // Graceful shutdown waits for in-flight requests; the watch tells hanging handlers to give up,
    // so a 99x request cannot hold the server open.
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    // No Nagle delay: an answer is one small write, and it should leave at once, as a vendor's does.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(signal)
        .await
}

/// What the simulator decided to answer. Holds only static strings: nothing from the request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Error(&'static str),
    IdCard(&'static str),
    Face(&'static str, f64),
    Hang,
}

impl Answer {
    fn code(self) -> &'static str {
        match self {
            Answer::Error(code) | Answer::IdCard(code) | Answer::Face(code, _) => code,
            Answer::Hang => "hang",
        }
    }
}

async fn not_found() -> Response {
    // Only `POST /` exists in API 3.0; anything else is a client mistake, answered in kind.
    render(Answer::Error("UnsupportedProtocol"), "sim-00000000")
}

async fn set_faults(State(sim): State<Arc<Sim>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    if !peer.ip().is_loopback() {
        return StatusCode::FORBIDDEN.into_response();
    }
    let Ok(faults) = serde_json::from_slice::<Faults>(&body) else {
        return (StatusCode::BAD_REQUEST, "faults: bad JSON").into_response();
    };
    match sim.config.control.set_faults(faults) {
        Ok(()) => {
            tracing::info!("sim faults changed");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn get_faults(State(sim): State<Arc<Sim>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    if !peer.ip().is_loopback() {
        return StatusCode::FORBIDDEN.into_response();
    }
    axum::Json(sim.config.control.faults()).into_response()
}

async fn stats(State(sim): State<Arc<Sim>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    if !peer.ip().is_loopback() {
        return StatusCode::FORBIDDEN.into_response();
    }
    axum::Json(json!({"requests": sim.config.control.requests()})).into_response()
}

async fn handle(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let n = sim.config.control.requests.fetch_add(1, Ordering::SeqCst);
    let request_id = format!("sim-{n:08x}-{:016x}", splitmix64(sim.config.seed ^ n.rotate_left(32)));
    let faults = sim.config.control.faults();
    let fault = sim.pick_fault(n, &faults);

    let mut stopping = sim.stopping.clone();
    let latency = Duration::from_millis(faults.latency_ms.saturating_add(if faults.latency_jitter_ms == 0 {
        0
    } else {
        splitmix64(sim.config.seed ^ n.wrapping_mul(31) ^ 0x1a7e) % (faults.latency_jitter_ms + 1)
    }));
    let (action, response) = match fault {
        Some(Fault::Hang) => ("fault", None),
        Some(Fault::Http5xx) => (
            "fault",
            Some(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body>503 Service Temporarily Unavailable</body></html>",
                )
                    .into_response(),
            ),
        ),
        Some(Fault::Malformed) => (
            "fault",
            Some(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    "{\"Response\":{\"Res",
                )
                    .into_response(),
            ),
        ),
        _ => match sim.config.protocol {
            Protocol::Tencent => {
                let (action, answer) = sim.answer(n, &headers, body, fault, &faults);
                // Debug: the gateway logs each provider answer already, and at full load this line
                // per call cost the dev server a visible share of its CPU.
                tracing::debug!(action, code = answer.code(), "sim answered");
                let response = (answer != Answer::Hang).then(|| render(answer, &request_id));
                (action, response)
            }
            Protocol::Aliyun => aliyun::answer(&sim, &headers, body, fault, &faults, &request_id),
        },
    };
    let Some(response) = response else {
        if let Some(probe) = &sim.hang_probe {
            let _ = probe.send(());
        }
        tracing::info!(action, "sim hangs");
        // Returns when the server shuts down (or the sender is gone, which is the same thing).
        let _ = stopping.wait_for(|stop| *stop).await;
        // Released by shutdown: fail the way the vendor fails when it goes away.
        return match sim.config.protocol {
            Protocol::Tencent => render(Answer::Error("ServiceUnavailable"), &request_id),
            Protocol::Aliyun => aliyun::shutting_down(&request_id),
        };
    };
    if !latency.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(latency) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    }
    response
}

fn render(answer: Answer, request_id: &str) -> Response {
    let error =
        |code: &str| json!({"Response": {"Error": {"Code": code, "Message": message(code)}, "RequestId": request_id}});
    let body = match answer {
        Answer::Error(code) => error(code),
        Answer::IdCard(result) => {
            json!({"Response": {"Result": result, "Description": message(result), "RequestId": request_id}})
        }
        Answer::Face(result, sim) => {
            json!({"Response": {"Sim": sim, "Result": result, "Description": message(result), "RequestId": request_id}})
        }
        // The handler resolves hangs itself; should one get here, fail the way Tencent fails.
        Answer::Hang => error("InternalError"),
    };
    // Tencent answers API errors with HTTP 200 and an Error object, so does the simulator.
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Fixed texts in Tencent's style. Never built from the request.
fn message(code: &str) -> &'static str {
    match code {
        "0" => "姓名和身份证号一致",
        "-1" => "姓名和身份证号不一致",
        "-2" => "非法身份证号",
        "-3" => "非法姓名",
        "-4" => "证件库服务异常",
        "-5" => "证件库中无此身份证记录",
        "Success" => "成功",
        "FailedOperation.IdNameMisMatch" => "姓名和身份证号不一致，请核实后重试。",
        "FailedOperation.IdPhotoNoExist" => "库中无此号照片，请到户籍所在地进行核实。",
        "FailedOperation.CompareLowSimilarity" => "比对相似度未达到通过标准。",
        "FailedOperation.CompareSystemError" => "调用比对引擎接口出错。",
        "FailedOperation.IdFormatError" => "输入的身份证号有误。",
        "FailedOperation.NameFormatError" => "输入的姓名有误。",
        "FailedOperation.LifePhotoSizeError" => "传入图片过大或过小。",
        "AuthFailure.SignatureFailure" => "The provided credentials could not be validated.",
        "AuthFailure.SignatureExpire" => "Signature expired.",
        "AuthFailure.SecretIdNotFound" => "The SecretId is not found.",
        "AuthFailure.InvalidAuthorization" => "The Authorization header is invalid.",
        "InternalError" => "Internal error.",
        "RequestLimitExceeded" => "Your request is rate-limited.",
        "LimitExceeded" => "Quota limit exceeded.",
        _ => "See the error code.",
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Resident ID: 17 digits and a check digit (ISO 7064 MOD 11-2, `X` for 10).
fn id_number_valid(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let bytes = id.as_bytes();
    let (Some(first17), Some(&check)) = (bytes.get(..17), bytes.get(17)) else {
        return false;
    };
    if bytes.len() != 18 || !first17.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    CHECK.get((sum % 11) as usize) == Some(&check)
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Sim {
    /// Uniform in [0, 1) from the seed, the request number and a salt per kind of draw.
    fn draw(&self, n: u64, salt: u64) -> f64 {
        // 53 random bits → uniform in [0, 1).
        (splitmix64(self.config.seed.wrapping_add(n) ^ salt) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn hit(&self, rate: f64, n: u64, salt: u64) -> bool {
        // `is_nan` first: NaN compares false with everything and must mean "never".
        !rate.is_nan() && rate > 0.0 && self.draw(n, salt) < rate
    }

    fn pick_fault(&self, n: u64, f: &Faults) -> Option<Fault> {
        [
            (f.hang_rate, 0x4a4e_0001, Fault::Hang),
            (f.http_5xx_rate, 0x4a4e_0002, Fault::Http5xx),
            (f.malformed_rate, 0x4a4e_0003, Fault::Malformed),
            (f.bad_signature_rate, 0x4a4e_0004, Fault::BadSignature),
            (f.rate_limit_rate, 0x4a4e_0005, Fault::RateLimited),
            (f.error_rate, 0, Fault::Error),
        ]
        .into_iter()
        .find(|&(rate, salt, _)| self.hit(rate, n, salt))
        .map(|(_, _, fault)| fault)
    }

    /// Decides the answer. Returns the action name for logging only when it is one we know.
    fn answer(
        &self,
        n: u64,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
        fault: Option<Fault>,
        faults: &Faults,
    ) -> (&'static str, Answer) {
        let action = match header_str(headers, "x-tc-action") {
            Some(ACTION_ID_CARD) => ACTION_ID_CARD,
            Some(ACTION_FACE) => ACTION_FACE,
            Some(_) => "unknown",
            None => "missing",
        };
        let answer = self.decide(n, action, headers, body, fault);
        let business = matches!(answer, Answer::IdCard(_) | Answer::Face(..));
        if business
            && !self
                .config
                .control
                .within_daily_cap(faults.daily_cap, self.clock.today_cst())
        {
            return (action, Answer::Error("LimitExceeded"));
        }
        (action, answer)
    }

    fn decide(
        &self,
        _n: u64,
        action: &'static str,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
        fault: Option<Fault>,
    ) -> Answer {
        use Answer::Error;
        let body = match body {
            Ok(body) => body,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Error("RequestSizeLimitExceeded");
            }
            Err(_) => return Error("InvalidParameter"),
        };
        if action == "missing" {
            return Error("MissingParameter");
        }
        match header_str(headers, "x-tc-version") {
            None => return Error("MissingParameter"),
            Some(API_VERSION) => {}
            Some(_) => return Error("NoSuchVersion"),
        }
        let timestamp = match header_str(headers, "x-tc-timestamp").map(str::parse::<i64>) {
            None => return Error("MissingParameter"),
            Some(Err(_)) => return Error("InvalidParameter"),
            Some(Ok(t)) => t,
        };
        let Some(authorization) = header_str(headers, "authorization") else {
            return Error("AuthFailure.InvalidAuthorization");
        };
        let Some(host) = header_str(headers, "host") else {
            return Error("InvalidParameter");
        };
        let verified = signing::verify(&signing::VerifyRequest {
            authorization,
            secret_id: &self.config.secret_id,
            secret_key: &self.config.secret_key,
            service: SERVICE,
            content_type: header_str(headers, "content-type").unwrap_or(""),
            host,
            timestamp,
            now: self.clock.now_unix(),
            max_skew_seconds: self.config.max_skew_seconds,
            payload: &body,
        });
        if fault == Some(Fault::BadSignature) {
            return Error("AuthFailure.SignatureFailure");
        }
        match verified {
            Ok(()) => {}
            Err(signing::Tc3SignatureError::Malformed) => {
                return Error("AuthFailure.InvalidAuthorization");
            }
            Err(signing::Tc3SignatureError::UnknownSecretId) => {
                return Error("AuthFailure.SecretIdNotFound");
            }
            Err(signing::Tc3SignatureError::Expired) => return Error("AuthFailure.SignatureExpire"),
            Err(signing::Tc3SignatureError::ScopeMismatch | signing::Tc3SignatureError::SignatureMismatch) => {
                return Error("AuthFailure.SignatureFailure");
            }
        }
        let face = match action {
            ACTION_ID_CARD => false,
            ACTION_FACE => true,
            _ => return Error("InvalidAction"),
        };

        // An object only (serde would also read a struct from an array).
        let object = body.trim_ascii_start().first() == Some(&b'{');
        let Some(params) = object
            .then(|| serde_json::from_slice::<Params<'_>>(&body).ok())
            .flatten()
        else {
            return Error("InvalidParameter");
        };
        let (id, name) = match (params.id_card.text(), params.name.text()) {
            (Ok(id), Ok(name)) => (id, name),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let image = if face {
            match params.image.text() {
                Ok(image) => Some(image),
                Err(e) => return e,
            }
        } else {
            None
        };

        match fault {
            Some(Fault::RateLimited) => return Error("RequestLimitExceeded"),
            Some(Fault::Error) => return Error("InternalError"),
            _ => {}
        }

        let result = |id_card: &'static str, face_code: &'static str| {
            if face {
                Answer::Face(face_code, 0.0)
            } else {
                Answer::IdCard(id_card)
            }
        };
        if !id_number_valid(id) {
            return result("-2", "FailedOperation.IdFormatError");
        }
        if name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return result("-3", "FailedOperation.NameFormatError");
        }
        if let Some(image) = image {
            if image.len() > MAX_IMAGE_BASE64_BYTES {
                return Answer::Face("FailedOperation.LifePhotoSizeError", 0.0);
            }
            let Some(bytes) = crate::providers::image_base64::decode(image.as_bytes()) else {
                return Error("InvalidParameterValue");
            };
            if bytes.is_empty() {
                return Answer::Face("FailedOperation.LifePhotoSizeError", 0.0);
            }
            let jpeg = bytes.starts_with(&[0xFF, 0xD8, 0xFF]);
            let png = bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]);
            if !jpeg && !png {
                return Error("InvalidParameterValue");
            }
        }

        let seq: u16 = id.get(14..17).and_then(|s| s.parse().ok()).unwrap_or(0);
        match (seq, face) {
            (0..=899, false) => Answer::IdCard("0"),
            (0..=899, true) => Answer::Face("Success", 92.5),
            (900..=939, false) => Answer::IdCard("-1"),
            (900..=939, true) => Answer::Face("FailedOperation.IdNameMisMatch", 0.0),
            (940..=959, false) => Answer::IdCard("-5"),
            (940..=959, true) => Answer::Face("FailedOperation.IdPhotoNoExist", 0.0),
            (960..=969, false) => Answer::IdCard("0"),
            (960..=969, true) => Answer::Face("FailedOperation.CompareLowSimilarity", 35.0),
            (970..=979, false) => Answer::IdCard("0"),
            (970..=979, true) => Answer::Face("Success", 62.0),
            (980..=989, false) => Answer::IdCard("-4"),
            (980..=989, true) => Answer::Face("FailedOperation.CompareSystemError", 0.0),
            _ => Answer::Hang,
        }
    }
}

/// The parameters the simulator reads, borrowed from the body where JSON allows (the ~270 KB image
/// is never copied); any other member is ignored, as the vendor does. A parameter given twice is
/// refused as `InvalidParameter` (the vendor documents nothing for it; `serde_json::Value`, used
/// before, kept the last).
#[derive(Deserialize)]
struct Params<'a> {
    #[serde(rename = "IdCard", default, borrow)]
    id_card: Param<'a>,
    #[serde(rename = "Name", default, borrow)]
    name: Param<'a>,
    #[serde(rename = "ImageBase64", default, borrow)]
    image: Param<'a>,
}

/// One parameter as the vendor judges it: absent or `null`, a string, or something else.
#[derive(Default)]
enum Param<'a> {
    #[default]
    Missing,
    Text(std::borrow::Cow<'a, str>),
    NotText,
}

impl Param<'_> {
    /// The string, or the vendor's answer to its absence or type.
    fn text(&self) -> Result<&str, Answer> {
        match self {
            Param::Missing => Err(Answer::Error("MissingParameter")),
            Param::Text(s) => Ok(s),
            Param::NotText => Err(Answer::Error("InvalidParameterValue")),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Param<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        use std::borrow::Cow;
        struct Judge<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Judge<'a> {
            type Value = Param<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a request parameter")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Param<'a>, E> {
                Ok(Param::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Param<'a>, E> {
                Ok(Param::Text(Cow::Owned(s.to_owned())))
            }
            fn visit_unit<E>(self) -> Result<Param<'a>, E> {
                Ok(Param::Missing)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Param<'a>, E> {
                Ok(Param::NotText)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Param<'a>, E> {
                Ok(Param::NotText)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Param<'a>, E> {
                Ok(Param::NotText)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Param<'a>, E> {
                Ok(Param::NotText)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Param<'a>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Param::NotText)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Param<'a>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Param::NotText)
            }
        }
        deserializer.deserialize_any(Judge(std::marker::PhantomData))
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use std::net::SocketAddr;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    /// A simulator on `127.0.0.1:0`, stopped by [`RunningSim::stop`].
    pub(crate) struct RunningSim {
        pub(crate) addr: SocketAddr,
        /// One message per request that started hanging.
        pub(crate) hangs: tokio::sync::mpsc::UnboundedReceiver<()>,
        stop: oneshot::Sender<()>,
        task: JoinHandle<std::io::Result<()>>,
    }

    pub(crate) async fn start(config: SimConfig, clock: Arc<dyn Clock>) -> RunningSim {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(e) => panic!("bind: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("local_addr: {e}"),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (probe, hangs) = tokio::sync::mpsc::unbounded_channel();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(run(listener, config, clock, shutdown, Some(probe)));
        RunningSim {
            addr,
            hangs,
            stop,
            task,
        }
    }

    impl RunningSim {
        /// Shuts down and checks that the server really exits, promptly.
        pub(crate) async fn stop(self) {
            let _ = self.stop.send(());
            match tokio::time::timeout(Duration::from_secs(5), self.task).await {
                Ok(Ok(Ok(()))) => {}
                other => panic!("simulator did not shut down cleanly: {other:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::start;
    use super::*;
    use crate::clock::SystemClock;
    use crate::providers::tencent::signing::{CONTENT_TYPE, sign};
    use base64::Engine as _;
    use serde_json::Value;

    const SECRET_ID: &str = "AKIDsim";

    fn config() -> SimConfig {
        SimConfig::new(SECRET_ID, SecretKey::new("k".into()))
    }

    /// Sends a hand-built request with std-only HTTP/1.1, to exercise what the adapter never sends.
    async fn raw(addr: std::net::SocketAddr, action: &str, body: &[u8], key: &str) -> Value {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = addr.to_string();
        let now = SystemClock.now_unix();
        let auth = sign(SECRET_ID, &SecretKey::new(key.into()), SERVICE, &host, now, body).unwrap_or_default();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: {CONTENT_TYPE}\r\nAuthorization: {auth}\r\nX-TC-Action: {action}\r\nX-TC-Version: {API_VERSION}\r\nX-TC-Timestamp: {now}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body).await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        };
        let response = match tokio::time::timeout(Duration::from_secs(5), exchange).await {
            Ok(Ok(response)) => response,
            other => panic!("raw request failed: {other:?}"),
        };
        let text = String::from_utf8_lossy(&response);
        let json = text.split("\r\n\r\n").nth(1).unwrap_or("");
        serde_json::from_str(json).unwrap_or(Value::Null)
    }

    fn error_code(v: &Value) -> &str {
        v["Response"]["Error"]["Code"].as_str().unwrap_or("")
    }

    #[tokio::test]
    async fn rejects_bad_requests_with_documented_codes() {
        let sim = start(config(), Arc::new(SystemClock)).await;
        let id_body = br#"{"IdCard":"11010519491231002X","Name":"n"}"#;
        let cases: [(&str, &[u8], &str, &str); 11] = [
            ("DescribeInstances", id_body, "k", "InvalidAction"),
            (ACTION_ID_CARD, b"not json", "k", "InvalidParameter"),
            (ACTION_ID_CARD, b"[1,2]", "k", "InvalidParameter"),
            (
                ACTION_ID_CARD,
                br#"{"IdCard":"11010519491231002X","IdCard":"11010519491231002X","Name":"n"}"#,
                "k",
                "InvalidParameter",
            ),
            (ACTION_ID_CARD, br#"{"Name":"n"}"#, "k", "MissingParameter"),
            (
                ACTION_ID_CARD,
                br#"{"IdCard":null,"Name":"n"}"#,
                "k",
                "MissingParameter",
            ),
            (ACTION_FACE, id_body, "k", "MissingParameter"),
            (
                ACTION_ID_CARD,
                br#"{"IdCard":"11010519491231002X","Name":{"a":[1,{"b":null}]}}"#,
                "k",
                "InvalidParameterValue",
            ),
            (
                ACTION_ID_CARD,
                br#"{"IdCard":1,"Name":"n"}"#,
                "k",
                "InvalidParameterValue",
            ),
            (
                ACTION_FACE,
                br#"{"IdCard":"11010519491231002X","Name":"n","ImageBase64":"***"}"#,
                "k",
                "InvalidParameterValue",
            ),
            (ACTION_ID_CARD, id_body, "other-key", "AuthFailure.SignatureFailure"),
        ];
        for (action, body, key, expected) in cases {
            let answer = raw(sim.addr, action, body, key).await;
            assert_eq!(error_code(&answer), expected, "{action} {answer}");
            // Nothing of the input comes back.
            assert!(!answer.to_string().contains("11010519491231002X"));
        }
        // Escaped strings and members the vendor does not know are fine.
        let escaped = br#"{"IdCard":"11010519491231002X","Name":"\u5f20\u4e09","Extra":[1]}"#;
        let answer = raw(sim.addr, ACTION_ID_CARD, escaped, "k").await;
        assert_eq!(error_code(&answer), "", "{answer}");
        assert_eq!(answer["Response"]["Result"], "0", "{answer}");
        sim.stop().await;
    }

    #[tokio::test]
    async fn answers_follow_the_documented_shapes() {
        let sim = start(config(), Arc::new(SystemClock)).await;
        // 11010519491231002X has sequence 002 and a valid check digit.
        let ok = raw(
            sim.addr,
            ACTION_ID_CARD,
            br#"{"IdCard":"11010519491231002X","Name":"n"}"#,
            "k",
        )
        .await;
        assert_eq!(ok["Response"]["Result"], "0", "{ok}");
        assert!(ok["Response"]["RequestId"].is_string());

        let bad_check = raw(
            sim.addr,
            ACTION_ID_CARD,
            br#"{"IdCard":"110105194912310021","Name":"n"}"#,
            "k",
        )
        .await;
        assert_eq!(bad_check["Response"]["Result"], "-2", "{bad_check}");

        let jpeg = base64::engine::general_purpose::STANDARD.encode([0xFF, 0xD8, 0xFF, 0xE0]);
        let face = format!(r#"{{"IdCard":"11010519491231002X","Name":"n","ImageBase64":"{jpeg}"}}"#);
        let face = raw(sim.addr, ACTION_FACE, face.as_bytes(), "k").await;
        assert_eq!(face["Response"]["Result"], "Success", "{face}");
        assert_eq!(face["Response"]["Sim"], 92.5, "{face}");
        sim.stop().await;
    }

    #[test]
    fn faults_are_deterministic_and_follow_the_rate() {
        let (_tx, rx) = watch::channel(false);
        let sim = |seed: u64| Sim {
            config: SimConfig { seed, ..config() },
            clock: Arc::new(SystemClock),
            stopping: rx.clone(),
            nonces: Mutex::new(std::collections::HashMap::new()),
            hang_probe: None,
        };
        let error = |rate: f64| Faults {
            error_rate: rate,
            ..Faults::default()
        };
        let draws = |s: &Sim, f: &Faults| (0..1000).filter(|&n| s.pick_fault(n, f).is_some()).count();
        assert_eq!(draws(&sim(1), &error(0.0)), 0);
        assert_eq!(draws(&sim(1), &error(f64::NAN)), 0);
        assert_eq!(draws(&sim(1), &error(1.0)), 1000);
        let quarter = draws(&sim(7), &error(0.25));
        assert!((200..300).contains(&quarter), "{quarter}");
        assert_eq!(draws(&sim(7), &error(0.25)), quarter);
        let a: Vec<Option<Fault>> = (0..64).map(|n| sim(3).pick_fault(n, &error(0.5))).collect();
        let b: Vec<Option<Fault>> = (0..64).map(|n| sim(3).pick_fault(n, &error(0.5))).collect();
        assert_eq!(a, b);
        // Kinds are drawn independently, in order: a certain hang wins over everything else.
        let all = Faults {
            hang_rate: 1.0,
            http_5xx_rate: 1.0,
            error_rate: 1.0,
            ..Faults::default()
        };
        assert!((0..100).all(|n| sim(1).pick_fault(n, &all) == Some(Fault::Hang)));
        let half_5xx = Faults {
            http_5xx_rate: 0.5,
            malformed_rate: 0.5,
            ..Faults::default()
        };
        let kinds: std::collections::HashSet<_> = (0..200).filter_map(|n| sim(1).pick_fault(n, &half_5xx)).collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
    }

    #[test]
    fn fault_rates_are_validated_and_the_daily_cap_counts_per_day() {
        assert_eq!(
            SimControl::new(Faults {
                hang_rate: 1.5,
                ..Faults::default()
            })
            .map(|_| ()),
            Err(FaultsError::Rate)
        );
        let control = SimControl::new(Faults::default()).unwrap();
        assert_eq!(
            control.set_faults(Faults {
                error_rate: f64::NAN,
                ..Faults::default()
            }),
            Err(FaultsError::Rate)
        );
        let day = time::macros::date!(2026 - 01 - 02);
        assert!(control.within_daily_cap(None, day));
        assert!(control.within_daily_cap(Some(2), day));
        assert!(control.within_daily_cap(Some(2), day));
        assert!(!control.within_daily_cap(Some(2), day));
        assert!(control.within_daily_cap(Some(2), day.next_day().unwrap()));
    }

    #[test]
    fn id_check_digits() {
        assert!(id_number_valid("11010519491231002X"));
        assert!(!id_number_valid("110105194912310021"));
        assert!(!id_number_valid("11010519491231002"));
        assert!(!id_number_valid("11010519491231002XX"));
        assert!(!id_number_valid("1101051949123100２X"));
        assert!(!id_number_valid(""));
    }
}
