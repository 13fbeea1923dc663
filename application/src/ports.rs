//! Ports: what the use cases need from the outside world, as traits. Adapters implement
//! them (`adapters/*`); the use cases never see Redis, HTTP, JWT or Argon2 types.
//!
//! Every fallible method documents its failures. Store adapters translate their driver
//! errors at the boundary: a connection refused, a pool timeout, a dead Redis or a Redis
//! that refuses writes (out of memory, loading, read-only, failing over) becomes
//! [`StoreError::Unavailable`] with its [`Unavailability`] (the HTTP layer answers 503 and
//! the client may retry); anything else becomes [`StoreError::Unexpected`].
//!
//! # Lost replies
//! A store call that timed out **may still happen** (the command stays queued on a shared
//! connection). Every write below says what a caller's retry gets in that case: the same
//! end state and the same answer, never a second effect (see ARCHITECTURE.md, "Failure
//! model").

use async_trait::async_trait;
use std::time::Duration;

use domain::ids::Uuid;
use domain::{
    AccessClaims, ClientAddress, IdempotencyKey, Notification, NotificationId, PasswordHash,
    PasswordInput, PhoneCode, PhoneNumber, RefreshClaims, Session, SessionId, Sms, Timestamp, Todo,
    TodoId, TokenId, User, UserId, Username,
};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// Failure of a store port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot serve now: unreachable, no answer in time, or refusing the command
    /// (out of memory, busy, loading, read-only, failing over). Nothing was changed that
    /// the caller was told about; retrying later may succeed. Adapters build it with
    /// [`StoreError::unavailable`], so [`unavailability`] can tell why.
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: corrupt records, protocol errors, a broken invariant. Not retryable
    /// by the client.
    #[error("store failure")]
    Unexpected(#[source] anyhow::Error),
}

impl StoreError {
    /// [`StoreError::Unavailable`] for `reason`, keeping the driver's error as the source.
    pub fn unavailable(reason: Unavailability, source: impl Into<anyhow::Error>) -> Self {
        StoreError::Unavailable(anyhow::Error::new(Unavailable {
            reason,
            source: source.into(),
        }))
    }
}

/// Why a store could not serve: for metrics, logs and readiness, never for control flow
/// (every kind is answered alike: 503, retry later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unavailability {
    /// Cannot connect, or the connection broke.
    Unreachable,
    /// No answer within the command timeout (the command may still run).
    TimedOut,
    /// The store refuses writes because it is full (Redis `OOM` under `maxmemory` with
    /// `noeviction`).
    OutOfMemory,
    /// The store is busy running a long script (`BUSY`).
    Busy,
    /// The store is loading its data set (`LOADING`).
    Loading,
    /// The node refuses writes: a replica, or a demoted master (`READONLY`, `MASTERDOWN`,
    /// `NOREPLICAS`).
    ReadOnly,
    /// The cluster is reconfiguring (`TRYAGAIN`, `CLUSTERDOWN`, a slot without a node).
    ClusterDown,
}

impl Unavailability {
    /// A stable label: `unreachable`, `timeout`, `oom`, `busy`, `loading`, `readonly`,
    /// `clusterdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unavailability::Unreachable => "unreachable",
            Unavailability::TimedOut => "timeout",
            Unavailability::OutOfMemory => "oom",
            Unavailability::Busy => "busy",
            Unavailability::Loading => "loading",
            Unavailability::ReadOnly => "readonly",
            Unavailability::ClusterDown => "clusterdown",
        }
    }

    /// Whether the store answered but refused to write (it is up, and reads may work).
    pub fn refuses_writes(self) -> bool {
        matches!(
            self,
            Unavailability::OutOfMemory | Unavailability::ReadOnly | Unavailability::Loading
        )
    }
}

/// The cause carried by [`StoreError::Unavailable`].
#[derive(Debug, thiserror::Error)]
#[error("store unavailable ({})", reason.as_str())]
pub struct Unavailable {
    pub reason: Unavailability,
    #[source]
    pub source: anyhow::Error,
}

/// Why the store behind `cause` (the payload of some `Unavailable` error) could not
/// serve; [`Unavailability::Unreachable`] when the adapter did not say.
pub fn unavailability(cause: &anyhow::Error) -> Unavailability {
    cause
        .downcast_ref::<Unavailable>()
        .map_or(Unavailability::Unreachable, |u| u.reason)
}

