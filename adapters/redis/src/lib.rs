//! The production store: jwt-todo's store ports over Redis.
//!
//! # Layout (every key of a user shares the hash tag `{u:<user_id>}`, so it lives in one
//! cluster slot and the multi-key scripts below stay atomic under Redis Cluster)
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `username:<name>` | string | user id; claimed with `SET NX` (the one cross-slot write) | never |
//! | `{u:<uid>}:user` | string | the user record (JSON) | never |
//! | `{u:<uid>}:session:<sid>` | hash | `refresh_jti`, `created_at`, `refreshed_at`, `expires_at`, `user_agent` | at the refresh token's `exp` |
//! | `{u:<uid>}:sessions` | sorted set | session ids scored by expiry, to list and revoke them | with the last session |
//! | `{u:<uid>}:todos` | hash | todo id -> `<seq>\|<JSON>` | never |
//! | `{u:<uid>}:todo_seq` | string | insertion counter that orders the list | never |
//! | `{u:<uid>}:phone_code` | hash | the pending phone code: number, HMAC digest, expiry, attempts (see `phone`) | at the code's expiry |
//! | `{u:<uid>}:sms:hour`, `:sms:day`, `:sms:cooldown` | string | SMS counted against the user's caps, and the code-request cooldown | at the end of each window |
//! | `{sms:<digits>}:hour`, `{sms:<digits>}:day` | string | SMS counted against one number's caps | at the end of each window |
//! | `{outbox}:due`, `:ready`, `:rounds`, `:round` | sorted sets, hash, string | the SMS queue: ids by due time, due ids by fair round, each user's last round, the current round (see `outbox`) | never |
//! | `{outbox}:messages` | hash | notification id -> JSON (kind, SMS, attempts) | removed when done |
//! | `{outbox}:dead`, `{outbox}:dead_at` | hash, sorted set | notification id -> JSON (notification, last error), and when it failed | trimmed by age and count |
//! | `{outbox}:sent:<id>` | string | the provider's receipt (`message_uuid`) | 7 days |
//! | `{login:<client>}:pair:<name>` | string | failed logins of one username from one client (`~` for a malformed name) | at the end of its window |
//! | `{login:<client>}:client` | string | failed logins of any username from one client | at the end of its window |
//!
//! `<client>` is an IPv4 address or an IPv6 /64 (`2001:db8::/64`); both counters of a client
//! share its hash tag, so one script checks and counts them atomically.
//!
//! Every script and MULTI/EXEC declares each key it touches in `KEYS`, all in one slot, so
//! the same code runs on Redis Cluster (see `every_multi_key_step_stays_in_one_cluster_slot`).
//! The username is claimed with an expiry and made permanent after the user record is
//! written, so a crash in between never locks a name for good.
//!
//! The per-request check is one `EXISTS` on the session key: its TTL does the expiry.
//! Rotation, reuse detection and revocation are Lua scripts, one atomic step each, never
//! a lock or a `WATCH` loop.
//!
//! # Failures
//! Every command runs under [`RedisStoreConfig::command_timeout`]. A timeout, a refused or
//! dropped connection or an exhausted pool is [`StoreError::Unavailable`] (the API answers
//! 503 and the client may retry); the pool reconnects by itself when Redis is back.

use std::time::Duration;

use application::ports::{
    ActiveUser, Admission, InsertUserError, LoginAttempt, LoginThrottle, Rotation, RotationOutcome,
    SessionStore, Settlement, StoreError, ThrottleLimits, TodoRepository, UserRepository,
};
use async_trait::async_trait;
use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};
use domain::{
    PasswordHash, PhoneNumber, Session, SessionId, Timestamp, Todo, TodoId, TodoTitle, TokenId,
    User, UserId, Username,
};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

mod outbox;
mod phone;

#[derive(Clone, Debug)]
pub struct RedisStoreConfig {
    /// Longest any one store operation may take, connection included.
    pub command_timeout: Duration,
    /// Connections in the pool. Each is multiplexed, so a few serve many requests.
    pub pool_size: usize,
}

impl Default for RedisStoreConfig {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_millis(500),
            pool_size: 16,
        }
    }
}

