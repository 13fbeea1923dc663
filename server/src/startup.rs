//! Building and running the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use adapter_argon2::{Argon2Hasher, HmacCodeHasher};
use adapter_jwt::{JwtCodec, JwtConfig};
use adapter_memory::{MemoryStore, RandomIds, SystemClock};
use adapter_redis::{RedisStore, RedisStoreConfig};
use adapter_vonage::{LogNotifier, VonageConfig, VonageNotifier};
use anyhow::Context;
use application::ports::{
    Clock, IdempotencyStore, InsertUserError, LoginThrottle, Notifier, Outbox, PasswordHasher,
    PhoneVerifications, RateLimiter, SessionStore, SmsQuota, TodoRepository, UserRepository,
};
use application::usecases::{
    DeliverNotification, DeliveryOutcome, DeliveryPolicy, SmsKind, SmsOutcome, SmsStats,
};
use application::{Ports, Services, TokenPolicy};
use domain::{PasswordInput, User, UserId, Username};
use poem::Response;
use poem::endpoint::BoxEndpoint;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};
use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::config::{Config, Environment};
use crate::serve::{ConnectionLimits, ConnectionMetrics};

/// How often the embedded store returns the memory of expired sessions.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// The seed tutorial's sample user, created in development only.
pub const SAMPLE_USERNAME: &str = "username";
pub const SAMPLE_PASSWORD: &str = "password";

/// A built server: adapters wired, listener bound.
pub struct Application {
    local_addr: SocketAddr,
    listener: tokio::net::TcpListener,
    app: BoxEndpoint<'static, Response>,
    /// Deadlines and the cap (already clamped by the file limit) for every connection.
    connections: ConnectionLimits,
    connection_metrics: ConnectionMetrics,
    notifications: Notifications,
    worker: WorkerTelemetry,
    /// SMS delivered at once by the notification worker.
    notify_concurrency: usize,
    /// How long in-flight requests get to finish after a shutdown signal.
    shutdown_grace: Duration,
}

/// What the notification worker reports: outcome counters, store errors, and whether it
/// runs (a readiness condition).
#[derive(Clone, Debug)]
struct WorkerTelemetry {
    outcomes: IntCounterVec,
    store_errors: IntCounter,
    running: Arc<AtomicBool>,
    running_gauge: IntGauge,
}

impl WorkerTelemetry {
    fn register(ops: &mut adapter_http::Operations) -> anyhow::Result<Self> {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "jwt_todo_notifications_total",
                "Notification worker steps by outcome: sent, retried, dead_lettered, skipped, waiting.",
            ),
            &["outcome"],
        )?;
        let running_gauge = IntGauge::new(
            "jwt_todo_notification_worker_running",
            "1 while the notification worker runs, else 0.",
        )?;
        ops.registry.register(Box::new(outcomes.clone()))?;
        ops.registry.register(Box::new(running_gauge.clone()))?;
        let running = Arc::new(AtomicBool::new(false));
        let probe = Arc::clone(&running);
        ops.readiness.push((
            "notification worker",
            Arc::new(move || probe.load(Ordering::Acquire)),
        ));
        Ok(Self {
            outcomes,
            store_errors: ops
                .metrics
                .store_errors
                .with_label_values(&["notification_worker"]),
            running,
            running_gauge,
        })
    }

    fn record(&self, outcome: &Result<DeliveryOutcome, application::usecases::DeliveryError>) {
        let label = match outcome {
            Ok(DeliveryOutcome::Idle) => return,
            Ok(DeliveryOutcome::Sent { .. }) => "sent",
            Ok(DeliveryOutcome::Retrying { .. }) => "retried",
            Ok(DeliveryOutcome::DeadLettered { .. }) => "dead_lettered",
            Ok(DeliveryOutcome::Skipped { .. }) => "skipped",
            Ok(DeliveryOutcome::Waiting { .. }) => "waiting",
            Err(_) => {
                self.store_errors.inc();
                return;
            }
        };
        self.outcomes.with_label_values(&[label]).inc();
    }
}

/// `jwt_todo_redis_pool_connections{state}`: the deadpool pool's state, read at each
/// scrape (so nothing runs between scrapes).
struct RedisPoolCollector {
    store: std::sync::Weak<RedisStore>,
    gauges: IntGaugeVec,
}

