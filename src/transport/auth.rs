//! Who is calling, and what they may call: the one place where roles are checked.
//!
//! The client certificate's subject OU is the role, its CN the principal (API.md §3). [`authorize`]
//! is called first by every RPC handler with the RPC's name; [`allowed_roles`] is the single table.
//! Before any handler, [`RevocationLayer`] refuses every call (health and reflection included) whose
//! connection's certificate is now on the deny list.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::{Code, Request, Status};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::errors;
use super::reasons::ErrorReason;
use super::revocation::Revocation;

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Onboarding,
    Reviewer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Onboarding, Role::Reviewer, Role::Admin];

    pub fn parse(ou: &str) -> Option<Self> {
        match ou {
            "onboarding" => Some(Self::Onboarding),
            "reviewer" => Some(Self::Reviewer),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onboarding => "onboarding",
            Self::Reviewer => "reviewer",
            Self::Admin => "admin",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// Certificate CN, e.g. `reviewer-1`.
    pub principal: String,
}

/// Every RPC of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    GetSealingKey,
    Verify,
    GetVerification,
    WatchVerification,
    SubmitSupplement,
    EraseSubject,
    WithdrawConsent,
    RegisterReviewerKey,
    ClaimNext,
    SubmitDecision,
    ReleaseCase,
    GetQueueStats,
    ListAuditEvents,
}

impl Rpc {
    pub const ALL: [Rpc; 13] = [
        Rpc::GetSealingKey,
        Rpc::Verify,
        Rpc::GetVerification,
        Rpc::WatchVerification,
        Rpc::SubmitSupplement,
        Rpc::EraseSubject,
        Rpc::WithdrawConsent,
        Rpc::RegisterReviewerKey,
        Rpc::ClaimNext,
        Rpc::SubmitDecision,
        Rpc::ReleaseCase,
        Rpc::GetQueueStats,
        Rpc::ListAuditEvents,
    ];
}

/// The authorization table: which roles may call which RPC.
pub fn allowed_roles(rpc: Rpc) -> &'static [Role] {
    use Role::*;
    match rpc {
        // Consent is withdrawn through the app the applicant gave it in: its onboarding backend.
        Rpc::GetSealingKey
        | Rpc::Verify
        | Rpc::GetVerification
        | Rpc::WatchVerification
        | Rpc::SubmitSupplement
        | Rpc::WithdrawConsent => &[Onboarding],
        Rpc::EraseSubject => &[Onboarding, Admin],
        Rpc::RegisterReviewerKey | Rpc::ClaimNext | Rpc::SubmitDecision | Rpc::ReleaseCase => &[Reviewer],
        // Queue figures are operational data: reviewers and operators both need them.
        Rpc::GetQueueStats => &[Reviewer, Admin],
        Rpc::ListAuditEvents => &[Admin],
    }
}

/// Reads the caller from the client certificate. The TLS layer has already verified the chain.
pub fn caller_from_certificate(der: &[u8]) -> Option<Caller> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    // Exactly one OU and one CN: an ambiguous certificate gets no role.
    let mut ous = subject.iter_organizational_unit();
    let ou = ous.next()?.as_str().ok()?;
    if ous.next().is_some() {
        return None;
    }
    let mut cns = subject.iter_common_name();
    let cn = cns.next()?.as_str().ok()?;
    if cns.next().is_some() || cn.is_empty() || cn.len() > 128 || !cn.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    Some(Caller {
        role: Role::parse(ou)?,
        principal: cn.to_owned(),
    })
}

/// The check every handler runs first. Its refusals carry an `ErrorInfo` like every other:
/// `UNAUTHENTICATED` / `CERTIFICATE_REQUIRED` without a client certificate, `PERMISSION_DENIED` /
/// `CERTIFICATE_UNRECOGNIZED` for one that names no known role or no usable principal, and
/// `PERMISSION_DENIED` / `ROLE_NOT_ALLOWED` for a role the table does not allow.
pub fn authorize<T>(request: &Request<T>, rpc: Rpc) -> Result<Caller, Status> {
    let required = || {
        errors::status_with_reason(
            Code::Unauthenticated,
            "a client certificate is required",
            ErrorReason::CertificateRequired,
            &[],
        )
    };
    let certs = request.peer_certs().ok_or_else(required)?;
    let leaf = certs.first().ok_or_else(required)?;
    let caller = caller_from_certificate(leaf.as_ref()).ok_or_else(|| {
        errors::status_with_reason(
            Code::PermissionDenied,
            "the client certificate names no known role",
            ErrorReason::CertificateUnrecognized,
            &[],
        )
    })?;
    if !allowed_roles(rpc).contains(&caller.role) {
        return Err(errors::status_with_reason(
            Code::PermissionDenied,
            &format!("role {} may not call {rpc:?}", caller.role.as_str()),
            ErrorReason::RoleNotAllowed,
            &[],
        ));
    }
    Ok(caller)
}

/// Wraps every service in [`Revoked`]: a certificate put on the deny list after its connection was
/// opened is refused at its next call (`UNAUTHENTICATED`, reason `CERTIFICATE_REVOKED`).
#[derive(Clone)]
pub struct RevocationLayer {
    revocation: Revocation,
}

impl RevocationLayer {
    pub fn new(revocation: Revocation) -> Self {
        Self { revocation }
    }
}

impl<S> tower_layer::Layer<S> for RevocationLayer {
    type Service = Revoked<S>;
    fn layer(&self, inner: S) -> Revoked<S> {
        Revoked {
            inner,
            revocation: self.revocation.clone(),
        }
    }
}

/// Checks the connection's client certificate against the current deny list before the call runs.
#[derive(Clone)]
pub struct Revoked<S> {
    inner: S,
    revocation: Revocation,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for Revoked<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let certs = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.peer_certs());
        if let Some(certs) = certs
            && let Err(denied) = self.revocation.check(&certs)
        {
            tracing::warn!(
                serial = %denied.serial,
                fingerprint = %denied.fingerprint,
                "call refused: the connection's client certificate is on the deny list"
            );
            let response = errors::certificate_revoked().into_http();
            return Box::pin(async move { Ok(response) });
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(status: &Status) -> Option<String> {
        tonic_types::StatusExt::get_details_error_info(status).map(|info| info.reason)
    }

    #[test]
    fn a_call_without_a_certificate_is_refused_with_a_reason() {
        // Over mTLS the handshake already requires one; the check does not rely on it.
        let status = authorize(&Request::new(()), Rpc::Verify).expect_err("no certificate");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "a client certificate is required");
        assert_eq!(reason(&status).as_deref(), Some("CERTIFICATE_REQUIRED"));
    }
}
