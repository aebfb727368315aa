//! Cases, sealed data and anchor claims shared by the storage suites (the review suite has its own:
//! its clock and its material differ).

use std::future::Future;
use std::sync::{Arc, Mutex};

use idgate::domain::{AccountId, Purpose, RequestId};
use idgate::store::redis::RedisStore;
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

/// `store` with a step hook that, the first time the store reaches step `at` (see
/// `RedisStore::with_step_hook`), runs `rival` to its end right there: the hooked call waits at that
/// step meanwhile, as if it were that slow. Needs the multi-threaded runtime (the conformance tests
/// run on it).
pub fn paused_at<F, Fut>(store: &RedisStore, at: &'static str, rival: F) -> RedisStore
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let rival = Mutex::new(Some(rival));
    store.with_step_hook(Arc::new(move |step| {
        if step != at {
            return;
        }
        let Some(rival) = rival.lock().unwrap().take() else {
            return;
        };
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(rival()));
    }))
}

/// Runs each listed test on the Redis backends only (standalone, Cluster, locked-down): tests that
/// need the Redis store itself (its step hook) to interleave two calls at a given step. Each test
/// function takes the [`RedisStore`].
macro_rules! on_every_redis {
    ($($test:ident),* $(,)?) => {
        /// Redis only: the tests that pause a call at a step of the Redis store.
        mod paused {
            super::on_every_redis!(@one redis_standalone standalone_redis $($test),*);
            super::on_every_redis!(@one redis_cluster cluster_redis $($test),*);
            super::on_every_redis!(@one redis_locked_down locked_down_redis $($test),*);
        }
    };
    (@one $backend:ident $connect:ident $($test:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(store) = crate::support::redis::$connect().await {
                        crate::bounded(super::super::$test(store)).await
                    }
                }
            )*
        }
    };
}
pub(crate) use on_every_redis;
