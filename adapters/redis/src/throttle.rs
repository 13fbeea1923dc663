//! [`LoginThrottle`] and [`RateLimiter`] over Redis. A client's counters share its hash tag
//! (`{login:<client>}`, `{rate:<client>}`), so one script checks and counts them
//! atomically, in one cluster slot.
//!
//! A login's admission takes a *hold* (a member of the counter's holds set, scored by when
//! it lapses); its settlement turns the hold into a counted failure or releases it. When an
//! admission's reply is lost, the hold it may still take is released right behind it on
//! the same connection, and lapses by itself after [`LOGIN_HOLD`] in any case: a login
//! that got a 503 is never counted as a failed password.

use std::sync::LazyLock;
use std::time::Duration;

use application::ports::{
    Admission, LOGIN_HOLD, LoginAttempt, LoginThrottle, RateKey, RateLimiter, Settlement,
    StoreError, ThrottleLimits, WindowLimit,
};
use async_trait::async_trait;
use redis::Script;

use crate::RedisStore;
use crate::keys::{login_keys, rate_key};
use crate::records::millis;

static ADMIT: LazyLock<Script> = lua!(guarded: "lua/admit_login.lua");
const SETTLE_SOURCE: &str = lua_source!(freeing: "lua/settle_login.lua");
static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(SETTLE_SOURCE));
static RATE_HIT: LazyLock<Script> = lua!(guarded: "lua/rate_hit.lua");
static RATE_FORGIVE: LazyLock<Script> = lua!(freeing: "lua/rate_forgive.lua");

/// A limiter script's wait in milliseconds as an [`Admission`]: whole seconds for
/// `Retry-After`, rounded up so a client that waits that long finds the window free.
fn admission(wait_ms: u64) -> Admission {
    match wait_ms {
        0 => Admission::Admitted,
        ms => Admission::Refused {
            retry_after: Duration::from_secs(ms.div_ceil(1000).max(1)),
        },
    }
}

fn settle_arg(settlement: Settlement) -> &'static str {
    match settlement {
        Settlement::Failed => "failed",
        Settlement::Succeeded => "succeeded",
        Settlement::Unjudged => "unjudged",
    }
}

/// The arguments of the settle script for `attempt`.
fn settle_args(
    attempt: &LoginAttempt,
    limits: &ThrottleLimits,
    settlement: Settlement,
) -> Vec<String> {
    vec![
        settle_arg(settlement).to_owned(),
        attempt.id.to_string(),
        millis(limits.pair.window).max(1).to_string(),
        millis(limits.client.window).max(1).to_string(),
    ]
}

#[async_trait]
impl LoginThrottle for RedisStore {
    async fn admit(
        &self,
        attempt: &LoginAttempt,
        limits: &ThrottleLimits,
    ) -> Result<Admission, StoreError> {
        let mut invocation = ADMIT.prepare_invoke();
        for key in login_keys(attempt) {
            invocation.key(key);
        }
        invocation
            .arg(limits.pair.max)
            .arg(millis(limits.pair.window).max(1))
            .arg(limits.client.max)
            .arg(millis(limits.client.window).max(1))
            .arg(attempt.id.to_string())
            .arg(millis(LOGIN_HOLD));
        let waited = self
            .run(|mut conn| async move { invocation.invoke_async::<u64>(&mut conn).await })
            .await;
        match waited {
            Ok(wait_ms) => Ok(admission(wait_ms)),
            Err(e) => {
                if matches!(e, StoreError::Unavailable(_)) {
                    // The admission may still run: release its hold right behind it.
                    self.reconcile_after(
                        "login admission",
                        SETTLE_SOURCE,
                        login_keys(attempt).into(),
                        settle_args(attempt, limits, Settlement::Unjudged),
                    );
                }
                Err(e)
            }
        }
    }

    async fn settle(
        &self,
        attempt: &LoginAttempt,
        limits: &ThrottleLimits,
        settlement: Settlement,
    ) -> Result<(), StoreError> {
        let mut invocation = SETTLE.prepare_invoke();
        for key in login_keys(attempt) {
            invocation.key(key);
        }
        for arg in settle_args(attempt, limits, settlement) {
            invocation.arg(arg);
        }
        self.run(|mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl RateLimiter for RedisStore {
    async fn hit(&self, key: &RateKey, limit: WindowLimit) -> Result<Admission, StoreError> {
        let counter = rate_key(key);
        let wait_ms: u64 = self
            .run(|mut conn| async move {
                RATE_HIT
                    .key(counter)
                    .arg(limit.max)
                    .arg(millis(limit.window).max(1))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(admission(wait_ms))
    }

    async fn forgive(&self, key: &RateKey) -> Result<(), StoreError> {
        let counter = rate_key(key);
        let _: i64 = self
            .run(|mut conn| async move { RATE_FORGIVE.key(counter).invoke_async(&mut conn).await })
            .await?;
        Ok(())
    }
}
