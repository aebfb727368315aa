//! Kill drills: the gateway SIGKILLed under load, Redis restarted under load, a
//! provider dying mid-response, the clock jumping past a retention limit and back. Each drill names
//! above it the invariant it keeps (the invariants of `docs/design.md` and the common rules:
//! 1 a VERIFIED answer is a decision about exactly the sealed data, 2 state that belongs together
//! commits in one step, 3 no personal data past its need, 4 every call answered within its deadline).
//!
//! Waits are bounded polls with generous bounds ([`WITHIN`]) for a loaded machine, never sleeps as
//! synchronization; the processing lease is shortened through configuration (it is three times the
//! longest call deadline), not waited out at its production length.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{GatewayProcess, Person, TestGateway, reason, sealed_request};
use idgate::clock::{Clock, ManualClock, SystemClock};
use idgate::config::{Config, ProviderConfig, ProviderKind, Secret};
use idgate::pb;
use idgate::pb::Purpose::ShortVideo;
use idgate::pb::review_service_client::ReviewServiceClient;
use idgate::pb::verification_service_client::VerificationServiceClient;
use support::broken_provider::{Break, BrokenProvider};
use support::redis::{RedisServer, redis_tests_enabled};
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::Channel;

/// Bound of every poll in these drills: generous, for a loaded 2-core machine.
const WITHIN: Duration = Duration::from_secs(30);
/// Interval of those polls (a retry interval, not a synchronization).
const POLL: Duration = Duration::from_millis(100);
/// The deadline every Verify of the drills sets; the server's own Verify and call deadlines are set
/// to the same, so the processing lease is 3 × this (9 s) instead of 45 s.
const CALL_DEADLINE: Duration = Duration::from_secs(3);
/// How long past its deadline a call may take before the drill calls it a hang (transport slack).
const HANG_GUARD: Duration = Duration::from_secs(10);

/// The sequence codes the load cycles through (docs/api.md §5) and the status each must end in.
const MIX: [(&str, pb::Status); 4] = [
    ("001", pb::Status::Verified),
    ("905", pb::Status::NotVerified),
    ("945", pb::Status::PendingReview),
    // The simulated provider hangs: the call waits for its 1.5 s timeout, then goes to review. In a
    // load it keeps calls in flight at any moment (and, timing out, may open the breaker).
    ("995", pb::Status::PendingReview),
];

/// The identities the simulator answers at once. Without the hanging one, the provider's circuit
/// breaker stays closed, so a call made to hang (`GatewayProcess::call_in_flight`) really hangs.
const DECIDED_AT_ONCE: &[&str] = &["001", "905", "945"];

fn expected(seq: &str) -> pb::Status {
    MIX.iter().find(|(s, _)| *s == seq).expect("a seq of the mix").1
}

/// Invariant 1 for one answer: its status is the decision the simulator gives `seq`'s identity, or
/// manual review — what any case gets while no provider can answer, for instance while the hanging
/// identities have opened the provider's circuit breaker. Never another decision.
fn assert_outcome(seq: &str, answer: &pb::VerifyResponse, request_id: &str) {
    let status = status_of(answer);
    assert!(
        status == expected(seq) || status == pb::Status::PendingReview,
        "{request_id} (seq {seq}) answered {status:?}"
    );
}

fn status_of(answer: &pb::VerifyResponse) -> pb::Status {
    pb::Status::try_from(answer.status).expect("a known status")
}

/// A Verify for `request_id` with `seq`'s test identity, consent given at `now` (the consent is not
/// sealed, so a manual clock can date it), under the drill's deadline.
fn request(
    key: &pb::GetSealingKeyResponse,
    account: &str,
    request_id: &str,
    seq: &str,
    now: i64,
) -> tonic::Request<pb::VerifyRequest> {
    let mut sealed = sealed_request(key, ShortVideo, account, request_id, &Person::adult(seq).fields(), None);
    if let Some(consent) = sealed.consent.as_mut() {
        consent.granted_at_unix = now;
        if let Some(biometric) = consent.biometric.as_mut() {
            biometric.granted_at_unix = now;
        }
    }
    let mut call = tonic::Request::new(sealed);
    call.set_timeout(CALL_DEADLINE);
    call
}

