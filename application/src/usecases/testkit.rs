//! Shared fixtures for the use-case unit tests: mocks of every port, with a fixed clock
//! and deterministic ids unless a test says otherwise.
//!
//! A port mock with no expectation panics when called, so a test that configures only the
//! ports a use case should touch also proves that it touches nothing else. mockall
//! evaluates expectations in FIFO order, so to change the clock or the ids a test
//! replaces the mock field rather than adding an expectation after the default one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::ids::Uuid;
use domain::{
    PasswordHash, Session, SessionId, Timestamp, Todo, TodoId, TodoTitle, TokenId, User, UserId,
    Username,
};

use super::shared::Principal;
use crate::ports::{
    MockAccountStore, MockAuditLog, MockClock, MockCodeHasher, MockIdGenerator,
    MockIdempotencyStore, MockLoginThrottle, MockNotifier, MockOutbox, MockPasswordHasher,
    MockPasswordResets, MockPhoneVerifications, MockRateLimiter, MockSecondFactors,
    MockSessionStore, MockSmsQuota, MockTodoRepository, MockTokenCodec, MockTotpEngine,
    MockUserRepository, StoreError,
};
use crate::{policy::TokenPolicy, ports::Ports};

/// What the fixed clock says.
pub(crate) const NOW: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

/// Short lifetimes that are easy to tell apart in assertions.
pub(crate) const ACCESS_TTL: Duration = Duration::from_secs(300);
pub(crate) const REFRESH_TTL: Duration = Duration::from_secs(86_400);

pub(crate) fn policy() -> TokenPolicy {
    TokenPolicy {
        access_ttl: ACCESS_TTL,
        refresh_ttl: REFRESH_TTL,
        ..TokenPolicy::default()
    }
}

/// When the sample session's login happened.
pub(crate) const AUTH_TIME: Timestamp = Timestamp::from_unix_seconds(1_699_000_000);

/// The `n`th id the sequential generator hands out (the first is `seq(1)`).
pub(crate) fn seq(n: u64) -> Uuid {
    Uuid::from_u128(u128::from(n))
}

/// The sample user's fixed ids live far away from the sequential ones.
pub(crate) const USER_ID: UserId = UserId::from_uuid(Uuid::from_u128(0xA11CE));
pub(crate) const SESSION_ID: SessionId = SessionId::from_uuid(Uuid::from_u128(0x5E55_1011));
pub(crate) const OTHER_SESSION_ID: SessionId = SessionId::from_uuid(Uuid::from_u128(0x5E55_1012));
pub(crate) const REFRESH_JTI: TokenId = TokenId::from_uuid(Uuid::from_u128(0x0071_7100));
pub(crate) const TODO_ID: TodoId = TodoId::from_uuid(Uuid::from_u128(0x7000));

pub(crate) const PASSWORD: &str = "correct horse battery staple";
pub(crate) const PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$fake$fake";

/// The caller every protected use case is tested with.
pub(crate) fn principal() -> Principal {
    Principal {
        user_id: USER_ID,
        session_id: SESSION_ID,
    }
}

pub(crate) fn user() -> User {
    User {
        id: USER_ID,
        username: Username::parse("alice").expect("valid username"),
        password_hash: PasswordHash::new(PASSWORD_HASH),
        phone: None,
        phone_verified: false,
        password_changed_at: None,
        created_at: Timestamp::from_unix_seconds(1_600_000_000),
    }
}

pub(crate) fn session(id: SessionId) -> Session {
    let created = Timestamp::from_unix_seconds(1_699_000_000);
    Session {
        id,
        user_id: USER_ID,
        refresh_jti: REFRESH_JTI,
        previous_jti: None,
        created_at: created,
        refreshed_at: created,
        expires_at: NOW.plus(REFRESH_TTL),
        user_agent: Some("curl/8".into()),
        amr: domain::AuthMethods::Password,
    }
}

pub(crate) fn todo(title: &str, completed: bool) -> Todo {
    let created = Timestamp::from_unix_seconds(1_650_000_000);
    Todo {
        id: TODO_ID,
        user_id: USER_ID,
        title: TodoTitle::parse(title).expect("valid title"),
        completed,
        created_at: created,
        updated_at: created,
    }
}

pub(crate) fn unavailable() -> StoreError {
    StoreError::Unavailable(anyhow::anyhow!("down"))
}

pub(crate) fn unexpected() -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("corrupt"))
}

/// One mock per port. Built with a fixed clock ([`NOW`]) and sequential ids
/// ([`seq`]`(1)`, `seq(2)`, ...); every other port has no expectations yet.
pub(crate) struct Mocks {
    pub users: MockUserRepository,
    pub todos: MockTodoRepository,
    pub sessions: MockSessionStore,
    pub accounts: MockAccountStore,
    pub resets: MockPasswordResets,
    /// Records whatever it is given (replace it to check what).
    pub audit: MockAuditLog,
    pub tokens: MockTokenCodec,
    pub hasher: MockPasswordHasher,
    pub clock: MockClock,
    pub ids: MockIdGenerator,
    pub outbox: MockOutbox,
    pub notifier: MockNotifier,
    pub throttle: MockLoginThrottle,
    pub rate_limiter: MockRateLimiter,
    pub idempotency: MockIdempotencyStore,
    pub phone_codes: MockPhoneVerifications,
    pub sms_quota: MockSmsQuota,
    pub code_hasher: MockCodeHasher,
    /// No user has a second factor (replace it to give one).
    pub second_factors: MockSecondFactors,
    pub totp: MockTotpEngine,
}

