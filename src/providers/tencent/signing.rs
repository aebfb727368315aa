//! TC3-HMAC-SHA256, Tencent Cloud API 3.0's request signature ("Signature v3"), as pure functions.
//!
//! This module only computes and checks signatures over bytes it is handed: no I/O, no clock, no
//! logging. The adapter signs with it and the simulator verifies with it, so a mistake here shows up
//! as a test failure against Tencent's published worked example, not as a production outage.
//!
//! It must never: log or format the secret key (see [`SecretKey`]), keep
//! key-derived material alive longer than one call (intermediate keys are zeroized), compare
//! signatures in variable time, or derive the credential-scope date from anything but the UTC date
//! of the request timestamp (using local time breaks every call made between 00:00 and 08:00 CST).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::providers::credentials::SecretKey;

/// The only algorithm TC3 defines.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The content type the adapter sends and signs. It must match the header byte for byte, so the
/// adapter never lets the HTTP client pick one.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// The headers that take part in the signature, lower-case, sorted, `;`-separated.
pub const SIGNED_HEADERS: &str = "content-type;host";
/// The terminator of every TC3 credential scope.
pub const TERMINATOR: &str = "tc3_request";

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex SHA-256, the `HashedRequestPayload` / `HashedCanonicalRequest` of the spec.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `YYYY-MM-DD` of `timestamp` in **UTC**, the date of the credential scope.
///
/// `None` for timestamps that have no four-digit UTC year (a broken clock); signing refuses those
/// rather than inventing a date.
pub fn utc_date(timestamp: i64) -> Option<String> {
    let date = time::OffsetDateTime::from_unix_timestamp(timestamp).ok()?.date();
    if !(0..=9999).contains(&date.year()) {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// Step 1: the canonical request of a `POST /` with an empty query string.
///
/// Header values are trimmed and lower-cased as the spec requires, so the verifier can pass the
/// values it received and the signer the values it sends.
pub fn canonical_request(content_type: &str, host: &str, payload: &[u8]) -> String {
    format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\n{}\n{}",
        content_type.trim().to_ascii_lowercase(),
        host.trim().to_ascii_lowercase(),
        SIGNED_HEADERS,
        sha256_hex(payload)
    )
}

/// `Date/service/tc3_request`.
pub fn credential_scope(date: &str, service: &str) -> String {
    format!("{date}/{service}/{TERMINATOR}")
}

/// Step 2: the string to sign.
pub fn string_to_sign(timestamp: i64, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; the fallback keeps this
    // panic-free without an `expect`, and yields a signature that simply will not verify.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return Zeroizing::new([0u8; 32]);
    };
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// Step 3: derives the signing key (`"TC3" + SecretKey` → date → service → `tc3_request`) and returns
/// the lower-case hex signature of `string_to_sign`.
pub fn signature(secret_key: &SecretKey, date: &str, service: &str, string_to_sign: &str) -> String {
    let mut k = Zeroizing::new(Vec::with_capacity(3 + secret_key.as_bytes().len()));
    k.extend_from_slice(b"TC3");
    k.extend_from_slice(secret_key.as_bytes());
    let secret_date = hmac(&k, date.as_bytes());
    let secret_service = hmac(secret_date.as_ref(), service.as_bytes());
    let secret_signing = hmac(secret_service.as_ref(), TERMINATOR.as_bytes());
    let sig = hmac(secret_signing.as_ref(), string_to_sign.as_bytes());
    hex::encode(sig.as_ref())
}

/// Step 4: the `Authorization` header value.
pub fn authorization(secret_id: &str, scope: &str, signature: &str) -> String {
    format!("{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}")
}

/// Why a request could not be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The timestamp has no representable UTC date (the local clock is broken).
    #[error("timestamp has no UTC date")]
    BadTimestamp,
}

/// Signs a `POST /` JSON request: all four steps, returning the `Authorization` header value.
pub fn sign(
    secret_id: &str,
    secret_key: &SecretKey,
    service: &str,
    host: &str,
    timestamp: i64,
    payload: &[u8],
) -> Result<String, SignError> {
    let date = utc_date(timestamp).ok_or(SignError::BadTimestamp)?;
    let scope = credential_scope(&date, service);
    let canonical = canonical_request(CONTENT_TYPE, host, payload);
    let to_sign = string_to_sign(timestamp, &scope, &canonical);
    let sig = signature(secret_key, &date, service, &to_sign);
    Ok(authorization(secret_id, &scope, &sig))
}