impl RedisPoolCollector {
    fn register(store: &Arc<RedisStore>, ops: &mut adapter_http::Operations) -> anyhow::Result<()> {
        let gauges = IntGaugeVec::new(
            Opts::new(
                "jwt_todo_redis_pool_connections",
                "Redis connection pool (standalone mode): max, open, idle, and callers waiting.",
            ),
            &["state"],
        )?;
        ops.registry.register(Box::new(Self {
            store: Arc::downgrade(store),
            gauges,
        }))?;
        Ok(())
    }
}

impl prometheus::core::Collector for RedisPoolCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauges.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let usage = self.store.upgrade().and_then(|store| store.pool_usage());
        if let Some(usage) = usage {
            for (state, value) in [
                ("max", usage.max_size),
                ("open", usage.size),
                ("idle", usage.available),
                ("waiting", usage.waiting),
            ] {
                self.gauges
                    .with_label_values(&[state])
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        self.gauges.collect()
    }
}

/// `jwt_todo_sms_total{kind,outcome}`: what the SMS gate decided (queued, or skipped and
/// why), from the use cases' counters, read at each scrape.
struct SmsCollector {
    stats: Arc<SmsStats>,
    counters: IntCounterVec,
}

impl SmsCollector {
    fn register(stats: Arc<SmsStats>, ops: &mut adapter_http::Operations) -> anyhow::Result<()> {
        let counters = IntCounterVec::new(
            Opts::new(
                "jwt_todo_sms_total",
                "SMS by kind (todo_created, phone_code) and outcome: queued, or skipped or refused for unverified, country, cooldown, user_cap, number_cap.",
            ),
            &["kind", "outcome"],
        )?;
        ops.registry.register(Box::new(Self { stats, counters }))?;
        Ok(())
    }
}

impl prometheus::core::Collector for SmsCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.counters.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        for kind in SmsKind::ALL {
            for outcome in SmsOutcome::ALL {
                let now = self.stats.get(kind, outcome);
                if now == 0 {
                    // As every labelled counter here: it appears with its first event.
                    continue;
                }
                let counter = self
                    .counters
                    .with_label_values(&[kind.as_str(), outcome.as_str()]);
                // Only this collector moves the counter, so it catches up by the difference.
                counter.inc_by(now.saturating_sub(counter.get()));
            }
        }
        self.counters.collect()
    }
}

/// Marks the worker as running while alive; dropped when the worker ends, panics included.
struct RunningGuard(WorkerTelemetry);

impl RunningGuard {
    fn new(telemetry: WorkerTelemetry) -> Self {
        telemetry.running.store(true, Ordering::Release);
        telemetry.running_gauge.set(1);
        Self(telemetry)
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
        self.0.running_gauge.set(0);
    }
}

