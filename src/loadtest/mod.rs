//! `idgate loadtest`: drives `Verify` (optionally mixed with `GetVerification`) over mutual TLS at a
//! target rate (open loop) or concurrency (closed loop), optionally after a bare echo baseline of the
//! same message size on the same TLS and server stack, and reports both (docs/api.md §6).
//!
//! Payloads are prepared by a pool that fills before the timed phase and keeps refilling in the
//! background; a call that finds it empty is counted (`pool_waits`) so that a run limited by the tool
//! says so. Latency in open loop is counted from the intended send time.
//!
//! In closed loop a caller whose `Verify` was shed (`RESOURCE_EXHAUSTED`) sends the same sealed request
//! again as its next call, as a real client retries a refused call with its idempotency key: the shed
//! call did no work, so its request id is unused. Each attempt is counted as a call. Besides being what
//! clients do, it keeps the tool from sealing a fresh 200 KB payload for every shed call, which on a
//! shared machine took the CPU the gateway needed (see docs/performance.md); the resend
//! is a cheap clone, the ciphertext being a shared `Bytes`. Before resending, the caller waits the
//! delay the gateway's `RetryInfo` suggests, jittered (half to one and a half times it) so that shed
//! callers do not come back together, as gRPC clients honour retry pushback; `--ignore-retry-info`
//! resends at once instead, to see what callers that ignore the hint do to the gateway.
//!
//! Runs only against a development gateway (one whose certificate the development CA of `dev-certs` /
//! `serve --dev` issued), unless `production_i_know` says otherwise: synthetic identities sent to a
//! production gateway reach real providers and fill its review queue.
//!
//! Only ever aims at the target it is given and at its own loopback echo. Never prints, logs or puts in
//! an error the synthetic identities it sends, nor any status message the target returns.

pub mod echo;
pub mod payload;
pub mod report;
pub mod schedule;

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::Channel;

use self::echo::pb::echo_service_client::EchoServiceClient;
use self::payload::{Factory, Identities, Mix};
use self::report::{CallResult, Report, RunSummary, ScheduleSummary, Settings, Stats};
use self::schedule::{Lag, Schedule};
use crate::client::{connect_inspected, connect_named, server_name};
use crate::pb;
use crate::pb::verification_service_client::VerificationServiceClient;

/// Open loop at a rate, or closed loop with a number of workers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Requests per second, sent on schedule whatever the target does.
    Rate(f64),
    /// Workers, each sending its next request when the previous is answered.
    Concurrency(usize),
}

/// Everything a run needs. No identities in here: they are made per request.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: String,
    /// The name the gateway's certificate must carry (default: the host of `target`).
    pub tls_name: Option<String>,
    /// Run against a gateway whose certificate the development CA did not issue.
    pub production_i_know: bool,
    pub certs: PathBuf,
    pub purpose: pb::Purpose,
    /// Size of the face JPEG each request carries (0: none).
    pub image_bytes: usize,
    pub load: Load,
    pub duration: Duration,
    pub warmup: Duration,
    /// HTTP/2 connections the calls are spread over.
    pub connections: usize,
    /// The per-call gRPC deadline.
    pub timeout: Duration,
    pub mix: Mix,
    /// Share of calls (0–1) that are `GetVerification` of an earlier answer instead of `Verify`.
    pub get_ratio: f64,
    pub baseline: bool,
    /// Print a live progress line on stderr.
    pub progress: bool,
    /// Memory the prepared-payload pool may hold.
    pub pool_bytes: usize,
    /// Threads that seal payloads into the pool.
    pub pool_threads: usize,
    /// Open loop: most calls in flight at once (past it, sending waits and the schedule slips).
    pub max_in_flight: usize,
    /// Closed loop: a shed caller waits the delay the gateway's `RetryInfo` suggests before resending.
    pub honour_retry_info: bool,
}

const VERIFY: &str = "Verify";
const GET: &str = "GetVerification";
const ECHO: &str = "Echo";
/// The echo answers with about as many bytes as a `VerifyResponse` carries.
const ECHO_REPLY_BYTES: u32 = 64;
/// Open-loop calls record into this many shards (by request number), so that they rarely contend.
const SHARDS: usize = 16;
/// Most recent verification ids kept for `GetVerification`.
const RECENT_IDS: usize = 4096;

