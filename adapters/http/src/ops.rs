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
//! - The metrics themselves and the request scope they are recorded in are
//!   [`crate::metrics`]; a request-scoped flag carries a store failure to the access log.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderName, HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::registry::MetaApi;
use prometheus::{Encoder, Registry, TextEncoder};
use tracing::Instrument;

use crate::metrics;
pub use crate::metrics::HttpMetrics;

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a caller; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;
/// The route label of a path the API does not declare.
pub const UNMATCHED_ROUTE: &str = "unmatched";

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

/// The API's path templates, to turn a request path into a bounded route label.
#[derive(Debug)]
pub(crate) struct RouteTemplates(Vec<(Vec<String>, String)>);

impl RouteTemplates {
    /// The templates of `apis` (the API's metadata), and the fixed paths beside it.
    pub(crate) fn new(apis: Vec<MetaApi>) -> Self {
        let mut routes: Vec<(Vec<String>, String)> = apis
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
    let (result, store_error) = metrics::scoped(Arc::clone(&ops.metrics), async {
        ep.call(req).await.map(|r| r.into_response())
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
        let routes = RouteTemplates::new(crate::api_meta());
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
