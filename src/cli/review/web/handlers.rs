//! The web console's routes, one function each: the page (a launch URL exchanged for a session), the
//! state, claim, decide, release, the images and the audit trail. Each reaches here only through
//! [`super::guard`].
//!
//! It must never hold case material past the decision, the release or the lease, nor wait on a hung
//! gateway while holding the case lock longer than one bounded call.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::assets::{ADMIN_HTML, INDEX_HTML, SESSION_META};
use super::guard::{exchange, forbidden, query_param};
use super::state::{ArcSecret, Console, Mode, OpenCase};
use super::views::{
    AuditRow, AuditView, Gateway, REASONS, SLOTS, StateView, Stats, case_view, message, private_body, private_json,
    status_words, words,
};
use crate::cli::review::session::{open_claim, register};
use crate::pb;
use crate::transport::reasons::ErrorReason;

/// How long one gateway call may take before the page hears that the gateway does not answer
/// (the console's calls hold the case lock; a hung gateway must not hang the page).
pub(super) const GATEWAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

pub(super) async fn bounded<T>(call: impl Future<Output = Result<T, tonic::Status>>) -> Result<T, tonic::Status> {
    tokio::time::timeout(GATEWAY_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("the gateway did not answer in time")))
}

pub(super) fn gateway_down(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
    )
}

/// The gateway's reason for refusing a call, if it is one this version knows.
pub(super) fn reason_of(status: &tonic::Status) -> Option<ErrorReason> {
    tonic_types::StatusExt::get_details_error_info(status).and_then(|i| ErrorReason::from_code(&i.reason))
}

/// The page, for a launch URL not used before: with a new session secret in it.
pub(super) async fn index(State(console): State<Arc<Console>>, request: Request) -> Response {
    // A browser's speculative load (prefetch, prerender) must not use up the launch URL.
    let speculative = request.headers().contains_key("sec-purpose");
    let token = query_param(request.uri().query(), "token").filter(|_| !speculative);
    let Some(session) = token.and_then(|t| exchange(&console, &Zeroizing::new(t))) else {
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "This page needs a launch URL that has not been used: each opens one page once. Open the \
             newest URL the review console printed.\n",
        )
            .into_response();
    };
    let page = match console.mode {
        Mode::Reviewer { .. } => INDEX_HTML,
        Mode::Admin { .. } => ADMIN_HTML,
    };
    let filled = format!(r#"<meta name="idgate-session" content="{}">"#, session.as_str());
    let page = Zeroizing::new(page.replacen(SESSION_META, &filled, 1).into_bytes());
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], private_body(page)).into_response()
}

pub(super) async fn state(State(console): State<Arc<Console>>) -> Response {
    let mut review = console.review_client();
    let (gateway, stats) = match bounded(review.get_queue_stats(pb::GetQueueStatsRequest {})).await {
        Ok(s) => {
            let s = s.into_inner();
            (
                Gateway {
                    up: true,
                    message: String::new(),
                },
                Some(Stats {
                    pending: s.pending,
                    claimed: s.claimed,
                    oldest_pending_age_seconds: s.oldest_pending_age_seconds,
                }),
            )
        }
        Err(status) => (
            Gateway {
                up: !gateway_down(&status),
                message: words(&status),
            },
            None,
        ),
    };
    let mut held = console.held.lock().await;
    Console::expire(&mut held);
    let notice = held.notice.take();
    let view = StateView {
        role: match console.mode {
            Mode::Reviewer { .. } => "reviewer",
            Mode::Admin { .. } => "admin",
        },
        principal: &console.principal,
        now_unix: Console::now(),
        gateway,
        stats,
        claimed_by_me: u32::from(held.case.is_some()),
        notice,
        reasons: REASONS.to_vec(),
        case: held.case.as_ref().map(case_view),
    };
    private_json(StatusCode::OK, &view)
}

