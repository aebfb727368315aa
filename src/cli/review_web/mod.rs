//! `idgate review --web`: the review console in a browser, served by the reviewer's own machine.
//!
//! This process is a gRPC client of the gateway (the reviewer's certificate, as `idgate review`) and a
//! small HTTP server on a loopback address for one browser. A claimed case is opened here with the
//! reviewer's own key, held in memory only (wiped on drop) and handed to the page from memory; it is
//! dropped when the decision is sent, the case is released, the lease ends or the console exits.
//! With an admin certificate it serves a read-only view of the queue figures and the audit trail.
//!
//! Access: the console prints a launch URL holding a random token. The token opens one page, once: the
//! page comes with its own random session secret, which its script keeps in memory and sends as the
//! `X-Idgate-Session` header on every API and image request (images are fetched into `blob:` URLs).
//! No cookie is ever set: cookies are not kept apart by port, so one would reach every other HTTP
//! service on the same host, and two consoles on one machine would overwrite each other's. Each use of
//! a launch URL prints the next one (to reopen the console after a reload).
//!
//! It must never: write case material to disk, log it (it logs nothing about requests at all), let the
//! browser cache it (`Cache-Control: no-store` on every answer), fetch anything from the network for
//! the page (every asset is embedded, under a strict Content-Security-Policy), set a cookie, or answer
//! a request that comes with a foreign `Host` or `Origin`, or from another site or origin by its
//! `Sec-Fetch-Site` (reads too), or that lacks a live session secret; only the launch URL and the
//! static assets (public code, no data) are served without one. Each of those gets 403.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tokio::sync::Mutex;
use tonic::transport::Channel;
use zeroize::Zeroizing;

use super::CliError;
use super::review::{Interrupts, ReviewArgs, key_path, open_claim, own_caller, reviewer_key};
use crate::client::connect_named;
use crate::clock::{Clock as _, SystemClock};
use crate::crypto::sealing::OpeningKey;
use crate::domain::{IdNumber, IdentityFields};
use crate::pb;
use crate::pb::audit_service_client::AuditServiceClient;
use crate::pb::review_service_client::ReviewServiceClient;
use crate::transport::auth::Role;
use crate::transport::reasons::ErrorReason;

const INDEX_HTML: &str = include_str!("assets/index.html");
const ADMIN_HTML: &str = include_str!("assets/admin.html");
const CONSOLE_CSS: &str = include_str!("assets/console.css");
const REVIEW_JS: &str = include_str!("assets/review.js");
const ADMIN_JS: &str = include_str!("assets/admin.js");

/// The header that carries a page's session secret.
pub const SESSION_HEADER: &str = "x-idgate-session";
/// Where the page finds its session secret (an empty `content` in the embedded HTML).
const SESSION_META: &str = r#"<meta name="idgate-session" content="">"#;
/// Pages with a live session at once (a reload opens a new one); past it the oldest ends.
const MAX_SESSIONS: usize = 8;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
                   connect-src 'self'; font-src 'none'; object-src 'none'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

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
const SLOTS: [(&str, &str); 4] = [
    ("face", "face photo"),
    ("id_card_front", "ID card front"),
    ("id_card_back", "ID card back"),
    ("handheld_id_photo", "handheld ID photo"),
];

/// Flags of `idgate review --web`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WebArgs {
    /// Serve the review console to a browser instead of the terminal.
    #[arg(long)]
    pub web: bool,
    /// Where the web console listens. Default: a free port on 127.0.0.1.
    #[arg(long, requires = "web")]
    pub listen: Option<SocketAddr>,
    /// Allow --listen on a non-loopback address (case material then crosses the network in the clear).
    #[arg(long, requires = "web")]
    pub allow_remote: bool,
}