/// Sends one Verify; a call the server has not answered by its deadline plus [`HANG_GUARD`] fails
/// the drill (invariant 4).
async fn send(
    client: &mut VerificationServiceClient<Channel>,
    call: tonic::Request<pb::VerifyRequest>,
) -> Result<pb::VerifyResponse, tonic::Status> {
    tokio::time::timeout(CALL_DEADLINE + HANG_GUARD, client.verify(call))
        .await
        .expect("a Verify hung past its deadline")
        .map(tonic::Response::into_inner)
}

async fn sealing_key(client: &mut VerificationServiceClient<Channel>) -> pb::GetSealingKeyResponse {
    client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// One call of the load: what was asked, and what came back.
struct Sent {
    request_id: String,
    seq: &'static str,
    answer: Result<pb::VerifyResponse, tonic::Status>,
}

/// Concurrent Verify calls, one worker per client, each sending new request ids back to back
/// (errors are followed by a short back-off, as a real client would) until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<Vec<Sent>>>,
}

impl Load {
    fn start(
        clients: Vec<VerificationServiceClient<Channel>>,
        key: &pb::GetSealingKeyResponse,
        tag: &str,
        seqs: &'static [&'static str],
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let workers = clients
            .into_iter()
            .enumerate()
            .map(|(w, mut client)| {
                let (stop, acknowledged, key) = (stop.clone(), acknowledged.clone(), key.clone());
                let tag = tag.to_owned();
                tokio::spawn(async move {
                    let mut sent = Vec::new();
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let seq = seqs[(w + i) % seqs.len()];
                        let request_id = format!("{tag}-{w}-{i}");
                        i += 1;
                        let call = request(&key, "acct-1", &request_id, seq, SystemClock.now_unix());
                        let answer = send(&mut client, call).await;
                        if answer.is_ok() {
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                        } else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        sent.push(Sent {
                            request_id,
                            seq,
                            answer,
                        });
                    }
                    sent
                })
            })
            .collect();
        Self {
            stop,
            acknowledged,
            workers,
        }
    }

    /// Polls (bounded) until at least `n` calls were answered OK.
    async fn wait_for_acknowledged(&self, n: usize) {
        let deadline = Instant::now() + WITHIN;
        while self.acknowledged.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the load never reached {n} answers");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops the workers and returns every call they made.
    async fn finish(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for worker in self.workers {
            all.extend(worker.await.expect("a load worker"));
        }
        all
    }
}

/// Retries `request_id` with the same content until it is answered (an answer replayed, or the
/// case completed now by a gateway that took it over past its processing lease). A request still
/// `IN_PROGRESS` (or unavailable) after [`WITHIN`] is stuck: the drill fails. Also says whether the
/// request was held by a processing lease at first (`IN_PROGRESS`): a case a dead caller left.
async fn settle(
    client: &mut VerificationServiceClient<Channel>,
    key: &pb::GetSealingKeyResponse,
    request_id: &str,
    seq: &str,
) -> (pb::VerifyResponse, bool) {
    let deadline = Instant::now() + WITHIN;
    let mut held = false;
    loop {
        let call = request(key, "acct-1", request_id, seq, SystemClock.now_unix());
        match send(client, call).await {
            Ok(answer) => return (answer, held),
            Err(status)
                if Instant::now() < deadline && matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded) =>
            {
                held |= reason(&status).as_deref() == Some("IN_PROGRESS");
                tokio::time::sleep(POLL).await;
            }
            Err(status) => panic!("{request_id} never settled: {:?} {:?}", status.code(), reason(&status)),
        }
    }
}

/// Every load call answered OK must have its seq's status, and stay readable with it.
async fn check_acknowledged(client: &mut VerificationServiceClient<Channel>, sent: &[Sent]) -> usize {
    let mut count = 0;
    for call in sent {
        let Ok(answer) = &call.answer else { continue };
        assert_outcome(call.seq, answer, &call.request_id);
        let read = client
            .get_verification(pb::GetVerificationRequest {
                verification_id: answer.verification_id.clone(),
            })
            .await
            .unwrap_or_else(|s| panic!("acknowledged {} lost: {s:?}", call.request_id))
            .into_inner();
        assert_eq!(&read, answer, "acknowledged {} changed", call.request_id);
        count += 1;
    }
    count
}

