//! The verification use case: local checks → idempotency → providers → decision → store.
//!
//! Knows no gRPC, protobuf or Redis: the transport hands it opened, decoded fields and maps its answer
//! and errors to statuses. Personal data lives only in this call's memory (wiped on drop), except for a
//! case that goes to manual review, whose data is sealed under a fresh data key before it is stored.
//! Nothing here logs or returns personal data, a similarity score, or provider details.
//!
//! The caller's deadline decides whether a case starts, never how it ends: a case begun is decided by
//! the providers within their own timeouts, and must never go to review because its caller was in a
//! hurry.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::audit::AuditTrail;
use crate::clock::Clock;
use crate::crypto::blind_index::{BlindIndexer, IndexUse};
use crate::crypto::envelope::KekRing;
use crate::crypto::random;
use crate::decision::{self, ACCOUNT_WINDOW_SECONDS, ID_WINDOW_SECONDS, Limits, ReviewReason, Thresholds, Verdict};
use crate::domain::{
    AccountId, Applicant, CaseRefusal, Consent, FaceUse, GATEWAY_ACTOR, IdentityFields, Purpose, Refusal, RequestId,
    VerificationId,
};
use crate::live::Live;
use crate::material;
use crate::providers::ProviderRequest;
use crate::providers::router::{Routed, Router};
use crate::store::{AuditAction, Begin, CaseRecord, CaseStatus, Finish, SealedPii, Store, StoreError};

#[cfg(test)]
pub(crate) mod test_support;

/// One verification as the transport hands it over.
pub struct VerifyCommand {
    /// Certificate CN of the calling onboarding client.
    pub principal: String,
    pub account_id: AccountId,
    pub request_id: RequestId,
    pub purpose: Purpose,
    pub consent_policy_version: String,
    pub consent_granted_at_unix: i64,
    /// The separate consent to face processing (empty version: none given).
    pub biometric_policy_version: String,
    pub biometric_granted_at_unix: i64,
    /// The applicant chose document review instead of face recognition (purposes that compare a face).
    pub document_review: bool,
    pub fields: IdentityFields,
    /// When the caller stops waiting. A replay waits for a running attempt until then; a new case is
    /// started only if it leaves the providers their minimum budget; a started case's provider calls
    /// are not cut short by it.
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

    /// The answer as of `now_unix`: a pending case past its retention limit is expired even before the
    /// retention sweep has recorded it (its data is already gone from the store).
    fn at(record: &CaseRecord, now_unix: i64) -> Self {
        let due = record.pii_expires_at_unix.is_some_and(|at| at <= now_unix);
        let status = if record.status == CaseStatus::PendingReview && due {
            CaseStatus::Expired
        } else {
            record.status
        };
        Self {
            verification_id: record.id.clone(),
            status,
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
    /// Too many verifications for this account or this ID number; retry after the hint.
    #[error("too many verifications; retry later")]
    RateLimited { retry_after_seconds: u64 },
    /// This ID number already verified the maximum number of anchor accounts.
    #[error("this ID number already verified the maximum number of anchor accounts")]
    IdAccountLimit { verification_id: String },
    /// The same request_id was used before for a different request (purpose, caller or content).
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    /// The same request is still being processed elsewhere and did not finish in time.
    #[error("the same request is still being processed; retry later")]
    InProgress { verification_id: String },
    /// The caller's deadline leaves the providers less than the minimum budget: nothing was started
    /// (no case, no provider call, nothing counted); a retry with a longer deadline may start it.
    #[error("the deadline leaves too little time to ask a provider; nothing was started")]
    DeadlineTooShort,
    /// A stored case record failed its integrity check; never answered as verified.
    #[error("a stored case record failed its integrity check")]
    Integrity { case_id: String },
    /// Unknown case, or a case of another client (the same answer for both).
    #[error("verification not found")]
    NotFound,
    #[error("storage is unavailable")]
    Store(#[source] StoreError),
    /// The case must be stored for review, but no KEK may wrap now (its epoch is over).
    #[error("no key-encryption key may wrap now")]
    NoWrappingKek,
    #[error("internal error")]
    Internal(&'static str),
}

impl VerifyError {
    /// Sealing at rest failed: no KEK in its epoch is its own answer; anything else is internal.
    pub fn sealing(error: crate::crypto::envelope::EnvelopeError) -> Self {
        match error {
            crate::crypto::envelope::EnvelopeError::NoWrappingKek => VerifyError::NoWrappingKek,
            _ => VerifyError::Internal("sealing at rest"),
        }
    }
}

impl From<StoreError> for VerifyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => VerifyError::NotFound,
            StoreError::Integrity { case_id } => VerifyError::Integrity { case_id },
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
    pub limits: Limits,
}

/// Review material at least this large (images) is sealed at rest on tokio's blocking pool, so that
/// XChaCha20-Poly1305 over megabytes does not stall the runtime's workers; text-only material is
/// sealed inline. The caller's deadline is enforced around the whole use case by the transport.
const SEAL_OFF_RUNTIME_AT_BYTES: usize = 32 * 1024;

/// Seals a case's review material under the current KEK (see [`SEAL_OFF_RUNTIME_AT_BYTES`]):
/// identity material and face apart ([`material::seal_applicant`]). The applicant moves into the
/// sealing thread and is wiped there when sealing ends.
async fn seal_at_rest(keks: Arc<KekRing>, case_id: String, applicant: Applicant) -> Result<SealedPii, VerifyError> {
    let images = [
        applicant.face_image(),
        applicant.id_card_front(),
        applicant.id_card_back(),
        applicant.handheld_id_photo(),
    ];
    let image_bytes: usize = images.into_iter().flatten().map(|i| i.as_bytes().len()).sum();
    let seal = move || material::seal_applicant(&keks, &case_id, &applicant).map_err(VerifyError::sealing);
    if image_bytes < SEAL_OFF_RUNTIME_AT_BYTES {
        return seal();
    }
    tokio::task::spawn_blocking(seal)
        .await
        .map_err(|_| VerifyError::Internal("sealing at rest"))?
}

/// The parts of a request's keyed fingerprint: what the caller sealed and the gateway reads (a face
/// the purpose does not compare was dropped unread, so it is no part of it), and who asked for what.
/// The face path is bound through the purpose part, spelled as before for face recognition so that
/// stored fingerprints keep matching their retries.
fn fingerprint_parts<'a>(
    principal: &'a str,
    purpose: Purpose,
    face: &FaceUse,
    applicant: &'a Applicant,
) -> [&'a [u8]; 10] {
    let image = |i: Option<&'a crate::domain::Image>| i.map_or(&[][..], |i| i.as_bytes());
    let asked: &'static str = match face {
        FaceUse::DocumentReview => "anchor.document_review",
        FaceUse::NotCompared | FaceUse::Recognition(_) => purpose.as_str(),
    };
    [
        b"idgate.v1.request",
        asked.as_bytes(),
        principal.as_bytes(),
        applicant.name().as_str().as_bytes(),
        applicant.id_number().as_str().as_bytes(),
        applicant.phone().map_or(&[][..], |p| p.as_str().as_bytes()),
        image(applicant.face_image()),
        image(applicant.id_card_front()),
        image(applicant.id_card_back()),
        image(applicant.handheld_id_photo()),
    ]
}

/// The verification service, independent of any transport.
pub struct Verifier {
    store: Arc<dyn Store>,
    router: Router,
    /// Replaced by a key reload; each step loads the keys current when it starts.
    keks: Live<KekRing>,
    /// Keyed hashes of ID numbers for the limits that count by person.
    indexer: Live<BlindIndexer>,
    /// Where a record that fails its integrity check is reported.
    audit: AuditTrail,
    clock: Arc<dyn Clock>,
    settings: VerifySettings,
}

impl Verifier {
    pub fn new(
        store: Arc<dyn Store>,
        router: Router,
        keks: impl Into<Live<KekRing>>,
        indexer: impl Into<Live<BlindIndexer>>,
        audit: AuditTrail,
        clock: Arc<dyn Clock>,
        settings: VerifySettings,
    ) -> Self {
        Self {
            store,
            router,
            keks: keks.into(),
            indexer: indexer.into(),
            audit,
            clock,
            settings,
        }
    }

