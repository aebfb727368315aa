//! Keys without restarts, with the real binary: SIGHUP reloads the keys from `keys.dir`; a call in
//! flight finishes on the keys it started with; a bad key file is refused and the old keys stay.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::time::Duration;

use common::{GatewayProcess, Person};
use idgate::pb;

const SIGHUP: i32 = 1;

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits (bounded) for the clock to pass `after`: key files are ordered by their creation second,
/// so a rotated key must be made in a later second than the one it replaces.
async fn clock_past(after: u64) {
    for _ in 0..100 {
        if now_unix() > after {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the clock did not move");
}

/// `idgate keys rotate --dir DIR --kind KIND`; returns the new ids it printed.
fn rotate(dir: &Path, kind: &str) -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idgate"))
        .args(["keys", "rotate", "--kind", kind, "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).filter(|_| l.contains(" is now current")))
        .map(str::to_owned)
        .collect()
}

async fn current_key(gateway: &GatewayProcess) -> String {
    let mut client = gateway.onboarding().await;
    client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner()
        .key_id
}

/// Polls (bounded) until `GetSealingKey` hands out `want`.
async fn wait_for_key(gateway: &GatewayProcess, want: &str) {
    for _ in 0..200 {
        if current_key(gateway).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway never handed out key {want}; stderr:\n{}", gateway.stderr());
}

async fn wait_for_log(gateway: &GatewayProcess, needle: &str, count: usize) {
    for _ in 0..200 {
        if gateway.stderr().matches(needle).count() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {needle:?} (x{count}) in stderr:\n{}", gateway.stderr());
}

#[tokio::test]
async fn sighup_switches_keys_keeps_calls_in_flight_and_refuses_a_bad_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    let keys = dev.join("keys");
    let gateway = GatewayProcess::start(&dev, &[]).await;
    let started = now_unix();
    let first = current_key(&gateway).await;

    // A call in flight across the reload: sealed to the first key; the simulated provider never
    // answers sequence 995, so after its timeout (1.5 s) the case goes to review and its data is
    // sealed at rest, under whatever KEK is current by then.
    let call = gateway.call_in_flight("across-reload").await;

    clock_past(started).await;
    let rotated = rotate(&keys, "all");
    assert_eq!(rotated.len(), 2, "a sealing key and a KEK: {rotated:?}");
    let second = rotated[0].clone();
    assert!(second.starts_with("sk-"), "{second}");
    gateway.signal(SIGHUP);
    wait_for_key(&gateway, &second).await;
    wait_for_log(&gateway, "keys reloaded", 1).await;

    let answer = call
        .await
        .unwrap()
        .expect("the call in flight is answered")
        .into_inner();
    assert_eq!(answer.status, pb::Status::PendingReview as i32);
    // New calls are sealed to, and opened with, the new key.
    let mut client = gateway.onboarding().await;
    common::verify(
        &mut client,
        pb::Purpose::ShortVideo,
        "after-reload",
        &Person::adult("001"),
    )
    .await
    .expect("a payload sealed to the new key opens");
    assert_ne!(first, second);

    // A key file anyone can read: the whole reload is refused with one line; the keys stay.
    clock_past(now_unix()).await;
    let third = rotate(&keys, "sealing").remove(0);
    let third_file = keys.join("sealing").join(format!("{third}.key"));
    std::fs::set_permissions(&third_file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    gateway.signal(SIGHUP);
    wait_for_log(&gateway, "key reload refused", 1).await;
    let log = gateway.stderr();
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("key reload refused")).collect();
    assert_eq!(refused.len(), 1, "{log}");
    assert!(
        refused[0].contains("chmod 600"),
        "the line says what to do: {}",
        refused[0]
    );
    assert_eq!(current_key(&gateway).await, second, "the old keys stay in use");

    // Fixed, and hung up on again: now it loads.
    std::fs::set_permissions(&third_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    gateway.signal(SIGHUP);
    wait_for_key(&gateway, &third).await;
    wait_for_log(&gateway, "keys reloaded", 2).await;
}

/// A SIGHUP during start-up does not end the gateway: it comes up, serves, and reloads its keys
/// once (the hang-up is not lost). Deterministic: `keys.keks_file` is a FIFO, so start-up stops in
/// its keys step until this test writes the KEK list; the SIGHUPs are sent while it waits there.
#[tokio::test]
async fn sighup_during_start_up_does_not_end_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    let fifo = dir.path().join("keks");
    let made = std::process::Command::new("mkfifo")
        .args(["-m", "600"])
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // An undated extra KEK of version 0: it opens, never wraps, and leaves the dev KEK current.
    let list = format!("kek-env-startup:0:{}\n", "5a".repeat(32));
    let later = dir.path().join("keks.later");
    std::fs::write(&later, &list).unwrap();
    std::fs::set_permissions(&later, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Where `GatewayProcess::stderr` looks for the log.
    let log = dir.path().join("dev.stderr.log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_idgate"))
        .args(["serve", "--dev", "--listen", &addr.to_string(), "--dev-dir"])
        .arg(&dev)
        .env("IDGATE_KEYS__KEKS_FILE", &fifo)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut gateway = GatewayProcess {
        child,
        addr,
        dev_dir: dev.clone(),
    };

    // Opening the FIFO for writing returns once the gateway has opened it to read: it is then
    // inside start-up, past the configuration, before the store, providers and listener.
    let (opened_tx, opened) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let _ = opened_tx.send(std::fs::OpenOptions::new().write(true).open(path));
    });
    let mut writer = loop {
        if let Some(status) = gateway.child.try_wait().unwrap() {
            panic!("exited before reading its KEK list ({status}): {}", gateway.stderr());
        }
        match opened.recv_timeout(Duration::from_millis(100)) {
            Ok(writer) => break writer.unwrap(),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(e) => panic!("{e}"),
        }
    };
    // The reload after start-up reads the list again, from a plain file by then.
    std::fs::rename(&later, &fifo).unwrap();
    for _ in 0..3 {
        gateway.signal(SIGHUP);
    }
    let written = std::io::Write::write_all(&mut writer, list.as_bytes());
    drop(writer);
    assert!(
        written.is_ok(),
        "the gateway stopped reading ({:?}, ended by SIGHUP?): {}",
        gateway.child.try_wait(),
        gateway.stderr()
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = gateway.child.try_wait().unwrap() {
            panic!("the gateway ended ({status}): {}", gateway.stderr());
        }
        if let Ok(channel) = idgate::client::connect(&addr.to_string(), &dev, "onboarding").await {
            let mut client = pb::verification_service_client::VerificationServiceClient::new(channel);
            if client.get_sealing_key(pb::GetSealingKeyRequest {}).await.is_ok() {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready: {}",
            gateway.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = gateway.onboarding().await;
    common::verify(
        &mut client,
        pb::Purpose::ShortVideo,
        "after-hangup",
        &Person::adult("002"),
    )
    .await
    .expect("it serves");
    wait_for_log(&gateway, "keys reloaded", 1).await;
    assert!(gateway.child.try_wait().unwrap().is_none(), "still running");
}
