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
    InsertUserError, LoginAttempt, RateKey, StoreError, Unavailability, UserRepository,
};
use async_trait::async_trait;
use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};
use domain::{
    IdempotencyKey, PasswordHash, PhoneNumber, SessionId, Timestamp, User, UserId, Username,
};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

/// The source of a script of `lua/` (its files concatenated, helpers first), behind the
/// shebang that tells Redis (7+) how it may run. Redis checks `maxmemory` only until a
/// script's first write and then lets every later write through, so a script that prunes
/// before it adds would slip past a full Redis; declared flags make Redis decide before the
/// script starts:
/// - `guarded`: refused whole with `OOM` while Redis is full (everything that adds data);
/// - `freeing`: runs even then (scripts that only delete, release or read, so logging out
///   and listing keep working on a full Redis).
macro_rules! lua_source {
    (guarded: $($file:literal),+) => {
        concat!("#!lua\n", $(include_str!($file), "\n"),+)
    };
    (freeing: $($file:literal),+) => {
        concat!("#!lua flags=allow-oom\n", $(include_str!($file), "\n"),+)
    };
}

/// A script of `lua/` as [`lua_source!`] makes it, sent by its hash (`EVALSHA`).
macro_rules! lua {
    ($mode:ident: $($file:literal),+) => {
        std::sync::LazyLock::new(|| redis::Script::new(lua_source!($mode: $($file),+)))
    };
}

mod deployment;
pub use deployment::{Deployment, RedisUrl, UrlListError};
mod idempotency;
mod outbox;
mod phone;
mod sessions;
mod throttle;
mod todos;

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
    refusals: std::sync::Arc<WriteRefusals>,
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

static CONFIRM_USERNAME: std::sync::LazyLock<Script> = lua!(guarded: "lua/confirm_username.lua");
static RELEASE_USERNAME: std::sync::LazyLock<Script> = lua!(freeing: "lua/release_username.lua");

/// Every key of one account, for an operator who must delete it by hand (the server names
/// them when it refuses to start): the username index key, and a `SCAN` pattern matching
/// all of the user's own keys, which share its hash tag.
pub fn account_keys(user: UserId, username: &Username) -> (String, String) {
    (username_key(username), format!("{{u:{user}}}:*"))
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
fn todo_order_key(user: UserId) -> String {
    format!("{{u:{user}}}:todo_order")
}
fn todo_creations_key(user: UserId) -> String {
    format!("{{u:{user}}}:todo_creations")
}
/// The record of an idempotency key of a todo creation. The key is visible ASCII of
/// bounded length; the user's hash tag comes first, so it decides the slot whatever the
/// key holds.
fn todo_idempotency_key(user: UserId, key: &IdempotencyKey) -> String {
    format!("{{u:{user}}}:todo_key:{}", key.as_str())
}
/// The record of an idempotency key of a registration.
fn registration_idempotency_key(key: &IdempotencyKey) -> String {
    format!("register_key:{}", key.as_str())
}
/// A [`RateKey`]'s counter; a client's counters share its hash tag.
fn rate_key(key: &RateKey) -> String {
    match key {
        RateKey::Registration(client) => format!("{{rate:{client}}}:register"),
    }
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
/// The key readiness checks write to (one per store, shared by replicas; it expires).
const READINESS_PROBE_KEY: &str = "jwt-todo:readiness-probe";
const READINESS_PROBE_TTL: Duration = Duration::from_secs(60);
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
/// The keys of an attempt's throttle state: the pair's and the client's failure counters,
/// then their holds. `~` stands for a malformed name: it is no username character, so it
/// cannot collide with a real one; nor can `:holds`, `:` being none either.
fn login_keys(attempt: &LoginAttempt) -> [String; 4] {
    let client = attempt.client;
    let name = attempt.username.as_ref().map_or("~", |u| u.as_str());
    let pair = format!("{{login:{client}}}:pair:{name}");
    let whole = format!("{{login:{client}}}:client");
    let holds = [format!("{pair}:holds"), format!("{whole}:holds")];
    let [pair_holds, whole_holds] = holds;
    [pair, whole, pair_holds, whole_holds]
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

fn parse_user(raw: &str) -> Result<User, StoreError> {
    serde_json::from_str::<UserRecord>(raw)
        .map_err(corrupt)?
        .into_user()
}

fn json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Unexpected(e.into()))
}

fn corrupt(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("corrupt record in Redis: {err}"))
}