/// Every store port over Redis.
///
/// Two kinds of connection, as the design asks: every command, script and MULTI/EXEC
/// pipeline goes through one shared multiplexed connection that pipelines concurrent
/// commands and reconnects by itself, so no request pays for a checkout; the deadpool pool
/// hands out connections of their own, whose checkout costs a `PING` round trip, for what
/// must not share one (blocking reads, long transactions: none today; the readiness check
/// keeps it answering).
///
/// Three deployments, one code path (the private `Shared` enum is the only switch): one Redis
/// ([`RedisStore::new`], `ConnectionManager` plus the pool), a Redis Cluster
/// ([`RedisStore::cluster`], a `ClusterConnection`, no pool) and a Redis watched by
/// Sentinel ([`RedisStore::sentinel`], a multiplexed connection to the current master,
/// no pool).
pub struct RedisStore {
    /// Connections of their own; standalone mode only (nothing needs one under Cluster or
    /// Sentinel).
    pool: Option<Pool>,
    fast: Shared,
    timeout: Duration,
    scripts: Scripts,
}

/// The state of the connection pool, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    /// The most connections the pool will open.
    pub max_size: usize,
    /// Connections open now, in use or idle.
    pub size: usize,
    /// Idle connections ready to be handed out.
    pub available: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("RedisStore")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The one shared, multiplexed connection every command goes through, whichever the
/// deployment: a single Redis (`ConnectionManager`, reconnecting), a Redis Cluster
/// (`ClusterConnection`, itself multiplexed per node, following `MOVED` and failovers) or
/// the current master of a Sentinel set. All are cheap to clone (a handle or an `Arc`).
#[derive(Clone)]
enum Shared {
    Standalone(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
    Sentinel(std::sync::Arc<SentinelShared>),
}

/// A Sentinel-managed Redis: the master's address is asked of the sentinels, one
/// multiplexed connection to it is shared, and it is dropped (and the master asked for
/// again) as soon as it fails or the node turns out to be a replica after a failover.
struct SentinelShared {
    sentinels: tokio::sync::Mutex<redis::sentinel::SentinelClient>,
    current: std::sync::RwLock<Option<redis::aio::MultiplexedConnection>>,
    config: redis::AsyncConnectionConfig,
}

impl SentinelShared {
    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        let mut sentinels = self.sentinels.lock().await;
        // Someone else may have connected while we waited.
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        let client = sentinels.async_get_client().await?;
        let conn = client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        if let Ok(mut current) = self.current.write() {
            *current = Some(conn.clone());
        }
        Ok(conn)
    }

    fn cached(&self) -> Option<redis::aio::MultiplexedConnection> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    /// After an error that may mean the master moved: connect afresh next time.
    fn check(&self, err: &redis::RedisError) {
        let moved = err.is_io_error()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || matches!(
                err.kind(),
                redis::ErrorKind::Server(
                    redis::ServerErrorKind::ReadOnly | redis::ServerErrorKind::MasterDown
                )
            );
        if moved && let Ok(mut current) = self.current.write() {
            *current = None;
        }
    }
}

