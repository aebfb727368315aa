//! What the web console sends the page: the state, the open case, messages and the audit page as
//! JSON, and images, each in a buffer that is wiped once sent; the gateway's answers in words.
//!
//! It must never keep a copy of case material beyond the response that carries it.

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use zeroize::Zeroizing;

use super::state::{OpenCase, Secret};
use crate::cli::review::session::NO_FACE_NOTE;
use crate::clock::{Clock as _, SystemClock};
use crate::domain::IdNumber;
use crate::pb;

/// The reasons a reviewer may give, as (reason code, words). The page offers exactly these.
pub const REASONS: [(&str, &str); 6] = [
    ("DOCUMENTS_MATCH", "documents match"),
    ("FACE_MISMATCH", "face mismatch"),
    ("DOCUMENT_UNREADABLE", "document unreadable"),
    ("DOCUMENT_FORGED", "document forged"),
    ("MINOR", "minor"),
    ("OTHER", "other"),
];

/// The four image slots, as (URL slot, alt text).
pub(super) const SLOTS: [(&str, &str); 4] = [
    ("face", "face photo"),
    ("id_card_front", "ID card front"),
    ("id_card_back", "ID card back"),
    ("handheld_id_photo", "handheld ID photo"),
];

/// A body that wipes itself once sent.
pub(super) fn private_body(bytes: Zeroizing<Vec<u8>>) -> Body {
    Body::from(Bytes::from_owner(Secret(bytes)))
}

/// A gateway answer in words for the page (gateway messages carry no personal data).
pub(super) fn words(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => {
            "The gateway is not reachable. The console retries on its own.".into()
        }
        tonic::Code::DeadlineExceeded => "The gateway did not answer in time.".into(),
        _ => {
            let message = status.message();
            let mut out = String::with_capacity(message.len() + 1);
            let mut chars = message.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
                out.push('.');
            }
            out
        }
    }
}

pub(super) fn purpose_words(purpose: i32) -> &'static str {
    match pb::Purpose::try_from(purpose) {
        Ok(pb::Purpose::ShortVideo) => "short video",
        Ok(pb::Purpose::Radio) => "radio",
        Ok(pb::Purpose::Anchor) => "anchor (live streaming)",
        _ => "unknown",
    }
}

pub(super) fn status_words(status: i32) -> &'static str {
    match pb::Status::try_from(status) {
        Ok(pb::Status::Verified) => "VERIFIED",
        Ok(pb::Status::NotVerified) => "NOT_VERIFIED",
        Ok(pb::Status::PendingReview) => "PENDING_REVIEW",
        Ok(pb::Status::Expired) => "EXPIRED",
        Ok(pb::Status::Erased) => "ERASED",
        _ => "UNKNOWN",
    }
}

/// A JSON answer that may hold personal data: serialized into a buffer that is wiped once sent.
pub(super) fn private_json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let mut buffer = Zeroizing::new(Vec::with_capacity(64 * 1024));
    if serde_json::to_writer(&mut *buffer, value).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        private_body(buffer),
    )
        .into_response()
}

#[derive(Serialize)]
pub(super) struct Message<'a> {
    pub(super) ok: bool,
    pub(super) message: &'a str,
    pub(super) status: Option<&'a str>,
}

pub(super) fn message(status: StatusCode, ok: bool, text: &str, case_status: Option<&str>) -> Response {
    private_json(
        status,
        &Message {
            ok,
            message: text,
            status: case_status,
        },
    )
}

#[derive(Serialize)]
pub(super) struct Stats {
    pub(super) pending: u64,
    pub(super) claimed: u64,
    pub(super) oldest_pending_age_seconds: i64,
}

#[derive(Serialize)]
pub(super) struct Gateway {
    pub(super) up: bool,
    pub(super) message: String,
}

#[derive(Serialize)]
pub(super) struct CaseView<'a> {
    pub(super) id: &'a str,
    pub(super) purpose: &'static str,
    pub(super) lease_expires_unix: i64,
    pub(super) submitted_at_unix: i64,
    pub(super) provider: &'a str,
    pub(super) why: &'static str,
    pub(super) supplement_complete: bool,
    pub(super) approved_by: &'a [String],
    pub(super) approvals_required: u32,
    pub(super) name: &'a str,
    pub(super) id_number: &'a str,
    /// `YYYY-MM-DD`, derived from the ID number; `None` when it does not parse.
    pub(super) birth_date: Option<String>,
    pub(super) age: Option<u32>,
    pub(super) phone: &'a str,
    /// In slot order: the image URL, or `None` when not supplied.
    pub(super) images: Vec<Option<String>>,
    /// Shown in place of the face when the case holds none (document review, or biometric consent
    /// withdrawn: the face was destroyed); empty when it holds one.
    pub(super) face_note: &'static str,
}

#[derive(Serialize)]
pub(super) struct StateView<'a> {
    pub(super) role: &'static str,
    pub(super) principal: &'a str,
    pub(super) now_unix: i64,
    pub(super) gateway: Gateway,
    pub(super) stats: Option<Stats>,
    pub(super) claimed_by_me: u32,
    pub(super) notice: Option<String>,
    pub(super) reasons: Vec<(&'static str, &'static str)>,
    pub(super) case: Option<CaseView<'a>>,
}

pub(super) fn case_view(case: &OpenCase) -> CaseView<'_> {
    let today = SystemClock.today_cst();
    let id = IdNumber::parse(&case.fields.id_number, today).ok();
    let birth_date = id.as_ref().map(|id| {
        let d = id.birth_date();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    });
    CaseView {
        id: &case.case_id,
        purpose: purpose_words(case.purpose),
        lease_expires_unix: case.lease_expires_unix,
        submitted_at_unix: case.submitted_at_unix,
        provider: &case.provider,
        why: case.why,
        supplement_complete: case.supplement_complete,
        approved_by: &case.approved_by,
        approvals_required: case.approvals_required,
        name: &case.fields.name,
        id_number: &case.fields.id_number,
        birth_date,
        age: id.as_ref().map(|id| id.age_on(today)),
        phone: &case.fields.phone,
        images: SLOTS
            .iter()
            .zip(&case.images)
            .map(|((slot, _), image)| {
                image
                    .as_ref()
                    .map(|_| format!("/case/{}/image/{slot}?n={}", case.case_id, case.nonce))
            })
            .collect(),
        face_note: if case.images[0].is_some() { "" } else { NO_FACE_NOTE },
    }
}

#[derive(Serialize)]
pub(super) struct AuditView {
    pub(super) events: Vec<AuditRow>,
    pub(super) next_page_token: String,
}

#[derive(Serialize)]
pub(super) struct AuditRow {
    pub(super) id: String,
    pub(super) at_unix: i64,
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) case_id: String,
    pub(super) detail: String,
}
