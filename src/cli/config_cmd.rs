//! `idgate config`: check a configuration without starting the gateway, and print a commented one.
//!
//! `check` loads exactly what `serve` would (defaults, the file, the `IDGATE_<SECTION>__<KEY>`
//! environment), names any unknown key and any value that would break the gateway (with the rule it
//! breaks), and checks that every file the configuration points at — certificates, keys, secrets —
//! can be read, and that key and secret files are readable by their owner only. It never prints a
//! secret, also not one of the wrong type.

use std::path::{Path, PathBuf};

use super::CliError;
use crate::config::{Config, ConfigError, ensure_private};

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigAction {
    /// Validate a configuration file (and the IDGATE_ environment) without starting; exit code 64 on
    /// error, naming the unknown key or the missing file.
    Check {
        /// The TOML file `serve --config` would read.
        file: PathBuf,
        /// Check it as `serve --dev` would use it (certificates and keys may be left out).
        #[arg(long)]
        dev: bool,
    },
    /// Print a commented configuration covering every key with its default.
    Example,
}

pub fn run(args: ConfigArgs) -> Result<(), CliError> {
    match args.action {
        ConfigAction::Example => {
            print!("{EXAMPLE}");
            Ok(())
        }
        ConfigAction::Check { file, dev } => {
            let config = Config::load(Some(&file)).map_err(|e| CliError::Usage(e.to_string()))?;
            let problems = check(&config, dev);
            if problems.is_empty() {
                println!("{}: ok", file.display());
                Ok(())
            } else {
                Err(CliError::Usage(format!(
                    "{}:\n  {}",
                    file.display(),
                    problems.join("\n  ")
                )))
            }
        }
    }
}

/// Everything `serve` would refuse beyond parsing: required keys (unless `dev`) and files that cannot
/// be read.
pub fn check(config: &Config, dev: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut file = |what: &str, path: &Option<PathBuf>, required: bool| match path {
        Some(path) => {
            if let Err(e) = readable(path) {
                problems.push(format!("{what} {}: {e}", path.display()));
            }
        }
        None if required => problems.push(format!("{what} is missing")),
        None => {}
    };
    let server = &config.server;
    file("server.tls_cert", &server.tls_cert, !dev);
    file("server.tls_key", &server.tls_key, !dev);
    file("server.client_ca", &server.client_ca, !dev);
    file("keys.keks_file", &config.keys.keks_file, false);
    file("store.password_file", &config.store.password_file, false);
    file("store.tls_ca_file", &config.store.tls_ca_file, false);
    file("store.tls_cert_file", &config.store.tls_cert_file, false);
    file("store.tls_key_file", &config.store.tls_key_file, false);
    match &config.keys.dir {
        Some(dir) if !dir.is_dir() => problems.push(format!("keys.dir {}: not a directory", dir.display())),
        None if !dev => problems.push("keys.dir is missing".to_owned()),
        _ => {}
    }
    if server.listen.is_none() && !dev {
        problems.push("server.listen is missing (or pass --listen to serve)".to_owned());
    }
    if config.providers.is_empty() && !dev {
        problems.push("[[providers]] is missing (at least one)".to_owned());
    }
    let mut note = |e: ConfigError| {
        let text = message(e);
        if !problems.contains(&text) {
            problems.push(text);
        }
    };
    for (what, path) in config.private_files() {
        if let Err(e @ ConfigError::NotPrivate { .. }) = ensure_private(what, path) {
            note(e);
        }
    }
    if let Err(e) = config.keys.kek_list() {
        note(e);
    }
    if let Err(e) = config.store.resolve_password() {
        note(e);
    }
    for provider in &config.providers {
        if let Err(e) = provider.resolve_secret_key() {
            note(e);
        }
    }
    problems
}

fn message(error: ConfigError) -> String {
    error.to_string()
}

fn readable(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path).map(drop)
}

/// Every key with its default, commented. `config_example_covers_every_key` keeps it complete.
pub const EXAMPLE: &str = include_str!("config_example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key `Config::default()` has appears in the example, uncommented, with its default.
    #[test]
    fn config_example_covers_every_key() {
        let example: toml::Table = toml::from_str(EXAMPLE).expect("the example parses");
        let defaults: toml::Table =
            toml::from_str(&toml::to_string(&Config::default()).expect("serialize")).expect("parse");
        for (section, value) in &defaults {
            let Some(table) = value.as_table() else { continue };
            let shown = example
                .get(section)
                .and_then(|v| v.as_table())
                .unwrap_or_else(|| panic!("section [{section}] is missing from the example"));
            for (key, default) in table {
                assert_eq!(shown.get(key), Some(default), "[{section}] {key} with its default");
            }
        }
        // And the example is a configuration the gateway accepts as it is.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("example.toml");
        std::fs::write(&path, EXAMPLE).expect("write");
        Config::load(Some(&path)).expect("the example loads");
    }

    #[test]
    fn check_names_missing_files_and_required_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("idgate.toml");
        std::fs::write(
            &path,
            r#"
[server]
tls_cert = "/nonexistent/server.pem"
[[providers]]
name = "p"
kind = "tencent-faceid"
endpoint = "https://faceid.tencentcloudapi.com"
secret_id = "AKID"
secret_key_file = "/nonexistent/secret"
"#,
        )
        .expect("write");
        let config = Config::load(Some(&path)).expect("parses");
        let problems = check(&config, false).join("\n");
        for named in [
            "server.tls_cert /nonexistent/server.pem",
            "server.tls_key is missing",
            "keys.dir is missing",
            "/nonexistent/secret",
        ] {
            assert!(problems.contains(named), "{named} in {problems}");
        }
        assert!(check(&Config::default(), true).is_empty(), "dev mode fills the rest in");
    }
}
