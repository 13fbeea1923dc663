//! Time as the model sees it: whole seconds since the Unix epoch, the resolution JWT
//! claims (`iat`, `exp`) use. Reading the clock is a port (`Clock`) so that expiry can be
//! tested without sleeping.

use std::time::Duration;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds)
    }

    pub const fn unix_seconds(self) -> i64 {
        self.0
    }

    /// `self + duration`, saturating instead of overflowing for absurd durations.
    pub fn plus(self, duration: Duration) -> Self {
        let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(secs))
    }

    /// `self - duration`, saturating instead of overflowing for absurd durations: the
    /// oldest instant a retention of `duration` keeps at `self`.
    pub fn minus(self, duration: Duration) -> Self {
        let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(secs))
    }

    /// Time left from `now` until `self`; zero when `self` is not in the future.
    pub fn remaining_after(self, now: Timestamp) -> Duration {
        Duration::from_secs(u64::try_from(self.0.saturating_sub(now.0)).unwrap_or(0))
    }

    /// True once `now` has reached this instant (an expiry at `t` is expired at `t`).
    pub fn has_passed(self, now: Timestamp) -> bool {
        now.0 >= self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_clamps() {
        let t = Timestamp::from_unix_seconds(100);
        assert_eq!(t.plus(Duration::from_secs(5)).unix_seconds(), 105);
        assert_eq!(t.plus(Duration::MAX).unix_seconds(), i64::MAX);
        assert_eq!(t.minus(Duration::from_secs(5)).unix_seconds(), 95);
        assert_eq!(t.minus(Duration::MAX).unix_seconds(), 100 - i64::MAX);
        assert_eq!(
            t.remaining_after(Timestamp::from_unix_seconds(90)),
            Duration::from_secs(10)
        );
        assert_eq!(
            t.remaining_after(Timestamp::from_unix_seconds(200)),
            Duration::ZERO
        );
        assert!(t.has_passed(t));
        assert!(!t.has_passed(Timestamp::from_unix_seconds(99)));
    }
}