/// Runs the baseline (if asked) and then the target; returns both phases' figures.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    check(options)?;
    let (gateway, presented) = connect_inspected(
        &options.target,
        options.tls_name.as_deref(),
        &options.certs,
        "onboarding",
    )
    .await?;
    if !options.production_i_know && !issued_by_dev_ca(&presented) {
        return Err(NotDevelopment.into());
    }
    // The echo serves the same server certificate: it is checked against the same name.
    let tls_name = server_name(&options.target, options.tls_name.as_deref())?;
    let mut channels = vec![gateway];
    channels.extend(connect_all(&options.target, &tls_name, options.connections - 1, options).await?);
    let key = VerificationServiceClient::new(channels[0].clone())
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("GetSealingKey: {}", report::code_name(s.code())))?
        .into_inner();
    let seed = u64::from_be_bytes(crate::crypto::random::bytes().context("randomness")?);
    let run_id = crate::crypto::random::id("").context("randomness")?;
    let factory = Arc::new(Factory {
        key,
        purpose: options.purpose,
        identities: Identities { mix: options.mix, seed },
        face: if options.image_bytes == 0 {
            Vec::new()
        } else {
            payload::jpeg(640, 480, options.image_bytes)
        },
        run_id: run_id[..10].to_owned(),
        consent_unix: crate::clock::Clock::now_unix(&crate::clock::SystemClock),
    });
    let message_bytes = factory.request(0).context("sealing to the gateway key")?.encoded_len();

    let baseline = if options.baseline {
        let server = echo::EchoServer::start(&options.certs).await?;
        let echo_channels = connect_all(&server.addr.to_string(), &tls_name, options.connections, options).await?;
        let clients = echo_channels
            .into_iter()
            .map(|c| Client::Echo(EchoServiceClient::new(c).max_decoding_message_size(1 << 20)))
            .collect();
        let summary = phase(options, "baseline", clients, factory.clone(), message_bytes).await;
        server.stop().await;
        Some(summary?)
    } else {
        None
    };
    let clients = channels
        .into_iter()
        .map(|c| Client::Gateway(VerificationServiceClient::new(c).max_decoding_message_size(1 << 20)))
        .collect();
    let target = phase(options, "target", clients, factory, message_bytes).await?;
    Ok(Report::new(target, baseline))
}

fn check(options: &Options) -> anyhow::Result<()> {
    match options.load {
        Load::Rate(r) if !(r.is_finite() && r > 0.0) => anyhow::bail!("--rate must be above zero"),
        Load::Concurrency(0) => anyhow::bail!("--concurrency must be at least 1"),
        _ => {}
    }
    anyhow::ensure!(options.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(!options.duration.is_zero(), "--duration must be above zero");
    anyhow::ensure!(!options.timeout.is_zero(), "--timeout must be above zero");
    anyhow::ensure!(
        (0.0..=1.0).contains(&options.get_ratio),
        "--get-ratio is between 0 and 1"
    );
    anyhow::ensure!(
        options.image_bytes == 0 || (64..=crate::domain::MAX_IMAGE_BYTES).contains(&options.image_bytes),
        "--image-kb must be 0 (no face) or up to 4096"
    );
    Ok(())
}

async fn connect_all(target: &str, tls_name: &str, n: usize, options: &Options) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n {
        channels.push(connect_named(target, Some(tls_name), &options.certs, "onboarding").await?);
    }
    Ok(channels)
}

/// The target's certificate was not issued by the development CA, and the run was not told it may go on.
#[derive(Debug, thiserror::Error)]
#[error(
    "the target's certificate was not issued by the idgate development CA, so it may be a production gateway: \
     load from this tool would reach real providers and fill its review queue. Pass --production-i-know to run anyway"
)]
pub struct NotDevelopment;

/// Whether the development CA (`dev-certs`, `serve --dev`) issued this certificate (DER), read from its
/// issuer name (the handshake has verified the signature against `ca.pem`).
pub fn issued_by_dev_ca(der: &[u8]) -> bool {
    use x509_parser::prelude::{FromDer as _, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    let issuer = cert.issuer();
    exactly(
        issuer.iter_organization().map(|a| a.as_str()),
        crate::pki::DEV_CA_ORGANIZATION,
    ) && exactly(issuer.iter_common_name().map(|a| a.as_str()), crate::pki::DEV_CA_NAME)
}

/// Whether `values` holds one value, `wanted`, and no other.
fn exactly<'a, E>(mut values: impl Iterator<Item = Result<&'a str, E>>, wanted: &str) -> bool {
    matches!((values.next(), values.next()), (Some(Ok(v)), None) if v == wanted)
}

