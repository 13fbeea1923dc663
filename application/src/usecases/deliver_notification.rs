//! DeliverNotification: one step of the outbox worker. Claims the next due SMS, sends
//! it, and records the outcome: delivered, retried later with exponential backoff and
//! jitter (429, 5xx, timeouts), or dead-lettered with the last error (a 4xx that will
//! never succeed, or attempts exhausted).
//!
//! A provider's `Retry-After` is honoured up to `max_backoff` and no further: a hint of a
//! day (or a hostile or broken one of years) must not park a message for good. Dead
//! letters are kept for `dead_letter_retention` and at most `max_dead_letters` of them
//! ([`DeliverNotification::trim_dead_letters`]); the text of a code SMS never reaches
//! one.
//!
//! The loop around it (poll interval, concurrency, shutdown) belongs to the server; this
//! keeps every decision testable without a runtime. Several steps may run at once: the
//! outbox hands each due message to one claimer, round robin over users.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain::{NotificationId, NotificationKind, Timestamp};

use super::shared::store_failures;
use crate::ports::Ports;
use crate::ports::{
    Clock, DeadLetter, IdGenerator, Notifier, NotifyError, Outbox, TodoRepository, UserRepository,
};

/// How hard to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Attempts before a retryable failure is given up on.
    pub max_attempts: u32,
    /// Delay after the first failure; doubled after each further one.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a claimed message stays invisible to other workers. A worker that dies
    /// mid-delivery loses its claim after this, and the message is delivered again.
    pub lease: Duration,
    /// How long a dead letter is kept.
    pub dead_letter_retention: Duration,
    /// The most dead letters kept; the oldest go first.
    pub max_dead_letters: usize,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            lease: Duration::from_secs(30),
            dead_letter_retention: Duration::from_secs(7 * 24 * 3600),
            max_dead_letters: 10_000,
        }
    }
}

/// The outbox is written before the todo (see `CreateTodo`), so a worker can see a
/// notification a moment before its todo exists. Within this grace it waits for the
/// todo; after it, a missing todo means it was never created (or already deleted).
const ORPHAN_GRACE: Duration = Duration::from_secs(60);
const ORPHAN_RECHECK: Duration = Duration::from_secs(2);

/// What a dead letter keeps of a code SMS's text.
const WITHHELD: &str = "[verification code withheld]";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Nothing was due.
    Idle,
    Sent {
        notification_id: NotificationId,
        receipt: String,
    },
    Retrying {
        notification_id: NotificationId,
        attempts: u32,
        due_at: Timestamp,
    },
    DeadLettered {
        notification_id: NotificationId,
        error: String,
    },
    /// Nothing to announce any more: its todo does not exist, its code expired or its
    /// user was deleted.
    Skipped { notification_id: NotificationId },
    /// Its todo is not visible yet; checked again shortly.
    Waiting { notification_id: NotificationId },
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("delivery bookkeeping failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(DeliveryError);

/// Counters of what the worker did, for logs and metrics.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub sent: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub skipped: AtomicU64,
}

pub struct DeliverNotification {
    outbox: Arc<dyn Outbox>,
    notifier: Arc<dyn Notifier>,
    todos: Arc<dyn TodoRepository>,
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    policy: DeliveryPolicy,
    stats: DeliveryStats,
}