/// Settles every call of the load that got no answer; returns the pending case ids among them, and
/// how many were held by a processing lease before they settled.
async fn settle_unanswered(
    client: &mut VerificationServiceClient<Channel>,
    key: &pb::GetSealingKeyResponse,
    sent: &[Sent],
) -> (BTreeSet<String>, usize) {
    let mut pending = BTreeSet::new();
    let mut held_by_a_lease = 0;
    for call in sent.iter().filter(|c| c.answer.is_err()) {
        let (answer, held) = settle(client, key, &call.request_id, call.seq).await;
        held_by_a_lease += usize::from(held);
        assert_outcome(call.seq, &answer, &call.request_id);
        if status_of(&answer) == pb::Status::PendingReview {
            pending.insert(answer.verification_id);
        }
    }
    (pending, held_by_a_lease)
}

fn pending_acknowledged(sent: &[Sent]) -> BTreeSet<String> {
    sent.iter()
        .filter_map(|c| c.answer.as_ref().ok())
        .filter(|a| status_of(a) == pb::Status::PendingReview)
        .map(|a| a.verification_id.clone())
        .collect()
}

/// A reviewer console: its client with a registered key.
async fn reviewer(channel: Channel) -> ReviewServiceClient<Channel> {
    common::registered_reviewer(channel).await.0
}

async fn claim(client: &mut ReviewServiceClient<Channel>) -> Option<pb::ClaimNextResponse> {
    let claim = client.claim_next(pb::ClaimNextRequest {}).await.unwrap().into_inner();
    (!claim.case_id.is_empty()).then_some(claim)
}