/// One HTTP/2 connection's client, to the gateway or to the echo.
#[derive(Clone)]
enum Client {
    Gateway(VerificationServiceClient<Channel>),
    Echo(EchoServiceClient<Channel>),
}

/// A prepared request: what the pool holds.
enum Prepared {
    Verify(pb::VerifyRequest),
    Echo(echo::pb::EchoRequest),
}

/// What one call sends.
enum Job {
    Prepared(Prepared),
    /// `GetVerification` of an earlier answer (to the echo: a message of the same size).
    Get(String),
}

impl Job {
    /// The same call again, for a `Verify` whose answer was "shed, retry later". `None` for calls
    /// that are never shed.
    fn resend(&self) -> Option<Job> {
        match self {
            Job::Prepared(Prepared::Verify(request)) => Some(Job::Prepared(Prepared::Verify(request.clone()))),
            Job::Prepared(Prepared::Echo(_)) | Job::Get(_) => None,
        }
    }
}

/// The prepared-payload pool: sealing threads in front, callers behind.
struct Pool {
    rx: tokio::sync::Mutex<mpsc::Receiver<Prepared>>,
    waits: AtomicU64,
}

impl Pool {
    /// Starts `threads` sealing threads and waits until `capacity` requests are ready.
    async fn fill(factory: Arc<Factory>, for_echo: bool, capacity: usize, threads: usize) -> anyhow::Result<Self> {
        let (tx, mut rx) = mpsc::channel(capacity);
        let next = Arc::new(AtomicU64::new(0));
        let mut producers = Vec::new();
        for _ in 0..threads.max(1) {
            let (tx, next, factory) = (tx.clone(), next.clone(), factory.clone());
            producers.push(std::thread::spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Ok(request) = factory.request(index) else { break };
                    let item = if for_echo {
                        Prepared::Echo(echo::pb::EchoRequest {
                            payload: request.encode_to_vec(),
                            reply_bytes: ECHO_REPLY_BYTES,
                        })
                    } else {
                        Prepared::Verify(request)
                    };
                    if tx.blocking_send(item).is_err() {
                        break; // the phase is over
                    }
                }
            }));
        }
        drop(tx);
        while rx.len() < capacity {
            if producers.iter().all(|p| p.is_finished()) {
                // Only a bad key stops sealing, and the first request was sealed before we got here.
                rx.close();
                anyhow::bail!("the payload pool stopped filling");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            if rx.is_closed() {
                break;
            }
        }
        Ok(Self {
            rx: tokio::sync::Mutex::new(rx),
            waits: AtomicU64::new(0),
        })
    }

    async fn take(&self) -> Option<Prepared> {
        let mut rx = self.rx.lock().await;
        match rx.try_recv() {
            Ok(p) => Some(p),
            Err(mpsc::error::TryRecvError::Empty) => {
                self.waits.fetch_add(1, Ordering::Relaxed);
                rx.recv().await
            }
            Err(mpsc::error::TryRecvError::Disconnected) => None,
        }
    }
}

/// What every call of a phase shares.
struct Shared {
    pool: Pool,
    shards: Vec<Mutex<Stats>>,
    recent: Mutex<VecDeque<String>>,
    /// Calls started (numbers calls for the get ratio).
    started: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    get_ratio: f64,
    timeout: Duration,
    measure_start: Instant,
}

impl Shared {
    fn shard(&self, n: usize) -> std::sync::MutexGuard<'_, Stats> {
        self.shards[n % SHARDS].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next call's job: a `GetVerification` for the `get_ratio` share (once there is an answer to
    /// ask about), a prepared request otherwise. `None` when the pool is closed.
    async fn job(&self) -> Option<Job> {
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        let r = self.get_ratio;
        if r > 0.0 && ((n + 1) as f64 * r).floor() > (n as f64 * r).floor() {
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if !recent.is_empty() {
                return Some(Job::Get(recent[(n as usize) % recent.len()].clone()));
            }
        }
        self.pool.take().await.map(Job::Prepared)
    }

