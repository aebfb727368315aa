//! The Redis review queue seen from inside Redis: the stream and its consumer group follow the cases
//! (an entry per queued case, owned by the reviewer holding it, gone when the case ends), and the
//! repairs for a gateway that died half-way (a case without an entry, an entry twice) hold.
//!
//! The behaviour every backend shares is in `conformance/review.rs`; this file checks what only the
//! Redis layout can get wrong. Each test starts its own `redis-server`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use idgate::crypto::envelope::{Body, WrappedKey};
use idgate::domain::{AccountId, Purpose, RequestId};
use idgate::store::redis::RedisStore;
use idgate::store::{CaseRecord, CaseStatus, CaseStore, Finish, RetentionStore, ReviewQueue, ReviewVerdict, SealedPii};
use redis::aio::MultiplexedConnection;
use support::redis::{RedisServer, redis_tests_enabled, test_options};

/// In the past of any machine running this (see `conformance/review.rs`).
const NOW: i64 = 1_700_000_000;
const LEASE: i64 = 60;

struct Fixture {
    store: RedisStore,
    con: MultiplexedConnection,
    prefix: String,
    _server: RedisServer,
}

impl Fixture {
    async fn start() -> Option<Self> {
        if !redis_tests_enabled() {
            return None;
        }
        let server = RedisServer::start().await;
        let options = test_options();
        let prefix = options.key_prefix.clone();
        let store = RedisStore::standalone(&server.url(), options).await.unwrap();
        let con = redis::Client::open(server.url().as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        Some(Self {
            store,
            con,
            prefix,
            _server: server,
        })
    }

    fn queue_key(&self) -> String {
        format!("{}:review:queue", self.prefix)
    }

    fn review_key(&self, id: &str) -> String {
        format!("{}:{{{id}}}:review", self.prefix)
    }

    async fn queue_case(&self, id: &str, account: &str, at: i64) {
        let record = CaseRecord::processing(
            id,
            AccountId::parse(account).unwrap(),
            RequestId::parse(&format!("req-{id}")).unwrap(),
            "onboarding-dev",
            Purpose::Radio,
            "fp",
            at,
            at + 30,
        );
        self.store.begin(record, at).await.unwrap();
        let pii = SealedPii {
            wrapped_key: WrappedKey {
                kek_id: "kek-1".into(),
                bytes: vec![7; 72],
            },
            body: Body {
                version: 1,
                commitment: [1; 32],
                nonce: [2; 24],
                ciphertext: vec![3; 64],
            },
            face: None,
        };
        let finish = Finish {
            status: CaseStatus::PendingReview,
            provider: None,
            refusal: None,
            pii: Some((pii, at + 3_600)),
            anchor: None,
            review_reason: None,
        };
        self.store.finish(id, finish, at).await.unwrap();
    }

    async fn claim(&self, reviewer: &str, now: i64) -> Option<String> {
        self.store
            .claim_next(reviewer, now, now + LEASE, false, false)
            .await
            .unwrap()
            .map(|c| c.case.id)
    }

    /// The queue stream's entries as (entry id, case id).
    async fn entries(&self) -> Vec<(String, String)> {
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(self.queue_key())
            .arg("-")
            .arg("+")
            .query_async(&mut self.con.clone())
            .await
            .unwrap();
        entries
            .into_iter()
            .map(|(id, fields)| (id, fields[1].clone()))
            .collect()
    }

    /// The consumer that owns an entry in the group's pending list, if it is pending.
    async fn owner(&self, entry: &str) -> Option<String> {
        let pending: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
            .arg(self.queue_key())
            .arg("reviewers")
            .arg(entry)
            .arg(entry)
            .arg(1)
            .query_async(&mut self.con.clone())
            .await
            .unwrap();
        pending.into_iter().next().map(|(_, owner, _, _)| owner)
    }

    async fn exists(&self, key: &str) -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query_async::<i64>(&mut self.con.clone())
            .await
            .unwrap()
            == 1
    }
}