    /// Each provider's circuit-breaker state (for readiness and metrics).
    pub fn breaker_states(&self) -> Vec<(String, crate::providers::breaker::BreakerState)> {
        self.router.breaker_states()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs one verification.
    pub async fn verify(&self, command: VerifyCommand) -> Result<Answer, VerifyError> {
        let result = self.verify_inner(command).await;
        self.alarm_on_integrity(result).await
    }

    async fn verify_inner(&self, command: VerifyCommand) -> Result<Answer, VerifyError> {
        let started = Instant::now();
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
        let (applicant, face) = {
            let _checks = tracing::info_span!("local_checks").entered();
            Consent::parse(&command.consent_policy_version, command.consent_granted_at_unix, now)?;
            // No face reaches a provider or the store without its own consent (or the applicant chose
            // document review, and the face is dropped unread).
            let biometric = (
                command.biometric_policy_version.as_str(),
                command.biometric_granted_at_unix,
            );
            let face = FaceUse::decide(purpose, command.document_review, Some(biometric), now)?;
            (
                Applicant::check_on(purpose, &face, fields, self.clock.today_cst())?,
                face,
            )
        };
        let parts = fingerprint_parts(&principal, purpose, &face, &applicant);
        let indexer = self.indexer.load();
        let same_content = |stored: &str| indexer.tag_matches(IndexUse::RequestFingerprint, stored, &parts);

        let id = random::id("vf_").map_err(|_| VerifyError::Internal("randomness"))?;
        let lease = self.settings.processing_lease.as_secs() as i64;
        let mut fresh = CaseRecord::processing(
            id,
            account_id.clone(),
            request_id.clone(),
            principal.as_str(),
            purpose,
            indexer.tag(IndexUse::RequestFingerprint, &parts),
            now,
            now + lease,
        );
        // A request seen before is answered from its record before any limit is counted: replays
        // are free. Only a request that may start a new case counts against the limits.
        let takeover = match self
            .store
            .find(account_id.as_str(), request_id.as_str())
            .instrument(tracing::info_span!("store.find"))
            .await?
        {
            Some(existing) => {
                if !self.is_same_request(&existing, &fresh, same_content(&existing.fingerprint)) {
                    return Err(VerifyError::RequestIdReused);
                }
                // A lease from a clock that has gone back since is void, like one that ran out.
                let abandoned = existing.status == CaseStatus::Processing
                    && !crate::store::lease_holds(existing.lease_until_unix, now, fresh.lease_until_unix);
                if !abandoned {
                    return self.replay(existing, deadline).await;
                }
                // The same request, abandoned mid-call: take it over (under its own fingerprint).
                fresh.fingerprint = existing.fingerprint;
                true
            }
            None => false,
        };
        // A caller that cannot wait for any provider starts nothing: a case begun now could only go
        // to review with no provider asked, so nothing is stored, counted or paid for.
        if !self.router.leaves_time_for_a_call(deadline) {
            tracing::info!("deadline too short to ask a provider; nothing started");
            return Err(VerifyError::DeadlineTooShort);
        }
        if !takeover {
            self.check_rates(account_id.as_str(), applicant.id_number().as_str(), now)
                .await?
        }
        let case = match self
            .store
            .begin(fresh.clone(), now)
            .instrument(tracing::info_span!("store.begin"))
            .await?
        {
            Begin::Started(case) => case,
            Begin::Existing(case) => {
                if !self.is_same_request(&case, &fresh, same_content(&case.fingerprint)) {
                    return Err(VerifyError::RequestIdReused);
                }
                return self.replay(case, deadline).await;
            }
        };
        tracing::Span::current().record("verification_id", case.id.as_str());
        tracing::debug!(verification_id = %case.id, purpose = purpose.as_str(), "case started");
        if case.erase_requested {
            // The account was erased (or its consent withdrawn) as this case began: it ends `ERASED`
            // without its data going to any provider.
            drop(applicant);
            tracing::info!(verification_id = %case.id, "erasure requested as the case began; no provider asked");
            let record = self
                .store
                .finish(
                    &case.id,
                    Finish {
                        status: CaseStatus::Erased,
                        ..Finish::default()
                    },
                    self.clock.now_unix(),
                )
                .instrument(tracing::info_span!("store.finish", status = "erased"))
                .await?;
            return answer_or_refusal(record);
        }

        let request = ProviderRequest {
            name: applicant.name().as_str(),
            id_number: applicant.id_number().as_str(),
            face_image: if face.sends_face() {
                applicant.face_image().map(|i| i.as_bytes())
            } else {
                None
            },
        };
        let document_review = face == FaceUse::DocumentReview;
        // Once begun, the case is decided as if its caller waited: each provider gets its own timeout,
        // whatever is left of the caller's deadline, so no caller can steer a case past the providers
        // into review (nor charge their breakers) by a short deadline. A caller that stops waiting is
        // answered DEADLINE_EXCEEDED by the transport while this task finishes, and its retry gets the
        // answer. Providers are asked for at most half the processing lease, so that no other gateway
        // takes the case over while this one still works on it.
        let work_deadline = deadline.max(started + self.settings.processing_lease / 2);
        let (verdict, provider, review_reason) = match self.router.check(&request, work_deadline).await {
            // The applicant's choice is what the reviewer must see, whatever the providers said.
            Routed::Answered { provider, outcome } if document_review => (
                decision::judge_document_review(outcome),
                Some(provider),
                Some(ReviewReason::DocumentReviewRequested),
            ),
            Routed::Answered { provider, outcome } => (
                decision::judge(self.settings.thresholds, purpose, outcome),
                Some(provider),
                decision::review_reason(self.settings.thresholds, purpose, outcome),
            ),
            Routed::AllFailed { attempts } => {
                tracing::warn!(verification_id = %case.id, attempts = attempts.len(), "no provider answered; manual review");
                let reason = if document_review {
                    ReviewReason::DocumentReviewRequested
                } else {
                    ReviewReason::ProvidersUnavailable
                };
                (Verdict::Review, None, Some(reason))
            }
        };

        // One person, a limited number of anchor accounts: bound in the same step that verifies the
        // case, so that nobody can use up someone else's ID number with a wrong face, and a step that
        // fails leaves no binding.
        let anchor = (verdict == Verdict::Verified && purpose == Purpose::Anchor).then(|| {
            decision::anchor_claim(
                &self.indexer.load(),
                self.settings.limits,
                applicant.id_number().as_str(),
                now,
            )
        });
        let documents_complete = applicant.has_all_documents();
        // Review material is sealed (identity and face under separate data keys, so the face can go
        // alone); the plaintext is wiped with the applicant before the store step, in every case.
        let review_material = if verdict == Verdict::Review {
            Some(
                seal_at_rest(self.keks.load(), case.id.clone(), applicant)
                    .instrument(tracing::info_span!("seal_at_rest"))
                    .await?,
            )
        } else {
            drop(applicant);
            None
        };
        let finish = match verdict {
            Verdict::Verified => Finish {
                status: CaseStatus::Verified,
                provider,
                anchor,
                ..Finish::default()
            },
            Verdict::NotVerified => Finish {
                status: CaseStatus::NotVerified,
                provider,
                ..Finish::default()
            },
            Verdict::PhotoUnusable => Finish {
                status: CaseStatus::NotVerified,
                provider,
                refusal: Some(CaseRefusal::FaceImageUnusable),
                ..Finish::default()
            },
            Verdict::Review => Finish {
                status: CaseStatus::PendingReview,
                provider,
                pii: review_material.map(|sealed| (sealed, now + self.settings.pending_review_ttl.as_secs() as i64)),
                review_reason,
                documents_complete,
                ..Finish::default()
            },
        };
        let finish_span = tracing::info_span!("store.finish", status = finish.status.as_str());
        let record = self
            .store
            .finish(&case.id, finish, self.clock.now_unix())
            .instrument(finish_span)
            .await?;
        tracing::info!(verification_id = %record.id, status = record.status.as_str(), "verification decided");
        answer_or_refusal(record)
    }

    /// Whether `existing` holds the request `fresh` describes: the same purpose and caller, and the
    /// same sealed content (`content_matches`: the stored fingerprint checked under its own key).
    fn is_same_request(&self, existing: &CaseRecord, fresh: &CaseRecord, content_matches: bool) -> bool {
        existing.purpose == fresh.purpose && existing.principal == fresh.principal && content_matches
    }

    /// A request seen before: the same answer, never a second provider call.
    async fn replay(&self, case: CaseRecord, deadline: Instant) -> Result<Answer, VerifyError> {
        tracing::debug!(verification_id = %case.id, "idempotent replay");
        if case.status != CaseStatus::Processing {
            return answer_or_refusal(case);
        }
        // The first attempt is still running: wait for its answer within our deadline.
        let verification_id = case.id.clone();
        let mut changes = self.store.watch(&case.id).await?.ok_or(VerifyError::NotFound)?;
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
            _ => Err(VerifyError::InProgress { verification_id }),
        }
    }

