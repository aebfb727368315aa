//! The verification use case: local checks → idempotency → providers → decision → store.
//!
//! Knows no gRPC, protobuf or Redis: the transport hands it opened, decoded fields and maps its answer
//! and errors to statuses. Personal data lives only in this call's memory (wiped on drop), except for a
//! case that goes to manual review, whose data is sealed under a fresh data key before it is stored.
//! Nothing here logs or returns personal data, a similarity score, or provider details.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::crypto::envelope::KekRing;
use crate::crypto::random;
use crate::decision::{self, Thresholds, Verdict};
use crate::domain::{AccountId, Applicant, Consent, IdentityFields, Purpose, Refusal, RequestId};
use crate::material;
use crate::providers::ProviderRequest;
use crate::providers::router::{Routed, Router};
use crate::store::{Begin, CaseRecord, CaseStatus, Finish, SealedPii, Store, StoreError};

/// Reason code of a case ended because the provider could not use the face photo.
pub const FACE_IMAGE_UNUSABLE: &str = "FACE_IMAGE_UNUSABLE";
/// The `field` name under which a case's identity material is sealed at rest.
pub const PII_FIELD_IDENTITY: &str = "identity";

/// One verification as the transport hands it over.
pub struct VerifyCommand {
    /// Certificate CN of the calling onboarding client.
    pub principal: String,
    pub account_id: AccountId,
    pub request_id: RequestId,
    pub purpose: Purpose,
    pub consent_policy_version: String,
    pub consent_granted_at_unix: i64,
    pub fields: IdentityFields,
    /// When the caller stops waiting.
    pub deadline: Instant,
}

/// What a caller learns: an id, a status, and (implied by the status) the verified flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub verification_id: String,
    pub status: CaseStatus,
}

