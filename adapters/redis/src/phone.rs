//! Phone verification and the SMS caps over Redis.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `{u:<uid>}:phone_code` | hash | the pending code of the user's number: `phone`, `digest` (HMAC, hex; never the code), `expires_at`, `attempts`, `max_attempts`, `spent` | at the code's expiry |
//! | `{u:<uid>}:sms:hour`, `{u:<uid>}:sms:day` | string | SMS queued for the user in the current window | at the end of its window |
//! | `{u:<uid>}:sms:cooldown` | string | set while the user's last code request cools down | at the end of the cooldown |
//! | `{sms:<digits>}:hour`, `{sms:<digits>}:day` | string | SMS queued to one number, whoever the sender | at the end of its window |
//!
//! A code and the user record share the user's hash tag, so starting a verification (new
//! number, unverified, code replaced) and confirming one (attempt counted, or number
//! verified and code spent) are each one script on one slot. The script checks the user
//! record is still the one read just before (the new record is made in Rust, with the
//! adapter's record type) and refuses otherwise; the caller reads again, a few rounds at
//! most.
//!
//! A user's counters share the user's tag and a number's counters the number's own tag
//! `{sms:<digits>}`, so numbers spread over the cluster. An SMS is admitted by two scripts,
//! the user's windows first, then the number's; when the number refuses, the user's counts
//! are given back. A lost reply leaves a count standing: the caps can be reached one SMS
//! early, never passed.

use std::sync::LazyLock;
use std::time::Duration;

use application::ports::{
    CodeCheck, CodeDigest, PendingCode, PhoneVerifications, SmsAdmission, SmsCaps, SmsLimit,
    SmsQuota, StoreError,
};
use async_trait::async_trait;
use domain::{PhoneNumber, Timestamp, UserId};
use redis::{AsyncCommands, Script};

use crate::RedisStore;
use crate::errors::{corrupt, reply_at};
use crate::keys::{phone_code_key, sms_number_keys, sms_user_keys, user_key};
use crate::records::{UserRecord, json, millis};

static START: LazyLock<Script> = lua!(guarded: "lua/phone_start.lua");
static CONFIRM: LazyLock<Script> = lua!(guarded: "lua/code_prelude.lua", "lua/phone_confirm.lua");
static ADMIT: LazyLock<Script> = lua!(guarded: "lua/phone_admit.lua");
static GIVE_BACK: LazyLock<Script> = lua!(freeing: "lua/phone_give_back.lua");

/// Read-then-write rounds before a verification step reports the store busy: only a
/// concurrent change of the same user record makes a round fail.
const ROUNDS: usize = 5;
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

impl RedisStore {
    /// The user record as stored (to compare against) and parsed.
    async fn user_record(&self, user: UserId) -> Result<Option<(String, UserRecord)>, StoreError> {
        let key = user_key(user);
        let raw: Option<String> = self
            .run(|mut conn| async move { conn.get(key).await })
            .await?;
        raw.map(|raw| {
            let record: UserRecord = serde_json::from_str(&raw).map_err(corrupt)?;
            Ok((raw, record))
        })
        .transpose()
    }

    /// Runs the admit script over `keys` with `limits` (max, window) each: `None` when
    /// all had room (and are counted), else the 1-based index of the refusing counter and
    /// the wait.
    async fn admit_windows(
        &self,
        keys: Vec<String>,
        limits: Vec<(u32, Duration)>,
    ) -> Result<Option<(usize, Duration)>, StoreError> {
        let mut invocation = ADMIT.prepare_invoke();
        for (key, (max, window)) in keys.into_iter().zip(limits) {
            invocation.key(key).arg(max).arg(millis(window));
        }
        let (index, wait_ms): (usize, u64) = self
            .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
        Ok((index > 0).then(|| (index, Duration::from_secs(wait_ms.div_ceil(1000).max(1)))))
    }

