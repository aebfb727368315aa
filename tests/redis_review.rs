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
use idgate::domain::{AccountId, Purpose, RequestId, ReviewReason};
use idgate::store::redis::RedisStore;
use idgate::store::{
    AnchorClaim, CaseRecord, CaseStatus, CaseStore, Finish, RetentionStore, ReviewQueue, ReviewVerdict, SealedPii,
};
use redis::aio::MultiplexedConnection;
use support::redis::{RedisServer, redis_tests_enabled, test_options};

/// In the past of any machine running this (see `conformance/review.rs`).
const NOW: i64 = 1_700_000_000;
const LEASE: i64 = 60;

struct Fixture {
    store: RedisStore,
    con: MultiplexedConnection,
    prefix: String,
    url: String,
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
            url: server.url(),
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
        self.queue_case_of(id, account, Purpose::Radio, at).await
    }

    /// A case being processed (created at `at`).
    async fn begin_case(&self, id: &str, account: &str, purpose: Purpose, at: i64) {
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
    }

    async fn queue_case_of(&self, id: &str, account: &str, purpose: Purpose, at: i64) {
        self.queue_case_why(id, account, purpose, at, None).await
    }

    /// A case queued for `why` (its documents not in yet).
    async fn queue_case_why(&self, id: &str, account: &str, purpose: Purpose, at: i64, why: Option<ReviewReason>) {
        self.begin_case(id, account, purpose, at).await;
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
            review_reason: why,
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
    use idgate::crypto::sealing::{Context, OpeningKey};
    use idgate::domain::{IdentityFields, VerificationId};
    use idgate::review::ReasonCode;

    let keks = test_keks();
    let id = idgate::crypto::random::id("vf_").unwrap();
    let mut fields = IdentityFields::default();
    fields.name = "张三丰".into();
    fields.id_number = "11010519491231002X".into();
    fields.phone = "13800138000".into();
    fields.face_image = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];
    // Exactly what the previous version stored: the whole payload under one data key.
    queue_sealed(&*store, &keks, &id, "acct-old", Purpose::Radio, &fields).await;

    let review = review_desk(store.clone(), keks);
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

