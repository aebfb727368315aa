//! Who is calling, and what they may call: the one place where roles are checked.
//!
//! The client certificate's subject OU is the role, its CN the principal (docs/api.md §3); a CN the
//! gateway uses for itself in the audit trail ([`RESERVED_PRINCIPALS`]) is no principal.
//! [`allowed_roles`] is the single table. It is applied twice: by [`super::admission`] before a
//! call's body is read (a certificate of no role, or of a role the method does not allow, costs the
//! gateway no body), and by [`authorize`], which every RPC handler calls first for its caller.
//!
//! Must never let a certificate act under a name the gateway writes as its own.

use rustls_pki_types::CertificateDer;
use tonic::{Code, Request, Status};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::errors;
use super::reasons::ErrorReason;
use crate::domain::GATEWAY_ACTOR;

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
    /// The HTTP/2 path of the method (`/package.Service/Method`).
    pub const fn path(self) -> &'static str {
        match self {
            Rpc::GetSealingKey => "/idgate.v1.VerificationService/GetSealingKey",
            Rpc::Verify => "/idgate.v1.VerificationService/Verify",
            Rpc::GetVerification => "/idgate.v1.VerificationService/GetVerification",
            Rpc::WatchVerification => "/idgate.v1.VerificationService/WatchVerification",
            Rpc::SubmitSupplement => "/idgate.v1.VerificationService/SubmitSupplement",
            Rpc::EraseSubject => "/idgate.v1.VerificationService/EraseSubject",
            Rpc::WithdrawConsent => "/idgate.v1.VerificationService/WithdrawConsent",
            Rpc::RegisterReviewerKey => "/idgate.v1.ReviewService/RegisterReviewerKey",
            Rpc::ClaimNext => "/idgate.v1.ReviewService/ClaimNext",
            Rpc::SubmitDecision => "/idgate.v1.ReviewService/SubmitDecision",
            Rpc::ReleaseCase => "/idgate.v1.ReviewService/ReleaseCase",
            Rpc::GetQueueStats => "/idgate.v1.ReviewService/GetQueueStats",
            Rpc::ListAuditEvents => "/idgate.v1.AuditService/ListAuditEvents",
        }
    }

    /// The RPC a request path names; `None` for health, reflection and unknown paths.
    pub fn from_path(path: &str) -> Option<Rpc> {
        Self::ALL.into_iter().find(|rpc| rpc.path() == path)
    }

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

/// Principals the gateway writes in the audit trail as itself (retention, key rotation, integrity
/// alarms): no client certificate may carry one as its CN, in any letter case.
pub const RESERVED_PRINCIPALS: [&str; 1] = [GATEWAY_ACTOR];

/// Why a client certificate names no caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unidentified {
    /// Not exactly one known role (OU) and one usable CN.
    Unrecognized,
    /// The CN is one of [`RESERVED_PRINCIPALS`].
    Reserved,
}

/// The one value of `values`, if there is exactly one and it is text.
fn only<'a>(mut values: impl Iterator<Item = Option<&'a str>>) -> Option<&'a str> {
    let first = values.next()??;
    values.next().is_none().then_some(first)
}

/// Reads the caller from the client certificate. The TLS layer has already verified the chain.
pub fn identify(der: &[u8]) -> Result<Caller, Unidentified> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| Unidentified::Unrecognized)?;
    let subject = cert.subject();
    // Exactly one OU and one CN: an ambiguous certificate gets no role.
    let ou = only(subject.iter_organizational_unit().map(|ou| ou.as_str().ok())).ok_or(Unidentified::Unrecognized)?;
    let cn = only(subject.iter_common_name().map(|cn| cn.as_str().ok()))
        .filter(|cn| !cn.is_empty() && cn.len() <= 128 && cn.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or(Unidentified::Unrecognized)?;
    let role = Role::parse(ou).ok_or(Unidentified::Unrecognized)?;
    if RESERVED_PRINCIPALS
        .iter()
        .any(|reserved| cn.eq_ignore_ascii_case(reserved))
    {
        return Err(Unidentified::Reserved);
    }
    Ok(Caller {
        role,
        principal: cn.to_owned(),
    })
}

