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
            stop: Some(stop),
            served: Some(served),
        }
    }

    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("dev")
    }

    pub async fn channel(&self, stem: &str) -> Channel {
        idgate::cli::client::connect(&self.addr.to_string(), &self.certs(), stem)
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

/// A PNG of `w`×`h` (signature, IHDR, an empty IDAT, IEND) — enough for content sniffing.
pub fn png(w: u32, h: u32) -> Vec<u8> {
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
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
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

/// A `VerifyRequest` sealed to `key` exactly as API.md §2 says; `bound` overrides what the seal binds
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
        }),
        payload: Some(pb::SealedPayload {
            key_id: key.key_id.clone(),
            enc: sealed.enc,
            ciphertext: sealed.ciphertext,
        }),
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

pub fn reason(status: &tonic::Status) -> Option<String> {
    tonic_types::StatusExt::get_details_error_info(status).map(|i| i.reason)
}

pub fn dir_exists(p: &Path) -> bool {
    p.is_dir()
}
