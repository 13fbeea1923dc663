//! jwt-todo's use cases, over ports.
//!
//! # Layout
//! - [`ports`]: the traits the use cases need (stores, token codec, hasher, clock, ids),
//!   each documenting its failures; one module per concern (`ports/*.rs`), all re-exported
//!   from `ports`; mockall mocks behind the `mocks` feature.
//! - [`usecases`]: one module per operation, each with its request, response, error enum
//!   and an `execute` method. No use case knows about HTTP; each returns its own error and
//!   the HTTP adapter maps them to statuses in one place.
//! - [`Services`]: every use case, built once from the ports, the [`TokenPolicy`], the
//!   login [`ThrottleLimits`], the per-user and per-client [`Limits`] and the
//!   [`SmsPolicy`], for the inbound adapter to hold.

use std::sync::Arc;
use std::time::Duration;

pub mod ports;
pub mod usecases;

pub use usecases::{Caller, Principal, SmsPolicy};

use ports::{
    Clock, CodeHasher, IdGenerator, IdempotencyStore, LoginThrottle, Notifier, Outbox,
    PasswordHasher, PhoneVerifications, RateLimiter, SessionStore, SmsQuota, ThrottleLimits,
    TodoRepository, TokenCodec, UserRepository, WindowLimit,
};
use usecases::*;

/// The adapters the use cases run on.
#[derive(Clone)]
pub struct Ports {
    pub users: Arc<dyn UserRepository>,
    pub todos: Arc<dyn TodoRepository>,
    pub sessions: Arc<dyn SessionStore>,
    pub tokens: Arc<dyn TokenCodec>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub outbox: Arc<dyn Outbox>,
    pub notifier: Arc<dyn Notifier>,
    pub throttle: Arc<dyn LoginThrottle>,
    pub rate_limiter: Arc<dyn RateLimiter>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub phone_codes: Arc<dyn PhoneVerifications>,
    pub sms_quota: Arc<dyn SmsQuota>,
    pub code_hasher: Arc<dyn CodeHasher>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ports { .. }")
    }
}

/// Token lifetimes and the refresh-token reuse policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenPolicy {
    pub access_ttl: Duration,
    /// Sliding: each refresh issues a refresh token valid this long again ...
    pub refresh_ttl: Duration,
    /// ... but never beyond this long after the login that started the session.
    pub max_session_lifetime: Duration,
    /// Within this long after a rotation, presenting the token it spent again is
    /// answered with the pair already issued (two browser tabs refreshing at once)
    /// instead of being treated as theft. Zero: strict, every replay revokes.
    pub reuse_grace: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            max_session_lifetime: Duration::from_secs(30 * 24 * 3600),
            reuse_grace: Duration::ZERO,
        }
    }
}

impl TokenPolicy {
    /// When a session's refresh token issued at `now` expires: the sliding lifetime,
    /// capped by the absolute one counted from `auth_time`.
    pub fn session_expiry(
        &self,
        now: domain::Timestamp,
        auth_time: domain::Timestamp,
    ) -> domain::Timestamp {
        now.plus(self.refresh_ttl)
            .min(auth_time.plus(self.max_session_lifetime))
    }
}

/// Default login throttling: 5 failures of one username from one client per 15 minutes,
/// and 100 failures of any usernames from one client per 15 minutes.
///
/// Five is enough for a person's typos (and a success clears the count) while an attacker
/// gets 20 guesses an hour at one account from one address; NIST SP 800-63B §5.2.2 allows
/// up to 100 consecutive failures per account. A hundred per client lets an office behind
/// one NAT mistype freely and holds a password sprayer to 100 guesses per 15 minutes per
/// address, whatever the usernames.
impl Default for ThrottleLimits {
    fn default() -> Self {
        const WINDOW: Duration = Duration::from_secs(15 * 60);
        Self {
            pair: WindowLimit {
                max: 5,
                window: WINDOW,
            },
            client: WindowLimit {
                max: 100,
                window: WINDOW,
            },
        }
    }
}

/// What one user or one client may hold or do, so that nobody can degrade the service for
/// everyone else. Every limit is shared by all replicas through the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Sessions a user may hold; a login beyond it ends the user's oldest session.
    pub max_sessions_per_user: u32,
    /// Todos a user may hold; creating one more is refused until one is deleted.
    pub max_todos_per_user: u32,
    /// Todo creations per user per window.
    pub todo_creations: WindowLimit,
    /// Registration attempts per client address per window.
    pub registrations_per_client: WindowLimit,
    /// How long an `Idempotency-Key` and its first answer are remembered.
    pub idempotency_ttl: Duration,
}

/// Default limits: far above what a person does, far below what hurts the service.
///
/// 50 sessions is a device fleet; 10,000 todos and 60 creations a minute are more than
/// anyone types, and hold one account's data to a few MiB; 20 registrations an hour from
/// one address lets a classroom behind one NAT sign up while a script gets nowhere; keys
/// live 24 hours, as the idempotency-key draft suggests.
impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions_per_user: 50,
            max_todos_per_user: 10_000,
            todo_creations: WindowLimit {
                max: 60,
                window: Duration::from_secs(60),
            },
            registrations_per_client: WindowLimit {
                max: 20,
                window: Duration::from_secs(3600),
            },
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Page sizes of every listing: `limit` defaults to this ...
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// ... and may be at most this.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Every use case, ready to execute.
#[derive(Debug)]
pub struct Services {
    pub register: Register,
    pub login: Login,
    pub refresh: Refresh,
    pub logout: Logout,
    pub authenticate: Authenticate,
    pub me: Me,
    pub create_todo: CreateTodo,
    pub list_todos: ListTodos,
    pub get_todo: GetTodo,
    pub update_todo: UpdateTodo,
    pub delete_todo: DeleteTodo,
    pub list_sessions: ListSessions,
    pub revoke_session: RevokeSession,
    pub readiness: Readiness,
    pub set_phone: SetPhone,
    pub verify_phone: VerifyPhone,
    /// What the SMS gate decided, for the metrics.
    pub sms_stats: Arc<SmsStats>,
}

impl Services {
    pub fn new(
        ports: &Ports,
        policy: TokenPolicy,
        throttle: ThrottleLimits,
        limits: Limits,
        sms: SmsPolicy,
    ) -> Self {
        let sms_stats = Arc::new(SmsStats::default());
        let sms = SmsGate::new(ports, sms, Arc::clone(&sms_stats));
        Self {
            register: Register::new(ports, limits, Arc::clone(&sms.policy)),
            login: Login::new(ports, policy, throttle, limits),
            refresh: Refresh::new(ports, policy),
            logout: Logout::new(ports, policy),
            authenticate: Authenticate::new(ports),
            me: Me::new(ports),
            create_todo: CreateTodo::new(ports, limits, sms.clone()),
            list_todos: ListTodos::new(ports),
            get_todo: GetTodo::new(ports),
            update_todo: UpdateTodo::new(ports),
            delete_todo: DeleteTodo::new(ports),
            list_sessions: ListSessions::new(ports),
            revoke_session: RevokeSession::new(ports),
            readiness: Readiness::new(ports),
            set_phone: SetPhone::new(ports, sms),
            verify_phone: VerifyPhone::new(ports),
            sms_stats,
        }
    }
}
