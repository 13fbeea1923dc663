//! The notification worker: delivery loops that empty the SMS outbox, one SMS each at a
//! time, and a loop that trims dead letters, until told to stop.

use std::sync::Arc;
use std::time::Duration;

use application::usecases::{DeliverNotification, DeliveryOutcome};
use tokio::sync::watch;

use crate::metrics::WorkerTelemetry;

/// How long the worker waits when the outbox has nothing due (or cannot be read).
const OUTBOX_POLL: Duration = Duration::from_millis(250);

/// Longest time between two dead-letter trims (a shorter retention trims more often).
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// The notification worker: `concurrency` delivery loops, each delivering one due SMS at a
/// time (the outbox hands each message to one of them, round robin over users), and a loop
/// that trims dead letters, until told to stop. Readiness holds while all run: if one
/// panics, the others are stopped too and the replica turns unready.
pub(crate) async fn deliver_until_stopped(
    delivery: Arc<DeliverNotification>,
    stop: watch::Receiver<bool>,
    running: RunningGuard,
    concurrency: usize,
) {
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        loops.spawn(deliver_loop(
            Arc::clone(&delivery),
            stop.clone(),
            running.0.clone(),
        ));
    }
    loops.spawn(trim_loop(Arc::clone(&delivery), stop));
    while let Some(ended) = loops.join_next().await {
        if let Err(e) = ended {
            tracing::error!(error = %e, "a notification worker loop died; stopping the worker");
            break;
        }
    }
    // Dropping the set aborts what is left; dropping `running` marks the worker stopped.
    drop(loops);
    drop(running);
}

/// Trims dead letters now and then: by age (the retention) and by count.
async fn trim_loop(delivery: Arc<DeliverNotification>, mut stop: watch::Receiver<bool>) {
    let every =
        (delivery.policy().dead_letter_retention / 2).clamp(Duration::from_secs(1), TRIM_EVERY);
    loop {
        match delivery.trim_dead_letters().await {
            Ok(0) => {}
            Ok(trimmed) => tracing::info!(trimmed, "dead letters trimmed"),
            Err(e) => tracing::warn!(error = %e, "cannot trim dead letters now; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => break,
        }
    }
}

/// One delivery loop: one SMS at a time until told to stop.
async fn deliver_loop(
    delivery: Arc<DeliverNotification>,
    mut stop: watch::Receiver<bool>,
    telemetry: WorkerTelemetry,
) {
    loop {
        if *stop.borrow() {
            break;
        }
        let outcome = delivery.run_once().await;
        telemetry.record(&outcome);
        let busy = match outcome {
            Ok(DeliveryOutcome::Idle) => false,
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "notification outbox unavailable; retrying");
                false
            }
        };
        if !busy {
            tokio::select! {
                () = tokio::time::sleep(OUTBOX_POLL) => {}
                _ = stop.changed() => break,
            }
        }
    }
}

/// Marks the worker as running while alive; dropped when the worker ends, panics included.
pub(crate) struct RunningGuard(WorkerTelemetry);

impl RunningGuard {
    pub(crate) fn new(telemetry: WorkerTelemetry) -> Self {
        telemetry.set_running(true);
        Self(telemetry)
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.set_running(false);
    }
}