/// One page of a listing, and where the next one starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    /// `None` on the last page.
    pub next: Option<C>,
}

/// Where a page of todos starts: after the todo with this insertion number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TodoCursor(pub u64);

/// Where a page of sessions starts: after this (creation time, id), the listing's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionCursor {
    pub created_at: Timestamp,
    pub id: SessionId,
}

/// A fixed-window limit: at most `max` events counted within `window` of the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLimit {
    pub max: u32,
    pub window: Duration,
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

/// Users and the username index.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user, claiming its username atomically.
    ///
    /// Idempotent per user id: inserting a user whose id already holds the name (a retry
    /// of the same registration after a lost reply) succeeds again and changes nothing
    /// that matters (the record is written again with the same identity).
    ///
    /// # Errors
    /// [`InsertUserError::UsernameTaken`] when another user holds the (case-folded) name;
    /// [`InsertUserError::Store`] on store failure, in which case the user may or may not
    /// exist: a retry with the same id settles it.
    async fn insert(&self, user: &User) -> Result<(), InsertUserError>;

    /// # Errors
    /// [`StoreError`] on store failure. An unknown name is `Ok(None)`.
    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError>;

    /// # Errors
    /// [`StoreError`] on store failure. An unknown id is `Ok(None)`.
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    #[error("username already taken")]
    UsernameTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What stands between a todo and its insertion, checked in the same atomic step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TodoInsertRules {
    /// Most todos a user may hold.
    pub max_todos: u32,
    /// Most creations per user per window (only accepted creations count).
    pub creations: WindowLimit,
    /// The client's key for this creation, if it sent one.
    pub idempotency: Option<IdempotentWrite>,
}

/// An idempotency key and the request it was first used for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentWrite {
    pub key: IdempotencyKey,
    /// The request in canonical form (equal exactly when the requests mean the same).
    pub fingerprint: String,
    /// How long the key and its first answer are remembered.
    pub ttl: Duration,
}

/// The result of [`TodoRepository::insert`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TodoInsert {
    /// Stored.
    Inserted,
    /// The idempotency key was already used for the same request: nothing was stored,
    /// and this is the todo the first request created, as it was then.
    Replayed(Todo),
    /// The idempotency key was already used for a different request: nothing was stored.
    KeyReused,
    /// The user already holds `max_todos` todos: nothing was stored.
    QuotaExceeded,
    /// The user created `creations.max` todos in the current window: nothing was stored;
    /// the window frees after `retry_after`.
    RateLimited { retry_after: Duration },
}

/// Todos, always addressed through their owner: there is no way to reach a todo without
/// naming the user it belongs to, so ownership is checked by construction.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait TodoRepository: Send + Sync {
    /// Stores `todo` unless `rules` refuse it, in one atomic step: a replayed key answers
    /// with the first result, the quota and the creation rate are checked and the todo,
    /// its place in the listing order and the key are written together.
    ///
    /// A lost reply is safe to retry with the same idempotency key: the retry finds the
    /// key and gets [`TodoInsert::Replayed`] if the first attempt ran.
    ///
    /// # Errors
    /// [`StoreError`] on store failure, in which case the todo may or may not be stored
    /// (see above).
    async fn insert(&self, todo: &Todo, rules: &TodoInsertRules) -> Result<TodoInsert, StoreError>;

    /// One page of the user's todos, oldest first: at most `limit` of them, after
    /// `after` (from the start when `None`). Only the page is ever read.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn list(
        &self,
        user: UserId,
        after: Option<TodoCursor>,
        limit: usize,
    ) -> Result<Page<Todo, TodoCursor>, StoreError>;

    /// `Ok(None)` when no todo with this id belongs to this user (whether it does not
    /// exist or belongs to someone else: the two are indistinguishable by design).
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn get(&self, user: UserId, id: TodoId) -> Result<Option<Todo>, StoreError>;

    /// Replaces a todo of `todo.user_id`. Returns `false` when it no longer exists.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn update(&self, todo: &Todo) -> Result<bool, StoreError>;

    /// Returns `false` when no such todo belonged to the user.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn delete(&self, user: UserId, id: TodoId) -> Result<bool, StoreError>;
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
    /// A lost reply leaves at worst a session nobody holds a token for; it counts against
    /// the cap until it expires or is evicted.
    ///
    /// # Errors
    /// [`StoreError`] on store failure, in which case the session may or may not exist.
    async fn create(&self, session: &Session, max_sessions: u32) -> Result<u64, StoreError>;

    /// The per-request check: is this session of this user alive? One O(1) lookup.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; callers must fail closed.
    async fn is_active(&self, user: UserId, session: SessionId) -> Result<bool, StoreError>;

    /// [`SessionStore::is_active`] and the user's profile read together, in one store
    /// round trip: the whole store work of `GET /me`. The profile is only returned for an
    /// active session.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; callers must fail closed.
    async fn active_user(&self, user: UserId, session: SessionId)
    -> Result<ActiveUser, StoreError>;

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

