//! The gRPC services of `idgate.v1`: protobuf ↔ domain conversion and calls into the use cases.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::auth::{Role, Rpc, authorize};
use super::errors;
use super::offload;
use super::reasons::ErrorReason;
use crate::audit::AuditTrail;
use crate::clock::Clock;
use crate::consent::{ConsentWithdrawal, WithdrawalScope};
use crate::crypto::sealing::{Context, SealingKeyring};
use crate::domain::{AccountId, IdentityFields, Purpose, Reason, RequestId, VerificationId};
use crate::erasure::{EraseScope, Erasure};
use crate::live::Live;
use crate::material;
use crate::metrics::Instruments;
use crate::pb;
use crate::review::{ReasonCode, ReviewDesk, ReviewUseError};
use crate::store::CaseStatus;
use crate::store::StoreError;
use crate::store::{ReviewError, ReviewVerdict};
use crate::supplements::{SupplementError, Supplements};
use crate::verify::{Answer, Verifier, VerifyCommand, VerifyError};

/// What the services share.
pub struct App {
    pub verifier: Arc<Verifier>,
    /// Manual review.
    pub review: Arc<ReviewDesk>,
    /// Review material an applicant adds to a pending case.
    pub supplements: Arc<Supplements>,
    /// Erasure on request.
    pub erasure: Arc<Erasure>,
    /// Withdrawal of consent (all, or only the biometric part).
    pub consent: Arc<ConsentWithdrawal>,
    /// The audit trail operators list.
    pub audit: AuditTrail,
    /// Replaced by a key reload (SIGHUP); a call uses the keyring current when it looks.
    pub sealing: Live<SealingKeyring>,
    pub clock: Arc<dyn Clock>,
    /// Upper bound of a `Verify` call when the client sets no shorter `grpc-timeout`.
    pub verify_deadline: Duration,
    /// The deadline of any call that sets none (and the cap of every call).
    pub call_deadline: Duration,
    /// Metrics: RPC durations, decisions, retention and erasure counts.
    pub instruments: Instruments,
    /// Revoked client certificates, checked again at every call (SIGHUP and polling reload it).
    pub revocation: super::revocation::Revocation,
}

/// Opens a client-sealed `IdentityPayload` bound to `context` with `keyring` at `now_unix`; every
/// failure is the one `PAYLOAD_UNOPENABLE` answer of docs/api.md §2. The plaintext buffer is wiped before
/// returning.
fn open_payload(
    keyring: &SealingKeyring,
    now_unix: i64,
    sealed: Option<pb::SealedPayload>,
    context: &Context,
) -> Result<IdentityFields, Status> {
    let sealed = sealed.ok_or_else(|| errors::invalid(ErrorReason::PayloadMissing, "payload is required"))?;
    let _opening = tracing::info_span!("open_payload").entered();
    let plaintext = keyring
        .open(&sealed.key_id, context, &sealed.enc, &sealed.ciphertext, now_unix)
        .map_err(|_| errors::unopenable_payload())?;
    material::decode(&plaintext).ok_or_else(errors::unopenable_payload)
}

/// The size of a sealed payload's ciphertext (0 when absent): what decides whether opening it is
/// worth moving off the runtime.
fn sealed_len(sealed: Option<&pb::SealedPayload>) -> usize {
    sealed.map_or(0, |sealed| sealed.ciphertext.len())
}

/// A decoded `VerifyRequest` turned into checked ids, purpose and consent and its opened payload:
/// everything `Verify` takes from the wire before the use case runs.
pub struct VerifyInput {
    pub request_id: RequestId,
    pub account_id: AccountId,
    pub purpose: Purpose,
    pub consent: pb::Consent,
    /// The applicant chose document review instead of face recognition.
    pub document_review: bool,
    pub fields: IdentityFields,
}

