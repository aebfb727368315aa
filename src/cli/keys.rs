//! `idgate keys`: generate, rotate, list and (on a schedule) maintain sealing keys, key-encryption
//! keys (KEKs) and the blind-index key. KEK dates come from the configuration `serve` would load
//! (`--config`, then the `IDGATE_<SECTION>__<KEY>` environment): `keys.kek_epoch_seconds`, the
//! retention settings and `keys.kek_destroy_grace_seconds`. Prints key ids and dates, never key
//! material.

use std::path::PathBuf;

use anyhow::Context as _;

use super::CliError;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::keyfile::{self, KeyKind};

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysAction {
    /// Add a new key that becomes current. Sealing: the previous key stays valid for
    /// `keys.sealing_grace_seconds`. KEK: old keys still open old records until their destruction
    /// date; the new one wraps for `keys.kek_epoch_seconds`.
    Rotate {
        /// The key directory (`keys.dir`).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "all")]
        kind: Kind,
        /// The TOML file `serve --config` reads (for the KEK's dates).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List key ids and creation times; for KEKs also the end of the epoch and the destruction
    /// date (never key material).
    List {
        #[arg(long)]
        dir: PathBuf,
        /// The TOML file `serve --config` reads (to mark KEKs that no longer wrap).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The scheduled KEK upkeep, for cron or a systemd timer: destroys (overwrites and unlinks) every
    /// KEK file past its destruction date, and makes a new KEK when the current one's epoch ends
    /// within `--lead-seconds`. Says what it did by key id. Reload the gateways (SIGHUP) after a
    /// rotation.
    Maintain {
        #[arg(long)]
        dir: PathBuf,
        /// The TOML file `serve --config` reads (for the dates of a new KEK).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Rotate this long before the current epoch ends (at most half an epoch), so that every
        /// gateway has reloaded before it does.
        #[arg(long, default_value_t = 86_400)]
        lead_seconds: i64,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    Sealing,
    Kek,
    BlindIndex,
    All,
}

fn load_config(config: Option<PathBuf>) -> Result<Config, CliError> {
    Config::load(config.as_deref()).map_err(|e| CliError::Usage(e.to_string()))
}

/// A unix time as `2026-12-01T21:57:49Z (1796248669)`.
fn date(unix: i64) -> String {
    let text = time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "?".to_owned());
    format!("{text} ({unix})")
}

pub fn run(args: KeysArgs) -> Result<(), CliError> {
    let now = SystemClock.now_unix();
    match args.action {
        KeysAction::Rotate { dir, kind, config } => {
            let schedule = load_config(config)?.kek_schedule();
            let kinds: &[KeyKind] = match kind {
                Kind::Sealing => &[KeyKind::Sealing],
                Kind::Kek => &[KeyKind::Kek],
                // Rotating the blind-index key restarts the limits that count by ID number.
                Kind::BlindIndex => &[KeyKind::BlindIndex],
                Kind::All => &[KeyKind::Sealing, KeyKind::Kek],
            };
            for &kind in kinds {
                let id = match kind {
                    KeyKind::Kek => keyfile::generate_kek(&dir, now, &schedule),
                    other => keyfile::generate(&dir, other, now),
                }
                .with_context(|| format!("rotating {kind:?} key"))?;
                println!("{kind:?} key {id} is now current ({})", dir.display());
            }
            println!("Send SIGHUP to the gateways (or restart them) to load the new keys.");
        }
        KeysAction::List { dir, config } => {
            let schedule = load_config(config)?.kek_schedule();
            for kind in [KeyKind::Sealing, KeyKind::Kek] {
                let mut keys = keyfile::load(&dir, kind).context("reading keys")?;
                keys.sort_by_key(|k| std::cmp::Reverse((k.version, k.created_at_unix)));
                for (i, key) in keys.iter().enumerate() {
                    let mark = if i == 0 { "current" } else { "" };
                    let dates = match (kind, key.dates) {
                        (KeyKind::Kek, Some(dates)) => {
                            let wraps = schedule.wrapping_dates(dates);
                            let state = if dates.destroyed_at(now) {
                                "PAST DESTRUCTION DATE (not loaded; run `idgate keys maintain`)"
                            } else if wraps.wraps_at(now) {
                                "wraps"
                            } else {
                                "opens only"
                            };
                            format!(
                                "\tepoch ends {}\tdestroy after {}\t{state}",
                                date(wraps.wraps_until_unix),
                                date(dates.destroy_after_unix)
                            )
                        }
                        (KeyKind::Kek, None) => {
                            "\tundated (earlier version): opens only, never destroyed by maintain".into()
                        }
                        _ => String::new(),
                    };
                    println!(
                        "{kind:?}\t{}\tcreated {}{dates}\t{mark}",
                        key.id,
                        date(key.created_at_unix)
                    );
                }
            }
        }
        KeysAction::Maintain {
            dir,
            config,
            lead_seconds,
        } => {
            let schedule = load_config(config)?.kek_schedule();
            let lead = lead_seconds.clamp(0, schedule.epoch_seconds / 2);
            let upkeep = keyfile::maintain_keks(&dir, now, &schedule, lead).context("maintaining KEKs")?;
            for id in &upkeep.destroyed {
                println!("destroyed KEK {id}: past its destruction date; file overwritten and unlinked");
            }
            for id in &upkeep.undated {
                println!(
                    "undated KEK {id} (from an earlier version): left in place; remove it by hand once \
                     retention plus grace has passed since every gateway stopped wrapping with it"
                );
            }
            match &upkeep.rotated {
                Some(id) => {
                    let dates = schedule.dates_from(now);
                    println!(
                        "rotated: KEK {id} is now current (wraps until {}, destroy after {})",
                        date(dates.wraps_until_unix),
                        date(dates.destroy_after_unix)
                    );
                    println!("Send SIGHUP to the gateways (or restart them) to load the new key.");
                }
                None if upkeep.destroyed.is_empty() => println!("nothing due"),
                None => {}
            }
        }
    }
    Ok(())
}