async fn queue_stats(client: &mut ReviewServiceClient<Channel>) -> pb::GetQueueStatsResponse {
    client
        .get_queue_stats(pb::GetQueueStatsRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// The review queue holds exactly `pending`: its figures agree (polled, see below), and a reviewer
/// claiming until the queue is empty gets exactly those cases, each once.
async fn assert_queue_holds_exactly(client: &mut ReviewServiceClient<Channel>, pending: &BTreeSet<String>) {
    // A gateway killed between a case's script and its queue entry leaves a pending case that the
    // retention sweep re-queues after its orphan grace (60 s on the gateway's clock): only that rare
    // interleaving needs more than a moment, so the bound covers it.
    let deadline = Instant::now() + WITHIN + Duration::from_secs(60);
    loop {
        let stats = queue_stats(client).await;
        if stats.pending as usize == pending.len() && stats.claimed == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queue {stats:?}, expected {} pending",
            pending.len()
        );
        tokio::time::sleep(POLL).await;
    }
    // The figures count a pending case whose queue entry the kill cut off (it is pending), but a
    // reviewer gets it only once the sweep has queued it again: claim until every pending case came,
    // within the same bound. Leases taken stay held, so no case can come twice.
    let mut claimed = BTreeSet::new();
    loop {
        while let Some(case) = claim(client).await {
            assert!(claimed.insert(case.case_id.clone()), "{} claimed twice", case.case_id);
            assert!(
                claimed.len() <= pending.len(),
                "the queue holds more than the pending cases"
            );
        }
        if &claimed == pending || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(&claimed, pending, "the queue holds exactly the pending cases");
}

/// Starts a Verify whose provider hangs (seq 995) and returns once Redis shows its case processing.
/// The probe reads Redis directly (the key layout documented in `src/store/redis/mod.rs`, default
/// prefix `idg`) so that it starts nothing itself.
async fn call_held_in_flight(
    mut client: VerificationServiceClient<Channel>,
    key: &pb::GetSealingKeyResponse,
    redis_url: &str,
    request_id: &str,
) -> tokio::task::JoinHandle<Result<pb::VerifyResponse, tonic::Status>> {
    let call = request(key, "acct-1", request_id, "995", SystemClock.now_unix());
    let in_flight = tokio::spawn(async move { send(&mut client, call).await });
    let redis = redis::Client::open(redis_url).unwrap();
    let mut con = redis.get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + WITHIN;
    loop {
        let case: Option<String> = redis::cmd("GET")
            .arg(format!("idg:idem:{{acct-1}}:{request_id}"))
            .query_async(&mut con)
            .await
            .unwrap();
        if let Some(case) = case {
            let status: Option<String> = redis::cmd("HGET")
                .arg(format!("idg:{{{case}}}:case"))
                .arg("status")
                .query_async(&mut con)
                .await
                .unwrap();
            assert_ne!(
                status.as_deref(),
                Some("pending_review"),
                "decided before the probe saw it"
            );
            if status.as_deref() == Some("processing") {
                return in_flight;
            }
        }
        assert!(Instant::now() < deadline, "{request_id} never showed as processing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn drill_env(redis_url: &str) -> Vec<(&'static str, String)> {
    let deadline = CALL_DEADLINE.as_millis().to_string();
    vec![
        ("IDGATE_STORE__URL", redis_url.to_owned()),
        ("IDGATE_SERVER__VERIFY_DEADLINE_MS", deadline.clone()),
        ("IDGATE_SERVER__CALL_DEADLINE_MS", deadline),
        ("IDGATE_RETENTION__SWEEP_INTERVAL_SECONDS", "1".to_owned()),
    ]
}

/// **Invariants 1, 2 and 4 under SIGKILL.** The gateway (`idgate serve` on Redis with the built-in
/// simulator) is SIGKILLed while concurrent Verify calls are in flight, then started again on the
/// same Redis: no acknowledged verification is lost (each reads back with the status it was
/// answered with, which is its test identity's decision — about exactly that data — or review when
/// no provider could answer, see [`assert_outcome`]); every call
/// that got no answer, retried with its request_id, is answered (replayed, or completed now by the
/// new gateway once the processing lease of the dead one has run out) — nothing stays processing
/// for ever; and the review queue holds exactly the pending cases, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_sigkilled_under_load_loses_nothing_acknowledged_and_leaves_nothing_stuck() {
    if !redis_tests_enabled() {
        return;
    }
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    let env_owned = drill_env(&redis.url());
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let mut gateway = GatewayProcess::start(&dev, &env).await;
    let key = sealing_key(&mut gateway.onboarding().await).await;
    let mut clients = Vec::new();
    for _ in 0..6 {
        clients.push(gateway.onboarding().await);
    }
    let load = Load::start(clients, &key, "kill", DECIDED_AT_ONCE);
    load.wait_for_acknowledged(16).await;
    // One call certainly being processed at the kill (its provider hangs): its case must not stay
    // processing for ever.
    let held = call_held_in_flight(gateway.onboarding().await, &key, &redis.url(), "kill-held").await;
    gateway.signal(9);
    assert!(
        !gateway.wait_exit(Duration::from_secs(10)).success(),
        "killed, not exited"
    );
    let mut sent = load.finish().await;
    let answer = held.await.unwrap();
    assert!(answer.is_err(), "killed before its answer");
    sent.push(Sent {
        request_id: "kill-held".into(),
        seq: "995",
        answer,
    });
    drop(gateway);
    assert!(
        sent.iter().any(|c| c.answer.is_err()),
        "the kill caught no call in flight: the drill proved nothing"
    );

    let gateway = GatewayProcess::start(&dev, &env).await;
    let mut client = gateway.onboarding().await;
    let acknowledged = check_acknowledged(&mut client, &sent).await;
    assert!(acknowledged >= 16);
    assert!(
        sent.iter()
            .any(|c| matches!(&c.answer, Ok(a) if status_of(a) == pb::Status::Verified)),
        "the load verified somebody before the kill"
    );
    let mut pending = pending_acknowledged(&sent);
    let (settled, held_by_a_lease) = settle_unanswered(&mut client, &key, &sent).await;
    assert!(
        held_by_a_lease >= 1,
        "the case in flight was held by the dead gateway's lease"
    );
    pending.extend(settled);
    assert!(!pending.is_empty());

    println!(
        "SIGKILL drill: {} calls, {acknowledged} acknowledged before the kill, {} unanswered \
         ({held_by_a_lease} held by the dead gateway's lease until taken over), {} pending",
        sent.len(),
        sent.iter().filter(|c| c.answer.is_err()).count(),
        pending.len()
    );
    let channel = idgate::client::connect(&gateway.addr.to_string(), &dev, "reviewer-1")
        .await
        .unwrap();
    let queue_check = Instant::now();
    assert_queue_holds_exactly(&mut reviewer(channel).await, &pending).await;
    println!("SIGKILL drill: the queue matched after {:?}", queue_check.elapsed());
}

/// **Invariant 4 with Redis down, and no acknowledged case lost when it comes back.** While Verify
/// runs under load, `redis-server` is killed and started again on the same port and directory.
/// During the outage every call is answered by the gateway within its deadline with UNAVAILABLE /
/// `STORE_UNAVAILABLE` (or DEADLINE_EXCEEDED with its reason), never left hanging; after the restart
/// new calls succeed without restarting the gateway; every acknowledged case reads back unchanged,
/// and every call that failed settles on retry. The harness runs Redis with `appendfsync always`:
/// a reply is sent only after its write reached the append-only file, so a SIGKILLed Redis loses no
/// acknowledged write — with the default `everysec`, up to a second of acknowledged cases could be
/// lost, which is the operator's choice docs/operations.md documents, not the gateway's bug.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_under_load_answers_unavailable_in_time_and_loses_nothing_acknowledged() {
    if !redis_tests_enabled() {
        return;
    }
    let mut redis = RedisServer::start().await;
    let mut config = TestGateway::config();
    config.store.url = Some(redis.url());
    config.server.verify_deadline_ms = CALL_DEADLINE;
    config.server.call_deadline_ms = CALL_DEADLINE;
    let gw = TestGateway::start_with(config, None).await;
    let mut client = gw.onboarding().await;
    let key = sealing_key(&mut client).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(gw.onboarding().await);
    }
    let load = Load::start(clients, &key, "outage", &["001", "905", "945", "995"]);
    load.wait_for_acknowledged(8).await;

    redis.stop();
    // Calls made while Redis is down: each answered by the gateway, in time, with a reason.
    let mut outage = Vec::new();
    for i in 0..4 {
        let (mut probe, key) = (client.clone(), key.clone());
        outage.push(tokio::spawn(async move {
            let call = request(&key, "acct-1", &format!("down-{i}"), "001", SystemClock.now_unix());
            send(&mut probe, call).await
        }));
    }
    for call in outage {
        let status = call.await.unwrap().expect_err("no answer without the store");
        assert!(
            matches!(
                (status.code(), reason(&status).as_deref()),
                (Code::Unavailable, Some("STORE_UNAVAILABLE")) | (Code::DeadlineExceeded, Some("DEADLINE_EXCEEDED"))
            ),
            "{:?} {:?}",
            status.code(),
            reason(&status)
        );
    }

    redis.restart().await;
    // The same gateway reconnects by itself: a new call goes through (bounded poll).
    let deadline = Instant::now() + WITHIN;
    let mut n = 0;
    loop {
        n += 1;
        let call = request(&key, "acct-1", &format!("back-{n}"), "001", SystemClock.now_unix());
        match send(&mut client, call).await {
            Ok(answer) => {
                assert_eq!(status_of(&answer), pb::Status::Verified);
                break;
            }
            Err(status) => {
                assert!(Instant::now() < deadline, "never recovered: {status:?}");
                tokio::time::sleep(POLL).await;
            }
        }
    }
    load.wait_for_acknowledged(load.acknowledged.load(Ordering::SeqCst) + 4)
        .await;
    let sent = load.finish().await;
    for call in &sent {
        if let Err(status) = &call.answer {
            assert!(
                matches!(
                    reason(status).as_deref(),
                    Some("STORE_UNAVAILABLE" | "DEADLINE_EXCEEDED" | "IN_PROGRESS")
                ),
                "{} failed without a documented reason: {status:?}",
                call.request_id
            );
        }
    }
    let acknowledged = check_acknowledged(&mut client, &sent).await;
    assert!(acknowledged >= 12);
    let (_, held_by_a_lease) = settle_unanswered(&mut client, &key, &sent).await;
    println!(
        "Redis drill: {} calls, {acknowledged} acknowledged, {} failed during the outage and settled \
         ({held_by_a_lease} held by a processing lease first)",
        sent.len(),
        sent.iter().filter(|c| c.answer.is_err()).count()
    );
    gw.stop().await;
}

const SIM_KEY_ID: &str = "AKIDdrill";
const SIM_SECRET: &str = "drill-secret";

fn tencent(name: &str, endpoint: String) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        kind: ProviderKind::TencentFaceId,
        endpoint,
        secret_id: SIM_KEY_ID.into(),
        secret_key: Some(Secret::new(SIM_SECRET.into())),
        secret_key_file: None,
        region: None,
        timeout_ms: Duration::from_millis(1_000),
        max_concurrency: 8,
        scene_id: None,
        rate_limit_backoff_ms: Duration::from_millis(1_000),
        breaker: idgate::config::BreakerSettings::default(),
    }
}

