//! Sessions: the token metadata that makes revocation immediate, and the atomic steps of
//! rotation and of ending sessions on a refresh token's word.

use async_trait::async_trait;
use std::time::Duration;

use domain::{Session, SessionId, Timestamp, TokenId, User, UserId};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

use super::page::Page;
use super::store::StoreError;

/// Where a page of sessions starts: after this (creation time, id), the listing's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionCursor {
    pub created_at: Timestamp,
    pub id: SessionId,
}

/// What [`SessionStore::active_user`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveUser {
    /// The session is alive and so is its user.
    Active(User),
    /// The session was logged out, revoked or has expired.
    Revoked,
    /// The session is alive but its user is gone (deleted out of band).
    UserGone,
}

/// What a refresh asks of the session store, applied as one atomic step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub user_id: UserId,
    pub session_id: SessionId,
    /// `jti` of the refresh token the client presented.
    pub presented: TokenId,
    /// `jti` of the refresh token about to be issued.
    pub next: TokenId,
    pub now: Timestamp,
    /// Expiry of the new refresh token, and so of the session.
    pub expires_at: Timestamp,
    /// Reuse grace window: a replay of the token spent by the last rotation, no longer
    /// than this after it, is answered with [`RotationOutcome::Replayed`]. Zero: strict.
    pub grace: Duration,
    /// The `refreshed` event for the user's trail: appended by the rotation itself (only
    /// when it answers [`RotationOutcome::Rotated`], never by a replay or a retry), in the
    /// same step where the store can, so a refresh costs no second round trip for it.
    pub trail: Option<super::TrailEntry>,
}

/// The result of [`SessionStore::rotate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotationOutcome {
    /// The presented token was the current one: it is spent now and `next` is current.
    Rotated(Session),
    /// The presented token is the one the last rotation spent, and that rotation is
    /// within the grace window: nothing changed; the session (whose current token is the
    /// one already issued for the replayed one) is returned so the same pair can be
    /// given again.
    Replayed(Session),
    /// The presented token belonged to the session but was already spent: a replay.
    /// The session has been deleted, so every token of it is dead.
    ReuseDetected,
    /// No live session with this id for this user (expired, logged out, revoked).
    NotFound,
}

/// Which of a user's sessions an ending reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SessionScope {
    /// The presenting session only.
    #[default]
    This,
    /// Every session of the user but the presenting one.
    Others,
    /// Every session of the user.
    All,
}

/// A refresh token presented to end sessions (`POST /token/revoke`), as the store checks
/// it: it speaks for its session only while it is the session's current token (or the one
/// the last rotation spent, within the reuse grace window, or whose rotation's answer was
/// lost); any other token of the session is a replay, exactly as in [`Rotation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedRefresh {
    pub user_id: UserId,
    pub session_id: SessionId,
    /// `jti` of the presented refresh token.
    pub presented: TokenId,
    pub now: Timestamp,
    /// The reuse grace window ([`Rotation::grace`]).
    pub grace: Duration,
}

/// The result of [`SessionStore::end_with_refresh`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndOutcome {
    /// The token spoke for its session; this many sessions were ended.
    Ended(u64),
    /// The token was a spent one: its session has been deleted as stolen, and nothing
    /// else was ended.
    ReuseDetected,
    /// No live session with this id for this user.
    NotFound,
}

