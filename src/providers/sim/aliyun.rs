//! The simulator's Alibaba Cloud ID Verification protocol (cloudauth 2019-03-07): the OpenAPI
//! gateway's checks (V3 signature, `x-acs-date` window, nonce replay) and the two actions the
//! adapter uses, answering by the ID number's sequence code (characters 15–17) like docs/api.md §5:
//!
//! | seq     | `Id2MetaVerify`          | `ContrastFaceVerify`          | gateway outcome           |
//! |---------|--------------------------|-------------------------------|---------------------------|
//! | 000–899 | `BizCode` 1              | `Passed` T, `SubCode` 200     | verified (anchor: review, no score) |
//! | 900–939 | `BizCode` 2              | F / 201                       | not verified              |
//! | 940–959 | `BizCode` 3              | F / 203 (no photo)            | review                    |
//! | 960–969 | `BizCode` 1              | F / 204 (face mismatch)       | not verified (anchor)     |
//! | 970–979 | `BizCode` 1              | F / 205 (liveness risk)       | review (anchor)           |
//! | 980–989 | `Code` 402 (source down) | `Code` 500                    | failover, then review     |
//! | 990–999 | never answers            | same                          | failover, then review     |
//!
//! Gateway refusals come with HTTP 4xx and `Code` `IncompleteSignature`,
//! `InvalidAccessKeyId.NotFound`, `InvalidTimeStamp.Format`, `InvalidTimeStamp.Expired`,
//! `SignatureDoesNotMatch`, `SignatureNonceUsed`, `MissingParameter`, `InvalidVersion`,
//! `InvalidAction.NotFound`; rate limits and the daily cap with `Throttling.User` (the code the
//! vendor uses for a daily quota was not found; this is a stand-in).
//!
//! It must never: echo any input, or log more than the action and the answer code.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Fault, Faults, Sim, header_str, id_number_valid};
use crate::providers::aliyun::{ACTION_FACE, ACTION_ID2, API_VERSION, signing};

