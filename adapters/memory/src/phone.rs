//! Phone verification and the SMS caps, in process.
//!
//! Pending codes live under a lock of their own, always taken *after* the state lock, so
//! starting and confirming a verification (which also change the user record) are each
//! one atomic step. One code per user: a new one replaces the old. SMS counters are fixed
//! windows like the login throttle's, created by an admitted SMS only, and dropped by
//! [`MemoryStore::purge_expired`] once their window has ended.

use std::time::Duration;

use application::ports::{
    CodeCheck, CodeDigest, PendingCode, PhoneVerifications, SmsAdmission, SmsCaps, SmsLimit,
    SmsQuota, StoreError,
};
use async_trait::async_trait;
use domain::{PhoneNumber, Timestamp, UserId};

use crate::{CodeRecord, Counter, MemoryStore, SmsCounter, Tried};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn user_counters(
    user: UserId,
    caps: &SmsCaps,
    cooldown: Option<Duration>,
) -> Vec<(SmsCounter, u32, Duration)> {
    let mut counters = Vec::with_capacity(3);
    if let Some(cooldown) = cooldown {
        counters.push((SmsCounter::Cooldown(user), 1, cooldown));
    }
    counters.push((SmsCounter::UserHour(user), caps.user_hourly, HOUR));
    counters.push((SmsCounter::UserDay(user), caps.user_daily, DAY));
    counters
}

fn number_counters(to: &PhoneNumber, caps: &SmsCaps) -> Vec<(SmsCounter, u32, Duration)> {
    vec![
        (SmsCounter::NumberHour(to.clone()), caps.number_hourly, HOUR),
        (SmsCounter::NumberDay(to.clone()), caps.number_daily, DAY),
    ]
}

#[async_trait]
impl PhoneVerifications for MemoryStore {
    async fn start(&self, code: &PendingCode) -> Result<bool, StoreError> {
        let mut state = self.write();
        let Some(user) = state.users.get_mut(&code.user_id) else {
            return Ok(false);
        };
        user.phone = Some(code.phone.clone());
        user.phone_verified = false;
        self.codes()
            .insert(code.user_id, CodeRecord::new(code.clone()));
        Ok(true)
    }

    async fn confirm(
        &self,
        user: UserId,
        digest: &CodeDigest,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError> {
        let mut state = self.write();
        let mut codes = self.codes();
        let (Some(account), Some(record)) = (state.users.get_mut(&user), codes.get_mut(&user))
        else {
            return Ok(CodeCheck::NoCode);
        };
        // The code proves only the number it was texted to.
        if account.phone.as_ref() != Some(&record.code.phone) {
            return Ok(CodeCheck::NoCode);
        }
        Ok(match record.try_digest(digest, now) {
            Tried::Dead => CodeCheck::NoCode,
            // Only a retry of the confirmation that spent it, on the still verified number.
            Tried::Spent(matches) if matches && account.phone_verified => CodeCheck::Verified,
            Tried::Spent(_) => CodeCheck::NoCode,
            Tried::Wrong { attempts_left } => CodeCheck::Wrong { attempts_left },
            Tried::Right => {
                account.phone_verified = true;
                record.spent = true;
                CodeCheck::Verified
            }
        })
    }
}

impl MemoryStore {
    /// Counts one SMS in each of `counters` if every one has room; else the refusing
    /// counter that frees last (its index) and the wait. As the Redis script does.
    fn admit_windows(
        &self,
        counters: &[(SmsCounter, u32, Duration)],
        now: Timestamp,
    ) -> Option<(usize, Duration)> {
        let mut map = self.sms_counters();
        let mut refused: Option<(usize, Duration)> = None;
        for (i, (key, max, _)) in counters.iter().enumerate() {
            if let Some(counter) = Counter::live(map.get(key), now).filter(|c| c.count >= *max) {
                let wait = counter.retry_after(now);
                if refused.is_none_or(|(_, longest)| wait > longest) {
                    refused = Some((i, wait));
                }
            }
        }
        if refused.is_some() {
            return refused;
        }
        for (key, _, window) in counters {
            let counted = Counter::counted(Counter::live(map.get(key), now), *window, now);
            map.insert(key.clone(), counted);
        }
        None
    }

    fn give_back_windows(&self, counters: &[(SmsCounter, u32, Duration)]) {
        let mut map = self.sms_counters();
        for (key, _, _) in counters {
            if let Some(counter) = map.get_mut(key) {
                counter.count = counter.count.saturating_sub(1);
                if counter.count == 0 {
                    map.remove(key);
                }
            }
        }
    }
}

#[async_trait]
impl SmsQuota for MemoryStore {
    async fn admit(
        &self,
        user: UserId,
        to: &PhoneNumber,
        caps: &SmsCaps,
        cooldown: Option<Duration>,
    ) -> Result<SmsAdmission, StoreError> {
        let now = self.clock.now();
        let users = user_counters(user, caps, cooldown);
        if let Some((index, retry_after)) = self.admit_windows(&users, now) {
            let limit = if cooldown.is_some() && index == 0 {
                SmsLimit::Cooldown
            } else {
                SmsLimit::User
            };
            return Ok(SmsAdmission::Refused { limit, retry_after });
        }
        if let Some((_, retry_after)) = self.admit_windows(&number_counters(to, caps), now) {
            self.give_back_windows(&users);
            return Ok(SmsAdmission::Refused {
                limit: SmsLimit::Number,
                retry_after,
            });
        }
        Ok(SmsAdmission::Admitted)
    }

    async fn give_back(
        &self,
        user: UserId,
        to: &PhoneNumber,
        cooldown: bool,
    ) -> Result<(), StoreError> {
        // The limits do not matter for giving back; only the keys.
        let any = SmsCaps {
            user_hourly: 0,
            user_daily: 0,
            number_hourly: 0,
            number_daily: 0,
        };
        let users = user_counters(user, &any, cooldown.then_some(Duration::ZERO));
        self.give_back_windows(&users);
        self.give_back_windows(&number_counters(to, &any));
        Ok(())
    }
}