    /// Logs and audits (ids only) a record that failed its integrity check.
    async fn alarm_on_integrity<T>(&self, result: Result<T, VerifyError>) -> Result<T, VerifyError> {
        if let Err(VerifyError::Integrity { case_id }) = &result {
            tracing::error!(verification_id = %case_id, "case record failed its integrity check; refusing to use it");
            let recorded = self
                .audit
                .record(
                    GATEWAY_ACTOR,
                    AuditAction::RecordIntegrityFailed,
                    Some(case_id),
                    String::new(),
                )
                .await;
            if recorded.is_err() {
                tracing::warn!(verification_id = %case_id, "could not audit the integrity failure");
            }
        }
        result
    }

    /// The current state of a case created by `principal`.
    pub async fn get(&self, principal: &str, verification_id: &VerificationId) -> Result<Answer, VerifyError> {
        let record = self
            .alarm_on_integrity(self.owned(principal, verification_id.as_str()).await)
            .await?;
        Ok(Answer::at(&record, self.clock.now_unix()))
    }

    /// The current state, then every public change, ending after a final status.
    pub async fn watch(
        &self,
        principal: &str,
        verification_id: &VerificationId,
    ) -> Result<BoxStream<'static, Answer>, VerifyError> {
        self.alarm_on_integrity(self.owned(principal, verification_id.as_str()).await)
            .await?;
        let stream = self
            .store
            .watch(verification_id.as_str())
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

    /// Counts this attempt against the per-account and per-ID windows.
    async fn check_rates(&self, account_id: &str, id_number: &str, now: i64) -> Result<(), VerifyError> {
        let limits = self.settings.limits;
        // The ID number is counted under the current blind-index key and, read only, under older
        // keys still within the window, so a key rotation never restarts its limit.
        let mut id_keys = self
            .indexer
            .load()
            .indexes_within(IndexUse::RateLimit, id_number, now, ID_WINDOW_SECONDS)
            .into_iter()
            .map(|index| format!("id:{index}"));
        let current_id_key = id_keys.next().unwrap_or_default();
        let older_id_keys: Vec<String> = id_keys.collect();
        let checks = [
            (
                format!("acct:{account_id}"),
                Vec::new(),
                ACCOUNT_WINDOW_SECONDS,
                limits.per_account_per_hour,
            ),
            (current_id_key, older_id_keys, ID_WINDOW_SECONDS, limits.per_id_per_day),
        ];
        for (key, older, window, limit) in checks {
            if limit == 0 {
                continue;
            }
            let mut count = self.store.count_in_window(&key, window, now).await?;
            for old in &older {
                count += self.store.peek_window(old, window, now).await?;
            }
            if count > limit {
                let retry_after_seconds = (window as i64 - now.rem_euclid(window as i64)).max(1) as u64;
                tracing::info!(window, "rate limit reached");
                return Err(VerifyError::RateLimited { retry_after_seconds });
            }
        }
        Ok(())
    }