/// One login attempt, as the throttle counts it: by (username, client) pair and by client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LoginAttempt {
    /// Unique per attempt: names its hold, so that settling (or cancelling) one attempt
    /// never touches another's.
    pub id: Uuid,
    /// The name tried, case-folded; `None` when it is not a valid username at all (such
    /// attempts from one client share one pair counter: none of them can ever succeed).
    pub username: Option<Username>,
    pub client: ClientAddress,
}

/// The limits an attempt is admitted under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Failures of one username from one client.
    pub pair: WindowLimit,
    /// Failures of any username from one client.
    pub client: WindowLimit,
}

/// The answer of a limiter ([`LoginThrottle::admit`], [`RateLimiter::hit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Within the limits; go on.
    Admitted,
    /// A limit is reached: nothing was counted. `retry_after` is how long until the
    /// window that refused it (the later one, if several did) frees, at least one second.
    Refused { retry_after: Duration },
}

/// How an admitted login attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The password was wrong (or the user unknown): the attempt's hold becomes a counted
    /// failure in both windows.
    Failed,
    /// The password was right: the hold is released and the pair's failures are cleared.
    Succeeded,
    /// Nothing was judged (hasher overloaded, store down): the hold is released and
    /// nothing is counted.
    Unjudged,
}

/// How long an admitted login attempt may stay unsettled before its hold lapses by itself:
/// longer than any login takes (two store calls, a queued hash), short enough that holds
/// whose settlement was lost free the pair quickly.
pub const LOGIN_HOLD: Duration = Duration::from_secs(15);

/// Counts failed logins in fixed windows, shared by every replica that uses the same
/// store, so that limits hold for the service, not per process.
///
/// An admitted attempt takes a *hold* before the password is checked
/// ([`LoginThrottle::admit`] checks and holds in one atomic step): failures and holds
/// together are held to the limits, so however many requests race, at most `max` of them
/// per window reach the password hasher. [`LoginThrottle::settle`] turns the hold into a
/// counted failure, or releases it. A hold whose settlement never comes (a lost reply, a
/// crash) lapses after [`LOGIN_HOLD`]: it is never counted as a failure, so a login that
/// got a 503 never counts against the user. Counters expire with their window and holds
/// with their lapse: nothing piles up.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait LoginThrottle: Send + Sync {
    /// Admits the attempt with a hold, unless failures and holds already reach a limit.
    ///
    /// # Errors
    /// [`StoreError`] on store failure: callers must fail closed (refuse the attempt
    /// without checking the password). A hold the store may still take for it (lost
    /// reply) is released by the adapter or lapses after [`LOGIN_HOLD`].
    async fn admit(
        &self,
        attempt: &LoginAttempt,
        limits: &ThrottleLimits,
    ) -> Result<Admission, StoreError>;

    /// Settles an admitted attempt, as `settlement` says. Idempotent per attempt: a hold
    /// is settled once; a repeated settlement changes nothing.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the hold then lapses uncounted.
    async fn settle(
        &self,
        attempt: &LoginAttempt,
        limits: &ThrottleLimits,
        settlement: Settlement,
    ) -> Result<(), StoreError>;
}

/// What a [`RateLimiter`] counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// Registration attempts from one client address.
    Registration(ClientAddress),
}