fn reply(status: StatusCode, request_id: &str, code: &str, result: Option<Value>) -> Response {
    let mut body = json!({"RequestId": request_id, "Code": code, "Message": message(code)});
    if let Some(result) = result {
        body["ResultObject"] = result;
    }
    if status != StatusCode::OK {
        body["HostId"] = json!("cloudauth.aliyuncs.com");
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// Fixed texts. Never built from the request.
fn message(code: &str) -> &'static str {
    match code {
        "200" => "success",
        "400" => "参数不能为空",
        "401" => "参数非法",
        "402" => "权威源服务异常",
        "500" => "系统错误",
        "SignatureDoesNotMatch" => "Specified signature is not matched with our calculation.",
        "SignatureNonceUsed" => "Specified signature nonce was used already.",
        "InvalidTimeStamp.Expired" => "Specified time stamp or date value is expired.",
        "Throttling.User" => "Request was denied due to user flow control.",
        _ => "See the error code.",
    }
}

/// What a request released by shutdown gets.
pub(super) fn shutting_down(request_id: &str) -> Response {
    reply(StatusCode::SERVICE_UNAVAILABLE, request_id, "ServiceUnavailable", None)
}

enum Step {
    /// An answer; the code is for the log line.
    Reply(&'static str, StatusCode, &'static str, Option<Value>),
    Hang,
}

fn gateway(code: &'static str) -> Step {
    let status = match code {
        "InvalidAccessKeyId.NotFound" | "InvalidAction.NotFound" => StatusCode::NOT_FOUND,
        "InternalError" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    Step::Reply(code, status, code, None)
}

fn api(code: &'static str) -> Step {
    Step::Reply(code, StatusCode::OK, code, None)
}

pub(super) fn answer(
    sim: &Sim,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    fault: Option<Fault>,
    faults: &Faults,
    request_id: &str,
) -> (&'static str, Option<Response>) {
    let action = match header_str(headers, "x-acs-action") {
        Some(ACTION_ID2) => ACTION_ID2,
        Some(ACTION_FACE) => ACTION_FACE,
        Some(_) => "unknown",
        None => "missing",
    };
    let mut step = decide(sim, action, headers, body, fault);
    if matches!(step, Step::Reply(_, StatusCode::OK, _, Some(_)))
        && !sim
            .config
            .control
            .within_daily_cap(faults.daily_cap, sim.clock.today_cst())
    {
        step = gateway("Throttling.User");
    }
    match step {
        Step::Hang => (action, None),
        Step::Reply(log_code, status, code, result) => {
            tracing::info!(action, code = log_code, "sim answered");
            (action, Some(reply(status, request_id, code, result)))
        }
    }
}

fn decide(
    sim: &Sim,
    action: &'static str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    fault: Option<Fault>,
) -> Step {
    let Ok(body) = body else {
        return gateway("InvalidParameter");
    };
    match action {
        "missing" => return gateway("MissingParameter"),
        "unknown" => return gateway("InvalidAction.NotFound"),
        _ => {}
    }
    match header_str(headers, "x-acs-version") {
        None => return gateway("MissingParameter"),
        Some(API_VERSION) => {}
        Some(_) => return gateway("InvalidVersion"),
    }
    let Some(authorization) = header_str(headers, "authorization") else {
        return gateway("IncompleteSignature");
    };
    let (Some(host), Some(date), Some(nonce), Some(sha), Some(content_type)) = (
        header_str(headers, "host"),
        header_str(headers, "x-acs-date"),
        header_str(headers, "x-acs-signature-nonce"),
        header_str(headers, "x-acs-content-sha256"),
        header_str(headers, "content-type"),
    ) else {
        return gateway("MissingParameter");
    };
    let now = sim.clock.now_unix();
    let verified = signing::verify(
        &signing::Received {
            authorization,
            content_sha256: sha,
            signed: signing::Signed {
                host,
                action,
                version: API_VERSION,
                date,
                nonce,
                content_type,
                body: &body,
            },
        },
        &sim.config.secret_id,
        &sim.config.secret_key,
        now,
        sim.config.max_skew_seconds,
    );
    if fault == Some(Fault::BadSignature) {
        return gateway("SignatureDoesNotMatch");
    }
    match verified {
        Ok(()) => {}
        Err(signing::Acs3SignatureError::Malformed) => return gateway("IncompleteSignature"),
        Err(signing::Acs3SignatureError::UnknownAccessKey) => return gateway("InvalidAccessKeyId.NotFound"),
        Err(signing::Acs3SignatureError::BadDate) => return gateway("InvalidTimeStamp.Format"),
        Err(signing::Acs3SignatureError::Expired) => return gateway("InvalidTimeStamp.Expired"),
        Err(signing::Acs3SignatureError::Mismatch) => return gateway("SignatureDoesNotMatch"),
    }
    {
        let mut seen = sim.nonces.lock().unwrap_or_else(|p| p.into_inner());
        let window = sim.config.max_skew_seconds.saturating_mul(2);
        if seen.len() > 100_000 {
            seen.retain(|_, at| now.abs_diff(*at) <= window.unsigned_abs());
        }
        if seen.insert(nonce.to_owned(), now).is_some() {
            return gateway("SignatureNonceUsed");
        }
    }
    match fault {
        Some(Fault::RateLimited) => return gateway("Throttling.User"),
        Some(Fault::Error) => return gateway("InternalError"),
        _ => {}
    }
    let Some(form) = signing::parse_form(&body) else {
        return gateway("InvalidParameter");
    };
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let face = action == ACTION_FACE;
    let (id, name) = if face {
        match (
            field("SceneId"),
            field("OuterOrderNo"),
            field("ProductCode"),
            field("CertType"),
            field("CertName"),
            field("CertNo"),
            field("FaceContrastPicture"),
        ) {
            (Some(scene), Some(order), Some(product), Some(cert_type), Some(name), Some(id), Some(picture)) => {
                if scene.is_empty() || order.is_empty() || order.len() > 32 {
                    return api("400");
                }
                if product != "ID_MIN" || cert_type != "IDENTITY_CARD" {
                    return api("401");
                }
                let Some(photo) = crate::providers::image_base64::decode(picture.as_bytes()) else {
                    return api("401");
                };
                if photo.is_empty() || !crate::providers::http::is_jpeg_or_png(&photo) {
                    return api("401");
                }
                (id, name)
            }
            _ => return api("400"),
        }
    } else {
        match (field("ParamType"), field("IdentifyNum"), field("UserName")) {
            (Some("normal"), Some(id), Some(name)) => (id, name),
            (Some(_), Some(_), Some(_)) => return api("401"),
            _ => return api("400"),
        }
    };
    if !id_number_valid(id) || name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control)
    {
        return api("401");
    }
    let seq: u16 = id.get(14..17).and_then(|s| s.parse().ok()).unwrap_or(0);
    let biz = |code: &'static str| Step::Reply(code, StatusCode::OK, "200", Some(json!({"BizCode": code})));
    let passed = |passed: &'static str, sub: &'static str| {
        Step::Reply(
            sub,
            StatusCode::OK,
            "200",
            Some(json!({"Passed": passed, "SubCode": sub, "CertifyId": "sim"})),
        )
    };
    match (seq, face) {
        (0..=899, false) | (960..=979, false) => biz("1"),
        (0..=899, true) => passed("T", "200"),
        (900..=939, false) => biz("2"),
        (900..=939, true) => passed("F", "201"),
        (940..=959, false) => biz("3"),
        (940..=959, true) => passed("F", "203"),
        (960..=969, true) => passed("F", "204"),
        (970..=979, true) => passed("F", "205"),
        (980..=989, false) => api("402"),
        (980..=989, true) => api("500"),
        _ => Step::Hang,
    }
}
