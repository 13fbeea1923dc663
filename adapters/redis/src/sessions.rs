//! [`SessionStore`] over Redis: one hash per session under the user's hash tag, and the
//! user's index of session ids scored by expiry (see the crate docs for the layout).
//!
//! Every write is one Lua script (see `lua/`), all sharing `session_prelude.lua`: the
//! rule of which refresh token speaks for a session (`accepts`) is written once and used
//! by rotation and by ending sessions alike. Scripts declare every key they touch; where
//! the keys depend on the index's members, the members are read first and the script
//! refuses (changing nothing) if the index changed in between, and the read is repeated.

use std::sync::LazyLock;
use std::time::Duration;

use application::ports::{
    ActiveUser, EndOutcome, Page, PresentedRefresh, Rotation, RotationOutcome, SessionCursor,
    SessionScope, SessionStore, StoreError,
};
use async_trait::async_trait;
use domain::{AuthMethods, Session, SessionId, Timestamp, TokenId, UserId};
use redis::{AsyncCommands, Script};

use crate::RedisStore;
use crate::cache::Lookup;
use crate::errors::corrupt;
use crate::keys::{
    events_key, session_key, session_key_bytes, session_key_of, sessions_key, user_key,
};
use crate::records::{parse_user, unix_now};

static CREATE: LazyLock<Script> =
    lua!(guarded: "lua/session_prelude.lua", "lua/create_session.lua");
static EVICT: LazyLock<Script> = lua!(freeing: "lua/evict_sessions.lua");
static ROTATE: LazyLock<Script> = lua!(
    guarded: "lua/session_prelude.lua",
    "lua/audit_prelude.lua",
    "lua/rotate.lua"
);
/// Sent whole after a lost rotation (see `RedisStore::reconcile_after`).
const MARK_UNANSWERED: &str = lua_source!(freeing: "lua/mark_unanswered.lua");
static END_WITH_REFRESH: LazyLock<Script> =
    lua!(freeing: "lua/session_prelude.lua", "lua/end_with_refresh.lua");
static REVOKE: LazyLock<Script> = lua!(freeing: "lua/revoke.lua");
static REVOKE_ALL: LazyLock<Script> = lua!(freeing: "lua/revoke_all.lua");
static LIST: LazyLock<Script> = lua!(freeing: "lua/session_prelude.lua", "lua/list_sessions.lua");