    async fn owned(&self, principal: &str, verification_id: &str) -> Result<CaseRecord, VerifyError> {
        match self.store.get(verification_id).await? {
            Some(record) if record.principal == principal => Ok(record),
            _ => Err(VerifyError::NotFound),
        }
    }
}

fn answer_or_refusal(record: CaseRecord) -> Result<Answer, VerifyError> {
    match record.refusal {
        Some(CaseRefusal::FaceImageUnusable) => Err(VerifyError::PhotoUnusable {
            verification_id: record.id,
        }),
        Some(CaseRefusal::IdAccountLimit) => Err(VerifyError::IdAccountLimit {
            verification_id: record.id,
        }),
        _ => Ok(Answer::of(&record)),
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::clock::ManualClock;
    use crate::crypto::SecretKey32;
    use crate::decision::anchor_claim;
    use crate::domain::test_support;
    use crate::providers::router::Route;
    use crate::providers::{Outcome, Provider, ProviderError};
    use crate::store::AnchorClaim;
    use crate::store::memory::MemoryStore;
    use std::sync::atomic::Ordering;

    /// The fingerprint a verifier computes for `command` from `principal`.
    fn fingerprint_of(indexer: &BlindIndexer, principal: &str, command: VerifyCommand) -> String {
        let applicant = Applicant::check(command.purpose, command.fields, time::macros::date!(2026 - 11 - 30)).unwrap();
        indexer.tag(
            IndexUse::RequestFingerprint,
            &fingerprint_parts(principal, command.purpose, &FaceUse::NotCompared, &applicant),
        )
    }

    /// A verifier over a store holding "r-1" (short video) as `vf_stale`, processing under a lease
    /// until `NOW + 30` by a gateway that died; and its provider.
    async fn with_an_abandoned_case(clock: &ManualClock) -> (Verifier, Arc<Fake>) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let stale = CaseRecord::processing(
            "vf_stale",
            AccountId::parse("acct-1").unwrap(),
            RequestId::parse("r-1").unwrap(),
            "onboarding-dev",
            Purpose::ShortVideo,
            fingerprint_of(&indexer(), "onboarding-dev", command("r-1", Purpose::ShortVideo)),
            NOW,
            NOW + 30,
        );
        store.begin(stale, NOW).await.unwrap();
        let p = fake("p", Ok(Outcome::Match));
        let (v, _) = verifier_on(
            store,
            std::slice::from_ref(&p),
            clock,
            settings(Duration::from_secs(60)),
        );
        (v, p)
    }

    #[tokio::test]
    async fn a_retry_never_calls_the_provider_twice() {
        let clock = ManualClock::new(NOW);
        let p = fake("p1", Ok(Outcome::FaceCompared { similarity: 95.0 }));
        let (v, _) = verifier(std::slice::from_ref(&p), &clock);
        let first = v.verify(command("r-1", Purpose::Anchor)).await.unwrap();
        let again = v.verify(command("r-1", Purpose::Anchor)).await.unwrap();
        assert_eq!(first, again);
        assert!(first.verified());
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_duplicates_share_one_provider_call() {
        let clock = ManualClock::new(NOW);
        let (p, gate) = held(Outcome::Match);
        let (v, _) = verifier(std::slice::from_ref(&p), &clock);
        let v = Arc::new(v);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let v = v.clone();
                tokio::spawn(async move { v.verify(command("dup", Purpose::ShortVideo)).await })
            })
            .collect();
        // Let every duplicate reach the store before the provider answers.
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(100);
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap().unwrap());
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(answers[0].status, CaseStatus::Verified);
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failover_to_the_next_provider_then_review_when_all_fail() {
        let clock = ManualClock::new(NOW);
        let down = fake("down", Err(ProviderError::Unavailable("InternalError")));
        let up = fake("up", Ok(Outcome::Match));
        let (v, _) = verifier(&[down.clone(), up.clone()], &clock);
        let answer = v.verify(command("r-1", Purpose::ShortVideo)).await.unwrap();
        assert_eq!(answer.status, CaseStatus::Verified);
        let record = v.store().get(&answer.verification_id).await.unwrap().unwrap();
        assert_eq!(record.provider.as_deref(), Some("up"));
        assert_eq!(
            (down.calls.load(Ordering::SeqCst), up.calls.load(Ordering::SeqCst)),
            (1, 1)
        );

        let also_down = fake("also-down", Err(ProviderError::Timeout));
        let (v, keks) = verifier(&[down.clone(), also_down], &clock);
        let answer = v.verify(command("r-2", Purpose::Anchor)).await.unwrap();
        assert_eq!(answer.status, CaseStatus::PendingReview);
        assert!(!answer.verified());

        // The pending case's data is sealed at rest, bound to the case, and opens to what was checked.
        let id = &answer.verification_id;
        let sealed = v.store().sealed_pii(id).await.unwrap().expect("kept for review");
        let plain = keks
            .open(id, material::PII_FIELD_IDENTITY, &sealed.wrapped_key, &sealed.body)
            .unwrap();
        let fields = material::decode(&plain).unwrap();
        assert_eq!(fields.id_number, command("x", Purpose::Anchor).fields.id_number);
        assert!(!sealed.body.ciphertext.windows(9).any(|w| w == "王小明".as_bytes()));
        // The face is kept apart: not in the identity material, sealed under its own data key and
        // field (it does not open as identity material, nor the identity key as a face).
        assert!(fields.face_image.is_empty(), "no face in the identity material");
        let face = sealed.face.as_ref().expect("the face is kept for the reviewer");
        assert_ne!(face.wrapped_key, sealed.wrapped_key);
        let face_plain = keks
            .open(id, material::PII_FIELD_FACE, &face.wrapped_key, &face.body)
            .unwrap();
        assert_eq!(
            face_plain.as_slice(),
            command("x", Purpose::Anchor).fields.face_image.as_slice()
        );
        assert!(
            keks.open(id, material::PII_FIELD_IDENTITY, &face.wrapped_key, &face.body)
                .is_err()
        );
        assert!(
            keks.open(id, material::PII_FIELD_FACE, &sealed.wrapped_key, &face.body)
                .is_err()
        );
        // What a reviewer receives still holds everything.
        let (combined, has_face) = material::open_for_review(&keks, id, &sealed, true).unwrap();
        let combined = material::decode(&combined).unwrap();
        assert!(has_face);
        assert_eq!(combined.face_image, command("x", Purpose::Anchor).fields.face_image);
        assert_eq!(combined.id_number, fields.id_number);
        // A document-review case hands out no face: neither the one kept apart, nor one inside a
        // record written before the split (one envelope holding everything).
        let (wrapped_key, body) = keks
            .seal(id, material::PII_FIELD_IDENTITY, &material::encode_fields(&combined))
            .unwrap();
        let one_envelope = crate::store::SealedPii {
            wrapped_key,
            body,
            face: None,
        };
        for shape in [&sealed, &one_envelope] {
            let (documents_only, has_face) = material::open_for_review(&keks, id, shape, false).unwrap();
            let documents_only = material::decode(&documents_only).unwrap();
            assert!(!has_face && documents_only.face_image.is_empty());
            assert_eq!(documents_only.id_number, fields.id_number);
        }
        let (old_view, has_face) = material::open_for_review(&keks, id, &one_envelope, true).unwrap();
        assert!(has_face && !material::decode(&old_view).unwrap().face_image.is_empty());

        // Retention: after the limit the data is gone and the case expired.
        clock.advance(3_600);
        assert_eq!(v.store().sweep(clock.now_unix(), 0).await.unwrap(), 1);
        assert!(v.store().sealed_pii(id).await.unwrap().is_none());
        assert_eq!(
            v.get("onboarding-dev", &parsed(id)).await.unwrap().status,
            CaseStatus::Expired
        );
    }

