//! Shared harness: starts the real gateway on 127.0.0.1:0 with a fresh dev PKI and keys in a temporary
//! directory, the built-in provider simulator and the embedded store; builds sealed requests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use idgate::clock::{Clock, ManualClock, SystemClock};
use idgate::config::Config;
use idgate::crypto::sealing::{self, Context};
use idgate::domain::IdentityFields;
use idgate::gateway::{Gateway, Plan};
use idgate::pb;
use idgate::pb::verification_service_client::VerificationServiceClient;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub struct TestGateway {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub clock: Option<ManualClock>,
    /// The review-queue figures the gateway exports as metrics.
    pub queue_figures: Arc<idgate::metrics::QueueFigures>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl TestGateway {
    /// With limits high enough that no test trips them unless it means to.
    pub async fn start() -> Self {
        Self::start_with(Self::config(), None).await
    }

    pub fn config() -> Config {
        let mut config = Config::default();
        config.limits.verifications_per_account_per_hour = 10_000;
        config.limits.verifications_per_id_per_day = 10_000;
        config
    }

    /// With a manual clock (for retention tests) and any configuration.
    pub async fn start_with(config: Config, clock: Option<ManualClock>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let now_clock: Arc<dyn Clock> = match &clock {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(SystemClock),
        };
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let plan = Plan::dev(config, Some(listen), &dir.path().join("dev"), now_clock.now_unix()).expect("plan");
        let gateway = Gateway::build(plan, now_clock).await.expect("gateway");
        let queue_figures = gateway.queue_figures.clone();
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            gateway
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Self {
            addr,
            dir,
            clock,
            queue_figures,
            stop: Some(stop),
            served: Some(served),
        }
    }

    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("dev")
    }

    pub async fn channel(&self, stem: &str) -> Channel {
        idgate::client::connect(&self.addr.to_string(), &self.certs(), stem)
            .await
            .expect("connect")
    }

    pub async fn onboarding(&self) -> VerificationServiceClient<Channel> {
        VerificationServiceClient::new(self.channel("onboarding").await)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
    }
}

