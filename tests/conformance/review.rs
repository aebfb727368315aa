//! [`ReviewQueue`](idgate::store::ReviewQueue): every backend's `ReviewQueue` must behave like the embedded
//! one — oldest first, one holder per case, leases on the caller's clock, four-eyes, supplements, and
//! every ending (decision, retention, erasure) shredding the data and leaving the queue.
//!
//! Each test takes a [`Backend`]: one store seen through the case interfaces and the queue. Time is
//! passed in, never slept: leases run out by moving `now`.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::StreamExt;
use idgate::crypto::envelope::{Body, WrappedKey};
use idgate::domain::{AccountId, CaseRefusal, Purpose, RequestId, ReviewReason};
use idgate::store::{
    CaseRecord, CaseStatus, Finish, PiiPart, QueueStats, ReviewError, ReviewQueue, ReviewVerdict, SealedPii,
    SealedValue, Store, StoreError,
};

use crate::FullStore;

/// A base time in the past of any machine running this suite. Redis keeps a lease's start (the
/// caller's clock) as the hand-out time of its queue entry and measures idle time on its own clock;
/// a past base time is a gateway whose clock is behind Redis's, where the case script, not Redis,
/// decides when a lease has run out — which is what these tests check.
const NOW: i64 = 1_700_000_000;
/// Lease length used throughout.
const LEASE: i64 = 60;
/// When the sealed data of a test case is due.
const PII_TTL: i64 = 3_600;

/// One store seen through both traits.
#[derive(Clone)]
struct Backend {
    store: Arc<dyn Store>,
    queue: Arc<dyn ReviewQueue>,
}

impl Backend {
    fn of(store: Arc<dyn FullStore>) -> Self {
        Self {
            store: store.clone(),
            queue: store,
        }
    }

    /// Creates a case of `purpose` and finishes it into the review queue at `at`.
    async fn queue_case(&self, id: &str, account: &str, purpose: Purpose, at: i64) {
        self.queue_case_as(id, account, purpose, at, ReviewReason::ProviderCannotDecide, false)
            .await
    }

    /// As [`Self::queue_case`], for `reason`, with the documents sealed in the request or not.
    async fn queue_case_as(
        &self,
        id: &str,
        account: &str,
        purpose: Purpose,
        at: i64,
        reason: ReviewReason,
        documents_complete: bool,
    ) {
        let record = CaseRecord::processing(
            id,
            AccountId::parse(account).unwrap(),
            RequestId::parse(&format!("req-{id}")).unwrap(),
            "onboarding-dev",
            purpose,
            "fp",
            at,
            at + 30,
        );
        self.store.begin(record, at).await.unwrap();
        let finish = Finish {
            status: CaseStatus::PendingReview,
            provider: Some("p".into()),
            refusal: None,
            pii: Some((pii(1), at + PII_TTL)),
            anchor: None,
            review_reason: Some(reason),
            documents_complete,
        };
        let record = self.store.finish(id, finish, at).await.unwrap();
        assert_eq!(record.status, CaseStatus::PendingReview);
    }

    /// `reviewer` claims at `now` with a lease of [`LEASE`], without four-eyes or supplement gating.
    async fn claim(&self, reviewer: &str, now: i64) -> Option<String> {
        self.claim_with(reviewer, now, false, false).await
    }

    async fn claim_with(&self, reviewer: &str, now: i64, four_eyes: bool, needs_supplement: bool) -> Option<String> {
        let claim = self
            .queue
            .claim_next(reviewer, now, now + LEASE, four_eyes, needs_supplement)
            .await
            .unwrap()?;
        assert_eq!(claim.lease.reviewer, reviewer);
        assert_eq!(claim.lease.until_unix, now + LEASE);
        assert_eq!(claim.case.status, CaseStatus::PendingReview);
        assert_eq!(
            claim.case.review_reason,
            Some(ReviewReason::ProviderCannotDecide),
            "why it is here"
        );
        Some(claim.case.id)
    }

    async fn decide(&self, id: &str, reviewer: &str, verdict: ReviewVerdict, required: u8, now: i64) -> CaseStatus {
        self.queue
            .decide(id, reviewer, verdict, required, None, now)
            .await
            .unwrap()
            .status
    }

    async fn status(&self, id: &str) -> CaseStatus {
        self.store.get(id).await.unwrap().unwrap().status
    }
}

/// Distinct sealed data per `n` (only sealed bytes ever reach a store).
fn pii(n: u8) -> SealedPii {
    SealedPii {
        face: Some(SealedValue {
            wrapped_key: WrappedKey {
                kek_id: "kek-1".into(),
                bytes: vec![n.wrapping_add(100); 72],
            },
            body: Body {
                version: 1,
                commitment: [n.wrapping_add(100); 32],
                nonce: [5; 24],
                ciphertext: vec![6; 64],
            },
        }),
        wrapped_key: WrappedKey {
            kek_id: "kek-1".into(),
            bytes: vec![n; 72],
        },
        body: Body {
            version: 1,
            commitment: [n; 32],
            nonce: [2; 24],
            ciphertext: vec![3; 64],
        },
    }
}