impl redis::aio::ConnectionLike for Shared {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Standalone(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
            Self::Sentinel(shared) => Box::pin(async move {
                let mut conn = shared.connection().await?;
                let result = conn.req_packed_command(cmd).await;
                if let Err(e) = &result {
                    shared.check(e);
                }
                result
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(shared) => Box::pin(async move {
                let mut conn = shared.connection().await?;
                let result = conn.req_packed_commands(pipeline, offset, count).await;
                if let Err(e) = &result {
                    shared.check(e);
                }
                result
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
            Self::Sentinel(_) => 0,
        }
    }
}

struct Scripts {
    insert_todo: Script,
    update_todo: Script,
    create_session: Script,
    rotate: Script,
    revoke: Script,
    revoke_all: Script,
    list_sessions: Script,
    confirm_username: Script,
    release_username: Script,
    admit_login: Script,
    settle_login: Script,
}

/// The fields of a session hash in the order `session_from_fields` reads them, with ''
/// for absent ones.
/// Also: sets the key's expiry to `at` unless it already expires later. A key without expiry
/// gets `at` (Redis' `GT` treats "no expiry" as infinite, which is not what we want).
const EXTEND_EXPIRY: &str = r#"
local function session_fields(key)
  local f = redis.call('HMGET', key, 'refresh_jti', 'previous_jti', 'created_at', 'refreshed_at', 'expires_at', 'user_agent')
  for i = 1, 6 do f[i] = f[i] or '' end
  return f
end
local function extend(key, at)
  local ttl = redis.call('TTL', key)
  if ttl == -1 then
    redis.call('EXPIREAT', key, at)
  else
    redis.call('EXPIREAT', key, at, 'GT')
  end
end
"#;

impl Scripts {
    fn new() -> Self {
        let with_extend = |body: &str| Script::new(&format!("{EXTEND_EXPIRY}\n{body}"));
        Self {
            // KEYS: todos, todo_seq. ARGV: todo id, JSON.
            insert_todo: Script::new(
                r"
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], seq .. '|' .. ARGV[2])
return seq",
            ),
            // KEYS: todos. ARGV: todo id, JSON. Keeps the insertion number.
            update_todo: Script::new(
                r"
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local seq = string.match(old, '^(%d+)|')
redis.call('HSET', KEYS[1], ARGV[1], seq .. '|' .. ARGV[2])
return 1",
            ),
            // KEYS: session, sessions. ARGV: sid, refresh_jti, created_at, refreshed_at,
            // expires_at, user_agent.
            create_session: with_extend(
                r"
redis.call('HSET', KEYS[1], 'refresh_jti', ARGV[2], 'created_at', ARGV[3],
  'refreshed_at', ARGV[4], 'expires_at', ARGV[5], 'user_agent', ARGV[6])
redis.call('EXPIREAT', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
extend(KEYS[2], ARGV[5])
return 1",
            ),
            // KEYS: session, sessions. ARGV: sid, presented, next, now, expires_at, grace
            // seconds. Returns 0 = not found, 1 = reuse detected (session deleted), or
            // {'rotated' | 'replayed', the session's fields}.
            rotate: with_extend(
                r"
local current = redis.call('HGET', KEYS[1], 'refresh_jti')
if not current then return 0 end
if current ~= ARGV[2] then
  local previous = redis.call('HGET', KEYS[1], 'previous_jti')
  local refreshed = tonumber(redis.call('HGET', KEYS[1], 'refreshed_at'))
  local grace = tonumber(ARGV[6])
  if grace > 0 and previous == ARGV[2] and tonumber(ARGV[4]) - refreshed <= grace then
    return {'replayed', session_fields(KEYS[1])}
  end
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
redis.call('HSET', KEYS[1], 'refresh_jti', ARGV[3], 'previous_jti', ARGV[2],
  'refreshed_at', ARGV[4], 'expires_at', ARGV[5])
redis.call('EXPIREAT', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
extend(KEYS[2], ARGV[5])
return {'rotated', session_fields(KEYS[1])}",
            ),
            // KEYS: session, sessions. ARGV: sid.
            revoke: Script::new(
                r"
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])",
            ),
            // KEYS: sessions, then the session key of each member read just before.
            // ARGV: sid to keep ('' for none), then the sid of each of those keys.
            // Every key it touches is declared (Redis Cluster routes and checks by KEYS),
            // all under the user's hash tag. Returns -1, changing nothing, when the set
            // holds a member the caller did not declare (a login in between): read again.
            revoke_all: Script::new(
                r"
local declared = {}
for i = 2, #KEYS do declared[ARGV[i]] = true end
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if sid ~= ARGV[1] and not declared[sid] then return -1 end
end
local ended = 0
for i = 2, #KEYS do
  if ARGV[i] ~= ARGV[1] then
    ended = ended + redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return ended",
            ),
            // KEYS: sessions, then the session key of each member read just before.
            // ARGV: now, then the sid of each of those keys. Every key declared, as above.
            // Returns the id and 6 fields per live session.
            list_sessions: with_extend(
                r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    table.insert(out, ARGV[i])
    for _, field in ipairs(session_fields(KEYS[i])) do table.insert(out, field) end
  end
end
return out",
            ),
            // KEYS: username. ARGV: user id. Makes a claim permanent if it is still ours
            // (or claims the name again if the claim lapsed and nobody took it): 1, else 0.
            confirm_username: Script::new(
                r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PERSIST', KEYS[1])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0",
            ),
            // KEYS: username. ARGV: user id. Gives the name back if it is still ours.
            release_username: Script::new(
                r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0",
            ),
            // KEYS: pair counter, client counter. ARGV: pair max, pair window (ms), client
            // max, client window (ms). Returns 0 when admitted (both counted, a new window
            // started where there was none), else the milliseconds until the full window
            // (the later one if both are full) frees, counting nothing.
            admit_login: Script::new(
                r"
local wait = 0
for i = 1, 2 do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      -- A counter without expiry would refuse forever: give it its window.
      ttl = tonumber(ARGV[2 * i])
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
    wait = math.max(wait, ttl, 1)
  end
end
if wait > 0 then return wait end
for i = 1, 2 do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
  end
end
return 0",
            ),
            // KEYS: pair counter, client counter. ARGV: 'succeeded' or 'unjudged'. Gives
            // back one count (DECR keeps the expiry; a counter back at 0 is deleted); a
            // success deletes the pair counter.
            settle_login: Script::new(
                r"
local function give_back(key)
  local count = tonumber(redis.call('GET', key) or '0')
  if count <= 1 then redis.call('DEL', key) else redis.call('DECR', key) end
end
give_back(KEYS[2])
if ARGV[1] == 'succeeded' then redis.call('DEL', KEYS[1]) else give_back(KEYS[1]) end
return 1",
            ),
        }
    }
}

fn user_key(user: UserId) -> String {
    format!("{{u:{user}}}:user")
}
fn username_key(username: &Username) -> String {
    format!("username:{username}")
}
fn todos_key(user: UserId) -> String {
    format!("{{u:{user}}}:todos")
}
fn todo_seq_key(user: UserId) -> String {
    format!("{{u:{user}}}:todo_seq")
}
fn session_key(user: UserId, session: SessionId) -> String {
    format!("{{u:{user}}}:session:{session}")
}
/// [`session_key`] for a session id as stored in the user's set.
fn session_key_of(user: UserId, session: &str) -> String {
    format!("{{u:{user}}}:session:{session}")
}
/// Read-then-delete rounds `revoke_all` tries before it reports the store busy.
const REVOKE_ALL_ROUNDS: usize = 5;
/// How long a username claim lives before registration makes it permanent: a process
/// that dies between the claim and the user record cannot lock the name for good.
const USERNAME_CLAIM_TTL_MS: u64 = 60_000;
/// Length of a session key: `{u:` + UUID + `}:session:` + UUID.
const SESSION_KEY_LEN: usize = 3 + 36 + 10 + 36;
/// [`session_key`] in a stack buffer, for the per-request check: no `String` formatted.
fn session_key_bytes(user: UserId, session: SessionId) -> [u8; SESSION_KEY_LEN] {
    let mut key = [0u8; SESSION_KEY_LEN];
    key[..3].copy_from_slice(b"{u:");
    user.as_uuid().hyphenated().encode_lower(&mut key[3..39]);
    key[39..49].copy_from_slice(b"}:session:");
    session.as_uuid().hyphenated().encode_lower(&mut key[49..]);
    key
}
fn sessions_key(user: UserId) -> String {
    format!("{{u:{user}}}:sessions")
}
/// The two throttle counters of an attempt: (pair, client). `~` stands for a malformed
/// name: it is no username character, so it cannot collide with a real one.
fn login_keys(attempt: &LoginAttempt) -> (String, String) {
    let client = attempt.client;
    let name = attempt.username.as_ref().map_or("~", |u| u.as_str());
    (
        format!("{{login:{client}}}:pair:{name}"),
        format!("{{login:{client}}}:client"),
    )
}
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Stored user record. Private to this adapter.
#[derive(Serialize, Deserialize)]
struct UserRecord {
    id: UserId,
    username: String,
    password_hash: String,
    phone: Option<String>,
    /// Absent in records written before phones were verified: they read as unverified.
    #[serde(default)]
    phone_verified: bool,
    created_at: i64,
}

impl UserRecord {
    fn from_user(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.to_string(),
            password_hash: user.password_hash.as_str().to_owned(),
            phone: user.phone.as_ref().map(|p| p.as_str().to_owned()),
            phone_verified: user.phone_verified,
            created_at: user.created_at.unix_seconds(),
        }
    }

    fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: self.id,
            username: Username::parse(&self.username).map_err(corrupt)?,
            password_hash: PasswordHash::new(self.password_hash),
            phone: self
                .phone
                .as_deref()
                .map(PhoneNumber::parse)
                .transpose()
                .map_err(corrupt)?,
            phone_verified: self.phone_verified,
            created_at: Timestamp::from_unix_seconds(self.created_at),
        })
    }
}

/// Stored todo record (after the `<seq>|` prefix).
#[derive(Serialize, Deserialize)]
struct TodoRecord {
    id: TodoId,
    title: String,
    completed: bool,
    created_at: i64,
    updated_at: i64,
}

impl TodoRecord {
    fn from_todo(todo: &Todo) -> Self {
        Self {
            id: todo.id,
            title: todo.title.as_str().to_owned(),
            completed: todo.completed,
            created_at: todo.created_at.unix_seconds(),
            updated_at: todo.updated_at.unix_seconds(),
        }
    }

    fn into_todo(self, user_id: UserId) -> Result<Todo, StoreError> {
        Ok(Todo {
            id: self.id,
            user_id,
            title: TodoTitle::parse(&self.title).map_err(corrupt)?,
            completed: self.completed,
            created_at: Timestamp::from_unix_seconds(self.created_at),
            updated_at: Timestamp::from_unix_seconds(self.updated_at),
        })
    }
}

/// Splits `<seq>|<JSON>` into its insertion number and todo.
fn parse_user(raw: &str) -> Result<User, StoreError> {
    serde_json::from_str::<UserRecord>(raw)
        .map_err(corrupt)?
        .into_user()
}