/// A valid 18-character ID number with the given birth date (YYYYMMDD) and 3-digit sequence code.
pub fn id_number(birth: &str, seq: &str) -> String {
    let body = format!("110105{birth}{seq}");
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(W)
        .map(|(c, w)| c.to_digit(10).expect("digit") * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG of `w`×`h` (signature, IHDR, an empty IDAT, IEND) — enough for content sniffing, but not
/// for a browser to decode (see [`decodable_png`]).
pub fn png(w: u32, h: u32) -> Vec<u8> {
    png_with_idat(w, h, &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// An RGB PNG of `w`×`h` filled by `pixel(x, y)` that browsers decode: the zlib stream holds the
/// rows in stored (uncompressed) deflate blocks.
pub fn decodable_png(w: u32, h: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            raw.extend_from_slice(&pixel(x, y));
        }
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());
    png_with_idat(w, h, &z)
}

/// Signature, an RGB 8-bit IHDR of `w`×`h`, one IDAT holding `idat`, IEND.
fn png_with_idat(w: u32, h: u32, idat: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", idat);
    chunk(b"IEND", &[]);
    out
}

/// A test identity.
pub struct Person {
    pub name: String,
    pub id_number: String,
    pub phone: String,
    pub face: Vec<u8>,
}

impl Person {
    /// An adult whose ID number's sequence code is `seq` (selects the simulator's answer).
    pub fn adult(seq: &str) -> Self {
        Self {
            name: "测试员·甲".into(),
            id_number: id_number("19900307", seq),
            phone: "13800138000".into(),
            face: png(640, 480),
        }
    }

    pub fn fields(&self) -> IdentityFields {
        let mut f = IdentityFields::default();
        f.name = self.name.clone();
        f.id_number = self.id_number.clone();
        f.phone = self.phone.clone();
        f.face_image = self.face.clone();
        f
    }
}

/// A `VerifyRequest` sealed to `key` exactly as docs/api.md §2 says; `bound` overrides what the seal binds
/// (purpose, account_id, request_id) to test that a mismatch is refused.
pub fn sealed_request(
    key: &pb::GetSealingKeyResponse,
    purpose: pb::Purpose,
    account_id: &str,
    request_id: &str,
    fields: &IdentityFields,
    bound: Option<(i32, &str, &str)>,
) -> pb::VerifyRequest {
    let plaintext = idgate::material::encode_fields(fields);
    let (p, a, r) = bound.unwrap_or((purpose as i32, account_id, request_id));
    let sealed = sealing::seal(&key.public_key, &Context::identity(p, a, r), &plaintext).expect("seal");
    pb::VerifyRequest {
        request_id: request_id.into(),
        account_id: account_id.into(),
        purpose: purpose as i32,
        consent: Some(pb::Consent {
            policy_version: "2026-01".into(),
            granted_at_unix: SystemClock.now_unix(),
            biometric: Some(pb::BiometricConsent {
                policy_version: "face-2026-01".into(),
                granted_at_unix: SystemClock.now_unix(),
            }),
        }),
        payload: Some(pb::SealedPayload {
            key_id: key.key_id.clone(),
            enc: sealed.enc,
            ciphertext: sealed.ciphertext.into(),
        }),
        document_review: false,
    }
}

/// Seals and sends one verification; returns the answer or the status.
pub async fn verify(
    client: &mut VerificationServiceClient<Channel>,
    purpose: pb::Purpose,
    request_id: &str,
    person: &Person,
) -> Result<pb::VerifyResponse, tonic::Status> {
    let key = client.get_sealing_key(pb::GetSealingKeyRequest {}).await?.into_inner();
    let request = sealed_request(&key, purpose, "acct-1", request_id, &person.fields(), None);
    client.verify(request).await.map(|r| r.into_inner())
}

/// The three supplement images of an ANCHOR case pending review (ID card front, back, handheld).
pub fn supplement_images() -> [Vec<u8>; 3] {
    [png(800, 500), png(801, 500), png(600, 800)]
}

/// Seals [`supplement_images`] to the gateway's key and submits them for `verification_id`.
pub async fn submit_supplement(
    client: &mut VerificationServiceClient<Channel>,
    verification_id: &str,
    request_id: &str,
) -> Result<pb::VerifyResponse, tonic::Status> {
    let key = client.get_sealing_key(pb::GetSealingKeyRequest {}).await?.into_inner();
    let mut fields = IdentityFields::default();
    [fields.id_card_front, fields.id_card_back, fields.handheld_id_photo] = supplement_images();
    let plaintext = idgate::material::encode_fields(&fields);
    let sealed = sealing::seal(
        &key.public_key,
        &Context::supplement(verification_id, request_id),
        &plaintext,
    )
    .expect("seal");
    let request = pb::SubmitSupplementRequest {
        verification_id: verification_id.into(),
        request_id: request_id.into(),
        payload: Some(pb::SealedPayload {
            key_id: key.key_id,
            enc: sealed.enc,
            ciphertext: sealed.ciphertext.into(),
        }),
    };
    client.submit_supplement(request).await.map(|r| r.into_inner())
}

pub fn reason(status: &tonic::Status) -> Option<String> {
    tonic_types::StatusExt::get_details_error_info(status).map(|i| i.reason)
}

pub fn dir_exists(p: &Path) -> bool {
    p.is_dir()
}

/// Where a gateway process started for `dev_dir` writes its stderr (beside the dev directory).
fn stderr_path(dev_dir: &Path) -> PathBuf {
    let name = dev_dir.file_name().and_then(|n| n.to_str()).unwrap_or("dev");
    dev_dir.with_file_name(format!("{name}.stderr.log"))
}

fn stderr_file(dev_dir: &Path) -> std::process::Stdio {
    match std::fs::File::create(stderr_path(dev_dir)) {
        Ok(file) => file.into(),
        Err(_) => std::process::Stdio::inherit(),
    }
}

/// The real `idgate` binary running `serve --dev` as a child process (for signal tests).
pub struct GatewayProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub dev_dir: PathBuf,
}

impl GatewayProcess {
    /// Starts `idgate serve --dev` on a free loopback port with `env` added, and waits (bounded) until
    /// it answers `GetSealingKey`.
    pub async fn start(dev_dir: &Path, env: &[(&str, &str)]) -> Self {
        for _attempt in 0..5 {
            // Pick a free port, then hand it to the child; retry if another process takes it meanwhile.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .expect("free port")
                .local_addr()
                .expect("addr")
                .port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_idgate"));
            command
                .args(["serve", "--dev", "--listen", &addr.to_string(), "--dev-dir"])
                .arg(dev_dir)
                .env("IDGATE_LIMITS__VERIFICATIONS_PER_ACCOUNT_PER_HOUR", "100000")
                .env("IDGATE_LIMITS__VERIFICATIONS_PER_ID_PER_DAY", "100000")
                .stdout(std::process::Stdio::null())
                .stderr(stderr_file(dev_dir));
            for (k, v) in env {
                command.env(k, v);
            }
            let mut child = command.spawn().expect("spawn idgate");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited (port taken?): try another port
                }
                if let Ok(channel) = idgate::client::connect(&addr.to_string(), dev_dir, "onboarding").await {
                    let mut client = VerificationServiceClient::new(channel);
                    if client.get_sealing_key(pb::GetSealingKeyRequest {}).await.is_ok() {
                        return Self {
                            child,
                            addr,
                            dev_dir: dev_dir.to_path_buf(),
                        };
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "idgate serve --dev did not start; its stderr:\n{}",
            std::fs::read_to_string(stderr_path(dev_dir)).unwrap_or_default()
        );
    }

    /// Runs `idgate serve --dev` with `env` expecting it to stop by itself (bounded); returns its exit
    /// status and stderr.
    pub fn run_to_exit(dev_dir: &Path, env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_idgate"));
        command
            .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--dev-dir"])
            .arg(dev_dir)
            .stdout(std::process::Stdio::null())
            .stderr(stderr_file(dev_dir));
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn idgate");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("idgate did not stop by itself");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        (
            status,
            std::fs::read_to_string(stderr_path(dev_dir)).unwrap_or_default(),
        )
    }

    /// What the process wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(stderr_path(&self.dev_dir)).unwrap_or_default()
    }

    pub async fn onboarding(&self) -> VerificationServiceClient<Channel> {
        let channel = idgate::client::connect(&self.addr.to_string(), &self.dev_dir, "onboarding")
            .await
            .expect("connect");
        VerificationServiceClient::new(channel)
    }

    /// Starts a `Verify` that stays in flight: sequence 995, which the simulated provider never
    /// answers, so the call waits for the provider timeout (1.5 s) and then goes to review (sealing its
    /// data at rest). Returns once the case is certainly being processed by that call.
    ///
    /// The probe is a duplicate with a short deadline, answered `IN_PROGRESS` while the case is
    /// processing. A probe that reaches the gateway before the call has begun the case starts nothing
    /// (its deadline leaves no provider time: `DEADLINE_TOO_SHORT`) and the next probe looks again; a
    /// round whose probes never see the case in progress is spoiled and a new one starts under a fresh
    /// request id. A probe waits on a processing case for its whole deadline before it answers
    /// `IN_PROGRESS`, so that answer proves a case alive longer than any probe's deadline: the call's.
    pub async fn call_in_flight(
        &self,
        request_id: &str,
    ) -> tokio::task::JoinHandle<Result<tonic::Response<pb::VerifyResponse>, tonic::Status>> {
        let mut client = self.onboarding().await;
        let key = client
            .get_sealing_key(pb::GetSealingKeyRequest {})
            .await
            .expect("sealing key")
            .into_inner();
        let person = Person::adult("995");
        let mut probe = self.onboarding().await;
        for round in 0..20 {
            let request = sealed_request(
                &key,
                pb::Purpose::ShortVideo,
                "acct-1",
                &format!("{request_id}.{round}"),
                &person.fields(),
                None,
            );
            let duplicate = request.clone();
            let mut caller = client.clone();
            let call = tokio::spawn(async move { caller.verify(request).await });
            for _ in 0..100 {
                let mut attempt = tonic::Request::new(duplicate.clone());
                attempt.set_timeout(std::time::Duration::from_millis(300));
                match probe.verify(attempt).await {
                    Err(status) if reason(&status).as_deref() == Some("IN_PROGRESS") => return call,
                    // Decided already (the call did not hang): a spoiled round.
                    Ok(_) => break,
                    // Too early (`DEADLINE_TOO_SHORT`, nothing started) or the probe's own deadline:
                    // look again.
                    Err(_) => {}
                }
            }
            call.abort();
        }
        panic!("the call never showed as in progress");
    }

    /// Sends a signal by number (15 = SIGTERM, 9 = SIGKILL) through `kill(1)`.
    pub fn signal(&self, signal: i32) {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit and returns its exit status.
    pub fn wait_exit(&mut self, within: std::time::Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "idgate did not exit in time");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reviewer's client on `channel` with a freshly generated key registered, and that key (it opens
/// what the gateway seals to this reviewer).
pub async fn registered_reviewer(
    channel: Channel,
) -> (
    pb::review_service_client::ReviewServiceClient<Channel>,
    idgate::crypto::sealing::OpeningKey,
) {
    let mut client = pb::review_service_client::ReviewServiceClient::new(channel);
    let key = idgate::crypto::sealing::OpeningKey::generate().unwrap();
    client
        .register_reviewer_key(pb::RegisterReviewerKeyRequest {
            public_key: key.public_key().to_vec(),
        })
        .await
        .unwrap();
    (client, key)
}

/// The gateway's current sealing key, as a client fetches it before sealing a request.
pub async fn sealing_key(client: &mut VerificationServiceClient<Channel>) -> pb::GetSealingKeyResponse {
    client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .expect("sealing key")
        .into_inner()
}

/// A request body that sends `first` at once and then holds the rest: it ends (incomplete) only when
/// the paired sender fires or is dropped. A call made with it shows whether the server answers before
/// it has read the whole request.
pub struct HeldBody {
    first: Option<bytes::Bytes>,
    release: Option<oneshot::Receiver<()>>,
}

impl http_body::Body for HeldBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        use std::future::Future as _;
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(first))));
        }
        if let Some(release) = &mut self.release {
            let _ = std::task::ready!(std::pin::Pin::new(release).poll(cx));
            self.release = None;
        }
        std::task::Poll::Ready(None)
    }
}

