//! `idgate keys`: generate, rotate and list sealing keys and key-encryption keys.

use std::path::PathBuf;

use anyhow::Context as _;

use super::CliError;
use crate::clock::{Clock, SystemClock};
use crate::crypto::keyfile::{self, KeyKind};

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysAction {
    /// Add a new key that becomes current. Sealing: the previous key stays valid for
    /// `keys.sealing_grace_seconds`. KEK: old keys still open old records.
    Rotate {
        /// The key directory (`keys.dir`).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "all")]
        kind: Kind,
    },
    /// List key ids and creation times (never key material).
    List {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    Sealing,
    Kek,
    BlindIndex,
    All,
}

pub fn run(args: KeysArgs) -> Result<(), CliError> {
    match args.action {
        KeysAction::Rotate { dir, kind } => {
            let kinds: &[KeyKind] = match kind {
                Kind::Sealing => &[KeyKind::Sealing],
                Kind::Kek => &[KeyKind::Kek],
                // Rotating the blind-index key restarts the limits that count by ID number.
                Kind::BlindIndex => &[KeyKind::BlindIndex],
                Kind::All => &[KeyKind::Sealing, KeyKind::Kek],
            };
            let now = SystemClock.now_unix();
            for &kind in kinds {
                let id = keyfile::generate(&dir, kind, now).with_context(|| format!("rotating {kind:?} key"))?;
                println!("{kind:?} key {id} is now current ({})", dir.display());
            }
            println!("Send SIGHUP to the gateways (or restart them) to load the new keys.");
        }
        KeysAction::List { dir } => {
            for kind in [KeyKind::Sealing, KeyKind::Kek] {
                let mut keys = keyfile::load(&dir, kind).context("reading keys")?;
                keys.sort_by_key(|k| std::cmp::Reverse(k.created_at_unix));
                for (i, key) in keys.iter().enumerate() {
                    let mark = if i == 0 { "current" } else { "" };
                    println!("{kind:?}\t{}\tcreated {}\t{mark}", key.id, key.created_at_unix);
                }
            }
        }
    }
    Ok(())
}