/// A Tencent-protocol simulator on loopback (stops with the returned sender).
async fn tencent_sim() -> (String, tokio::sync::oneshot::Sender<()>) {
    use idgate::providers::sim::{self, SimConfig};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = SimConfig::new(
        SIM_KEY_ID,
        idgate::providers::credentials::SecretKey::new(SIM_SECRET.into()),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sim::serve(listener, config, Arc::new(SystemClock), async move {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), stop)
}

/// One Verify through a gateway whose providers are `providers`, answered within its deadline.
async fn verify_through(providers: Vec<ProviderConfig>, seq: &str) -> pb::VerifyResponse {
    let mut config = TestGateway::config();
    config.server.verify_deadline_ms = CALL_DEADLINE;
    config.providers = providers;
    let gw = TestGateway::start_with(config, None).await;
    let mut client = gw.onboarding().await;
    let key = sealing_key(&mut client).await;
    let call = request(&key, "acct-1", "mid-response", seq, SystemClock.now_unix());
    let answer = send(&mut client, call).await.expect("answered");
    gw.stop().await;
    answer
}

/// **Invariant 1 (and 4) against a provider dying mid-response.** The endpoint reads the request
/// and starts a "match" answer, then breaks it: half the body, the whole JSON short of its
/// `Content-Length`, chunks without their end, or silence after the headers. The gateway never
/// reads that as a decision: with a working provider behind it, the case is decided by that one
/// (seq 905, a mismatch there: NOT_VERIFIED — VERIFIED would mean the broken "match" was used); on
/// its own, the case goes to review. A control run with the same answer unbroken comes out
/// VERIFIED, so the broken runs could have failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_dying_mid_response_is_never_read_as_a_decision() {
    let control = BrokenProvider::start(Break::Nothing).await;
    let answer = verify_through(vec![tencent("whole", control.endpoint())], "905").await;
    assert_eq!(
        status_of(&answer),
        pb::Status::Verified,
        "the control's answer is a match"
    );
    assert_eq!(control.requests(), 1);

    let (sim, _stop_sim) = tencent_sim().await;
    for mode in [
        Break::HalfBody,
        Break::ShortOfLength,
        Break::UnterminatedChunks,
        Break::StallAfterHeaders,
    ] {
        let broken = BrokenProvider::start(mode).await;
        let providers = vec![tencent("dying", broken.endpoint()), tencent("backup", sim.clone())];
        let answer = verify_through(providers, "905").await;
        assert_eq!(
            status_of(&answer),
            pb::Status::NotVerified,
            "{mode:?}: failed over to the working provider"
        );
        assert_eq!(
            broken.requests(),
            1,
            "{mode:?}: the request reached the dying provider once"
        );

        let alone = BrokenProvider::start(mode).await;
        let answer = verify_through(vec![tencent("dying", alone.endpoint())], "905").await;
        assert_eq!(
            status_of(&answer),
            pb::Status::PendingReview,
            "{mode:?}: no provider answered, to review"
        );
        assert_eq!(alone.requests(), 1, "{mode:?}: a billed call is never retried blindly");
    }
}

