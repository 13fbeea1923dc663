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
//!
//! # Layout
//! One module per concern, each re-exported here, so every port is named
//! `application::ports::X` whatever module holds it:
//! - `store`: [`StoreError`] and [`Unavailability`], how every store port fails;
//! - `users`, `todos`, `sessions`: the stores of the data ([`UserRepository`],
//!   [`TodoRepository`], [`SessionStore`]), with the cursors of their listings;
//! - `accounts`: steps on a whole account, atomic in the store ([`AccountStore`]: a new
//!   password with its sessions ended, deletion; [`PasswordResets`]: reset codes);
//! - `audit`: each account's trail of security events ([`AuditLog`]);
//! - `throttle`: limits counted in the store ([`WindowLimit`], [`LoginThrottle`],
//!   [`RateLimiter`]);
//! - `idempotency`: idempotency keys of todos ([`IdempotentWrite`]) and registrations
//!   ([`IdempotencyStore`]);
//! - `tokens`, `passwords`: [`TokenCodec`] and [`PasswordHasher`];
//! - `outbox`: notifications kept until delivered ([`Outbox`]) and sent ([`Notifier`]);
//! - `phone`: phone verification ([`PhoneVerifications`], [`CodeHasher`]) and the SMS caps
//!   ([`SmsQuota`]);
//! - `mfa`: the second factor: TOTP arithmetic ([`TotpEngine`]) and what the store keeps of
//!   factors, recovery codes and login challenges ([`SecondFactors`]);
//! - `system`: [`Clock`] and [`IdGenerator`];
//! - here: [`Page`], the page of every listing.
//!
//! Mockall mocks of every port (`MockUserRepository`, ...) come with the `mocks` feature.

mod accounts;
mod audit;
mod idempotency;
mod mfa;
mod outbox;
mod page;
mod passwords;
mod phone;
mod sessions;
mod store;
mod system;
mod throttle;
mod todos;
mod tokens;
mod users;

pub use accounts::*;
pub use audit::*;
pub use idempotency::*;
pub use mfa::*;
pub use outbox::*;
pub use page::*;
pub use passwords::*;
pub use phone::*;
pub use sessions::*;
pub use store::*;
pub use system::*;
pub use throttle::*;
pub use todos::*;
pub use tokens::*;
pub use users::*;

use std::sync::Arc;

/// The adapters the use cases run on.
#[derive(Clone)]
pub struct Ports {
    pub users: Arc<dyn UserRepository>,
    pub todos: Arc<dyn TodoRepository>,
    pub sessions: Arc<dyn SessionStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub resets: Arc<dyn PasswordResets>,
    pub audit: Arc<dyn AuditLog>,
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
    pub second_factors: Arc<dyn SecondFactors>,
    pub totp: Arc<dyn TotpEngine>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ports { .. }")
    }
}