impl std::fmt::Debug for DeliverNotification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliverNotification")
            .field("policy", &self.policy)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl DeliverNotification {
    pub fn new(ports: &Ports, policy: DeliveryPolicy) -> Self {
        Self {
            outbox: ports.outbox.clone(),
            notifier: ports.notifier.clone(),
            todos: ports.todos.clone(),
            users: ports.users.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            policy,
            stats: DeliveryStats::default(),
        }
    }

    pub fn stats(&self) -> &DeliveryStats {
        &self.stats
    }

    pub fn policy(&self) -> &DeliveryPolicy {
        &self.policy
    }

    /// Handles at most one notification.
    ///
    /// # Errors
    /// [`DeliveryError`] when the outbox cannot be read or updated; the message's lease
    /// then runs out and it is handled again later.
    pub async fn run_once(&self) -> Result<DeliveryOutcome, DeliveryError> {
        let now = self.clock.now();
        let Some(mut notification) = self.outbox.claim(now, self.policy.lease).await? else {
            return Ok(DeliveryOutcome::Idle);
        };
        let id = notification.id;
        match notification.kind {
            NotificationKind::TodoCreated { todo_id } => {
                if self
                    .todos
                    .get(notification.user_id, todo_id)
                    .await?
                    .is_none()
                {
                    let elapsed = Duration::from_secs(
                        u64::try_from(now.unix_seconds() - notification.created_at.unix_seconds())
                            .unwrap_or(0),
                    );
                    if elapsed < ORPHAN_GRACE {
                        self.outbox
                            .retry(&notification, now.plus(ORPHAN_RECHECK))
                            .await?;
                        return Ok(DeliveryOutcome::Waiting {
                            notification_id: id,
                        });
                    }
                    return self.skip(id, "todo not found").await;
                }
            }
            // A code that arrives after it expired is of no use and only confuses.
            NotificationKind::PhoneCode { expires_at } if expires_at.has_passed(now) => {
                return self.skip(id, "code expired").await;
            }
            // The account was deleted: its codes are of no use to anyone.
            NotificationKind::PhoneCode { .. } => {
                if self.users.find_by_id(notification.user_id).await?.is_none() {
                    return self.skip(id, "user deleted").await;
                }
            }
        }

        notification.attempts += 1;
        match self.notifier.send(&notification.sms).await {
            Ok(receipt) => {
                self.outbox.complete(id, &receipt).await?;
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    notification_id = %id,
                    kind = ?notification.kind,
                    message_uuid = %receipt,
                    attempts = notification.attempts,
                    "sms sent"
                );
                Ok(DeliveryOutcome::Sent {
                    notification_id: id,
                    receipt,
                })
            }
            Err(NotifyError::Retryable {
                reason,
                retry_after,
            }) if notification.attempts < self.policy.max_attempts => {
                // The provider's hint may lengthen the wait, up to our own cap.
                let hint = retry_after.unwrap_or_default().min(self.policy.max_backoff);
                let delay = self.backoff(notification.attempts).max(hint);
                let due_at = now.plus(delay);
                self.outbox.retry(&notification, due_at).await?;
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    notification_id = %id,
                    kind = ?notification.kind,
                    attempts = notification.attempts,
                    retry_in_secs = delay.as_secs(),
                    %reason,
                    "sms delivery failed; will retry"
                );
                Ok(DeliveryOutcome::Retrying {
                    notification_id: id,
                    attempts: notification.attempts,
                    due_at,
                })
            }
            Err(NotifyError::Retryable { reason, .. } | NotifyError::Permanent { reason }) => {
                // A code is a secret for its ten minutes and useless after: the dead
                // letter keeps that it failed, never the code.
                if notification.sms.secret {
                    notification.sms.text = WITHHELD.to_owned();
                }
                let dead = DeadLetter {
                    notification,
                    error: reason.clone(),
                    failed_at: now,
                };
                self.outbox.dead_letter(&dead).await?;
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                // Keep the bound as dead letters arrive, not only when the server's timer
                // comes round. The letter is recorded either way.
                if let Err(e) = self.trim_dead_letters().await {
                    tracing::warn!(error = %e, "could not trim dead letters; the next trim will");
                }
                tracing::error!(
                    notification_id = %id,
                    kind = ?dead.notification.kind,
                    attempts = dead.notification.attempts,
                    error = %reason,
                    "sms delivery failed for good; dead-lettered"
                );
                Ok(DeliveryOutcome::DeadLettered {
                    notification_id: id,
                    error: reason,
                })
            }
        }
    }

    /// Drops dead letters older than the retention and, beyond the most kept, the oldest;
    /// returns how many went. The server also runs this periodically.
    ///
    /// # Errors
    /// [`DeliveryError`] when the outbox cannot be trimmed now.
    pub async fn trim_dead_letters(&self) -> Result<u64, DeliveryError> {
        let now = self.clock.now();
        let cutoff = now.minus(self.policy.dead_letter_retention);
        Ok(self
            .outbox
            .trim_dead_letters(cutoff, self.policy.max_dead_letters)
            .await?)
    }

    /// Completes a notification without sending it.
    async fn skip(
        &self,
        id: NotificationId,
        why: &'static str,
    ) -> Result<DeliveryOutcome, DeliveryError> {
        self.outbox.complete(id, &format!("skipped: {why}")).await?;
        self.stats.skipped.fetch_add(1, Ordering::Relaxed);
        tracing::info!(notification_id = %id, reason = why, "sms skipped");
        Ok(DeliveryOutcome::Skipped {
            notification_id: id,
        })
    }

    /// Exponential backoff with "equal jitter": half the delay fixed, half random, so
    /// many failing messages do not retry in lockstep. Never below one second (the
    /// outbox schedules in whole seconds).
    fn backoff(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(20);
        let full = self
            .policy
            .base_backoff
            .saturating_mul(1 << exponent)
            .min(self.policy.max_backoff);
        let half = full / 2;
        let half_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
        let random = self.ids.new_uuid().as_u128();
        let jitter_ms = u64::try_from(random % u128::from(half_ms)).unwrap_or(0);
        (half + Duration::from_millis(jitter_ms)).max(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests;