/// Queues case `id` of `purpose` for review at `NOW` with `fields` sealed as its identity material in
/// one envelope (no face apart).
async fn queue_sealed(
    store: &dyn FullStoreForOldShape,
    keks: &idgate::crypto::envelope::KekRing,
    id: &str,
    account: &str,
    purpose: Purpose,
    fields: &idgate::domain::IdentityFields,
) {
    let (wrapped_key, body) = keks
        .seal(
            id,
            idgate::material::PII_FIELD_IDENTITY,
            &idgate::material::encode_fields(fields),
        )
        .unwrap();
    let record = CaseRecord::processing(
        id,
        AccountId::parse(account).unwrap(),
        RequestId::parse(&format!("req-{id}")).unwrap(),
        "onboarding-dev",
        purpose,
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
    store.finish(id, finish, NOW).await.unwrap();
}

fn test_keks() -> std::sync::Arc<idgate::crypto::envelope::KekRing> {
    use idgate::crypto::envelope::{Kek, KekRing};
    std::sync::Arc::new(
        KekRing::new(vec![Kek {
            id: "kek-1".into(),
            created_at_unix: 1,
            key: idgate::crypto::SecretKey32::random().unwrap(),
        }])
        .unwrap(),
    )
}

/// The review use case over `store` at `NOW + 1`: one approval needed, anchors offered without a
/// supplement, one anchor account per ID.
fn review_desk(
    store: std::sync::Arc<dyn FullStoreForOldShape>,
    keks: std::sync::Arc<idgate::crypto::envelope::KekRing>,
) -> idgate::review::ReviewDesk {
    use idgate::clock::ManualClock;
    use idgate::crypto::blind_index::BlindIndexer;
    use std::sync::Arc;
    let clock = Arc::new(ManualClock::new(NOW + 1));
    let audit = idgate::audit::AuditTrail::new(
        store.clone().as_store(),
        clock.clone(),
        std::time::Duration::from_secs(86_400),
    );
    idgate::review::ReviewDesk::new(
        store.clone().as_queue(),
        store.as_store(),
        keks,
        Arc::new(BlindIndexer::new(
            "bk".into(),
            &idgate::crypto::SecretKey32::random().unwrap(),
        )),
        audit,
        clock,
        idgate::review::ReviewSettings {
            lease: std::time::Duration::from_secs(LEASE as u64),
            approvals_required: 1,
            anchor_needs_supplement: false,
            anchor_limits: idgate::decision::Limits::default(),
        },
    )
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

impl Fixture {
    /// What `action` returns, and the commands Redis received meanwhile as `MONITOR` shows them
    /// (one line each; commands a script ran are marked `lua`).
    async fn monitored<T>(&self, action: impl std::future::Future<Output = T>) -> (T, Vec<String>) {
        use futures_util::StreamExt;
        let client = redis::Client::open(self.url.as_str()).unwrap();
        // Returns once Redis confirmed MONITOR: every later command is seen.
        let monitor = client.get_async_monitor().await.unwrap();
        let mut lines = monitor.into_on_message::<String>();
        let out = action.await;
        let sentinel = "end-of-capture-d41d8cd9";
        let _: String = redis::cmd("ECHO")
            .arg(sentinel)
            .query_async(&mut self.con.clone())
            .await
            .unwrap();
        let mut seen = Vec::new();
        let read = async {
            while let Some(line) = lines.next().await {
                if line.contains(sentinel) {
                    return;
                }
                seen.push(line);
            }
            panic!("the monitor connection ended");
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), read)
            .await
            .expect("the capture ends with its sentinel");
        (out, seen)
    }

    /// The round trips (commands a client sent, not those its scripts ran) while `action` ran.
    async fn round_trips<T>(&self, action: impl std::future::Future<Output = T>) -> (T, usize) {
        let (out, lines) = self.monitored(action).await;
        (out, lines.iter().filter(|line| !line.contains(" lua] ")).count())
    }

    /// What `action` returns, and every argument shaped like a record tag (`<key id>:<hex digest>`)
    /// of the commands Redis received meanwhile, as anyone allowed `MONITOR` (or `SLOWLOG GET`, or
    /// on the path of a plain `redis://` link) sees them.
    async fn tags_sent_during<T>(&self, action: impl std::future::Future<Output = T>) -> (T, Vec<String>) {
        let (out, lines) = self.monitored(action).await;
        // MONITOR quotes each argument; a tag needs no escaping.
        let tags = lines
            .iter()
            .flat_map(|line| line.split('"'))
            .filter(|token| {
                token.rsplit_once(':').is_some_and(|(key_id, digest)| {
                    !key_id.is_empty() && digest.len() >= 32 && digest.bytes().all(|b| b.is_ascii_hexdigit())
                })
            })
            .map(str::to_owned)
            .collect();
        (out, tags)
    }

    /// The states a captured tag makes case `id` read as, other than the one stored: each status
    /// (and refusal) with its status time `at` is written into the case hash with each tag — what
    /// someone who can write one hash does — and read back through the store's integrity check.
    /// The case hash is put back afterwards.
    async fn forgeable_states(&self, id: &str, tags: &[String], at: i64) -> Vec<String> {
        let key = format!("{}:{{{id}}}:case", self.prefix);
        let mut con = self.con.clone();
        let original: Vec<Vec<u8>> = redis::cmd("HGETALL").arg(&key).query_async(&mut con).await.unwrap();
        let stored = self.store.get(id).await.unwrap().unwrap();
        let stored = (stored.status.as_str(), stored.refusal.map(|r| r.code()));
        let states = [
            ("verified", None),
            ("not_verified", None),
            ("not_verified", Some("ID_ACCOUNT_LIMIT")),
            ("pending_review", None),
            ("erased", None),
            ("expired", None),
        ];
        let mut forgeable = Vec::new();
        for (status, refusal) in states {
            if (status, refusal) == stored {
                continue;
            }
            for tag in tags {
                let mut edit = redis::pipe();
                edit.cmd("HSET")
                    .arg(&key)
                    .arg("status")
                    .arg(status)
                    .arg("status_at")
                    .arg(at)
                    .arg("mac")
                    .arg(tag)
                    .ignore();
                match refusal {
                    Some(code) => edit.cmd("HSET").arg(&key).arg("refusal").arg(code).ignore(),
                    None => edit.cmd("HDEL").arg(&key).arg("refusal").ignore(),
                };
                let () = edit.query_async(&mut con).await.unwrap();
                if let Ok(Some(record)) = self.store.get(id).await {
                    forgeable.push(format!("{:?} {:?} at {at}", record.status, record.refusal));
                }
            }
        }
        let mut restore = redis::pipe();
        restore.cmd("DEL").arg(&key).ignore();
        restore.cmd("HSET").arg(&key).arg(original).ignore();
        let () = restore.query_async(&mut con).await.unwrap();
        forgeable
    }

    /// The tag stored in case `id`'s hash.
    async fn stored_tag(&self, id: &str) -> String {
        redis::cmd("HGET")
            .arg(format!("{}:{{{id}}}:case", self.prefix))
            .arg("mac")
            .query_async(&mut self.con.clone())
            .await
            .unwrap()
    }

    /// No tag in `tags` (captured during a step at `at`) verifies for any state of case `id` but
    /// the stored one; and the capture saw the step's own tag (so it could see the others).
    async fn assert_no_forgeable_state(&self, id: &str, tags: &[String], at: i64) {
        let own = self.stored_tag(id).await;
        assert!(tags.contains(&own), "the capture saw the step's tags: {tags:?}");
        let forgeable = self.forgeable_states(id, tags, at).await;
        assert!(forgeable.is_empty(), "{id}: tags sent to Redis forge {forgeable:?}");
        assert!(self.store.get(id).await.is_ok(), "put back");
    }

    async fn claim_four_eyes(&self, reviewer: &str, now: i64) -> Option<String> {
        self.store
            .claim_next(reviewer, now, now + LEASE, true, false)
            .await
            .unwrap()
            .map(|c| c.case.id)
    }
}

/// A decision hands Redis the tag of the outcome it decided and of no other: not the `verified` tag
/// beside a rejection, a first approval of two, or an approval refused by the anchor limit. (Before,
/// every outcome's tag went along as a script argument: anyone seeing `MONITOR` or `SLOWLOG` who
/// could write one hash turned such a case into `verified`.)
#[tokio::test]
async fn a_decision_sends_redis_no_tag_of_an_outcome_it_did_not_decide() {
    let Some(f) = Fixture::start().await else { return };

    f.queue_case("vf_rejected", "acct-1", NOW).await;
    assert_eq!(f.claim("rev-1", NOW + 1).await.as_deref(), Some("vf_rejected"));
    let decide = f
        .store
        .decide("vf_rejected", "rev-1", ReviewVerdict::Reject, 1, None, NOW + 2);
    let (record, tags) = f.tags_sent_during(decide).await;
    assert_eq!(record.unwrap().status, CaseStatus::NotVerified);
    f.assert_no_forgeable_state("vf_rejected", &tags, NOW + 2).await;

    // Four-eyes: the first approval changes no status, so it needs no new tag at all.
    f.queue_case("vf_two", "acct-2", NOW).await;
    assert_eq!(f.claim_four_eyes("rev-1", NOW + 3).await.as_deref(), Some("vf_two"));
    let decide = f
        .store
        .decide("vf_two", "rev-1", ReviewVerdict::Approve, 2, None, NOW + 4);
    let (record, tags) = f.tags_sent_during(decide).await;
    assert_eq!(record.unwrap().status, CaseStatus::PendingReview);
    f.assert_no_forgeable_state("vf_two", &tags, NOW + 4).await;
    // The second approval still verifies it.
    assert_eq!(f.claim_four_eyes("rev-2", NOW + 5).await.as_deref(), Some("vf_two"));
    let record = f
        .store
        .decide("vf_two", "rev-2", ReviewVerdict::Approve, 2, None, NOW + 6)
        .await
        .unwrap();
    assert_eq!(record.status, CaseStatus::Verified);

    // An approval refused by the anchor-accounts-per-ID limit.
    let anchor = AnchorClaim {
        index: "bi:one-id".into(),
        consult: vec!["bi:one-id".into()],
        max_accounts: 1,
        ttl_seconds: 3_600,
    };
    f.queue_case_of("vf_first", "acct-3", Purpose::Anchor, NOW).await;
    f.queue_case_of("vf_limited", "acct-4", Purpose::Anchor, NOW).await;
    assert_eq!(f.claim("rev-1", NOW + 7).await.as_deref(), Some("vf_first"));
    let record = f
        .store
        .decide(
            "vf_first",
            "rev-1",
            ReviewVerdict::Approve,
            1,
            Some(anchor.clone()),
            NOW + 8,
        )
        .await
        .unwrap();
    assert_eq!(record.status, CaseStatus::Verified);
    assert_eq!(f.claim("rev-1", NOW + 9).await.as_deref(), Some("vf_limited"));
    let decide = f
        .store
        .decide("vf_limited", "rev-1", ReviewVerdict::Approve, 1, Some(anchor), NOW + 10);
    let (record, tags) = f.tags_sent_during(decide).await;
    let record = record.unwrap();
    assert_eq!(
        (record.status, record.refusal),
        (
            CaseStatus::NotVerified,
            Some(idgate::domain::CaseRefusal::IdAccountLimit)
        )
    );
    f.assert_no_forgeable_state("vf_limited", &tags, NOW + 10).await;
}

/// A case whose erasure arrived while its provider answered ends `erased`; the step that ends it
/// hands Redis the erased record's tag only, never one of the provider's verdict.
#[tokio::test]
async fn finishing_an_erased_case_sends_redis_no_tag_of_the_verdict() {
    let Some(f) = Fixture::start().await else { return };
    f.begin_case("vf_gone", "acct-1", Purpose::Radio, NOW).await;
    assert_eq!(
        f.store.erase_account("acct-1", None, NOW + 1).await.unwrap(),
        ["vf_gone"],
        "marked while processing"
    );
    let finish = Finish {
        status: CaseStatus::Verified,
        provider: Some("p".into()),
        ..Finish::default()
    };
    let (record, tags) = f.tags_sent_during(f.store.finish("vf_gone", finish, NOW + 2)).await;
    assert_eq!(record.unwrap().status, CaseStatus::Erased);
    f.assert_no_forgeable_state("vf_gone", &tags, NOW + 2).await;
}

/// A pending anchor case whose sealed data is gone (evicted by a Redis that is not `noeviction`) is
/// not approved: its anchor-accounts-per-ID limit reads the ID number from that data, and approving
/// without it would verify an account the limit may refuse. A rejection still ends it.
#[tokio::test]
async fn a_pending_anchor_case_whose_data_was_evicted_is_not_approved() {
    use idgate::domain::{IdentityFields, VerificationId};
    use idgate::review::{ReasonCode, ReviewUseError};
    use idgate::store::ReviewError;

    let Some(f) = Fixture::start().await else { return };
    let keks = test_keks();
    let id = idgate::crypto::random::id("vf_").unwrap();
    let mut fields = IdentityFields::default();
    fields.name = "张三丰".into();
    fields.id_number = "11010519491231002X".into();
    queue_sealed(&f.store, &keks, &id, "acct-evicted", Purpose::Anchor, &fields).await;
    let review = review_desk(std::sync::Arc::new(f.store.clone()), keks);
    let key = idgate::crypto::sealing::OpeningKey::generate().unwrap();
    review.register_key("rev-1", key.public_key()).await.unwrap();
    let claimed = review.claim_next("rev-1").await.unwrap().expect("offered");
    assert_eq!(claimed.case_id, id);

    // Evicted under memory pressure.
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{}:{{{id}}}:pii:key", f.prefix))
        .arg(format!("{}:{{{id}}}:pii:body", f.prefix))
        .query_async(&mut f.con.clone())
        .await
        .unwrap();
    let case = VerificationId::parse(&id).unwrap();
    let reason = ReasonCode::parse("DOCS_MATCH").unwrap();
    let approval = review.decide("rev-1", &case, ReviewVerdict::Approve, &reason).await;
    assert!(
        matches!(approval, Err(ReviewUseError::Queue(ReviewError::NotPending))),
        "refused, not verified without its limit"
    );
    let record = f.store.get(&id).await.unwrap().unwrap();
    assert_eq!(record.status, CaseStatus::PendingReview);
    assert_eq!(
        review
            .decide("rev-1", &case, ReviewVerdict::Reject, &reason)
            .await
            .unwrap(),
        CaseStatus::NotVerified
    );
}

/// A Redis that may evict keys is refused at connect; `noeviction` (the default) is accepted.
#[tokio::test]
async fn an_evicting_redis_is_refused_at_connect() {
    let Some(f) = Fixture::start().await else { return };
    let set = |policy: &'static str| {
        let mut con = f.con.clone();
        async move {
            let () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory-policy")
                .arg(policy)
                .query_async(&mut con)
                .await
                .unwrap();
        }
    };
    for policy in ["allkeys-lru", "volatile-ttl"] {
        set(policy).await;
        let refused = RedisStore::standalone(&f.url, test_options()).await.unwrap_err();
        assert!(
            refused.to_string().contains("maxmemory-policy must be noeviction"),
            "{policy}: {refused}"
        );
    }
    set("noeviction").await;
    assert!(RedisStore::standalone(&f.url, test_options()).await.is_ok());
}

