//! Where data lives: one Redis, a Redis Cluster, a Redis watched by Sentinel, or (none of
//! them) the embedded in-memory store; and how long a Redis call may take.

use std::time::Duration;

use adapter_redis::{Deployment, RedisStoreConfig, RedisUrl, SessionCacheConfig, UrlListError};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use super::error::{ConfigError, err};
use super::values::{Span, count, secret, span_in, span_where};
use super::vars::{
    REDIS_CLUSTER_URLS, REDIS_COMMAND_TIMEOUT, REDIS_SENTINEL_MASTER, REDIS_SENTINEL_URLS,
    REDIS_URL, SESSION_CACHE_CAPACITY, SESSION_CACHE_STALENESS,
};

/// Most sessions `SESSION_CACHE_CAPACITY` may allow.
pub const MAX_SESSION_CACHE_CAPACITY: u64 = 1_000_000;

/// The store the server uses.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// `None`: the embedded in-memory store.
    pub deployment: Option<Deployment>,
    pub redis: RedisStoreConfig,
}

impl StoreSettings {
    /// The variable that configured the Redis deployment, to name it when it fails.
    pub fn variable(&self) -> Option<&'static str> {
        self.deployment.as_ref().map(|deployment| match deployment {
            Deployment::Standalone(_) => REDIS_URL,
            Deployment::Cluster(_) => REDIS_CLUSTER_URLS,
            Deployment::Sentinel { .. } => REDIS_SENTINEL_URLS,
        })
    }
}

#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// One Redis to use (`redis://[:password@]host:port[/db]`); unset (and no cluster or
    /// sentinels): the embedded in-memory store, whose data is lost on restart.
    #[arg(long, env = REDIS_URL, value_name = "URL", value_parser = secret, hide_env_values = true)]
    pub redis_url: Option<SecretString>,

    /// A Redis Cluster instead: comma-separated seed nodes
    /// (`redis://[:password@]host:port,...`); the rest are discovered.
    #[arg(long, env = REDIS_CLUSTER_URLS, value_name = "URLS", value_parser = secret, hide_env_values = true)]
    pub redis_cluster_urls: Option<SecretString>,

    /// A Redis watched by Sentinel instead: comma-separated sentinels
    /// (`redis://[:password@]host:26379,...`; the first one's password is used for the
    /// data nodes too). Needs REDIS_SENTINEL_MASTER.
    #[arg(long, env = REDIS_SENTINEL_URLS, value_name = "URLS", value_parser = secret, hide_env_values = true)]
    pub redis_sentinel_urls: Option<SecretString>,

    /// The master name the sentinels monitor. Needs REDIS_SENTINEL_URLS.
    #[arg(long, env = REDIS_SENTINEL_MASTER, value_name = "NAME")]
    pub redis_sentinel_master: Option<String>,

    /// Longest one Redis call may take before the request fails closed with 503 (50ms to
    /// 10s).
    #[arg(
        long,
        env = REDIS_COMMAND_TIMEOUT,
        value_name = "DURATION",
        default_value_t = Span(RedisStoreConfig::default().command_timeout),
        value_parser = span_in(Duration::from_millis(50), Duration::from_secs(10), "50ms and 10s"),
    )]
    pub redis_command_timeout: Span,

    /// The session cache (one Redis only, REDIS_URL): how old the last proof of its
    /// invalidation link may be for a cached session to be served, i.e. the longest a
    /// logout through another replica can go unseen here if that link stalls; 0 turns the
    /// cache off (every request asks Redis). 0, or 4ms to 1s.
    #[arg(
        long,
        env = SESSION_CACHE_STALENESS,
        value_name = "DURATION",
        default_value_t = Span(SessionCacheConfig::default().staleness),
        value_parser = span_where(
            |d| d.is_zero() || (Duration::from_millis(4)..=Duration::from_secs(1)).contains(&d),
            "must be 0 (off) or between 4ms and 1s",
        ),
    )]
    pub session_cache_staleness: Span,

    /// Most sessions the session cache holds (100 to 1000000); past it, a new entry
    /// replaces another user's.
    #[arg(long, env = SESSION_CACHE_CAPACITY, value_name = "N",
        default_value_t = SessionCacheConfig::default().capacity,
        value_parser = count::<usize, 100, MAX_SESSION_CACHE_CAPACITY>)]
    pub session_cache_capacity: usize,
}

impl StoreArgs {
    /// # Errors
    /// More than one deployment, half a Sentinel setup, or a bad URL list.
    pub fn build(self) -> Result<StoreSettings, ConfigError> {
        let redis = RedisStoreConfig {
            command_timeout: self.redis_command_timeout.0,
            cache: SessionCacheConfig {
                staleness: self.session_cache_staleness.0,
                capacity: self.session_cache_capacity,
            },
            ..RedisStoreConfig::default()
        };
        let list = |variable: &'static str, raw: &SecretString| {
            RedisUrl::parse_list(raw.expose_secret())
                .map_err(|e: UrlListError| err(variable, e.to_string()))
        };
        let sentinel_set =
            self.redis_sentinel_urls.is_some() || self.redis_sentinel_master.is_some();
        let deployment = match (self.redis_url, self.redis_cluster_urls) {
            (Some(_), Some(_)) => {
                return Err(err(
                    REDIS_CLUSTER_URLS,
                    "set either REDIS_URL (one Redis) or REDIS_CLUSTER_URLS (a cluster), not both",
                ));
            }
            (Some(_), None) | (None, Some(_)) if sentinel_set => {
                return Err(err(
                    REDIS_SENTINEL_URLS,
                    "set one of REDIS_URL, REDIS_CLUSTER_URLS or REDIS_SENTINEL_URLS, not several",
                ));
            }
            (Some(url), None) => Some(Deployment::Standalone(RedisUrl::new(url.expose_secret()))),
            (None, Some(nodes)) => Some(Deployment::Cluster(list(REDIS_CLUSTER_URLS, &nodes)?)),
            (None, None) => match (self.redis_sentinel_urls, self.redis_sentinel_master) {
                (None, None) => None,
                (Some(_), None) => {
                    return Err(err(
                        REDIS_SENTINEL_MASTER,
                        "is required with REDIS_SENTINEL_URLS (the master name the sentinels watch)",
                    ));
                }
                (None, Some(_)) => {
                    return Err(err(
                        REDIS_SENTINEL_URLS,
                        "is required with REDIS_SENTINEL_MASTER",
                    ));
                }
                (Some(sentinels), Some(master)) => Some(Deployment::Sentinel {
                    sentinels: list(REDIS_SENTINEL_URLS, &sentinels)?,
                    master: master.trim().to_owned(),
                }),
            },
        };
        Ok(StoreSettings { deployment, redis })
    }
}