/// Handles on the SMS outbox and the worker that empties it.
#[derive(Clone)]
pub struct Notifications {
    pub outbox: Arc<dyn Outbox>,
    pub delivery: Arc<DeliverNotification>,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Builds every adapter from `config` and binds the listener.
    ///
    /// # Errors
    /// An adapter refused its configuration, or the address could not be bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let tokens = JwtCodec::new(JwtConfig {
            access_signing: config.access_signing.clone(),
            access_previous: config.access_previous.clone(),
            refresh_secret: config.refresh_secret.clone(),
            refresh_secrets_previous: config.refresh_secrets_previous.clone(),
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            leeway: config.jwt_leeway,
        })
        .context("JWT configuration")?;
        tracing::info!(
            access_alg = ?tokens.access_algorithm(),
            access_kid = tokens.access_key_id(),
            access_kids_accepted = ?tokens.access_key_ids(),
            refresh_kid = tokens.refresh_key_id(),
            refresh_kids_accepted = ?tokens.refresh_key_ids(),
            "token keys"
        );
        let jwks = published_keys(&tokens);
        let hasher: Arc<dyn PasswordHasher> =
            Arc::new(Argon2Hasher::new().context("password hasher")?);

        let redis_config = RedisStoreConfig {
            command_timeout: config.redis_command_timeout,
            ..RedisStoreConfig::default()
        };
        let redis = match (&config.redis_url, &config.redis_cluster_urls) {
            (Some(url), _) => Some(
                RedisStore::new(url.expose_secret(), redis_config.clone()).context("REDIS_URL")?,
            ),
            (None, Some(nodes)) => {
                let nodes: Vec<&str> = nodes.iter().map(|n| n.expose_secret()).collect();
                Some(
                    RedisStore::cluster(&nodes, redis_config.clone())
                        .context("REDIS_CLUSTER_URLS")?,
                )
            }
            (None, None) => match &config.redis_sentinel {
                Some(sentinel) => {
                    let urls: Vec<&str> = sentinel.urls.iter().map(|u| u.expose_secret()).collect();
                    Some(
                        RedisStore::sentinel(&urls, &sentinel.master, redis_config.clone())
                            .context("REDIS_SENTINEL_URLS")?,
                    )
                }
                None => None,
            },
        };
        let mut redis_store = None;
        let stores = match redis {
            Some(store) => {
                let store = Arc::new(store);
                redis_store = Some(Arc::clone(&store));
                // Redis may come up after us: serve 503s (readiness false) until it does.
                match store.ping().await {
                    Ok(()) => tracing::info!("store: Redis"),
                    Err(e) => {
                        tracing::warn!(error = %e, "store: Redis is unreachable; readiness stays false until it answers")
                    }
                }
                Stores::of(store)
            }
            None => {
                let store = Arc::new(MemoryStore::new(clock.clone()));
                spawn_purger(Arc::downgrade(&store));
                tracing::info!("store: embedded (in memory; data is lost on restart)");
                Stores::of(store)
            }
        };

        let outbox = stores.outbox.clone();
        // Derived from the refresh secret, as the CSRF key is: every replica computes the
        // same digest of a phone code, and there is no new secret to distribute.
        let code_hasher = HmacCodeHasher::derive(config.refresh_secret.expose_secret());
        let ports = Ports {
            users: stores.users,
            todos: stores.todos,
            sessions: stores.sessions,
            tokens: Arc::new(tokens),
            hasher: hasher.clone(),
            clock: clock.clone(),
            ids: Arc::new(RandomIds),
            outbox: stores.outbox,
            notifier: notifier(&config)?,
            throttle: stores.throttle,
            rate_limiter: stores.rate_limiter,
            idempotency: stores.idempotency,
            phone_codes: stores.phone_codes,
            sms_quota: stores.sms_quota,
            code_hasher: Arc::new(code_hasher),
        };
        if config.environment == Environment::Development
            && let Err(e) = ensure_sample_user(&ports).await
        {
            tracing::warn!(error = %e, "cannot create the sample user yet; retrying in the background");
            spawn_sample_user(ports.clone());
        }
        if config.environment == Environment::Production {
            refuse_sample_user(&ports, redis_store.is_some()).await?;
        }
        let policy = TokenPolicy {
            access_ttl: config.access_ttl,
            refresh_ttl: config.refresh_ttl,
            max_session_lifetime: config.session_max_lifetime,
            reuse_grace: config.refresh_reuse_grace,
        };
        let services = Arc::new(Services::new(
            &ports,
            policy,
            config.login_throttle,
            config.limits,
            config.sms.clone(),
        ));
        let delivery = Arc::new(DeliverNotification::new(
            &ports,
            DeliveryPolicy {
                max_attempts: config.notify_max_attempts,
                max_backoff: config.notify_max_backoff,
                dead_letter_retention: config.notify_dead_letter_retention,
                max_dead_letters: config.notify_dead_letter_max,
                ..DeliveryPolicy::default()
            },
        ));
        let mut ops = adapter_http::Operations::new().context("metrics registry")?;
        let worker = WorkerTelemetry::register(&mut ops).context("metrics registry")?;
        SmsCollector::register(Arc::clone(&services.sms_stats), &mut ops)
            .context("metrics registry")?;
        if let Some(store) = &redis_store {
            RedisPoolCollector::register(store, &mut ops).context("metrics registry")?;
        }
        let connections = ConnectionLimits {
            max_connections: crate::serve::effective_max_connections(
                config.connections.max_connections,
            ),
            ..config.connections
        };
        let connection_metrics =
            ConnectionMetrics::register(&ops.registry, connections.max_connections)
                .context("metrics registry")?;
        let app = adapter_http::app_with(
            services,
            adapter_http::HttpConfig {
                max_body_bytes: config.max_body_bytes,
                body_timeout: config.connections.body_timeout,
                jwks,
                trusted_proxies: adapter_http::TrustedProxies::new(config.trusted_proxies.clone()),
                // Derived from the refresh secrets: every replica agrees, and the CSRF
                // tokens of cookie mode rotate with the refresh secret (README, "Cookie mode").
                csrf: adapter_http::CsrfKeys::derive(
                    config.refresh_secret.expose_secret(),
                    &config
                        .refresh_secrets_previous
                        .iter()
                        .map(|s| s.expose_secret())
                        .collect::<Vec<_>>(),
                ),
            },
            ops,
        );

        let listener = tokio::net::TcpListener::bind(config.bind_addr)
            .await
            .with_context(|| format!("BIND_ADDR: cannot listen on {}", config.bind_addr))?;
        let local_addr = listener
            .local_addr()
            .context("listener has no socket address")?;
        tracing::info!(
            max_connections = connections.max_connections,
            header_timeout = ?connections.header_timeout,
            body_timeout = ?connections.body_timeout,
            idle_timeout = ?connections.idle_timeout,
            send_timeout = ?connections.send_timeout,
            "connection limits"
        );
        Ok(Self {
            local_addr,
            listener,
            app,
            connections,
            connection_metrics,
            notifications: Notifications { outbox, delivery },
            worker,
            notify_concurrency: config.notify_concurrency,
            shutdown_grace: config.shutdown_grace,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// Serves until `shutdown` resolves. Then: the listener closes at once (new
    /// connections are refused), in-flight requests get up to `SHUTDOWN_GRACE` to finish
    /// (idle keep-alive connections are closed), and the notification worker finishes the
    /// SMS in hand and stops. Nothing is lost: an SMS still leased by a worker that died
    /// is retried by the next process when its lease runs out.
    ///
    /// # Errors
    /// The listener failed.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let grace = self.shutdown_grace;
        let worker = tokio::spawn(deliver_until_stopped(
            self.notifications.delivery.clone(),
            stopped,
            RunningGuard::new(self.worker.clone()),
            self.notify_concurrency,
        ));
        let served = crate::serve::serve(
            self.listener,
            self.app,
            self.connections,
            self.connection_metrics,
            shutdown,
            grace,
        )
        .await;
        // Let the worker finish the message in hand; what is left stays in the outbox.
        let _ = stop.send(true);
        if tokio::time::timeout(grace, worker).await.is_err() {
            tracing::warn!(
                "notification worker did not stop in time; its lease expires and another process resends"
            );
        }
        tracing::info!("stopped");
        served
    }

    /// The HTTP application alone, without its listener or notification worker: for
    /// in-process tests that drive it with poem's `TestClient`.
    pub fn into_endpoint(self) -> BoxEndpoint<'static, Response> {
        self.app
    }

    /// The SMS outbox and its worker, for operators and tests.
    pub fn notifications(&self) -> Notifications {
        self.notifications.clone()
    }

    /// Serves until SIGINT or SIGTERM.
    ///
    /// # Errors
    /// The listener failed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// Resolves at the first SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when first polled, so a signal arriving while the server starts is not