/// A gateway ACL user without `CONFIG` cannot read the policy: the store warns and connects.
#[tokio::test]
async fn an_acl_user_without_config_still_connects() {
    if support::redis::locked_down_redis().await.is_none() {
        assert!(!redis_tests_enabled());
    }
}

/// Cases waiting for their documents stay out of the queue's walk: with more than 10 000 of them
/// (document-review cases without their ID card photos) a ready case is claimed in a handful of
/// round trips (before, every claim walked them and gave up after 10 000, answering "queue empty"),
/// `queue_stats` counts them in a handful too, four-eyes still hands a case one reviewer approved
/// to the next at once, and a supplement that completes a waiting case queues it again.
#[tokio::test]
async fn ten_thousand_cases_waiting_for_documents_never_starve_the_queue() {
    use futures_util::future::join_all;
    let Some(f) = Fixture::start().await else { return };
    const WAITING: usize = 10_001;
    let ids: Vec<String> = (0..WAITING).map(|i| format!("vf_w{i:05}")).collect();
    for chunk in ids.chunks(500) {
        join_all(chunk.iter().map(|id| {
            f.queue_case_why(
                id,
                "acct-w",
                Purpose::Radio,
                NOW,
                Some(ReviewReason::DocumentReviewRequested),
            )
        }))
        .await;
    }
    f.queue_case("vf_ready", "acct-r", NOW + 1).await;
    const BOUND: usize = 16;

    let claim = f.store.claim_next("rev-1", NOW + 2, NOW + 2 + LEASE, true, true);
    let (claim, trips) = f.round_trips(claim).await;
    assert_eq!(claim.unwrap().map(|c| c.case.id).as_deref(), Some("vf_ready"));
    assert!(trips <= BOUND, "a claim took {trips} round trips");

    let (stats, trips) = f.round_trips(f.store.queue_stats(NOW + 3)).await;
    let stats = stats.unwrap();
    assert_eq!((stats.pending, stats.claimed), (WAITING as u64, 1));
    assert_eq!(stats.oldest_pending_age_seconds, 3);
    assert!(trips <= BOUND, "queue_stats took {trips} round trips");

    // Four-eyes: one approval, and the next reviewer gets the case at once.
    f.store
        .decide("vf_ready", "rev-1", ReviewVerdict::Approve, 2, None, NOW + 4)
        .await
        .unwrap();
    let claim = f.store.claim_next("rev-1", NOW + 5, NOW + 5 + LEASE, true, true);
    let (claim, trips) = f.round_trips(claim).await;
    assert!(claim.unwrap().is_none(), "not the same reviewer twice");
    assert!(trips <= BOUND, "a claim took {trips} round trips");
    let claim = f.store.claim_next("rev-2", NOW + 5, NOW + 5 + LEASE, true, true);
    let (claim, trips) = f.round_trips(claim).await;
    assert_eq!(claim.unwrap().map(|c| c.case.id).as_deref(), Some("vf_ready"));
    assert!(trips <= BOUND, "a claim took {trips} round trips");

    // Its documents come: queued again, and claimed.
    let held = f.store.sealed_pii("vf_w00000").await.unwrap().unwrap();
    assert!(
        f.store
            .apply_supplement("vf_w00000", "s-1", &held.wrapped_key, held.clone(), true)
            .await
            .unwrap()
    );
    let claim = f.store.claim_next("rev-3", NOW + 6, NOW + 6 + LEASE, true, true);
    let (claim, trips) = f.round_trips(claim).await;
    assert_eq!(claim.unwrap().map(|c| c.case.id).as_deref(), Some("vf_w00000"));
    assert!(trips <= BOUND, "a claim took {trips} round trips");
    // The others still wait, and the sweep leaves them where they are.
    f.store.sweep(NOW + 61, 0).await.unwrap();
    assert_eq!(f.claim("rev-4", NOW + 61).await, None);
    assert_eq!(
        f.entries().await.len(),
        2,
        "only the two claimed cases are in the stream"
    );
}

