//! `idgate provider-sim` as a real process on 127.0.0.1:0: the Alibaba Cloud protocol with signature
//! checks, faults from flags, and faults changed at run time through the admin endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::sim_admin::{requests, set_faults};

use idgate::clock::SystemClock;
use idgate::providers::aliyun::{AliyunCloudAuth, AliyunConfig};
use idgate::providers::credentials::SecretKey;
use idgate::providers::{Outcome, Provider, ProviderError, ProviderRequest};

const KEY_ID: &str = "LTAIprocess";
const SECRET: &str = "process-secret";

/// Kills the child it holds (and only it) when the test ends, however it ends.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(extra: &[&str]) -> (Sim, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_idgate"))
        .args([
            "provider-sim",
            "--protocol",
            "aliyun",
            "--listen",
            "127.0.0.1:0",
            "--secret-id",
            KEY_ID,
        ])
        .args(extra)
        .env("IDGATE_SIM_SECRET_KEY", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn idgate provider-sim");
    let stdout = child.stdout.take().expect("stdout");
    let sim = Sim(child);
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains(" on http://"))
        .expect("the simulator says where it listens");
    let url = line.rsplit(' ').next().expect("url").to_owned();
    (sim, url)
}

fn adapter(url: &str) -> AliyunCloudAuth {
    AliyunCloudAuth::new(
        AliyunConfig {
            name: "aliyun".into(),
            endpoint: url.into(),
            access_key_id: KEY_ID.into(),
            access_key_secret: SecretKey::new(SECRET.into()),
            scene_id: Some("1000000006".into()),
            timeout: Duration::from_secs(5),
        },
        idgate::providers::http::http_client(Duration::from_secs(5), rustls::RootCertStore::empty()).unwrap(),
        Arc::new(SystemClock),
    )
    .unwrap()
}

async fn check(p: &AliyunCloudAuth) -> Result<Outcome, ProviderError> {
    // 11010519491231002X: sequence 002, valid check digit.
    p.check(&ProviderRequest {
        name: "测试姓名",
        id_number: "11010519491231002X",
        face_image: None,
    })
    .await
}

#[tokio::test]
async fn the_aliyun_simulator_process_answers_and_takes_faults_at_run_time() {
    let (_sim, url) = spawn(&[]);
    let p = adapter(&url);
    assert_eq!(check(&p).await, Ok(Outcome::Match));

    let client = idgate::providers::http::http_client(Duration::from_secs(5), rustls::RootCertStore::empty()).unwrap();
    assert_eq!(set_faults(&client, &url, r#"{"rate_limit_rate": 1.0}"#).await, 204);
    assert!(matches!(check(&p).await, Err(ProviderError::RateLimited { .. })));
    assert_eq!(requests(&client, &url).await, 2);
}

#[tokio::test]
async fn faults_from_flags_apply_from_the_first_request() {
    let (_sim, url) = spawn(&["--http-5xx-rate", "1"]);
    assert_eq!(check(&adapter(&url)).await, Err(ProviderError::Unavailable("http-5xx")));
    let (_sim, url) = spawn(&["--bad-signature-rate", "1"]);
    assert_eq!(
        check(&adapter(&url)).await,
        Err(ProviderError::Refused("SignatureDoesNotMatch".into()))
    );
}