/// the default "terminate now".
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| tracing::error!(error = %e, "cannot listen for SIGTERM"))
        .ok();
    #[cfg(unix)]
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| tracing::error!(error = %e, "cannot listen for SIGINT"))
        .ok();
    async move {
        #[cfg(unix)]
        {
            let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(terminate) => {},
                () = wait(interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown signal received; finishing in-flight requests");
    }
}

/// The codec's public access-token keys, as the HTTP adapter serves them.
fn published_keys(tokens: &JwtCodec) -> adapter_http::dto::JwkSet {
    adapter_http::dto::JwkSet {
        keys: tokens
            .published_keys()
            .iter()
            .map(|key| adapter_http::dto::Jwk::ed25519(key.key_id(), key.jwk_x()))
            .collect(),
    }
}

/// One store adapter seen through each of its ports.
struct Stores {
    users: Arc<dyn UserRepository>,
    todos: Arc<dyn TodoRepository>,
    sessions: Arc<dyn SessionStore>,
    outbox: Arc<dyn Outbox>,
    throttle: Arc<dyn LoginThrottle>,
    rate_limiter: Arc<dyn RateLimiter>,
    idempotency: Arc<dyn IdempotencyStore>,
    phone_codes: Arc<dyn PhoneVerifications>,
    sms_quota: Arc<dyn SmsQuota>,
}

impl Stores {
    fn of<S>(store: Arc<S>) -> Self
    where
        S: UserRepository
            + TodoRepository
            + SessionStore
            + Outbox
            + LoginThrottle
            + RateLimiter
            + IdempotencyStore
            + PhoneVerifications
            + SmsQuota
            + 'static,
    {
        Self {
            users: store.clone(),
            todos: store.clone(),
            sessions: store.clone(),
            outbox: store.clone(),
            throttle: store.clone(),
            rate_limiter: store.clone(),
            idempotency: store.clone(),
            phone_codes: store.clone(),
            sms_quota: store,
        }
    }
}

/// How long the worker waits when the outbox has nothing due (or cannot be read).
const OUTBOX_POLL: Duration = Duration::from_millis(250);

/// Longest time between two dead-letter trims (a shorter retention trims more often).
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// The notification worker: `concurrency` delivery loops, each delivering one due SMS at a
/// time (the outbox hands each message to one of them, round robin over users), and a loop
/// that trims dead letters, until told to stop. Readiness holds while all run: if one
/// panics, the others are stopped too and the replica turns unready.
async fn deliver_until_stopped(
    delivery: Arc<DeliverNotification>,
    stop: watch::Receiver<bool>,
    running: RunningGuard,
    concurrency: usize,
) {
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        loops.spawn(deliver_loop(
            Arc::clone(&delivery),
            stop.clone(),
            running.0.clone(),
        ));
    }
    loops.spawn(trim_loop(Arc::clone(&delivery), stop));
    while let Some(ended) = loops.join_next().await {
        if let Err(e) = ended {
            tracing::error!(error = %e, "a notification worker loop died; stopping the worker");
            break;
        }
    }
    // Dropping the set aborts what is left; dropping `running` marks the worker stopped.
    drop(loops);
    drop(running);
}

