//! The provider layer against real simulator servers on 127.0.0.1:0, both vendor protocols:
//! failover on closed ports, 5xx and hangs, the deadline budget, circuit breakers (counted at the
//! simulator), concurrency limits, rate-limit back-off, no second call to a provider that may have
//! billed, Tencent ↔ Alibaba failover, and the simulator's own signature and admin behaviour.
//!
//! No sleeps as synchronization, no fixed ports; the only timing assertion is "answered within
//! the deadline".
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use idgate::clock::ManualMonotonic;
use idgate::clock::{Clock, ManualClock, SystemClock};
use idgate::providers::aliyun::{AliyunCloudAuth, AliyunConfig};
use idgate::providers::breaker::{BreakerConfig, BreakerState};
use idgate::providers::credentials::SecretKey;
use idgate::providers::router::{Route, Routed, Router};
use idgate::providers::sim::{self, Faults, SimConfig, SimControl};
use idgate::providers::tencent::{TencentConfig, TencentFaceId};
use idgate::providers::{Outcome, Provider, ProviderError, ProviderRequest};
use support::sim_admin::{requests, set_faults};
use tokio::sync::oneshot;
use tokio::time::Instant;

const KEY_ID: &str = "AKIDloopback";
const SECRET: &str = "loopback-secret";
const NAME: &str = "测试姓名";
const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Vendor {
    Tencent,
    Aliyun,
}

const BOTH: [Vendor; 2] = [Vendor::Tencent, Vendor::Aliyun];

struct Sim {
    addr: SocketAddr,
    control: Arc<SimControl>,
    _stop: oneshot::Sender<()>,
}

async fn start(vendor: Vendor, faults: Faults) -> Sim {
    start_with_clock(vendor, faults, Arc::new(SystemClock)).await
}

async fn start_with_clock(vendor: Vendor, faults: Faults, clock: Arc<dyn Clock>) -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let control = SimControl::new(faults).unwrap();
    let base = match vendor {
        Vendor::Tencent => SimConfig::new(KEY_ID, SecretKey::new(SECRET.into())),
        Vendor::Aliyun => SimConfig::aliyun(KEY_ID, SecretKey::new(SECRET.into())),
    };
    let config = SimConfig {
        control: control.clone(),
        ..base
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(sim::serve(listener, config, clock, async move {
        let _ = stopped.await;
    }));
    Sim {
        addr,
        control,
        _stop: stop,
    }
}

/// A simulator with `faults` and one without, same protocol.
async fn faulty_and_clean(vendor: Vendor, faults: Faults) -> (Sim, Sim) {
    (start(vendor, faults).await, start(vendor, Faults::default()).await)
}

/// A loopback port nobody listens on.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn http() -> reqwest::Client {
    idgate::providers::http::http_client(Duration::from_secs(30), rustls::RootCertStore::empty()).unwrap()
}

fn provider_with(
    vendor: Vendor,
    name: &str,
    addr: SocketAddr,
    timeout: Duration,
    secret: &str,
    clock: Arc<dyn Clock>,
) -> Arc<dyn Provider> {
    match vendor {
        Vendor::Tencent => Arc::new(
            TencentFaceId::new(
                TencentConfig {
                    name: name.into(),
                    endpoint: format!("http://{addr}"),
                    secret_id: KEY_ID.into(),
                    secret_key: SecretKey::new(secret.into()),
                    region: None,
                    timeout,
                },
                http(),
                clock,
            )
            .unwrap(),
        ),
        Vendor::Aliyun => Arc::new(
            AliyunCloudAuth::new(
                AliyunConfig {
                    name: name.into(),
                    endpoint: format!("http://{addr}"),
                    access_key_id: KEY_ID.into(),
                    access_key_secret: SecretKey::new(secret.into()),
                    scene_id: Some("1000000006".into()),
                    timeout,
                },
                http(),
                clock,
            )
            .unwrap(),
        ),
    }
}

