//! The provider simulator's admin endpoint (`/_sim/faults`, `/_sim/stats`), as tests drive it.
#![allow(dead_code)]

/// Posts `faults` (JSON) to the simulator at `base` (`http://host:port`); returns the HTTP status.
pub async fn set_faults(client: &reqwest::Client, base: &str, faults: &'static str) -> u16 {
    client
        .post(format!("{base}/_sim/faults"))
        .body(faults)
        .send()
        .await
        .expect("post faults")
        .status()
        .as_u16()
}

/// How many requests the simulator at `base` has answered.
pub async fn requests(client: &reqwest::Client, base: &str) -> serde_json::Value {
    let stats: serde_json::Value = client
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .expect("get stats")
        .json()
        .await
        .expect("stats JSON");
    stats["requests"].clone()
}
