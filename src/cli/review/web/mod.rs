//! `idgate review --web`: the review console in a browser, served by the reviewer's own machine.
//!
//! This process is a gRPC client of the gateway (the reviewer's certificate, as `idgate review`) and a
//! small HTTP server on a loopback address for one browser. A claimed case is opened here with the
//! reviewer's own key, held in memory only (wiped on drop) and handed to the page from memory; it is
//! dropped when the decision is sent, the case is released, the lease ends or the console exits.
//! With an admin certificate it serves a read-only view of the queue figures and the audit trail.
//!
//! Access: the console prints a launch URL holding a random token. The token opens one page, once: the
//! page comes with its own random session secret, which its script keeps in memory and sends as the
//! `X-Idgate-Session` header on every API and image request (images are fetched into `blob:` URLs).
//! No cookie is ever set: cookies are not kept apart by port, so one would reach every other HTTP
//! service on the same host, and two consoles on one machine would overwrite each other's. Each use of
//! a launch URL prints the next one (to reopen the console after a reload).
//!
//! It must never: write case material to disk, log it (it logs nothing about requests at all), let the
//! browser cache it (`Cache-Control: no-store` on every answer), fetch anything from the network for
//! the page (every asset is embedded, under a strict Content-Security-Policy), set a cookie, or answer
//! a request that comes with a foreign `Host` or `Origin`, or from another site or origin by its
//! `Sec-Fetch-Site` (reads too), or that lacks a live session secret; only the launch URL and the
//! static assets (public code, no data) are served without one. Each of those gets 403.
//!
//! The rooms, arrows pointing one way (this file starts the console and routes; each room leans only
//! on those after it): [`handlers`] (one function per route), [`guard`] (launch token, session
//! secrets, the Host/Origin/Sec-Fetch checks and the headers on every answer), [`views`] (what the
//! page is sent, wiped once sent), [`state`] (what the console holds: mode, secrets, the open case),
//! [`assets`] (the embedded page, script and style).

mod assets;
mod guard;
mod handlers;
mod state;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use tokio::sync::Mutex;

use self::assets::{ADMIN_JS, CONSOLE_CSS, REVIEW_JS, asset};
use self::guard::{guard, print_launch_url, secret};
use self::handlers::{audit, bounded, claim, decide, image, index, release, state};
use self::state::{Console, Held, Mode};
use super::args::ReviewArgs;
use super::session::{Interrupts, key_path, own_caller, register, reviewer_key};
use crate::cli::CliError;
use crate::client::connect_named;
use crate::pb;
use crate::pb::audit_service_client::AuditServiceClient;
use crate::pb::review_service_client::ReviewServiceClient;
use crate::transport::auth::Role;

pub use self::guard::SESSION_HEADER;
pub use self::views::REASONS;

/// Starts the web console and serves until Ctrl-C or SIGTERM.
pub async fn run(args: ReviewArgs) -> Result<(), CliError> {
    let listen = match args.web_args.listen {
        Some(addr) => addr,
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    if !listen.ip().is_loopback() {
        if !args.web_args.allow_remote {
            return Err(CliError::Usage(format!(
                "--listen {listen} is not a loopback address; add --allow-remote if you mean it"
            )));
        }
        if listen.ip().is_unspecified() {
            return Err(CliError::Usage(
                "--listen needs one specific address (the console checks the Host header against it)".into(),
            ));
        }
    }
    // Ctrl-C, SIGTERM or SIGHUP ends the console, releasing and dropping a held case.
    let mut interrupts = Interrupts::listen()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let console = Arc::new(prepare(&args, &listener).await?);
    if !listen.ip().is_loopback() {
        eprintln!(
            "warning: the review console listens on {listen}, not on loopback: case material will cross the \
             network without TLS, and anyone who learns the URL can use this console"
        );
    }
    print_launch_url(&console);
    eprintln!("each URL opens one page once; opening it prints the next (for a reload or a new tab)");
    let app = router(console.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { interrupts.recv().await })
        .await
        .context("serving the review console")?;
    finish(&console).await;
    Ok(())
}

/// Connects to the gateway, loads the reviewer key (registering it) and works out the allowed hosts.
async fn prepare(args: &ReviewArgs, listener: &tokio::net::TcpListener) -> anyhow::Result<Console> {
    let caller = own_caller(&args.certs.join(format!("{}.pem", args.identity)))?;
    let channel = connect_named(&args.target, args.tls.tls_name.as_deref(), &args.certs, &args.identity).await?;
    let review = ReviewServiceClient::new(channel.clone()).max_decoding_message_size(32 << 20);
    let mode = match caller.role {
        Role::Reviewer => {
            let key = reviewer_key(&key_path(args))?;
            let mut review = review;
            register(&mut review, &key).await.context("RegisterReviewerKey")?;
            Mode::Reviewer { key, review }
        }
        Role::Admin => Mode::Admin {
            review,
            audit: AuditServiceClient::new(channel),
        },
        Role::Onboarding => anyhow::bail!("the review console needs a reviewer or admin certificate"),
    };
    let local = listener.local_addr().context("listener address")?;
    let port = local.port();
    let hosts = if local.ip().is_loopback() {
        let ip = match local.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        vec![format!("{ip}:{port}"), format!("localhost:{port}")]
    } else {
        vec![local.to_string()]
    };
    Ok(Console {
        mode,
        principal: caller.principal,
        launch: std::sync::Mutex::new(secret()?),
        sessions: std::sync::Mutex::new(std::collections::VecDeque::new()),
        hosts,
        held: Mutex::new(Held::default()),
    })
}

/// On exit: gives a held case back to the queue and drops its material.
async fn finish(console: &Console) {
    let case = console.held.lock().await.case.take();
    if let Some(case) = case {
        let mut review = console.review_client();
        let released = bounded(review.release_case(pb::ReleaseCaseRequest {
            case_id: case.case_id.clone(),
        }))
        .await;
        if released.is_err() {
            eprintln!("could not release case {}; its lease will run out", case.case_id);
        }
    }
}

fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/assets/console.css",
            get(|| async { asset("text/css; charset=utf-8", CONSOLE_CSS) }),
        )
        .route(
            "/assets/review.js",
            get(|| async { asset("text/javascript; charset=utf-8", REVIEW_JS) }),
        )
        .route(
            "/assets/admin.js",
            get(|| async { asset("text/javascript; charset=utf-8", ADMIN_JS) }),
        )
        .route("/api/state", get(state))
        .route("/api/claim", post(claim))
        .route("/api/decide", post(decide))
        .route("/api/release", post(release))
        .route("/api/audit", get(audit))
        .route("/case/{id}/image/{slot}", get(image))
        .layer(axum::middleware::from_fn_with_state(console.clone(), guard))
        .with_state(console)
}
