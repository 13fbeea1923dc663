//! [`RedisStore`]: the deployments it connects to, every command bounded by the command
//! timeout, the background reconciliation of lost replies, readiness, and the memory of
//! writes Redis refused.

use std::time::Duration;

use application::ports::{StoreError, Unavailability};
use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};

use crate::cache::{ForgetOnReturn, SessionCache, SessionCacheConfig, SessionCacheStats};
use crate::deployment::{Deployment, RedisUrl};
use crate::errors::redis_error;
use crate::records::millis;
use crate::shared::{SentinelShared, Shared};

/// How [`RedisStore`] uses Redis, whichever the deployment.
#[derive(Clone, Debug)]
pub struct RedisStoreConfig {
    /// Longest any one store operation may take, connection included.
    pub command_timeout: Duration,
    /// Connections in the pool. Each is multiplexed, so a few serve many requests.
    pub pool_size: usize,
    /// The session cache (single Redis only; see `cache`).
    pub cache: SessionCacheConfig,
}

impl Default for RedisStoreConfig {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_millis(500),
            pool_size: 16,
            cache: SessionCacheConfig::default(),
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
    /// The session cache and the client its link connects with; standalone mode only.
    cache: Option<(std::sync::Arc<SessionCache>, redis::Client)>,
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

/// The key readiness checks write to (one per store, shared by replicas; it expires).
const READINESS_PROBE_KEY: &str = "jwt-todo:readiness-probe";

const READINESS_PROBE_TTL: Duration = Duration::from_secs(60);

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

/// Under Cluster and Sentinel the session cache is off (see `cache`): say so once, if it
/// was asked for.
fn warn_cache_off(config: &RedisStoreConfig, deployment: &str) {
    if config.cache.enabled() {
        tracing::warn!(
            deployment,
            "session cache off: its invalidation link is proven only against a single Redis (REDIS_URL); every request asks Redis"
        );
    }
}

fn epoch_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RedisStore {
    /// The store for `deployment`: [`RedisStore::new`], [`RedisStore::cluster`] or
    /// [`RedisStore::sentinel`]. Connects lazily, as they do.
    ///
    /// # Errors
    /// A URL the driver refuses.
    pub fn connect(deployment: &Deployment, config: RedisStoreConfig) -> anyhow::Result<Self> {
        fn exposed(urls: &[RedisUrl]) -> Vec<&str> {
            urls.iter().map(RedisUrl::expose).collect()
        }
        match deployment {
            Deployment::Standalone(url) => Self::new(url.expose(), config),
            Deployment::Cluster(nodes) => Self::cluster(&exposed(nodes), config),
            Deployment::Sentinel { sentinels, master } => {
                Self::sentinel(&exposed(sentinels), master, config)
            }
        }
    }

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
        let cache = config.cache.enabled().then(|| {
            let cache = std::sync::Arc::new(SessionCache::new(config.cache));
            // Connects now if there is a runtime, else with the first request.
            cache.start(&client, config.command_timeout);
            (cache, client.clone())
        });
        let fast = redis::aio::ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| anyhow::anyhow!("Redis connection manager: {e}"))?;
        Ok(Self {
            pool: Some(pool),
            fast: Shared::Standalone(fast),
            timeout: config.command_timeout,
            refusals: std::sync::Arc::default(),
            cache,
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
        warn_cache_off(&config, "Redis Cluster");
        Ok(Self {
            pool: None,
            fast: Shared::Cluster(fast),
            timeout: config.command_timeout,
            refusals: std::sync::Arc::default(),
            cache: None,
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
        let shared = SentinelShared::new(
            client,
            // Below the command timeout, so a dead master's connection fails (and is
            // dropped) before the caller gives up on the command.
            redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.command_timeout * 4 / 5))
                .set_response_timeout(Some(config.command_timeout * 4 / 5)),
        );
        warn_cache_off(&config, "Sentinel");
        Ok(Self {
            pool: None,
            fast: Shared::Sentinel(std::sync::Arc::new(shared)),
            timeout: config.command_timeout,
            refusals: std::sync::Arc::default(),
            cache: None,
        })
    }

    /// The session cache, started if it was not yet (the store may have been built outside
    /// the runtime); `None` when off.
    pub(crate) fn cache(&self) -> Option<&SessionCache> {
        let (cache, client) = self.cache.as_ref()?;
        cache.start(client, self.timeout);
        Some(cache)
    }

    /// Forgets, when dropped at the end of a write, the user's cached session `session`
    /// (`None`: all of them, and the profile); see `cache::ForgetOnReturn`.
    pub(crate) fn forget_on_return(
        &self,
        user: domain::UserId,
        session: Option<domain::SessionId>,
    ) -> ForgetOnReturn<'_> {
        ForgetOnReturn {
            cache: self.cache.as_ref().map(|(cache, _)| &**cache),
            user,
            session,
        }
    }

    /// The session cache's counters; `None` when it is off (configured so, or under
    /// Cluster or Sentinel).
    pub fn session_cache(&self) -> Option<SessionCacheStats> {
        self.cache.as_ref().map(|(cache, _)| cache.stats())
    }

    /// `work`, or `Unavailable` once the command timeout has passed. A refused write is
    /// remembered for readiness.
    pub(crate) async fn bounded<T>(
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

    /// After a write whose reply was lost (it failed, but may still run: see
    /// `application::ports`, "Lost replies"), sends the script `source` on the same shared
    /// connection, in the background so the caller's 503 is not delayed. On one connection
    /// Redis runs commands in the order they were sent, so it runs after the lost write if
    /// that ever runs; if the connection broke instead, the write either ran before or never
    /// will.
    ///
    /// Sent whole (`EVAL`), never by hash: its reply is likely lost too (the stall that
    /// lost the write's reply is still on), and a `NOSCRIPT` answer that nobody reads would
    /// drop it, where `EVALSHA` relies on the caller to load the script and send it again.
    /// Its result is only logged: every reconciliation also lapses on its own.
    pub(crate) fn reconcile_after(
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
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
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
    pub(crate) async fn ready(&self) -> Result<(), StoreError> {
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
