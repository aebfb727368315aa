//! The web review console in a real browser: a gateway (embedded store) with a pending case, the
//! `idgate review --web` console as its own process (fresh working and temp directories, so that any
//! file it wrote would show), and Debian's Chromium driven headless through chromedriver's W3C
//! WebDriver HTTP API.
//!
//! Needs `chromium` and `chromium-driver` (`.ci/run` installs them); without them these tests fail.
//! `IDGATE_SAVE_SCREENSHOT=1` saves the case screen to `docs/review-console.png`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Person, TestGateway, decodable_png, sealed_request};
use idgate::pb;
use idgate::pb::verification_service_client::VerificationServiceClient;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::transport::Channel;

/// A child process killed (and reaped) when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn browser() -> (PathBuf, PathBuf) {
    let chromium = find_program(&["chromium", "chromium-browser"]);
    let driver = find_program(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => (c, d),
        _ => panic!(
            "this test drives a real browser and needs Chromium and chromedriver on PATH: \
             `apt-get install -y chromium chromium-driver` (Debian), as .ci/run does"
        ),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http() -> reqwest::Client {
    idgate::providers::tencent::http_client(Duration::from_secs(30), rustls::RootCertStore::empty()).unwrap()
}

/// A face-like picture: a skin-toned oval on a blue background.
fn face_png() -> Vec<u8> {
    decodable_png(240, 300, |x, y| {
        let (dx, dy) = (x as f32 - 120.0, y as f32 - 140.0);
        if (dx * dx) / (80.0 * 80.0) + (dy * dy) / (105.0 * 105.0) <= 1.0 {
            [232, 190, 160]
        } else {
            [70, 110, 170]
        }
    })
}

/// A card-like picture: a pale card with a darker photo box and text bars.
fn card_png(tint: [u8; 3]) -> Vec<u8> {
    decodable_png(320, 202, move |x, y| {
        if (20..100).contains(&x) && (40..160).contains(&y) {
            [150, 150, 150]
        } else if (120..300).contains(&x) && y % 30 < 8 && (40..170).contains(&y) {
            [60, 60, 60]
        } else {
            tint
        }
    })
}

// ---- the case ----

/// An ANCHOR verification (its face is compared, so the reviewer gets it) the simulator cannot decide
/// (sequence 985), so it goes to review, with all four images.
async fn pending_case(gw: &TestGateway) -> (String, Person) {
    pending_case_of(&mut gw.onboarding().await, "acct-web", "web-1").await
}

async fn pending_case_of(
    onboarding: &mut VerificationServiceClient<Channel>,
    account_id: &str,
    request_id: &str,
) -> (String, Person) {
    let mut person = Person::adult("985");
    person.face = face_png();
    let mut fields = person.fields();
    fields.id_card_front = card_png([220, 235, 250]);
    fields.id_card_back = card_png([250, 240, 215]);
    fields.handheld_id_photo = decodable_png(240, 320, |x, y| {
        if (60..180).contains(&x) && (170..250).contains(&y) {
            [220, 235, 250]
        } else if ((x as i32 - 120).pow(2) + (y as i32 - 90).pow(2)) < 60 * 60 {
            [232, 190, 160]
        } else {
            [90, 130, 90]
        }
    });
    let key = onboarding
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    let request = sealed_request(&key, pb::Purpose::Anchor, account_id, request_id, &fields, None);
    let answer = onboarding.verify(request).await.unwrap().into_inner();
    assert_eq!(
        answer.status,
        pb::Status::PendingReview as i32,
        "the case goes to review"
    );
    (answer.verification_id, person)
}

// ---- the console process ----

struct ConsoleProcess {
    _child: Kill,
    /// Launch URLs as the console prints them (one when started, the next each time one is used).
    printed: std::sync::mpsc::Receiver<String>,
    /// A launch URL not used yet: for the browser.
    url: String,
    /// The first launch URL, used up by the harness to open a session for itself (as a script would).
    used_url: String,
    /// That session's secret.
    session: String,
    port: u16,
    work: tempfile::TempDir,
    tmp: tempfile::TempDir,
}

/// The session secret a console's page carries.
fn session_of(page: &str) -> String {
    let (_, rest) = page
        .split_once(r#"<meta name="idgate-session" content=""#)
        .unwrap_or_else(|| panic!("no session in the page: {page}"));
    let session = rest.split('"').next().unwrap().to_owned();
    assert_eq!(session.len(), 64, "a 256-bit session secret");
    session
}

impl ConsoleProcess {
    fn start(gw: &TestGateway, identity: &str, keys: &Path) -> Self {
        Self::start_at(gw.addr, &gw.certs(), identity, keys)
    }

    fn start_at(target: SocketAddr, certs: &Path, identity: &str, keys: &Path) -> Self {
        let work = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_idgate"))
            .args(["review", "--web", "--target", &target.to_string(), "--certs"])
            .arg(certs)
            .args(["--as", identity, "--key-file"])
            .arg(keys.join(format!("{identity}.review-key")))
            .current_dir(work.path())
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let child = Kill(child);
        let (tx, printed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let url = line
                    .trim()
                    .strip_prefix("review console: ")
                    .unwrap_or_else(|| panic!("the console prints only launch URLs, got {line:?}"))
                    .to_owned();
                if tx.send(url).is_err() {
                    return;
                }
            }
        });
        let next = |printed: &std::sync::mpsc::Receiver<String>| {
            let url = printed
                .recv_timeout(Duration::from_secs(60))
                .expect("the console prints a launch URL");
            let token = url.split_once("?token=").unwrap().1;
            assert_eq!(token.len(), 64, "a 256-bit token");
            url
        };
        let used_url = next(&printed);
        let port: u16 = used_url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.split('/').next())
            .unwrap()
            .parse()
            .unwrap();
        // The harness opens its own page first, as a script would, and keeps its session.
        let page = std::thread::spawn({
            let used_url = used_url.clone();
            move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let answer = http().get(&used_url).send().await.unwrap();
                    assert_eq!(answer.status(), 200, "a launch URL opens the page");
                    answer.text().await.unwrap()
                })
            }
        })
        .join()
        .unwrap();
        let session = session_of(&page);
        let url = next(&printed);
        Self {
            _child: child,
            printed,
            url,
            used_url,
            session,
            port,
            work,
            tmp,
        }
    }

    /// The next launch URL the console prints (after `url` was used).
    fn next_url(&self) -> String {
        self.printed
            .recv_timeout(Duration::from_secs(60))
            .expect("the console prints the next launch URL")
    }

    /// The path of image `slot` (0–3) of the case this console holds, as its state lists it.
    async fn image_path(&self, slot: usize) -> String {
        let state: Value = self
            .get(&format!("{}/api/state", self.base()))
            .await
            .json()
            .await
            .unwrap();
        let path = state["case"]["images"][slot].as_str().unwrap();
        format!("{}{path}", self.base())
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GETs `url` with the harness's session header (as a script would), and returns the answer.
    async fn get(&self, url: &str) -> reqwest::Response {
        http()
            .get(url)
            .header("x-idgate-session", &self.session)
            .send()
            .await
            .unwrap()
    }

    /// Sends SIGTERM and waits (bounded) for the console to exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self._child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            if let Some(status) = self._child.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the console did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every file under the console's working and temp directories.
    fn files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    out.push(path.clone());
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.work.path(), &mut out);
        walk(self.tmp.path(), &mut out);
        out
    }
}