/// Rounds of "evict, then create" a login tries before it reports the store busy: each
/// round frees what the script asked for, so only logins racing for the last places need
/// another.
const CREATE_ROUNDS: usize = 3;
/// Read-then-delete rounds `revoke_all` tries before it reports the store busy.
const REVOKE_ALL_ROUNDS: usize = 5;

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(
        &self,
        session: &Session,
        max_sessions: u32,
    ) -> Result<Option<u64>, StoreError> {
        let (key, set, user) = (
            session_key(session.user_id, session.id),
            sessions_key(session.user_id),
            user_key(session.user_id),
        );
        let args = [
            session.id.to_string(),
            session.refresh_jti.to_string(),
            session.created_at.unix_seconds().to_string(),
            session.refreshed_at.unix_seconds().to_string(),
            session.expires_at.unix_seconds().to_string(),
            session.user_agent.clone().unwrap_or_default(),
            unix_now().to_string(),
            max_sessions.max(1).to_string(),
            session.amr.joined(),
        ];
        let mut evicted = 0;
        for _ in 0..CREATE_ROUNDS {
            let (key, set, user, args) = (key.clone(), set.clone(), user.clone(), args.clone());
            let oldest: Option<Vec<String>> = self
                .run(|mut conn| async move {
                    CREATE
                        .key(key)
                        .key(set)
                        .key(user)
                        .arg(&args[..])
                        .invoke_async(&mut conn)
                        .await
                })
                .await?;
            let Some(oldest) = oldest else {
                return Ok(None);
            };
            if oldest.is_empty() {
                return Ok(Some(evicted));
            }
            let mut invocation = EVICT.key(sessions_key(session.user_id));
            for sid in &oldest {
                invocation
                    .key(session_key_of(session.user_id, sid))
                    .arg(sid);
            }
            let ended: Result<i64, StoreError> = self
                .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
                .await;
            // Ended (or, after an error, perhaps ended): not served from this replica's
            // cache any more, whatever the answer.
            for sid in &oldest {
                // An id that does not parse: forget all of the user's, to be sure.
                drop(self.forget_on_return(session.user_id, sid.parse().ok()));
            }
            evicted += u64::try_from(ended?).unwrap_or(0);
        }
        Err(StoreError::unavailable(
            application::ports::Unavailability::Busy,
            anyhow::anyhow!("sessions kept filling up during a login"),
        ))
    }

    async fn is_active(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        if let Some(found) = self.cached_active_user(user, session).await {
            return found.map(|found| !matches!(found, ActiveUser::Revoked));
        }
        let key = session_key_bytes(user, session);
        self.run(|mut conn| async move { conn.exists(&key[..]).await })
            .await
    }

    async fn active_user(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<ActiveUser, StoreError> {
        if let Some(found) = self.cached_active_user(user, session).await {
            return found;
        }
        self.active_user_now(user, session).await
    }

    async fn active_user_now(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<ActiveUser, StoreError> {
        let session_key = session_key_bytes(user, session);
        let user_key = user_key(user);
        // One pipeline, one round trip. Not a transaction: the two reads are independent
        // and each is as fresh as a separate command would be.
        let (active, raw): (bool, Option<String>) = self
            .run(|mut conn| async move {
                redis::pipe()
                    .exists(&session_key[..])
                    .get(user_key)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        active_user_of(active, raw)
    }

    async fn refresh_holder(
        &self,
        user: UserId,
        session: SessionId,
        presented: TokenId,
    ) -> Result<ActiveUser, StoreError> {
        let session_key = session_key_bytes(user, session);
        let user_key = user_key(user);
        // One round trip, as `active_user`. A session hash exists only while the
        // session lives (it expires with it), so its `refresh_jti` answers both questions.
        let (current, raw): (Option<String>, Option<String>) = self
            .run(|mut conn| async move {
                redis::pipe()
                    .hget(&session_key[..], "refresh_jti")
                    .get(user_key)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        active_user_of(
            current.as_deref() == Some(presented.to_string().as_str()),
            raw,
        )
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError> {
        // Whatever the outcome (a reuse deletes the session; a rotation changes it, and
        // Redis would push that too), this replica holds nothing of it afterwards.
        let _forget = self.forget_on_return(rotation.user_id, Some(rotation.session_id));
        let (key, set) = (
            session_key(rotation.user_id, rotation.session_id),
            sessions_key(rotation.user_id),
        );
        let mut args = vec![
            rotation.session_id.to_string(),
            rotation.presented.to_string(),
            rotation.next.to_string(),
            rotation.now.unix_seconds().to_string(),
            rotation.expires_at.unix_seconds().to_string(),
            rotation.grace.as_secs().to_string(),
        ];
        // The trail's event rides in the same script: one round trip, and it is in the
        // trail exactly when the rotation happened.
        let stream = rotation.trail.as_ref().map(|entry| {
            args.extend(crate::audit::append_args(&entry.event, entry.retention));
            events_key(rotation.user_id)
        });
        let reply: Result<redis::Value, StoreError> = self
            .run(|mut conn| {
                let key = key.clone();
                async move {
                    let mut invocation = ROTATE.key(key);
                    invocation.key(set);
                    if let Some(stream) = stream {
                        invocation.key(stream);
                    }
                    invocation.arg(&args[..]).invoke_async(&mut conn).await
                }
            })
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                // The rotation may still run, and then its successor reached nobody: mark
                // it, so the client's retry gets that successor, not a theft verdict.
                if matches!(e, StoreError::Unavailable(_)) {
                    self.reconcile_after(
                        "rotation",
                        MARK_UNANSWERED,
                        vec![key],
                        vec![rotation.presented.to_string()],
                    );
                }
                return Err(e);
            }
        };
        match reply {
            redis::Value::Int(0) => Ok(RotationOutcome::NotFound),
            redis::Value::Int(1) => Ok(RotationOutcome::ReuseDetected),
            reply @ redis::Value::Array(_) => {
                let (outcome, fields): (String, Vec<String>) =
                    redis::from_redis_value(reply).map_err(corrupt)?;
                let session = session_from_fields(rotation.user_id, rotation.session_id, &fields)?;
                match outcome.as_str() {
                    "rotated" => Ok(RotationOutcome::Rotated(session)),
                    "replayed" => Ok(RotationOutcome::Replayed(session)),
                    other => Err(corrupt(format!("unexpected rotate outcome {other}"))),
                }
            }
            other => Err(corrupt(format!("unexpected rotate reply {other:?}"))),
        }
    }

    async fn end_with_refresh(
        &self,
        presented: &PresentedRefresh,
        scope: SessionScope,
    ) -> Result<EndOutcome, StoreError> {
        let user = presented.user_id;
        let sid = presented.session_id.to_string();
        let _forget = self.forget_on_return(user, None);
        let scope_arg = match scope {
            SessionScope::This => "this",
            SessionScope::Others => "others",
            SessionScope::All => "all",
        };
        // As revoke_all: read the members, then act with every key declared; a login in
        // between makes the script refuse, and we read again.
        for _ in 0..REVOKE_ALL_ROUNDS {
            let others: Vec<String> = match scope {
                SessionScope::This => Vec::new(),
                SessionScope::Others | SessionScope::All => self
                    .session_ids(user)
                    .await?
                    .into_iter()
                    .filter(|member| *member != sid)
                    .collect(),
            };
            let mut invocation = END_WITH_REFRESH.key(sessions_key(user));
            invocation
                .key(session_key(user, presented.session_id))
                .arg(&sid)
                .arg(presented.presented.to_string())
                .arg(presented.now.unix_seconds())
                .arg(presented.grace.as_secs())
                .arg(scope_arg);
            for member in &others {
                invocation.key(session_key_of(user, member)).arg(member);
            }
            let ended: i64 = self
                .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
                .await?;
            match ended {
                -1 => continue,
                -2 => return Ok(EndOutcome::NotFound),
                -3 => return Ok(EndOutcome::ReuseDetected),
                n => return Ok(EndOutcome::Ended(u64::try_from(n).unwrap_or(0))),
            }
        }
        Err(StoreError::unavailable(
            application::ports::Unavailability::Busy,
            anyhow::anyhow!("sessions kept changing while ending them"),
        ))
    }

    async fn revoke(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        let _forget = self.forget_on_return(user, Some(session));
        let (key, set, sid) = (
            session_key(user, session),
            sessions_key(user),
            session.to_string(),
        );
        let deleted: i64 = self
            .run(|mut conn| async move {
                REVOKE
                    .key(key)
                    .key(set)
                    .arg(sid)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(deleted == 1)
    }

    async fn revoke_all(&self, user: UserId, keep: Option<SessionId>) -> Result<u64, StoreError> {
        let _forget = self.forget_on_return(user, None);
        let keep = keep.map(|k| k.to_string()).unwrap_or_default();
        // Read the members, then delete them with every key declared; a login in
        // between makes the script refuse, and we read again. Logins are rare next to
        // this, so a few rounds always do.
        for _ in 0..REVOKE_ALL_ROUNDS {
            let sids = self.session_ids(user).await?;
            let mut invocation = REVOKE_ALL.key(sessions_key(user));
            invocation.arg(&keep);
            for sid in &sids {
                invocation.key(session_key_of(user, sid)).arg(sid);
            }
            let ended: i64 = self
                .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
                .await?;
            if ended >= 0 {
                return Ok(u64::try_from(ended).unwrap_or(0));
            }
        }
        Err(StoreError::unavailable(
            application::ports::Unavailability::Busy,
            anyhow::anyhow!("sessions kept changing during revoke_all"),
        ))
    }

    async fn list(
        &self,
        user: UserId,
        after: Option<SessionCursor>,
        limit: usize,
    ) -> Result<Page<Session, SessionCursor>, StoreError> {
        // Read the members, then their fields with every key declared (see revoke_all);
        // a login in between is simply not listed yet. The index holds at most the
        // per-user cap of sessions, and the script returns only the page.
        let sids = self.session_ids(user).await?;
        let mut invocation = LIST.key(sessions_key(user));
        invocation
            .arg(unix_now())
            .arg(after.map_or(String::new(), |a| a.created_at.unix_seconds().to_string()))
            .arg(after.map_or(String::new(), |a| a.id.to_string()))
            .arg(limit);
        for sid in &sids {
            invocation.key(session_key_of(user, sid)).arg(sid);
        }
        let flat: Vec<String> = self
            .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
        let mut sessions = flat
            .chunks(8)
            .map(|chunk| {
                let sid: SessionId = chunk
                    .first()
                    .ok_or_else(|| corrupt("empty session entry"))?
                    .parse()
                    .map_err(corrupt)?;
                session_from_fields(user, sid, &chunk[1..])
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = (sessions.len() > limit).then(|| {
            sessions.truncate(limit);
            sessions.last().map(|s| SessionCursor {
                created_at: s.created_at,
                id: s.id,
            })
        });
        Ok(Page {
            items: sessions,
            next: next.flatten(),
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.ready().await
    }
}

impl RedisStore {
    /// [`SessionStore::active_user`] through the session cache (see `cache`): a hit costs
    /// no round trip; a miss is read on the cache's link, where Redis tracks it, and kept.
    /// `None` when the cache is off or cannot vouch for its entries now (the link is not
    /// proven, or the link failed under this read): then the caller asks Redis as without
    /// a cache.
    async fn cached_active_user(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Option<Result<ActiveUser, StoreError>> {
        let cache = self.cache()?;
        let fill = match cache.lookup(user, session) {
            Lookup::Hit(profile) => return Some(Ok(ActiveUser::Active(profile))),
            Lookup::Bypass => return None,
            Lookup::Fill(fill) => fill,
        };
        let session_key = session_key_bytes(user, session);
        let user_key = user_key(user);
        let mut conn = fill.conn.clone();
        // PTTL, not EXISTS: the entry must not outlive the key. -2: no such key.
        let read = self
            .bounded(async move {
                Ok(redis::pipe()
                    .pttl(&session_key[..])
                    .get(user_key)
                    .query_async::<(i64, Option<String>)>(&mut conn)
                    .await)
            })
            .await;
        let (ttl, raw) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                cache.abandon(&fill, user, session);
                if e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal() {
                    // The link broke (and the cache emptied itself): ask on the shared
                    // connection instead.
                    return None;
                }
                return Some(Err(crate::errors::redis_error(e)));
            }
            Err(e) => {
                cache.abandon(&fill, user, session);
                return Some(Err(e));
            }
        };
        let found = active_user_of(ttl != -2, raw);
        match &found {
            Ok(ActiveUser::Active(profile)) => {
                // -1 (no expiry) cannot happen to a session key; not kept if it does.
                let ttl = u64::try_from(ttl).ok().map(Duration::from_millis);
                cache.complete(&fill, user, session, ttl, Some(profile));
            }
            _ => cache.abandon(&fill, user, session),
        }
        Some(found)
    }

    /// The session ids in a user's index.
    pub(crate) async fn session_ids(&self, user: UserId) -> Result<Vec<String>, StoreError> {
        let set = sessions_key(user);
        self.run(|mut conn| async move { conn.zrange(set, 0, -1).await })
            .await
    }
}

/// What a read of a session and its user's record found: `alive` tells whether the
/// session speaks for the token, `raw` is the user record if there is one.
fn active_user_of(alive: bool, raw: Option<String>) -> Result<ActiveUser, StoreError> {
    match (alive, raw) {
        (false, _) => Ok(ActiveUser::Revoked),
        (true, None) => Ok(ActiveUser::UserGone),
        (true, Some(raw)) => parse_user(&raw).map(ActiveUser::Active),
    }
}

pub(crate) fn session_from_fields(
    user_id: UserId,
    sid: SessionId,
    fields: &[String],
) -> Result<Session, StoreError> {
    let [
        refresh_jti,
        previous_jti,
        created_at,
        refreshed_at,
        expires_at,
        user_agent,
        amr,
    ] = fields
    else {
        return Err(corrupt("session record with missing fields"));
    };
    let number = |raw: &String| {
        raw.parse::<i64>()
            .map(Timestamp::from_unix_seconds)
            .map_err(corrupt)
    };
    let token = |raw: &String| raw.parse().map(TokenId::from_uuid).map_err(corrupt);
    Ok(Session {
        id: sid,
        user_id,
        refresh_jti: token(refresh_jti)?,
        previous_jti: (!previous_jti.is_empty())
            .then(|| token(previous_jti))
            .transpose()?,
        created_at: number(created_at)?,
        refreshed_at: number(refreshed_at)?,
        expires_at: number(expires_at)?,
        user_agent: (!user_agent.is_empty()).then(|| user_agent.clone()),
        amr: AuthMethods::from_joined(amr)
            .ok_or_else(|| corrupt("session record with unknown amr"))?,
    })
}