/// Trims dead letters now and then: by age (the retention) and by count.
async fn trim_loop(delivery: Arc<DeliverNotification>, mut stop: watch::Receiver<bool>) {
    let every =
        (delivery.policy().dead_letter_retention / 2).clamp(Duration::from_secs(1), TRIM_EVERY);
    loop {
        match delivery.trim_dead_letters().await {
            Ok(0) => {}
            Ok(trimmed) => tracing::info!(trimmed, "dead letters trimmed"),
            Err(e) => tracing::warn!(error = %e, "cannot trim dead letters now; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => break,
        }
    }
}

/// One delivery loop: one SMS at a time until told to stop.
async fn deliver_loop(
    delivery: Arc<DeliverNotification>,
    mut stop: watch::Receiver<bool>,
    telemetry: WorkerTelemetry,
) {
    loop {
        if *stop.borrow() {
            break;
        }
        let outcome = delivery.run_once().await;
        telemetry.record(&outcome);
        let busy = match outcome {
            Ok(DeliveryOutcome::Idle) => false,
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "notification outbox unavailable; retrying");
                false
            }
        };
        if !busy {
            tokio::select! {
                () = tokio::time::sleep(OUTBOX_POLL) => {}
                _ = stop.changed() => break,
            }
        }
    }
}

/// Vonage when configured, else a notifier that only logs.
fn notifier(config: &Config) -> anyhow::Result<Arc<dyn Notifier>> {
    Ok(match &config.vonage {
        Some(vonage) => {
            tracing::info!(base_url = %vonage.base_url, "notifications: Vonage Messages API");
            Arc::new(
                VonageNotifier::new(VonageConfig {
                    api_key: vonage.api_key.clone(),
                    api_secret: vonage.api_secret.clone(),
                    from: vonage.from.clone(),
                    base_url: vonage.base_url.clone(),
                    timeout: Duration::from_secs(5),
                })
                .context("VONAGE_BASE_URL")?,
            )
        }
        None => {
            tracing::info!("notifications: VONAGE_API_KEY unset; SMS are only logged");
            Arc::new(LogNotifier)
        }
    })
}

/// Periodically drops expired sessions from the embedded store; stops with the store.
fn spawn_purger(store: std::sync::Weak<MemoryStore>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(PURGE_INTERVAL);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(store) = store.upgrade() else { break };
            let purged = store.purge_expired();
            if purged > 0 {
                tracing::debug!(purged, "expired sessions purged");
            }
        }
    });
}

/// Creates the sample user as soon as the store is reachable.
fn spawn_sample_user(ports: Ports) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if ensure_sample_user(&ports).await.is_ok() {
                break;
            }
        }
    });
}