/// Polls the audit trail (bounded) until the retention sweep has recorded an expiry.
async fn wait_for_retention_sweep(gw: &TestGateway) {
    let mut audit = pb::audit_service_client::AuditServiceClient::new(gw.channel("admin").await);
    let deadline = Instant::now() + WITHIN;
    loop {
        let trail = audit
            .list_audit_events(pb::ListAuditEventsRequest::default())
            .await
            .unwrap()
            .into_inner();
        if trail.events.iter().any(|e| e.action == "retention_expired") {
            return;
        }
        assert!(Instant::now() < deadline, "the retention sweep never expired the case");
        tokio::time::sleep(POLL).await;
    }
}

async fn read_status(client: &mut VerificationServiceClient<Channel>, answer: &pb::VerifyResponse) -> pb::Status {
    let read = client
        .get_verification(pb::GetVerificationRequest {
            verification_id: answer.verification_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    status_of(&read)
}

/// The retry hint of a rate-limited answer: within the hour window, never zero or negative.
fn assert_rate_limited(status: &tonic::Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(status).as_deref(), Some("RATE_LIMITED"));
    let delay = tonic_types::StatusExt::get_details_retry_info(status)
        .and_then(|r| r.retry_delay)
        .expect("a retry hint");
    assert!(
        delay >= Duration::from_secs(1) && delay <= Duration::from_secs(3_600),
        "{delay:?}"
    );
}

/// Sets the clock to `now` and sends new requests of `account` until one is rate limited; returns
/// how many were admitted.
async fn admitted_until_limited(
    client: &mut VerificationServiceClient<Channel>,
    key: &pb::GetSealingKeyResponse,
    clock: &ManualClock,
    (account, tag): (&str, &str),
    now: i64,
) -> usize {
    clock.set(now);
    for i in 0..10 {
        match send(client, request(key, account, &format!("{tag}-{i}"), "001", now)).await {
            Ok(answer) => assert_eq!(status_of(&answer), pb::Status::Verified),
            Err(status) => {
                assert_rate_limited(&status);
                return i;
            }
        }
    }
    panic!("{account} was never rate limited");
}

/// The clock drill on one store (`None`: embedded).
async fn clock_jumps(redis_url: Option<String>) {
    let t0 = SystemClock.now_unix();
    let clock = ManualClock::new(t0);
    let mut config: Config = TestGateway::config();
    config.store.url.clone_from(&redis_url);
    config.retention.pending_review_ttl_seconds = Duration::from_secs(3_600);
    config.retention.sweep_interval_seconds = Duration::from_secs(1);
    config.review.lease_seconds = Duration::from_secs(2);
    config.limits.verifications_per_account_per_hour = 3;
    let gw = TestGateway::start_with(config, Some(clock.clone())).await;
    let mut client = gw.onboarding().await;
    let key = sealing_key(&mut client).await;
    let mut first = reviewer(gw.channel("reviewer-1").await).await;
    let mut second = reviewer(gw.channel("reviewer-2").await).await;

    let pending = send(&mut client, request(&key, "acct-a", "jump-a", "945", t0))
        .await
        .unwrap();
    assert_eq!(status_of(&pending), pb::Status::PendingReview);
    let verified = send(&mut client, request(&key, "acct-b", "jump-b", "001", t0))
        .await
        .unwrap();
    assert_eq!(status_of(&verified), pb::Status::Verified);

    // Forward past the retention limit: the sweep expires the pending case with its data.
    clock.set(t0 + 3_600 + 60);
    wait_for_retention_sweep(&gw).await;
    assert_eq!(read_status(&mut client, &pending).await, pb::Status::Expired);
    assert!(claim(&mut first).await.is_none(), "nothing left to review");
    if let Some(url) = &redis_url {
        // The wrapped data key and the body are gone from Redis itself (crypto-shredding).
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let left: Vec<String> = redis::cmd("KEYS")
            .arg(format!("*{{{}}}:pii:*", pending.verification_id))
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
    }

    // Back, to before the cases were made: nothing comes back.
    let back = t0 - 3_600;
    clock.set(back);
    assert_eq!(read_status(&mut client, &pending).await, pb::Status::Expired);
    assert_eq!(read_status(&mut client, &verified).await, pb::Status::Verified);
    let replays = [
        (&pending, "acct-a", "jump-a", "945", pb::Status::Expired),
        (&verified, "acct-b", "jump-b", "001", pb::Status::Verified),
    ];
    for (answer, account, id, seq, now_status) in replays {
        let replay = send(&mut client, request(&key, account, id, seq, back)).await.unwrap();
        assert_eq!(
            (replay.verification_id.as_str(), status_of(&replay)),
            (answer.verification_id.as_str(), now_status),
            "a replay is answered from the case as it stands, never run afresh"
        );
    }
    assert!(
        claim(&mut first).await.is_none(),
        "the expired case is not queued again"
    );
    let stats = queue_stats(&mut first).await;
    assert_eq!((stats.pending, stats.claimed), (0, 0));

    // A case queued and leased while the clock is a day ahead…
    let ahead = t0 + 86_400;
    clock.set(ahead);
    let late = send(&mut client, request(&key, "acct-c", "jump-c", "945", ahead))
        .await
        .unwrap();
    let leased = claim(&mut first).await.expect("the new case is claimed");
    assert_eq!(leased.case_id, late.verification_id);
    // …then the clock goes back a day: no negative age in the figures…
    clock.set(t0);
    let stats = queue_stats(&mut second).await;
    assert!(stats.oldest_pending_age_seconds >= 0, "{stats:?}");
    assert_eq!(stats.pending + stats.claimed, 1, "{stats:?}");
    // …and the lease ends within one lease length of the clock as it is now, not a day later. (On
    // Redis the queue's own idle time runs on Redis's clock, so this polls in real time.)
    clock.set(t0 + 3);
    let deadline = Instant::now() + WITHIN;
    let taken = loop {
        if let Some(case) = claim(&mut second).await {
            break case;
        }
        assert!(
            Instant::now() < deadline,
            "a lease taken a day ahead still holds after the clock went back"
        );
        tokio::time::sleep(POLL).await;
    };
    assert_eq!(taken.case_id, late.verification_id);

    // Rate windows: the limit holds in each window, the hint stays within the window, and a jump
    // back admits no more than the limit.
    let mut admitted =
        async |tag, now| admitted_until_limited(&mut client, &key, &clock, ("acct-rate", tag), now).await;
    assert_eq!(admitted("rate-now", t0).await, 3);
    assert_eq!(admitted("rate-later", t0 + 7_200).await, 3, "a new window");
    assert!(admitted("rate-back", t0).await <= 3, "back in the first window");
    gw.stop().await;
}

/// **Invariant 3 and bounded leases across clock jumps, embedded store.** With the injectable clock
/// jumped past the retention limit, the sweep expires the pending case and its data; jumped back,
/// nothing comes back (reads and replays answer EXPIRED / the recorded status, the queue stays
/// empty), no figure goes negative, a review lease taken while the clock was ahead ends within a
/// lease length of the clock as it now is, and rate windows keep their limit and a sane retry hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_jumps_on_the_embedded_store_bring_nothing_back_and_keep_leases_bounded() {
    clock_jumps(None).await;
}