    fn remember(&self, verification_id: String) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() >= RECENT_IDS {
            recent.pop_front();
        }
        recent.push_back(verification_id);
    }

    /// Records a call that started (or was meant to start) at `from` and ended now.
    fn record(&self, shard: usize, method: &'static str, result: CallResult, from: Instant) {
        let now = Instant::now();
        self.done.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if from >= self.measure_start {
            self.shard(shard)
                .record(method, result, now - from, now - self.measure_start);
        }
    }

    fn merged(&self) -> Stats {
        let mut all = Stats::default();
        for shard in &self.shards {
            all.merge(&shard.lock().unwrap_or_else(|e| e.into_inner()));
        }
        all
    }
}

fn status_name(status: i32) -> &'static str {
    pb::Status::try_from(status)
        .map(|s| s.as_str_name())
        .map(|s| s.strip_prefix("STATUS_").unwrap_or(s))
        .unwrap_or("UNKNOWN_STATUS")
}

/// What one call came to: the method, its result and, for a shed call, the delay the target
/// suggested in its `RetryInfo`.
struct Outcome {
    method: &'static str,
    result: CallResult,
    retry_after: Option<Duration>,
}

/// The delay a refused call's `RetryInfo` suggests, if it carries one.
fn suggested_delay(status: &tonic::Status) -> Option<Duration> {
    use tonic_types::StatusExt as _;
    if status.code() != tonic::Code::ResourceExhausted {
        return None;
    }
    status.get_details_retry_info().and_then(|info| info.retry_delay)
}

/// `delay` scaled by a factor in [0.5, 1.5) drawn from `state` (xorshift), so that callers shed
/// together do not come back together.
fn jittered(delay: Duration, state: &mut u64) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    let unit = (*state >> 11) as f64 / (1u64 << 53) as f64;
    delay.mul_f64(0.5 + unit)
}

/// Makes one call with the per-call deadline (sent as `grpc-timeout`, and enforced here too).
async fn call(client: &mut Client, job: Job, shared: &Shared) -> Outcome {
    let timeout = shared.timeout;
    fn with_deadline<T>(message: T, timeout: Duration) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        request
    }
    let (method, result) = match (client, job) {
        (Client::Gateway(c), Job::Prepared(Prepared::Verify(r))) => {
            let answer = tokio::time::timeout(timeout, c.verify(with_deadline(r, timeout))).await;
            (VERIFY, answer.map(|a| a.map(|a| a.into_inner())))
        }
        (Client::Gateway(c), Job::Get(id)) => {
            let request = pb::GetVerificationRequest { verification_id: id };
            let answer = tokio::time::timeout(timeout, c.get_verification(with_deadline(request, timeout))).await;
            (GET, answer.map(|a| a.map(|a| a.into_inner())))
        }
        (Client::Echo(c), job) => {
            let request = match job {
                Job::Prepared(Prepared::Echo(r)) => r,
                Job::Prepared(Prepared::Verify(r)) => echo::pb::EchoRequest {
                    payload: r.encode_to_vec(),
                    reply_bytes: ECHO_REPLY_BYTES,
                },
                Job::Get(id) => echo::pb::EchoRequest {
                    payload: pb::GetVerificationRequest { verification_id: id }.encode_to_vec(),
                    reply_bytes: ECHO_REPLY_BYTES,
                },
            };
            let answer = tokio::time::timeout(timeout, c.echo(with_deadline(request, timeout))).await;
            let (result, retry_after) = match answer {
                Err(_) => (Err(tonic::Code::DeadlineExceeded), None),
                Ok(Err(status)) => (Err(status.code()), suggested_delay(&status)),
                Ok(Ok(_)) => (Ok("ECHOED"), None),
            };
            return Outcome {
                method: ECHO,
                result,
                retry_after,
            };
        }
        (Client::Gateway(_), Job::Prepared(Prepared::Echo(_))) => {
            // The gateway phase's pool holds Verify requests only.
            return Outcome {
                method: ECHO,
                result: Err(tonic::Code::Internal),
                retry_after: None,
            };
        }
    };
    let (result, retry_after) = match result {
        Err(_) => (Err(tonic::Code::DeadlineExceeded), None),
        Ok(Err(status)) => (Err(status.code()), suggested_delay(&status)),
        Ok(Ok(answer)) => {
            if method == VERIFY && !answer.verification_id.is_empty() {
                shared.remember(answer.verification_id);
            }
            (Ok(status_name(answer.status)), None)
        }
    };
    Outcome {
        method,
        result,
        retry_after,
    }
}

