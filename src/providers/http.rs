//! The HTTP plumbing every vendor adapter shares: one client recipe (rustls/ring, HTTP/1.1, no
//! redirects, no retries, no proxies), endpoint validation, bounded response reading and the
//! mapping of transport failures to [`ProviderError`].
//!
//! It must never: follow a redirect (a 307 would re-send personal data to wherever it points),
//! retry (calls are billed), read an unbounded body, or put any part of a request or response into
//! an error (reqwest's error text can carry the URL; only fixed strings leave this module).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::providers::{Outcome, ProviderError};

/// Vendor answers are a few hundred bytes; anything near this is not an answer.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why an endpoint cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("endpoint is not a URL with a host")]
    NotUrl,
    #[error("endpoint must be https (plain http only to a loopback address)")]
    NotHttps,
    #[error("endpoint must have no path, query, fragment or user info")]
    NotBare,
}

/// Checks a vendor endpoint (`https://host[:port]`, or plain `http` to a loopback address for the
/// simulator) and returns it with the `Host` header exactly as the HTTP client will send it (port
/// only when not the default), because both vendors sign it.
pub fn endpoint(endpoint: &str) -> Result<(reqwest::Url, String), EndpointError> {
    let url = reqwest::Url::parse(endpoint).map_err(|_| EndpointError::NotUrl)?;
    let host_str = url.host_str().ok_or(EndpointError::NotUrl)?;
    let loopback = host_str.eq_ignore_ascii_case("localhost")
        || host_str
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(EndpointError::NotHttps),
    }
    // Both protocols sign the canonical URI "/", so any other path would be signed wrongly.
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(EndpointError::NotBare);
    }
    let host = match url.port() {
        Some(port) => format!("{host_str}:{port}"),
        None => host_str.to_owned(),
    };
    Ok((url, host))
}

pub(crate) fn transport_error(error: reqwest::Error) -> ProviderError {
    // Connect first: a refused or timed-out connect sent nothing, so it was not billed, and the
    // router may care about that difference.
    if error.is_connect() {
        ProviderError::Unavailable("connect")
    } else if error.is_timeout() {
        ProviderError::Timeout
    } else {
        ProviderError::Unavailable("transport")
    }
}

pub(crate) async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
    let too_large = || ProviderError::Protocol("response too large".into());
    if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Why [`http_client`] failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The HTTP client this adapter is meant to use: rustls with the *ring* provider and the caller's
/// root certificates, HTTP/1.1, no redirects, no retries (reqwest 0.13 retries protocol NACKs by
/// default), no proxies from the environment, `timeout` as a backstop for connect and whole request.
///
/// Roots are a parameter because the crate carries no root store of its own (no `webpki-roots` or
/// `rustls-native-certs` dependency); the simulator is plain HTTP and works with an empty store.
pub fn http_client(timeout: Duration, roots: rustls::RootCertStore) -> Result<reqwest::Client, HttpClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .no_proxy()
        .connect_timeout(timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?;
    Ok(client)
}

/// One HTTP answer, read in full (bounded).
pub(crate) struct Exchanged {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// `Retry-After` in delta-seconds, when the answer carried one.
    pub(crate) retry_after: Option<Duration>,
}

/// Longest `Retry-After` believed; a provider asking for more is still retried after this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// `Retry-After` as delta-seconds (the HTTP-date form is not used by either vendor and ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// Gives a rate-limit answer that named no time the one the HTTP answer asked for, if any.
pub(crate) fn with_retry_after(
    result: Result<Outcome, ProviderError>,
    asked: Option<Duration>,
) -> Result<Outcome, ProviderError> {
    match result {
        Err(ProviderError::RateLimited {
            code,
            retry_after: None,
        }) => Err(ProviderError::RateLimited {
            code,
            retry_after: asked,
        }),
        other => other,
    }
}