/// An image held in memory, wiped when the last holder (the open case, or a response being sent) drops it.
struct Secret(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Secret {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A body that wipes itself once sent.
fn private_body(bytes: Zeroizing<Vec<u8>>) -> Body {
    Body::from(Bytes::from_owner(Secret(bytes)))
}

/// The case this console holds a lease on, opened. No `Debug`: it holds personal data.
struct OpenCase {
    case_id: String,
    purpose: i32,
    lease_expires_unix: i64,
    submitted_at_unix: i64,
    provider: String,
    /// Why the case went to review, in words.
    why: &'static str,
    supplement_complete: bool,
    approved_by: Vec<String>,
    approvals_required: u32,
    /// Name, ID number, phone (the images are taken out into `images`); wiped on drop.
    fields: IdentityFields,
    /// In [`SLOTS`] order; `None`: not supplied.
    images: [Option<Arc<Secret>>; 4],
    /// Random per claim, part of the image URLs.
    nonce: String,
}

impl OpenCase {
    fn open(mut fields: IdentityFields, claim: pb::ClaimNextResponse) -> anyhow::Result<Self> {
        let take = |v: &mut Vec<u8>| {
            let bytes = Zeroizing::new(std::mem::take(v));
            (!bytes.is_empty()).then(|| Arc::new(Secret(bytes)))
        };
        let images = [
            take(&mut fields.face_image),
            take(&mut fields.id_card_front),
            take(&mut fields.id_card_back),
            take(&mut fields.handheld_id_photo),
        ];
        Ok(Self {
            case_id: claim.case_id,
            purpose: claim.purpose,
            lease_expires_unix: claim.lease_expires_unix,
            submitted_at_unix: claim.submitted_at_unix,
            provider: claim.provider,
            why: crate::decision::ReviewReason::from_code(&claim.review_reason)
                .map_or("not known", crate::decision::ReviewReason::words),
            supplement_complete: claim.supplement_complete,
            approved_by: claim.approved_by,
            approvals_required: claim.approvals_required,
            fields,
            images,
            nonce: crate::crypto::random::id("").context("randomness")?,
        })
    }
}

enum Mode {
    Reviewer {
        key: OpeningKey,
        review: ReviewServiceClient<Channel>,
    },
    Admin {
        review: ReviewServiceClient<Channel>,
        audit: AuditServiceClient<Channel>,
    },
}

/// Why the console lost its case (shown once on the page).
#[derive(Default)]
struct Held {
    case: Option<OpenCase>,
    notice: Option<String>,
}

struct Console {
    mode: Mode,
    principal: String,
    /// The token of the launch URL printed last: it opens one page, once.
    launch: std::sync::Mutex<Zeroizing<String>>,
    /// The session secrets of the pages opened, newest last.
    sessions: std::sync::Mutex<std::collections::VecDeque<Zeroizing<String>>>,
    /// `Host` values the browser may use to reach us.
    hosts: Vec<String>,
    held: Mutex<Held>,
}

impl Console {
    fn review_client(&self) -> ReviewServiceClient<Channel> {
        match &self.mode {
            Mode::Reviewer { review, .. } | Mode::Admin { review, .. } => review.clone(),
        }
    }

    fn now() -> i64 {
        SystemClock.now_unix()
    }

    /// Drops the held case if its lease has ended.
    fn expire(held: &mut Held) {
        if held.case.as_ref().is_some_and(|c| c.lease_expires_unix <= Self::now()) {
            held.case = None;
            held.notice = Some(
                "The lease on the case ended before a decision: the case went back to the queue and its \
                 material was dropped from this console. Claim again to continue."
                    .into(),
            );
        }
    }
}

/// A gateway answer in words for the page (gateway messages carry no personal data).
fn words(status: &tonic::Status) -> String {
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

/// How long one gateway call may take before the page hears that the gateway does not answer
/// (the console's calls hold the case lock; a hung gateway must not hang the page).
const GATEWAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

async fn bounded<T>(call: impl Future<Output = Result<T, tonic::Status>>) -> Result<T, tonic::Status> {
    tokio::time::timeout(GATEWAY_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("the gateway did not answer in time")))
}

fn gateway_down(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
    )
}

/// The gateway's reason for refusing a call, if it is one this version knows.
fn reason_of(status: &tonic::Status) -> Option<ErrorReason> {
    tonic_types::StatusExt::get_details_error_info(status).and_then(|i| ErrorReason::from_code(&i.reason))
}

fn purpose_words(purpose: i32) -> &'static str {
    match pb::Purpose::try_from(purpose) {
        Ok(pb::Purpose::ShortVideo) => "short video",
        Ok(pb::Purpose::Radio) => "radio",
        Ok(pb::Purpose::Anchor) => "anchor (live streaming)",
        _ => "unknown",
    }
}