/// Starts a gRPC call of `path` (`/package.Service/Method`) on `channel` whose body is the header of
/// a message of `declared` bytes and only `sent` bytes of that message; the rest never comes. Returns
/// the call (its answer's status, from the response headers: a refusal comes trailers-only, and
/// `None` means the call was taken) and the sender that ends the body.
pub fn call_with_held_body(
    mut channel: Channel,
    path: &str,
    declared: u32,
    sent: usize,
) -> (
    tokio::task::JoinHandle<Result<Option<tonic::Status>, tonic::transport::Error>>,
    oneshot::Sender<()>,
) {
    use tower_service::Service as _;
    let mut first = vec![0u8];
    first.extend_from_slice(&declared.to_be_bytes());
    first.resize(5 + sent, 0);
    let (release, held) = oneshot::channel();
    let body = HeldBody {
        first: Some(first.into()),
        release: Some(held),
    };
    let request = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(body))
        .expect("request");
    let call = tokio::spawn(async move {
        std::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
        let response = channel.call(request).await?;
        Ok(tonic::Status::from_header_map(response.headers()))
    });
    (call, release)
}

/// Waits (bounded by 10 s) for a call started by [`call_with_held_body`] to be answered while its
/// body is still held, and returns the answer's status; panics if it is only answered once the body
/// is complete (never, as the body never completes while held) or if the call was taken.
pub async fn answered_while_held(
    call: tokio::task::JoinHandle<Result<Option<tonic::Status>, tonic::transport::Error>>,
    what: &str,
) -> tonic::Status {
    match tokio::time::timeout(std::time::Duration::from_secs(10), call).await {
        Err(_) => panic!("{what}: not answered while the request body was incomplete (it waited for the body)"),
        Ok(joined) => joined
            .expect("call task")
            .expect("transport")
            .unwrap_or_else(|| panic!("{what}: taken, not refused")),
    }
}

