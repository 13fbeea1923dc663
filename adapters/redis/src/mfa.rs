//! The [`SecondFactors`] port on Redis: the factor a hash, the recovery codes a set of
//! their keyed digests, the pending login challenges a hash of digest -> `<expiry>|<user
//! agent>`; all under the user's hash tag, so each step is one script on one slot, and
//! deleting the account deletes them with it (`keys::account_fixed_keys`).

use std::sync::LazyLock;

use application::ports::{
    CodeDigest, Enrolment, MAX_PENDING_CHALLENGES, MfaChallenge, Proof, ProofCheck, SealedSecret,
    SecondFactors, Spend, StoreError, TotpFactor,
};
use async_trait::async_trait;
use domain::{Session, Timestamp, UserId};
use redis::{AsyncCommands, Script};

use crate::RedisStore;
use crate::errors::{corrupt, reply_at};
use crate::keys::{challenges_key, recovery_codes_key, totp_key, user_key};
use crate::records::unix_now;

static ENROL: LazyLock<Script> = lua!(guarded: "lua/mfa_enrol.lua");
static ENABLE: LazyLock<Script> = lua!(guarded: "lua/mfa_enable.lua");
static SPEND: LazyLock<Script> = lua!(freeing: "lua/mfa_spend.lua");
// The same script where it adds what a full Redis should refuse: new recovery codes.
static RENEW: LazyLock<Script> = lua!(guarded: "lua/mfa_spend.lua");
// The session prelude for its `extend`.
static CHALLENGE: LazyLock<Script> =
    lua!(guarded: "lua/session_prelude.lua", "lua/mfa_challenge.lua");

#[async_trait]
impl SecondFactors for RedisStore {
    async fn totp(&self, user: UserId) -> Result<Option<TotpFactor>, StoreError> {
        let (totp, recovery) = (totp_key(user), recovery_codes_key(user));
        let ((sealed, enabled, last_step), left): (
            (Option<String>, Option<String>, Option<u64>),
            u32,
        ) = self
            .run(|mut conn| async move {
                redis::pipe()
                    .cmd("HMGET")
                    .arg(&totp)
                    .arg("sealed")
                    .arg("enabled")
                    .arg("last_step")
                    .cmd("SCARD")
                    .arg(&recovery)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        Ok(Some(TotpFactor {
            sealed: SealedSecret(sealed),
            enabled: enabled.as_deref() == Some("1"),
            last_step,
            recovery_codes_left: left,
        }))
    }

    async fn enrol(
        &self,
        user: UserId,
        sealed: &SealedSecret,
        expires_at: Timestamp,
    ) -> Result<Enrolment, StoreError> {
        let keys = [user_key(user), totp_key(user)];
        let args = [sealed.0.clone(), expires_at.unix_seconds().to_string()];
        let reply: String = self
            .run(|mut conn| async move {
                ENROL
                    .key(&keys[..])
                    .arg(&args[..])
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        match reply.as_str() {
            "pending" => Ok(Enrolment::Pending),
            "enabled" => Ok(Enrolment::AlreadyEnabled),
            "gone" => Ok(Enrolment::Gone),
            other => Err(corrupt(format!("unexpected enrol reply {other:?}"))),
        }
    }

    async fn enable(
        &self,
        user: UserId,
        sealed: &SealedSecret,
        step: u64,
        recovery: &[CodeDigest],
    ) -> Result<bool, StoreError> {
        let keys = [totp_key(user), recovery_codes_key(user)];
        let args: Vec<String> = [sealed.0.clone(), step.to_string()]
            .into_iter()
            .chain(recovery.iter().map(CodeDigest::to_hex))
            .collect();
        let enabled: i64 = self
            .run(|mut conn| async move {
                ENABLE
                    .key(&keys[..])
                    .arg(&args[..])
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(enabled == 1)
    }

    async fn spend(
        &self,
        user: UserId,
        sealed: &SealedSecret,
        proof: &Proof,
        spend: &Spend,
    ) -> Result<ProofCheck, StoreError> {
        let keys = [
            totp_key(user),
            recovery_codes_key(user),
            challenges_key(user),
        ];
        let (kind, value) = match proof {
            Proof::Step(step) => ("step", step.to_string()),
            Proof::RecoveryCode(digest) => ("code", digest.to_hex()),
        };
        let (on, challenge, now, reseal) = match spend {
            Spend::Challenge {
                digest,
                now,
                reseal,
            } => (
                "challenge",
                digest.to_hex(),
                now.unix_seconds(),
                reseal.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
            ),
            Spend::Disable => ("disable", String::new(), 0, String::new()),
            Spend::Renew(_) => ("renew", String::new(), 0, String::new()),
        };
        let (script, renewed): (&Script, &[CodeDigest]) = match spend {
            Spend::Renew(codes) => (&RENEW, codes),
            _ => (&SPEND, &[]),
        };
        let args: Vec<String> = [
            sealed.0.clone(),
            kind.to_owned(),
            value,
            on.to_owned(),
            challenge,
            now.to_string(),
            reseal,
        ]
        .into_iter()
        .chain(renewed.iter().map(CodeDigest::to_hex))
        .collect();
        let reply: Vec<redis::Value> = self
            .run(|mut conn| async move {
                script
                    .key(&keys[..])
                    .arg(&args[..])
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        match reply_at::<String>(&reply, 0)?.as_str() {
            "accepted" => Ok(ProofCheck::Accepted {
                recovery_codes_left: u32::try_from(reply_at::<u64>(&reply, 1)?).unwrap_or(u32::MAX),
            }),
            "reused" => Ok(ProofCheck::Reused),
            "no_challenge" => Ok(ProofCheck::NoChallenge),
            "changed" => Ok(ProofCheck::Changed),
            other => Err(corrupt(format!("unexpected spend reply {other:?}"))),
        }
    }

    async fn open_challenge(&self, challenge: &MfaChallenge) -> Result<bool, StoreError> {
        let keys = [
            user_key(challenge.user_id),
            challenges_key(challenge.user_id),
        ];
        let args = [
            challenge.digest.to_hex(),
            challenge.expires_at.unix_seconds().to_string(),
            challenge.user_agent.clone().unwrap_or_default(),
            unix_now().to_string(),
            MAX_PENDING_CHALLENGES.to_string(),
        ];
        let stored: i64 = self
            .run(|mut conn| async move {
                CHALLENGE
                    .key(&keys[..])
                    .arg(&args[..])
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(stored == 1)
    }

    async fn challenge(
        &self,
        user: UserId,
        digest: &CodeDigest,
        now: Timestamp,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let (key, field) = (challenges_key(user), digest.to_hex());
        let entry: Option<String> = self
            .run(|mut conn| async move { conn.hget(key, field).await })
            .await?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        let (at, user_agent) = entry
            .split_once('|')
            .ok_or_else(|| corrupt("a login challenge without its expiry"))?;
        let expires_at = at
            .parse::<i64>()
            .map(Timestamp::from_unix_seconds)
            .map_err(corrupt)?;
        Ok((!expires_at.has_passed(now)).then(|| MfaChallenge {
            user_id: user,
            digest: *digest,
            expires_at,
            user_agent: Session::clean_user_agent(Some(user_agent)),
        }))
    }
}
