//! The HTTP adapter's metrics, and where a request records into them.
//!
//! Recorded at the HTTP boundary, by looking at what each request and use case returned;
//! the application never depends on a metrics crate. The outermost middleware
//! ([`crate::ops`]) runs every request in a [`scoped`] task-local scope holding the metrics;
//! the handlers record through the functions below, which do nothing outside a request
//! (unit tests of a handler without the middleware). Labels are bounded and nothing
//! secret is recorded.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;

use futures_util::FutureExt;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use crate::problem::Failure;

/// Latency buckets in seconds: from a cached session check (~1 ms) to an Argon2 login
/// under load (~1 s), and the 5 s store/notifier timeouts.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metrics the HTTP adapter records. Register once per registry.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    pub(crate) requests: IntCounterVec,
    pub(crate) duration: HistogramVec,
    logins: IntCounterVec,
    refreshes: IntCounterVec,
    reuse_detected: IntCounter,
    sessions_revoked: IntCounterVec,
    /// `jwt_todo_store_errors_total{component}`; the server adds its own components.
    pub store_errors: IntCounterVec,
    /// `jwt_todo_store_unavailable_total{reason}`: why the store could not serve.
    store_unavailable: IntCounterVec,
}

impl HttpMetrics {
    /// Creates the metrics and registers them in `registry`.
    ///
    /// # Errors
    /// A metric of the same name is already registered there.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "jwt_todo_http_requests_total",
                "HTTP requests answered, by method, route template and status.",
            ),
            &["method", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "jwt_todo_http_request_duration_seconds",
                "Time to answer an HTTP request, by method, route template and status.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route", "status"],
        )?;
        let logins = IntCounterVec::new(
            Opts::new(
                "jwt_todo_logins_total",
                "Login attempts by outcome: success, second_factor (a right password answered with a challenge), invalid_credentials, throttled, overloaded, unavailable, error.",
            ),
            &["outcome"],
        )?;
        let refreshes = IntCounterVec::new(
            Opts::new(
                "jwt_todo_token_refreshes_total",
                "Refresh attempts by outcome: success, invalid, reused, unavailable, error.",
            ),
            &["outcome"],
        )?;
        let reuse_detected = IntCounter::new(
            "jwt_todo_refresh_reuse_detected_total",
            "Spent refresh tokens presented again (RFC 9700 theft signal); each revoked its session.",
        )?;
        let sessions_revoked = IntCounterVec::new(
            Opts::new(
                "jwt_todo_sessions_revoked_total",
                "Sessions ended, by how: logout, token_revoke, session_delete, reuse, evicted (a login beyond the per-user cap).",
            ),
            &["reason"],
        )?;
        let store_errors = IntCounterVec::new(
            Opts::new(
                "jwt_todo_store_errors_total",
                "Store operations that failed (unreachable, timed out), by component.",
            ),
            &["component"],
        )?;
        let store_unavailable = IntCounterVec::new(
            Opts::new(
                "jwt_todo_store_unavailable_total",
                "Requests answered 503 because the store could not serve, by reason: unreachable, timeout, oom, busy, loading, readonly, clusterdown.",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(refreshes.clone()))?;
        registry.register(Box::new(reuse_detected.clone()))?;
        registry.register(Box::new(sessions_revoked.clone()))?;
        registry.register(Box::new(store_errors.clone()))?;
        registry.register(Box::new(store_unavailable.clone()))?;
        Ok(Self {
            requests,
            duration,
            logins,
            refreshes,
            reuse_detected,
            sessions_revoked,
            store_errors,
            store_unavailable,
        })
    }
}

/// Per-request state shared between the middleware and the handlers below it.
struct RequestScope {
    metrics: Arc<HttpMetrics>,
    store_error: Cell<bool>,
}

tokio::task_local! {
    static SCOPE: RequestScope;
}

fn with_scope(f: impl FnOnce(&RequestScope)) {
    // Outside a request (unit tests of a handler without the middleware): nothing to record.
    let _ = SCOPE.try_with(f);
}

/// Counts `failure` on its way to the client (a store failure in
/// `jwt_todo_store_errors_total` and `jwt_todo_store_unavailable_total`, once per request)
/// and hands it on.
pub(crate) fn failed(failure: Failure) -> Failure {
    if let Some(reason) = failure.store_unavailability() {
        with_scope(|scope| {
            if !scope.store_error.replace(true) {
                scope
                    .metrics
                    .store_errors
                    .with_label_values(&["http"])
                    .inc();
                scope
                    .metrics
                    .store_unavailable
                    .with_label_values(&[reason.as_str()])
                    .inc();
            }
        });
    }
    failure
}

/// Runs `request` in a scope holding `metrics`; also returns whether it met a store
/// failure (for the access log).
///
/// A plain function returning the scope's future, not an `async fn` around it: one level
/// less of future nesting on every request (each level is moved, whole, when created).
pub(crate) fn scoped<T>(
    metrics: Arc<HttpMetrics>,
    request: impl Future<Output = T>,
) -> impl Future<Output = (T, bool)> {
    let scope = RequestScope {
        metrics,
        store_error: Cell::new(false),
    };
    // `map`, not an `async` block: the block would hold `request` twice (captured, and
    // pinned while awaited), and this future is most of a request's state.
    SCOPE.scope(
        scope,
        request.map(|output| (output, SCOPE.with(|s| s.store_error.get()))),
    )
}

/// Outcome of a login, for `jwt_todo_logins_total`.
pub(crate) fn login_outcome(outcome: &'static str) {
    with_scope(|scope| scope.metrics.logins.with_label_values(&[outcome]).inc());
}

/// Outcome of a refresh; a detected reuse also counts as a revoked session.
pub(crate) fn refresh_outcome(outcome: &'static str) {
    with_scope(|scope| scope.metrics.refreshes.with_label_values(&[outcome]).inc());
    if outcome == "reused" {
        reuse_detected();
    }
}

/// A spent refresh token was presented (to refresh or to log out): its session was
/// revoked as stolen.
pub(crate) fn reuse_detected() {
    with_scope(|scope| {
        scope.metrics.reuse_detected.inc();
        scope
            .metrics
            .sessions_revoked
            .with_label_values(&["reuse"])
            .inc();
    });
}

/// Sessions ended by a logout, a revoke or a session delete.
pub(crate) fn sessions_revoked(reason: &'static str, count: u64) {
    with_scope(|scope| {
        scope
            .metrics
            .sessions_revoked
            .with_label_values(&[reason])
            .inc_by(count);
    });
}
