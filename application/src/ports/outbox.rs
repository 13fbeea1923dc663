//! Notifications: the outbox that keeps them until delivered, and the notifier that
//! sends them.

use async_trait::async_trait;
use std::time::Duration;

use domain::{Notification, NotificationId, Sms, Timestamp};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

use super::store::StoreError;

/// A notification that will not be delivered, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub notification: Notification,
    /// The last error, as the notifier reported it.
    pub error: String,
    pub failed_at: Timestamp,
}

/// The outbox: notifications recorded durably with the data they announce and handed to
/// delivery workers, at least once.
///
/// Claiming leases a message: if the worker that claimed it dies before completing,
/// retrying or dead-lettering it, the lease runs out and the message is claimed again.
/// That is what makes a restart resend what was pending.
///
/// Claims are fair between users: round robin over the users with messages due, so one
/// user's thousand queued messages delay another user's message by at most about one
/// message per user ahead of it, never by the thousand.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait Outbox: Send + Sync {
    /// # Errors
    /// [`StoreError`] on store failure, in which case nothing was recorded.
    async fn enqueue(&self, notification: &Notification) -> Result<(), StoreError>;

    /// The next notification due at `now`, leased for `lease`; `None` if none is due.
    /// Round robin over users; among one user's messages, oldest first. Of concurrent
    /// claims, each message goes to one claimer.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn claim(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<Notification>, StoreError>;

    /// Delivered: forget the message, keep the provider's receipt (e.g. Vonage's `message_uuid`).
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the lease then runs out and delivery is retried.
    async fn complete(&self, id: NotificationId, receipt: &str) -> Result<(), StoreError>;

    /// Stores the notification (with its updated attempt count) to be claimed again at `due_at`.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn retry(&self, notification: &Notification, due_at: Timestamp)
    -> Result<(), StoreError>;

    /// Gives up on a notification, recording why.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn dead_letter(&self, dead: &DeadLetter) -> Result<(), StoreError>;

    /// Notifications given up on, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;

    /// Forgets dead letters that failed before `failed_before`, then the oldest beyond
    /// `keep_at_most`; returns how many went. A store may do a bounded amount of work per
    /// call (the worker calls it again).
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn trim_dead_letters(
        &self,
        failed_before: Timestamp,
        keep_at_most: usize,
    ) -> Result<u64, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Worth trying again later: rate limited (429), provider error (5xx), timeout,
    /// connection failure. `retry_after` is the provider's hint, if it gave one.
    #[error("temporary delivery failure: {reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Will never succeed as it is (bad credentials, invalid number, ...): do not retry.
    #[error("permanent delivery failure: {reason}")]
    Permanent { reason: String },
}

/// Sends text messages (the Vonage Messages API in production).
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Returns the provider's id for the accepted message.
    ///
    /// # Errors
    /// [`NotifyError`], telling whether a retry can help.
    async fn send(&self, sms: &Sms) -> Result<String, NotifyError>;
}