/// An anchor case that waits for its supplement leaves the queue the first time a claimer with
/// supplement gating meets it: later claims do not walk it again, and its supplement queues it
/// again. A claimer without gating takes such cases back.
#[tokio::test]
async fn anchor_cases_waiting_for_their_supplement_leave_the_walk() {
    let Some(f) = Fixture::start().await else { return };
    for i in 0..50 {
        f.queue_case_of(&format!("vf_a{i:02}"), "acct-a", Purpose::Anchor, NOW)
            .await;
    }
    f.queue_case("vf_ready", "acct-r", NOW + 1).await;
    let gated = |reviewer: &'static str, now: i64| f.store.claim_next(reviewer, now, now + LEASE, false, true);
    let (claim, _) = f.round_trips(gated("rev-1", NOW + 2)).await;
    assert_eq!(claim.unwrap().map(|c| c.case.id).as_deref(), Some("vf_ready"));
    f.queue_case("vf_next", "acct-r", NOW + 3).await;
    let (claim, trips) = f.round_trips(gated("rev-2", NOW + 4)).await;
    assert_eq!(claim.unwrap().map(|c| c.case.id).as_deref(), Some("vf_next"));
    assert!(
        trips <= 16,
        "the waiting anchors were walked again: {trips} round trips"
    );
    assert_eq!(f.entries().await.len(), 2);
    // A supplement completes one.
    let held = f.store.sealed_pii("vf_a07").await.unwrap().unwrap();
    f.store
        .apply_supplement("vf_a07", "s-1", &held.wrapped_key, held.clone(), true)
        .await
        .unwrap();
    let claim = gated("rev-3", NOW + 5).await.unwrap();
    assert_eq!(claim.map(|c| c.case.id).as_deref(), Some("vf_a07"));
    // Without gating they are ready: taken back and claimed, oldest first.
    let claim = f
        .store
        .claim_next("rev-4", NOW + 6, NOW + 6 + LEASE, false, false)
        .await
        .unwrap();
    assert_eq!(claim.map(|c| c.case.id).as_deref(), Some("vf_a00"));
}

