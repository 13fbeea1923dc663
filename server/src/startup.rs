//! Building and running the server: every adapter built from the configuration and
//! handed to the use cases, the listener bound, then the HTTP server and the
//! notification worker run until a shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adapter_argon2::{Argon2Hasher, HmacCodeHasher, SealedTotpEngine};

/// The name authenticator apps show above the account.
const TOTP_ISSUER: &str = "jwt-todo";
use adapter_jwt::JwtCodec;
use adapter_memory::{MemoryStore, RandomIds, SystemClock};
use adapter_redis::RedisStore;
use adapter_vonage::{LogNotifier, VonageNotifier};
use anyhow::Context;
use application::ports::{
    AccountStore, AuditLog, Clock, IdempotencyStore, LoginThrottle, Notifier, Outbox,
    PasswordHasher, PasswordResets, PhoneVerifications, RateLimiter, SecondFactors, SessionStore,
    SmsQuota, TodoRepository, UserRepository,
};
use application::usecases::DeliverNotification;
use application::{Ports, Services};
use poem::Response;
use poem::endpoint::BoxEndpoint;
use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::config::{Config, Environment, NotificationSettings};
use crate::metrics::{
    AuditCollector, RedisPoolCollector, SessionCacheCollector, SmsCollector, WorkerTelemetry,
};
use crate::serve::{ConnectionLimits, ConnectionMetrics};
use crate::worker::RunningGuard;