async fn oldest_first(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Radio, NOW).await;
    b.queue_case("vf_b", "acct-1", Purpose::Radio, NOW + 1).await;
    b.queue_case("vf_c", "acct-2", Purpose::Anchor, NOW + 1).await;
    let now = NOW + 2;
    assert_eq!(b.claim("rev-1", now).await.as_deref(), Some("vf_a"));
    assert_eq!(
        b.claim("rev-2", now).await.as_deref(),
        Some("vf_b"),
        "same second: arrival order"
    );
    assert_eq!(b.claim("rev-3", now).await.as_deref(), Some("vf_c"));
    assert_eq!(b.claim("rev-4", now).await, None, "every case is held");
    assert_eq!(b.claim("rev-1", now).await, None, "a holder gets no second copy");
    let claim = b
        .queue
        .claim_next("rev-5", now, now + LEASE, false, false)
        .await
        .unwrap();
    assert!(claim.is_none());
}

async fn a_case_is_claimed_exactly_once_under_contention(b: Backend) {
    for i in 0..10 {
        b.queue_case(&format!("vf_{i:02}"), "acct-1", Purpose::Radio, NOW + i)
            .await;
    }
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move { b.claim(&format!("rev-{i}"), NOW + 20).await })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        if let Some(id) = task.await.unwrap() {
            claimed.push(id);
        }
    }
    let distinct: HashSet<_> = claimed.iter().cloned().collect();
    assert_eq!(claimed.len(), 10, "ten cases, ten claims: {claimed:?}");
    assert_eq!(distinct.len(), 10, "no case twice: {claimed:?}");
    let stats = b.queue.queue_stats(NOW + 20).await.unwrap();
    assert_eq!((stats.pending, stats.claimed), (0, 10));
}

async fn an_expired_lease_returns_the_case(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Radio, NOW).await;
    assert_eq!(b.claim("rev-1", NOW).await.as_deref(), Some("vf_a"));
    assert_eq!(b.claim("rev-2", NOW + LEASE - 1).await, None, "lease still live");
    assert_eq!(
        b.claim("rev-2", NOW + LEASE).await.as_deref(),
        Some("vf_a"),
        "a lease ends at its `until`"
    );
    let state = b.queue.review_state("vf_a").await.unwrap().unwrap();
    assert_eq!(state.lease.unwrap().reviewer, "rev-2");
    assert_eq!(state.claimed_by, ["rev-1", "rev-2"]);
    assert_eq!(state.queued_at_unix, NOW);
    // The first holder's verdict comes too late.
    assert!(matches!(
        b.queue
            .decide("vf_a", "rev-1", ReviewVerdict::Approve, 1, None, NOW + LEASE + 1)
            .await,
        Err(ReviewError::Foreign)
    ));
    assert_eq!(b.status("vf_a").await, CaseStatus::PendingReview);
}

async fn decisions_need_the_callers_live_lease(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Radio, NOW).await;
    assert_eq!(b.claim("rev-1", NOW).await.as_deref(), Some("vf_a"));
    let q = &b.queue;
    assert!(matches!(
        q.decide("vf_a", "rev-2", ReviewVerdict::Reject, 1, None, NOW + 1).await,
        Err(ReviewError::Foreign)
    ));
    assert!(matches!(
        q.release("vf_a", "rev-2", NOW + 1).await,
        Err(ReviewError::Foreign)
    ));
    assert!(matches!(
        q.decide("vf_a", "rev-1", ReviewVerdict::Approve, 1, None, NOW + LEASE)
            .await,
        Err(ReviewError::LeaseExpired)
    ));
    assert!(matches!(
        q.release("vf_a", "rev-1", NOW + LEASE).await,
        Err(ReviewError::LeaseExpired)
    ));
    // Never claimed at all.
    b.queue_case("vf_b", "acct-1", Purpose::Radio, NOW).await;
    assert!(matches!(
        q.decide("vf_b", "rev-1", ReviewVerdict::Approve, 1, None, NOW + 1)
            .await,
        Err(ReviewError::LeaseExpired)
    ));
    assert!(matches!(
        q.decide("vf_unknown", "rev-1", ReviewVerdict::Approve, 1, None, NOW)
            .await,
        Err(ReviewError::NotPending)
    ));
    // Once ended, the case is not pending for anyone.
    assert_eq!(b.claim("rev-1", NOW + LEASE).await.as_deref(), Some("vf_a"));
    assert_eq!(
        b.decide("vf_a", "rev-1", ReviewVerdict::Approve, 1, NOW + LEASE + 1)
            .await,
        CaseStatus::Verified
    );
    assert!(matches!(
        q.decide("vf_a", "rev-1", ReviewVerdict::Approve, 1, None, NOW + LEASE + 2)
            .await,
        Err(ReviewError::NotPending)
    ));
    assert!(matches!(
        q.release("vf_a", "rev-1", NOW + LEASE + 2).await,
        Err(ReviewError::NotPending)
    ));
}

