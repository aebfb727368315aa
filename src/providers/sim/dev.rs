//! The simulator `idgate serve --dev` starts when no provider is configured: the Tencent FaceID
//! protocol on a fresh loopback port with fresh random credentials, served until the gateway stops,
//! and the one route that calls it.
//!
//! It must never listen beyond loopback, reuse credentials across starts, or outlive the gateway.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::crypto::random;
use crate::metrics::Instruments;
use crate::providers::credentials::SecretKey;
use crate::providers::router::Route;
use crate::providers::setup::{Chain, SetupError, http_client, traced};
use crate::providers::tencent::{TencentConfig, TencentFaceId};

/// The per-call timeout of the simulator's route.
const TIMEOUT: Duration = Duration::from_millis(1_500);
/// Calls in flight to the simulator at most.
const MAX_CONCURRENCY: usize = 256;

/// Starts the simulator (until `stop` resolves) and returns the route to it.
pub async fn start(
    clock: &Arc<dyn Clock>,
    instruments: &Instruments,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<Chain, SetupError> {
    let http = http_client(TIMEOUT, false)?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| SetupError::Io {
            what: "provider simulator listener",
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SetupError::Io {
        what: "simulator",
        source,
    })?;
    let secret_id = random::id("AKIDdev").map_err(|_| SetupError::Unsupported("randomness".into()))?;
    let secret_key = hex::encode(random::bytes::<24>().map_err(|_| SetupError::Unsupported("randomness".into()))?);
    let sim_config = super::SimConfig::new(secret_id.clone(), SecretKey::new(secret_key.clone()));
    let sim_clock = clock.clone();
    tokio::spawn(async move {
        if let Err(error) = super::serve(listener, sim_config, sim_clock, stop).await {
            tracing::error!(%error, "built-in provider simulator stopped");
        }
    });
    let provider = TencentFaceId::new(
        TencentConfig {
            name: "simulator".into(),
            endpoint: format!("http://{addr}"),
            secret_id,
            secret_key: SecretKey::new(secret_key),
            region: None,
            timeout: TIMEOUT,
        },
        http,
        clock.clone(),
    )
    .map_err(|e| SetupError::Unsupported(format!("built-in simulator provider: {e}")))?;
    Ok(Chain {
        routes: vec![Route::new(
            traced(Arc::new(provider), instruments),
            TIMEOUT,
            MAX_CONCURRENCY,
        )],
        note: format!("providers: built-in Tencent FaceID simulator on http://{addr}"),
    })
}
