//! The Redis review queue seen from inside Redis: the stream and its consumer group follow the cases
//! (an entry per queued case, owned by the reviewer holding it, gone when the case ends), and the
//! repairs for a gateway that died half-way (a case without an entry, an entry twice) hold.
//!
//! The behaviour every backend shares is in `conformance/review.rs`; this file checks what only the
//! Redis layout can get wrong (and that a record written before faces were kept apart is still
//! reviewed, here and on the embedded store). Each Redis test starts its own `redis-server`.
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
            documents_complete: false,
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

/// A record written by the version before faces were kept apart: one envelope (field `identity`)
/// holding everything, face included, and no face values. The review use case still opens it, hands
/// the reviewer the face with the rest, and decides it — on the embedded store and on Redis.
async fn a_record_written_as_one_envelope_is_still_reviewed(store: std::sync::Arc<dyn FullStoreForOldShape>) {
    use idgate::audit::AuditTrail;
    use idgate::clock::ManualClock;
    use idgate::crypto::SecretKey32;
    use idgate::crypto::blind_index::BlindIndexer;
    use idgate::crypto::envelope::{Kek, KekRing};
    use idgate::crypto::sealing::{Context, OpeningKey};
    use idgate::domain::{IdentityFields, VerificationId};
    use idgate::review::{ReasonCode, ReviewDesk, ReviewSettings};
    use std::sync::Arc;

    let keks = Arc::new(
        KekRing::new(vec![Kek {
            id: "kek-1".into(),
            created_at_unix: 1,
            key: SecretKey32::random().unwrap(),
        }])
        .unwrap(),
    );
    let id = idgate::crypto::random::id("vf_").unwrap();
    let mut fields = IdentityFields::default();
    fields.name = "张三丰".into();
    fields.id_number = "11010519491231002X".into();
    fields.phone = "13800138000".into();
    fields.face_image = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];
    // Exactly what the previous version stored: the whole payload under one data key.
    let (wrapped_key, body) = keks
        .seal(
            &id,
            idgate::material::PII_FIELD_IDENTITY,
            &idgate::material::encode_fields(&fields),
        )
        .unwrap();
    let record = CaseRecord::processing(
        id.as_str(),
        AccountId::parse("acct-old").unwrap(),
        RequestId::parse("req-old").unwrap(),
        "onboarding-dev",
        Purpose::Radio,
        "fp",
        NOW,
        NOW + 30,
    );
    store.begin(record, NOW).await.unwrap();
    let finish = Finish {
        status: CaseStatus::PendingReview,
        pii: Some((
            SealedPii {
                wrapped_key,
                body,
                face: None,
            },
            NOW + 3_600,
        )),
        ..Finish::default()
    };
    store.finish(&id, finish, NOW).await.unwrap();

    let clock = Arc::new(ManualClock::new(NOW + 1));
    let audit = AuditTrail::new(
        store.clone().as_store(),
        clock.clone(),
        std::time::Duration::from_secs(86_400),
    );
    let review = ReviewDesk::new(
        store.clone().as_queue(),
        store.clone().as_store(),
        keks,
        Arc::new(BlindIndexer::new("bk".into(), &SecretKey32::random().unwrap())),
        audit,
        clock,
        ReviewSettings {
            lease: std::time::Duration::from_secs(LEASE as u64),
            approvals_required: 1,
            anchor_needs_supplement: false,
            anchor_limits: idgate::decision::Limits::default(),
        },
    );
    let key = OpeningKey::generate().unwrap();
    review.register_key("rev-1", key.public_key()).await.unwrap();
    let claimed = review
        .claim_next("rev-1")
        .await
        .unwrap()
        .expect("the old record is offered");
    assert_eq!(claimed.case_id, id);
    let plain = key
        .open(
            &Context::review(&id, "rev-1"),
            &claimed.sealed.enc,
            &claimed.sealed.ciphertext,
        )
        .unwrap();
    let seen = idgate::material::decode(&plain).unwrap();
    assert_eq!(
        (seen.name.as_str(), seen.face_image.as_slice()),
        (fields.name.as_str(), fields.face_image.as_slice())
    );
    let status = review
        .decide(
            "rev-1",
            &VerificationId::parse(&id).unwrap(),
            ReviewVerdict::Approve,
            &ReasonCode::parse("DOCS_MATCH").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(status, CaseStatus::Verified);
    assert!(store.sealed_pii(&id).await.unwrap().is_none(), "shredded as before");
}

/// A store seen as both interfaces the review use case takes.
trait FullStoreForOldShape: idgate::store::Store + ReviewQueue {
    fn as_store(self: std::sync::Arc<Self>) -> std::sync::Arc<dyn idgate::store::Store>;
    fn as_queue(self: std::sync::Arc<Self>) -> std::sync::Arc<dyn ReviewQueue>;
}

impl<T: idgate::store::Store + ReviewQueue> FullStoreForOldShape for T {
    fn as_store(self: std::sync::Arc<Self>) -> std::sync::Arc<dyn idgate::store::Store> {
        self
    }
    fn as_queue(self: std::sync::Arc<Self>) -> std::sync::Arc<dyn ReviewQueue> {
        self
    }
}

#[tokio::test]
async fn a_record_written_as_one_envelope_is_still_reviewed_embedded() {
    a_record_written_as_one_envelope_is_still_reviewed(std::sync::Arc::new(idgate::store::memory::MemoryStore::new()))
        .await;
}

#[tokio::test]
async fn a_record_written_as_one_envelope_is_still_reviewed_on_redis() {
    let Some(fixture) = Fixture::start().await else { return };
    a_record_written_as_one_envelope_is_still_reviewed(std::sync::Arc::new(fixture.store.clone())).await;
}