fn status_words(status: i32) -> &'static str {
    match pb::Status::try_from(status) {
        Ok(pb::Status::Verified) => "VERIFIED",
        Ok(pb::Status::NotVerified) => "NOT_VERIFIED",
        Ok(pb::Status::PendingReview) => "PENDING_REVIEW",
        Ok(pb::Status::Expired) => "EXPIRED",
        Ok(pb::Status::Erased) => "ERASED",
        _ => "UNKNOWN",
    }
}

/// Starts the web console and serves until Ctrl-C or SIGTERM.
pub async fn run(args: ReviewArgs) -> Result<(), CliError> {
    let listen = match args.web_args.listen {
        Some(addr) => addr,
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    if !listen.ip().is_loopback() {
        if !args.web_args.allow_remote {
            return Err(CliError::Usage(format!(
                "--listen {listen} is not a loopback address; add --allow-remote if you mean it"
            )));
        }
        if listen.ip().is_unspecified() {
            return Err(CliError::Usage(
                "--listen needs one specific address (the console checks the Host header against it)".into(),
            ));
        }
    }
    // Ctrl-C, SIGTERM or SIGHUP ends the console, releasing and dropping a held case.
    let mut interrupts = Interrupts::listen()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let console = Arc::new(prepare(&args, &listener).await?);
    if !listen.ip().is_loopback() {
        eprintln!(
            "warning: the review console listens on {listen}, not on loopback: case material will cross the \
             network without TLS, and anyone who learns the URL can use this console"
        );
    }
    print_launch_url(&console);
    eprintln!("each URL opens one page once; opening it prints the next (for a reload or a new tab)");
    let app = router(console.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { interrupts.recv().await })
        .await
        .context("serving the review console")?;
    finish(&console).await;
    Ok(())
}

/// Connects to the gateway, loads the reviewer key (registering it) and works out the allowed hosts.
async fn prepare(args: &ReviewArgs, listener: &tokio::net::TcpListener) -> anyhow::Result<Console> {
    let caller = own_caller(&args.certs.join(format!("{}.pem", args.identity)))?;
    let channel = connect_named(&args.target, args.tls.tls_name.as_deref(), &args.certs, &args.identity).await?;
    let review = ReviewServiceClient::new(channel.clone()).max_decoding_message_size(32 << 20);
    let mode = match caller.role {
        Role::Reviewer => {
            let key = reviewer_key(&key_path(args))?;
            let mut review = review;
            register(&mut review, &key).await.context("RegisterReviewerKey")?;
            Mode::Reviewer { key, review }
        }
        Role::Admin => Mode::Admin {
            review,
            audit: AuditServiceClient::new(channel),
        },
        Role::Onboarding => anyhow::bail!("the review console needs a reviewer or admin certificate"),
    };
    let local = listener.local_addr().context("listener address")?;
    let port = local.port();
    let hosts = if local.ip().is_loopback() {
        let ip = match local.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        vec![format!("{ip}:{port}"), format!("localhost:{port}")]
    } else {
        vec![local.to_string()]
    };
    Ok(Console {
        mode,
        principal: caller.principal,
        launch: std::sync::Mutex::new(secret()?),
        sessions: std::sync::Mutex::new(std::collections::VecDeque::new()),
        hosts,
        held: Mutex::new(Held::default()),
    })
}

/// 256 random bits, hex.
fn secret() -> anyhow::Result<Zeroizing<String>> {
    Ok(Zeroizing::new(hex::encode(
        crate::crypto::random::bytes::<32>().context("randomness")?,
    )))
}

/// Prints the URL that opens a page now (the only output on stdout).
fn print_launch_url(console: &Console) {
    let launch = lock(&console.launch);
    // A terminal that went away is no reason to stop serving the page that is open.
    let _ = writeln!(
        std::io::stdout(),
        "review console: http://{}/?token={}",
        console.hosts[0],
        launch.as_str()
    );
}

/// A plain mutex (held for a comparison or a swap, never across an await); a poisoned one is used
/// as it is: its data is a token or a list of them, valid whatever panicked.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn register(review: &mut ReviewServiceClient<Channel>, key: &OpeningKey) -> Result<(), tonic::Status> {
    review
        .register_reviewer_key(pb::RegisterReviewerKeyRequest {
            public_key: key.public_key().to_vec(),
        })
        .await
        .map(|_| ())
}