/// The parts of an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization<'a> {
    pub secret_id: &'a str,
    pub date: &'a str,
    pub service: &'a str,
    pub terminator: &'a str,
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

/// Splits `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=..., Signature=...`.
pub fn parse_authorization(header: &str) -> Option<ParsedAuthorization<'_>> {
    let rest = header.strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None; // a repeated field is ambiguous: refuse rather than pick one
        }
    }
    let mut scope = credential?.split('/');
    let parsed = ParsedAuthorization {
        secret_id: scope.next()?,
        date: scope.next()?,
        service: scope.next()?,
        terminator: scope.next()?,
        signed_headers: signed_headers?,
        signature: signature?,
    };
    if scope.next().is_some() || parsed.secret_id.is_empty() {
        return None;
    }
    Some(parsed)
}

/// Everything a verifier knows about a received request.
pub struct VerifyRequest<'a> {
    /// The `Authorization` header as received.
    pub authorization: &'a str,
    /// The SecretId the verifier accepts.
    pub secret_id: &'a str,
    /// Its SecretKey.
    pub secret_key: &'a SecretKey,
    /// The service this endpoint is (`faceid`).
    pub service: &'a str,
    /// The `Content-Type` header as received.
    pub content_type: &'a str,
    /// The `Host` header as received.
    pub host: &'a str,
    /// `X-TC-Timestamp` as received.
    pub timestamp: i64,
    /// The verifier's current time.
    pub now: i64,
    /// How far `timestamp` may be from `now`, in seconds (Tencent documents five minutes).
    pub max_skew_seconds: i64,
    /// The body bytes exactly as received.
    pub payload: &'a [u8],
}

/// Why a signature was not accepted. Each maps to one documented `AuthFailure.*` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Tc3SignatureError {
    /// The header is not a TC3 `Authorization` (`AuthFailure.InvalidAuthorization`).
    #[error("malformed Authorization header")]
    Malformed,
    /// Not the SecretId this verifier knows (`AuthFailure.SecretIdNotFound`).
    #[error("unknown SecretId")]
    UnknownSecretId,
    /// The timestamp is outside the allowed window (`AuthFailure.SignatureExpire`).
    #[error("timestamp outside the allowed window")]
    Expired,
    /// Scope date is not the UTC date of the timestamp, wrong service, wrong terminator or wrong
    /// signed headers (`AuthFailure.SignatureFailure`).
    #[error("credential scope does not match the request")]
    ScopeMismatch,
    /// The signature is not the one the key gives for these bytes (`AuthFailure.SignatureFailure`).
    #[error("signature mismatch")]
    SignatureMismatch,
}

