//! Test fixtures of the use cases built on a [`Verifier`]: fake providers that count their calls
//! (and can be held), a verifier over a given store with a fixed blind-index key, and a valid command.
//! Test-only; the fixed keys here must never reach production code.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{Verifier, VerifyCommand, VerifySettings};
use crate::audit::AuditTrail;
use crate::clock::{Clock, ManualClock};
use crate::crypto::SecretKey32;
use crate::crypto::blind_index::BlindIndexer;
use crate::crypto::envelope::{Kek, KekRing};
use crate::decision::{Limits, Thresholds};
use crate::domain::{AccountId, IdentityFields, Purpose, RequestId, VerificationId, test_support};
use crate::providers::router::{Route, Router};
use crate::providers::{CheckFuture, Outcome, Provider, ProviderError, ProviderRequest};
use crate::store::Store;
use crate::store::memory::MemoryStore;

/// The typed id of a case a verifier made (`Answer::verification_id`).
pub(crate) fn parsed(id: &str) -> VerificationId {
    VerificationId::parse(id).expect("an id the gateway handed out")
}

/// A provider that counts its calls, answers a fixed result, and can be held until released.
pub(crate) struct Fake {
    name: &'static str,
    answer: Result<Outcome, ProviderError>,
    /// How often `check` was called.
    pub(crate) calls: AtomicUsize,
    /// How many of those calls carried a face image.
    pub(crate) faces: AtomicUsize,
    gate: Option<Arc<Semaphore>>,
}

impl Provider for Fake {
    fn name(&self) -> &str {
        self.name
    }
    fn check<'a>(&'a self, request: &'a ProviderRequest<'a>) -> CheckFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if request.face_image.is_some() {
                self.faces.fetch_add(1, Ordering::SeqCst);
            }
            if let Some(gate) = &self.gate {
                let _ = gate.acquire().await.map(|p| p.forget());
            }
            self.answer.clone()
        })
    }
}

pub(crate) fn fake(name: &'static str, answer: Result<Outcome, ProviderError>) -> Arc<Fake> {
    Arc::new(Fake {
        name,
        answer,
        calls: AtomicUsize::new(0),
        faces: AtomicUsize::new(0),
        gate: None,
    })
}

/// A provider that answers `answer` only once the returned gate gets a permit.
pub(crate) fn held(answer: Outcome) -> (Arc<Fake>, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    let p = Arc::new(Fake {
        name: "slow",
        answer: Ok(answer),
        calls: AtomicUsize::new(0),
        faces: AtomicUsize::new(0),
        gate: Some(gate.clone()),
    });
    (p, gate)
}

/// The tests' "now" (after the consent time the commands carry).
pub(crate) const NOW: i64 = 1_795_000_000;

pub(crate) fn settings(pending_review_ttl: Duration) -> VerifySettings {
    VerifySettings {
        thresholds: Thresholds::default(),
        pending_review_ttl,
        processing_lease: Duration::from_secs(30),
        limits: Limits::default(),
    }
}

/// A KEK ring of one fresh, undated key (`kek-1`), as the use-case tests seal with.
pub(crate) fn test_keks() -> Arc<KekRing> {
    Arc::new(
        KekRing::new(vec![Kek {
            id: "kek-1".into(),
            created_at_unix: 1,
            key: SecretKey32::random().unwrap(),
        }])
        .unwrap(),
    )
}

pub(crate) fn verifier_on(
    store: Arc<dyn Store>,
    providers: &[Arc<Fake>],
    clock: &ManualClock,
    settings: VerifySettings,
) -> (Verifier, Arc<KekRing>) {
    let routes = providers
        .iter()
        .map(|p| Route::new(p.clone() as Arc<dyn Provider>, Duration::from_secs(5), 64))
        .collect();
    let keks = test_keks();
    let indexer = Arc::new(indexer());
    let clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let audit = audit_trail(store.clone(), clock.clone());
    (
        Verifier::new(
            store,
            Router::new(routes),
            keks.clone(),
            indexer,
            audit,
            clock,
            settings,
        ),
        keks,
    )
}

/// The tests' blind-index key (fixed, so that a fingerprint made outside a verifier matches).
pub(crate) fn indexer() -> BlindIndexer {
    BlindIndexer::new("bk-1".into(), &SecretKey32::from_bytes([5; 32]))
}

/// An audit trail over `store` that keeps events for a year.
pub(crate) fn audit_trail(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> AuditTrail {
    AuditTrail::new(store, clock, Duration::from_secs(365 * 86_400))
}

pub(crate) fn verifier(providers: &[Arc<Fake>], clock: &ManualClock) -> (Verifier, Arc<KekRing>) {
    verifier_on(
        Arc::new(MemoryStore::new()),
        providers,
        clock,
        settings(Duration::from_secs(3_600)),
    )
}

pub(crate) fn command(request_id: &str, purpose: Purpose) -> VerifyCommand {
    let mut fields = IdentityFields::default();
    fields.name = "王小明".into();
    fields.id_number = test_support::id_number("110105", "19900307", "123");
    fields.phone = "13800138000".into();
    fields.face_image = test_support::png(320, 240);
    VerifyCommand {
        principal: "onboarding-dev".into(),
        account_id: AccountId::parse("acct-1").unwrap(),
        request_id: RequestId::parse(request_id).unwrap(),
        purpose,
        consent_policy_version: "2026-01".into(),
        consent_granted_at_unix: NOW - 10,
        biometric_policy_version: "face-2026-01".into(),
        biometric_granted_at_unix: NOW - 10,
        document_review: false,
        fields,
        deadline: Instant::now() + Duration::from_secs(10),
    }
}