async fn four_eyes_needs_two_different_reviewers(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Anchor, NOW).await;
    let four_eyes = |reviewer: &'static str, now: i64| {
        let b = b.clone();
        async move { b.claim_with(reviewer, now, true, false).await }
    };
    assert_eq!(four_eyes("rev-1", NOW).await.as_deref(), Some("vf_a"));
    assert_eq!(
        b.decide("vf_a", "rev-1", ReviewVerdict::Approve, 2, NOW + 1).await,
        CaseStatus::PendingReview,
        "one approval of two"
    );
    assert!(
        b.store.sealed_pii("vf_a").await.unwrap().is_some(),
        "kept for the second reviewer"
    );
    assert_eq!(four_eyes("rev-1", NOW + 2).await, None, "never the same reviewer twice");
    assert_eq!(
        b.claim("rev-1", NOW + 2).await,
        None,
        "nor to approve it again without four-eyes"
    );
    assert_eq!(
        four_eyes("rev-2", NOW + 2).await.as_deref(),
        Some("vf_a"),
        "back at once"
    );
    let state = b.queue.review_state("vf_a").await.unwrap().unwrap();
    assert_eq!(state.approvals, ["rev-1"]);
    assert_eq!(state.claimed_by, ["rev-1", "rev-2"]);
    assert_eq!(
        b.decide("vf_a", "rev-2", ReviewVerdict::Approve, 2, NOW + 3).await,
        CaseStatus::Verified
    );
    assert!(b.store.sealed_pii("vf_a").await.unwrap().is_none(), "shredded");
    assert!(
        b.queue.review_state("vf_a").await.unwrap().is_none(),
        "out of the queue"
    );
    assert_eq!(four_eyes("rev-3", NOW + 4).await, None);
}

async fn a_case_not_ready_for_one_reviewer_stays_available_to_others(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Radio, NOW).await;
    b.queue_case("vf_b", "acct-1", Purpose::Radio, NOW + 1).await;
    assert_eq!(
        b.claim_with("rev-1", NOW + 2, true, false).await.as_deref(),
        Some("vf_a")
    );
    b.queue.release("vf_a", "rev-1", NOW + 3).await.unwrap();
    // rev-1 already saw vf_a: with four-eyes they get the next one, and vf_a stays first in line.
    assert_eq!(
        b.claim_with("rev-1", NOW + 4, true, false).await.as_deref(),
        Some("vf_b")
    );
    assert_eq!(b.claim_with("rev-1", NOW + 4, true, false).await, None);
    assert_eq!(
        b.claim_with("rev-2", NOW + 4, true, false).await.as_deref(),
        Some("vf_a")
    );
}

async fn a_rejection_ends_the_case_at_once(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Radio, NOW).await;
    let mut watcher = b.store.watch("vf_a").await.unwrap().unwrap();
    assert_eq!(watcher.next().await.unwrap().status, CaseStatus::PendingReview);
    assert_eq!(b.claim("rev-1", NOW).await.as_deref(), Some("vf_a"));
    let record = b
        .queue
        .decide("vf_a", "rev-1", ReviewVerdict::Reject, 2, None, NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        record.status,
        CaseStatus::NotVerified,
        "one rejection is enough, even with four-eyes"
    );
    assert_eq!(record.pii_expires_at_unix, None);
    assert!(b.store.sealed_pii("vf_a").await.unwrap().is_none());
    assert!(b.queue.review_state("vf_a").await.unwrap().is_none());
    assert_eq!(b.status("vf_a").await, CaseStatus::NotVerified);
    assert_eq!(watcher.next().await.unwrap().status, CaseStatus::NotVerified);
    assert!(watcher.next().await.is_none(), "the watch ends with the case");
    assert_eq!(b.claim("rev-2", NOW + LEASE * 2).await, None, "gone from the queue");
    assert_eq!(b.queue.queue_stats(NOW + 2).await.unwrap(), QueueStats::default());
}

async fn a_release_returns_the_case_at_once(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Radio, NOW).await;
    b.queue_case("vf_b", "acct-1", Purpose::Radio, NOW + 1).await;
    assert_eq!(b.claim("rev-1", NOW + 2).await.as_deref(), Some("vf_a"));
    b.queue.release("vf_a", "rev-1", NOW + 3).await.unwrap();
    assert!(b.queue.review_state("vf_a").await.unwrap().unwrap().lease.is_none());
    assert_eq!(
        b.claim("rev-2", NOW + 3).await.as_deref(),
        Some("vf_a"),
        "at once, and still before the newer case"
    );
    assert_eq!(b.claim("rev-1", NOW + 3).await.as_deref(), Some("vf_b"));
}

