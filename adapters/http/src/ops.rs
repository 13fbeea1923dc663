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

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use poem::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use poem::{IntoResponse, Request, Response};
use poem_openapi::registry::MetaApi;
use prometheus::{Encoder, Histogram, IntCounter, Registry, TextEncoder};
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

/// The paths the service answers, looked up once per request: the bounded route label
/// (the API's path *template*, never the raw path), and for the API's paths the methods
/// declared there (the `Allow` of a 405) and those whose operation takes a body.
#[derive(Debug)]
pub(crate) struct RouteTemplates {
    /// Literal segments first, so `/todo/x` never shadows a literal path of the same
    /// shape; then `/docs` and [`UNMATCHED_ROUTE`], which no path matches by segments.
    routes: Vec<Template>,
}

#[derive(Debug)]
struct Template {
    segments: Vec<String>,
    label: String,
    /// `None` for the paths outside the API (`/metrics`, the spec, the docs).
    allow: Option<HeaderValue>,
    with_body: Vec<Method>,
}

/// A route found by [`RouteTemplates::find`]: an index into its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RouteId(usize);

impl RouteTemplates {
    /// The templates of `apis` (the API's metadata), and the fixed paths beside it.
    pub(crate) fn new(apis: Vec<MetaApi>) -> Self {
        let mut routes: Vec<Template> = Vec::new();
        for path in apis.into_iter().flat_map(|api| api.paths) {
            let segments: Vec<String> = path
                .path
                .split('/')
                .map(|s| match s.strip_prefix(':') {
                    Some(name) => format!("{{{name}}}"),
                    None => s.to_owned(),
                })
                .collect();
            let label = segments.join("/");
            // One entry per template, should two APIs declare operations on one path.
            let index = match routes.iter().position(|t| t.label == label) {
                Some(index) => index,
                None => {
                    routes.push(Template {
                        segments,
                        label,
                        allow: None,
                        with_body: Vec::new(),
                    });
                    routes.len() - 1
                }
            };
            let template = &mut routes[index];
            for op in path.operations {
                if op.request.is_some() && !template.with_body.contains(&op.method) {
                    template.with_body.push(op.method.clone());
                }
                let mut methods: Vec<&str> = template
                    .allow
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.split(", ").collect())
                    .unwrap_or_default();
                methods.push(op.method.as_str());
                methods.sort_unstable();
                methods.dedup();
                template.allow = HeaderValue::from_str(&methods.join(", ")).ok();
            }
        }
        for fixed in ["/openapi.json", "/openapi.yaml", "/metrics"] {
            routes.push(Template {
                segments: fixed.split('/').map(str::to_owned).collect(),
                label: fixed.into(),
                allow: None,
                with_body: Vec::new(),
            });
        }
        routes.sort_by_key(|t| t.segments.iter().filter(|s| s.starts_with('{')).count());
        // Matched by name, never by segments (no path splits into zero segments).
        for label in ["/docs", UNMATCHED_ROUTE] {
            routes.push(Template {
                segments: Vec::new(),
                label: label.into(),
                allow: None,
                with_body: Vec::new(),
            });
        }
        Self { routes }
    }

    /// The route of a request path. Per request: compares in place, allocates nothing.
    pub(crate) fn find(&self, path: &str) -> RouteId {
        let n = self.routes.len();
        if path == "/docs" || path.starts_with("/docs/") {
            return RouteId(n - 2);
        }
        let parts = path.split('/').count();
        RouteId(
            self.routes[..n - 2]
                .iter()
                .position(|t| {
                    t.segments.len() == parts
                        && t.segments
                            .iter()
                            .zip(path.split('/'))
                            .all(|(segment, part)| {
                                (segment.starts_with('{') && !part.is_empty()) || segment == part
                            })
                })
                .unwrap_or(n - 1),
        )
    }

    /// How many routes there are; every [`RouteId`] is below it.
    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }

    /// The route's metric label.
    pub(crate) fn label(&self, route: RouteId) -> &str {
        &self.routes[route.0].label
    }

    /// Whether the route is one of the API's paths (not `/metrics`, the spec, the docs or
    /// an unmatched path).
    pub(crate) fn in_api(&self, route: RouteId) -> bool {
        self.routes[route.0].allow.is_some()
    }

    /// The methods the API declares on the route, for the `Allow` header that RFC 9110
    /// §15.5.6 requires on every 405; `None` off the API.
    pub(crate) fn allow(&self, route: RouteId) -> Option<&HeaderValue> {
        self.routes[route.0].allow.as_ref()
    }

    /// Whether the operation of `method` on the route takes a request body.
    pub(crate) fn takes_body(&self, route: RouteId, method: &Method) -> bool {
        self.routes[route.0].with_body.contains(method)
    }

    #[cfg(test)]
    pub(crate) fn route(&self, path: &str) -> &str {
        self.label(self.find(path))
    }
}

