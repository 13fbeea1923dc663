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
//!
//! The stages are one endpoint (`Stack`), not a chain of poem middleware, and the API's
//! paths are not nested under a router of their own: every level of a chain holds the
//! future of the level inside it and moves it, whole, when it is created. Wrapped a dozen
//! times around poem's routers, a request's state was 28 KiB, copied some thirty times
//! (two thirds of the instructions of an authenticated `GET /me`; see
//! `server/benches/auth.rs`). Now `Stack` calls the API's router directly for the paths
//! one lookup (`ops::RouteTemplates`) finds in the API, the few large futures (the
//! router's, the body read) are boxed where they are made, and the panic guard and the
//! metrics scope are combinators that hold their future once: about 4 KiB, and about
//! as many instructions as a bare poem-openapi handler. The same lookup serves the route
//! label, the body limit and the `Allow` of a 405.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use application::Services;
use futures_util::FutureExt;
use poem::endpoint::BoxEndpoint;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, EndpointExt, Request, Response, Route, RouteMethod};
use poem_openapi::__private::UrlQuery;
use poem_openapi::{OpenApi, OpenApiService};

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
    let registry = ops.registry.clone();
    let routes = ops::RouteTemplates::new(api_meta());
    let series = ops::RequestSeries::new(Arc::clone(&ops.metrics), &routes);
    let ops = Arc::new(ops);

    // `/metrics` is outside the OpenAPI contract (it is for operators, not API clients)
    // and unauthenticated: protect it at the network edge (see README, Operations).
    let others = Route::new()
        .at(
            "/metrics",
            poem::get(poem::endpoint::make_sync(move |_| {
                ops::render_metrics(&registry)
            })),
        )
        .at("/openapi.json", spec)
        .at("/openapi.yaml", spec_yaml)
        .nest("/docs", docs);
    Stack {
        api: api_routes(),
        others,
        data: RequestData {
            services,
            jwks: Arc::new(config.jwks),
            ops: Arc::clone(&ops),
            trusted_proxies: Arc::new(config.trusted_proxies),
            csrf: Arc::new(config.csrf),
            oauth: Arc::new(config.oauth),
        },
        ops,
        routes,
        series,
        max_body: config.max_body_bytes,
        body_timeout: config.body_timeout,
    }
    // Boxed: the server holds the application as one type; one virtual call per request.
    .boxed()
}

/// The API's operations on poem's router, one [`RouteMethod`] per path, as poem-openapi's
/// own endpoint builds them (`OpenApiService::into_endpoint`), without the wrappers it puts
/// around them: its cookie jar (no operation reads poem's cookie jar: cookie mode reads the
/// `Cookie` header itself, see [`cookie`]), its query parsing (done by [`Stack`], only for
/// the API's paths) and its boxing. [`Stack`] calls it directly for the paths
/// [`ops::RouteTemplates`] finds in the API, instead of nesting the API under a router of
/// its own: each router level rewrote the request's path and moved its future, whole.
fn api_routes() -> Route {
    let mut table = std::collections::HashMap::new();
    api::API.add_routes(&mut table);
    table
        .into_iter()
        .fold(Route::new(), |route, (path, operations)| {
            route.at(
                path,
                operations
                    .into_iter()
                    .fold(RouteMethod::new(), |methods, (method, operation)| {
                        methods.method(method, operation)
                    }),
            )
        })
}

/// What the operations extract with `Data<&Arc<_>>`, added to every request.
struct RequestData {
    services: Arc<Services>,
    jwks: Arc<dto::JwkSet>,
    ops: Arc<Operations>,
    trusted_proxies: Arc<TrustedProxies>,
    csrf: Arc<CsrfKeys>,
    oauth: Arc<oauth::OAuthConfig>,
}

impl RequestData {
    fn add_to(&self, req: &mut Request) {
        let extensions = req.extensions_mut();
        extensions.insert(Arc::clone(&self.services));
        extensions.insert(Arc::clone(&self.jwks));
        extensions.insert(Arc::clone(&self.ops));
        extensions.insert(Arc::clone(&self.trusted_proxies));
        extensions.insert(Arc::clone(&self.csrf));
        extensions.insert(Arc::clone(&self.oauth));
    }
}

/// The middleware of the module docs' request pipeline as one endpoint around the
/// routes: one call per request instead of a chain of wrappers, and one lookup of the
/// request path in [`ops::RouteTemplates`] serves the route label, the body limit and
/// the `Allow` of a 405.
struct Stack {
    /// The API's operations ([`api_routes`]).
    api: Route,
    /// `/metrics`, the spec, Swagger UI; and the 404 of any path outside the API.
    others: Route,
    data: RequestData,
    ops: Arc<Operations>,
    routes: ops::RouteTemplates,
    series: ops::RequestSeries,
    max_body: usize,
    body_timeout: Duration,
}

impl Endpoint for Stack {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        Ok(
            ops::observe(req, &self.ops, &self.routes, &self.series, |req, route| {
                self.guarded(req, route)
            })
            .await,
        )
    }
}

