//! Operations: request ids, one access-log line per request, Prometheus metrics and the
//! extra readiness checks the server adds (e.g. "the notification worker runs").
//!
//! Metrics are recorded here, at the HTTP boundary, by looking at what each request and
//! use case returned; the application never depends on a metrics crate.
//!
//! - Every request gets an id: the caller's `X-Request-Id` when it is short and plain
//!   (at most [`MAX_REQUEST_ID_LEN`] of `A-Za-z0-9._:-`), a fresh UUID otherwise. It is
//!   sent back on every response and carried by every log line of the request (span
//!   field `request_id`).
//! - Labels are bounded: the route is the API's path *template* (`/todo/{id}`), never the
//!   raw path; a path the API does not declare is `unmatched`.
//! - Nothing secret is recorded: no header, body or query string reaches a log line or a
//!   label.
//! - Store failures are counted where they become a 503 ([`crate::problem`] calls
//!   [`note_store_error`]); a request-scoped flag carries that to the access log.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderName, HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};
use tracing::Instrument;

use crate::api::Api;

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a caller; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;
/// The route label of a path the API does not declare.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Latency buckets in seconds: from a cached session check (~1 ms) to an Argon2 login
/// under load (~1 s), and the 5 s store/notifier timeouts.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metrics the HTTP adapter records. Register once per registry.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
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
                "Login attempts by outcome: success, invalid_credentials, throttled, overloaded, unavailable, error.",
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

/// A readiness condition besides the store, e.g. "the notification worker runs".
pub type ReadinessProbe = Arc<dyn Fn() -> bool + Send + Sync>;

/// What the server hands the HTTP adapter for operating it.
#[derive(Clone)]
pub struct Operations {
    /// Gathered at `/metrics`.
    pub registry: Registry,
    pub metrics: Arc<HttpMetrics>,
    /// Each must hold for `/readyz` to answer 200; the name appears in the 503's detail.
    pub readiness: Vec<(&'static str, ReadinessProbe)>,
}

impl std::fmt::Debug for Operations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operations")
            .field(
                "readiness",
                &self.readiness.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Operations {
    /// A fresh registry with the HTTP metrics and no extra readiness checks.
    ///
    /// # Errors
    /// Registration failed (cannot happen on a fresh registry).
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let metrics = Arc::new(HttpMetrics::register(&registry)?);
        Ok(Self {
            registry,
            metrics,
            readiness: Vec::new(),
        })
    }

    /// The first failing readiness check, by name.
    pub(crate) fn not_ready(&self) -> Option<&'static str> {
        self.readiness
            .iter()
            .find(|(_, probe)| !probe())
            .map(|(name, _)| *name)
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

/// Called where a store failure becomes a 503.
pub(crate) fn note_store_error(reason: application::ports::Unavailability) {
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

/// The API's path templates, to turn a request path into a bounded route label.
#[derive(Debug)]
pub(crate) struct RouteTemplates(Vec<(Vec<String>, String)>);

impl RouteTemplates {
    pub(crate) fn of_api() -> Self {
        let mut routes: Vec<(Vec<String>, String)> = <Api as poem_openapi::OpenApi>::meta()
            .into_iter()
            .flat_map(|api| api.paths)
            .map(|path| {
                let segments: Vec<String> = path
                    .path
                    .split('/')
                    .map(|s| match s.strip_prefix(':') {
                        Some(name) => format!("{{{name}}}"),
                        None => s.to_owned(),
                    })
                    .collect();
                let template = segments.join("/");
                (segments, template)
            })
            .collect();
        for fixed in ["/openapi.json", "/openapi.yaml", "/metrics"] {
            routes.push((fixed.split('/').map(str::to_owned).collect(), fixed.into()));
        }
        // Literal segments first, so `/todo/x` never shadows a literal path of the same shape.
        routes.sort_by_key(|(segments, _)| segments.iter().filter(|s| s.starts_with('{')).count());
        Self(routes)
    }

    pub(crate) fn route(&self, path: &str) -> &str {
        if path == "/docs" || path.starts_with("/docs/") {
            return "/docs";
        }
        // Per request: compares in place, allocates nothing.
        let parts = path.split('/').count();
        self.0
            .iter()
            .find(|(segments, _)| {
                segments.len() == parts
                    && segments.iter().zip(path.split('/')).all(|(segment, part)| {
                        (segment.starts_with('{') && !part.is_empty()) || segment == part
                    })
            })
            .map_or(UNMATCHED_ROUTE, |(_, template)| template.as_str())
    }
}

/// The caller's request id when it is plain and short, else a new UUID.
pub fn request_id(given: Option<&HeaderValue>) -> String {
    given
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), |id| id.to_owned())
}

/// The outermost middleware: request id, span, access log line, metrics.
pub(crate) async fn observe<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    ops: &Operations,
    routes: &RouteTemplates,
) -> poem::Result<Response> {
    let started = Instant::now();
    let id = request_id(req.headers().get(&X_REQUEST_ID));
    let method = req.method().clone();
    let route = routes.route(req.uri().path());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = route,
    );
    let scope = RequestScope {
        metrics: Arc::clone(&ops.metrics),
        store_error: Cell::new(false),
    };
    let (result, store_error) = SCOPE
        .scope(scope, async {
            let result = ep.call(req).await.map(|r| r.into_response());
            let store_error = SCOPE.with(|s| s.store_error.get());
            (result, store_error)
        })
        .instrument(span.clone())
        .await;
    let mut response = result.unwrap_or_else(|e| e.into_response());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    let status = response.status();
    let elapsed = started.elapsed();
    let labels = [method.as_str(), route, status.as_str()];
    ops.metrics.requests.with_label_values(&labels).inc();
    ops.metrics
        .duration
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, store_error, "request");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request");
        }
    });
    Ok(response)
}

/// `GET /metrics`: the registry in the Prometheus text format (0.0.4).
pub(crate) fn render_metrics(registry: &Registry) -> Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => Response::builder()
            .header(header::CONTENT_TYPE, encoder.format_type())
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates_and_unknown_paths_share_one_label() {
        let routes = RouteTemplates::of_api();
        assert_eq!(routes.route("/login"), "/login");
        assert_eq!(routes.route("/todo"), "/todo");
        assert_eq!(
            routes.route("/todo/0b0c0d0e-0000-4000-8000-000000000000"),
            "/todo/{id}"
        );
        assert_eq!(routes.route("/todo/not-a-uuid"), "/todo/{id}");
        assert_eq!(routes.route("/sessions/abc"), "/sessions/{id}");
        assert_eq!(routes.route("/metrics"), "/metrics");
        assert_eq!(routes.route("/docs/index.css"), "/docs");
        assert_eq!(routes.route("/todo/"), UNMATCHED_ROUTE);
        assert_eq!(routes.route("/nowhere/at/all"), UNMATCHED_ROUTE);
        assert_eq!(routes.route("/wp-admin"), UNMATCHED_ROUTE);
    }

    #[test]
    fn request_ids_are_taken_only_when_plain_and_short() {
        let plain = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(request_id(Some(&plain)), "abc-123_x.y:z");
        let long = HeaderValue::from_str(&"a".repeat(MAX_REQUEST_ID_LEN + 1)).expect("ascii");
        let odd = HeaderValue::from_static("abc def\"<script>");
        let empty = HeaderValue::from_static("");
        for replaced in [Some(&long), Some(&odd), Some(&empty), None] {
            let id = request_id(replaced);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
    }
}