/// Converts a decoded `VerifyRequest` (ids, purpose, consent present, payload opened under
/// `keyring` at `now_unix`); the refusal is the status the caller gets. Pure: no store, no provider.
pub fn verify_input(
    message: pb::VerifyRequest,
    keyring: &SealingKeyring,
    now_unix: i64,
) -> Result<VerifyInput, Status> {
    let request_id = RequestId::parse(&message.request_id).map_err(|r| errors::refusal(&r))?;
    let account_id = AccountId::parse(&message.account_id).map_err(|r| errors::refusal(&r))?;
    let purpose = purpose_from_pb(message.purpose).ok_or_else(|| {
        errors::invalid(
            Reason::PurposeInvalid.into(),
            "purpose must be SHORT_VIDEO, RADIO or ANCHOR",
        )
    })?;
    let consent = message
        .consent
        .ok_or_else(|| errors::refusal(&Reason::ConsentMissing.into()))?;
    let context = Context::identity(message.purpose, account_id.as_str(), request_id.as_str());
    let fields = open_payload(keyring, now_unix, message.payload, &context)?;
    Ok(VerifyInput {
        request_id,
        account_id,
        purpose,
        consent,
        document_review: message.document_review,
        fields,
    })
}

/// Converts a decoded `SubmitSupplementRequest`: the request id checked, the payload opened under
/// `keyring` at `now_unix`, then the verification id parsed (a malformed one is `NOT_FOUND`, as an
/// unknown one is in the use case).
pub fn supplement_input(
    message: pb::SubmitSupplementRequest,
    keyring: &SealingKeyring,
    now_unix: i64,
) -> Result<(VerificationId, RequestId, IdentityFields), Status> {
    let request_id = RequestId::parse(&message.request_id).map_err(|r| errors::refusal(&r))?;
    let context = Context::supplement(&message.verification_id, request_id.as_str());
    let fields = open_payload(keyring, now_unix, message.payload, &context)?;
    let verification_id = verification_id(&message.verification_id, || {
        errors::supplement_error(SupplementError::NotFound)
    })?;
    Ok((verification_id, request_id, fields))
}

/// A verification (case) id from the wire, parsed at the edge. A malformed one gets `unknown`: the
/// answer the use case gives an id it does not know, so the shape of an id tells a caller nothing a
/// lookup would not.
fn verification_id(raw: &str, unknown: impl FnOnce() -> Status) -> Result<VerificationId, Status> {
    VerificationId::parse(raw).ok_or_else(unknown)
}

/// The answer to a verification id no case has (`NOT_FOUND`).
fn no_such_verification() -> Status {
    errors::verify_error(VerifyError::NotFound)
}

/// The answer to a review of a case id no pending case has (`NOT_PENDING`).
fn no_such_pending_case() -> Status {
    errors::review_error(ReviewUseError::Queue(ReviewError::NotPending))
}

fn status_to_pb(status: CaseStatus) -> pb::Status {
    match status {
        // Internal state; only visible in a narrow race, never as a decision.
        CaseStatus::Processing => pb::Status::Unspecified,
        CaseStatus::Verified => pb::Status::Verified,
        CaseStatus::NotVerified => pb::Status::NotVerified,
        CaseStatus::PendingReview => pb::Status::PendingReview,
        CaseStatus::Expired => pb::Status::Expired,
        CaseStatus::Erased => pb::Status::Erased,
    }
}

fn answer_to_pb(answer: &Answer) -> pb::VerifyResponse {
    pb::VerifyResponse {
        verification_id: answer.verification_id.clone(),
        status: status_to_pb(answer.status) as i32,
        verified: answer.verified(),
    }
}

fn purpose_to_pb(purpose: Purpose) -> pb::Purpose {
    match purpose {
        Purpose::ShortVideo => pb::Purpose::ShortVideo,
        Purpose::Radio => pb::Purpose::Radio,
        Purpose::Anchor => pb::Purpose::Anchor,
    }
}

pub fn purpose_from_pb(value: i32) -> Option<Purpose> {
    match pb::Purpose::try_from(value).ok()? {
        pb::Purpose::ShortVideo => Some(Purpose::ShortVideo),
        pb::Purpose::Radio => Some(Purpose::Radio),
        pb::Purpose::Anchor => Some(Purpose::Anchor),
        pb::Purpose::Unspecified => None,
    }
}

/// The caller's `grpc-timeout`, if any (the gRPC wire format: digits and a unit letter).
fn grpc_timeout<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

pub struct VerificationService {
    app: Arc<App>,
}