/// An anchor case whose request already sealed the ID card front, back and handheld photo is ready
/// at once: waiting for a supplement it does not need would leave it unreviewed until it expires.
async fn documents_sealed_in_the_request_need_no_supplement(b: Backend) {
    b.queue_case_as(
        "vf_docs",
        "acct-1",
        Purpose::Anchor,
        NOW,
        ReviewReason::ProviderCannotDecide,
        true,
    )
    .await;
    assert_eq!(
        b.claim_with("rev-1", NOW + 1, false, true).await.as_deref(),
        Some("vf_docs")
    );
    assert!(
        b.queue
            .review_state("vf_docs")
            .await
            .unwrap()
            .unwrap()
            .supplement_complete
    );
}

/// A document-review case (no face) waits for its documents even where anchors need no supplement:
/// without a face they are all a reviewer decides from.
async fn document_review_always_waits_for_its_documents(b: Backend) {
    let doc = ReviewReason::DocumentReviewRequested;
    b.queue_case_as("vf_bare", "acct-1", Purpose::Anchor, NOW, doc, false)
        .await;
    b.queue_case_as("vf_docs", "acct-1", Purpose::Anchor, NOW + 1, doc, true)
        .await;
    // Anchors need no supplement here (the last argument): only the document path waits.
    let claim = |reviewer: &'static str, now: i64| {
        let queue = b.queue.clone();
        async move {
            let claim = queue
                .claim_next(reviewer, now, now + LEASE, false, false)
                .await
                .unwrap()?;
            assert_eq!(claim.case.review_reason, Some(ReviewReason::DocumentReviewRequested));
            Some(claim.case.id)
        }
    };
    assert_eq!(
        claim("rev-1", NOW + 2).await.as_deref(),
        Some("vf_docs"),
        "the older case has no documents yet"
    );
    assert_eq!(claim("rev-2", NOW + 2).await, None);
    assert!(
        b.queue
            .apply_supplement("vf_bare", "s-1", &pii(1).wrapped_key, pii(2), true)
            .await
            .unwrap()
    );
    assert_eq!(claim("rev-2", NOW + 3).await.as_deref(), Some("vf_bare"));
}

async fn anchors_wait_for_their_supplement(b: Backend) {
    b.queue_case("vf_anchor", "acct-1", Purpose::Anchor, NOW).await;
    b.queue_case("vf_radio", "acct-1", Purpose::Radio, NOW + 1).await;
    assert_eq!(
        b.claim_with("rev-1", NOW + 2, false, true).await.as_deref(),
        Some("vf_radio"),
        "the anchor case waits"
    );
    assert_eq!(b.claim_with("rev-2", NOW + 2, false, true).await, None);

    let q = &b.queue;
    assert!(
        q.apply_supplement("vf_anchor", "s-1", &pii(1).wrapped_key, pii(2), false)
            .await
            .unwrap()
    );
    assert_eq!(b.store.sealed_pii("vf_anchor").await.unwrap(), Some(pii(2)));
    assert!(
        !q.apply_supplement("vf_anchor", "s-1", &pii(1).wrapped_key, pii(2), false)
            .await
            .unwrap(),
        "a retry is applied once"
    );
    assert!(
        matches!(
            q.apply_supplement("vf_anchor", "s-2", &pii(1).wrapped_key, pii(3), true)
                .await,
            Err(ReviewError::Store(StoreError::Conflict))
        ),
        "compare-and-set on the wrapped key"
    );
    assert_eq!(
        b.claim_with("rev-2", NOW + 3, false, true).await,
        None,
        "still incomplete"
    );

    assert!(
        q.apply_supplement("vf_anchor", "s-2", &pii(2).wrapped_key, pii(3), true)
            .await
            .unwrap()
    );
    let state = q.review_state("vf_anchor").await.unwrap().unwrap();
    assert!(state.supplement_complete);
    assert_eq!(state.supplement_requests, ["s-1", "s-2"]);
    let claim = q
        .claim_next("rev-2", NOW + 4, NOW + 4 + LEASE, false, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.case.id, "vf_anchor");
    assert_eq!(claim.pii, pii(3), "the reviewer gets the supplemented material");

    assert_eq!(
        b.decide("vf_anchor", "rev-2", ReviewVerdict::Approve, 1, NOW + 5).await,
        CaseStatus::Verified
    );
    assert!(matches!(
        q.apply_supplement("vf_anchor", "s-3", &pii(3).wrapped_key, pii(4), true)
            .await,
        Err(ReviewError::NotPending)
    ));
    assert!(matches!(
        q.apply_supplement("vf_unknown", "s-1", &pii(1).wrapped_key, pii(4), true)
            .await,
        Err(ReviewError::NotPending)
    ));
}