/// Sessions, the token metadata that makes revocation immediate.
///
/// Entries expire by themselves at `Session::expires_at` (TTL in Redis): nothing outlives
/// the refresh token that keeps it alive. Expired ids are pruned from the user's index
/// whenever it is written.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session. A user holds at most `max_sessions`: when the new one would
    /// exceed that, the user's oldest sessions (those that have gone longest without a
    /// refresh, i.e. that expire first) are deleted first. Returns how many were.
    ///
    /// `None`, storing nothing, when the user does not exist (any more): a login in
    /// flight while its account is deleted leaves no session behind.
    ///
    /// A lost reply leaves at worst a session nobody holds a token for; it counts against
    /// the cap until it expires or is evicted.
    ///
    /// # Errors
    /// [`StoreError`] on store failure, in which case the session may or may not exist.
    async fn create(&self, session: &Session, max_sessions: u32)
    -> Result<Option<u64>, StoreError>;

    /// The per-request check: is this session of this user alive? One O(1) lookup.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; callers must fail closed.
    async fn is_active(&self, user: UserId, session: SessionId) -> Result<bool, StoreError>;

    /// [`SessionStore::is_active`] and the user's profile read together, in one store
    /// round trip: the whole store work of `GET /me`. The profile is only returned for an
    /// active session.
    ///
    /// A store may answer this and [`SessionStore::is_active`] from a per-replica cache,
    /// provided a write acknowledged by any replica is seen within a bound it documents
    /// (the Redis store's session cache: `SESSION_CACHE_STALENESS`) and this replica's own
    /// writes at once.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; callers must fail closed.
    async fn active_user(&self, user: UserId, session: SessionId)
    -> Result<ActiveUser, StoreError>;

    /// [`SessionStore::active_user`] asked of the store itself, never of a cache: for an
    /// answer another party acts on (token introspection), which must reflect every write
    /// acknowledged before it, on any replica. Stores without a cache need not override it.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; callers must fail closed.
    async fn active_user_now(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<ActiveUser, StoreError> {
        self.active_user(user, session).await
    }

    /// As [`SessionStore::active_user`], for a refresh token: `Active` only if the
    /// session is alive and `presented` is the refresh token it accepts next (a spent
    /// one, even within the reuse grace window, is `Revoked`). Reads only; spends nothing.
    /// For token introspection.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; callers must fail closed.
    async fn refresh_holder(
        &self,
        user: UserId,
        session: SessionId,
        presented: TokenId,
    ) -> Result<ActiveUser, StoreError>;

    /// Spends the presented refresh token and makes `next` current, or detects a replay
    /// and deletes the session, atomically: of any number of concurrent rotations with
    /// the same token, at most one returns `Rotated` (the others, within the grace
    /// window, `Replayed`; else `ReuseDetected`).
    ///
    /// A lost reply is not a theft: when a rotation's reply is lost (the call fails after
    /// the command may have run), the store remembers that the presented token's answer
    /// never reached anyone, and the next rotation presenting it again gets `Replayed`
    /// (the successor already made) instead of `ReuseDetected`, once per lost answer.
    ///
    /// # Errors
    /// [`StoreError`] on store failure, in which case the rotation may have happened; see
    /// above for what a retry gets.
    async fn rotate(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError>;

    /// Ends sessions on the word of a refresh token, atomically with checking it: the
    /// token's session alone (`This`), the user's other sessions (`Others`) or all of them
    /// (`All`). A token that no longer speaks for its session (see [`PresentedRefresh`])
    /// is reuse, wherever it is presented: its session is deleted and nothing else ends.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; a retry reaches the same end state.
    async fn end_with_refresh(
        &self,
        presented: &PresentedRefresh,
        scope: SessionScope,
    ) -> Result<EndOutcome, StoreError>;

    /// Deletes one session; `false` when it was not there.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn revoke(&self, user: UserId, session: SessionId) -> Result<bool, StoreError>;

    /// Deletes all the user's sessions except `keep`; returns how many were deleted.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn revoke_all(&self, user: UserId, keep: Option<SessionId>) -> Result<u64, StoreError>;

    /// One page of the user's live sessions, oldest first (by creation, then id): at most
    /// `limit`, after `after` (from the start when `None`).
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn list(
        &self,
        user: UserId,
        after: Option<SessionCursor>,
        limit: usize,
    ) -> Result<Page<Session, SessionCursor>, StoreError>;

    /// Can the store serve right now, reads and writes? Cheap; for readiness probes. A
    /// store that answers but refuses writes (full, read-only) is not ready.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it cannot.
    async fn ping(&self) -> Result<(), StoreError>;
}