/// One phase: fills the pool, runs warm-up and the measured window, summarises.
async fn phase(
    options: &Options,
    name: &'static str,
    clients: Vec<Client>,
    factory: Arc<Factory>,
    message_bytes: usize,
) -> anyhow::Result<RunSummary> {
    let for_echo = matches!(clients.first(), Some(Client::Echo(_)));
    let service = if for_echo {
        "idgate.loadtest.v1.EchoService"
    } else {
        "idgate.v1.VerificationService"
    };
    let total = options.warmup + options.duration;
    let wanted = match options.load {
        Load::Rate(r) => (r * total.as_secs_f64()).ceil() as usize + 1,
        Load::Concurrency(_) => 20_000,
    };
    let capacity = wanted.min(options.pool_bytes / message_bytes.max(1)).max(1);
    let pool = Pool::fill(factory, for_echo, capacity, options.pool_threads).await?;

    let start = Instant::now();
    let shared = Arc::new(Shared {
        pool,
        shards: (0..SHARDS).map(|_| Mutex::new(Stats::default())).collect(),
        recent: Mutex::new(VecDeque::new()),
        started: AtomicU64::new(0),
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        get_ratio: options.get_ratio,
        timeout: options.timeout,
        measure_start: start + options.warmup,
    });
    let progress = options
        .progress
        .then(|| tokio::spawn(progress_line(name, shared.clone(), start)));
    let schedule = match options.load {
        Load::Rate(rate) => Some(open_loop(&shared, &clients, rate, start, total, options.max_in_flight).await),
        Load::Concurrency(c) => {
            closed_loop(&shared, &clients, c, start + total, options.honour_retry_info).await;
            None
        }
    };
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let stats = shared.merged();
    let settings = Settings {
        mode: match options.load {
            Load::Rate(_) => "open",
            Load::Concurrency(_) => "closed",
        }
        .into(),
        rate: match options.load {
            Load::Rate(r) => Some(r),
            Load::Concurrency(_) => None,
        },
        concurrency: match options.load {
            Load::Rate(_) => None,
            Load::Concurrency(c) => Some(c),
        },
        connections: options.connections,
        duration_s: options.duration.as_secs_f64(),
        warmup_s: options.warmup.as_secs_f64(),
        timeout_ms: options.timeout.as_millis() as u64,
        message_bytes,
        // Only callers in closed loop resend; open loop sends on schedule whatever the answers.
        honours_retry_info: options.honour_retry_info && matches!(options.load, Load::Concurrency(_)),
    };
    let waits = shared.pool.waits.load(Ordering::Relaxed);
    let schedule = schedule.map(|lag| ScheduleSummary {
        late_requests: lag.late,
        max_lag_ms: lag.max.as_secs_f64() * 1000.0,
    });
    Ok(RunSummary::new(service, settings, &stats, schedule, waits))
}

