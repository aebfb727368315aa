//! Background upkeep of every gateway: the retention sweep (with a refresh of the review-queue
//! figures) and the re-wrapping of data keys after a KEK rotation, each on its own interval.
//!
//! Safe to run on every gateway at once: each step is idempotent. It must never stop the gateway on
//! a failed pass (it logs and tries again at the next tick), nor log anything but counts and errors.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::stopped;
use super::use_cases::UseCases;
use crate::config::Config;
use crate::key_rotation::KeyRotation;
use crate::metrics::{Instruments, QueueFigures};
use crate::retention::Retention;
use crate::review::ReviewDesk;

/// Data keys re-wrapped per pass at most (bounded work per tick).
const REWRAP_BATCH: usize = 500;

pub(super) struct Maintenance {
    /// Retention: expire pending cases whose data is due, forget old records.
    retention: Arc<Retention>,
    sweep_every: Duration,
    /// Key rotation: move data keys still wrapped by an older KEK to the current one.
    key_rotation: Arc<KeyRotation>,
    rewrap_every: Duration,
    /// For the review-queue figures, refreshed with every sweep.
    review: Arc<ReviewDesk>,
    /// The review-queue figures the metrics report.
    queue_figures: Arc<QueueFigures>,
    instruments: Instruments,
}

impl Maintenance {
    pub(super) fn new(
        config: &Config,
        use_cases: &UseCases,
        queue_figures: &Arc<QueueFigures>,
        instruments: &Instruments,
    ) -> Self {
        Self {
            retention: use_cases.retention.clone(),
            sweep_every: config.retention.sweep_interval_seconds,
            key_rotation: use_cases.key_rotation.clone(),
            rewrap_every: config.keys.rewrap_interval_seconds,
            review: use_cases.review.clone(),
            queue_figures: queue_figures.clone(),
            instruments: instruments.clone(),
        }
    }

    /// Runs until `stop` turns true.
    pub(super) async fn run(self, stop: watch::Receiver<bool>) {
        let stopping = stopped(stop);
        tokio::pin!(stopping);
        let mut sweep = tokio::time::interval(self.sweep_every);
        let mut rewrap = tokio::time::interval(self.rewrap_every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        rewrap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = sweep.tick() => {
                    match self.retention.sweep().await {
                        Ok(0) => {}
                        Ok(expired) => {
                            self.instruments.retention_expired(expired);
                            tracing::info!(expired, "retention: pending cases expired and their data destroyed")
                        }
                        Err(error) => tracing::warn!(%error, "retention sweep failed"),
                    }
                    match self.review.stats().await {
                        Ok(stats) => self.queue_figures.update(stats),
                        Err(error) => tracing::warn!(%error, "review queue figures unavailable"),
                    }
                }
                _ = rewrap.tick() => match self.key_rotation.rewrap_pending(REWRAP_BATCH).await {
                    Ok(0) => {}
                    Ok(moved) => tracing::info!(moved, "data keys re-wrapped to the current KEK"),
                    Err(error) => tracing::warn!(%error, "re-wrap pass failed"),
                },
                _ = &mut stopping => return,
            }
        }
    }
}
