//! Who may use the web console: the launch token (one page, once), the session secret each page
//! sends, the `Host`, `Origin` and `Sec-Fetch-Site` checks on every request, and the headers on every
//! answer (no caching, no framing, the Content-Security-Policy).
//!
//! It must never set a cookie, compare a secret in variable time, or let a request through that
//! comes with a foreign `Host` or `Origin`, from another site or origin, or without a live session
//! (only the launch URL and the static assets are served without one).

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::state::Console;

/// The header that carries a page's session secret.
pub const SESSION_HEADER: &str = "x-idgate-session";
/// Pages with a live session at once (a reload opens a new one); past it the oldest ends.
pub(super) const MAX_SESSIONS: usize = 8;

pub(super) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
                   connect-src 'self'; font-src 'none'; object-src 'none'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

/// 256 random bits, hex.
pub(super) fn secret() -> anyhow::Result<Zeroizing<String>> {
    Ok(Zeroizing::new(hex::encode(
        crate::crypto::random::bytes::<32>().context("randomness")?,
    )))
}

/// Prints the URL that opens a page now (the only output on stdout).
pub(super) fn print_launch_url(console: &Console) {
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
pub(super) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Every answer: no caching, no framing, no referrer, no sniffing, the CSP.
pub(super) fn harden(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
}

pub(super) fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "forbidden\n").into_response()
}

/// Whether `candidate` is the live launch token; if so it is used up (a new one is made and printed)
/// and a new session secret is returned for the page it opens.
pub(super) fn exchange(console: &Console, candidate: &str) -> Option<Zeroizing<String>> {
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
pub(super) fn session_matches(console: &Console, candidate: &[u8]) -> bool {
    let sessions = lock(&console.sessions);
    sessions
        .iter()
        .fold(subtle::Choice::from(0), |found, s| {
            found | candidate.ct_eq(s.as_bytes())
        })
        .into()
}

/// The value of `name` in a query string, decoded as a form (`+` a space, `%XX` an escape) by the
/// `form_urlencoded` crate. A malformed escape stays as written, so it never matches a token or id.
pub(super) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Host, Origin and token checks, then the security headers on whatever answers.
pub(super) async fn guard(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    let mut response = check(&console, request, next).await;
    harden(response.headers_mut());
    response
}

pub(super) async fn check(console: &Console, request: Request, next: Next) -> Response {
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

#[cfg(test)]
mod tests {
    use super::query_param;

    #[test]
    fn query_parameters_are_percent_decoded() {
        assert_eq!(
            query_param(Some("a=1&case_id=vf_%41b+c"), "case_id").as_deref(),
            Some("vf_Ab c")
        );
        assert_eq!(query_param(Some("a=1"), "case_id"), None);
        assert_eq!(query_param(Some("x=%4"), "x").as_deref(), Some("%4"), "kept as written");
    }
}