/// Sends one request and reads its answer (bounded) under one deadline for the whole exchange.
/// Dropping the future on expiry closes the connection; the call may still have been billed,
/// which is what [`ProviderError::Timeout`] says.
pub(crate) async fn exchange(
    builder: reqwest::RequestBuilder,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Exchanged, ProviderError> {
    let exchange = async {
        let response = builder
            .body(wiped_on_drop(body))
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = read_limited(response).await?;
        Ok::<_, ProviderError>(Exchanged {
            status,
            body,
            retry_after,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(ProviderError::Timeout),
        Ok(result) => result,
    }
}

/// A request body (name, ID number, base64 face) as `Bytes` that wipe it when the last reference is
/// dropped, which is when the HTTP client has written it: `Bytes::from(Vec)` would free it unwiped.
fn wiped_on_drop(body: Vec<u8>) -> bytes::Bytes {
    bytes::Bytes::from_owner(zeroize::Zeroizing::new(body))
}

/// What an adapter call yields: the action, the result, and the vendor's request id (for logs).
pub(crate) type Called = (&'static str, Result<Outcome, ProviderError>, Option<String>);

/// A vendor's reading of one answer (action, HTTP status, body) into a result and its request id.
pub(crate) type Interpret = fn(&str, u16, &[u8]) -> (Result<Outcome, ProviderError>, Option<String>);

/// Sends one signed vendor request and reads it with the vendor's `interpret`, honouring a
/// `Retry-After` on rate limits. The caller's W3C trace goes along (ids only; no vendor signs these
/// headers).
pub(crate) async fn call_vendor(
    action: &'static str,
    mut builder: reqwest::RequestBuilder,
    body: Vec<u8>,
    timeout: Duration,
    interpret: Interpret,
) -> Called {
    for (name, value) in crate::telemetry::trace_headers() {
        builder = builder.header(name, value);
    }
    match exchange(builder, body, timeout).await {
        Err(e) => (action, Err(e), None),
        Ok(answer) => {
            let (result, request_id) = interpret(action, answer.status, &answer.body);
            (action, with_retry_after(result, answer.retry_after), request_id)
        }
    }
}

/// Runs one adapter call (`action`, result, vendor request id) and logs how it went: action,
/// outcome or error kind, sanitized request id, time. Never the request.
pub(crate) async fn logged(
    provider: &str,
    call: impl std::future::Future<Output = Called>,
) -> Result<Outcome, ProviderError> {
    let started = tokio::time::Instant::now();
    let (action, result, request_id) = call.await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let request_id = request_id.as_deref().unwrap_or("-");
    match &result {
        Ok(outcome) => {
            // The kind of answer only: a similarity score is derived from biometrics and appears at
            // debug level at most.
            tracing::info!(
                provider,
                action,
                outcome = outcome.kind(),
                request_id,
                elapsed_ms,
                "provider answered"
            );
            tracing::debug!(provider, ?outcome, "provider outcome in detail");
        }
        Err(error) => tracing::warn!(provider, action, %error, request_id, elapsed_ms, "provider gave no outcome"),
    }
    result
}

/// JPEG or PNG by magic number: the only formats both vendors accept.
pub(crate) fn is_jpeg_or_png(image: &[u8]) -> bool {
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF];
    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    image.starts_with(JPEG) || image.starts_with(PNG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_is_read_in_seconds_and_bounded() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            retry_after(&h)
        };
        assert_eq!(retry_after(&HeaderMap::new()), None);
        assert_eq!(with("7"), Some(Duration::from_secs(7)));
        assert_eq!(with("99999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(with("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(with("-1"), None);
        let limited = |retry_after| {
            Err(ProviderError::RateLimited {
                code: "x".into(),
                retry_after,
            })
        };
        let asked = Some(Duration::from_secs(7));
        assert_eq!(with_retry_after(limited(None), asked), limited(asked));
        let own = Some(Duration::from_secs(1));
        assert_eq!(
            with_retry_after(limited(own), asked),
            limited(own),
            "the answer's own time wins"
        );
        assert_eq!(with_retry_after(Ok(Outcome::Match), asked), Ok(Outcome::Match));
    }

    #[test]
    fn endpoints_are_checked() {
        assert!(endpoint("https://cloudauth.aliyuncs.com").is_ok());
        assert_eq!(
            endpoint("http://127.0.0.1:8900").map(|(_, h)| h),
            Ok("127.0.0.1:8900".to_owned())
        );
        assert_eq!(endpoint("http://10.0.0.1").map(|_| ()), Err(EndpointError::NotHttps));
        assert_eq!(endpoint("https://x/path").map(|_| ()), Err(EndpointError::NotBare));
        assert_eq!(endpoint("not a url").map(|_| ()), Err(EndpointError::NotUrl));
    }
}