#[tokio::test]
async fn the_stream_follows_the_cases() {
    let Some(f) = Fixture::start().await else { return };
    f.queue_case("vf_a", "acct-1", NOW).await;
    f.queue_case("vf_b", "acct-2", NOW + 1).await;
    f.queue_case("vf_c", "acct-1", NOW + 2).await;
    let entries = f.entries().await;
    let cases: Vec<&str> = entries.iter().map(|(_, case)| case.as_str()).collect();
    assert_eq!(
        cases,
        ["vf_a", "vf_b", "vf_c"],
        "one entry per queued case, in arrival order"
    );
    let entry_a = entries[0].0.clone();
    assert!(f.exists(&f.review_key("vf_a")).await);

    // The group's pending list says who holds a case; a released case is parked for everyone.
    assert_eq!(f.claim("rev-1", NOW + 3).await.as_deref(), Some("vf_a"));
    assert_eq!(f.owner(&entry_a).await.as_deref(), Some("rev-1"));
    f.store.release("vf_a", "rev-1", NOW + 4).await.unwrap();
    assert_eq!(f.owner(&entry_a).await.as_deref(), Some("idgate unassigned"));

    // A decision ends the case and takes its entry and review hash with it.
    assert_eq!(f.claim("rev-2", NOW + 5).await.as_deref(), Some("vf_a"));
    f.store
        .decide("vf_a", "rev-2", ReviewVerdict::Reject, 1, None, NOW + 6)
        .await
        .unwrap();
    assert!(!f.exists(&f.review_key("vf_a")).await);
    assert_eq!(f.owner(&entry_a).await, None);
    assert_eq!(f.entries().await.len(), 2);

    // Erasure drops the review hash at once; the entry goes with the next claim that meets it.
    assert_eq!(f.store.erase_account("acct-1", None, NOW + 7).await.unwrap(), ["vf_c"]);
    assert!(!f.exists(&f.review_key("vf_c")).await);
    assert_eq!(f.claim("rev-3", NOW + 8).await.as_deref(), Some("vf_b"));
    assert_eq!(f.claim("rev-4", NOW + 8).await, None);
    let left: Vec<String> = f.entries().await.into_iter().map(|(_, case)| case).collect();
    assert_eq!(left, ["vf_b"], "only the held case is left in the stream");
}

#[tokio::test]
async fn a_case_whose_entry_was_never_added_is_requeued_by_the_sweep() {
    let Some(f) = Fixture::start().await else { return };
    f.queue_case("vf_a", "acct-1", NOW).await;
    // As if the gateway died between the case script and XADD.
    let (entry, _) = f.entries().await.remove(0);
    let mut con = f.con.clone();
    let _: i64 = redis::cmd("XDEL")
        .arg(f.queue_key())
        .arg(&entry)
        .query_async(&mut con)
        .await
        .unwrap();
    let _: i64 = redis::cmd("HDEL")
        .arg(f.review_key("vf_a"))
        .arg("entry")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(f.claim("rev-1", NOW + 1).await, None, "not in the queue");
    f.store.sweep(NOW + 10, 0).await.unwrap();
    assert!(
        f.entries().await.is_empty(),
        "a case just queued is left to its own finish"
    );
    f.store.sweep(NOW + 120, 0).await.unwrap();
    assert_eq!(f.entries().await.len(), 1, "re-queued");
    f.store.sweep(NOW + 180, 0).await.unwrap();
    assert_eq!(f.entries().await.len(), 1, "once");
    assert_eq!(f.claim("rev-1", NOW + 200).await.as_deref(), Some("vf_a"));
    let state = f.store.review_state("vf_a").await.unwrap().unwrap();
    assert_eq!(state.queued_at_unix, NOW, "its place in time is kept");
}

#[tokio::test]
async fn a_second_entry_of_a_case_is_dropped() {
    let Some(f) = Fixture::start().await else { return };
    f.queue_case("vf_a", "acct-1", NOW).await;
    let _: String = redis::cmd("XADD")
        .arg(f.queue_key())
        .arg("*")
        .arg("case")
        .arg("vf_a")
        .query_async(&mut f.con.clone())
        .await
        .unwrap();
    assert_eq!(f.store.queue_stats(NOW).await.unwrap().pending, 1, "counted once");
    assert_eq!(f.claim("rev-1", NOW + 1).await.as_deref(), Some("vf_a"));
    assert_eq!(f.claim("rev-2", NOW + 1).await, None, "not handed out twice");
    assert_eq!(f.entries().await.len(), 1, "the duplicate is gone");
}
