//! The storage conformance suites: every backend must pass the same tests. One suite per storage
//! interface, in `conformance/<interface>.rs` (`cases`, `retention`, `audit`, `limits`, `keys`,
//! `review`), each written against the narrowest interface it can (`Arc<dyn CaseStore>`, or a store
//! generic over the few interfaces one test needs), so that each backend only supplies a
//! constructor: embedded, Redis standalone, Redis Cluster and a locked-down Redis (TLS, ACL user
//! limited to its own keys and the commands the gateway needs) — real `redis-server` processes from
//! `support::redis`, one of each for this binary, each test under its own key prefix.
//!
//! One test binary for every suite: each binary costs a link and its disk space, and a Redis
//! Cluster to start.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::future::Future;
use std::time::Duration;

use idgate::store::{ReviewQueue, Store};

/// What every backend implements: each storage interface and the review queue. A suite's test
/// takes what this coerces to (`Arc<dyn CaseStore>`, `Arc<S>` with `S: CaseStore + LimitStore`, …).
trait FullStore: Store + ReviewQueue {}

impl<T: Store + ReviewQueue + ?Sized> FullStore for T {}

/// The backends, each a fresh store per test. `None` only when the Redis tests are explicitly
/// skipped (see `support::redis`).
mod backends {
    use std::sync::Arc;

    use idgate::store::memory::MemoryStore;

    use super::{FullStore, support};

    pub async fn embedded() -> Option<Arc<dyn FullStore>> {
        Some(Arc::new(MemoryStore::new()))
    }

    pub async fn redis_standalone() -> Option<Arc<dyn FullStore>> {
        Some(Arc::new(support::redis::standalone_redis().await?))
    }

    pub async fn redis_cluster() -> Option<Arc<dyn FullStore>> {
        Some(Arc::new(support::redis::cluster_redis().await?))
    }

    /// TLS with a client certificate, the `default` user off, and a gateway ACL user that may
    /// touch only its own `<prefix>:*` keys with `support::redis::GATEWAY_COMMANDS`: the suites
    /// passing here prove the gateway needs no more than that.
    pub async fn redis_locked_down() -> Option<Arc<dyn FullStore>> {
        Some(Arc::new(support::redis::locked_down_redis().await?))
    }
}

/// Bound of every test (Redis watchers poll; a hang must fail, not stall the run).
const TEST_BOUND: Duration = Duration::from_secs(60);

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the test finished within its bound");
}

/// Runs each listed test of a suite on every backend: it declares, in the suite's module, the
/// modules `embedded`, `redis_standalone`, `redis_cluster` and `redis_locked_down` (the four
/// constructors of `backends`), each with one `#[tokio::test]` per listed function, bounded by
/// [`TEST_BOUND`]. A test function takes the backend's store, coerced
/// to the interface it is written against; with `adapt f;` first, it takes `f(store)` instead (`f` a
/// path in the suite's module).
macro_rules! on_every_backend {
    (adapt $($adapt:ident)::+; $($test:ident),* $(,)?) => {
        on_every_backend!(@each [super::$($adapt)::+] $($test),*);
    };
    ($($test:ident),* $(,)?) => {
        on_every_backend!(@each [std::convert::identity] $($test),*);
    };
    (@each [$adapt:path] $($test:ident),*) => {
        on_every_backend!(@one embedded [$adapt] $($test),*);
        on_every_backend!(@one redis_standalone [$adapt] $($test),*);
        on_every_backend!(@one redis_cluster [$adapt] $($test),*);
        on_every_backend!(@one redis_locked_down [$adapt] $($test),*);
    };
    (@one $backend:ident [$adapt:path] $($test:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(store) = crate::backends::$backend().await {
                        crate::bounded(super::$test($adapt(store))).await
                    }
                }
            )*
        }
    };
}

/// The suites, one file per storage interface under `conformance/`.
mod conformance {
    mod audit;
    mod cases;
    mod fixtures;
    mod keys;
    mod limits;
    mod retention;
    mod review;
}