async fn without_gating_an_anchor_is_ready_at_once(b: Backend) {
    b.queue_case("vf_anchor", "acct-1", Purpose::Anchor, NOW).await;
    // A reviewer under gating passes it over; one without gating still finds it.
    assert_eq!(b.claim_with("rev-1", NOW + 1, false, true).await, None);
    assert_eq!(
        b.claim_with("rev-2", NOW + 1, false, false).await.as_deref(),
        Some("vf_anchor")
    );
}

async fn retention_while_claimed_ends_the_case(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Radio, NOW).await;
    b.queue_case("vf_b", "acct-1", Purpose::Radio, NOW + 100).await;
    let due = NOW + PII_TTL;
    assert_eq!(b.claim("rev-1", due - 10).await.as_deref(), Some("vf_a"));
    assert_eq!(b.store.sweep(due, 0).await.unwrap(), 1);
    assert_eq!(b.status("vf_a").await, CaseStatus::Expired);
    assert!(b.store.sealed_pii("vf_a").await.unwrap().is_none());
    assert!(b.queue.review_state("vf_a").await.unwrap().is_none());
    assert!(matches!(
        b.queue
            .decide("vf_a", "rev-1", ReviewVerdict::Approve, 1, None, due + 1)
            .await,
        Err(ReviewError::NotPending)
    ));
    assert!(matches!(
        b.queue.release("vf_a", "rev-1", due + 1).await,
        Err(ReviewError::NotPending)
    ));
    let stats = b.queue.queue_stats(due + 1).await.unwrap();
    assert_eq!((stats.pending, stats.claimed), (1, 0));
    assert_eq!(b.claim("rev-2", due + 1).await.as_deref(), Some("vf_b"));
    assert_eq!(b.claim("rev-3", due + 1).await, None);
}

async fn erasure_while_claimed_ends_the_case(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Radio, NOW).await;
    b.queue_case("vf_b", "acct-2", Purpose::Radio, NOW + 1).await;
    assert_eq!(b.claim("rev-1", NOW + 2).await.as_deref(), Some("vf_a"));
    let mut watcher = b.store.watch("vf_a").await.unwrap().unwrap();
    assert_eq!(watcher.next().await.unwrap().status, CaseStatus::PendingReview);
    assert_eq!(b.store.erase_account("acct-1", None, NOW + 3).await.unwrap(), ["vf_a"]);
    assert_eq!(watcher.next().await.unwrap().status, CaseStatus::Erased);
    assert!(b.store.sealed_pii("vf_a").await.unwrap().is_none());
    assert!(b.queue.review_state("vf_a").await.unwrap().is_none());
    assert!(matches!(
        b.queue
            .decide("vf_a", "rev-1", ReviewVerdict::Approve, 1, None, NOW + 4)
            .await,
        Err(ReviewError::NotPending)
    ));
    assert_eq!(b.claim("rev-2", NOW + LEASE * 2).await.as_deref(), Some("vf_b"));
    assert_eq!(
        b.claim("rev-3", NOW + LEASE * 2).await,
        None,
        "the erased case is never offered"
    );
}

async fn an_approval_destroys_the_data(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Radio, NOW).await;
    assert!(b.store.sealed_pii("vf_a").await.unwrap().is_some());
    assert_eq!(b.claim("rev-1", NOW).await.as_deref(), Some("vf_a"));
    let record = b
        .queue
        .decide("vf_a", "rev-1", ReviewVerdict::Approve, 1, None, NOW + 1)
        .await
        .unwrap();
    assert_eq!((record.status, record.updated_at_unix), (CaseStatus::Verified, NOW + 1));
    assert!(b.store.sealed_pii("vf_a").await.unwrap().is_none());
    assert!(b.store.wrapped_keys_not_under("kek-none", 10).await.unwrap().is_empty());
    assert_eq!(
        b.store.sweep(NOW + PII_TTL, 0).await.unwrap(),
        0,
        "nothing left to expire"
    );
    assert_eq!(b.status("vf_a").await, CaseStatus::Verified);
}

async fn queue_stats_count_held_and_waiting_cases(b: Backend) {
    assert_eq!(b.queue.queue_stats(NOW).await.unwrap(), QueueStats::default());
    b.queue_case("vf_a", "acct-1", Purpose::Radio, NOW).await;
    b.queue_case("vf_b", "acct-1", Purpose::Radio, NOW + 10).await;
    b.queue_case("vf_c", "acct-1", Purpose::Anchor, NOW + 20).await;
    assert_eq!(b.claim("rev-1", NOW + 30).await.as_deref(), Some("vf_a"));
    assert_eq!(
        b.queue.queue_stats(NOW + 30).await.unwrap(),
        QueueStats {
            pending: 2,
            claimed: 1,
            oldest_pending_age_seconds: 20,
        }
    );
    // The lease runs out: the oldest case waits again.
    assert_eq!(
        b.queue.queue_stats(NOW + 30 + LEASE).await.unwrap(),
        QueueStats {
            pending: 3,
            claimed: 0,
            oldest_pending_age_seconds: 30 + LEASE,
        }
    );
}