    async fn give_back_windows(&self, keys: Vec<String>) -> Result<(), StoreError> {
        let mut invocation = GIVE_BACK.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        self.run(|mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl PhoneVerifications for RedisStore {
    async fn start(&self, code: &PendingCode) -> Result<bool, StoreError> {
        // The user record changes (its phone number).
        let _forget = self.forget_on_return(code.user_id, None);
        for _ in 0..ROUNDS {
            let Some((raw, mut record)) = self.user_record(code.user_id).await? else {
                return Ok(false);
            };
            record.phone = Some(code.phone.as_str().to_owned());
            record.phone_verified = false;
            let updated = json(&record)?;
            let args = [
                raw,
                updated,
                code.phone.as_str().to_owned(),
                code.digest.to_hex(),
                code.expires_at.unix_seconds().to_string(),
                code.max_attempts.to_string(),
            ];
            let (user, pending) = (user_key(code.user_id), phone_code_key(code.user_id));
            let started: i64 = self
                .run(|mut conn| async move {
                    START
                        .key(user)
                        .key(pending)
                        .arg(&args[..])
                        .invoke_async(&mut conn)
                        .await
                })
                .await?;
            if started == 1 {
                return Ok(true);
            }
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "the user record kept changing while starting a phone verification"
        )))
    }

    async fn confirm(
        &self,
        user: UserId,
        digest: &CodeDigest,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError> {
        // The user record changes (the number is verified).
        let _forget = self.forget_on_return(user, None);
        for _ in 0..ROUNDS {
            let Some((raw, mut record)) = self.user_record(user).await? else {
                return Ok(CodeCheck::NoCode);
            };
            let phone = record.phone.clone().unwrap_or_default();
            let already = if record.phone_verified { "1" } else { "0" };
            record.phone_verified = true;
            let updated = json(&record)?;
            let args = [
                raw,
                updated,
                digest.to_hex(),
                now.unix_seconds().to_string(),
                phone,
                already.to_owned(),
            ];
            let (user_record, pending) = (user_key(user), phone_code_key(user));
            let reply: Vec<redis::Value> = self
                .run(|mut conn| async move {
                    CONFIRM
                        .key(user_record)
                        .key(pending)
                        .arg(&args[..])
                        .invoke_async(&mut conn)
                        .await
                })
                .await?;
            match reply_at::<String>(&reply, 0)?.as_str() {
                "changed" => continue,
                "verified" => return Ok(CodeCheck::Verified),
                "none" => return Ok(CodeCheck::NoCode),
                "wrong" => {
                    let attempts_left = u32::try_from(reply_at::<u64>(&reply, 1)?).unwrap_or(0);
                    return Ok(CodeCheck::Wrong { attempts_left });
                }
                other => return Err(corrupt(format!("unexpected confirm reply {other:?}"))),
            }
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "the user record kept changing while confirming a phone code"
        )))
    }
}

#[async_trait]
impl SmsQuota for RedisStore {
    async fn admit(
        &self,
        user: UserId,
        to: &PhoneNumber,
        caps: &SmsCaps,
        cooldown: Option<Duration>,
    ) -> Result<SmsAdmission, StoreError> {
        let mut limits = Vec::with_capacity(3);
        if let Some(cooldown) = cooldown {
            limits.push((1, cooldown));
        }
        limits.extend([(caps.user_hourly, HOUR), (caps.user_daily, DAY)]);
        let keys = sms_user_keys(user, cooldown.is_some());
        if let Some((index, retry_after)) = self.admit_windows(keys, limits).await? {
            let limit = if cooldown.is_some() && index == 1 {
                SmsLimit::Cooldown
            } else {
                SmsLimit::User
            };
            return Ok(SmsAdmission::Refused { limit, retry_after });
        }
        let refused = self
            .admit_windows(
                sms_number_keys(to).to_vec(),
                vec![(caps.number_hourly, HOUR), (caps.number_daily, DAY)],
            )
            .await?;
        if let Some((_, retry_after)) = refused {
            // Refused for sure: give the user's counts back (best effort: else they lapse
            // with their windows).
            if let Err(e) = self
                .give_back_windows(sms_user_keys(user, cooldown.is_some()))
                .await
            {
                tracing::warn!(error = %e, "could not give back SMS counts");
            }
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
        self.give_back_windows(sms_user_keys(user, cooldown))
            .await?;
        self.give_back_windows(sms_number_keys(to).to_vec()).await
    }
}