/// On exit: gives a held case back to the queue and drops its material.
async fn finish(console: &Console) {
    let case = console.held.lock().await.case.take();
    if let Some(case) = case {
        let mut review = console.review_client();
        let released = bounded(review.release_case(pb::ReleaseCaseRequest {
            case_id: case.case_id.clone(),
        }))
        .await;
        if released.is_err() {
            eprintln!("could not release case {}; its lease will run out", case.case_id);
        }
    }
}

fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/assets/console.css",
            get(|| async { asset("text/css; charset=utf-8", CONSOLE_CSS) }),
        )
        .route(
            "/assets/review.js",
            get(|| async { asset("text/javascript; charset=utf-8", REVIEW_JS) }),
        )
        .route(
            "/assets/admin.js",
            get(|| async { asset("text/javascript; charset=utf-8", ADMIN_JS) }),
        )
        .route("/api/state", get(state))
        .route("/api/claim", post(claim))
        .route("/api/decide", post(decide))
        .route("/api/release", post(release))
        .route("/api/audit", get(audit))
        .route("/case/{id}/image/{slot}", get(image))
        .layer(axum::middleware::from_fn_with_state(console.clone(), guard))
        .with_state(console)
}

/// Every answer: no caching, no framing, no referrer, no sniffing, the CSP.
fn harden(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "forbidden\n").into_response()
}

/// Whether `candidate` is the live launch token; if so it is used up (a new one is made and printed)
/// and a new session secret is returned for the page it opens.
fn exchange(console: &Console, candidate: &str) -> Option<Zeroizing<String>> {
    {
        let mut launch = lock(&console.launch);
        if !bool::from(candidate.as_bytes().ct_eq(launch.as_bytes())) {
            return None;
        }
        *launch = secret().ok()?;
    }
    let session = secret().ok()?;
    {
        let mut sessions = lock(&console.sessions);
        if sessions.len() == MAX_SESSIONS {
            sessions.pop_front();
        }
        sessions.push_back(session.clone());
    }
    print_launch_url(console);
    Some(session)
}

/// Whether `candidate` is a live session secret (each compared in constant time).
fn session_matches(console: &Console, candidate: &[u8]) -> bool {
    let sessions = lock(&console.sessions);
    sessions
        .iter()
        .fold(subtle::Choice::from(0), |found, s| {
            found | candidate.ct_eq(s.as_bytes())
        })
        .into()
}

/// The value of `name` in a query string (percent-decoded).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Host, Origin and token checks, then the security headers on whatever answers.
async fn guard(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    let mut response = check(&console, request, next).await;
    harden(response.headers_mut());
    response
}

async fn check(console: &Console, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host_ok = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| console.hosts.iter().any(|allowed| allowed == h));
    if !host_ok {
        return forbidden();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let ok = console
            .hosts
            .iter()
            .any(|h| origin.strip_prefix("http://") == Some(h.as_str()));
        if !ok {
            return forbidden();
        }
    }
    // What a browser says of who asks, on reads as on writes: our own page (`same-origin`) or the
    // address bar (`none`); a page on another port of this host is `same-site`, and refused.
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return forbidden();
    }
    let path = request.uri().path();
    let open = request.method() == Method::GET && (path == "/" || path.starts_with("/assets/"));
    let by_session = headers
        .get(SESSION_HEADER)
        .is_some_and(|v| session_matches(console, v.as_bytes()));
    if open || by_session {
        return next.run(request).await;
    }
    forbidden()
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}

