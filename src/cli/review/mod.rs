//! `idgate review`: the review console, for a human at a terminal ([`terminal`]) or in a browser
//! ([`web`], `--web`), and what both share ([`session`]: the reviewer's key file, claiming and opening
//! a case, the signals that end a console), with their flags in `args.rs`. The arrows point one way:
//! this file dispatches to a console; each console uses the session and the flags, neither the other.
//!
//! Both consoles must never leave decrypted case material behind when they end, nor log it.

mod args;
pub mod session;
pub mod terminal;
pub mod web;

pub use self::args::{DecisionArg, ReviewArgs, WebArgs};
pub use self::session::NO_FACE_NOTE;
use super::CliError;

/// Runs the console `args` asks for: in the browser with `--web`, else on the terminal.
pub async fn run(args: ReviewArgs) -> Result<(), CliError> {
    if args.web_args.web {
        web::run(args).await
    } else {
        terminal::run(args).await
    }
}
