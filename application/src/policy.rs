//! The rules the use cases apply, set by the operator: token lifetimes, and what one
//! user or one client may hold or do.

use std::time::Duration;

use crate::ports::WindowLimit;

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
    /// Password-reset requests and confirmations per client address per window.
    pub password_resets_per_client: WindowLimit,
    /// Password-reset codes texted per account per window, whoever asks.
    pub password_reset_codes_per_user: WindowLimit,
    /// Second-factor codes tried per account per window (logins, confirmations,
    /// disabling), whoever tries them.
    pub mfa_codes_per_user: WindowLimit,
    /// How much of each account's audit trail is kept.
    pub audit: crate::ports::AuditRetention,
    /// How long an `Idempotency-Key` and its first answer are remembered.
    pub idempotency_ttl: Duration,
}

/// Default limits: far above what a person does, far below what hurts the service.
///
/// 50 sessions is a device fleet; 10,000 todos and 60 creations a minute are more than
/// anyone types, and hold one account's data to a few MiB; 20 registrations an hour from
/// one address lets a classroom behind one NAT sign up while a script gets nowhere; 10
/// password-reset requests or confirmations an hour from one address are more than a
/// person forgetting a password needs, and each confirmation costs a hash; 5 reset codes a
/// day per account are plenty for its owner, and hold anyone asking for them in the
/// owner's name to a few of the account's SMS; 5 second-factor codes per 15 minutes per
/// account hold someone who has the password to 480 guesses a day, each of which has 3
/// chances in a million (the steps beside the current one count); an audit trail keeps 90 days and at most
/// 1,000 events per account, of which failed and throttled logins (anyone's to cause) at
/// most 20 an hour, so flushing an owner's history takes days, not a script's minute; keys
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
            password_resets_per_client: WindowLimit {
                max: 10,
                window: Duration::from_secs(3600),
            },
            password_reset_codes_per_user: WindowLimit {
                max: 5,
                window: Duration::from_secs(24 * 3600),
            },
            mfa_codes_per_user: WindowLimit {
                max: 5,
                window: Duration::from_secs(15 * 60),
            },
            audit: crate::ports::AuditRetention {
                max_age: Duration::from_secs(90 * 24 * 3600),
                max_events: 1000,
                noise: WindowLimit {
                    max: 20,
                    window: Duration::from_secs(3600),
                },
            },
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Page sizes of every listing: `limit` defaults to this ...
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// ... and may be at most this.
pub const MAX_PAGE_SIZE: u32 = 1000;