pub(super) async fn claim(State(console): State<Arc<Console>>) -> Response {
    let Mode::Reviewer { key, review } = &console.mode else {
        return forbidden();
    };
    let mut held = console.held.lock().await;
    Console::expire(&mut held);
    if held.case.is_some() {
        return message(
            StatusCode::CONFLICT,
            false,
            "Decide on or release the open case first.",
            None,
        );
    }
    let mut review = review.clone();
    let mut answer = bounded(review.claim_next(pb::ClaimNextRequest {})).await;
    if let Err(status) = &answer
        && reason_of(status) == Some(ErrorReason::NoReviewerKey)
    {
        // The gateway forgot our key (e.g. it restarted with an embedded store): register it again.
        if let Err(status) = bounded(register(&mut review, key)).await {
            return message(StatusCode::BAD_GATEWAY, false, &words(&status), None);
        }
        answer = bounded(review.claim_next(pb::ClaimNextRequest {})).await;
    }
    let claim = match answer {
        Ok(c) => c.into_inner(),
        Err(status) => return message(StatusCode::BAD_GATEWAY, false, &words(&status), None),
    };
    if claim.case_id.is_empty() {
        return message(StatusCode::OK, true, "The review queue is empty.", None);
    }
    let case_id = claim.case_id.clone();
    let opened = open_claim(key, &console.principal, &claim).and_then(|fields| OpenCase::open(fields, claim));
    let case = match opened {
        Ok(case) => case,
        Err(_) => {
            // Unreadable here: give it back at once rather than sit on the lease.
            let _ = bounded(review.release_case(pb::ReleaseCaseRequest { case_id })).await;
            return message(
                StatusCode::BAD_GATEWAY,
                false,
                "The case material did not open with this console's reviewer key; the case was released.",
                None,
            );
        }
    };
    let lease_end = case.lease_expires_unix;
    held.case = Some(case);
    drop(held);
    // Drop the material when the lease ends, whether or not the page is still asking.
    let watcher = console.clone();
    tokio::spawn(async move {
        let wait = (lease_end - Console::now()).max(0) as u64;
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        let mut held = watcher.held.lock().await;
        if held.case.as_ref().is_some_and(|c| c.case_id == case_id) {
            Console::expire(&mut held);
        }
    });
    message(StatusCode::OK, true, "Case claimed.", None)
}

#[derive(Deserialize)]
pub(super) struct DecideRequest {
    pub(super) case_id: String,
    pub(super) decision: String,
    pub(super) reason: String,
}

