//! Limits counted in the store so every replica shares them: login throttling and rate
//! limits, in fixed windows.

use async_trait::async_trait;
use std::time::Duration;

use domain::ids::Uuid;
use domain::{ClientAddress, Username};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

use super::store::StoreError;

/// A fixed-window limit: at most `max` events counted within `window` of the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLimit {
    pub max: u32,
    pub window: Duration,
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
    /// Password-reset requests and confirmations from one client address.
    PasswordReset(ClientAddress),
    /// Password-reset codes texted to one account, whoever asked.
    ResetCodes(domain::UserId),
    /// Second-factor codes tried for one account (logins, confirmations, disabling),
    /// whoever tried them.
    MfaCodes(domain::UserId),
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

    /// Takes back one event [`RateLimiter::hit`] counted against `key` in its current
    /// window, never below zero: for limits on failures, whose attempts are counted
    /// first (so that a burst of them cannot all pass before any is counted) and forgiven
    /// once one turns out to have succeeded.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the event then stays counted (the limit errs on
    /// the side of counting).
    async fn forgive(&self, key: &RateKey) -> Result<(), StoreError>;
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