impl Mocks {
    pub fn new() -> Self {
        Self {
            users: MockUserRepository::new(),
            todos: MockTodoRepository::new(),
            sessions: MockSessionStore::new(),
            accounts: MockAccountStore::new(),
            resets: MockPasswordResets::new(),
            audit: recording_audit(),
            tokens: MockTokenCodec::new(),
            hasher: MockPasswordHasher::new(),
            clock: fixed_clock(NOW),
            ids: sequential_ids(),
            outbox: MockOutbox::new(),
            notifier: MockNotifier::new(),
            throttle: MockLoginThrottle::new(),
            rate_limiter: MockRateLimiter::new(),
            idempotency: MockIdempotencyStore::new(),
            phone_codes: MockPhoneVerifications::new(),
            sms_quota: MockSmsQuota::new(),
            code_hasher: MockCodeHasher::new(),
            second_factors: no_second_factors(),
            totp: MockTotpEngine::new(),
        }
    }

    pub fn into_ports(self) -> Ports {
        Ports {
            users: Arc::new(self.users),
            todos: Arc::new(self.todos),
            sessions: Arc::new(self.sessions),
            accounts: Arc::new(self.accounts),
            resets: Arc::new(self.resets),
            audit: Arc::new(self.audit),
            tokens: Arc::new(self.tokens),
            hasher: Arc::new(self.hasher),
            clock: Arc::new(self.clock),
            ids: Arc::new(self.ids),
            outbox: Arc::new(self.outbox),
            notifier: Arc::new(self.notifier),
            throttle: Arc::new(self.throttle),
            rate_limiter: Arc::new(self.rate_limiter),
            idempotency: Arc::new(self.idempotency),
            phone_codes: Arc::new(self.phone_codes),
            sms_quota: Arc::new(self.sms_quota),
            code_hasher: Arc::new(self.code_hasher),
            second_factors: Arc::new(self.second_factors),
            totp: Arc::new(self.totp),
        }
    }
}

/// Second factors where no user has one.
pub(crate) fn no_second_factors() -> MockSecondFactors {
    let mut factors = MockSecondFactors::new();
    factors.expect_totp().returning(|_| Ok(None));
    factors
}

/// The audit use cases record into in tests: the default retention, counters of its own,
/// over `ports.audit` (by default a log that takes every event).
pub(crate) fn audit(ports: &Ports) -> super::Audit {
    super::Audit::new(ports, crate::Limits::default().audit, Arc::default())
}

/// As [`audit`], with the counters of what it recorded, for the test to read.
pub(crate) fn counted_audit(ports: &Ports) -> (super::Audit, Arc<super::AuditStats>) {
    let stats = Arc::new(super::AuditStats::default());
    let audit = super::Audit::new(ports, crate::Limits::default().audit, Arc::clone(&stats));
    (audit, stats)
}

/// The kinds [`counted_audit`] recorded, in [`domain::AuditKind::ALL`]'s order.
pub(crate) fn recorded_kinds(stats: &super::AuditStats) -> Vec<domain::AuditKind> {
    domain::AuditKind::ALL
        .into_iter()
        .filter(|kind| stats.recorded(*kind) > 0)
        .collect()
}

/// An audit log that takes every event.
pub(crate) fn recording_audit() -> MockAuditLog {
    let mut audit = MockAuditLog::new();
    audit.expect_append().returning(|_, _, _| Ok(true));
    audit
}

pub(crate) fn fixed_clock(now: Timestamp) -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(now);
    clock
}

/// Hands out `seq(1)`, `seq(2)`, ... in call order.
pub(crate) fn sequential_ids() -> MockIdGenerator {
    let next = AtomicU64::new(1);
    let mut ids = MockIdGenerator::new();
    ids.expect_new_uuid()
        .returning(move || seq(next.fetch_add(1, Ordering::SeqCst)));
    ids
}

/// An id generator that must not be called.
pub(crate) fn no_ids() -> MockIdGenerator {
    let mut ids = MockIdGenerator::new();
    ids.expect_new_uuid().never();
    ids
}

/// A slot a mock's `returning` closure can record its argument into, for assertions
/// on the whole value afterwards.
#[derive(Debug)]
pub(crate) struct Captured<T>(Arc<Mutex<Option<T>>>);

impl<T> Clone for Captured<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: Clone> Captured<T> {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(None)))
    }

    pub fn set(&self, value: &T) {
        *self.0.lock().expect("capture lock") = Some(value.clone());
    }

    /// The recorded value; panics if the mock was never called.
    pub fn get(&self) -> T {
        self.0
            .lock()
            .expect("capture lock")
            .clone()
            .expect("the mock recorded no value")
    }
}