fn provider(vendor: Vendor, name: &str, addr: SocketAddr, timeout: Duration) -> Arc<dyn Provider> {
    provider_with(vendor, name, addr, timeout, SECRET, Arc::new(SystemClock))
}

fn route(p: Arc<dyn Provider>) -> Route {
    Route::new(p, Duration::from_secs(5), 64)
}

/// A valid resident ID number with this sequence code.
fn id_with_seq(seq: u16) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let first17 = format!("11010519491231{seq:03}");
    let sum: u32 = first17.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    format!("{first17}{}", char::from(CHECK[(sum % 11) as usize]))
}

async fn ask(router: &Router, seq: u16, face: bool, deadline: Instant) -> Routed {
    let id = id_with_seq(seq);
    let request = ProviderRequest {
        name: NAME,
        id_number: &id,
        face_image: face.then_some(JPEG),
    };
    router.check(&request, deadline).await
}

async fn check(p: &dyn Provider, seq: u16, face: bool) -> Result<Outcome, ProviderError> {
    let id = id_with_seq(seq);
    let request = ProviderRequest {
        name: NAME,
        id_number: &id,
        face_image: face.then_some(JPEG),
    };
    p.check(&request).await
}

fn in_secs(s: u64) -> Instant {
    Instant::now() + Duration::from_secs(s)
}

fn answered_by(routed: &Routed) -> Option<&str> {
    match routed {
        Routed::Answered { provider, .. } => Some(provider),
        Routed::AllFailed { .. } => None,
    }
}

#[tokio::test]
async fn both_adapters_agree_with_the_simulator_outcome_tables() {
    for vendor in BOTH {
        let sim = start(vendor, Faults::default()).await;
        let p = provider(vendor, "p", sim.addr, Duration::from_secs(5));
        let check = |seq: u16, face: bool| check(&*p, seq, face);
        assert_eq!(check(2, false).await, Ok(Outcome::Match), "{vendor:?}");
        assert_eq!(check(905, false).await, Ok(Outcome::Mismatch), "{vendor:?}");
        assert_eq!(check(945, false).await, Ok(Outcome::CannotDecide), "{vendor:?}");
        assert!(
            matches!(check(985, false).await, Err(ProviderError::Unavailable(_))),
            "{vendor:?}"
        );
        assert!(
            matches!(check(985, true).await, Err(ProviderError::Unavailable(_))),
            "{vendor:?}"
        );
        match vendor {
            Vendor::Tencent => {
                assert_eq!(check(2, true).await, Ok(Outcome::FaceCompared { similarity: 92.5 }));
                assert_eq!(check(965, true).await, Ok(Outcome::FaceCompared { similarity: 35.0 }));
            }
            Vendor::Aliyun => {
                assert_eq!(check(2, true).await, Ok(Outcome::Match));
                assert_eq!(check(965, true).await, Ok(Outcome::Mismatch));
                assert_eq!(check(975, true).await, Ok(Outcome::CannotDecide));
            }
        }
        assert_eq!(sim.control.requests(), if vendor == Vendor::Tencent { 7 } else { 8 });
    }
}

#[tokio::test]
async fn a_down_or_5xx_first_provider_fails_over_to_the_second() {
    for vendor in BOTH {
        let down = closed_port().await;
        let (broken, good) = faulty_and_clean(
            vendor,
            Faults {
                http_5xx_rate: 1.0,
                ..Faults::default()
            },
        )
        .await;
        let router = Router::new(vec![
            route(provider(vendor, "down", down, Duration::from_secs(5))),
            route(provider(vendor, "5xx", broken.addr, Duration::from_secs(5))),
            route(provider(vendor, "good", good.addr, Duration::from_secs(5))),
        ]);
        let routed = ask(&router, 2, false, in_secs(10)).await;
        assert_eq!(answered_by(&routed), Some("good"), "{vendor:?} {routed:?}");
        assert_eq!((broken.control.requests(), good.control.requests()), (1, 1));
    }
}