/// Fixed-window rate limits shared through the store, so every replica sees one count.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one event against `key` unless `limit` is reached in the current window.
    ///
    /// A lost reply may have counted the event: limits err on the side of counting.
    ///
    /// # Errors
    /// [`StoreError`] on store failure: callers must fail closed.
    async fn hit(&self, key: &RateKey, limit: WindowLimit) -> Result<Admission, StoreError>;
}

/// A client's idempotency key for a registration, and what it was first used for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The first request, in canonical form.
    pub fingerprint: String,
    /// The id the first request chose for what it creates.
    pub resource: Uuid,
}

/// Idempotency keys of registrations, which span more than one store slot and so cannot
/// be decided in the same atomic step as the write (todos can: see
/// [`TodoRepository::insert`]). A key is claimed before the write, naming the id the write
/// will use; a retry finds the claim and finishes or replays the same write.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Records `record` under `key` unless the key is already taken, atomically, and
    /// returns the record the key holds now (this one, or the one an earlier request
    /// stored). Kept for `ttl`.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the claim may or may not exist (a retry settles
    /// it).
    async fn claim_registration(
        &self,
        key: &IdempotencyKey,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<IdempotencyRecord, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Well-formed and correctly signed, but past its `exp` (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// Anything else: bad signature, wrong algorithm or type, wrong issuer or audience,
    /// malformed. Deliberately one variant: callers must not branch on why a forgery failed.
    #[error("token invalid")]
    Invalid,
    #[error("token codec failure")]
    Unexpected(#[source] anyhow::Error),
}

/// Issues and verifies tokens. Access and refresh tokens use distinct keys and types, so
/// one kind can never be verified as the other.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait TokenCodec: Send + Sync {
    /// # Errors
    /// [`TokenError::Unexpected`] if signing fails.
    fn issue_access(&self, claims: &AccessClaims) -> Result<String, TokenError>;

    /// # Errors
    /// [`TokenError::Unexpected`] if signing fails.
    fn issue_refresh(&self, claims: &RefreshClaims) -> Result<String, TokenError>;

    /// Checks signature, algorithm, type, issuer, audience and expiry against `now`.
    ///
    /// # Errors
    /// [`TokenError::Expired`] or [`TokenError::Invalid`].
    fn verify_access(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError>;

    /// As [`TokenCodec::verify_access`], for refresh tokens.
    ///
    /// # Errors
    /// [`TokenError::Expired`] or [`TokenError::Invalid`].
    fn verify_refresh(&self, token: &str, now: Timestamp) -> Result<RefreshClaims, TokenError>;
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many hashes already queued; the caller should answer "try again later"
    /// rather than let work pile up without bound.
    #[error("password hasher overloaded")]
    Overloaded,
    #[error("password hashing failed")]
    Unexpected(#[source] anyhow::Error),
}

/// Password hashing (Argon2id in production). Implementations run the work off the async
/// executor and bound how much of it runs at once.
///
/// Capacity is split: [`PasswordHasher::hash`] (choosing a password: registration) may
/// only ever use part of it, so that a flood of registrations can never take the capacity
/// [`PasswordHasher::verify`] (logging in) needs.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// # Errors
    /// [`HashError`] when overloaded (its share is in use and its queue full) or on
    /// failure.
    async fn hash(&self, password: &PasswordInput) -> Result<PasswordHash, HashError>;

    /// Checks `password` against `hash`. With `hash = None` (unknown user) it performs the
    /// same work against a dummy hash and returns `false`, so that response time does not
    /// tell whether a username exists.
    ///
    /// # Errors
    /// [`HashError`] when overloaded or on failure.
    async fn verify(
        &self,
        password: &PasswordInput,
        hash: Option<PasswordHash>,
    ) -> Result<bool, HashError>;
}

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

/// The keyed digest of a phone code (HMAC-SHA256): what the store keeps instead of the
/// code. Without the key, a stolen store or backup tells nothing about a pending code.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CodeDigest(pub [u8; 32]);

impl CodeDigest {
    /// Lower-case hex, for stores that keep text.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The inverse of [`CodeDigest::to_hex`]; `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl std::fmt::Debug for CodeDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeDigest(..)")
    }
}

/// Makes phone codes storable: a keyed hash, the same on every replica.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait CodeHasher: Send + Sync {
    /// The digest of `code` texted to `phone` for `user`. It binds all three: a digest
    /// proves nothing about another user or another number.
    fn digest(&self, user: UserId, phone: &PhoneNumber, code: &PhoneCode) -> CodeDigest;
}

