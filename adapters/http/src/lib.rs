//! jwt-todo's HTTP adapter: the poem-openapi API, its spec and Swagger UI, and the
//! middleware every request passes through.
//!
//! # Layout
//! - [`api`]: the operations, one module per tag; each calls one use case.
//! - [`auth`]: the bearer security scheme, the one way an operation gets its caller.
//! - [`contract`]: each operation's error contract: the statuses and problem types it
//!   can answer, documented in the spec and checked when it answers.
//! - [`mapping`]: the single mapping from use-case errors to problems.
//! - [`problem`]: RFC 9457 problem documents, their kinds, and the rendering of errors
//!   raised before an operation runs.
//! - [`dto`]: wire types and their conversions; nothing outside this crate sees them.
//! - [`client`]: the client's address (TCP peer, or `X-Forwarded-For` from a trusted proxy).
//! - [`ops`]: request ids, the access log line, readiness probes; [`metrics`]: the
//!   Prometheus metrics and the request scope they are recorded in.
//! - [`oauth`]: OAuth 2.0 on the wire (error objects, client authentication); its
//!   operations are in `api`.
//! - [`cookie`], [`csrf`]: cookie mode for browsers, the refresh token in an `HttpOnly`
//!   cookie and the header token that guards the requests the cookie authenticates.
//!
//! Modules depend on each other without cycles: `api` -> `auth`, `contract`, `mapping`,
//! `oauth` -> `problem`; `metrics` knows only `problem`; `ops` only `metrics`; this root wires
//! them.
//!
//! # Request pipeline (outermost first)
//! observe (request id, span, access log, metrics; see [`ops`]) -> security headers ->
//! panic guard -> `Allow` on 405s -> error rendering (every error
//! becomes `application/problem+json`) -> body limit -> routes. For an operation that
//! takes a body, the body limit buffers at most `max_body_bytes` and refuses the rest with
//! 413, whether or not the client sent a `Content-Length`, so a slow or endless body cannot
//! make the server hold unbounded memory; and it gives the whole body `body_timeout` to
//! arrive, else 408 and the connection is closed, so a client trickling its body cannot
//! hold a connection either. Any other request's body is never read: the operation
//! answers without it, and the connection closes rather than drain it.

use std::sync::Arc;
use std::time::Duration;

use application::Services;
use poem::endpoint::BoxEndpoint;
use poem::http::{HeaderValue, StatusCode, header};
use poem::middleware::{CatchPanic, SetHeader};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::OpenApiService;

pub use ops::Operations;

pub mod api;
pub mod auth;
pub mod client;
pub mod contract;
pub mod cookie;
pub mod csrf;
pub mod dto;
pub mod mapping;
pub mod metrics;
pub mod oauth;
pub mod ops;
pub mod problem;

pub use api::Api;
pub use client::TrustedProxies;
pub use csrf::CsrfKeys;

/// Default request body limit: generous for this API's JSON, tiny for an attacker.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;
/// Default time for a whole request body to arrive.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub max_body_bytes: usize,
    /// How long the whole request body may take to arrive once the head is in; over it
    /// the answer is 408 and the connection closes.
    pub body_timeout: Duration,
    /// Served at `/.well-known/jwks.json`: the public keys of access tokens, if any.
    pub jwks: dto::JwkSet,
    /// Proxies whose `X-Forwarded-For` names the client (login throttling counts by it).
    pub trusted_proxies: TrustedProxies,
    /// Make and check cookie mode's CSRF tokens; derived from the refresh secret(s).
    pub csrf: CsrfKeys,
    /// The OAuth endpoints' clients and the names they report.
    pub oauth: oauth::OAuthConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            jwks: dto::JwkSet::default(),
            trusted_proxies: TrustedProxies::default(),
            // A random key: fine for one process (tests, benches); the server derives
            // its keys from `REFRESH_SECRET` so that every replica agrees.
            csrf: CsrfKeys::derive(&rand::random::<[u8; 32]>(), &[]),
            oauth: oauth::OAuthConfig::default(),
        }
    }
}

/// The OpenAPI service: the spec, and the operations when served.
pub fn openapi_service() -> OpenApiService<Api, ()> {
    OpenApiService::new(api::API, "jwt-todo", env!("CARGO_PKG_VERSION"))
        .description(
            "A todo API behind JWT access + refresh token pairs. Sessions live in a store, so \
             logout and refresh-token theft detection take effect at once. Errors are RFC 9457 \
             problem documents; 401s carry an RFC 6750 `WWW-Authenticate` challenge.",
        )
        .license("MIT OR Apache-2.0")
}