#[tokio::test]
async fn a_hanging_provider_leaves_time_for_the_next_and_is_not_asked_again() {
    for vendor in BOTH {
        let (hanging, good) = faulty_and_clean(
            vendor,
            Faults {
                hang_rate: 1.0,
                ..Faults::default()
            },
        )
        .await;
        let router = Router::new(vec![
            Route::new(
                provider(vendor, "hangs", hanging.addr, Duration::from_secs(30)),
                Duration::from_millis(300),
                64,
            ),
            route(provider(vendor, "good", good.addr, Duration::from_secs(5))),
        ]);
        let deadline = in_secs(5);
        let routed = ask(&router, 2, true, deadline).await;
        assert!(Instant::now() < deadline, "answered within the deadline");
        assert_eq!(answered_by(&routed), Some("good"), "{vendor:?}");
        // The call that timed out may have been billed: exactly one request reached it.
        assert_eq!(hanging.control.requests(), 1, "{vendor:?}");
    }
}

#[tokio::test]
async fn with_every_provider_down_the_router_gives_up_within_the_deadline() {
    for vendor in BOTH {
        let hanging = start(
            vendor,
            Faults {
                hang_rate: 1.0,
                ..Faults::default()
            },
        )
        .await;
        let down = closed_port().await;
        let router = Router::new(vec![
            route(provider(vendor, "down", down, Duration::from_secs(30))),
            Route::new(
                provider(vendor, "hangs", hanging.addr, Duration::from_secs(30)),
                Duration::from_secs(30),
                64,
            ),
        ]);
        let deadline = Instant::now() + Duration::from_millis(800);
        let routed = ask(&router, 2, false, deadline).await;
        assert!(Instant::now() < deadline, "answered within the deadline");
        // AllFailed is what verify.rs turns into PENDING_REVIEW.
        match routed {
            Routed::AllFailed { attempts } => {
                assert_eq!(attempts.len(), 2);
                assert!(matches!(attempts[0].1, ProviderError::Unavailable("connect")));
                assert_eq!(attempts[1].1, ProviderError::Timeout);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn the_breaker_stops_calls_to_a_failing_provider_until_a_probe_succeeds() {
    for vendor in BOTH {
        let (a, b) = faulty_and_clean(
            vendor,
            Faults {
                http_5xx_rate: 1.0,
                ..Faults::default()
            },
        )
        .await;
        let clock = ManualMonotonic::new();
        let breaker = BreakerConfig {
            consecutive_failures: 3,
            open_ms: 30_000,
            half_open_probes: 1,
            ..BreakerConfig::default()
        };
        let router = Router::new(vec![
            route(provider(vendor, "a", a.addr, Duration::from_secs(5)))
                .with_clock(clock.clone())
                .with_breaker(breaker.clone()),
            route(provider(vendor, "b", b.addr, Duration::from_secs(5))),
        ]);
        for _ in 0..10 {
            assert_eq!(answered_by(&ask(&router, 2, false, in_secs(10)).await), Some("b"));
        }
        assert_eq!(a.control.requests(), 3, "{vendor:?}: no calls once open");
        assert_eq!(router.breaker_states()[0].1, BreakerState::Open);

        // Still open just before the wait is over.
        clock.advance(Duration::from_millis(29_999));
        ask(&router, 2, false, in_secs(10)).await;
        assert_eq!(a.control.requests(), 3);

        // A recovers; the half-open probe reaches it and closes the breaker.
        a.control.set_faults(Faults::default()).unwrap();
        clock.advance(Duration::from_millis(1));
        assert_eq!(answered_by(&ask(&router, 2, false, in_secs(10)).await), Some("a"));
        assert_eq!(a.control.requests(), 4);
        assert_eq!(router.breaker_states()[0].1, BreakerState::Closed);
        assert_eq!(answered_by(&ask(&router, 2, false, in_secs(10)).await), Some("a"));
    }
}

#[tokio::test]
async fn a_full_provider_is_skipped_not_queued() {
    for vendor in BOTH {
        let (slow, b) = faulty_and_clean(
            vendor,
            Faults {
                latency_ms: 500,
                ..Faults::default()
            },
        )
        .await;
        let router = Arc::new(Router::new(vec![
            Route::new(
                provider(vendor, "slow", slow.addr, Duration::from_secs(5)),
                Duration::from_secs(5),
                1,
            ),
            route(provider(vendor, "b", b.addr, Duration::from_secs(5))),
        ]));
        let first = tokio::spawn({
            let router = router.clone();
            async move { ask(&router, 2, false, in_secs(10)).await }
        });
        // Wait until the first request holds the only slot (it has reached the simulator).
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            while slow.control.requests() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the first request never reached the slow provider");
        let second = ask(&router, 2, false, in_secs(10)).await;
        assert_eq!(answered_by(&second), Some("b"), "{vendor:?}");
        assert_eq!(answered_by(&first.await.unwrap()), Some("slow"));
        assert_eq!(slow.control.requests(), 1);
    }
}

#[tokio::test]
async fn a_rate_limited_provider_fails_over_and_is_left_alone() {
    for vendor in BOTH {
        let (a, b) = faulty_and_clean(
            vendor,
            Faults {
                rate_limit_rate: 1.0,
                ..Faults::default()
            },
        )
        .await;
        let clock = ManualMonotonic::new();
        let router = Router::new(vec![
            route(provider(vendor, "a", a.addr, Duration::from_secs(5)))
                .with_clock(clock.clone())
                .with_rate_limit_backoff(Duration::from_secs(60)),
            route(provider(vendor, "b", b.addr, Duration::from_secs(5))),
        ]);
        for _ in 0..5 {
            assert_eq!(answered_by(&ask(&router, 2, false, in_secs(10)).await), Some("b"));
        }
        assert_eq!(a.control.requests(), 1, "{vendor:?}: backing off");
        a.control.set_faults(Faults::default()).unwrap();
        clock.advance(Duration::from_secs(60));
        assert_eq!(answered_by(&ask(&router, 2, false, in_secs(10)).await), Some("a"));
        assert_eq!(
            router.breaker_states()[0].1,
            BreakerState::Closed,
            "rate limits are no failures"
        );
    }
}

#[tokio::test]
async fn a_daily_cap_is_a_rate_limit_too() {
    for vendor in BOTH {
        let a = start(
            vendor,
            Faults {
                daily_cap: Some(2),
                ..Faults::default()
            },
        )
        .await;
        let p = provider(vendor, "a", a.addr, Duration::from_secs(5));
        assert_eq!(check(&*p, 2, false).await, Ok(Outcome::Match));
        assert_eq!(check(&*p, 2, false).await, Ok(Outcome::Match));
        assert!(
            matches!(check(&*p, 2, false).await, Err(ProviderError::RateLimited { .. })),
            "{vendor:?}"
        );
    }
}

#[tokio::test]
async fn failover_from_tencent_to_alibaba_and_back() {
    let tencent = start(Vendor::Tencent, Faults::default()).await;
    let aliyun = start(Vendor::Aliyun, Faults::default()).await;
    let router = Router::new(vec![
        route(provider(
            Vendor::Tencent,
            "tencent",
            tencent.addr,
            Duration::from_secs(5),
        )),
        route(provider(Vendor::Aliyun, "aliyun", aliyun.addr, Duration::from_secs(5))),
    ]);
    assert_eq!(answered_by(&ask(&router, 2, false, in_secs(10)).await), Some("tencent"));
    tencent
        .control
        .set_faults(Faults {
            error_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let routed = ask(&router, 905, false, in_secs(10)).await;
    match routed {
        Routed::Answered { provider, outcome } => {
            assert_eq!((provider.as_str(), outcome), ("aliyun", Outcome::Mismatch));
        }
        other => panic!("{other:?}"),
    }
    tencent.control.set_faults(Faults::default()).unwrap();
    assert_eq!(answered_by(&ask(&router, 2, false, in_secs(10)).await), Some("tencent"));

    // And the other way round.
    aliyun
        .control
        .set_faults(Faults {
            malformed_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let reversed = Router::new(vec![
        route(provider(Vendor::Aliyun, "aliyun", aliyun.addr, Duration::from_secs(5))),
        route(provider(
            Vendor::Tencent,
            "tencent",
            tencent.addr,
            Duration::from_secs(5),
        )),
    ]);
    assert_eq!(
        answered_by(&ask(&reversed, 2, true, in_secs(10)).await),
        Some("tencent")
    );
}

#[tokio::test]
async fn the_simulators_refuse_bad_signatures_and_stale_clocks_with_the_vendor_codes() {
    for (vendor, bad_sig, stale) in [
        (
            Vendor::Tencent,
            "AuthFailure.SignatureFailure",
            "AuthFailure.SignatureExpire",
        ),
        (Vendor::Aliyun, "SignatureDoesNotMatch", "InvalidTimeStamp.Expired"),
    ] {
        let now = SystemClock.now_unix();
        let sim = start_with_clock(vendor, Faults::default(), Arc::new(ManualClock::new(now))).await;
        let wrong_key = provider_with(
            vendor,
            "p",
            sim.addr,
            Duration::from_secs(5),
            "wrong",
            Arc::new(SystemClock),
        );
        assert_eq!(
            check(&*wrong_key, 2, false).await,
            Err(ProviderError::Refused(bad_sig.into()))
        );
        let late = provider_with(
            vendor,
            "p",
            sim.addr,
            Duration::from_secs(5),
            SECRET,
            Arc::new(ManualClock::new(now + 3_600)),
        );
        assert_eq!(check(&*late, 2, false).await, Err(ProviderError::Refused(stale.into())));
        // Injected signature failures look the same.
        sim.control
            .set_faults(Faults {
                bad_signature_rate: 1.0,
                ..Faults::default()
            })
            .unwrap();
        let good = provider(vendor, "p", sim.addr, Duration::from_secs(5));
        assert_eq!(
            check(&*good, 2, false).await,
            Err(ProviderError::Refused(bad_sig.into()))
        );
    }
}

#[tokio::test]
async fn the_aliyun_simulator_refuses_a_reused_nonce() {
    use idgate::providers::aliyun::{API_VERSION, signing};
    let sim = start(Vendor::Aliyun, Faults::default()).await;
    let host = sim.addr.to_string();
    let id = id_with_seq(2);
    let body = signing::form_body(&[("ParamType", "normal"), ("IdentifyNum", &id), ("UserName", NAME)]);
    let date = signing::format_date(SystemClock.now_unix()).unwrap();
    let signed = signing::Signed {
        host: &host,
        action: "Id2MetaVerify",
        version: API_VERSION,
        date: &date,
        nonce: "the-same-nonce-twice",
        content_type: signing::CONTENT_TYPE,
        body: body.as_bytes(),
    };
    let authorization = signing::authorization(KEY_ID, &SecretKey::new(SECRET.into()), &signed);
    let send = || {
        http()
            .post(format!("http://{host}/"))
            .header("content-type", signing::CONTENT_TYPE)
            .header("authorization", authorization.clone())
            .header("x-acs-action", "Id2MetaVerify")
            .header("x-acs-version", API_VERSION)
            .header("x-acs-date", date.clone())
            .header("x-acs-signature-nonce", "the-same-nonce-twice")
            .header("x-acs-content-sha256", signing::sha256_hex(body.as_bytes()))
            .body(body.clone())
            .send()
    };
    let first: serde_json::Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(first["Code"], "200", "{first}");
    let replay = send().await.unwrap();
    assert_eq!(replay.status(), 400);
    let replay: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(replay["Code"], "SignatureNonceUsed", "{replay}");
    assert!(!replay.to_string().contains(&id));
}

#[tokio::test]
async fn faults_change_at_run_time_through_the_admin_endpoint() {
    let sim = start(Vendor::Tencent, Faults::default()).await;
    let client = http();
    let base = format!("http://{}", sim.addr);
    assert_eq!(set_faults(&client, &base, r#"{"http_5xx_rate": 1.0}"#).await, 204);
    assert_eq!(set_faults(&client, &base, r#"{"http_5xx_rate": 2.0}"#).await, 400);
    let p = provider(Vendor::Tencent, "p", sim.addr, Duration::from_secs(5));
    assert_eq!(check(&*p, 2, false).await, Err(ProviderError::Unavailable("http-5xx")));
    assert_eq!(requests(&client, &base).await, 1);
}

#[tokio::test]
async fn a_retry_after_header_sets_how_long_to_back_off() {
    // A front end that only ever says "too many requests, come back in 120 s".
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(|| async { (axum::http::StatusCode::TOO_MANY_REQUESTS, [("retry-after", "120")], "") });
    tokio::spawn(async move { axum::serve(listener, app).await });
    for vendor in BOTH {
        let p = provider(vendor, "p", addr, Duration::from_secs(5));
        assert_eq!(
            check(&*p, 2, false).await,
            Err(ProviderError::RateLimited {
                code: "http-429".into(),
                retry_after: Some(Duration::from_secs(120)),
            }),
            "{vendor:?}"
        );
    }
}

#[tokio::test]
async fn an_alibaba_route_without_a_face_scene_passes_anchors_on_without_tripping_its_breaker() {
    let aliyun = start(Vendor::Aliyun, Faults::default()).await;
    let tencent = start(Vendor::Tencent, Faults::default()).await;
    let no_scene = Arc::new(
        AliyunCloudAuth::new(
            AliyunConfig {
                name: "aliyun".into(),
                endpoint: format!("http://{}", aliyun.addr),
                access_key_id: KEY_ID.into(),
                access_key_secret: SecretKey::new(SECRET.into()),
                scene_id: None,
                timeout: Duration::from_secs(5),
            },
            http(),
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    let router = Router::new(vec![
        route(no_scene).with_breaker(BreakerConfig {
            consecutive_failures: 1,
            ..BreakerConfig::default()
        }),
        route(provider(
            Vendor::Tencent,
            "tencent",
            tencent.addr,
            Duration::from_secs(5),
        )),
    ]);
    for _ in 0..3 {
        assert_eq!(answered_by(&ask(&router, 2, true, in_secs(10)).await), Some("tencent"));
    }
    assert_eq!(aliyun.control.requests(), 0, "nothing was sent without a scene");
    assert_eq!(router.breaker_states()[0].1, BreakerState::Closed);
    assert_eq!(answered_by(&ask(&router, 2, false, in_secs(10)).await), Some("aliyun"));
}

/// The issue's measurement: with the first provider failing, 40 verifications used to cost it 40
/// calls. With the default thresholds it gets `consecutive_failures` (5) and then nothing until
/// the breaker's wait (30 s) is over.
#[tokio::test]
async fn with_default_thresholds_forty_checks_cost_a_failing_provider_five_calls() {
    for vendor in BOTH {
        let (a, b) = faulty_and_clean(
            vendor,
            Faults {
                error_rate: 1.0,
                ..Faults::default()
            },
        )
        .await;
        let router = Router::new(vec![
            route(provider(vendor, "a", a.addr, Duration::from_secs(5))),
            route(provider(vendor, "b", b.addr, Duration::from_secs(5))),
        ]);
        for _ in 0..40 {
            assert_eq!(answered_by(&ask(&router, 2, false, in_secs(10)).await), Some("b"));
        }
        assert_eq!((a.control.requests(), b.control.requests()), (5, 40), "{vendor:?}");
    }
}