/// Creates the seed tutorial's `username` / `password` user so its curl walkthrough works
/// unchanged. Development only: its password would never pass the registration policy.
async fn ensure_sample_user(ports: &Ports) -> anyhow::Result<()> {
    let username = Username::parse(SAMPLE_USERNAME).context("sample username")?;
    if ports.users.find_by_username(&username).await?.is_some() {
        return Ok(());
    }
    let password = PasswordInput::new(SAMPLE_PASSWORD).context("sample password")?;
    let user = User {
        id: UserId::from_uuid(ports.ids.new_uuid()),
        username,
        password_hash: ports.hasher.hash(&password).await?,
        phone: None,
        phone_verified: false,
        created_at: ports.clock.now(),
    };
    match ports.users.insert(&user).await {
        Ok(()) | Err(InsertUserError::UsernameTaken) => {
            tracing::info!(
                "development: sample user '{SAMPLE_USERNAME}' / '{SAMPLE_PASSWORD}' is available"
            );
            Ok(())
        }
        Err(InsertUserError::Store(e)) => Err(e.into()),
    }
}

/// Production never accepts the published sample credentials. A production server on a
/// store a development server has used (one Redis for both, or data copied over) would
/// find the sample user there, so it refuses to start, naming the account and how to
/// delete it. Precisely the account that *accepts* `username` / `password`: a real user
/// who happens to be called `username`, with a password of their own, is left alone.
///
/// A store that cannot answer is not a store without the sample user: the server does not
/// start then either (rather than skip the check), and a restart policy (compose's
/// `restart: unless-stopped`, Kubernetes') brings it up once the store answers.
async fn refuse_sample_user(ports: &Ports, redis: bool) -> anyhow::Result<()> {
    const UNCHECKED: &str = "APP_ENV=production: cannot check whether the store holds the \
        development sample user, and will not start unchecked; make sure the store answers";
    let username = Username::parse(SAMPLE_USERNAME).context("sample username")?;
    let Some(user) = ports
        .users
        .find_by_username(&username)
        .await
        .context(UNCHECKED)?
    else {
        return Ok(());
    };
    let password = PasswordInput::new(SAMPLE_PASSWORD).context("sample password")?;
    if !ports
        .hasher
        .verify(&password, Some(user.password_hash.clone()))
        .await
        .context(UNCHECKED)?
    {
        return Ok(());
    }
    let how = if redis {
        let (index, pattern) = adapter_redis::account_keys(user.id, &user.username);
        format!(
            "in Redis, delete the key '{index}' and every key matching '{pattern}', e.g. \
             `redis-cli --scan --pattern '{pattern}' | xargs redis-cli DEL` then \
             `redis-cli DEL {index}`"
        )
    } else {
        "delete it from the store".to_owned()
    };
    anyhow::bail!(
        "APP_ENV=production, but the store holds the development sample account \
         '{SAMPLE_USERNAME}' (user id {id}), which accepts the published password \
         '{SAMPLE_PASSWORD}': anyone could log in as it. Delete that account, then start \
         again: {how}",
        id = user.id,
    )
}

#[cfg(test)]
mod tests {
    use poem::test::TestClient;

    use super::*;

    #[tokio::test]
    async fn readiness_requires_the_notification_worker() {
        let config = Config::from_lookup(|key| (key == "BIND_ADDR").then(|| "127.0.0.1:0".into()))
            .expect("valid");
        let app = Application::build(config).await.expect("builds");
        let Application {
            app: endpoint,
            worker,
            ..
        } = app;
        let client = TestClient::new(endpoint);
        // Built but not running: the worker has not started.
        let response = client.get("/readyz").send().await;
        response.assert_status(poem::http::StatusCode::SERVICE_UNAVAILABLE);
        let body = response.0.into_body().into_string().await.expect("text");
        assert!(body.contains("Not ready: notification worker"), "{body}");

        let guard = RunningGuard::new(worker);
        client.get("/readyz").send().await.assert_status_is_ok();
        let metrics = client.get("/metrics").send().await;
        metrics.assert_status_is_ok();
        let text = metrics.0.into_body().into_string().await.expect("text");
        assert!(
            text.contains("jwt_todo_notification_worker_running 1"),
            "{text}"
        );
        drop(guard);
        client
            .get("/readyz")
            .send()
            .await
            .assert_status(poem::http::StatusCode::SERVICE_UNAVAILABLE);
    }
}