/// A reviewer's final approval of an anchor case binds the account in the same step that verifies
/// the case; when the ID already holds its allowed accounts, the case ends not verified
/// (`ID_ACCOUNT_LIMIT`) in that step instead, and nothing is bound. A non-final approval binds nothing.
async fn an_approval_binds_the_anchor_account_in_the_same_step(b: Backend) {
    let claim = idgate::store::AnchorClaim {
        index: "bi:r".into(),
        consult: vec!["bi:r".into()],
        max_accounts: 1,
        ttl_seconds: 3_600,
    };
    b.queue_case("vf_a", "acct-1", Purpose::Anchor, NOW).await;
    b.queue_case("vf_b", "acct-2", Purpose::Anchor, NOW + 1).await;
    // Four-eyes: the first approval binds nothing yet.
    assert_eq!(
        b.claim_with("rev-1", NOW + 2, true, false).await.as_deref(),
        Some("vf_a")
    );
    let first = b
        .queue
        .decide("vf_a", "rev-1", ReviewVerdict::Approve, 2, Some(claim.clone()), NOW + 3)
        .await
        .unwrap();
    assert_eq!(first.status, CaseStatus::PendingReview);
    assert!(
        b.store
            .anchor_accounts(&claim.consult, NOW + 3)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        b.claim_with("rev-2", NOW + 4, true, false).await.as_deref(),
        Some("vf_a")
    );
    let verified = b
        .queue
        .decide("vf_a", "rev-2", ReviewVerdict::Approve, 2, Some(claim.clone()), NOW + 5)
        .await
        .unwrap();
    assert_eq!(
        (verified.status, verified.anchor_index.as_deref()),
        (CaseStatus::Verified, Some("bi:r"))
    );
    assert_eq!(
        b.store.anchor_accounts(&claim.consult, NOW + 5).await.unwrap(),
        ["acct-1"]
    );
    // Another account with the same ID: refused by the limit in the deciding step.
    assert_eq!(b.claim("rev-3", NOW + 6).await.as_deref(), Some("vf_b"));
    let refused = b
        .queue
        .decide("vf_b", "rev-3", ReviewVerdict::Approve, 1, Some(claim.clone()), NOW + 7)
        .await
        .unwrap();
    assert_eq!(
        (refused.status, refused.refusal),
        (CaseStatus::NotVerified, Some(CaseRefusal::IdAccountLimit))
    );
    assert!(
        b.store.sealed_pii("vf_b").await.unwrap().is_none(),
        "its data is destroyed"
    );
    assert_eq!(
        b.store.anchor_accounts(&claim.consult, NOW + 7).await.unwrap(),
        ["acct-1"]
    );
}

async fn reviewer_keys_are_bound_to_principals(b: Backend) {
    let q = &b.queue;
    assert_eq!(q.reviewer_key("rev-1").await.unwrap(), None);
    q.register_reviewer_key("rev-1", [1; 32]).await.unwrap();
    q.register_reviewer_key("rev-2", [2; 32]).await.unwrap();
    assert_eq!(q.reviewer_key("rev-1").await.unwrap(), Some([1; 32]));
    q.register_reviewer_key("rev-1", [3; 32]).await.unwrap();
    assert_eq!(q.reviewer_key("rev-1").await.unwrap(), Some([3; 32]), "replaced");
    assert_eq!(q.reviewer_key("rev-2").await.unwrap(), Some([2; 32]));
}

/// How many face keys of `id` the store holds (listed under any KEK).
async fn face_keys(b: &Backend, id: &str) -> usize {
    b.store
        .wrapped_keys_not_under("kek-none", 100)
        .await
        .unwrap()
        .iter()
        .filter(|(case, part, _)| case == id && *part == PiiPart::Face)
        .count()
}

