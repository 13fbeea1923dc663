//! The one shared, multiplexed connection every command goes through, whichever the
//! deployment: the private switch between a single Redis, a Redis Cluster and the master of
//! a Sentinel set. Only `connection` (which builds it and checks readiness) looks inside;
//! the ports run their commands on it without knowing which deployment it is.

/// The one shared, multiplexed connection every command goes through, whichever the
/// deployment: a single Redis (`ConnectionManager`, reconnecting), a Redis Cluster
/// (`ClusterConnection`, itself multiplexed per node, following `MOVED` and failovers) or
/// the current master of a Sentinel set. All are cheap to clone (a handle or an `Arc`).
#[derive(Clone)]
pub(crate) enum Shared {
    Standalone(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
    Sentinel(std::sync::Arc<SentinelShared>),
}

/// A Sentinel-managed Redis: the master's address is asked of the sentinels, one
/// multiplexed connection to it is shared, and it is dropped (and the master asked for
/// again) as soon as it fails or the node turns out to be a replica after a failover.
pub(crate) struct SentinelShared {
    sentinels: tokio::sync::Mutex<redis::sentinel::SentinelClient>,
    current: std::sync::RwLock<Option<redis::aio::MultiplexedConnection>>,
    config: redis::AsyncConnectionConfig,
}

impl SentinelShared {
    /// Asks `sentinels` for the master on first use; connects to it with `config`.
    pub(crate) fn new(
        sentinels: redis::sentinel::SentinelClient,
        config: redis::AsyncConnectionConfig,
    ) -> Self {
        Self {
            sentinels: tokio::sync::Mutex::new(sentinels),
            current: std::sync::RwLock::new(None),
            config,
        }
    }

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