/// The page, for a launch URL not used before: with a new session secret in it.
async fn index(State(console): State<Arc<Console>>, request: Request) -> Response {
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

/// A JSON answer that may hold personal data: serialized into a buffer that is wiped once sent.
fn private_json<T: Serialize>(status: StatusCode, value: &T) -> Response {
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
struct Message<'a> {
    ok: bool,
    message: &'a str,
    status: Option<&'a str>,
}

fn message(status: StatusCode, ok: bool, text: &str, case_status: Option<&str>) -> Response {
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
struct Stats {
    pending: u64,
    claimed: u64,
    oldest_pending_age_seconds: i64,
}

#[derive(Serialize)]
struct Gateway {
    up: bool,
    message: String,
}

#[derive(Serialize)]
struct CaseView<'a> {
    id: &'a str,
    purpose: &'static str,
    lease_expires_unix: i64,
    submitted_at_unix: i64,
    provider: &'a str,
    why: &'static str,
    supplement_complete: bool,
    approved_by: &'a [String],
    approvals_required: u32,
    name: &'a str,
    id_number: &'a str,
    /// `YYYY-MM-DD`, derived from the ID number; `None` when it does not parse.
    birth_date: Option<String>,
    age: Option<u32>,
    phone: &'a str,
    /// In slot order: the image URL, or `None` when not supplied.
    images: Vec<Option<String>>,
    /// Shown in place of the face when the case holds none (document review, or biometric consent
    /// withdrawn: the face was destroyed); empty when it holds one.
    face_note: &'static str,
}

#[derive(Serialize)]
struct StateView<'a> {
    role: &'static str,
    principal: &'a str,
    now_unix: i64,
    gateway: Gateway,
    stats: Option<Stats>,
    claimed_by_me: u32,
    notice: Option<String>,
    reasons: Vec<(&'static str, &'static str)>,
    case: Option<CaseView<'a>>,
}

fn case_view(case: &OpenCase) -> CaseView<'_> {
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

/// What the console says where the face would be when the case holds none.
pub const NO_FACE_NOTE: &str = "(no face: document review; decide from the ID card and handheld photos)";

async fn state(State(console): State<Arc<Console>>) -> Response {
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

async fn claim(State(console): State<Arc<Console>>) -> Response {
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
struct DecideRequest {
    case_id: String,
    decision: String,
    reason: String,
}

async fn decide(State(console): State<Arc<Console>>, axum::Json(body): axum::Json<DecideRequest>) -> Response {
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
struct ReleaseRequest {
    case_id: String,
}

async fn release(State(console): State<Arc<Console>>, axum::Json(body): axum::Json<ReleaseRequest>) -> Response {
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

async fn image(
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

/// A shared image as a response body; the last holder wipes it.
struct ArcSecret(Arc<Secret>);

impl AsRef<[u8]> for ArcSecret {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().as_ref()
    }
}

#[derive(Serialize)]
struct AuditView {
    events: Vec<AuditRow>,
    next_page_token: String,
}

#[derive(Serialize)]
struct AuditRow {
    id: String,
    at_unix: i64,
    actor: String,
    action: String,
    case_id: String,
    detail: String,
}

async fn audit(State(console): State<Arc<Console>>, request: Request) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_percent_decoded() {
        assert_eq!(
            query_param(Some("a=1&case_id=vf_%41b+c"), "case_id").as_deref(),
            Some("vf_Ab c")
        );
        assert_eq!(query_param(Some("a=1"), "case_id"), None);
        assert_eq!(query_param(Some("x=%4"), "x"), None);
    }

    #[test]
    fn both_pages_have_one_place_for_their_session() {
        for page in [INDEX_HTML, ADMIN_HTML] {
            assert_eq!(page.matches(SESSION_META).count(), 1);
        }
    }
}
