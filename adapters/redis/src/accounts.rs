//! [`AccountStore`] over Redis: a new password with the user's other sessions ended, and
//! deleting an account, each one script over the user's hash tag that acts only on the
//! user record as read (see `lua/set_password.lua`, `lua/delete_account.lua`).
//!
//! Where a script's keys depend on the session index's members, the members are read first
//! and the script refuses (changing nothing) if the index changed in between, and the read
//! is repeated, as in `sessions`.

use std::sync::LazyLock;

use application::ports::{
    AccountStore, AccountWrite, CodeDigest, PasswordResets, PendingCode, ResetCheck, StoreError,
    Unavailability,
};
use async_trait::async_trait;
use domain::{SessionId, Timestamp, User};
use redis::{AsyncCommands, Script};

use crate::RedisStore;
use crate::errors::{corrupt, reply_at};
use crate::keys::{
    account_fixed_keys, challenges_key, reset_code_key, session_key_of, sessions_key,
    todo_idempotency_key_of, todo_keys_key, user_key, username_key,
};
use crate::records::{UserRecord, json, parse_user};

static SET_PASSWORD: LazyLock<Script> = lua!(guarded: "lua/set_password.lua");
static DELETE_ACCOUNT: LazyLock<Script> = lua!(freeing: "lua/delete_account.lua");
static RELEASE_USERNAME: LazyLock<Script> = lua!(freeing: "lua/release_username.lua");
static RESET_START: LazyLock<Script> = lua!(guarded: "lua/reset_start.lua");
static RESET_FINISH: LazyLock<Script> =
    lua!(guarded: "lua/code_prelude.lua", "lua/reset_finish.lua");

/// Read-then-write rounds before a step reports the store busy: only logins (or record
/// changes) racing the step make a round fail.
const ROUNDS: usize = 5;
/// Idempotency records deleted per command when an account goes.
const KEY_BATCH: usize = 500;

impl RedisStore {
    /// The stored user record, raw (for the script to compare against), if it still
    /// holds `read`.
    async fn record_as_read(&self, read: &User) -> Result<AccountWrite<String>, StoreError> {
        let key = user_key(read.id);
        let raw: Option<String> = self
            .run(|mut conn| async move { conn.get(key).await })
            .await?;
        Ok(match raw {
            None => AccountWrite::Gone,
            Some(raw) if parse_user(&raw)? == *read => AccountWrite::Done(raw),
            Some(_) => AccountWrite::Changed,
        })
    }

    /// Runs one of the account scripts on the user record as read, with every session of
    /// the user declared: `KEYS` the record, `keys`, then each session key; `ARGV` the raw
    /// record, `args`, then each session id. A script answers `{'retry'}` when the session
    /// index holds a member not declared (a login in between), and the read is repeated.
    /// `Changed` or `Gone` when the record is not the one read, before any script runs.
    async fn account_step(
        &self,
        read: &User,
        script: &'static Script,
        keys: &[String],
        args: &[String],
    ) -> Result<AccountWrite<Vec<redis::Value>>, StoreError> {
        for _ in 0..ROUNDS {
            let raw = match self.record_as_read(read).await? {
                AccountWrite::Done(raw) => raw,
                AccountWrite::Changed => return Ok(AccountWrite::Changed),
                AccountWrite::Gone => return Ok(AccountWrite::Gone),
            };
            let sids = self.session_ids(read.id).await?;
            let mut invocation = script.key(user_key(read.id));
            for key in keys {
                invocation.key(key);
            }
            invocation.arg(raw);
            for arg in args {
                invocation.arg(arg);
            }
            for sid in &sids {
                invocation.key(session_key_of(read.id, sid)).arg(sid);
            }
            let reply: Vec<redis::Value> = self
                .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
                .await?;
            if reply_at::<String>(&reply, 0)? != "retry" {
                return Ok(AccountWrite::Done(reply));
            }
        }
        Err(StoreError::unavailable(
            Unavailability::Busy,
            anyhow::anyhow!("sessions kept changing during an account step"),
        ))
    }