/// The API's operations, as poem-openapi describes them.
fn api_meta() -> Vec<poem_openapi::registry::MetaApi> {
    <Api as poem_openapi::OpenApi>::meta()
}

/// The spec as served at `/openapi.json` and committed in `openapi/openapi.json`.
pub fn spec_json() -> String {
    openapi_service().spec()
}

/// The whole HTTP application over the given use cases, with a metrics registry of its
/// own and no readiness probes besides the store.
pub fn app(services: Arc<Services>, config: HttpConfig) -> BoxEndpoint<'static, Response> {
    #[allow(clippy::expect_used)] // registering on a fresh registry cannot collide
    let ops = Operations::new().expect("fresh registry");
    app_with(services, config, ops)
}

/// The whole HTTP application over the given use cases; `/metrics` serves `ops.registry`
/// and `/readyz` also asks `ops.readiness`.
pub fn app_with(
    services: Arc<Services>,
    config: HttpConfig,
    ops: Operations,
) -> BoxEndpoint<'static, Response> {
    let api = openapi_service();
    let spec = api.spec_endpoint();
    let spec_yaml = api.spec_endpoint_yaml();
    let docs = api.swagger_ui();
    let max_body = config.max_body_bytes;
    let body_timeout = config.body_timeout;
    let jwks = Arc::new(config.jwks);
    let csrf = Arc::new(config.csrf);
    let allowed = Arc::new(AllowedMethods::of_api());
    let routes = Arc::new(ops::RouteTemplates::new(api_meta()));
    let with_body = Arc::new(BodyOperations::of_api());
    let registry = ops.registry.clone();
    let ops = Arc::new(ops);

    // `/metrics` is outside the OpenAPI contract (it is for operators, not API clients)
    // and unauthenticated: protect it at the network edge (see README, Operations).
    Route::new()
        .nest("/", api)
        .at(
            "/metrics",
            poem::get(poem::endpoint::make_sync(move |_| {
                ops::render_metrics(&registry)
            })),
        )
        .at("/openapi.json", spec)
        .at("/openapi.yaml", spec_yaml)
        .nest("/docs", docs)
        .data(services)
        .data(jwks)
        .data(Arc::clone(&ops))
        .data(Arc::new(config.trusted_proxies))
        .data(csrf)
        .data(Arc::new(config.oauth))
        .around(move |ep, req| {
            let with_body = Arc::clone(&with_body);
            async move { limit_body(ep, req, &with_body, max_body, body_timeout).await }
        })
        .around(oauth::shape_errors)
        .catch_all_error(problem::render_error)
        .around(move |ep, req| {
            let allowed = Arc::clone(&allowed);
            async move { allow_on_405(ep, req, &allowed).await }
        })
        .with(CatchPanic::new().with_handler(on_panic))
        .with(security_headers())
        .around(no_store_by_default)
        .around(move |ep, req| {
            let ops = Arc::clone(&ops);
            let routes = Arc::clone(&routes);
            async move { ops::observe(ep, req, &ops, &routes).await }
        })
        .map_to_response()
        // Boxed: the nested middleware type is deep enough to exhaust the compiler's
        // recursion limit in callers' async blocks; one virtual call per request is free.
        .boxed()
}

/// A panicking handler answers a plain 500 problem. A named function, not a closure: a
/// closure's inferred signature is not general enough once the endpoint is wrapped again.
fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    problem::internal_response()
}

/// `Cache-Control: no-store` on every response that does not choose its own caching,
/// because responses carry tokens and personal data (RFC 6749 §5.1 requires it for token
/// responses). Only public documents (the JWKS) set their own.
async fn no_store_by_default<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let mut response = ep.call(req).await?.into_response();
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert_with(|| HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Headers on every response: deny sniffing, framing and referrer leaks.
fn security_headers() -> SetHeader {
    SetHeader::new()
        .overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        )
        .overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"))
        .overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        )
}