/// The face is needed until the last decision: a first approval of two keeps it (and the next
/// claim hands it out); the decision that ends the case destroys it in the same step as the status.
async fn the_deciding_step_destroys_the_face_with_the_status(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Anchor, NOW).await;
    b.queue_case("vf_b", "acct-1", Purpose::Radio, NOW + 1).await;
    let claim = b
        .queue
        .claim_next("rev-1", NOW + 2, NOW + 2 + LEASE, true, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.case.id, "vf_a");
    assert_eq!(
        claim.pii.face,
        pii(1).face,
        "the face is handed out with the identity material"
    );
    assert_eq!(
        b.decide("vf_a", "rev-1", ReviewVerdict::Approve, 2, NOW + 3).await,
        CaseStatus::PendingReview
    );
    assert_eq!(
        b.store.sealed_pii("vf_a").await.unwrap().and_then(|p| p.face),
        pii(1).face,
        "a first approval alone does not end the need for the face"
    );
    assert_eq!(face_keys(&b, "vf_a").await, 1);
    let claim = b
        .queue
        .claim_next("rev-2", NOW + 4, NOW + 4 + LEASE, true, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claim.case.id.as_str(), claim.pii.face.is_some()), ("vf_a", true));
    let record = b
        .queue
        .decide("vf_a", "rev-2", ReviewVerdict::Approve, 2, None, NOW + 5)
        .await
        .unwrap();
    assert_eq!(record.status, CaseStatus::Verified);
    assert_eq!(face_keys(&b, "vf_a").await, 0, "the face went with the status change");
    assert!(b.store.sealed_pii("vf_a").await.unwrap().is_none());
    // A rejection too.
    assert_eq!(face_keys(&b, "vf_b").await, 1);
    assert_eq!(b.claim("rev-3", NOW + 6).await.as_deref(), Some("vf_b"));
    assert_eq!(
        b.decide("vf_b", "rev-3", ReviewVerdict::Reject, 1, NOW + 7).await,
        CaseStatus::NotVerified
    );
    assert_eq!(face_keys(&b, "vf_b").await, 0);
    assert!(
        b.store
            .wrapped_keys_not_under("kek-none", 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Withdrawal of biometric consent: the account's pending cases lose their faces (and only those)
/// and go on as document-review cases; approvals and a live lease given with the face are void.
async fn withdrawing_biometric_consent_destroys_only_the_faces(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Anchor, NOW).await;
    b.queue_case("vf_b", "acct-2", Purpose::Anchor, NOW + 1).await;
    let processing = CaseRecord::processing(
        "vf_p",
        AccountId::parse("acct-1").unwrap(),
        RequestId::parse("req-vf_p").unwrap(),
        "onboarding-dev",
        Purpose::Anchor,
        "fp",
        NOW,
        NOW + 30,
    );
    b.store.begin(processing, NOW).await.unwrap();
    assert_eq!(
        b.claim_with("rev-1", NOW + 2, true, false).await.as_deref(),
        Some("vf_a")
    );
    assert_eq!(
        b.decide("vf_a", "rev-1", ReviewVerdict::Approve, 2, NOW + 3).await,
        CaseStatus::PendingReview
    );
    assert_eq!(
        b.claim_with("rev-2", NOW + 4, true, false).await.as_deref(),
        Some("vf_a")
    );

    assert_eq!(
        b.store
            .withdraw_biometrics("acct-1", Some("another-client"), NOW + 5)
            .await
            .unwrap(),
        Vec::<String>::new(),
        "only the principal's own cases"
    );
    assert_eq!(
        b.store.withdraw_biometrics("acct-1", None, NOW + 5).await.unwrap(),
        ["vf_a", "vf_p"],
        "the pending case, and the one being processed (marked)"
    );
    let sealed = b
        .store
        .sealed_pii("vf_a")
        .await
        .unwrap()
        .expect("identity material kept");
    assert_eq!(
        (sealed.wrapped_key, sealed.body, sealed.face),
        (pii(1).wrapped_key, pii(1).body, None)
    );
    assert_eq!(face_keys(&b, "vf_a").await, 0);
    let record = b.store.get("vf_a").await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.review_reason),
        (CaseStatus::PendingReview, Some(ReviewReason::DocumentReviewRequested))
    );
    let state = b.queue.review_state("vf_a").await.unwrap().unwrap();
    assert!(state.approvals.is_empty(), "an approval given with the face is void");
    assert!(
        state.lease.is_none(),
        "so is the lease of a reviewer who holds the face"
    );
    assert!(matches!(
        b.queue
            .decide("vf_a", "rev-2", ReviewVerdict::Approve, 2, None, NOW + 6)
            .await,
        Err(ReviewError::LeaseExpired)
    ));
    // Another account's face and a case still processing are not touched.
    assert_eq!(b.store.sealed_pii("vf_b").await.unwrap(), Some(pii(1)));
    assert_eq!(b.status("vf_p").await, CaseStatus::Processing);
    assert_eq!(
        b.store.withdraw_biometrics("acct-1", None, NOW + 6).await.unwrap(),
        Vec::<String>::new(),
        "nothing left to change"
    );
    // The case being processed when consent was withdrawn keeps no face if it goes to review.
    let finish = Finish {
        status: CaseStatus::PendingReview,
        provider: Some("p".into()),
        refusal: None,
        pii: Some((pii(3), NOW + PII_TTL)),
        anchor: None,
        review_reason: Some(ReviewReason::ProviderCannotDecide),
        documents_complete: false,
    };
    let record = b.store.finish("vf_p", finish, NOW + 6).await.unwrap();
    assert_eq!(
        (record.status, record.review_reason),
        (CaseStatus::PendingReview, Some(ReviewReason::DocumentReviewRequested))
    );
    let sealed = b
        .store
        .sealed_pii("vf_p")
        .await
        .unwrap()
        .expect("identity material kept");
    assert_eq!((sealed.wrapped_key, sealed.face), (pii(3).wrapped_key, None));
    assert_eq!(face_keys(&b, "vf_p").await, 0);
    // The case is reviewable on the document path, once its documents are in, and decided from them.
    assert_eq!(
        b.claim_with("rev-4", NOW + 7, true, false).await.as_deref(),
        Some("vf_b"),
        "without a face, the older case waits for its documents"
    );
    let documents = SealedPii { face: None, ..pii(4) };
    assert!(
        b.queue
            .apply_supplement("vf_a", "s-1", &pii(1).wrapped_key, documents, true)
            .await
            .unwrap()
    );
    let claim = b
        .queue
        .claim_next("rev-3", NOW + 7, NOW + 7 + LEASE, true, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.case.id, "vf_a");
    assert_eq!(claim.case.review_reason, Some(ReviewReason::DocumentReviewRequested));
    assert!(claim.pii.face.is_none());
    assert_eq!(
        b.decide("vf_a", "rev-3", ReviewVerdict::Approve, 1, NOW + 8).await,
        CaseStatus::Verified
    );
}