/// Sets `config` to serve a server certificate for `names` issued by a fresh CA called `ca_name` (not
/// the dev CA), written into `dir` (`ca.pem`, `server.pem`, `server.key`). Clients still authenticate
/// with the dev PKI's certificates; see [`client_certs_for`].
pub fn serve_foreign_certificate(config: &mut Config, dir: &Path, ca_name: &str, names: &[&str]) {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    let mut ca_dn = DistinguishedName::new();
    ca_dn.push(DnType::OrganizationName, "Example Corp");
    ca_dn.push(DnType::CommonName, ca_name);
    ca.distinguished_name = ca_dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let server = CertificateParams::new(names).expect("params");
    let cert = server.signed_by(&key, &issuer).expect("server certificate");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
    std::fs::write(dir.join("server.pem"), cert.pem()).expect("write");
    let key_path = dir.join("server.key");
    idgate::crypto::keyfile::write_private_file(&key_path, key.serialize_pem().as_bytes()).expect("write");
    config.server.tls_cert = Some(dir.join("server.pem"));
    config.server.tls_key = Some(key_path);
}

/// A `--certs` directory for a gateway started with [`serve_foreign_certificate`]: that CA
/// (`ca.pem` of `server_dir`) to trust, and the gateway's dev client certificates `stems`.
pub fn client_certs_for(gw: &TestGateway, server_dir: &Path, stems: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("tempdir");
    std::fs::copy(server_dir.join("ca.pem"), out.path().join("ca.pem")).expect("copy");
    for stem in stems {
        for ext in ["pem", "key"] {
            let name = format!("{stem}.{ext}");
            std::fs::copy(gw.certs().join(&name), out.path().join(&name)).expect("copy");
        }
    }
    out
}

/// `idgate review` as `reviewer` against `gw`, with the reviewer key file the test gateway keeps for
/// it (`<dir>/<reviewer>.review-key`); callers add their own flags, environment and pipes.
#[allow(dead_code)] // not every test binary drives the console
pub fn review_console_command(gw: &TestGateway, reviewer: &str) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_idgate"));
    command
        .args(["review", "--target", &gw.addr.to_string(), "--as", reviewer, "--certs"])
        .arg(gw.certs())
        .arg("--key-file")
        .arg(gw.dir.path().join(format!("{reviewer}.review-key")));
    command
}