/// **The same clock drill on Redis** (leases are judged on the gateway's clock; the queue's idle
/// times on Redis's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_jumps_on_redis_bring_nothing_back_and_keep_leases_bounded() {
    if !redis_tests_enabled() {
        return;
    }
    let redis = RedisServer::start().await;
    clock_jumps(Some(redis.url())).await;
}

/// A case begun for `request` at `now`, processing under a 30-second lease.
fn processing(id: &str, request: &str, now: i64) -> idgate::store::CaseRecord {
    idgate::store::CaseRecord::processing(
        id,
        idgate::domain::AccountId::parse("acct-1").unwrap(),
        idgate::domain::RequestId::parse(request).unwrap(),
        "onboarding-dev",
        idgate::domain::Purpose::ShortVideo,
        "fp",
        now,
        now + 30,
    )
}

/// The processing-lease half of the clock drill, on one store.
async fn processing_lease_after_the_clock_went_back(store: &dyn idgate::store::CaseStore) {
    use idgate::store::Begin;
    const NOW: i64 = 1_795_000_000;
    // A gateway whose clock was a day ahead began the case, then died; the clock is back.
    let ahead = NOW + 86_400;
    let begun = store
        .begin(processing("vf_ahead", "r-ahead", ahead), ahead)
        .await
        .unwrap();
    assert!(matches!(begun, Begin::Started(_)));
    match store.begin(processing("vf_retry", "r-ahead", NOW), NOW).await.unwrap() {
        Begin::Started(case) => assert_eq!(case.id, "vf_ahead", "taken over at once"),
        Begin::Existing(case) => panic!("stuck processing until the clock catches up: {:?}", case.status),
    }
    // A gateway 20 s ahead (clocks may disagree by up to one lease length) keeps its live lease.
    let skewed = NOW + 20;
    let begun = store
        .begin(processing("vf_skew", "r-skew", skewed), skewed)
        .await
        .unwrap();
    assert!(matches!(begun, Begin::Started(_)));
    assert!(matches!(
        store.begin(processing("vf_other", "r-skew", NOW), NOW).await.unwrap(),
        Begin::Existing(_)
    ));
}

/// **No case stuck processing after a clock jump back, embedded store** (the gateway-level twin is
/// the unit test `verify::a_lease_from_a_clock_that_went_back_does_not_hold_the_case`).
#[tokio::test]
async fn a_processing_lease_from_a_clock_that_went_back_does_not_hold_on_the_embedded_store() {
    processing_lease_after_the_clock_went_back(&idgate::store::memory::MemoryStore::new()).await;
}

/// **No case stuck processing after a clock jump back, Redis** (`cases_claim.lua`).
#[tokio::test]
async fn a_processing_lease_from_a_clock_that_went_back_does_not_hold_on_redis() {
    let Some(store) = support::redis::standalone_redis().await else {
        return;
    };
    processing_lease_after_the_clock_went_back(&store).await;
}