    #[tokio::test]
    async fn decided_cases_keep_no_personal_data() {
        let clock = ManualClock::new(NOW);
        let (v, _) = verifier(&[fake("p", Ok(Outcome::Mismatch))], &clock);
        let answer = v.verify(command("r-1", Purpose::ShortVideo)).await.unwrap();
        assert_eq!(answer.status, CaseStatus::NotVerified);
        assert!(v.store().sealed_pii(&answer.verification_id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_unusable_photo_is_a_refusal_that_replays_without_a_second_call() {
        let clock = ManualClock::new(NOW);
        let p = fake("p", Ok(Outcome::PhotoUnusable));
        let (v, _) = verifier(std::slice::from_ref(&p), &clock);
        for _ in 0..2 {
            let err = v.verify(command("r-1", Purpose::Anchor)).await.unwrap_err();
            assert!(matches!(err, VerifyError::PhotoUnusable { .. }));
        }
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_case_is_visible_only_to_the_client_that_created_it() {
        let clock = ManualClock::new(NOW);
        let (v, _) = verifier(&[fake("p", Ok(Outcome::Match))], &clock);
        let answer = v.verify(command("r-1", Purpose::Radio)).await.unwrap();
        let id = parsed(&answer.verification_id);
        assert!(v.get("onboarding-dev", &id).await.is_ok());
        assert!(matches!(v.get("someone-else", &id).await, Err(VerifyError::NotFound)));
        assert!(matches!(v.watch("someone-else", &id).await, Err(VerifyError::NotFound)));
    }

    #[tokio::test]
    async fn bad_input_never_reaches_a_provider() {
        let clock = ManualClock::new(NOW);
        let p = fake("p", Ok(Outcome::Match));
        let (v, _) = verifier(std::slice::from_ref(&p), &clock);
        let mut minor = command("r-1", Purpose::Anchor);
        minor.fields.id_number = test_support::id_number("110105", "20150101", "123");
        let mut no_consent = command("r-2", Purpose::ShortVideo);
        no_consent.consent_policy_version.clear();
        for c in [minor, no_consent] {
            assert!(matches!(v.verify(c).await, Err(VerifyError::Refused(_))));
        }
        assert_eq!(p.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn no_face_reaches_a_provider_or_the_store_without_biometric_consent() {
        let clock = ManualClock::new(NOW);
        let p = fake("p", Ok(Outcome::FaceCompared { similarity: 95.0 }));
        let (v, _) = verifier(std::slice::from_ref(&p), &clock);
        let mut c = command("r-1", Purpose::Anchor);
        c.biometric_policy_version.clear();
        match v.verify(c).await {
            Err(VerifyError::Refused(r)) => assert_eq!(r.code(), "BIOMETRIC_CONSENT_MISSING"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(p.calls.load(Ordering::SeqCst), 0);
        assert!(
            v.store().find("acct-1", "r-1").await.unwrap().is_none(),
            "nothing stored"
        );
        // Other purposes compare no face and need no biometric consent.
        let mut radio = command("r-2", Purpose::Radio);
        radio.biometric_policy_version.clear();
        assert_eq!(v.verify(radio).await.unwrap().status, CaseStatus::Verified);
        assert_eq!(p.faces.load(Ordering::SeqCst), 0);
        // With it, the face is compared.
        assert_eq!(
            v.verify(command("r-3", Purpose::Anchor)).await.unwrap().status,
            CaseStatus::Verified
        );
        assert_eq!(p.faces.load(Ordering::SeqCst), 1);
    }

    /// An ANCHOR command of an applicant who chose document review and gave no biometric consent.
    fn document_review(request_id: &str) -> VerifyCommand {
        let mut c = command(request_id, Purpose::Anchor);
        c.document_review = true;
        c.biometric_policy_version.clear();
        c
    }

    #[tokio::test]
    async fn document_review_checks_name_and_id_without_the_face_then_asks_a_reviewer() {
        let clock = ManualClock::new(NOW);
        let p = fake("p", Ok(Outcome::Match));
        let (v, keks) = verifier(std::slice::from_ref(&p), &clock);
        let answer = v.verify(document_review("r-1")).await.unwrap();
        assert_eq!(answer.status, CaseStatus::PendingReview);
        assert_eq!((p.calls.load(Ordering::SeqCst), p.faces.load(Ordering::SeqCst)), (1, 0));
        let id = &answer.verification_id;
        let record = v.store().get(id).await.unwrap().unwrap();
        assert_eq!(record.review_reason, Some(ReviewReason::DocumentReviewRequested));
        // The face the client sealed anyway was dropped, not stored.
        let sealed = v.store().sealed_pii(id).await.unwrap().expect("kept for review");
        let plain = keks
            .open(id, material::PII_FIELD_IDENTITY, &sealed.wrapped_key, &sealed.body)
            .unwrap();
        let fields = material::decode(&plain).unwrap();
        assert!(fields.face_image.is_empty());
        assert!(!fields.id_number.is_empty());
        assert!(sealed.face.is_none(), "no face part on the document path");

        // The applicant's choice is bound to the request: the same request_id asking for face
        // recognition is another request.
        assert!(matches!(
            v.verify(command("r-1", Purpose::Anchor)).await,
            Err(VerifyError::RequestIdReused)
        ));
        // Providers down: still the reviewer, still labelled as the applicant's choice.
        let down = fake("down", Err(ProviderError::Timeout));
        let (v, _) = verifier(std::slice::from_ref(&down), &clock);
        let answer = v.verify(document_review("r-2")).await.unwrap();
        let record = v.store().get(&answer.verification_id).await.unwrap().unwrap();
        assert_eq!(
            (record.status, record.review_reason),
            (CaseStatus::PendingReview, Some(ReviewReason::DocumentReviewRequested))
        );
    }

    #[tokio::test]
    async fn document_review_ends_a_two_factor_mismatch_without_review() {
        let clock = ManualClock::new(NOW);
        let p = fake("p", Ok(Outcome::Mismatch));
        let (v, _) = verifier(std::slice::from_ref(&p), &clock);
        let answer = v.verify(document_review("r-1")).await.unwrap();
        assert_eq!(answer.status, CaseStatus::NotVerified);
        assert!(v.store().sealed_pii(&answer.verification_id).await.unwrap().is_none());
        assert_eq!(p.faces.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_case_abandoned_mid_call_is_taken_over_after_its_lease() {
        let clock = ManualClock::new(NOW);
        let (v, p) = with_an_abandoned_case(&clock).await;
        // While the lease holds, a retry waits and then reports the request as still in progress.
        let mut early = command("r-1", Purpose::ShortVideo);
        early.deadline = Instant::now() + Duration::from_millis(50);
        match v.verify(early).await {
            Err(VerifyError::InProgress { verification_id }) => assert_eq!(verification_id, "vf_stale"),
            other => panic!("expected in progress, got {other:?}"),
        }
        clock.advance(31);
        let answer = v.verify(command("r-1", Purpose::ShortVideo)).await.unwrap();
        assert_eq!(
            (answer.verification_id.as_str(), answer.status),
            ("vf_stale", CaseStatus::Verified)
        );
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    }

    /// Kill drill: the clock went back an hour after a gateway took the case and died. Its
    /// lease, now more than twice a lease length away, does not hold the case for that hour: a retry
    /// takes it over at once, and the provider is still called once.
    #[tokio::test]
    async fn a_lease_from_a_clock_that_went_back_does_not_hold_the_case() {
        let clock = ManualClock::new(NOW - 3_600);
        let (v, p) = with_an_abandoned_case(&clock).await;
        let mut retry = command("r-1", Purpose::ShortVideo);
        retry.consent_granted_at_unix = NOW - 3_700;
        retry.biometric_granted_at_unix = NOW - 3_700;
        let answer = v.verify(retry).await.unwrap();
        assert_eq!(
            (answer.verification_id.as_str(), answer.status),
            ("vf_stale", CaseStatus::Verified)
        );
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn rate_limits_per_account_answer_with_a_retry_hint() {
        // At the start of an hour window (after the consent time the commands carry).
        let clock = ManualClock::new(NOW + 3_600 - NOW.rem_euclid(3_600));
        let mut config = settings(Duration::from_secs(60));
        config.limits.per_account_per_hour = 2;
        let p = fake("p", Ok(Outcome::Match));
        let (v, _) = verifier_on(Arc::new(MemoryStore::new()), std::slice::from_ref(&p), &clock, config);
        v.verify(command("r-1", Purpose::ShortVideo)).await.unwrap();
        v.verify(command("r-2", Purpose::ShortVideo)).await.unwrap();
        clock.advance(600);
        match v.verify(command("r-3", Purpose::ShortVideo)).await {
            Err(VerifyError::RateLimited { retry_after_seconds }) => assert_eq!(retry_after_seconds, 3_000),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert_eq!(
            p.calls.load(Ordering::SeqCst),
            2,
            "a limited request costs no provider call"
        );
        clock.advance(3_000);
        assert!(
            v.verify(command("r-3", Purpose::ShortVideo)).await.is_ok(),
            "a new window"
        );
    }

    #[tokio::test]
    async fn rate_limits_per_id_number_count_across_accounts() {
        let clock = ManualClock::new(NOW);
        let mut config = settings(Duration::from_secs(60));
        config.limits.per_id_per_day = 1;
        let (v, _) = verifier_on(
            Arc::new(MemoryStore::new()),
            &[fake("p", Ok(Outcome::Match))],
            &clock,
            config,
        );
        v.verify(command("r-1", Purpose::ShortVideo)).await.unwrap();
        let mut other_account = command("r-2", Purpose::ShortVideo);
        other_account.account_id = AccountId::parse("acct-2").unwrap();
        assert!(matches!(
            v.verify(other_account).await,
            Err(VerifyError::RateLimited { .. })
        ));
    }

    #[tokio::test]
    async fn one_id_number_verifies_a_limited_number_of_anchor_accounts() {
        let clock = ManualClock::new(NOW);
        let (v, _) = verifier(&[fake("p", Ok(Outcome::FaceCompared { similarity: 95.0 }))], &clock);
        assert!(v.verify(command("r-1", Purpose::Anchor)).await.unwrap().verified());
        // The same account again is fine; a second account with the same ID is not.
        assert!(v.verify(command("r-2", Purpose::Anchor)).await.unwrap().verified());
        let mut second = command("r-3", Purpose::Anchor);
        second.account_id = AccountId::parse("acct-2").unwrap();
        let err = v.verify(second).await.unwrap_err();
        let VerifyError::IdAccountLimit { verification_id } = err else {
            panic!("expected the anchor limit")
        };
        assert_eq!(
            v.store().get(&verification_id).await.unwrap().unwrap().status,
            CaseStatus::NotVerified
        );
        // Short-video verification with the same ID is not limited by it.
        let mut short = command("r-4", Purpose::ShortVideo);
        short.account_id = AccountId::parse("acct-2").unwrap();
        assert!(v.verify(short).await.is_ok());
    }

    #[tokio::test]
    async fn a_case_begun_after_an_erasure_asks_no_provider_and_ends_erased() {
        use crate::store::RetentionStore;
        let clock = ManualClock::new(NOW);
        let p = fake("p", Ok(Outcome::Mismatch));
        let store = Arc::new(MemoryStore::new());
        let (v, _) = verifier_on(
            store.clone(),
            std::slice::from_ref(&p),
            &clock,
            settings(Duration::from_secs(60)),
        );
        store.erase_account("acct-1", None, NOW).await.unwrap();
        let answer = v.verify(command("r-1", Purpose::ShortVideo)).await.unwrap();
        assert_eq!(answer.status, CaseStatus::Erased);
        assert_eq!(
            p.calls.load(Ordering::SeqCst),
            0,
            "the erased applicant's data went to no provider"
        );
    }

    // ---- The caller's deadline decides whether a case starts, never how it ends ----

    #[tokio::test]
    async fn a_deadline_without_time_for_a_provider_starts_nothing() {
        let clock = ManualClock::new(NOW);
        let mut config = settings(Duration::from_secs(60));
        config.limits.per_account_per_hour = 1;
        let p = fake("p", Ok(Outcome::Mismatch));
        let (v, _) = verifier_on(Arc::new(MemoryStore::new()), std::slice::from_ref(&p), &clock, config);
        // 150 ms, less the 100 ms reserve, is under the 200 ms minimum.
        let mut hurried = command("r-1", Purpose::ShortVideo);
        hurried.deadline = Instant::now() + Duration::from_millis(150);
        assert!(matches!(v.verify(hurried).await, Err(VerifyError::DeadlineTooShort)));
        assert_eq!(p.calls.load(Ordering::SeqCst), 0, "no provider asked");
        assert!(v.store().find("acct-1", "r-1").await.unwrap().is_none(), "no case");
        // Nothing was counted either (one verification an hour): the same request with time to
        // wait gets the provider's decision, not a review.
        let answer = v.verify(command("r-1", Purpose::ShortVideo)).await.unwrap();
        assert_eq!(answer.status, CaseStatus::NotVerified);
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
        // A request already decided is still answered to a caller in a hurry: a replay asks nobody.
        let mut replay = command("r-1", Purpose::ShortVideo);
        replay.deadline = Instant::now();
        assert_eq!(v.verify(replay).await.unwrap(), answer);
    }

    #[tokio::test]
    async fn a_case_begun_is_decided_by_its_provider_after_the_caller_stops_waiting() {
        let clock = ManualClock::new(NOW);
        let (p, gate) = held(Outcome::Mismatch);
        let (v, _) = verifier(std::slice::from_ref(&p), &clock);
        let v = Arc::new(v);
        // More calls than the breaker's five failures in a row, each with a deadline that ends while
        // its provider call runs (as the transport's task goes on after answering DEADLINE_EXCEEDED).
        let deadline = Instant::now() + Duration::from_millis(400);
        let rounds: Vec<_> = (0..6)
            .map(|i| {
                let mut hurried = command(&format!("r-{i}"), Purpose::ShortVideo);
                hurried.deadline = deadline;
                let v = v.clone();
                tokio::spawn(async move { v.verify(hurried).await })
            })
            .collect();
        let all_asked = async {
            while p.calls.load(Ordering::SeqCst) < 6 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), all_asked)
            .await
            .expect("every call reached the provider");
        tokio::time::sleep_until(deadline).await;
        gate.add_permits(6);
        for task in rounds {
            let answer = task.await.unwrap().unwrap();
            assert_eq!(
                answer.status,
                CaseStatus::NotVerified,
                "the provider's decision, not a review"
            );
        }
        assert!(
            v.breaker_states()
                .iter()
                .all(|(_, state)| *state == crate::providers::breaker::BreakerState::Closed)
        );
        // The breaker let the next request through to the provider.
        gate.add_permits(1);
        let next = v.verify(command("r-next", Purpose::ShortVideo)).await.unwrap();
        assert_eq!(next.status, CaseStatus::NotVerified);
        assert_eq!(p.calls.load(Ordering::SeqCst), 7);
    }

    #[tokio::test]
    async fn a_face_sent_with_a_purpose_that_compares_none_is_dropped_unread() {
        for purpose in [Purpose::ShortVideo, Purpose::Radio] {
            let clock = ManualClock::new(NOW);
            let p = fake("p", Ok(Outcome::CannotDecide));
            let (v, keks) = verifier(std::slice::from_ref(&p), &clock);
            // Without a biometric consent, with a face sealed anyway: the case goes to review.
            let mut with_face = command("r-1", purpose);
            with_face.biometric_policy_version.clear();
            let answer = v.verify(with_face).await.unwrap();
            assert_eq!(answer.status, CaseStatus::PendingReview);
            assert_eq!(p.faces.load(Ordering::SeqCst), 0, "no face sent");
            // Nothing of it at rest: no face part, none inside the identity material, none for a
            // reviewer.
            let id = &answer.verification_id;
            let sealed = v.store().sealed_pii(id).await.unwrap().expect("kept for review");
            assert!(sealed.face.is_none(), "{purpose:?}: no face stored");
            let identity = material::open_identity(&keks, id, &sealed).unwrap();
            assert!(identity.face_image.is_empty());
            let (view, has_face) = material::open_for_review(&keks, id, &sealed, true).unwrap();
            assert!(!has_face && material::decode(&view).unwrap().face_image.is_empty());
            // Not in the fingerprint: the same request without the face, or with a garbage one (not
            // even read), is a replay of the same case.
            let mut without = command("r-1", purpose);
            without.fields.face_image.clear();
            let mut garbage = command("r-1", purpose);
            garbage.fields.face_image = b"GIF89a not an image".to_vec();
            for replay in [without, garbage] {
                assert_eq!(v.verify(replay).await.unwrap(), answer);
            }
            assert_eq!(p.calls.load(Ordering::SeqCst), 1);
            // A new request with a garbage face is not refused over it.
            let mut fresh = command("r-2", purpose);
            fresh.fields.face_image = b"GIF89a not an image".to_vec();
            assert!(v.verify(fresh).await.is_ok());
        }
    }

    // ---- The verified flag means a decision about exactly what was sealed ----

    #[tokio::test]
    async fn a_reused_request_id_with_other_content_is_refused_not_answered() {
        let clock = ManualClock::new(NOW);
        let p = fake("p", Ok(Outcome::FaceCompared { similarity: 95.0 }));
        let (v, _) = verifier(std::slice::from_ref(&p), &clock);
        assert!(v.verify(command("r-1", Purpose::Anchor)).await.unwrap().verified());
        // Another identity, another face, another phone: never the first request's VERIFIED.
        let mut other_id = command("r-1", Purpose::Anchor);
        other_id.fields.id_number = test_support::id_number("110105", "19850101", "123");
        let mut other_face = command("r-1", Purpose::Anchor);
        other_face.fields.face_image = test_support::png(321, 240);
        let mut other_phone = command("r-1", Purpose::Anchor);
        other_phone.fields.phone = "13900139000".into();
        let mut other_caller = command("r-1", Purpose::Anchor);
        other_caller.principal = "onboarding-other".into();
        for reuse in [other_id, other_face, other_phone, other_caller] {
            assert!(matches!(v.verify(reuse).await, Err(VerifyError::RequestIdReused)));
        }
        assert_eq!(p.calls.load(Ordering::SeqCst), 1, "no provider call for a reuse");
        // The same content is still a free replay.
        assert!(v.verify(command("r-1", Purpose::Anchor)).await.unwrap().verified());
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_abandoned_case_is_not_taken_over_by_other_content() {
        let clock = ManualClock::new(NOW);
        let (v, p) = with_an_abandoned_case(&clock).await;
        clock.advance(31);
        let mut other = command("r-1", Purpose::ShortVideo);
        other.fields.id_number = test_support::id_number("110105", "19850101", "123");
        assert!(matches!(v.verify(other).await, Err(VerifyError::RequestIdReused)));
        assert_eq!(p.calls.load(Ordering::SeqCst), 0);
        let answer = v.verify(command("r-1", Purpose::ShortVideo)).await.unwrap();
        assert_eq!(answer.verification_id, "vf_stale", "the same request takes it over");
    }

    #[tokio::test]
    async fn replays_are_free_and_never_rate_limited() {
        let clock = ManualClock::new(NOW + 3_600 - NOW.rem_euclid(3_600));
        let mut config = settings(Duration::from_secs(60));
        config.limits.per_account_per_hour = 2;
        let p = fake("p", Ok(Outcome::Match));
        let (v, _) = verifier_on(Arc::new(MemoryStore::new()), std::slice::from_ref(&p), &clock, config);
        v.verify(command("r-1", Purpose::ShortVideo)).await.unwrap();
        for _ in 0..12 {
            assert!(v.verify(command("r-1", Purpose::ShortVideo)).await.is_ok(), "a replay");
        }
        // The replays counted nothing: one more new request fits, the next does not.
        v.verify(command("r-2", Purpose::ShortVideo)).await.unwrap();
        assert!(matches!(
            v.verify(command("r-3", Purpose::ShortVideo)).await,
            Err(VerifyError::RateLimited { .. })
        ));
        assert_eq!(p.calls.load(Ordering::SeqCst), 2);
    }

    /// Any store call of a verification that fails leaves no anchor binding without a VERIFIED case,
    /// and a case that reached the store pending review is claimable and expires.
    #[tokio::test]
    async fn no_failed_store_step_leaves_a_binding_without_a_verified_case() {
        use crate::store::failing::FailingStore;
        for verdict in [Outcome::FaceCompared { similarity: 95.0 }, Outcome::CannotDecide] {
            for n in 1..=8 {
                let clock = ManualClock::new(NOW);
                let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
                let failing = Arc::new(FailingStore::new(memory.clone()));
                failing.fail_call(n);
                let (v, _) = verifier_on(
                    failing.clone(),
                    &[fake("p", Ok(verdict))],
                    &clock,
                    settings(Duration::from_secs(3_600)),
                );
                let result = v.verify(command("r-1", Purpose::Anchor)).await;
                let id_number = command("x", Purpose::Anchor).fields.id_number.clone();
                let claim = anchor_claim(&indexer(), Limits::default(), &id_number, NOW);
                let bound = memory.anchor_accounts(&claim.consult, NOW).await.unwrap();
                let case = memory.find("acct-1", "r-1").await.unwrap();
                let verified = case.as_ref().is_some_and(|c| c.status == CaseStatus::Verified);
                assert_eq!(!bound.is_empty(), verified, "call {n} failing: binding iff verified");
                if result.is_ok() {
                    continue;
                }
                // Whatever failed, the request can be retried to an answer, and a pending case
                // expires with its data.
                failing.fail_call(0);
                clock.advance(31);
                let retried = v.verify(command("r-1", Purpose::Anchor)).await.unwrap();
                if retried.status == CaseStatus::PendingReview {
                    clock.advance(3_600);
                    assert_eq!(memory.sweep(clock.now_unix(), 0).await.unwrap(), 1);
                }
            }
        }
    }

    #[tokio::test]
    async fn a_lost_lease_leaves_no_binding() {
        let clock = ManualClock::new(NOW);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (v, _) = verifier_on(
            store.clone(),
            &[fake("p", Ok(Outcome::FaceCompared { similarity: 95.0 }))],
            &clock,
            settings(Duration::from_secs(60)),
        );
        let answer = v.verify(command("r-1", Purpose::Anchor)).await.unwrap();
        let id_number = command("x", Purpose::Anchor).fields.id_number.clone();
        let claim = anchor_claim(&indexer(), Limits::default(), &id_number, NOW);
        // A second finish of the same case (a gateway whose lease was taken over) binds nothing more
        // and changes nothing.
        let stale = store
            .finish(
                &answer.verification_id,
                Finish {
                    status: CaseStatus::Verified,
                    anchor: Some(AnchorClaim {
                        index: claim.index.replace("bk-1", "bk-x"),
                        ..claim.clone()
                    }),
                    ..Finish::default()
                },
                NOW + 1,
            )
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict)));
        let mut consulted = claim.consult.clone();
        consulted.push(claim.index.replace("bk-1", "bk-x"));
        assert_eq!(store.anchor_accounts(&consulted, NOW).await.unwrap(), ["acct-1"]);
    }

    #[tokio::test]
    async fn rotating_the_blind_index_key_resets_no_limit() {
        let clock = ManualClock::new(NOW);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut config = settings(Duration::from_secs(60));
        config.limits.per_id_per_day = 2;
        let (v, _) = verifier_on(
            store.clone(),
            &[fake("p", Ok(Outcome::FaceCompared { similarity: 95.0 }))],
            &clock,
            config.clone(),
        );
        assert!(v.verify(command("r-1", Purpose::Anchor)).await.unwrap().verified());
        // The blind-index key rotates; the old one stays loaded.
        let ring = BlindIndexer::ring(vec![
            crate::crypto::blind_index::BlindKey {
                id: "bk-1".into(),
                version: 1,
                created_at_unix: NOW - 10,
                root: SecretKey32::from_bytes([5; 32]),
            },
            crate::crypto::blind_index::BlindKey {
                id: "bk-2".into(),
                version: 2,
                created_at_unix: NOW,
                root: SecretKey32::from_bytes([6; 32]),
            },
        ])
        .unwrap();
        let rotated = Verifier::new(
            store.clone(),
            Router::new(vec![Route::new(
                fake("p", Ok(Outcome::FaceCompared { similarity: 95.0 })) as Arc<dyn Provider>,
                Duration::from_secs(5),
                4,
            )]),
            test_keks(),
            Arc::new(ring),
            audit_trail(store.clone(), Arc::new(clock.clone())),
            Arc::new(clock.clone()),
            config,
        );
        let mut other_account = command("r-2", Purpose::Anchor);
        other_account.account_id = AccountId::parse("acct-2").unwrap();
        assert!(
            matches!(
                rotated.verify(other_account).await,
                Err(VerifyError::IdAccountLimit { .. })
            ),
            "the anchor limit survives the rotation"
        );
        let mut third = command("r-3", Purpose::Anchor);
        third.account_id = AccountId::parse("acct-3").unwrap();
        assert!(
            matches!(rotated.verify(third).await, Err(VerifyError::RateLimited { .. })),
            "the per-ID daily limit survives the rotation"
        );
    }

    #[tokio::test]
    async fn review_material_seals_the_same_inline_and_off_the_runtime() {
        let (_, keks) = verifier(&[], &ManualClock::new(NOW));
        let today = time::macros::date!(2026 - 11 - 30);
        // Text only (inline), and a face past the threshold (on the blocking pool).
        let mut fields = command("r", Purpose::ShortVideo).fields;
        fields.face_image.clear();
        let text_only = Applicant::check(Purpose::ShortVideo, fields, today).unwrap();
        let mut fields = command("r", Purpose::Anchor).fields;
        fields.face_image.resize(SEAL_OFF_RUNTIME_AT_BYTES + 1, 0);
        let with_face = Applicant::check(Purpose::Anchor, fields, today).unwrap();
        assert!(with_face.face_image().unwrap().as_bytes().len() >= SEAL_OFF_RUNTIME_AT_BYTES);
        for (applicant, face) in [(text_only, false), (with_face, true)] {
            let expected = material::encode_identity(&applicant);
            let expected_face = applicant.face_image().map(|i| i.as_bytes().to_vec());
            let sealed = seal_at_rest(keks.clone(), "vf_case".into(), applicant).await.unwrap();
            let opened = keks
                .open(
                    "vf_case",
                    material::PII_FIELD_IDENTITY,
                    &sealed.wrapped_key,
                    &sealed.body,
                )
                .unwrap();
            assert_eq!(*opened, *expected);
            assert!(
                keks.open(
                    "vf_other",
                    material::PII_FIELD_IDENTITY,
                    &sealed.wrapped_key,
                    &sealed.body
                )
                .is_err()
            );
            assert_eq!(sealed.face.is_some(), face);
            if let Some(sealed_face) = &sealed.face {
                let opened = keks
                    .open(
                        "vf_case",
                        material::PII_FIELD_FACE,
                        &sealed_face.wrapped_key,
                        &sealed_face.body,
                    )
                    .unwrap();
                assert_eq!(Some(opened.to_vec()), expected_face);
            }
        }
    }
}