pub(super) async fn decide(
    State(console): State<Arc<Console>>,
    axum::Json(body): axum::Json<DecideRequest>,
) -> Response {
    let Mode::Reviewer { review, .. } = &console.mode else {
        return forbidden();
    };
    let decision = match body.decision.as_str() {
        "approve" => pb::Decision::Approve,
        "reject" => pb::Decision::Reject,
        _ => return message(StatusCode::BAD_REQUEST, false, "Choose approve or reject.", None),
    };
    if !REASONS.iter().any(|(code, _)| *code == body.reason) {
        return message(StatusCode::BAD_REQUEST, false, "Choose a reason from the list.", None);
    }
    let fits = match decision {
        pb::Decision::Approve => matches!(body.reason.as_str(), "DOCUMENTS_MATCH" | "OTHER"),
        _ => body.reason != "DOCUMENTS_MATCH",
    };
    if !fits {
        let text = match decision {
            pb::Decision::Approve => {
                "An approval needs the reason \u{201c}documents match\u{201d} or \u{201c}other\u{201d}."
            }
            _ => "A rejection needs a reason other than \u{201c}documents match\u{201d}.",
        };
        return message(StatusCode::BAD_REQUEST, false, text, None);
    }
    let mut held = console.held.lock().await;
    Console::expire(&mut held);
    if held.case.as_ref().is_none_or(|c| c.case_id != body.case_id) {
        let text = held
            .notice
            .take()
            .unwrap_or_else(|| "This console holds no lease on that case.".into());
        return message(StatusCode::CONFLICT, false, &text, None);
    }
    let mut client = review.clone();
    let answer = bounded(client.submit_decision(pb::SubmitDecisionRequest {
        case_id: body.case_id.clone(),
        decision: decision as i32,
        reason_code: body.reason.clone(),
    }))
    .await;
    match answer {
        Ok(answer) => {
            held.case = None; // wiped
            let status = status_words(answer.into_inner().status);
            let text = if status == "PENDING_REVIEW" {
                "Decision recorded; the case now waits for a second reviewer.".to_owned()
            } else {
                format!("Decision recorded: the case is {status}.")
            };
            message(StatusCode::OK, true, &text, Some(status))
        }
        Err(status) => {
            // A case that can no longer be decided under this lease is of no use here: drop it.
            if matches!(
                reason_of(&status),
                Some(ErrorReason::LeaseExpired | ErrorReason::NotPending | ErrorReason::ForeignLease)
            ) {
                held.case = None;
            }
            let text = format!("The gateway refused the decision: {}", words(&status));
            message(StatusCode::CONFLICT, false, &text, None)
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ReleaseRequest {
    pub(super) case_id: String,
}

pub(super) async fn release(
    State(console): State<Arc<Console>>,
    axum::Json(body): axum::Json<ReleaseRequest>,
) -> Response {
    let Mode::Reviewer { review, .. } = &console.mode else {
        return forbidden();
    };
    let mut held = console.held.lock().await;
    if held.case.as_ref().is_none_or(|c| c.case_id != body.case_id) {
        return message(
            StatusCode::CONFLICT,
            false,
            "This console holds no lease on that case.",
            None,
        );
    }
    held.case = None; // wiped whatever the gateway says
    let mut client = review.clone();
    let answer = bounded(client.release_case(pb::ReleaseCaseRequest { case_id: body.case_id })).await;
    match answer {
        Ok(_) => message(StatusCode::OK, true, "Case released back to the queue.", None),
        Err(status) => {
            let text = format!(
                "The material was dropped here, but the gateway did not take the release ({}); the lease will run out.",
                words(&status)
            );
            message(StatusCode::BAD_GATEWAY, false, &text, None)
        }
    }
}

pub(super) async fn image(
    State(console): State<Arc<Console>>,
    Path((case_id, slot)): Path<(String, String)>,
    request: Request,
) -> Response {
    let nonce = query_param(request.uri().query(), "n");
    let mut held = console.held.lock().await;
    Console::expire(&mut held);
    let Some(case) = held.case.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(index) = SLOTS.iter().position(|(s, _)| *s == slot) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The nonce keeps image URLs unguessable: compared in constant time, like the session.
    let nonce_matches = nonce.is_some_and(|n| bool::from(n.as_bytes().ct_eq(case.nonce.as_bytes())));
    if case.case_id != case_id || !nonce_matches {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(image) = case.images[index].clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    drop(held);
    let content_type = if image.as_ref().as_ref().starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from(Bytes::from_owner(ArcSecret(image))),
    )
        .into_response()
}

pub(super) async fn audit(State(console): State<Arc<Console>>, request: Request) -> Response {
    let Mode::Admin { audit, .. } = &console.mode else {
        return forbidden();
    };
    let query = request.uri().query();
    let param = |name| query_param(query, name).unwrap_or_default();
    let mut client = audit.clone();
    let answer = bounded(client.list_audit_events(pb::ListAuditEventsRequest {
        case_id: param("case_id").trim().to_owned(),
        principal: param("principal").trim().to_owned(),
        page_token: param("page_token"),
        page_size: 100,
    }))
    .await;
    match answer {
        Ok(page) => {
            let page = page.into_inner();
            let view = AuditView {
                events: page
                    .events
                    .into_iter()
                    .map(|e| AuditRow {
                        id: e.id,
                        at_unix: e.at_unix,
                        actor: e.actor,
                        action: e.action,
                        case_id: e.case_id,
                        detail: e.detail,
                    })
                    .collect(),
                next_page_token: page.next_page_token,
            };
            private_json(StatusCode::OK, &view)
        }
        Err(status) => message(StatusCode::BAD_GATEWAY, false, &words(&status), None),
    }
}