/// Methods whose request series get a pre-resolved slot; others (rare) are looked up.
const METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];
/// Statuses whose request series get a pre-resolved slot; others (rare) are looked up.
const STATUSES: [u16; 20] = [
    200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 406, 408, 409, 413, 415, 422, 429, 431, 500,
    503,
];

/// The request series (`jwt_todo_http_requests_total` and
/// `jwt_todo_http_request_duration_seconds`) of each method, route and status, resolved
/// on first use and then read without hashing label strings or taking the vectors'
/// locks. A series is created exactly when the vectors would create it (on the first
/// request with its labels), so `/metrics` shows the same series either way.
pub(crate) struct RequestSeries {
    metrics: Arc<HttpMetrics>,
    slots: Box<[OnceLock<(IntCounter, Histogram)>]>,
}

impl std::fmt::Debug for RequestSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSeries")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl RequestSeries {
    pub(crate) fn new(metrics: Arc<HttpMetrics>, routes: &RouteTemplates) -> Self {
        let slots = (0..routes.len() * METHODS.len() * STATUSES.len())
            .map(|_| OnceLock::new())
            .collect();
        Self { metrics, slots }
    }

    /// Counts one answered request and its latency.
    fn record(
        &self,
        routes: &RouteTemplates,
        method: &Method,
        route: RouteId,
        status: StatusCode,
        elapsed: f64,
    ) {
        let slot = METHODS
            .iter()
            .position(|m| m == method)
            .zip(STATUSES.iter().position(|s| *s == status.as_u16()))
            .map(|(m, s)| (route.0 * METHODS.len() + m) * STATUSES.len() + s);
        let labels = [method.as_str(), routes.label(route), status.as_str()];
        let resolve = || {
            (
                self.metrics.requests.with_label_values(&labels),
                self.metrics.duration.with_label_values(&labels),
            )
        };
        match slot.and_then(|slot| self.slots.get(slot)) {
            Some(slot) => {
                let (requests, duration) = slot.get_or_init(resolve);
                requests.inc();
                duration.observe(elapsed);
            }
            None => {
                let (requests, duration) = resolve();
                requests.inc();
                duration.observe(elapsed);
            }
        }
    }
}

/// A caller's request id is taken when it is short and plain.
fn plain_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The caller's request id when it is plain and short, else a new UUID.
pub fn request_id(given: Option<&HeaderValue>) -> String {
    let value = request_id_value(given);
    // Either a plain caller's id or a UUID: visible ASCII.
    value.to_str().unwrap_or_default().to_owned()
}

/// As [`request_id`], as the header value sent back: the caller's own value (no copy), or
/// a UUID encoded on the stack and copied once.
fn request_id_value(given: Option<&HeaderValue>) -> HeaderValue {
    match given {
        Some(value) if plain_request_id(value.as_bytes()) => value.clone(),
        _ => {
            let mut buffer = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let id = uuid::Uuid::new_v4().hyphenated();
            HeaderValue::from_str(id.encode_lower(&mut buffer))
                .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
        }
    }
}

/// The outermost middleware: request id, span, access log line, metrics, around
/// `answer` (the rest of the stack, which never fails: errors are responses by then).
pub(crate) async fn observe<F, Fut>(
    req: Request,
    ops: &Operations,
    routes: &RouteTemplates,
    series: &RequestSeries,
    answer: F,
) -> Response
where
    F: FnOnce(Request, RouteId) -> Fut,
    Fut: Future<Output = Response>,
{
    let started = Instant::now();
    let id = request_id_value(req.headers().get(&X_REQUEST_ID));
    let method = req.method().clone();
    let route = routes.find(req.uri().path());
    // A disabled span (`info` off) is built without formatting its fields.
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %method,
        route = routes.label(route),
    );
    let (mut response, store_error) = metrics::scoped(Arc::clone(&ops.metrics), answer(req, route))
        .instrument(span.clone())
        .await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    let status = response.status();
    let elapsed = started.elapsed().as_secs_f64();
    series.record(routes, &method, route, status, elapsed);
    let latency_ms = elapsed * 1000.0;
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, store_error, "request");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request");
        }
    });
    response
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