    /// Deletes the idempotency records the user's index names, then the index: after the
    /// account itself is gone, so nothing adds to it any more (see `insert_todo.lua`).
    async fn delete_todo_keys(&self, read: &User) -> Result<(), StoreError> {
        let index = todo_keys_key(read.id);
        let names: Vec<String> = self
            .run(|mut conn| {
                let index = index.clone();
                async move { conn.zrange(index, 0, -1).await }
            })
            .await?;
        for batch in names.chunks(KEY_BATCH) {
            let keys: Vec<String> = batch
                .iter()
                .map(|name| todo_idempotency_key_of(read.id, name))
                .collect();
            self.run(|mut conn| {
                let keys = keys.clone();
                async move { conn.del::<_, i64>(keys).await }
            })
            .await?;
        }
        self.run(|mut conn| {
            let index = index.clone();
            async move { conn.del::<_, i64>(index).await }
        })
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl AccountStore for RedisStore {
    async fn set_password(
        &self,
        read: &User,
        updated: &User,
        keep: Option<SessionId>,
    ) -> Result<AccountWrite<u64>, StoreError> {
        // The record and the ended sessions are not served from this replica's cache,
        // whatever the answer.
        let _forget = self.forget_on_return(read.id, None);
        let args = [
            json(&UserRecord::from_user(updated))?,
            keep.map(|k| k.to_string()).unwrap_or_default(),
        ];
        let keys = [sessions_key(read.id), challenges_key(read.id)];
        let reply = match self.account_step(read, &SET_PASSWORD, &keys, &args).await? {
            AccountWrite::Done(reply) => reply,
            AccountWrite::Changed => return Ok(AccountWrite::Changed),
            AccountWrite::Gone => return Ok(AccountWrite::Gone),
        };
        match reply_at::<String>(&reply, 0)?.as_str() {
            "gone" => Ok(AccountWrite::Gone),
            "changed" => Ok(AccountWrite::Changed),
            "done" => Ok(AccountWrite::Done(reply_at::<u64>(&reply, 1)?)),
            other => Err(corrupt(format!("unexpected set_password reply {other:?}"))),
        }
    }

    async fn delete_account(&self, read: &User) -> Result<AccountWrite<()>, StoreError> {
        let _forget = self.forget_on_return(read.id, None);
        let fixed = account_fixed_keys(read.id);
        let keys: Vec<String> = std::iter::once(sessions_key(read.id))
            .chain(fixed.iter().cloned())
            .collect();
        let args = [fixed.len().to_string()];
        let reply = match self
            .account_step(read, &DELETE_ACCOUNT, &keys, &args)
            .await?
        {
            AccountWrite::Done(reply) => reply,
            AccountWrite::Changed => return Ok(AccountWrite::Changed),
            AccountWrite::Gone => return Ok(AccountWrite::Gone),
        };
        match reply_at::<String>(&reply, 0)?.as_str() {
            "done" => {}
            "gone" => return Ok(AccountWrite::Gone),
            "changed" => return Ok(AccountWrite::Changed),
            other => {
                return Err(corrupt(format!(
                    "unexpected delete_account reply {other:?}"
                )));
            }
        }
        // The account is gone; what follows only tidies up. Should it fail, the
        // idempotency records expire by themselves, and a name left held by the gone id
        // is taken over by the next registration of it (see `users`).
        if let Err(e) = self.delete_todo_keys(read).await {
            tracing::warn!(user_id = %read.id, error = %e, "account deleted; its idempotency records will expire by themselves");
        }
        let (name, id) = (username_key(&read.username), read.id.to_string());
        let released = self
            .run(|mut conn| {
                let (name, id) = (name.clone(), id.clone());
                async move {
                    RELEASE_USERNAME
                        .key(name)
                        .arg(id)
                        .invoke_async::<i64>(&mut conn)
                        .await
                }
            })
            .await;
        if let Err(e) = released {
            tracing::warn!(user_id = %read.id, error = %e, "account deleted; its name is freed when it is next registered");
        }
        Ok(AccountWrite::Done(()))
    }
}

#[async_trait]
impl PasswordResets for RedisStore {
    async fn start_reset(&self, code: &PendingCode) -> Result<bool, StoreError> {
        let (user, pending) = (user_key(code.user_id), reset_code_key(code.user_id));
        let args = [
            code.digest.to_hex(),
            code.expires_at.unix_seconds().to_string(),
            code.max_attempts.to_string(),
        ];
        let started: i64 = self
            .run(|mut conn| {
                let (user, pending, args) = (user.clone(), pending.clone(), args.clone());
                async move {
                    RESET_START
                        .key(user)
                        .key(pending)
                        .arg(&args[..])
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(started == 1)
    }

    async fn finish_reset(
        &self,
        read: &User,
        digest: &CodeDigest,
        updated: &User,
        now: Timestamp,
    ) -> Result<ResetCheck, StoreError> {
        // The record and the ended sessions are not served from this replica's cache,
        // whatever the answer.
        let _forget = self.forget_on_return(read.id, None);
        let keys = [
            reset_code_key(read.id),
            sessions_key(read.id),
            challenges_key(read.id),
        ];
        let args = [
            json(&UserRecord::from_user(updated))?,
            digest.to_hex(),
            now.unix_seconds().to_string(),
        ];
        let reply = match self.account_step(read, &RESET_FINISH, &keys, &args).await? {
            AccountWrite::Done(reply) => reply,
            // Whatever the code, the caller reads again (or finds no one).
            AccountWrite::Changed => return Ok(ResetCheck::Changed),
            AccountWrite::Gone => return Ok(ResetCheck::NoCode),
        };
        match reply_at::<String>(&reply, 0)?.as_str() {
            "none" => Ok(ResetCheck::NoCode),
            "changed" => Ok(ResetCheck::Changed),
            "wrong" => Ok(ResetCheck::Wrong {
                attempts_left: u32::try_from(reply_at::<u64>(&reply, 1)?).unwrap_or(0),
            }),
            "done" => Ok(ResetCheck::Reset {
                ended: reply_at::<u64>(&reply, 1)?,
            }),
            other => Err(corrupt(format!("unexpected reset reply {other:?}"))),
        }
    }
}