/// Translates a Redis error at the boundary: anything that means "Redis cannot serve this
/// now" is `Unavailable` with its [`Unavailability`] (the client gets 503 + `Retry-After`,
/// never 500); the rest is unexpected.
///
/// Unavailable: a connection refused, dropped or timed out; a server refusing the command
/// for now: `OOM` (full under `maxmemory` with `noeviction`), `BUSY` (a long script),
/// `LOADING`, `READONLY` / `MASTERDOWN` / `NOREPLICAS` (a replica, a demoted master),
/// `TRYAGAIN` / `CLUSTERDOWN` / `MOVED` / `ASK` that outlived the client's retries, or a
/// slot without a reachable node.
fn redis_error(err: redis::RedisError) -> StoreError {
    match classify(&err) {
        Some(reason) => StoreError::unavailable(reason, err),
        None => StoreError::Unexpected(err.into()),
    }
}

/// Why Redis could not serve, when it is a reason to retry later.
fn classify(err: &redis::RedisError) -> Option<Unavailability> {
    use redis::{ErrorKind, ServerErrorKind};
    // Codes redis-rs has no kind for arrive as extension errors; a script whose write was
    // refused reports the code in its message.
    let code = err.code().unwrap_or_default();
    let detail = err.detail().unwrap_or_default();
    if code == "OOM" || detail.contains("OOM command not allowed") {
        return Some(Unavailability::OutOfMemory);
    }
    if code == "BUSY" {
        return Some(Unavailability::Busy);
    }
    if code == "NOREPLICAS" {
        return Some(Unavailability::ReadOnly);
    }
    Some(match err.kind() {
        ErrorKind::Server(ServerErrorKind::BusyLoading) => Unavailability::Loading,
        ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown) => {
            Unavailability::ReadOnly
        }
        ErrorKind::ClusterConnectionNotFound
        | ErrorKind::Server(
            ServerErrorKind::ClusterDown
            | ServerErrorKind::TryAgain
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask,
        ) => Unavailability::ClusterDown,
        ErrorKind::MasterNameNotFoundBySentinel | ErrorKind::NoValidReplicasFoundBySentinel => {
            Unavailability::Unreachable
        }
        _ if err.is_timeout() => Unavailability::TimedOut,
        _ if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() => {
            Unavailability::Unreachable
        }
        _ => return None,
    })
}

/// When Redis last refused a write (out of memory, read-only, loading), so that readiness
/// can report it: a replica whose writes fail must leave the load balancer's rotation even
/// while its reads and `PING`s still succeed.
#[derive(Debug, Default)]
struct WriteRefusals {
    /// Milliseconds since the Unix epoch; 0 = never.
    last_ms: std::sync::atomic::AtomicU64,
}

/// How long a refused write keeps readiness off (the write probe of the next readiness
/// check decides after that).
const REFUSAL_MEMORY: Duration = Duration::from_secs(5);

impl WriteRefusals {
    fn note(&self, err: &StoreError) {
        if let StoreError::Unavailable(cause) = err
            && application::ports::unavailability(cause).refuses_writes()
        {
            self.last_ms
                .store(epoch_millis(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn recent(&self) -> bool {
        let last = self.last_ms.load(std::sync::atomic::Ordering::Relaxed);
        last != 0 && epoch_millis().saturating_sub(last) < millis(REFUSAL_MEMORY)
    }
}

fn epoch_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
            refusals: std::sync::Arc::default(),
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
            refusals: std::sync::Arc::default(),
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
            refusals: std::sync::Arc::default(),
        })
    }