async fn closed_loop(shared: &Arc<Shared>, clients: &[Client], workers: usize, end: Instant, honour_retry_info: bool) {
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let shared = shared.clone();
        let mut client = clients[w % clients.len()].clone();
        // Any non-zero seed will do; distinct per caller.
        let mut jitter = 0x9E37_79B9_7F4A_7C15_u64 ^ (w as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        set.spawn(async move {
            let mut shed: Option<Job> = None;
            while Instant::now() < end {
                let job = match shed.take() {
                    Some(job) => job,
                    None => match shared.job().await {
                        Some(job) => job,
                        None => break,
                    },
                };
                let again = job.resend();
                let from = Instant::now();
                let outcome = call(&mut client, job, &shared).await;
                if outcome.result == Err(tonic::Code::ResourceExhausted) {
                    shed = again;
                }
                shared.record(w, outcome.method, outcome.result, from);
                if let Some(delay) = outcome.retry_after.filter(|_| honour_retry_info) {
                    // Never past the end of the phase, whatever delay the target suggests.
                    let now = Instant::now();
                    let left = end.saturating_duration_since(now);
                    tokio::time::sleep_until(now + jittered(delay.min(left), &mut jitter).min(left)).await;
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
}

async fn open_loop(
    shared: &Arc<Shared>,
    clients: &[Client],
    rate: f64,
    start: Instant,
    total: Duration,
    max_in_flight: usize,
) -> Lag {
    let mut lag = Lag::default();
    let Some(schedule) = Schedule::new(start, rate, total) else {
        return lag;
    };
    let mut set = tokio::task::JoinSet::new();
    let mut n: u64 = 0;
    while let Some(intended) = schedule.intended(n) {
        if intended > Instant::now() {
            tokio::time::sleep_until(intended).await;
        }
        while set.try_join_next().is_some() {}
        while set.len() >= max_in_flight.max(1) {
            set.join_next().await;
        }
        let Some(job) = shared.job().await else { break };
        lag.note(intended, Instant::now());
        let shared = shared.clone();
        let mut client = clients[(n as usize) % clients.len()].clone();
        let shard = n as usize;
        set.spawn(async move {
            let outcome = call(&mut client, job, &shared).await;
            shared.record(shard, outcome.method, outcome.result, intended);
        });
        n += 1;
    }
    while set.join_next().await.is_some() {}
    lag
}

/// Rewrites one stderr line every second: rate, errors, p99 so far.
async fn progress_line(name: &'static str, shared: Arc<Shared>, start: Instant) {
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = Instant::now();
        let done = shared.done.load(Ordering::Relaxed);
        let rate = (done - last.1) as f64 / (now - last.0).as_secs_f64();
        last = (now, done);
        let stage = if now < shared.measure_start {
            "warm-up"
        } else {
            "measuring"
        };
        let p99 = {
            let stats = shared.merged();
            if stats.latency.is_empty() {
                0.0
            } else {
                stats.latency.value_at_quantile(0.99) as f64 / 1000.0
            }
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{name} {stage} {:>6.1}s  {rate:>8.1} calls/s  errors {:>6}  p99 {p99:>8.2} ms   ",
            (now - start).as_secs_f64(),
            shared.failed.load(Ordering::Relaxed)
        );
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The delay is read from the gateway's own shed answer, and only from a shed answer.
    #[test]
    fn the_suggested_delay_is_read_from_a_shed_answer() {
        let shed = crate::transport::shedding::overloaded(Duration::from_millis(750));
        assert_eq!(suggested_delay(&shed), Some(Duration::from_millis(750)));
        assert_eq!(suggested_delay(&tonic::Status::resource_exhausted("no details")), None);
        assert_eq!(suggested_delay(&tonic::Status::unavailable("other")), None);
    }

    /// Jitter stays within half to one and a half times the delay, and spreads callers out.
    #[test]
    fn jitter_stays_within_half_and_one_and_a_half_times_the_delay() {
        let delay = Duration::from_millis(1000);
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let draws: Vec<Duration> = (0..10_000).map(|_| jittered(delay, &mut state)).collect();
        assert!(draws.iter().all(|d| *d >= delay / 2 && *d < delay * 3 / 2));
        let below = draws.iter().filter(|d| **d < delay).count();
        assert!((4_000..6_000).contains(&below), "about half below the delay: {below}");
    }

    #[test]
    fn status_names_drop_the_prefix() {
        assert_eq!(status_name(pb::Status::Verified as i32), "VERIFIED");
        assert_eq!(status_name(pb::Status::PendingReview as i32), "PENDING_REVIEW");
        assert_eq!(status_name(99), "UNKNOWN_STATUS");
    }

    #[test]
    fn a_shed_verify_is_resent_as_the_same_request_and_nothing_else_is() {
        let request = pb::VerifyRequest {
            request_id: "lt-run-7".into(),
            account_id: "lt-run-7".into(),
            payload: Some(pb::SealedPayload {
                key_id: "sk-1".into(),
                enc: vec![1; 32],
                ciphertext: vec![2; 1024].into(),
            }),
            ..Default::default()
        };
        let again = Job::Prepared(Prepared::Verify(request.clone())).resend();
        match again {
            Some(Job::Prepared(Prepared::Verify(resent))) => assert_eq!(resent, request),
            _ => panic!("a Verify is resent as itself"),
        }
        assert!(Job::Get("vf_x".into()).resend().is_none());
        let echo = echo::pb::EchoRequest {
            payload: vec![0; 8],
            reply_bytes: 8,
        };
        assert!(Job::Prepared(Prepared::Echo(echo)).resend().is_none());
    }
}
