//! The audit trail of each account: [`AuditLog`].

use async_trait::async_trait;
use std::time::Duration;

use domain::{AuditEvent, Timestamp, UserId};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

use super::page::Page;
use super::store::StoreError;
use super::throttle::WindowLimit;

/// How much of a trail is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditRetention {
    /// Events older than this are gone.
    pub max_age: Duration,
    /// The most events kept per account; the oldest go first.
    pub max_events: u32,
    /// Noise events ([`domain::AuditKind::is_noise`]) kept per account per window; past
    /// it they are only logged and counted.
    pub noise: WindowLimit,
}

/// An event for a user's trail that another store step appends in the same step (see
/// [`super::Rotation::trail`]), with the retention it is kept under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailEntry {
    pub event: domain::AuditEvent,
    pub retention: AuditRetention,
}

/// Where a page of a trail starts: before this entry (store-specific, opaque).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCursor(pub String);

/// Each account's trail of security events, newest last, bounded in age and count.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends `event` to the user's trail and drops what `retention` no longer keeps.
    /// A noise event is kept only while the account's noise budget has room: `false`
    /// (nothing stored) past it.
    ///
    /// A lost reply may have stored it: a retry may store it twice (an audit trail errs
    /// on the side of saying more).
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn append(
        &self,
        user: UserId,
        event: &AuditEvent,
        retention: AuditRetention,
    ) -> Result<bool, StoreError>;

    /// One page of the user's trail, newest first: at most `limit` events before `before`
    /// (from the newest when `None`), none older than `max_age` at `now`.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn events(
        &self,
        user: UserId,
        before: Option<AuditCursor>,
        limit: usize,
        max_age: Duration,
        now: Timestamp,
    ) -> Result<Page<AuditEvent, AuditCursor>, StoreError>;
}
