//! The client tools as child processes against a real gateway: the terminal review console ended by
//! SIGHUP, SIGTERM or the end of stdin (it releases the case and leaves no image behind), and the TLS
//! name every tool checks the gateway's certificate against.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Person, TestGateway};
use idgate::pb;

/// `idgate review` at a "terminal" (pipes), on a gateway's first pending case.
struct TerminalConsole {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<Vec<u8>>,
    shown: String,
    /// Its TMPDIR: where it writes the decrypted images.
    tmp: tempfile::TempDir,
}

impl TerminalConsole {
    fn start(gw: &TestGateway) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = common::review_console_command(gw, "reviewer-2")
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut out = child.stdout.take().unwrap();
        let (tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            stdout,
            shown: String::new(),
            tmp,
        }
    }

    /// Reads its output until `text` shows (bounded).
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.shown.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(chunk) => self.shown.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!("the console never showed {text:?}; it showed: {}", self.shown),
            }
        }
    }

    /// Every file and directory under its TMPDIR.
    fn files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                out.push(path.clone());
                if path.is_dir() {
                    walk(&path, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.tmp.path(), &mut out);
        out
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for it to exit; the rest of its output is read into `shown`.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the console did not exit; it showed: {}",
                self.shown
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(chunk) = self.stdout.recv_timeout(Duration::from_secs(10)) {
            self.shown.push_str(&String::from_utf8_lossy(&chunk));
        }
        status
    }
}

impl Drop for TerminalConsole {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway with one pending case, and the console showing it with its images on disk.
async fn console_on_a_case() -> (TestGateway, String, TerminalConsole) {
    let gw = TestGateway::start().await;
    // An ID card image too: a case keeps it whatever becomes of the face.
    let mut fields = Person::adult("947").fields();
    fields.id_card_front = common::png(320, 200);
    let mut onboarding = gw.onboarding().await;
    let key = onboarding
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    let request = common::sealed_request(&key, pb::Purpose::ShortVideo, "acct-term", "term-1", &fields, None);
    let pending = onboarding.verify(request).await.unwrap().into_inner();
    assert_eq!(pending.status, pb::Status::PendingReview as i32);
    let mut console = TerminalConsole::start(&gw);
    console.wait_for("approve / reject / release? ");
    assert!(console.shown.contains(&pending.verification_id), "{}", console.shown);
    assert!(
        console.files().iter().any(|p| p.is_file()),
        "the console wrote the images for a viewer"
    );
    (gw, pending.verification_id, console)
}

/// The console ended: no file left, and the case at once claimable by another reviewer.
async fn released_and_clean(gw: &TestGateway, case_id: &str, console: &mut TerminalConsole) {
    let status = console.wait_exit();
    assert!(status.success(), "{status:?}; it showed: {}", console.shown);
    assert_eq!(console.files(), Vec::<PathBuf>::new(), "decrypted images left behind");
    assert!(console.shown.contains("released"), "{}", console.shown);
    let (mut other, _key) = common::registered_reviewer(gw.channel("reviewer-1").await).await;
    let claim = other.claim_next(pb::ClaimNextRequest {}).await.unwrap().into_inner();
    assert_eq!(claim.case_id, case_id, "the case went back to the queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_closing_releases_the_case_and_removes_the_images() {
    let (gw, case_id, mut console) = console_on_a_case().await;
    console.signal("HUP");
    released_and_clean(&gw, &case_id, &mut console).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_case_and_removes_the_images() {
    let (gw, case_id, mut console) = console_on_a_case().await;
    console.signal("TERM");
    released_and_clean(&gw, &case_id, &mut console).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_stdin_releases_the_case_and_ends_the_console() {
    let (gw, case_id, mut console) = console_on_a_case().await;
    drop(console.stdin.take());
    released_and_clean(&gw, &case_id, &mut console).await;
    gw.stop().await;
}

/// `idgate review --stats` against `target`, with `extra` flags.
async fn stats(target: String, certs: &Path, extra: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idgate"));
    command
        .args([
            "review",
            "--stats",
            "--as",
            "reviewer-1",
            "--target",
            &target,
            "--certs",
        ])
        .arg(certs)
        .args(extra);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_certificate_must_name_the_target_host_or_the_tls_name() {
    // The gateway's certificate names `localhost` only.
    let server_dir = tempfile::tempdir().unwrap();
    let mut config = TestGateway::config();
    common::serve_foreign_certificate(
        &mut config,
        server_dir.path(),
        "Example Corp Issuing CA",
        &["localhost"],
    );
    let gw = TestGateway::start_with(config, None).await;
    let certs = common::client_certs_for(&gw, server_dir.path(), &["reviewer-1"]);
    let port = gw.addr.port();
    let ok = |out: &std::process::Output| {
        let stdout = String::from_utf8_lossy(&out.stdout);
        out.status.success() && stdout.starts_with("pending=")
    };

    // By address: the certificate does not name 127.0.0.1, so the tool does not go on.
    let by_address = stats(format!("127.0.0.1:{port}"), certs.path(), &[]).await;
    assert!(!ok(&by_address), "a certificate without the target's name was accepted");
    let stderr = String::from_utf8_lossy(&by_address.stderr);
    assert!(
        stderr.contains("must name 127.0.0.1") && stderr.contains("--tls-name"),
        "{stderr}"
    );
    // Told the name it carries, or given a target by that name: it goes on.
    let told = stats(format!("127.0.0.1:{port}"), certs.path(), &["--tls-name", "localhost"]).await;
    assert!(ok(&told), "{}", String::from_utf8_lossy(&told.stderr));
    let by_name = stats(format!("localhost:{port}"), certs.path(), &[]).await;
    assert!(ok(&by_name), "{}", String::from_utf8_lossy(&by_name.stderr));
    // A name the certificate does not carry is refused however it is given.
    let wrong = stats(
        format!("localhost:{port}"),
        certs.path(),
        &["--tls-name", "gateway.example"],
    )
    .await;
    assert!(!ok(&wrong));
    gw.stop().await;
}