fn parse_todo(raw: &str, user: UserId) -> Result<(u64, Todo), StoreError> {
    let (seq, json) = raw
        .split_once('|')
        .ok_or_else(|| corrupt("todo record without sequence"))?;
    let seq = seq.parse().map_err(corrupt)?;
    let record: TodoRecord = serde_json::from_str(json).map_err(corrupt)?;
    Ok((seq, record.into_todo(user)?))
}

fn json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Unexpected(e.into()))
}

fn corrupt(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("corrupt record in Redis: {err}"))
}

/// Translates a Redis error at the boundary: anything that means "cannot reach Redis
/// now" is `Unavailable`; the rest is unexpected.
/// Under Cluster and during a failover that includes the transient server answers:
/// `CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN`, `LOADING`, `READONLY` (a write that reached a
/// demoted master) and a slot without a reachable node.
fn redis_error(err: redis::RedisError) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind};
    let transient = matches!(
        err.kind(),
        ErrorKind::ClusterConnectionNotFound
            | ErrorKind::MasterNameNotFoundBySentinel
            | ErrorKind::NoValidReplicasFoundBySentinel
            | ErrorKind::Server(
                ServerErrorKind::ClusterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::BusyLoading
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::Moved
                    | ServerErrorKind::Ask
            )
    );
    if transient
        || err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
    {
        StoreError::Unavailable(err.into())
    } else {
        StoreError::Unexpected(err.into())
    }
}

fn session_from_fields(
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
    })
}