/// Checks a received request's signature, in constant time for the secret-dependent comparison.
pub fn verify(req: &VerifyRequest<'_>) -> Result<(), Tc3SignatureError> {
    let parsed = parse_authorization(req.authorization).ok_or(Tc3SignatureError::Malformed)?;
    // The SecretId is an identifier, not a secret, but comparing it in constant time costs nothing.
    if !bool::from(parsed.secret_id.as_bytes().ct_eq(req.secret_id.as_bytes())) {
        return Err(Tc3SignatureError::UnknownSecretId);
    }
    if req.now.abs_diff(req.timestamp) > req.max_skew_seconds.unsigned_abs() {
        return Err(Tc3SignatureError::Expired);
    }
    let expected_date = utc_date(req.timestamp).ok_or(Tc3SignatureError::Expired)?;
    if parsed.date != expected_date
        || parsed.service != req.service
        || parsed.terminator != TERMINATOR
        || parsed.signed_headers != SIGNED_HEADERS
    {
        return Err(Tc3SignatureError::ScopeMismatch);
    }
    let scope = credential_scope(&expected_date, req.service);
    let canonical = canonical_request(req.content_type, req.host, req.payload);
    let to_sign = string_to_sign(req.timestamp, &scope, &canonical);
    let expected = Zeroizing::new(signature(req.secret_key, &expected_date, req.service, &to_sign));
    if bool::from(expected.as_bytes().ct_eq(parsed.signature.as_bytes())) {
        Ok(())
    } else {
        Err(Tc3SignatureError::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tencent Cloud API 3.0 documentation, "Signature v3" (签名方法 v3), worked example "querying the
    // list of CVM instances in the Guangzhou region" (published identically under every product's
    // API docs, e.g. https://tencentcloud.com/document/api/614/42761): POST
    // https://cvm.tencentcloudapi.com, DescribeInstances, X-TC-Timestamp 1551113065. The SecretId is
    // masked in the document, but it is not an input to the signature; the derivation step spells the
    // SecretKey out in full as `Gu5t9xGARNpq86cd98joQYCN3EXAMPLE`, and with it every published value
    // below (payload hash, canonical request, its hash, string to sign, signature) is reproduced.
    const DOC_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
    const DOC_HOST: &str = "cvm.tencentcloudapi.com";
    const DOC_TIMESTAMP: i64 = 1_551_113_065;
    // The body is sent with `\uXXXX` escapes (literally backslash-u), exactly as published.
    const DOC_PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const DOC_PAYLOAD_HASH: &str = "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064";
    const DOC_CANONICAL_HASH: &str = "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031";
    const DOC_SIGNATURE: &str = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168";

    #[test]
    fn reproduces_published_worked_example() {
        assert_eq!(sha256_hex(DOC_PAYLOAD.as_bytes()), DOC_PAYLOAD_HASH);

        let canonical = canonical_request(CONTENT_TYPE, DOC_HOST, DOC_PAYLOAD.as_bytes());
        assert_eq!(
            canonical,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(sha256_hex(canonical.as_bytes()), DOC_CANONICAL_HASH);

        let date = utc_date(DOC_TIMESTAMP);
        assert_eq!(date.as_deref(), Some("2019-02-25"));
        let scope = credential_scope("2019-02-25", "cvm");
        assert_eq!(scope, "2019-02-25/cvm/tc3_request");

        let to_sign = string_to_sign(DOC_TIMESTAMP, &scope, &canonical);
        assert_eq!(
            to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );

        let key = SecretKey::new(DOC_KEY.to_owned());
        assert_eq!(signature(&key, "2019-02-25", "cvm", &to_sign), DOC_SIGNATURE);

        // The whole pipeline, with a placeholder SecretId (the document masks its own).
        let auth = sign(
            "AKIDEXAMPLE",
            &key,
            "cvm",
            DOC_HOST,
            DOC_TIMESTAMP,
            DOC_PAYLOAD.as_bytes(),
        );
        assert_eq!(
            auth.as_deref(),
            Ok(
                "TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
            )
        );
    }

    #[test]
    fn scope_date_is_utc_not_china_time() {
        // 1551113065 is 2019-02-26 00:44:25 in UTC+8 but still the 25th in UTC (the document's own
        // warning about local-time dates).
        assert_eq!(utc_date(DOC_TIMESTAMP).as_deref(), Some("2019-02-25"));
        assert_eq!(utc_date(0).as_deref(), Some("1970-01-01"));
        assert_eq!(utc_date(-1).as_deref(), Some("1969-12-31"));
        assert_eq!(utc_date(i64::MAX), None);
        assert_eq!(utc_date(-100_000_000_000), None);
    }

    const ID: &str = "AKIDtest";
    const HOST: &str = "127.0.0.1:9000";
    const BODY: &[u8] = br#"{"IdCard":"x","Name":"y"}"#;
    const NOW: i64 = 1_700_000_000;

    fn check(auth: &str, key: &SecretKey, body: &[u8], timestamp: i64) -> Result<(), Tc3SignatureError> {
        verify(&VerifyRequest {
            authorization: auth,
            secret_id: ID,
            secret_key: key,
            service: "faceid",
            content_type: CONTENT_TYPE,
            host: HOST,
            timestamp,
            now: NOW,
            max_skew_seconds: 300,
            payload: body,
        })
    }

    fn signed(key: &str, timestamp: i64) -> String {
        let key = SecretKey::new(key.to_owned());
        sign(ID, &key, "faceid", HOST, timestamp, BODY).unwrap_or_default()
    }

    #[test]
    fn verify_accepts_a_correct_signature() {
        let key = SecretKey::new("k".to_owned());
        assert_eq!(check(&signed("k", NOW), &key, BODY, NOW), Ok(()));
        // Header values are canonicalised (trimmed, lower-cased) before hashing.
        let ok = verify(&VerifyRequest {
            authorization: &signed("k", NOW),
            secret_id: ID,
            secret_key: &key,
            service: "faceid",
            content_type: " Application/JSON; charset=UTF-8 ",
            host: HOST,
            timestamp: NOW,
            now: NOW,
            max_skew_seconds: 300,
            payload: BODY,
        });
        assert_eq!(ok, Ok(()));
    }

    #[test]
    fn verify_rejects_a_changed_body() {
        let key = SecretKey::new("k".to_owned());
        let changed = br#"{"IdCard":"x","Name":"z"}"#;
        assert_eq!(
            check(&signed("k", NOW), &key, changed, NOW),
            Err(Tc3SignatureError::SignatureMismatch)
        );
    }

    #[test]
    fn verify_rejects_a_wrong_secret() {
        let key = SecretKey::new("k".to_owned());
        assert_eq!(
            check(&signed("other", NOW), &key, BODY, NOW),
            Err(Tc3SignatureError::SignatureMismatch)
        );
    }

    #[test]
    fn verify_rejects_a_wrong_date_scope() {
        // A signer that used China time: 2023-11-15 06:13 CST is still 2023-11-14 in UTC. Sign
        // everything correctly except the scope date.
        let key = SecretKey::new("k".to_owned());
        let utc = utc_date(NOW).unwrap_or_default();
        assert_eq!(utc, "2023-11-14");
        let local = "2023-11-15";
        let scope = credential_scope(local, "faceid");
        let canonical = canonical_request(CONTENT_TYPE, HOST, BODY);
        let sig = signature(&key, local, "faceid", &string_to_sign(NOW, &scope, &canonical));
        let auth = authorization(ID, &scope, &sig);
        assert_eq!(check(&auth, &key, BODY, NOW), Err(Tc3SignatureError::ScopeMismatch));
    }

    #[test]
    fn verify_rejects_wrong_service_id_skew_and_garbage() {
        let key = SecretKey::new("k".to_owned());
        let cvm = sign(ID, &key, "cvm", HOST, NOW, BODY).unwrap_or_default();
        assert_eq!(check(&cvm, &key, BODY, NOW), Err(Tc3SignatureError::ScopeMismatch));

        let other_id = sign("AKIDother", &key, "faceid", HOST, NOW, BODY).unwrap_or_default();
        assert_eq!(
            check(&other_id, &key, BODY, NOW),
            Err(Tc3SignatureError::UnknownSecretId)
        );

        let old = NOW - 301;
        assert_eq!(
            check(&signed("k", old), &key, BODY, old),
            Err(Tc3SignatureError::Expired)
        );
        let at_edge = NOW + 300;
        assert_eq!(check(&signed("k", at_edge), &key, BODY, at_edge), Ok(()));

        for garbage in [
            "",
            "Bearer abc",
            "TC3-HMAC-SHA256",
            "TC3-HMAC-SHA256 Credential=AKIDtest/2023-11-14/faceid, SignedHeaders=content-type;host, Signature=00",
            "TC3-HMAC-SHA256 Credential=AKIDtest/2023-11-14/faceid/tc3_request/x, SignedHeaders=content-type;host, Signature=00",
            "TC3-HMAC-SHA256 Credential=AKIDtest/2023-11-14/faceid/tc3_request, Signature=00",
            "TC3-HMAC-SHA256 Credential=AKIDtest/2023-11-14/faceid/tc3_request, SignedHeaders=a, Signature=00, Signature=01",
            "TC3-HMAC-SHA256 Credential=/2023-11-14/faceid/tc3_request, SignedHeaders=a, Signature=00",
        ] {
            assert_eq!(
                check(garbage, &key, BODY, NOW),
                Err(Tc3SignatureError::Malformed),
                "{garbage}"
            );
        }

        // Signing more headers than the verifier expects is a scope problem, not a pass.
        let extra = signed("k", NOW).replace("content-type;host", "content-type;host;x-tc-action");
        assert_eq!(check(&extra, &key, BODY, NOW), Err(Tc3SignatureError::ScopeMismatch));
    }
}
