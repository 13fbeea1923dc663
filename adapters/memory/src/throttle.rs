//! [`LoginThrottle`] and [`RateLimiter`] in process, under a lock of their own so that a
//! flood of refused logins never contends with the per-request session checks.

use std::collections::HashMap;
use std::sync::{MutexGuard, PoisonError};
use std::time::Duration;

use application::ports::{
    Admission, LOGIN_HOLD, LoginAttempt, LoginThrottle, RateKey, RateLimiter, Settlement,
    StoreError, ThrottleLimits, WindowLimit,
};
use async_trait::async_trait;
use domain::ids::Uuid;
use domain::{ClientAddress, Timestamp, Username};

use crate::{Counter, MemoryStore};

/// What a limiter counter counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum CounterKey {
    /// Failed logins of one name from one client.
    Pair(Option<Username>, ClientAddress),
    /// Failed logins from one client.
    Client(ClientAddress),
    /// A [`RateLimiter`] key.
    Rate(RateKey),
}

/// A login counter: the failures of its window, and the holds of admitted attempts not
/// settled yet (attempt id, when the hold lapses).
#[derive(Clone, Debug, Default)]
struct LoginCounter {
    failures: Option<Counter>,
    holds: Vec<(Uuid, Timestamp)>,
}

impl LoginCounter {
    /// Drops what has ended by `now`.
    fn prune(&mut self, now: Timestamp) {
        self.failures = Counter::live(self.failures.as_ref(), now);
        self.holds.retain(|(_, lapses)| !lapses.has_passed(now));
    }

    fn is_empty(&self) -> bool {
        self.failures.is_none() && self.holds.is_empty()
    }

    /// Failures and holds: what the limit is checked against.
    fn used(&self) -> u32 {
        let holds = u32::try_from(self.holds.len()).unwrap_or(u32::MAX);
        self.failures.map_or(0, |f| f.count).saturating_add(holds)
    }

    /// How long until one more attempt fits under `limit`: the window's end when the
    /// failures alone fill it, else the first hold's lapse.
    fn wait(&self, limit: WindowLimit, now: Timestamp) -> Duration {
        let until = match self.failures {
            Some(f) if f.count >= limit.max => f.resets_at,
            _ => self
                .holds
                .iter()
                .map(|(_, lapses)| *lapses)
                .min()
                .unwrap_or(now),
        };
        until.remaining_after(now).max(Duration::from_secs(1))
    }
}

/// The counters of [`LoginThrottle`] and [`RateLimiter`].
#[derive(Default)]
pub(crate) struct Limiters {
    logins: HashMap<CounterKey, LoginCounter>,
    rates: HashMap<CounterKey, Counter>,
}

impl MemoryStore {
    fn attempts(&self) -> MutexGuard<'_, Limiters> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets what `key` counted (an account's own limits, when the account is deleted).
    pub(crate) fn forget_rate(&self, key: &RateKey) {
        self.attempts().rates.remove(&CounterKey::Rate(key.clone()));
    }

    /// Drops ended login and rate windows and lapsed holds.
    pub(crate) fn purge_throttle(&self, now: Timestamp) {
        let mut limiters = self.attempts();
        limiters.logins.retain(|_, counter| {
            counter.prune(now);
            !counter.is_empty()
        });
        limiters
            .rates
            .retain(|_, counter| !counter.resets_at.has_passed(now));
    }
}

fn login_keys(attempt: &LoginAttempt) -> [CounterKey; 2] {
    [
        CounterKey::Pair(attempt.username.clone(), attempt.client),
        CounterKey::Client(attempt.client),
    ]
}

#[async_trait]
impl LoginThrottle for MemoryStore {
    async fn admit(
        &self,
        attempt: &LoginAttempt,
        limits: &ThrottleLimits,
    ) -> Result<Admission, StoreError> {
        let now = self.clock.now();
        let keys = login_keys(attempt);
        let windows: [WindowLimit; 2] = [limits.pair, limits.client];
        let mut limiters = self.attempts();
        let mut refused = None;
        for (key, limit) in keys.iter().zip(windows) {
            if let Some(counter) = limiters.logins.get_mut(key) {
                counter.prune(now);
                if counter.used() >= limit.max {
                    let wait = counter.wait(limit, now);
                    refused = Some(refused.map_or(wait, |w: Duration| w.max(wait)));
                }
            }
        }
        if let Some(retry_after) = refused {
            return Ok(Admission::Refused { retry_after });
        }
        for key in keys {
            limiters
                .logins
                .entry(key)
                .or_default()
                .holds
                .push((attempt.id, now.plus(LOGIN_HOLD)));
        }
        Ok(Admission::Admitted)
    }

    async fn settle(
        &self,
        attempt: &LoginAttempt,
        limits: &ThrottleLimits,
        settlement: Settlement,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let keys = login_keys(attempt);
        let windows: [WindowLimit; 2] = [limits.pair, limits.client];
        let mut limiters = self.attempts();
        for (index, (key, limit)) in keys.into_iter().zip(windows).enumerate() {
            let counter = limiters.logins.entry(key).or_default();
            let held = counter.holds.len();
            counter.holds.retain(|(id, _)| *id != attempt.id);
            // Settled once: without its hold (already settled, or lapsed), a repeated
            // settlement changes nothing.
            let had_hold = counter.holds.len() < held;
            match settlement {
                Settlement::Failed if had_hold => {
                    let live = Counter::live(counter.failures.as_ref(), now);
                    counter.failures = Some(Counter::counted(live, limit.window, now));
                }
                // The pair's failures end with a success; the client's stay.
                Settlement::Succeeded if index == 0 => counter.failures = None,
                _ => {}
            }
        }
        limiters.logins.retain(|_, counter| {
            counter.prune(now);
            !counter.is_empty()
        });
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for MemoryStore {
    async fn hit(&self, key: &RateKey, limit: WindowLimit) -> Result<Admission, StoreError> {
        let now = self.clock.now();
        let key = CounterKey::Rate(key.clone());
        let mut limiters = self.attempts();
        let counter = Counter::live(limiters.rates.get(&key), now);
        if let Some(counter) = counter.filter(|c| c.count >= limit.max) {
            return Ok(Admission::Refused {
                retry_after: counter.retry_after(now),
            });
        }
        limiters
            .rates
            .insert(key, Counter::counted(counter, limit.window, now));
        Ok(Admission::Admitted)
    }

    async fn forgive(&self, key: &RateKey) -> Result<(), StoreError> {
        let now = self.clock.now();
        let key = CounterKey::Rate(key.clone());
        let mut limiters = self.attempts();
        if let Some(mut counter) = Counter::live(limiters.rates.get(&key), now) {
            counter.count = counter.count.saturating_sub(1);
            limiters.rates.insert(key, counter);
        }
        Ok(())
    }
}