impl Stack {
    /// Inside `observe`: the panic guard, then the headers every response carries.
    async fn guarded(&self, req: Request, route: ops::RouteId) -> Response {
        let mut response = AssertUnwindSafe(self.answer(req, route))
            .catch_unwind()
            .await
            .unwrap_or_else(on_panic);
        // Static values, built at compile time: no copy, no validation per request.
        let headers = response.headers_mut();
        // Deny sniffing, framing and referrer leaks, on every response.
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            const { HeaderValue::from_static("nosniff") },
        );
        headers.insert(
            header::X_FRAME_OPTIONS,
            const { HeaderValue::from_static("DENY") },
        );
        headers.insert(
            header::REFERRER_POLICY,
            const { HeaderValue::from_static("no-referrer") },
        );
        // `Cache-Control: no-store` unless the response chose its own caching: responses
        // carry tokens and personal data (RFC 6749 §5.1 requires it for token
        // responses); only public documents (the JWKS) set their own.
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(const { HeaderValue::from_static("no-store") });
        response
    }

    /// Inside the panic guard: the body limit, the routes, and every error rendered as a
    /// response (an OAuth error object under `/oauth/`, a problem document elsewhere);
    /// a 405 gets its `Allow`.
    async fn answer(&self, req: Request, route: ops::RouteId) -> Response {
        let under_oauth = req.uri().path().starts_with(oauth::PREFIX);
        let mut result = self.limit_body(req, route).await;
        if under_oauth && let Err(err) = result {
            result = oauth::shape_error(err);
        }
        let mut response = match result {
            Ok(response) => response,
            Err(err) => problem::render_error(err).await,
        };
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = self.routes.allow(route)
        {
            response.headers_mut().insert(header::ALLOW, allow.clone());
        }
        response
    }

    /// For an operation that takes a body, reads at most `max_body` bytes of it; more is
    /// a 413 before any handler runs. The whole body must arrive within `body_timeout`,
    /// else 408 (which closes the connection; see `problem::render_error`): a deadline on
    /// the whole body, not between reads, so a client trickling a byte now and then is
    /// cut as surely as a silent one. Any other request's body is dropped unread.
    async fn limit_body(&self, mut req: Request, route: ops::RouteId) -> poem::Result<Response> {
        if self.routes.takes_body(route, req.method()) {
            let declared = req
                .header(header::CONTENT_LENGTH)
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > self.max_body as u64) {
                return Err(poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE));
            }
            let body = req.take_body();
            if !body.is_empty() {
                // Boxed, as the routes' futures below: a few KiB, that every level above
                // would otherwise hold and move.
                let bytes = Box::pin(tokio::time::timeout(
                    self.body_timeout,
                    body.into_bytes_limit(self.max_body),
                ))
                .await
                .map_err(|_| poem::Error::from_status(StatusCode::REQUEST_TIMEOUT))?
                .map_err(|_| poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE))?;
                req.set_body(bytes);
            }
        } else {
            drop(req.take_body());
        }
        if !self.routes.in_api(route) {
            return Box::pin(self.others.call(req)).await;
        }
        // What poem-openapi's own endpoint adds before its operations: the query string
        // as pairs (every operation's parameters and security schemes read it).
        let query = req.params().unwrap_or_default();
        req.extensions_mut().insert(UrlQuery(query));
        self.data.add_to(&mut req);
        Box::pin(self.api.call(req)).await
    }
}

/// A panicking handler answers a plain 500 problem.
fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    problem::internal_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::Method;

    #[test]
    fn allow_lists_the_declared_methods_of_a_path() {
        let routes = ops::RouteTemplates::new(api_meta());
        let allow = |path: &str| {
            routes
                .allow(routes.find(path))
                .map(|v| v.to_str().expect("ascii").to_owned())
        };
        assert_eq!(allow("/login").as_deref(), Some("POST"));
        assert_eq!(allow("/todo").as_deref(), Some("GET, POST"));
        assert_eq!(
            allow("/todo/0b0c0d0e-0000-4000-8000-000000000000").as_deref(),
            Some("DELETE, GET, PATCH")
        );
        assert_eq!(allow("/sessions/x").as_deref(), Some("DELETE"));
        assert_eq!(allow("/nowhere"), None);
        assert_eq!(allow("/todo/a/b"), None);
        assert_eq!(allow("/metrics"), None);
    }

    /// The size of `F`'s future, without calling `F`.
    fn future_size<F: FnOnce() -> Fut, Fut>(_: F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// Every level of the stack holds the future of the level inside it and moves it,
    /// whole, when created; the request's state was 28 KiB when the routes' futures were
    /// inline and the panic guard and the metrics scope each held their future twice
    /// (two thirds of a `GET /me`'s instructions were `memcpy`). The big futures are
    /// boxed once, where they are made; this keeps it that way.
    #[test]
    fn a_request_future_stays_small() {
        let stack: Option<Stack> = None;
        let size = future_size(|| {
            stack
                .as_ref()
                .expect("never called")
                .call(Request::default())
        });
        eprintln!("Stack::call future: {size} bytes");
        assert!(size <= 8 * 1024, "{size} bytes");
    }

    /// poem-openapi's own endpoint refuses to start with two operations of one id (the
    /// generated clients name their methods by it); [`api_routes`] does not build that
    /// endpoint, so the check is here.
    #[test]
    fn operation_ids_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for id in api_meta()
            .into_iter()
            .flat_map(|api| api.paths)
            .flat_map(|path| path.operations)
            .filter_map(|op| op.operation_id)
        {
            assert!(seen.insert(id), "operation id {id} used twice");
        }
        assert!(seen.len() > 20, "{} operations", seen.len());
    }

    #[test]
    fn only_operations_with_a_body_read_one() {
        let routes = ops::RouteTemplates::new(api_meta());
        let takes_body = |method: Method, path: &str| routes.takes_body(routes.find(path), &method);
        assert!(takes_body(Method::POST, "/login"));
        assert!(takes_body(Method::PATCH, "/todo/x"));
        assert!(!takes_body(Method::GET, "/todo/x"));
        assert!(!takes_body(Method::GET, "/readyz"));
        assert!(!takes_body(Method::POST, "/logout"));
        assert!(!takes_body(Method::POST, "/nowhere"));
    }
}
