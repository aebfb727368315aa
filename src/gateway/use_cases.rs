//! The use-cases step: every use case of a gateway, built from configuration over one store, one set
//! of live keys and one clock, all recording to one audit trail; and what the gRPC services share.
//!
//! It must never hold a rule of its own: settings are read from configuration and handed over as
//! they are (what they mean is the use cases' and the decision policy's business).

use std::sync::Arc;

use super::keys::Keys;
use crate::audit::AuditTrail;
use crate::clock::Clock;
use crate::config::Config;
use crate::consent::ConsentWithdrawal;
use crate::decision::Limits;
use crate::erasure::Erasure;
use crate::key_rotation::KeyRotation;
use crate::metrics::Instruments;
use crate::providers::router::{Route, Router};
use crate::retention::Retention;
use crate::review::{ReviewDesk, ReviewSettings};
use crate::store::setup::Stores;
use crate::supplements::Supplements;
use crate::transport::revocation::Revocation;
use crate::transport::services::App;
use crate::verify::{Verifier, VerifySettings};

/// Every use case of one gateway.
pub(super) struct UseCases {
    pub(super) verifier: Arc<Verifier>,
    pub(super) review: Arc<ReviewDesk>,
    pub(super) supplements: Arc<Supplements>,
    pub(super) erasure: Arc<Erasure>,
    pub(super) consent: Arc<ConsentWithdrawal>,
    pub(super) audit: AuditTrail,
    /// Run in the background, not by any RPC.
    pub(super) retention: Arc<Retention>,
    pub(super) key_rotation: Arc<KeyRotation>,
}

/// Builds every use case from `config`; the verifier calls `routes`, in order.
pub(super) fn assemble(
    config: &Config,
    keys: &Keys,
    stores: &Stores,
    routes: Vec<Route>,
    clock: &Arc<dyn Clock>,
) -> UseCases {
    let Stores { store, queue } = stores;
    let limits = Limits {
        per_account_per_hour: config.limits.verifications_per_account_per_hour,
        per_id_per_day: config.limits.verifications_per_id_per_day,
        max_anchor_accounts_per_id: config.limits.max_anchor_accounts_per_id,
        anchor_binding_ttl: config.limits.anchor_binding_ttl_seconds,
    };
    let audit = AuditTrail::new(store.clone(), clock.clone(), config.retention.audit_ttl_seconds);
    let verify_settings = VerifySettings {
        thresholds: config.decision,
        pending_review_ttl: config.retention.pending_review_ttl_seconds,
        // Long enough that a live gateway is never overtaken by one retrying the same request.
        processing_lease: config.server.verify_deadline_ms.max(config.server.call_deadline_ms) * 3,
        limits,
    };
    let review_settings = ReviewSettings {
        lease: config.review.lease_seconds,
        approvals_required: config.review.approvals_required,
        anchor_needs_supplement: config.review.anchor_requires_supplement,
        anchor_limits: limits,
    };
    let router = Router::new(routes)
        .with_reserve(config.server.decide_reserve_ms)
        .with_min_budget(config.server.min_provider_budget_ms);
    let keks = &keys.keks;
    let erasure = Arc::new(Erasure::new(store.clone(), audit.clone(), clock.clone()));
    UseCases {
        verifier: Arc::new(Verifier::new(
            store.clone(),
            router,
            keks.clone(),
            keys.indexer.clone(),
            audit.clone(),
            clock.clone(),
            verify_settings,
        )),
        review: Arc::new(ReviewDesk::new(
            queue.clone(),
            store.clone(),
            keks.clone(),
            keys.indexer.clone(),
            audit.clone(),
            clock.clone(),
            review_settings,
        )),
        supplements: Arc::new(Supplements::new(
            queue.clone(),
            store.clone(),
            keks.clone(),
            audit.clone(),
            clock.clone(),
        )),
        consent: Arc::new(ConsentWithdrawal::new(
            store.clone(),
            erasure.clone(),
            audit.clone(),
            clock.clone(),
        )),
        erasure,
        retention: Arc::new(Retention::new(
            store.clone(),
            audit.clone(),
            clock.clone(),
            config.retention.case_record_ttl_seconds,
        )),
        key_rotation: Arc::new(KeyRotation::new(store.clone(), keks.clone(), audit.clone())),
        audit,
    }
}

impl UseCases {
    /// What the gRPC services share: the use cases they call, the sealing keys, deadlines, metrics.
    pub(super) fn app(
        &self,
        config: &Config,
        keys: &Keys,
        clock: &Arc<dyn Clock>,
        instruments: &Instruments,
        revocation: Revocation,
    ) -> App {
        App {
            verifier: self.verifier.clone(),
            review: self.review.clone(),
            supplements: self.supplements.clone(),
            erasure: self.erasure.clone(),
            consent: self.consent.clone(),
            audit: self.audit.clone(),
            sealing: keys.sealing.clone(),
            clock: clock.clone(),
            verify_deadline: config.server.verify_deadline_ms,
            call_deadline: config.server.call_deadline_ms,
            instruments: instruments.clone(),
            revocation,
        }
    }
}