    /// `work`, or `Unavailable` once the command timeout has passed. A refused write is
    /// remembered for readiness.
    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::unavailable(
                    Unavailability::TimedOut,
                    anyhow::anyhow!("redis did not answer within {:?}", self.timeout),
                ))
            });
        if let Err(e) = &result {
            self.refusals.note(e);
        }
        result
    }

    /// After a write whose reply was lost (it failed, but may still run: see the crate
    /// docs, "Lost replies"), sends the script `source` on the same shared connection, in
    /// the background so the caller's 503 is not delayed. On one connection Redis runs
    /// commands in the order they were sent, so it runs after the lost write if that ever
    /// runs; if the connection broke instead, the write either ran before or never will.
    ///
    /// Sent whole (`EVAL`), never by hash: its reply is likely lost too (the stall that
    /// lost the write's reply is still on), and a `NOSCRIPT` answer that nobody reads would
    /// drop it, where `EVALSHA` relies on the caller to load the script and send it again.
    /// Its result is only logged: every reconciliation also lapses on its own.
    fn reconcile_after(
        &self,
        what: &'static str,
        source: &'static str,
        keys: Vec<String>,
        args: Vec<String>,
    ) {
        let mut conn = self.fast.clone();
        let mut eval = redis::cmd("EVAL");
        eval.arg(source).arg(keys.len()).arg(keys).arg(args);
        // Long enough to outlast a stall that the lost write is waiting out too.
        let patience = self.timeout.saturating_mul(20);
        tokio::spawn(async move {
            match tokio::time::timeout(patience, eval.query_async::<i64>(&mut conn)).await {
                Ok(Ok(done)) => tracing::debug!(what, done, "reconciled a lost reply"),
                Ok(Err(e)) => {
                    tracing::debug!(what, error = %e, "no answer to a reconciliation (it still runs once Redis does)")
                }
                Err(_) => tracing::debug!(what, "no answer to a reconciliation in time"),
            }
        });
    }

    /// Can Redis take a write now? A small `SET` with an expiry, which Redis refuses when
    /// it is full (`OOM`), read-only or loading, as it would refuse the requests' writes.
    async fn probe_write(&self) -> Result<(), StoreError> {
        if self.refusals.recent() {
            return Err(StoreError::unavailable(
                Unavailability::OutOfMemory,
                anyhow::anyhow!("Redis refused a write in the last {REFUSAL_MEMORY:?}"),
            ));
        }
        self.run(|mut conn| async move {
            redis::cmd("SET")
                .arg(READINESS_PROBE_KEY)
                .arg(epoch_millis())
                .arg("PX")
                .arg(millis(READINESS_PROBE_TTL))
                .query_async::<()>(&mut conn)
                .await
        })
        .await
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

    /// Can the store serve reads and writes now? Both kinds of connection must answer: the
    /// shared connection serves the requests (and this `PING` makes it reconnect if
    /// needed), the pool what must not share a connection. Under Cluster, every master
    /// must answer: then every slot is served. Then a write must succeed: a full or
    /// read-only Redis still answers `PING`.
    async fn ready(&self) -> Result<(), StoreError> {
        if let Shared::Cluster(conn) = &self.fast {
            let mut conn = conn.clone();
            self.bounded(async move {
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
            .await?;
            return self.probe_write().await;
        }
        if self.pool.is_some() {
            self.run_pooled(|mut conn| async move {
                redis::cmd("PING").query_async::<String>(&mut conn).await
            })
            .await?;
        }
        self.run(
            |mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await },
        )
        .await?;
        self.probe_write().await
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
            let conn = pool.get().await.map_err(|e| {
                StoreError::unavailable(
                    Unavailability::Unreachable,
                    anyhow::anyhow!("redis pool: {e}"),
                )
            })?;
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
            if holder.as_deref() != Some(id.as_str()) {
                return Err(InsertUserError::UsernameTaken);
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
    fn a_clients_login_counters_and_holds_share_one_slot() {
        use redis::cluster_routing::Slot;
        for (ip, name) in [("203.0.113.7", Some("alice")), ("2001:db8:1:2::9", None)] {
            let attempt = LoginAttempt {
                id: Uuid::from_u128(1),
                username: name.map(|n| Username::parse(n).expect("valid")),
                client: domain::ClientAddress::from_ip(ip.parse().expect("ip")),
            };
            let keys = login_keys(&attempt);
            let slot = Slot::for_key(&keys[0]);
            for key in &keys {
                assert_eq!(Slot::for_key(key), slot, "{key}");
            }
            assert!(keys[2].ends_with(":holds") && keys[3].ends_with(":holds"));
        }
    }

    #[test]
    fn every_new_per_user_key_shares_the_users_slot() {
        use redis::cluster_routing::Slot;
        let user = UserId::from_uuid(Uuid::from_u128(0xfeed));
        // A key that holds braces of its own must not move the record to another slot.
        let key = IdempotencyKey::parse("{other}-key").expect("valid");
        let slot = Slot::for_key(user_key(user));
        for k in [
            todo_order_key(user),
            todo_creations_key(user),
            todo_idempotency_key(user, &key),
        ] {
            assert_eq!(Slot::for_key(&k), slot, "{k}");
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