/// For an operation that takes a body, reads at most `max` bytes of it; more is a 413
/// before any handler runs. The whole body must arrive within `timeout`, else 408 (which
/// closes the connection; see `problem::render_error`): a deadline on the whole body, not
/// between reads, so a client trickling a byte now and then is cut as surely as a silent
/// one. Any other request's body is dropped unread.
async fn limit_body<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    with_body: &BodyOperations,
    max: usize,
    timeout: Duration,
) -> poem::Result<Response> {
    if !with_body.takes_body(req.method().as_str(), req.uri().path()) {
        drop(req.take_body());
        return Ok(ep.call(req).await?.into_response());
    }
    let declared = req
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let body = req.take_body();
    if !body.is_empty() {
        let bytes = tokio::time::timeout(timeout, body.into_bytes_limit(max))
            .await
            .map_err(|_| poem::Error::from_status(StatusCode::REQUEST_TIMEOUT))?
            .map_err(|_| poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE))?;
        req.set_body(bytes);
    }
    Ok(ep.call(req).await?.into_response())
}

/// Whether `segments` (a path template split at `/`) matches the request path `wanted`.
fn matches_template(segments: &[String], wanted: &[&str]) -> bool {
    segments.len() == wanted.len()
        && segments.iter().zip(wanted).all(|(segment, part)| {
            segment.starts_with('{') || segment.starts_with(':') || segment == part
        })
}

/// The operations that take a request body, by method and path template.
#[derive(Debug)]
struct BodyOperations(Vec<(String, Vec<String>)>);

impl BodyOperations {
    fn of_api() -> Self {
        let operations = api_meta()
            .into_iter()
            .flat_map(|api| api.paths)
            .flat_map(|path| {
                let segments: Vec<String> = path.path.split('/').map(str::to_owned).collect();
                path.operations
                    .into_iter()
                    .filter(|op| op.request.is_some())
                    .map(move |op| (op.method.as_str().to_owned(), segments.clone()))
            })
            .collect();
        Self(operations)
    }

    fn takes_body(&self, method: &str, path: &str) -> bool {
        let wanted: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .any(|(m, segments)| m == method && matches_template(segments, &wanted))
    }
}

/// The methods the API declares for each path, for the `Allow` header that RFC 9110
/// §15.5.6 requires on every 405.
#[derive(Debug)]
struct AllowedMethods(Vec<(Vec<String>, String)>);

impl AllowedMethods {
    fn of_api() -> Self {
        let routes = api_meta()
            .into_iter()
            .flat_map(|api| api.paths)
            .map(|path| {
                let mut methods: Vec<&str> = path
                    .operations
                    .iter()
                    .map(|op| op.method.as_str())
                    .collect();
                methods.sort_unstable();
                methods.dedup();
                let segments = path.path.split('/').map(str::to_owned).collect();
                (segments, methods.join(", "))
            })
            .collect();
        Self(routes)
    }

    /// The `Allow` value for a request path, if the API declares that path.
    fn for_path(&self, path: &str) -> Option<&str> {
        let wanted: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .find(|(segments, _)| matches_template(segments, &wanted))
            .map(|(_, methods)| methods.as_str())
    }
}

/// Adds `Allow` to a 405 (after the error became a problem document).
async fn allow_on_405<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    allowed: &AllowedMethods,
) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let mut response = ep.call(req).await?.into_response();
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(value) = allowed
            .for_path(&path)
            .and_then(|methods| HeaderValue::from_str(methods).ok())
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_declared_methods_of_a_path() {
        let allowed = AllowedMethods::of_api();
        assert_eq!(allowed.for_path("/login"), Some("POST"));
        assert_eq!(allowed.for_path("/todo"), Some("GET, POST"));
        assert_eq!(
            allowed.for_path("/todo/0b0c0d0e-0000-4000-8000-000000000000"),
            Some("DELETE, GET, PATCH")
        );
        assert_eq!(allowed.for_path("/sessions/x"), Some("DELETE"));
        assert_eq!(allowed.for_path("/nowhere"), None);
        assert_eq!(allowed.for_path("/todo/a/b"), None);
    }

    #[test]
    fn only_operations_with_a_body_read_one() {
        let with_body = BodyOperations::of_api();
        assert!(with_body.takes_body("POST", "/login"));
        assert!(with_body.takes_body("PATCH", "/todo/x"));
        assert!(!with_body.takes_body("GET", "/todo/x"));
        assert!(!with_body.takes_body("GET", "/readyz"));
        assert!(!with_body.takes_body("POST", "/logout"));
        assert!(!with_body.takes_body("POST", "/nowhere"));
    }
}