/// Behind 10 001 four-eyes leftovers one reviewer approved (each parked in the stream's pending
/// list, waiting for a second reviewer), that reviewer's claim still reaches a ready case in a
/// bounded number of round trips (before, every claim walked them one script each and gave up after
/// 10 000, answering "queue empty"), and another reviewer still gets the oldest leftover first.
#[tokio::test]
async fn ten_thousand_four_eyes_leftovers_never_starve_their_reviewer() {
    use futures_util::future::join_all;
    let Some(f) = Fixture::start().await else { return };
    const LEFTOVERS: usize = 10_001;
    let ids: Vec<String> = (0..LEFTOVERS).map(|i| format!("vf_l{i:05}")).collect();
    for chunk in ids.chunks(500) {
        join_all(chunk.iter().map(|id| f.queue_case(id, "acct-l", NOW))).await;
    }
    // What a claim by rev-1 and its first approval of two leave, written in bulk: the entry
    // delivered, the approval in the review hash, the entry parked and in rev-1's skip set.
    let mut con = f.con.clone();
    let _: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(f.queue_key())
        .arg("reviewers")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut con)
        .await;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("reviewers")
        .arg("rev-1")
        .arg("COUNT")
        .arg(LEFTOVERS + 1)
        .arg("STREAMS")
        .arg(f.queue_key())
        .arg(">")
        .query_async(&mut con)
        .await
        .unwrap();
    let entries = f.entries().await;
    assert_eq!(entries.len(), LEFTOVERS);
    let skip_key = format!("{}:review:skip:{{rev-1}}", f.prefix);
    for chunk in entries.chunks(1_000) {
        let mut pipe = redis::pipe();
        for (entry, case) in chunk {
            pipe.cmd("HSET")
                .arg(f.review_key(case))
                .arg("entry")
                .arg(entry)
                .arg("claimed")
                .arg(r#"["rev-1"]"#)
                .arg("approvals")
                .arg(r#"["rev-1"]"#)
                .ignore()
                .cmd("XCLAIM")
                .arg(f.queue_key())
                .arg("reviewers")
                .arg("idgate unassigned")
                .arg(0)
                .arg(entry)
                .arg("TIME")
                .arg(1)
                .arg("JUSTID")
                .ignore()
                .cmd("SADD")
                .arg(&skip_key)
                .arg(format!("a:{entry}"))
                .ignore();
        }
        let () = pipe.query_async(&mut con).await.unwrap();
    }
    f.queue_case("vf_ready", "acct-r", NOW + 1).await;
    const BOUND: usize = 40;

    let claim = f.store.claim_next("rev-1", NOW + 2, NOW + 2 + LEASE, true, true);
    let (claim, trips) = f.round_trips(claim).await;
    assert_eq!(claim.unwrap().map(|c| c.case.id).as_deref(), Some("vf_ready"));
    assert!(trips <= BOUND, "a claim took {trips} round trips");
    // Again, with the ready case leased: nothing for rev-1, still within the bound.
    let claim = f.store.claim_next("rev-1", NOW + 3, NOW + 3 + LEASE, true, true);
    let (claim, trips) = f.round_trips(claim).await;
    assert!(claim.unwrap().is_none());
    assert!(trips <= BOUND, "a claim took {trips} round trips");

    // The oldest leftover in arrival order (they were queued concurrently).
    let oldest = entries[0].1.as_str();
    let claim = f.store.claim_next("rev-2", NOW + 3, NOW + 3 + LEASE, true, true);
    let (claim, trips) = f.round_trips(claim).await;
    assert_eq!(claim.unwrap().map(|c| c.case.id).as_deref(), Some(oldest));
    assert!(trips <= BOUND, "a claim took {trips} round trips");
}

/// A reviewer's skip set follows the cases: a supplement that voids their claim puts the case back
/// within their reach, and members whose case ended are pruned by their next claim.
#[tokio::test]
async fn skip_sets_follow_voided_claims_and_ended_cases() {
    let Some(f) = Fixture::start().await else { return };
    let skip_key = format!("{}:review:skip:{{rev-1}}", f.prefix);
    let members = || async {
        let mut members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&skip_key)
            .query_async(&mut f.con.clone())
            .await
            .unwrap();
        members.sort();
        members
    };
    let four_eyes = |reviewer: &'static str, now: i64| f.store.claim_next(reviewer, now, now + LEASE, true, false);
    f.queue_case("vf_1", "acct-1", NOW).await;
    f.queue_case("vf_2", "acct-2", NOW).await;
    // rev-1 approves vf_1 once and releases vf_2.
    assert_eq!(four_eyes("rev-1", NOW + 1).await.unwrap().unwrap().case.id, "vf_1");
    f.store
        .decide("vf_1", "rev-1", ReviewVerdict::Approve, 2, None, NOW + 2)
        .await
        .unwrap();
    assert_eq!(four_eyes("rev-1", NOW + 3).await.unwrap().unwrap().case.id, "vf_2");
    f.store.release("vf_2", "rev-1", NOW + 4).await.unwrap();
    let entries = f.entries().await;
    let entry = |case: &str| entries.iter().find(|(_, c)| c == case).unwrap().0.clone();
    let (one, two) = (entry("vf_1"), entry("vf_2"));
    assert_eq!(members().await, [format!("a:{one}"), format!("c:{two}")]);
    assert!(four_eyes("rev-1", NOW + 5).await.unwrap().is_none());
    // Without four-eyes, the released case is rev-1's again; the approved one is not.
    let claim = f.store.claim_next("rev-1", NOW + 6, NOW + 6 + LEASE, false, false);
    assert_eq!(claim.await.unwrap().unwrap().case.id, "vf_2");
    f.store.release("vf_2", "rev-1", NOW + 7).await.unwrap();
    // A supplement voids rev-1's approval of vf_1: theirs again.
    let held = f.store.sealed_pii("vf_1").await.unwrap().unwrap();
    assert!(
        f.store
            .apply_supplement("vf_1", "s-1", &held.wrapped_key, held.clone(), true)
            .await
            .unwrap()
    );
    assert_eq!(members().await, [format!("c:{two}")]);
    assert_eq!(four_eyes("rev-1", NOW + 8).await.unwrap().unwrap().case.id, "vf_1");
    // vf_2 ends (rejected by rev-2): rev-1's next claim prunes its member.
    assert_eq!(four_eyes("rev-2", NOW + 9).await.unwrap().unwrap().case.id, "vf_2");
    f.store
        .decide("vf_2", "rev-2", ReviewVerdict::Reject, 2, None, NOW + 10)
        .await
        .unwrap();
    assert!(four_eyes("rev-1", NOW + 11).await.unwrap().is_none());
    assert!(members().await.is_empty());
    // A withdrawal of biometric consent voids rev-1's approval of an anchor case: out of the set.
    f.queue_case_of("vf_a", "acct-a", Purpose::Anchor, NOW + 12).await;
    let claim = f.store.claim_next("rev-1", NOW + 13, NOW + 13 + LEASE, false, false);
    assert_eq!(claim.await.unwrap().unwrap().case.id, "vf_a");
    f.store
        .decide("vf_a", "rev-1", ReviewVerdict::Approve, 2, None, NOW + 14)
        .await
        .unwrap();
    assert_eq!(members().await.len(), 1);
    let changed = f.store.withdraw_biometrics("acct-a", None, NOW + 15).await.unwrap();
    assert_eq!(changed, ["vf_a"]);
    assert!(members().await.is_empty());
}