impl RedisStore {
    /// Builds the pool. Connects lazily: a Redis that is down at start makes requests
    /// fail with `Unavailable` (and readiness false) until it is up, rather than
    /// stopping the server.
    ///
    /// # Errors
    /// The URL is malformed.
    pub fn new(url: &str, config: RedisStoreConfig) -> anyhow::Result<Self> {
        let mut pool_config = PoolConfig::new(config.pool_size);
        pool_config.timeouts = Timeouts {
            wait: Some(config.command_timeout),
            create: Some(config.command_timeout),
            recycle: Some(config.command_timeout),
        };
        let mut redis_config = Config::from_url(url);
        redis_config.pool = Some(pool_config);
        let pool = redis_config
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| anyhow::anyhow!("invalid REDIS_URL: {e}"))?;
        // Connects on first use, so a Redis that is down at start is not fatal; after a
        // failure it reconnects with jittered backoff on its own.
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.command_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let client =
            redis::Client::open(url).map_err(|e| anyhow::anyhow!("invalid REDIS_URL: {e}"))?;
        let fast = redis::aio::ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| anyhow::anyhow!("Redis connection manager: {e}"))?;
        Ok(Self {
            pool: Some(pool),
            fast: Shared::Standalone(fast),
            timeout: config.command_timeout,
            scripts: Scripts::new(),
        })
    }

    /// A store over a Redis Cluster, given some of its nodes (`redis://host:port`, the
    /// rest are discovered). One shared cluster connection serves every command: it keeps
    /// a multiplexed connection per node, routes each command by its key's slot, follows
    /// `MOVED`/`ASK` and refreshes the slot map after a failover. Connects in the
    /// background, so a cluster that is down at start is not fatal.
    ///
    /// # Errors
    /// No node given, or a malformed URL.
    pub fn cluster<S: AsRef<str>>(nodes: &[S], config: RedisStoreConfig) -> anyhow::Result<Self> {
        if nodes.is_empty() {
            anyhow::bail!("no cluster node given");
        }
        let client = redis::cluster::ClusterClient::builder(
            nodes
                .iter()
                .map(|n| n.as_ref().to_owned())
                .collect::<Vec<_>>(),
        )
        .connection_timeout(config.command_timeout)
        .response_timeout(config.command_timeout)
        // Retries happen inside the command timeout: a failover answers 503 until the
        // replica is promoted, then the refreshed slot map routes to it.
        .retries(2)
        .min_retry_wait(20)
        .max_retry_wait(200)
        .build()
        .map_err(|e| anyhow::anyhow!("invalid cluster node URL: {e}"))?;
        let cluster_config = redis::cluster::ClusterConfig::new()
            .set_connection_timeout(config.command_timeout)
            .set_response_timeout(config.command_timeout);
        let fast = client.get_pending_async_connection_with_config(cluster_config);
        Ok(Self {
            pool: None,
            fast: Shared::Cluster(fast),
            timeout: config.command_timeout,
            scripts: Scripts::new(),
        })
    }

    /// A store over a Redis watched by Sentinel: the sentinels (`redis://host:26379`) are
    /// asked for the current master of `master_name`; one multiplexed connection to it is
    /// shared, and replaced (the sentinels asked again) when it fails or the node has
    /// become a replica, so the store follows a failover. A password in the first
    /// sentinel URL is used for the data nodes too. Connects on first use.
    ///
    /// # Errors
    /// No sentinel given, or a malformed URL.
    pub fn sentinel<S: AsRef<str>>(
        sentinels: &[S],
        master_name: &str,
        config: RedisStoreConfig,
    ) -> anyhow::Result<Self> {
        use redis::IntoConnectionInfo;
        let infos = sentinels
            .iter()
            .map(|s| s.as_ref().into_connection_info())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("invalid sentinel URL: {e}"))?;
        let first = infos
            .first()
            .ok_or_else(|| anyhow::anyhow!("no sentinel given"))?;
        let node_info = redis::sentinel::SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(first.redis_settings().clone());
        let client = redis::sentinel::SentinelClient::build(
            infos,
            master_name.to_owned(),
            Some(node_info),
            redis::sentinel::SentinelServerType::Master,
        )
        .map_err(|e| anyhow::anyhow!("invalid sentinel configuration: {e}"))?;
        let shared = SentinelShared {
            sentinels: tokio::sync::Mutex::new(client),
            current: std::sync::RwLock::new(None),
            // Below the command timeout, so a dead master's connection fails (and is
            // dropped) before the caller gives up on the command.
            config: redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.command_timeout * 4 / 5))
                .set_response_timeout(Some(config.command_timeout * 4 / 5)),
        };
        Ok(Self {
            pool: None,
            fast: Shared::Sentinel(std::sync::Arc::new(shared)),
            timeout: config.command_timeout,
            scripts: Scripts::new(),
        })
    }

    /// `work`, or `Unavailable` once the command timeout has passed.
    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(anyhow::anyhow!(
                    "redis did not answer within {:?}",
                    self.timeout
                )))
            })
    }

    /// Runs `op` on the shared multiplexed connection under the command timeout.
    /// Safe for everything this store sends: single commands, scripts (`EVALSHA`, which
    /// loads the script on `NOSCRIPT`) and atomic pipelines, which redis-rs writes as one
    /// unit that no other caller's command can split.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Shared) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.fast.clone();
        self.bounded(async move { op(conn).await.map_err(redis_error) })
            .await
    }

    /// The session ids in a user's set.
    async fn session_ids(&self, user: UserId) -> Result<Vec<String>, StoreError> {
        let set = sessions_key(user);
        self.run(|mut conn| async move { conn.zrange(set, 0, -1).await })
            .await
    }

    /// The connection pool's state now; `None` under Cluster and Sentinel, which have no
    /// pool.
    pub fn pool_usage(&self) -> Option<PoolUsage> {
        self.pool.as_ref().map(|pool| {
            let status = pool.status();
            PoolUsage {
                max_size: status.max_size,
                size: status.size,
                available: status.available,
                waiting: status.waiting,
            }
        })
    }

    /// Runs `op` on a connection of its own from the pool under the command timeout.
    async fn run_pooled<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(deadpool_redis::Connection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let work = async {
            let pool = self.pool.as_ref().ok_or_else(|| {
                StoreError::Unexpected(anyhow::anyhow!("no connection pool in cluster mode"))
            })?;
            let conn = pool
                .get()
                .await
                .map_err(|e| StoreError::Unavailable(anyhow::anyhow!("redis pool: {e}")))?;
            op(conn).await.map_err(redis_error)
        };
        self.bounded(work).await
    }
}

