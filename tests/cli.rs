//! Subcommands of the real binary that need no running gateway: their output and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::process::{Command, Output};

/// `idgate ARGS` with only the `IDGATE_` variables given here (none inherited from the caller).
fn idgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idgate"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("IDGATE_")) {
        command.env_remove(key);
    }
    command.args(args).envs(env.iter().copied()).output().unwrap()
}

#[test]
fn privacy_report_prints_the_data_map_and_refuses_a_bad_configuration() {
    let out = idgate(&["privacy", "report", "--dev"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let markdown = String::from_utf8(out.stdout).unwrap();
    assert!(markdown.starts_with("# idgate data map"), "{markdown}");
    assert!(
        markdown.contains("| 259200 s (3 d) |"),
        "the default pending-review retention"
    );

    // The environment layers over the defaults as for `serve`; JSON carries the same figure.
    let out = idgate(
        &["privacy", "report", "--dev", "--format", "json"],
        &[("IDGATE_RETENTION__PENDING_REVIEW_TTL_SECONDS", "7200")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pending = json["lifetimes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["data"] == "pending_review_material")
        .unwrap();
    assert_eq!(pending["seconds"], 7200);

    // An unknown key is refused by name with exit code 64, like `config check`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("idgate.toml");
    std::fs::write(&file, "[retention]\npending_review_ttl = 60\n").unwrap();
    let out = idgate(&["privacy", "report", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pending_review_ttl"), "{stderr}");
    assert!(out.stdout.is_empty(), "no partial report");
}

#[test]
fn config_check_refuses_an_unknown_provider_kind_or_log_format_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("idgate.toml");
    let check = |text: &str| {
        std::fs::write(&file, text).unwrap();
        let out = idgate(&["config", "check", "--dev", file.to_str().unwrap()], &[]);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let provider = |kind: &str| {
        format!(
            "[[providers]]\nname = \"p\"\nkind = \"{kind}\"\nendpoint = \"https://x\"\nsecret_id = \"a\"\nsecret_key = \"s\"\n"
        )
    };
    let (code, stderr) = check(&provider("tencent-faceid"));
    assert_eq!(code, Some(0), "{stderr}");
    // Refused when the configuration is loaded, as `serve` would be, with exit code 64.
    let (code, stderr) = check(&provider("openai"));
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains(r#"kind "openai" is not supported (supported: tencent-faceid, aliyun-cloudauth)"#),
        "{stderr}"
    );
    let (code, stderr) = check("[telemetry]\nlog_format = \"pretty\"\n");
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains(r#"log_format "pretty" is not supported (supported: text, json)"#),
        "{stderr}"
    );
}

#[test]
fn keys_maintain_rotates_when_due_and_list_shows_the_kek_dates() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keys = keys.to_str().unwrap();
    let text = |out: &Output| String::from_utf8_lossy(&out.stdout).into_owned();

    // No KEK: maintenance makes one, dated by the configuration (a one-hour epoch here).
    let env = [("IDGATE_KEYS__KEK_EPOCH_SECONDS", "3600")];
    let out = idgate(&["keys", "maintain", "--dir", keys], &env);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let said = text(&out);
    let id = said
        .split_whitespace()
        .find(|w| w.starts_with("kek-"))
        .expect("names the new KEK")
        .to_owned();
    assert!(
        said.contains("rotated: KEK") && said.contains("destroy after"),
        "{said}"
    );

    // Run again inside the epoch (lead at most half an epoch): nothing is due.
    let out = idgate(&["keys", "maintain", "--dir", keys, "--lead-seconds", "60"], &env);
    assert_eq!(text(&out).trim(), "nothing due");

    let out = idgate(&["keys", "list", "--dir", keys], &env);
    let listed = text(&out);
    let line = listed.lines().find(|l| l.contains(&id)).expect("listed");
    assert!(
        line.contains("epoch ends") && line.contains("destroy after") && line.contains("wraps"),
        "{line}"
    );
    // Ids and dates only: no key material.
    let file = std::fs::read_to_string(std::path::Path::new(keys).join("kek").join(format!("{id}.key"))).unwrap();
    let secret = file
        .lines()
        .find_map(|l| l.strip_prefix("secret = \""))
        .unwrap()
        .trim_end_matches('"');
    assert!(!said.contains(secret) && !listed.contains(secret));
}
