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

/// A secret of the wrong type (a number, a boolean) — in the environment or the file — is refused
/// by `config check` and `serve` with exit code 64, naming the key and the type expected, and the
/// value is in neither output (it would reach pod logs).
#[test]
fn config_check_and_serve_refuse_a_secret_of_another_type_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("idgate.toml");
    let dev_dir = dir.path().join("dev");
    let shown = |out: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    for value in ["12345678", "true", "false", "271828.18"] {
        let mut runs = Vec::new();
        std::fs::write(&file, "").unwrap();
        for (key, env) in [
            ("store.password", "IDGATE_STORE__PASSWORD"),
            ("keys.keks", "IDGATE_KEYS__KEKS"),
        ] {
            let check = idgate(&["config", "check", "--dev", file.to_str().unwrap()], &[(env, value)]);
            let serve = idgate(
                &[
                    "serve",
                    "--dev",
                    "--listen",
                    "127.0.0.1:0",
                    "--dev-dir",
                    dev_dir.to_str().unwrap(),
                ],
                &[(env, value)],
            );
            runs.extend([(key, check), (key, serve)]);
        }
        for (section, key) in [("store", "password"), ("keys", "keks")] {
            std::fs::write(&file, format!("[{section}]\n{key} = {value}\n")).unwrap();
            runs.push((key, idgate(&["config", "check", "--dev", file.to_str().unwrap()], &[])));
        }
        std::fs::write(
            &file,
            format!(
                "[[providers]]\nname = \"p\"\nkind = \"tencent-faceid\"\nendpoint = \"https://x\"\nsecret_id = \"a\"\nsecret_key = {value}\n"
            ),
        )
        .unwrap();
        runs.push((
            "secret_key",
            idgate(&["config", "check", "--dev", file.to_str().unwrap()], &[]),
        ));
        for (key, out) in runs {
            let text = shown(&out);
            assert_eq!(out.status.code(), Some(64), "{text}");
            assert!(text.to_lowercase().contains(key), "names {key}: {text}");
            assert!(text.contains("expected a string"), "{text}");
            assert!(!text.contains(value), "{value} shown: {text}");
        }
    }
}

/// Values that would break the gateway are refused by `config check` (exit code 64) by key, with
/// the rule they break.
#[test]
fn config_check_refuses_values_that_break_the_gateway_by_name_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("idgate.toml");
    for (text, named) in [
        ("[review]\nlease_seconds = 0\n", "review.lease_seconds must be positive"),
        (
            "[server]\ncall_deadline_ms = 0\n",
            "server.call_deadline_ms must be positive",
        ),
        (
            "[server]\nmax_concurrent_streams = 0\n",
            "server.max_concurrent_streams must be positive",
        ),
        (
            "[retention]\ncase_record_ttl_seconds = 0\n",
            "retention.case_record_ttl_seconds must be positive",
        ),
        (
            "[retention]\npending_review_ttl_seconds = 86400\ncase_record_ttl_seconds = 3600\n",
            "retention.case_record_ttl_seconds (3600) must be at least retention.pending_review_ttl_seconds",
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = idgate(&["config", "check", "--dev", file.to_str().unwrap()], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{text}: {stderr}");
        assert!(stderr.contains(named), "{text}: {stderr}");
    }
}

/// A TLS private key or `_file` secret group or others may read: `config check` lists each by
/// setting and path, `serve` refuses to start (exit code 64) naming it, and neither shows content.
#[cfg(unix)]
#[test]
fn config_check_and_serve_refuse_key_and_secret_files_others_may_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, mode: u32| {
        let path = dir.path().join(name);
        std::fs::write(&path, "content-not-shown").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (server_key, redis_key, password, secret) = (
        file("server.key", 0o644),
        file("redis.key", 0o640),
        file("redis.password", 0o604),
        file("tencent", 0o660),
    );
    let (cert, ca) = (file("server.pem", 0o644), file("ca.pem", 0o644));
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let config = dir.path().join("idgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ntls_cert = {cert:?}\ntls_key = {server_key:?}\nclient_ca = {ca:?}\n\
             [keys]\ndir = {keys:?}\n\
             [store]\nurl = \"rediss://127.0.0.1:1\"\ntls_cert_file = {cert:?}\ntls_key_file = {redis_key:?}\npassword_file = {password:?}\n\
             [[providers]]\nname = \"p\"\nkind = \"tencent-faceid\"\nendpoint = \"https://x\"\nsecret_id = \"a\"\nsecret_key_file = {secret:?}\n"
        ),
    )
    .unwrap();
    let out = idgate(&["config", "check", config.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    for (setting, path) in [
        ("server.tls_key", &server_key),
        ("store.tls_key_file", &redis_key),
        ("store.password_file", &password),
        ("provider secret_key_file", &secret),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(setting) && l.contains(path.as_str()))
            .unwrap_or_else(|| panic!("{setting} {path} in {stderr}"));
        assert!(line.contains("group or others") && line.contains("chmod 600"), "{line}");
    }
    assert!(!stderr.contains("content-not-shown"), "{stderr}");

    let out = idgate(&["serve", "--config", config.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("server.tls_key") && stderr.contains(&server_key) && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stderr.contains("content-not-shown"), "{stderr}");
}