#[async_trait]
impl UserRepository for RedisStore {
    /// The username index is the one write outside the user's slot, so registration is
    /// three steps, each safe if the next never happens: claim the name with an expiry
    /// (`SET NX PX`), write the user record under the user's tag, make the claim
    /// permanent. A process that dies in between leaves a claim that lapses by itself
    /// within `USERNAME_CLAIM_TTL_MS` (and at worst an unreachable user record under a
    /// fresh random id), never a name locked for good.
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
            return Err(InsertUserError::UsernameTaken);
        }
        let stored = self
            .run(|mut conn| {
                let key = user_key(user.id);
                async move { conn.set::<_, _, ()>(key, record).await }
            })
            .await;
        let confirmed = match stored {
            Ok(()) => {
                let script = &self.scripts.confirm_username;
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
                let script = &self.scripts.release_username;
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

#[async_trait]
impl TodoRepository for RedisStore {
    async fn insert(&self, todo: &Todo) -> Result<(), StoreError> {
        let record = json(&TodoRecord::from_todo(todo))?;
        let script = &self.scripts.insert_todo;
        let (todos, seq) = (todos_key(todo.user_id), todo_seq_key(todo.user_id));
        let id = todo.id.to_string();
        self.run(|mut conn| async move {
            script
                .key(todos)
                .key(seq)
                .arg(id)
                .arg(record)
                .invoke_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(|_| ())
    }

    async fn list(&self, user: UserId) -> Result<Vec<Todo>, StoreError> {
        let key = todos_key(user);
        let raw: Vec<String> = self
            .run(|mut conn| async move { conn.hvals(key).await })
            .await?;
        let mut todos = raw
            .iter()
            .map(|r| parse_todo(r, user))
            .collect::<Result<Vec<_>, _>>()?;
        todos.sort_by_key(|(seq, _)| *seq);
        Ok(todos.into_iter().map(|(_, todo)| todo).collect())
    }

    async fn get(&self, user: UserId, id: TodoId) -> Result<Option<Todo>, StoreError> {
        let key = todos_key(user);
        let field = id.to_string();
        let raw: Option<String> = self
            .run(|mut conn| async move { conn.hget(key, field).await })
            .await?;
        raw.map(|r| parse_todo(&r, user).map(|(_, todo)| todo))
            .transpose()
    }

    async fn update(&self, todo: &Todo) -> Result<bool, StoreError> {
        let record = json(&TodoRecord::from_todo(todo))?;
        let script = &self.scripts.update_todo;
        let key = todos_key(todo.user_id);
        let id = todo.id.to_string();
        let updated: i64 = self
            .run(|mut conn| async move {
                script
                    .key(key)
                    .arg(id)
                    .arg(record)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(updated == 1)
    }

    async fn delete(&self, user: UserId, id: TodoId) -> Result<bool, StoreError> {
        let key = todos_key(user);
        let field = id.to_string();
        let deleted: i64 = self
            .run(|mut conn| async move { conn.hdel(key, field).await })
            .await?;
        Ok(deleted == 1)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let script = &self.scripts.create_session;
        let (key, set) = (
            session_key(session.user_id, session.id),
            sessions_key(session.user_id),
        );
        let args = [
            session.id.to_string(),
            session.refresh_jti.to_string(),
            session.created_at.unix_seconds().to_string(),
            session.refreshed_at.unix_seconds().to_string(),
            session.expires_at.unix_seconds().to_string(),
            session.user_agent.clone().unwrap_or_default(),
        ];
        self.run(|mut conn| async move {
            script
                .key(key)
                .key(set)
                .arg(&args[..])
                .invoke_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(|_| ())
    }

    async fn is_active(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        let key = session_key_bytes(user, session);
        self.run(|mut conn| async move { conn.exists(&key[..]).await })
            .await
    }

    async fn active_user(
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
        if !active {
            return Ok(ActiveUser::Revoked);
        }
        match raw {
            Some(raw) => Ok(ActiveUser::Active(parse_user(&raw)?)),
            None => Ok(ActiveUser::UserGone),
        }
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError> {
        let script = &self.scripts.rotate;
        let (key, set) = (
            session_key(rotation.user_id, rotation.session_id),
            sessions_key(rotation.user_id),
        );
        let args = [
            rotation.session_id.to_string(),
            rotation.presented.to_string(),
            rotation.next.to_string(),
            rotation.now.unix_seconds().to_string(),
            rotation.expires_at.unix_seconds().to_string(),
            rotation.grace.as_secs().to_string(),
        ];
        let reply: redis::Value = self
            .run(|mut conn| async move {
                script
                    .key(key)
                    .key(set)
                    .arg(&args[..])
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
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

    async fn revoke(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        let script = &self.scripts.revoke;
        let (key, set, sid) = (
            session_key(user, session),
            sessions_key(user),
            session.to_string(),
        );
        let deleted: i64 = self
            .run(|mut conn| async move {
                script
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
        let keep = keep.map(|k| k.to_string()).unwrap_or_default();
        // Read the members, then delete them with every key declared; a login in
        // between makes the script refuse, and we read again. Logins are rare next to
        // this, so a few rounds always do.
        for _ in 0..REVOKE_ALL_ROUNDS {
            let sids = self.session_ids(user).await?;
            let mut invocation = self.scripts.revoke_all.key(sessions_key(user));
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
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "sessions kept changing during revoke_all"
        )))
    }

    async fn list(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Read the members, then their fields with every key declared (see revoke_all);
        // a login in between is simply not listed yet.
        let sids = self.session_ids(user).await?;
        let mut invocation = self.scripts.list_sessions.key(sessions_key(user));
        invocation.arg(now);
        for sid in &sids {
            invocation.key(session_key_of(user, sid)).arg(sid);
        }
        let flat: Vec<String> = self
            .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
        let mut sessions = flat
            .chunks(7)
            .map(|chunk| {
                let sid: SessionId = chunk
                    .first()
                    .ok_or_else(|| corrupt("empty session entry"))?
                    .parse()
                    .map_err(corrupt)?;
                session_from_fields(user, sid, &chunk[1..])
            })
            .collect::<Result<Vec<_>, _>>()?;
        sessions.sort_by_key(|s| (s.created_at, s.id));
        Ok(sessions)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Both kinds of connection must answer: the shared connection serves the
        // requests (and this PING makes it reconnect if needed), the pool what must not
        // share a connection. Under Cluster, every master must answer: then every slot
        // is served.
        if let Shared::Cluster(conn) = &self.fast {
            let mut conn = conn.clone();
            return self
                .bounded(async move {
                    conn.route_command(
                        redis::cmd("PING"),
                        redis::cluster_routing::RoutingInfo::MultiNode((
                            redis::cluster_routing::MultipleNodeRoutingInfo::AllMasters,
                            Some(redis::cluster_routing::ResponsePolicy::AllSucceeded),
                        )),
                    )
                    .await
                    .map_err(redis_error)
                })
                .await
                .map(|_| ());
        }
        if self.pool.is_some() {
            self.run_pooled(|mut conn| async move {
                redis::cmd("PING").query_async::<String>(&mut conn).await
            })
            .await?;
        }
        let mut fast = self.fast.clone();
        self.bounded(async move {
            redis::cmd("PING")
                .query_async::<String>(&mut fast)
                .await
                .map_err(redis_error)
        })
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl LoginThrottle for RedisStore {
    async fn admit(
        &self,
        attempt: &LoginAttempt,
        limits: &ThrottleLimits,
    ) -> Result<Admission, StoreError> {
        let script = &self.scripts.admit_login;
        let (pair, client) = login_keys(attempt);
        let args = [
            u64::from(limits.pair.max),
            millis(limits.pair.window),
            u64::from(limits.client.max),
            millis(limits.client.window),
        ];
        let wait_ms: u64 = self
            .run(|mut conn| async move {
                script
                    .key(pair)
                    .key(client)
                    .arg(&args[..])
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(match wait_ms {
            0 => Admission::Admitted,
            // Whole seconds for `Retry-After`, rounded up so a client that waits that long
            // finds the window free.
            ms => Admission::Refused {
                retry_after: Duration::from_secs(ms.div_ceil(1000)),
            },
        })
    }

    async fn settle(
        &self,
        attempt: &LoginAttempt,
        settlement: Settlement,
    ) -> Result<(), StoreError> {
        let script = &self.scripts.settle_login;
        let (pair, client) = login_keys(attempt);
        let how = match settlement {
            Settlement::Succeeded => "succeeded",
            Settlement::Unjudged => "unjudged",
        };
        self.run(|mut conn| async move {
            script
                .key(pair)
                .key(client)
                .arg(how)
                .invoke_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod key_tests {
    use domain::ids::Uuid;

    use super::*;

    /// Redis Cluster runs a script or a MULTI/EXEC only when all its keys share a slot.
    #[test]
    fn every_multi_key_step_stays_in_one_cluster_slot() {
        use redis::cluster_routing::Slot;
        let user = UserId::from_uuid(Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef));
        let session = SessionId::from_uuid(Uuid::from_u128(42));
        let user_keys = [
            user_key(user),
            todos_key(user),
            todo_seq_key(user),
            sessions_key(user),
            session_key(user, session),
            session_key_of(user, &session.to_string()),
        ];
        let slot = Slot::for_key(&user_keys[0]);
        for key in &user_keys {
            assert_eq!(Slot::for_key(key), slot, "{key}");
        }
        let other = UserId::from_uuid(Uuid::from_u128(7));
        assert_ne!(
            Slot::for_key(user_key(other)),
            slot,
            "users spread over slots"
        );
    }

    #[test]
    fn a_clients_login_counters_share_one_slot() {
        use redis::cluster_routing::Slot;
        for (ip, name) in [("203.0.113.7", Some("alice")), ("2001:db8:1:2::9", None)] {
            let attempt = LoginAttempt {
                username: name.map(|n| Username::parse(n).expect("valid")),
                client: domain::ClientAddress::from_ip(ip.parse().expect("ip")),
            };
            let (pair, client) = login_keys(&attempt);
            assert_eq!(
                Slot::for_key(&pair),
                Slot::for_key(&client),
                "{pair} {client}"
            );
        }
    }

    #[test]
    fn the_stack_session_key_is_the_formatted_one() {
        let user = UserId::from_uuid(Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8));
        let session = SessionId::from_uuid(Uuid::from_u128(u128::MAX - 7));
        assert_eq!(
            &session_key_bytes(user, session)[..],
            session_key(user, session).as_bytes()
        );
    }
}
