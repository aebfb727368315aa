//! Retention: pending cases whose data is due are expired (their sealed data destroyed) and case
//! records older than the record lifetime are forgotten; each pass that expired something is audited
//! with a count.
//!
//! Safe to run on every gateway at once (the store's sweep is idempotent). It must never keep
//! personal data past its deadline, nor record any in the audit trail. Knows no gRPC, protobuf or Redis.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditTrail;
use crate::clock::Clock;
use crate::domain::GATEWAY_ACTOR;
use crate::store::{AuditAction, Store, StoreError};

/// The retention use case.
pub struct Retention {
    store: Arc<dyn Store>,
    audit: AuditTrail,
    clock: Arc<dyn Clock>,
    /// How long a case record (no personal data) is kept (`retention.case_record_ttl_seconds`).
    record_ttl: Duration,
}

impl Retention {
    pub fn new(store: Arc<dyn Store>, audit: AuditTrail, clock: Arc<dyn Clock>, record_ttl: Duration) -> Self {
        Self {
            store,
            audit,
            clock,
            record_ttl,
        }
    }

    /// Expires pending cases whose data is due, forgets old records, audits the count. Returns how
    /// many cases expired.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let now = self.clock.now_unix();
        let expired = self.store.sweep(now, now - self.record_ttl.as_secs() as i64).await?;
        if expired > 0 {
            self.audit
                .record(
                    GATEWAY_ACTOR,
                    AuditAction::RetentionExpired,
                    None,
                    format!("count={expired}"),
                )
                .await?;
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::Purpose;
    use crate::providers::Outcome;
    use crate::store::CaseStatus;
    use crate::verify::test_support::*;

    #[tokio::test]
    async fn a_pending_case_past_retention_reads_as_expired_before_the_sweep() {
        let clock = ManualClock::new(NOW);
        let (v, _) = verifier(&[fake("p", Ok(Outcome::CannotDecide))], &clock);
        let pending = v.verify(command("r-1", Purpose::Anchor)).await.unwrap();
        clock.advance(3_600);
        assert_eq!(
            v.get("onboarding-dev", &parsed(&pending.verification_id))
                .await
                .unwrap()
                .status,
            CaseStatus::Expired
        );
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let retention = Retention::new(
            v.store().clone(),
            audit_trail(v.store().clone(), clock.clone()),
            clock,
            Duration::from_secs(86_400),
        );
        assert_eq!(retention.sweep().await.unwrap(), 1);
        let audit = v.store().audit_events(None, 10).await.unwrap();
        assert!(
            audit
                .iter()
                .any(|(_, e)| e.action == AuditAction::RetentionExpired && e.actor == GATEWAY_ACTOR)
        );
    }
}