/// A supplement replaces the material reviewers decide from: approvals and a live lease given on the
/// material it replaced are void, so every approval that verifies a case was given on the material
/// the case holds (four-eyes cannot be split across two sets of documents).
async fn a_supplement_voids_the_approvals_and_the_lease_given_before_it(b: Backend) {
    b.queue_case("vf_a", "acct-1", Purpose::Radio, NOW).await;
    assert_eq!(
        b.claim_with("rev-1", NOW + 1, true, false).await.as_deref(),
        Some("vf_a")
    );
    assert_eq!(
        b.decide("vf_a", "rev-1", ReviewVerdict::Approve, 2, NOW + 2).await,
        CaseStatus::PendingReview
    );
    // rev-2 holds a lease on the first material when the supplement arrives.
    assert_eq!(
        b.claim_with("rev-2", NOW + 3, true, false).await.as_deref(),
        Some("vf_a")
    );
    assert!(
        b.queue
            .apply_supplement("vf_a", "s-1", &pii(1).wrapped_key, pii(2), true)
            .await
            .unwrap()
    );
    let state = b.queue.review_state("vf_a").await.unwrap().unwrap();
    assert!(
        state.approvals.is_empty(),
        "the first approval was given on other material"
    );
    assert!(state.lease.is_none(), "the live lease was given on other material");
    assert!(
        b.queue
            .decide("vf_a", "rev-2", ReviewVerdict::Approve, 2, None, NOW + 4)
            .await
            .is_err(),
        "a decision under the voided lease is refused"
    );
    assert_eq!(b.status("vf_a").await, CaseStatus::PendingReview);
    // Two approvals on the supplemented material verify it, the first reviewer's again among them.
    let claim = b
        .queue
        .claim_next("rev-1", NOW + 5, NOW + 5 + LEASE, true, false)
        .await
        .unwrap()
        .expect("the case is back in the queue for every reviewer");
    assert_eq!(
        (claim.case.id.as_str(), claim.pii.wrapped_key.clone()),
        ("vf_a", pii(2).wrapped_key),
        "the reviewer sees the supplemented material"
    );
    assert_eq!(
        b.decide("vf_a", "rev-1", ReviewVerdict::Approve, 2, NOW + 6).await,
        CaseStatus::PendingReview,
        "one approval on this material"
    );
    assert_eq!(
        b.claim_with("rev-2", NOW + 7, true, false).await.as_deref(),
        Some("vf_a")
    );
    assert_eq!(
        b.decide("vf_a", "rev-2", ReviewVerdict::Approve, 2, NOW + 8).await,
        CaseStatus::Verified
    );
}

on_every_backend!(
    adapt Backend::of;
    a_supplement_voids_the_approvals_and_the_lease_given_before_it,
    the_deciding_step_destroys_the_face_with_the_status,
    withdrawing_biometric_consent_destroys_only_the_faces,
    oldest_first,
    a_case_is_claimed_exactly_once_under_contention,
    an_expired_lease_returns_the_case,
    decisions_need_the_callers_live_lease,
    four_eyes_needs_two_different_reviewers,
    a_case_not_ready_for_one_reviewer_stays_available_to_others,
    a_rejection_ends_the_case_at_once,
    a_release_returns_the_case_at_once,
    anchors_wait_for_their_supplement,
    documents_sealed_in_the_request_need_no_supplement,
    document_review_always_waits_for_its_documents,
    without_gating_an_anchor_is_ready_at_once,
    retention_while_claimed_ends_the_case,
    erasure_while_claimed_ends_the_case,
    an_approval_destroys_the_data,
    queue_stats_count_held_and_waiting_cases,
    reviewer_keys_are_bound_to_principals,
    an_approval_binds_the_anchor_account_in_the_same_step,
);