/// Sends one raw HTTP/1.1 request (to set `Host` freely) and returns the status code.
async fn raw_status(port: u16, request: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64];
    let n = stream.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

// ---- WebDriver ----

struct Browser {
    _driver: Kill,
    _profile: tempfile::TempDir,
    http: reqwest::Client,
    session: String,
}

impl Browser {
    async fn start() -> Self {
        let (chromium, chromedriver) = browser();
        let port = free_port();
        let driver = Kill(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let http = http();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["value"]["ready"].as_bool()),
                Err(_) => None,
            };
            if ready == Some(true) {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1366,768".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}
        }}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        Self {
            _driver: driver,
            _profile: profile,
            http,
            session: format!("{base}/session/{session}"),
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn click(&self, css: &str) {
        let element = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        let id = element
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_owned();
        self.command(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({})))
            .await;
    }

    /// Waits until "Claim next" can be pressed.
    async fn claim_ready(&self) {
        self.wait_for(
            "return !document.getElementById('claim').disabled",
            "the Claim next button",
        )
        .await;
    }

    /// Presses and releases `key` on the page, as a person at the keyboard would.
    async fn press(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}
        ]}]});
        self.command(reqwest::Method::POST, "/actions", Some(actions)).await;
    }

    /// What a screen reader announces for the element `css` (its computed accessible name).
    async fn label(&self, css: &str) -> String {
        let element = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        let id = element
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_owned();
        let label = self
            .command(reqwest::Method::GET, &format!("/element/{id}/computedlabel"), None)
            .await;
        label.as_str().unwrap().to_owned()
    }

    /// Polls `script` (which returns a boolean) until true, or fails with `what`.
    async fn wait_for(&self, script: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            if self.script(script).await == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.script("return document.body.innerText").await;
                panic!("timed out waiting for {what}; the page says: {text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every cookie the browser would send to the page on screen.
    async fn cookies(&self) -> Value {
        self.command(reqwest::Method::GET, "/cookie", None).await
    }

    /// Opens a new tab, switches to it and returns the handle of the tab it left.
    async fn new_tab(&self) -> String {
        let left = self.command(reqwest::Method::GET, "/window", None).await;
        let tab = self
            .command(reqwest::Method::POST, "/window/new", Some(json!({"type": "tab"})))
            .await;
        self.switch_to(tab["handle"].as_str().unwrap()).await;
        left.as_str().unwrap().to_owned()
    }

    async fn switch_to(&self, handle: &str) {
        self.command(reqwest::Method::POST, "/window", Some(json!({"handle": handle})))
            .await;
    }

    async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.command(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

const IMAGES_RENDERED: &str = r#"
    const alts = ["face photo", "ID card front", "ID card back", "handheld ID photo"];
    return alts.every(a => {
        const img = document.querySelector('img[alt="' + a + '"]');
        return img !== null && !img.hidden && img.complete && img.naturalWidth > 0;
    });
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_approves_a_case_in_chromium_and_it_reads_verified() {
    let gw = TestGateway::start().await;
    let (case_id, person) = pending_case(&gw).await;
    let keys = tempfile::tempdir().unwrap();
    let console = ConsoleProcess::start(&gw, "reviewer-1", keys.path());
    let http = http();

    // Only a live session secret, sent as a header, opens the API; Host, Origin and Sec-Fetch-Site are
    // checked on reads as on writes.
    let state_url = format!("{}/api/state", console.base());
    let status_with = |headers: &[(&str, String)]| {
        let mut request = http.get(&state_url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        async move { request.send().await.unwrap().status() }
    };
    let bare = http.get(format!("{}/", console.base())).send().await.unwrap();
    assert_eq!(bare.status(), 403, "no launch token");
    let used = http.get(&console.used_url).send().await.unwrap();
    assert_eq!(used.status(), 403, "a launch URL opens one page, once");
    let prefetch = http
        .get(&console.url)
        .header("sec-purpose", "prefetch")
        .send()
        .await
        .unwrap();
    assert_eq!(
        prefetch.status(),
        403,
        "a prefetch neither opens the page nor uses the URL up"
    );
    assert_eq!(status_with(&[]).await, 403, "no session");
    assert_eq!(
        status_with(&[("x-idgate-session", "0".repeat(64))]).await,
        403,
        "a wrong session"
    );
    // What a browser would send to this port if a cookie had been set for the host: refused, whatever
    // it holds (the session, or a launch token as the cookie of old carried).
    for secret in [
        &console.session,
        &console.url.split_once("?token=").unwrap().1.to_owned(),
    ] {
        assert_eq!(
            status_with(&[("cookie", format!("idgate_console={secret}"))]).await,
            403,
            "a cookie opens nothing"
        );
    }
    let session = ("x-idgate-session", console.session.clone());
    assert_eq!(status_with(std::slice::from_ref(&session)).await, 200);
    // A read from a page on another port of this host, even one that had the secret: refused.
    let other_port = format!("http://127.0.0.1:{}", free_port());
    assert_eq!(
        status_with(&[session.clone(), ("sec-fetch-site", "same-site".into())]).await,
        403,
        "Sec-Fetch-Site: same-site"
    );
    assert_eq!(
        status_with(&[session.clone(), ("origin", other_port)]).await,
        403,
        "an Origin on another port"
    );
    assert_eq!(
        status_with(&[session.clone(), ("sec-fetch-site", "same-origin".into())]).await,
        200
    );
    // The static assets (public code, no data) need no session, but other sites may not load them.
    let asset_url = format!("{}/assets/review.js", console.base());
    assert_eq!(http.get(&asset_url).send().await.unwrap().status(), 200);
    let embedded = http
        .get(&asset_url)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(embedded.status(), 403, "an asset for another site");
    let good = console.get(&state_url).await;
    assert_eq!(good.status(), 200);
    let h = good.headers();
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h.get("set-cookie").is_none());
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'") && csp.contains("img-src 'self' blob:"));
    assert!(!csp.contains("unsafe-inline"));
    let foreign_host = format!(
        "GET /api/state HTTP/1.1\r\nHost: evil.example:{}\r\nx-idgate-session: {}\r\nConnection: close\r\n\r\n",
        console.port, console.session
    );
    assert_eq!(raw_status(console.port, &foreign_host).await, 403, "a wrong Host");
    let foreign_origin = format!(
        "GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: http://evil.example\r\nx-idgate-session: {}\r\nConnection: close\r\n\r\n",
        console.port, console.session
    );
    assert_eq!(raw_status(console.port, &foreign_origin).await, 403, "a wrong Origin");

    // The reviewer's screen in a real browser.
    let browser = Browser::start().await;
    browser.goto(&console.url).await;
    browser
        .wait_for(
            "return document.getElementById('claim') !== null && !document.getElementById('claim').disabled",
            "the Claim next button",
        )
        .await;
    assert_eq!(
        browser.script("return location.search").await,
        Value::String(String::new()),
        "the token left the address bar"
    );
    // The browser holds no cookie for the console.
    assert_eq!(browser.cookies().await, json!([]));
    // Opening the page printed the next launch URL (for a reload); the one used opens nothing more.
    assert_ne!(console.next_url(), console.url);
    assert_eq!(http.get(&console.url).send().await.unwrap().status(), 403);
    browser.click("#claim").await;
    browser.wait_for(IMAGES_RENDERED, "all four images decoded").await;
    let shown = browser
        .script(
            "return [document.getElementById('f-name').textContent, document.getElementById('f-id').textContent, \
             document.getElementById('f-birth').textContent, document.getElementById('f-case').textContent, \
             document.getElementById('approve').disabled]",
        )
        .await;
    assert_eq!(
        shown,
        json!([person.name, person.id_number, "1990-03-07", case_id, false])
    );
    // What a screen reader announces.
    for (css, name) in [
        ("#claim", "Claim next"),
        ("#approve", "Approve"),
        ("#reject", "Reject"),
        ("#release", "Release"),
        ("img[alt='face photo']", "face photo"),
        ("img[alt='ID card front']", "ID card front"),
        ("img[alt='ID card back']", "ID card back"),
        ("img[alt='handheld ID photo']", "handheld ID photo"),
        ("#reason-FACE_MISMATCH", "face mismatch"),
        (
            "figure[data-slot='3'] button[data-act='rot']",
            "Rotate handheld ID photo",
        ),
    ] {
        assert_eq!(browser.label(css).await, name, "{css}");
    }
    // The browser keeps nothing.
    assert_eq!(
        browser
            .script("return localStorage.length + sessionStorage.length")
            .await,
        json!(0)
    );
    if std::env::var_os("IDGATE_SAVE_SCREENSHOT").is_some() {
        let png = browser.screenshot().await;
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/review-console.png");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, png).unwrap();
    }
    let image_url = console.image_path(0).await;
    let image = console.get(&image_url).await;
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["cache-control"], "no-store");
    assert_eq!(image.bytes().await.unwrap().as_ref(), person.face.as_slice());

    // Approve with a reason: the key "1" picks "documents match", then the Approve button.
    browser
        .script("document.getElementById('reason-DOCUMENTS_MATCH').checked = true; return true")
        .await;
    browser.click("#approve").await;
    browser
        .wait_for(
            "return document.getElementById('notice').textContent.includes('VERIFIED')",
            "the decision to be recorded",
        )
        .await;
    let mut onboarding = gw.onboarding().await;
    let got = onboarding
        .get_verification(pb::GetVerificationRequest {
            verification_id: case_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.status, got.verified), (pb::Status::Verified as i32, true));

    // The material is gone from the console once decided.
    let after = console.get(&image_url).await;
    assert_eq!(after.status(), 404);
    browser
        .wait_for(
            "return document.getElementById('case').hidden && \
             document.querySelectorAll('img[src]').length === 0",
            "the case to leave the screen",
        )
        .await;
    browser.quit().await;

    assert_eq!(console.files(), Vec::<PathBuf>::new(), "the console wrote no file");
    gw.stop().await;
}

/// Another HTTP service on this host (a port of its own), as a reviewer's browser may talk to: it
/// answers every request and keeps its headers.
struct Bystander {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _served: tokio::task::JoinHandle<()>,
}

impl Bystander {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let served = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    log.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                    let body = "<!doctype html><title>another service</title>";
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self {
            port,
            seen,
            _served: served,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consoles_in_one_browser_keep_their_own_sessions_and_another_port_receives_neither() {
    let gw = TestGateway::start().await;
    let mut onboarding = gw.onboarding().await;
    let (first_case, _) = pending_case_of(&mut onboarding, "acct-two-1", "two-1").await;
    let keys = tempfile::tempdir().unwrap();
    let first = ConsoleProcess::start(&gw, "reviewer-1", keys.path());
    let second = ConsoleProcess::start(&gw, "reviewer-2", keys.path());

    // One console's session opens nothing on the other.
    let state = |console: &ConsoleProcess, session: &str| {
        let request = http()
            .get(format!("{}/api/state", console.base()))
            .header("x-idgate-session", session);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(state(&first, &first.session).await, 200);
    assert_eq!(state(&second, &first.session).await, 403);
    assert_eq!(state(&first, &second.session).await, 403);

    // Both open in one browser, one tab each; opening the second leaves the first working.
    let browser = Browser::start().await;
    browser.goto(&first.url).await;
    browser.claim_ready().await;
    let first_tab = browser.new_tab().await;
    browser.goto(&second.url).await;
    browser.claim_ready().await;
    browser.switch_to(&first_tab).await;
    browser.click("#claim").await;
    browser.wait_for(IMAGES_RENDERED, "the case in the first console").await;
    assert_eq!(browser.script(&text_of("f-case")).await, json!(first_case));
    browser
        .script("document.getElementById('reason-FACE_MISMATCH').checked = true; return true")
        .await;
    browser.click("#reject").await;
    browser
        .wait_for(
            "return document.getElementById('notice').textContent.includes('NOT_VERIFIED')",
            "the decision in the first console",
        )
        .await;
    assert_eq!(browser.cookies().await, json!([]), "no cookie on the console's host");

    // Another service on this host, visited by the same browser, receives no secret of either.
    let bystander = Bystander::start().await;
    browser.goto(&format!("http://127.0.0.1:{}/", bystander.port)).await;
    let requests = bystander.requests();
    assert!(!requests.is_empty(), "the browser reached the other service");
    for request in &requests {
        let lower = request.to_ascii_lowercase();
        assert!(
            !lower.contains("\r\ncookie:"),
            "a cookie reached another port: {request}"
        );
        for console in [&first, &second] {
            assert!(!request.contains(&console.session));
            assert!(!request.contains(console.url.split_once("?token=").unwrap().1));
        }
    }
    browser.quit().await;
    gw.stop().await;
}

/// A gateway (embedded store) on a fixed address, so that it can be stopped and started again there
/// with the same dev PKI and keys.
struct FixedGateway {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl FixedGateway {
    async fn start(config: idgate::config::Config, dev_dir: &Path, addr: SocketAddr) -> Self {
        use idgate::clock::{Clock as _, SystemClock};
        let plan = idgate::gateway::Plan::dev(config, Some(addr), dev_dir, SystemClock.now_unix()).unwrap();
        let gateway = idgate::gateway::Gateway::build(plan, std::sync::Arc::new(SystemClock))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            gateway
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            stop: Some(stop),
            served: Some(served),
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
        }
    }
}

fn text_of(id: &str) -> String {
    format!("return document.getElementById('{id}').textContent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_honest_about_an_ended_lease_a_refused_decision_and_a_gateway_that_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut config = TestGateway::config();
    // Long enough that claiming and rendering fit inside it on a loaded machine; the test then waits for its end.
    config.review.lease_seconds = Duration::from_secs(20);
    let gateway = FixedGateway::start(config.clone(), &dev, addr).await;
    let onboard = || async {
        VerificationServiceClient::new(
            idgate::client::connect(&addr.to_string(), &dev, "onboarding")
                .await
                .unwrap(),
        )
    };
    let mut onboarding = onboard().await;
    let (case_id, _person) = pending_case_of(&mut onboarding, "acct-honest", "honest-1").await;
    let keys = tempfile::tempdir().unwrap();
    let console = ConsoleProcess::start_at(addr, &dev, "reviewer-1", keys.path());
    let browser = Browser::start().await;
    browser.goto(&console.url).await;
    browser.claim_ready().await;

    // 1. The lease runs out while the page is open: the material goes, and the page says why.
    browser.click("#claim").await;
    browser.wait_for(IMAGES_RENDERED, "the case").await;
    let image_url = console.image_path(1).await;
    browser
        .wait_for(
            "return document.getElementById('case').hidden && \
             /lease/i.test(document.getElementById('notice').textContent)",
            "the page to say the lease ended",
        )
        .await;
    let notice = browser.script(&text_of("notice")).await;
    assert!(notice.as_str().unwrap().contains("Claim again"), "{notice}");
    let gone = console.get(&image_url).await;
    assert_eq!(gone.status(), 404, "the material was dropped when the lease ended");

    // 2. The gateway refuses a decision: the page says why, in words.
    browser.claim_ready().await;
    browser.click("#claim").await;
    browser
        .wait_for(
            &format!("return document.getElementById('f-case').textContent === '{case_id}'"),
            "the same case, claimed again",
        )
        .await;
    let erased = onboarding
        .erase_subject(pb::EraseSubjectRequest {
            account_id: "acct-honest".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(erased.cases_erased, 1);
    browser.click("#approve").await;
    browser
        .wait_for(
            "return document.getElementById('notice').textContent.includes('refused the decision')",
            "the refusal",
        )
        .await;
    let notice = browser.script(&text_of("notice")).await;
    assert_eq!(
        notice,
        json!("The gateway refused the decision: The case is no longer pending review.")
    );

    // 3. The gateway goes down: the page says so; it comes back: the console works again.
    gateway.stop().await;
    browser
        .wait_for(
            "const g = document.getElementById('gateway'); return !g.hidden && g.textContent.includes('down')",
            "the page to show the gateway down",
        )
        .await;
    assert_eq!(
        browser.script("return document.getElementById('claim').disabled").await,
        json!(true)
    );
    let gateway = FixedGateway::start(config, &dev, addr).await;
    browser
        .wait_for(
            "return document.getElementById('gateway').hidden && !document.getElementById('claim').disabled",
            "the page to recover",
        )
        .await;
    // The restarted gateway (embedded store) forgot everything, the reviewer's key included: the
    // console registers it again and claims the new case.
    let mut onboarding = onboard().await;
    let (second, _) = pending_case_of(&mut onboarding, "acct-honest-2", "honest-2").await;
    browser.click("#claim").await;
    browser.wait_for(IMAGES_RENDERED, "the case after the restart").await;
    assert_eq!(browser.script(&text_of("f-case")).await, json!(second));
    browser.click("#release").await;
    browser
        .wait_for(
            "return document.getElementById('notice').textContent.includes('released')",
            "the release",
        )
        .await;
    browser.quit().await;
    assert_eq!(console.files(), Vec::<PathBuf>::new(), "the console wrote no file");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sees_queue_figures_and_the_audit_trail_without_personal_data() {
    let gw = TestGateway::start().await;
    let (case_id, person) = pending_case(&gw).await;
    let keys = tempfile::tempdir().unwrap();
    // A reviewer claims the case through the console API, then the console is stopped: it gives
    // the case back (an audited release) before it exits.
    let mut reviewer = ConsoleProcess::start(&gw, "reviewer-1", keys.path());
    let http = http();
    let claimed = http
        .post(format!("{}/api/claim", reviewer.base()))
        .header("x-idgate-session", &reviewer.session)
        .send()
        .await
        .unwrap();
    assert_eq!(claimed.status(), 200);
    assert!(reviewer.terminate().success());
    assert_eq!(reviewer.files(), Vec::<PathBuf>::new());

    let admin = ConsoleProcess::start(&gw, "admin", keys.path());
    // The admin console offers no case material.
    let claim = http
        .post(format!("{}/api/claim", admin.base()))
        .header("x-idgate-session", &admin.session)
        .send()
        .await
        .unwrap();
    assert_eq!(claim.status(), 403);
    let browser = Browser::start().await;
    browser.goto(&admin.url).await;
    browser
        .wait_for(
            "return document.getElementById('stat-pending').textContent === '1'",
            "the queue figures",
        )
        .await;
    browser
        .script(&format!(
            "document.getElementById('case_id').value = '{case_id}'; \
             document.getElementById('principal').value = 'reviewer-1'; return true"
        ))
        .await;
    browser.click("#filters button[type=submit]").await;
    // Exactly this case's events by reviewer-1, in order.
    browser
        .wait_for(
            "const rows = Array.from(document.querySelectorAll('#events tr')); \
             return rows.every(r => r.children[1].textContent === 'reviewer-1') && \
             rows.map(r => r.children[2].textContent).join(' ') === \
             'case_claimed case_material_handed_out case_released'",
            "the filtered audit trail",
        )
        .await;
    let page = browser.script("return document.documentElement.outerHTML").await;
    let page = page.as_str().unwrap();
    assert!(!page.contains(&person.name) && !page.contains(&person.id_number));
    browser.quit().await;
    assert_eq!(admin.files(), Vec::<PathBuf>::new());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_four_eyes_the_keyboard_alone_takes_a_case_through_two_reviewers() {
    let mut config = TestGateway::config();
    config.review.approvals_required = 2;
    let gw = TestGateway::start_with(config, None).await;
    let (case_id, _person) = pending_case(&gw).await;
    let keys = tempfile::tempdir().unwrap();
    let first = ConsoleProcess::start(&gw, "reviewer-1", keys.path());
    let second = ConsoleProcess::start(&gw, "reviewer-2", keys.path());
    let browser = Browser::start().await;

    // Reviewer 1: C claims, 1 picks "documents match", A approves.
    browser.goto(&first.url).await;
    browser.claim_ready().await;
    browser.press("c").await;
    browser.wait_for(IMAGES_RENDERED, "the case").await;
    assert_eq!(browser.script(&text_of("f-approvals")).await, json!("0 of 2 approvals"));
    // ] selects the next image (the ID card front), + zooms it, T rotates it, 0 resets it.
    for key in ["]", "+", "t"] {
        browser.press(key).await;
    }
    let front = "return document.querySelector('img[alt=\"ID card front\"]').style.transform";
    assert_eq!(browser.script(front).await, json!("scale(1.25) rotate(90deg)"));
    browser.press("0").await;
    assert_eq!(browser.script(front).await, json!("scale(1) rotate(0deg)"));
    browser.press("1").await;
    browser.press("a").await;
    browser
        .wait_for(
            "return document.getElementById('notice').textContent.includes('second reviewer')",
            "the first approval",
        )
        .await;

    // Reviewer 2 sees who approved so far, and completes it.
    browser.goto(&second.url).await;
    browser.claim_ready().await;
    browser.press("c").await;
    browser.wait_for(IMAGES_RENDERED, "the case").await;
    assert_eq!(browser.script(&text_of("f-case")).await, json!(case_id));
    assert_eq!(
        browser.script(&text_of("f-approvals")).await,
        json!("1 of 2 approvals (by reviewer-1)")
    );
    let submitted = browser.script(&text_of("f-submitted")).await;
    assert!(submitted.as_str().unwrap().ends_with(" UTC"), "{submitted}");
    // A rejection with "documents match" is refused by the console itself.
    browser.press("r").await;
    browser
        .wait_for(
            "return document.getElementById('notice').textContent.includes('rejection needs a reason')",
            "the console to refuse a contradictory reason",
        )
        .await;
    browser.press("a").await;
    browser
        .wait_for(
            "return document.getElementById('notice').textContent.includes('VERIFIED')",
            "the second approval",
        )
        .await;
    browser.quit().await;
    let got = gw
        .onboarding()
        .await
        .get_verification(pb::GetVerificationRequest {
            verification_id: case_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.status, pb::Status::Verified as i32);
    gw.stop().await;
}

#[test]
fn listening_off_loopback_needs_an_explicit_flag() {
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_idgate"))
            .args(["review", "--web", "--certs", "/nonexistent"])
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) = run(&["--listen", "192.0.2.1:0"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("--allow-remote"), "{stderr}");
    let (code, stderr) = run(&["--listen", "0.0.0.0:0", "--allow-remote"]);
    assert_eq!(code, Some(64), "{stderr}");
    // On loopback the same command gets past the check (and fails later, on the missing certificates).
    let (code, stderr) = run(&["--listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent"), "{stderr}");
}