/// A code waiting to be confirmed, as the store keeps it: never the code itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCode {
    pub user_id: UserId,
    /// The number the code was texted to; it proves only this number.
    pub phone: PhoneNumber,
    pub digest: CodeDigest,
    /// After this the code is dead (and the store may forget it).
    pub expires_at: Timestamp,
    /// Wrong codes tried against it before it is dead.
    pub max_attempts: u32,
}

/// What [`PhoneVerifications::confirm`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// The digest matched the pending code of the user's current number: the number is
    /// verified now and the code spent. Also the answer, changing nothing, to the same
    /// digest presented again while that number is still the user's and verified (a retry
    /// of a confirmation whose reply was lost).
    Verified,
    /// The digest did not match; counted. `attempts_left` more may be tried (0: the code
    /// is dead now).
    Wrong { attempts_left: u32 },
    /// No live code for the user's current number: none was asked for, it expired, was
    /// spent, was replaced by a newer one, had too many wrong attempts, or was texted to
    /// a number that is no longer the user's.
    NoCode,
}

/// Phone verification: the user's number, whether it is proven, and their one pending code.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait PhoneVerifications: Send + Sync {
    /// In one atomic step: sets the user's phone to `code.phone`, unverified, and makes
    /// `code` their one pending code, replacing any earlier one (one per user: nothing
    /// piles up). Returns `false`, changing nothing, when the user does not exist.
    ///
    /// # Errors
    /// [`StoreError`] on store failure, in which case nothing changed that the caller was
    /// told about (the step may still have happened; asking again replaces it).
    async fn start(&self, code: &PendingCode) -> Result<bool, StoreError>;

    /// In one atomic step: checks `digest` against the user's pending code at `now` and, on
    /// a match, marks the phone verified and spends the code. A pending code whose number
    /// is no longer the user's verifies nothing.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the check may or may not have been counted, and a
    /// retry with the right code still answers [`CodeCheck::Verified`].
    async fn confirm(
        &self,
        user: UserId,
        digest: &CodeDigest,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError>;
}

/// SMS caps, each a fixed window counted in the store (so every replica shares it): per
/// user and per recipient number, per hour and per day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmsCaps {
    pub user_hourly: u32,
    pub user_daily: u32,
    pub number_hourly: u32,
    pub number_daily: u32,
}

/// Which limit refused an SMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsLimit {
    /// A code was requested too soon after the last one.
    Cooldown,
    /// The user's hourly or daily cap.
    User,
    /// The recipient number's hourly or daily cap, whoever sends to it.
    Number,
}

/// The answer of [`SmsQuota::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsAdmission {
    /// Counted against every window; go on and queue the SMS.
    Admitted,
    /// A window is full and nothing was counted. `retry_after` is how long until the
    /// window that refused frees (the latest, if several did), at least one second.
    Refused {
        limit: SmsLimit,
        retry_after: Duration,
    },
}

/// Counts SMS against the caps, in the store, so that every replica shares the counts.
///
/// An SMS is counted when it is *queued*, in the step that checks the caps, so racing
/// requests cannot overshoot them. A count whose reply was lost stays counted: the caps
/// may be reached one SMS early, never passed.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait SmsQuota: Send + Sync {
    /// Admits one SMS from `user` to `to` and counts it in the user's and the number's
    /// windows, unless a window is full. With `cooldown` (a code request), the user's
    /// previous code request must also be at least that long ago, and this one starts a
    /// new cooldown.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; callers must fail closed (queue nothing).
    async fn admit(
        &self,
        user: UserId,
        to: &PhoneNumber,
        caps: &SmsCaps,
        cooldown: Option<Duration>,
    ) -> Result<SmsAdmission, StoreError>;

    /// Gives back what an admitted SMS counted (its cooldown too, with `cooldown`), when
    /// it was not queued after all.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the SMS then stays counted until its window ends.
    async fn give_back(
        &self,
        user: UserId,
        to: &PhoneNumber,
        cooldown: bool,
    ) -> Result<(), StoreError>;
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

/// The current time.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Fresh unique identifiers (random UUIDs in production).
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait IdGenerator: Send + Sync {
    fn new_uuid(&self) -> Uuid;
}
