//! Logging set-up. Events carry ids and outcomes, never personal data (tested end to end).
//!
//! Level from `IDGATE_LOG` (or `RUST_LOG`), default `info`; `text` or `json` lines on stderr.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call once per process; later calls do nothing.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_env("IDGATE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