impl Answer {
    pub fn verified(&self) -> bool {
        self.status == CaseStatus::Verified
    }
    fn of(record: &CaseRecord) -> Self {
        Self {
            verification_id: record.id.clone(),
            status: record.status,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A local check refused the input (never echoes it).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The provider could not use the face photo; the applicant should take a new one.
    #[error("the face photo could not be used; take a new one and retry with a new request_id")]
    PhotoUnusable { verification_id: String },
    /// The same request_id was used before for a different purpose.
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    /// The same request is still being processed elsewhere and did not finish in time.
    #[error("the same request is still being processed; retry later")]
    InProgress,
    /// Unknown case, or a case of another client (the same answer for both).
    #[error("verification not found")]
    NotFound,
    #[error("storage is unavailable")]
    Store(#[source] StoreError),
    #[error("internal error")]
    Internal(&'static str),
}

impl From<StoreError> for VerifyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => VerifyError::NotFound,
            other => VerifyError::Store(other),
        }
    }
}

/// Settings of the use case.
#[derive(Debug, Clone)]
pub struct VerifySettings {
    pub thresholds: Thresholds,
    /// How long a pending case's personal data may be kept.
    pub pending_review_ttl: Duration,
    /// How long one gateway holds a case it is processing before another may take over.
    pub processing_lease: Duration,
}

/// The verification service, independent of any transport.
pub struct Verifier {
    store: Arc<dyn Store>,
    router: Router,
    keks: Arc<KekRing>,
    clock: Arc<dyn Clock>,
    settings: VerifySettings,
}

impl Verifier {
    pub fn new(
        store: Arc<dyn Store>,
        router: Router,
        keks: Arc<KekRing>,
        clock: Arc<dyn Clock>,
        settings: VerifySettings,
    ) -> Self {
        Self {
            store,
            router,
            keks,
            clock,
            settings,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs one verification.
    pub async fn verify(&self, command: VerifyCommand) -> Result<Answer, VerifyError> {
        let now = self.clock.now_unix();
        let VerifyCommand {
            principal,
            account_id,
            request_id,
            purpose,
            fields,
            deadline,
            ..
        } = command;
        // Checks that cost nothing come first; no provider is paid for bad input.
        Consent::parse(
            &command.consent_policy_version,
            command.consent_granted_at_unix,
            now,
        )?;
        let applicant = Applicant::check(purpose, fields, self.clock.today_cst())?;

        let id = random::id("vf_").map_err(|_| VerifyError::Internal("randomness"))?;
        let lease = self.settings.processing_lease.as_secs() as i64;
        let fresh = CaseRecord {
            id,
            account_id: account_id.as_str().to_owned(),
            request_id: request_id.as_str().to_owned(),
            principal,
            purpose,
            status: CaseStatus::Processing,
            refusal: None,
            provider: None,
            created_at_unix: now,
            updated_at_unix: now,
            lease_until_unix: now + lease,
            pii_expires_at_unix: None,
        };
        let case = match self.store.begin(fresh.clone(), now).await? {
            Begin::Started(case) => case,
            Begin::Existing(case) => return self.replay(case, &fresh, deadline).await,
        };
        tracing::debug!(verification_id = %case.id, purpose = purpose.as_str(), "case started");

        let request = ProviderRequest {
            name: applicant.name().as_str(),
            id_number: applicant.id_number().as_str(),
            face_image: if purpose.requires_face() {
                applicant.face_image().map(|i| i.as_bytes())
            } else {
                None
            },
        };
        let (verdict, provider) = match self.router.check(&request, deadline).await {
            Routed::Answered { provider, outcome } => (
                decision::judge(self.settings.thresholds, purpose, outcome),
                Some(provider),
            ),
            Routed::AllFailed { attempts } => {
                tracing::warn!(verification_id = %case.id, attempts = attempts.len(), "no provider answered; manual review");
                (Verdict::Review, None)
            }
        };

        let finish = match verdict {
            Verdict::Verified => Finish {
                status: CaseStatus::Verified,
                provider,
                refusal: None,
                pii: None,
            },
            Verdict::NotVerified => Finish {
                status: CaseStatus::NotVerified,
                provider,
                refusal: None,
                pii: None,
            },
            Verdict::PhotoUnusable => Finish {
                status: CaseStatus::NotVerified,
                provider,
                refusal: Some(FACE_IMAGE_UNUSABLE.to_owned()),
                pii: None,
            },
            Verdict::Review => {
                let plaintext = material::encode_applicant(&applicant);
                let (wrapped_key, body) = self
                    .keks
                    .seal(&case.id, PII_FIELD_IDENTITY, &plaintext)
                    .map_err(|_| VerifyError::Internal("sealing at rest"))?;
                let expires_at = now + self.settings.pending_review_ttl.as_secs() as i64;
                Finish {
                    status: CaseStatus::PendingReview,
                    provider,
                    refusal: None,
                    pii: Some((SealedPii { wrapped_key, body }, expires_at)),
                }
            }
        };
        drop(applicant);
        let record = self
            .store
            .finish(&case.id, finish, self.clock.now_unix())
            .await?;
        tracing::info!(verification_id = %record.id, status = record.status.as_str(), "verification decided");
        answer_or_refusal(record)
    }

    /// A request seen before: the same answer, never a second provider call.
    async fn replay(
        &self,
        case: CaseRecord,
        fresh: &CaseRecord,
        deadline: Instant,
    ) -> Result<Answer, VerifyError> {
        if case.purpose != fresh.purpose || case.principal != fresh.principal {
            return Err(VerifyError::RequestIdReused);
        }
        tracing::debug!(verification_id = %case.id, "idempotent replay");
        if case.status != CaseStatus::Processing {
            return answer_or_refusal(case);
        }
        // The first attempt is still running: wait for its answer within our deadline.
        let mut changes = self
            .store
            .watch(&case.id)
            .await?
            .ok_or(VerifyError::NotFound)?;
        let wait = async {
            while let Some(record) = changes.next().await {
                if record.status != CaseStatus::Processing {
                    return Some(record);
                }
            }
            None
        };
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(Some(record)) => answer_or_refusal(record),
            _ => Err(VerifyError::InProgress),
        }
    }

    /// The current state of a case created by `principal`.
    pub async fn get(&self, principal: &str, verification_id: &str) -> Result<Answer, VerifyError> {
        let record = self.owned(principal, verification_id).await?;
        Ok(Answer::of(&record))
    }

    /// The current state, then every public change, ending after a final status.
    pub async fn watch(
        &self,
        principal: &str,
        verification_id: &str,
    ) -> Result<BoxStream<'static, Answer>, VerifyError> {
        self.owned(principal, verification_id).await?;
        let stream = self
            .store
            .watch(verification_id)
            .await?
            .ok_or(VerifyError::NotFound)?;
        // `Processing` is internal: a watcher sees the case from its first public status on.
        let mut last = None;
        Ok(stream
            .filter_map(move |record| {
                let answer = (record.status != CaseStatus::Processing).then(|| Answer::of(&record));
                let changed = answer.is_some() && answer != last;
                if changed {
                    last.clone_from(&answer);
                }
                std::future::ready(if changed { answer } else { None })
            })
            .boxed())
    }

    async fn owned(
        &self,
        principal: &str,
        verification_id: &str,
    ) -> Result<CaseRecord, VerifyError> {
        match self.store.get(verification_id).await? {
            Some(record) if record.principal == principal => Ok(record),
            _ => Err(VerifyError::NotFound),
        }
    }
}

fn answer_or_refusal(record: CaseRecord) -> Result<Answer, VerifyError> {
    if record.refusal.as_deref() == Some(FACE_IMAGE_UNUSABLE) {
        return Err(VerifyError::PhotoUnusable {
            verification_id: record.id,
        });
    }
    Ok(Answer::of(&record))
}