impl VerificationService {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::VerifyResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::verification_service_server::VerificationService for VerificationService {
    #[tracing::instrument(skip_all)]
    async fn get_sealing_key(
        &self,
        request: Request<pb::GetSealingKeyRequest>,
    ) -> Result<Response<pb::GetSealingKeyResponse>, Status> {
        authorize(&request, Rpc::GetSealingKey)?;
        let keyring = self.app.sealing.load();
        let current = keyring.current();
        Ok(Response::new(pb::GetSealingKeyResponse {
            key_id: current.id.clone(),
            public_key: current.key.public_key().to_vec(),
        }))
    }

    #[tracing::instrument(skip_all, fields(principal, verification_id))]
    async fn verify(&self, request: Request<pb::VerifyRequest>) -> Result<Response<pb::VerifyResponse>, Status> {
        let caller = authorize(&request, Rpc::Verify)?;
        tracing::Span::current().record("principal", caller.principal.as_str());
        // Leave a little of the caller's budget for the answer to travel back.
        let budget = grpc_timeout(&request)
            .map(|t| t.saturating_sub(Duration::from_millis(50)))
            .unwrap_or(self.app.verify_deadline)
            .min(self.app.verify_deadline)
            // Answered by us (with a reason) before the server-wide cap cuts the call off.
            .min(self.app.call_deadline.saturating_sub(Duration::from_millis(50)));
        let deadline = Instant::now() + budget;
        // The use case plans to finish a little earlier, so that what it knows (for example "still in
        // progress, watch this id") reaches the caller rather than a bare deadline.
        let plan_deadline = deadline - (budget / 10).min(Duration::from_millis(200));
        let message = request.into_inner();

        // A large payload (a face) is opened on the blocking pool, within this call's deadline.
        let keyring = self.app.sealing.load();
        let now_unix = self.app.clock.now_unix();
        let VerifyInput {
            request_id,
            account_id,
            purpose,
            mut consent,
            document_review,
            fields,
        } = offload::run(sealed_len(message.payload.as_ref()), Some(deadline), move || {
            verify_input(message, &keyring, now_unix)
        })
        .await?;

        // Absent biometric consent reads as an empty record; the use case decides whether it is needed.
        let biometric = consent.biometric.take().unwrap_or_default();
        let command = VerifyCommand {
            principal: caller.principal,
            account_id,
            request_id,
            purpose,
            consent_policy_version: consent.policy_version,
            consent_granted_at_unix: consent.granted_at_unix,
            biometric_policy_version: biometric.policy_version,
            biometric_granted_at_unix: biometric.granted_at_unix,
            document_review,
            fields,
            deadline: plan_deadline,
        };
        // The use case runs in its own task: a client that disconnects does not abandon a case half-way
        // (a provider may already have been paid); the answer is kept for its retry. The caller's
        // deadline bounds the whole call, store steps included: past it, the caller is answered and
        // the task finishes the case for the retry (each of its store steps is itself bounded).
        let verifier = self.app.verifier.clone();
        // The task stays inside this call's span (and trace), though it may outlive the call.
        let task = tokio::spawn(tracing::Instrument::in_current_span(async move {
            verifier.verify(command).await
        }));
        let answer = match tokio::time::timeout_at(deadline, task).await {
            Err(_) => return Err(errors::deadline_exceeded()),
            Ok(joined) => joined
                .map_err(|_| errors::verify_error(VerifyError::Internal("verification task")))?
                .map_err(errors::verify_error)?,
        };
        self.app.instruments.decision(answer.status.as_str(), purpose.as_str());
        Ok(Response::new(answer_to_pb(&answer)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_verification(
        &self,
        request: Request<pb::GetVerificationRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let caller = authorize(&request, Rpc::GetVerification)?;
        let id = verification_id(&request.into_inner().verification_id, no_such_verification)?;
        let answer = self
            .app
            .verifier
            .get(&caller.principal, &id)
            .await
            .map_err(errors::verify_error)?;
        Ok(Response::new(answer_to_pb(&answer)))
    }

    type WatchVerificationStream = WatchStream;

    #[tracing::instrument(skip_all)]
    async fn watch_verification(
        &self,
        request: Request<pb::GetVerificationRequest>,
    ) -> Result<Response<Self::WatchVerificationStream>, Status> {
        let caller = authorize(&request, Rpc::WatchVerification)?;
        let id = verification_id(&request.into_inner().verification_id, no_such_verification)?;
        let answers = self
            .app
            .verifier
            .watch(&caller.principal, &id)
            .await
            .map_err(errors::verify_error)?;
        Ok(Response::new(answers.map(|a| Ok(answer_to_pb(&a))).boxed()))
    }

    async fn submit_supplement(
        &self,
        request: Request<pb::SubmitSupplementRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let caller = authorize(&request, Rpc::SubmitSupplement)?;
        let message = request.into_inner();
        let keyring = self.app.sealing.load();
        let now_unix = self.app.clock.now_unix();
        // Supplement photos are opened on the blocking pool; the server's call deadline bounds it.
        let (verification_id, request_id, fields) =
            offload::run(sealed_len(message.payload.as_ref()), None, move || {
                supplement_input(message, &keyring, now_unix)
            })
            .await?;
        let record = self
            .app
            .supplements
            .supplement(&caller.principal, &verification_id, &request_id, fields)
            .await
            .map_err(errors::supplement_error)?;
        Ok(Response::new(pb::VerifyResponse {
            verification_id: record.id.clone(),
            status: status_to_pb(record.status) as i32,
            verified: record.status == CaseStatus::Verified,
        }))
    }

    async fn erase_subject(
        &self,
        request: Request<pb::EraseSubjectRequest>,
    ) -> Result<Response<pb::EraseSubjectResponse>, Status> {
        let caller = authorize(&request, Rpc::EraseSubject)?;
        let account_id = AccountId::parse(&request.into_inner().account_id).map_err(|r| errors::refusal(&r))?;
        // An onboarding client erases what it created; an operator erases any case of the account.
        let scope = if caller.role == Role::Admin {
            EraseScope::Any
        } else {
            EraseScope::Own
        };
        let cases_erased = self
            .app
            .erasure
            .erase_subject(&caller.principal, scope, &account_id)
            .await
            .map_err(errors::store_error)?;
        self.app.instruments.erased(u64::from(cases_erased));
        Ok(Response::new(pb::EraseSubjectResponse { cases_erased }))
    }

    async fn withdraw_consent(
        &self,
        request: Request<pb::WithdrawConsentRequest>,
    ) -> Result<Response<pb::WithdrawConsentResponse>, Status> {
        let caller = authorize(&request, Rpc::WithdrawConsent)?;
        let request = request.into_inner();
        let account_id = AccountId::parse(&request.account_id).map_err(|r| errors::refusal(&r))?;
        let scope = match pb::ConsentScope::try_from(request.scope) {
            Ok(pb::ConsentScope::All) => WithdrawalScope::All,
            Ok(pb::ConsentScope::BiometricOnly) => WithdrawalScope::BiometricOnly,
            _ => {
                return Err(errors::invalid(
                    ErrorReason::ConsentScopeInvalid,
                    "scope must be CONSENT_SCOPE_ALL or CONSENT_SCOPE_BIOMETRIC_ONLY",
                ));
            }
        };
        let cases_changed = self
            .app
            .consent
            .withdraw(&caller.principal, &account_id, scope)
            .await
            .map_err(errors::store_error)?;
        if scope == WithdrawalScope::All {
            self.app.instruments.erased(u64::from(cases_changed));
        }
        Ok(Response::new(pb::WithdrawConsentResponse { cases_changed }))
    }
}

/// The review API for reviewer consoles.
pub struct ReviewService {
    app: Arc<App>,
}

impl ReviewService {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl pb::review_service_server::ReviewService for ReviewService {
    #[tracing::instrument(skip_all)]
    async fn register_reviewer_key(
        &self,
        request: Request<pb::RegisterReviewerKeyRequest>,
    ) -> Result<Response<pb::RegisterReviewerKeyResponse>, Status> {
        let caller = authorize(&request, Rpc::RegisterReviewerKey)?;
        let key = request.into_inner().public_key;
        self.app
            .review
            .register_key(&caller.principal, &key)
            .await
            .map_err(errors::review_error)?;
        Ok(Response::new(pb::RegisterReviewerKeyResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn claim_next(
        &self,
        request: Request<pb::ClaimNextRequest>,
    ) -> Result<Response<pb::ClaimNextResponse>, Status> {
        let caller = authorize(&request, Rpc::ClaimNext)?;
        let claimed = self
            .app
            .review
            .claim_next(&caller.principal)
            .await
            .map_err(errors::review_error)?;
        Ok(Response::new(match claimed {
            None => pb::ClaimNextResponse::default(),
            Some(case) => pb::ClaimNextResponse {
                case_id: case.case_id,
                purpose: purpose_to_pb(case.purpose) as i32,
                lease_expires_unix: case.lease_expires_unix,
                enc: case.sealed.enc,
                ciphertext: case.sealed.ciphertext,
                submitted_at_unix: case.submitted_at_unix,
                provider: case.provider.unwrap_or_default(),
                review_reason: case.review_reason.map(|r| r.code().to_owned()).unwrap_or_default(),
                supplement_complete: case.supplement_complete,
                approved_by: case.approved_by,
                approvals_required: u32::from(case.approvals_required),
            },
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn submit_decision(
        &self,
        request: Request<pb::SubmitDecisionRequest>,
    ) -> Result<Response<pb::SubmitDecisionResponse>, Status> {
        let caller = authorize(&request, Rpc::SubmitDecision)?;
        let message = request.into_inner();
        let verdict = match pb::Decision::try_from(message.decision) {
            Ok(pb::Decision::Approve) => ReviewVerdict::Approve,
            Ok(pb::Decision::Reject) => ReviewVerdict::Reject,
            _ => return Err(errors::review_error(ReviewUseError::BadDecision)),
        };
        let reason_code = ReasonCode::parse(&message.reason_code).map_err(errors::review_error)?;
        let case_id = verification_id(&message.case_id, no_such_pending_case)?;
        let status = self
            .app
            .review
            .decide(&caller.principal, &case_id, verdict, &reason_code)
            .await
            .map_err(errors::review_error)?;
        Ok(Response::new(pb::SubmitDecisionResponse {
            status: status_to_pb(status) as i32,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn release_case(
        &self,
        request: Request<pb::ReleaseCaseRequest>,
    ) -> Result<Response<pb::ReleaseCaseResponse>, Status> {
        let caller = authorize(&request, Rpc::ReleaseCase)?;
        let case_id = verification_id(&request.into_inner().case_id, no_such_pending_case)?;
        self.app
            .review
            .release(&caller.principal, &case_id)
            .await
            .map_err(errors::review_error)?;
        Ok(Response::new(pb::ReleaseCaseResponse {}))
    }

    async fn get_queue_stats(
        &self,
        request: Request<pb::GetQueueStatsRequest>,
    ) -> Result<Response<pb::GetQueueStatsResponse>, Status> {
        authorize(&request, Rpc::GetQueueStats)?;
        let stats = self.app.review.stats().await.map_err(errors::review_error)?;
        Ok(Response::new(pb::GetQueueStatsResponse {
            pending: stats.pending,
            claimed: stats.claimed,
            oldest_pending_age_seconds: stats.oldest_pending_age_seconds,
        }))
    }
}

/// The audit trail for operators.
pub struct AuditService {
    app: Arc<App>,
}

impl AuditService {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditService {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        authorize(&request, Rpc::ListAuditEvents)?;
        let m = request.into_inner();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let page_size = if m.page_size == 0 { 100 } else { m.page_size as usize };
        let page = self
            .app
            .audit
            .page(
                non_empty(&m.case_id).as_deref(),
                non_empty(&m.principal).as_deref(),
                non_empty(&m.page_token),
                page_size,
            )
            .await
            .map_err(|e| match e {
                // Only the caller's token can name no position in the trail.
                StoreError::NotFound if !m.page_token.is_empty() => errors::invalid(
                    ErrorReason::PageTokenInvalid,
                    "page_token was not handed out by ListAuditEvents",
                ),
                other => errors::store_error(other),
            })?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: page
                .events
                .into_iter()
                .map(|(id, e)| pb::AuditEvent {
                    id,
                    at_unix: e.at_unix,
                    actor: e.actor,
                    action: e.action.as_str().to_owned(),
                    case_id: e.case_id.unwrap_or_default(),
                    detail: e.detail,
                })
                .collect(),
            next_page_token: page.next.unwrap_or_default(),
        }))
    }
}
