//! Cases, sealed data and anchor claims shared by the storage suites (the review suite has its own:
//! its clock and its material differ).

use std::sync::Arc;

use idgate::domain::{AccountId, Purpose, RequestId};
use idgate::store::{AnchorClaim, CaseRecord, CaseStatus, CaseStore, Finish, SealedPii};

use crate::support;

pub const NOW: i64 = 1_795_000_000;

/// A new `Processing` case of `acct-1`, leased for 30 s.
pub fn record(id: &str, request_id: &str) -> CaseRecord {
    CaseRecord::processing(
        id,
        AccountId::parse("acct-1").unwrap(),
        RequestId::parse(request_id).unwrap(),
        "onboarding-dev",
        Purpose::Anchor,
        "bk-1:fp",
        NOW,
        NOW + 30,
    )
}

pub fn pii() -> SealedPii {
    support::sealed_pii()
}

/// Ends the provider phase with `status`; with `with_pii`, hands over sealed data due at `NOW + 100`.
pub fn finish(status: CaseStatus, with_pii: bool) -> Finish {
    Finish {
        status,
        provider: Some("p".into()),
        refusal: None,
        pii: with_pii.then(|| (pii(), NOW + 100)),
        anchor: None,
        review_reason: None,
        documents_complete: false,
    }
}

pub fn claim(index: &str, consult: &[&str], max: u32) -> AnchorClaim {
    AnchorClaim {
        index: index.into(),
        consult: consult.iter().map(|c| (*c).to_owned()).collect(),
        max_accounts: max,
        ttl_seconds: 3_600,
    }
}

/// Begins a case of `account` and finishes it verified under `claim`; returns the record.
pub async fn verify_anchor<S: CaseStore + ?Sized>(
    store: &Arc<S>,
    id: &str,
    account: &str,
    claim: AnchorClaim,
) -> CaseRecord {
    let mut r = record(id, &format!("r-{id}"));
    r.account_id = AccountId::parse(account).unwrap();
    store.begin(r, NOW).await.unwrap();
    let finish = Finish {
        status: CaseStatus::Verified,
        anchor: Some(claim),
        ..Finish::default()
    };
    store.finish(id, finish, NOW + 1).await.unwrap()
}
