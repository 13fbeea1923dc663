//! [`UserRepository`] over Redis: the user record under the user's hash tag, and the
//! username index `username:<name>`, the one key outside it (see `insert` for how a
//! registration stays safe across the two slots).

use std::sync::LazyLock;

use application::ports::{InsertUserError, StoreError, UserRepository};
use async_trait::async_trait;
use domain::{User, UserId, Username};
use redis::{AsyncCommands, Script};

use crate::RedisStore;
use crate::errors::corrupt;
use crate::keys::{user_key, username_key};
use crate::records::{UserRecord, json, parse_user};

static CONFIRM_USERNAME: LazyLock<Script> = lua!(guarded: "lua/confirm_username.lua");
static RELEASE_USERNAME: LazyLock<Script> = lua!(freeing: "lua/release_username.lua");
static TAKE_ORPHANED_NAME: LazyLock<Script> = lua!(guarded: "lua/take_orphaned_name.lua");

/// How long a username claim lives before registration makes it permanent: a process
/// that dies between the claim and the user record cannot lock the name for good.
const USERNAME_CLAIM_TTL_MS: u64 = 60_000;

impl RedisStore {
    /// Claims (as `SET NX PX` would) a name held for good by `holder` when `holder` has
    /// no user record: an account deleted by a process that died before it freed the name.
    /// A registration in flight holds its claim with an expiry until its record exists,
    /// so it is never taken over.
    async fn take_orphaned_name(
        &self,
        name_key: &str,
        holder: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let Ok(holder_id) = holder.parse::<UserId>() else {
            return Ok(false);
        };
        let exists: bool = self
            .run(|mut conn| {
                let key = user_key(holder_id);
                async move { conn.exists(key).await }
            })
            .await?;
        if exists {
            return Ok(false);
        }
        let script = &*TAKE_ORPHANED_NAME;
        let taken: i64 = self
            .run(|mut conn| {
                let (name_key, holder, id) =
                    (name_key.to_owned(), holder.to_owned(), id.to_owned());
                async move {
                    script
                        .key(name_key)
                        .arg(holder)
                        .arg(id)
                        .arg(USERNAME_CLAIM_TTL_MS)
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        if taken == 1 {
            tracing::info!(orphaned_by = %holder_id, "a deleted account's name is free again");
        }
        Ok(taken == 1)
    }
}

#[async_trait]
impl UserRepository for RedisStore {
    /// The username index is the one write outside the user's slot, so registration is
    /// three steps, each safe if the next never happens: claim the name with an expiry
    /// (`SET NX PX`), write the user record under the user's tag, make the claim
    /// permanent. A process that dies in between leaves a claim that lapses by itself
    /// within `USERNAME_CLAIM_TTL_MS` (and at worst an unreachable user record under a
    /// fresh random id), never a name locked for good. Each step is idempotent for the
    /// same user id, so a retry after a lost reply completes what the first attempt began.
    async fn insert(&self, user: &User) -> Result<(), InsertUserError> {
        let record = json(&UserRecord::from_user(user))?;
        let name_key = username_key(&user.username);
        let id = user.id.to_string();
        let claimed: Option<String> = self
            .run(|mut conn| {
                let (name_key, id) = (name_key.clone(), id.clone());
                async move {
                    redis::cmd("SET")
                        .arg(name_key)
                        .arg(id)
                        .arg("NX")
                        .arg("PX")
                        .arg(USERNAME_CLAIM_TTL_MS)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        if claimed.is_none() {
            // Taken, unless by this very user: a retry of a registration whose reply was
            // lost finds its own claim and finishes the same steps again.
            let holder: Option<String> = self
                .run(|mut conn| {
                    let name_key = name_key.clone();
                    async move { conn.get(name_key).await }
                })
                .await?;
            match holder {
                Some(holder) if holder == id => {}
                Some(holder) if self.take_orphaned_name(&name_key, &holder, &id).await? => {}
                _ => return Err(InsertUserError::UsernameTaken),
            }
        }
        let stored = self
            .run(|mut conn| {
                let key = user_key(user.id);
                async move { conn.set::<_, _, ()>(key, record).await }
            })
            .await;
        let confirmed = match stored {
            Ok(()) => {
                let script = &*CONFIRM_USERNAME;
                self.run(|mut conn| {
                    let (name_key, id) = (name_key.clone(), id.clone());
                    async move {
                        script
                            .key(name_key)
                            .arg(id)
                            .invoke_async::<i64>(&mut conn)
                            .await
                    }
                })
                .await
            }
            Err(e) => Err(e),
        };
        match confirmed {
            Ok(1) => Ok(()),
            Ok(_) => {
                // Our claim lapsed and someone else registered the name meanwhile.
                let key = user_key(user.id);
                let _ = self
                    .run(|mut conn| async move { conn.del::<_, i64>(key).await })
                    .await;
                Err(InsertUserError::UsernameTaken)
            }
            Err(e) => {
                // Give the name back so a retry can succeed; best effort, and only if it
                // is still ours (otherwise the claim's expiry does it).
                let script = &*RELEASE_USERNAME;
                let _ = self
                    .run(|mut conn| async move {
                        script
                            .key(name_key)
                            .arg(id)
                            .invoke_async::<i64>(&mut conn)
                            .await
                    })
                    .await;
                Err(e.into())
            }
        }
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let key = username_key(username);
        let id: Option<String> = self
            .run(|mut conn| async move { conn.get(key).await })
            .await?;
        let Some(id) = id else { return Ok(None) };
        let id: UserId = id.parse().map_err(corrupt)?;
        self.find_by_id(id).await
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let key = user_key(id);
        let raw: Option<String> = self
            .run(|mut conn| async move { conn.get(key).await })
            .await?;
        raw.as_deref().map(parse_user).transpose()
    }
}