/// The caller a client certificate names, if any (see [`identify`] for why not).
pub fn caller_from_certificate(der: &[u8]) -> Option<Caller> {
    identify(der).ok()
}

/// The check of the connection's client certificate chain (`certs`, end entity first) against
/// `rpc`. Its refusals carry an `ErrorInfo` like every other: `UNAUTHENTICATED` /
/// `CERTIFICATE_REQUIRED` without a client certificate, `PERMISSION_DENIED` /
/// `CERTIFICATE_UNRECOGNIZED` for one that names no known role or no usable principal,
/// `PERMISSION_DENIED` / `PRINCIPAL_RESERVED` for a CN the gateway reserves, and
/// `PERMISSION_DENIED` / `ROLE_NOT_ALLOWED` for a role the table does not allow.
pub fn authorize_certificates(certs: Option<&[CertificateDer<'_>]>, rpc: Rpc) -> Result<Caller, Status> {
    let Some(leaf) = certs.and_then(<[_]>::first) else {
        return Err(errors::status_with_reason(
            Code::Unauthenticated,
            "a client certificate is required",
            ErrorReason::CertificateRequired,
            &[],
        ));
    };
    let caller = identify(leaf.as_ref()).map_err(|why| match why {
        Unidentified::Unrecognized => errors::status_with_reason(
            Code::PermissionDenied,
            "the client certificate names no known role",
            ErrorReason::CertificateUnrecognized,
            &[],
        ),
        Unidentified::Reserved => errors::status_with_reason(
            Code::PermissionDenied,
            "the client certificate's CN is a name the gateway reserves for itself",
            ErrorReason::PrincipalReserved,
            &[],
        ),
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

/// The check every handler runs first ([`authorize_certificates`] on the request's connection).
pub fn authorize<T>(request: &Request<T>, rpc: Rpc) -> Result<Caller, Status> {
    let certs = request.peer_certs();
    authorize_certificates(certs.as_deref().map(Vec::as_slice), rpc)
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

    #[test]
    fn every_rpc_has_a_path_and_is_found_by_it() {
        for rpc in Rpc::ALL {
            assert_eq!(Rpc::from_path(rpc.path()), Some(rpc));
            assert!(rpc.path().ends_with(&format!("/{rpc:?}")), "{rpc:?}");
        }
        for other in [
            "/grpc.health.v1.Health/Check",
            "/idgate.v1.VerificationService/verify",
            "",
        ] {
            assert_eq!(Rpc::from_path(other), None);
        }
    }

    /// A certificate with these OUs and CNs (rcgen keeps one value per attribute type: the last).
    fn certificate(ous: &[&str], cns: &[&str]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        for ou in ous {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationalUnitName, *ou);
        }
        for cn in cns {
            params.distinguished_name.push(rcgen::DnType::CommonName, *cn);
        }
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("certificate").der().to_vec()
    }

    #[test]
    fn a_certificate_names_one_role_and_one_principal_that_is_not_the_gateways() {
        let caller = identify(&certificate(&["reviewer"], &["reviewer-7"]));
        assert_eq!(
            caller,
            Ok(Caller {
                role: Role::Reviewer,
                principal: "reviewer-7".into()
            })
        );
        for (ous, cns) in [
            (&["auditor"][..], &["a"][..]),
            (&["admin"][..], &[""][..]),
            (&["admin"][..], &["with space"][..]),
            (&[][..], &["a"][..]),
        ] {
            assert_eq!(
                identify(&certificate(ous, cns)),
                Err(Unidentified::Unrecognized),
                "{ous:?} {cns:?}"
            );
        }
        for cn in ["idgate", "IDGATE", "IdGate"] {
            for role in Role::ALL {
                assert_eq!(
                    identify(&certificate(&[role.as_str()], &[cn])),
                    Err(Unidentified::Reserved),
                    "{cn} as {role:?}"
                );
            }
        }
        assert!(identify(&certificate(&["admin"], &["idgate-ops"])).is_ok());
        assert_eq!(identify(b"not DER"), Err(Unidentified::Unrecognized));
    }
}