/// How often the embedded store returns the memory of expired sessions.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

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
    /// The ports the use cases were given, for what runs beside them (the sample user).
    ports: Ports,
    environment: Environment,
    /// Whether the store is Redis (else the embedded one).
    on_redis: bool,
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
        let tokens = JwtCodec::new(config.tokens.jwt.clone()).context("JWT configuration")?;
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

        let redis = match (&config.store.deployment, config.store.variable()) {
            (Some(deployment), Some(variable)) => Some(Arc::new(
                RedisStore::connect(deployment, config.store.redis.clone()).context(variable)?,
            )),
            _ => None,
        };
        let stores = match &redis {
            Some(store) => {
                // Redis may come up after us: serve 503s (readiness false) until it does.
                match store.ping().await {
                    Ok(()) => tracing::info!("store: Redis"),
                    Err(e) => {
                        tracing::warn!(error = %e, "store: Redis is unreachable; readiness stays false until it answers")
                    }
                }
                Stores::of(Arc::clone(store))
            }
            None => {
                let store = Arc::new(MemoryStore::new(clock.clone()));
                spawn_purger(Arc::downgrade(&store));
                tracing::info!("store: embedded (in memory; data is lost on restart)");
                Stores::of(store)
            }
        };

        let outbox = stores.outbox.clone();
        let refresh_secret = config.tokens.jwt.refresh_secret.expose_secret();
        // Derived from the refresh secret, as the CSRF key is: every replica computes the
        // same digest of a phone code, and there is no new secret to distribute.
        let code_hasher = HmacCodeHasher::derive(refresh_secret);
        let ports = Ports {
            users: stores.users,
            todos: stores.todos,
            sessions: stores.sessions,
            accounts: stores.accounts,
            resets: stores.resets,
            audit: stores.audit,
            tokens: Arc::new(tokens),
            hasher: hasher.clone(),
            clock: clock.clone(),
            ids: Arc::new(RandomIds),
            outbox: stores.outbox,
            notifier: notifier(&config.notifications)?,
            throttle: stores.throttle,
            rate_limiter: stores.rate_limiter,
            idempotency: stores.idempotency,
            phone_codes: stores.phone_codes,
            sms_quota: stores.sms_quota,
            code_hasher: Arc::new(code_hasher),
            second_factors: stores.second_factors,
            // Sealed under a key derived from the refresh secret too.
            totp: Arc::new(SealedTotpEngine::derive(
                refresh_secret,
                &config
                    .tokens
                    .jwt
                    .refresh_secrets_previous
                    .iter()
                    .map(|s| s.expose_secret())
                    .collect::<Vec<_>>(),
                TOTP_ISSUER,
            )?),
        };
        let services = Arc::new(Services::new(
            &ports,
            config.tokens.policy,
            config.login_throttle,
            config.limits,
            config.sms.clone(),
        ));
        let delivery = Arc::new(DeliverNotification::new(
            &ports,
            config.notifications.delivery,
        ));
        let mut ops = adapter_http::Operations::new().context("metrics registry")?;
        let worker = WorkerTelemetry::register(&mut ops).context("metrics registry")?;
        AuditCollector::register(Arc::clone(&services.audit_stats), &mut ops)
            .context("metrics registry")?;
        SmsCollector::register(Arc::clone(&services.sms_stats), &mut ops)
            .context("metrics registry")?;
        if let Some(store) = &redis {
            RedisPoolCollector::register(store, &mut ops).context("metrics registry")?;
            SessionCacheCollector::register(store, &mut ops).context("metrics registry")?;
        }
        let http = &config.http;
        let connections = ConnectionLimits {
            max_connections: crate::serve::effective_max_connections(
                http.connections.max_connections,
            ),
            ..http.connections
        };
        let connection_metrics =
            ConnectionMetrics::register(&ops.registry, connections.max_connections)
                .context("metrics registry")?;
        let previous_refresh_secrets: Vec<&[u8]> = config
            .tokens
            .jwt
            .refresh_secrets_previous
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        let app = adapter_http::app_with(
            services,
            adapter_http::HttpConfig {
                max_body_bytes: http.max_body_bytes,
                body_timeout: http.connections.body_timeout,
                jwks,
                trusted_proxies: adapter_http::TrustedProxies::new(http.trusted_proxies.clone()),
                // Derived from the refresh secrets: every replica agrees, and the CSRF
                // tokens of cookie mode rotate with the refresh secret (README, "Cookie mode").
                csrf: adapter_http::CsrfKeys::derive(refresh_secret, &previous_refresh_secrets),
                oauth: adapter_http::oauth::OAuthConfig {
                    clients: Arc::clone(&config.oauth.clients),
                    public_url: config.oauth.public_url.clone(),
                    token_issuer: config.tokens.jwt.issuer.clone(),
                    token_audience: config.tokens.jwt.audience.clone(),
                },
            },
            ops,
        );

        let listener = tokio::net::TcpListener::bind(http.bind_addr)
            .await
            .with_context(|| format!("BIND_ADDR: cannot listen on {}", http.bind_addr))?;
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
            notify_concurrency: config.notifications.concurrency,
            shutdown_grace: http.shutdown_grace,
            ports,
            environment: config.environment,
            on_redis: redis.is_some(),
        })
    }

    /// The ports the use cases were built with.
    pub(crate) fn ports(&self) -> &Ports {
        &self.ports
    }

    /// `APP_ENV`.
    pub(crate) fn environment(&self) -> Environment {
        self.environment
    }

    /// Whether the store is Redis (else the embedded in-memory one).
    pub(crate) fn on_redis(&self) -> bool {
        self.on_redis
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
        let worker = tokio::spawn(crate::worker::deliver_until_stopped(
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
    accounts: Arc<dyn AccountStore>,
    resets: Arc<dyn PasswordResets>,
    audit: Arc<dyn AuditLog>,
    outbox: Arc<dyn Outbox>,
    throttle: Arc<dyn LoginThrottle>,
    rate_limiter: Arc<dyn RateLimiter>,
    idempotency: Arc<dyn IdempotencyStore>,
    phone_codes: Arc<dyn PhoneVerifications>,
    sms_quota: Arc<dyn SmsQuota>,
    second_factors: Arc<dyn SecondFactors>,
}

impl Stores {
    fn of<S>(store: Arc<S>) -> Self
    where
        S: UserRepository
            + TodoRepository
            + SessionStore
            + AccountStore
            + PasswordResets
            + AuditLog
            + Outbox
            + LoginThrottle
            + RateLimiter
            + IdempotencyStore
            + PhoneVerifications
            + SmsQuota
            + SecondFactors
            + 'static,
    {
        Self {
            users: store.clone(),
            todos: store.clone(),
            sessions: store.clone(),
            accounts: store.clone(),
            resets: store.clone(),
            audit: store.clone(),
            outbox: store.clone(),
            throttle: store.clone(),
            rate_limiter: store.clone(),
            idempotency: store.clone(),
            phone_codes: store.clone(),
            sms_quota: store.clone(),
            second_factors: store,
        }
    }
}

/// Vonage when configured, else a notifier that only logs.
fn notifier(settings: &NotificationSettings) -> anyhow::Result<Arc<dyn Notifier>> {
    Ok(match &settings.vonage {
        Some(vonage) => {
            tracing::info!(base_url = %vonage.base_url, "notifications: Vonage Messages API");
            Arc::new(VonageNotifier::new(vonage.clone()).context("VONAGE_BASE_URL")?)
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

#[cfg(test)]
mod tests {
    use poem::test::TestClient;

    use super::*;
    use crate::worker::RunningGuard;

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
