//! jwt-todo's use cases, over ports.
//!
//! # Layout
//! - [`ports`]: the traits the use cases need (stores, token codec, hasher, clock, ids),
//!   each documenting its failures; mockall mocks behind the `mocks` feature.
//! - [`usecases`]: one module per operation, each with its request, response, error enum
//!   and an `execute` method. No use case knows about HTTP; each returns its own error and
//!   the HTTP adapter maps them to statuses in one place.
//! - [`Services`]: every use case, built once from the ports, the [`TokenPolicy`], the
//!   login [`ThrottleLimits`](ports::ThrottleLimits) and the [`SmsPolicy`], for the inbound
//!   adapter to hold.

use std::sync::Arc;
use std::time::Duration;

pub mod ports;
pub mod usecases;

pub use usecases::{Caller, Principal, SmsPolicy};

use ports::{
    Clock, CodeHasher, IdGenerator, LoginThrottle, Notifier, Outbox, PasswordHasher,
    PhoneVerifications, SessionStore, SmsQuota, ThrottleLimits, TodoRepository, TokenCodec,
    UserRepository, WindowLimit,
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
        sms: SmsPolicy,
    ) -> Self {
        let sms_stats = Arc::new(SmsStats::default());
        let sms = SmsGate::new(ports, sms, Arc::clone(&sms_stats));
        Self {
            register: Register::new(ports, Arc::clone(&sms.policy)),
            login: Login::new(ports, policy, throttle),
            refresh: Refresh::new(ports, policy),
            logout: Logout::new(ports),
            authenticate: Authenticate::new(ports),
            me: Me::new(ports),
            create_todo: CreateTodo::new(ports, sms.clone()),
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
