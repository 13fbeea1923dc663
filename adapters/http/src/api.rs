//! The operations. Each handler converts DTOs, calls one use case and converts the
//! result; statuses come from [`crate::problem`], never from here.

use std::sync::Arc;

use application::usecases::{
    CreateTodoError, CreateTodoRequest, LoginError, LoginRequest, LogoutCredential, LogoutError,
    RefreshError, RegisterError, RegisterRequest, SetPhoneRequest, UpdateTodoRequest,
    VerifyPhoneRequest,
};
use application::{Principal, Services};
use domain::{IdempotencyKey, SessionId, TodoId, TokenPair};
use poem::Request;
use poem::web::Data;
use poem_openapi::auth::Bearer;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, SecurityScheme, Tags};
use uuid::Uuid;

use crate::client::TrustedProxies;
use crate::csrf::CsrfKeys;
use crate::ops::{self, Operations};
use crate::problem::{
    ApiError, ApiResult, LoginFailure, Problem, SetPhoneFailure, too_many_requests,
};
use crate::{cookie, dto};

#[derive(Tags)]
enum Tag {
    /// Login, token refresh, logout.
    Auth,
    /// Registration and the caller's profile.
    Users,
    /// The caller's todos.
    Todos,
    /// The caller's sessions (logged-in devices).
    Sessions,
    /// Liveness for load balancers.
    Health,
}

/// An access token from `POST /login` or `POST /token/refresh`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT")]
pub struct BearerAuth(Bearer);

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerAuth([REDACTED])")
    }
}

type Svc<'a> = Data<&'a Arc<Services>>;

const INVALID_CURSOR: &str = "Not a cursor this listing gave out; pass its 'next' unchanged";

async fn principal(services: &Services, auth: &BearerAuth) -> ApiResult<Principal> {
    Ok(services.authenticate.execute(&auth.0.token).await?)
}

fn user_agent(req: &Request) -> Option<String> {
    req.header(poem::http::header::USER_AGENT)
        .map(str::to_owned)
}

/// The `Idempotency-Key` header, checked.
#[allow(
    clippy::result_large_err,
    reason = "the error is the response, as in every handler's ApiResult; built once per request"
)]
fn idempotency_key(header: Header<Option<String>>) -> ApiResult<Option<IdempotencyKey>> {
    header
        .0
        .as_deref()
        .map(IdempotencyKey::parse)
        .transpose()
        .map_err(|e| ApiError::bad_parameter("Idempotency-Key", e.to_string()))
}

/// The `cursor` query parameter of a listing, read by `parse` (the listing's own cursor
/// form); anything else is a 400.
#[allow(
    clippy::result_large_err,
    reason = "the error is the response, as in every handler's ApiResult; built once per request"
)]
fn cursor<C>(raw: Option<&str>, parse: fn(&str) -> Option<C>) -> ApiResult<Option<C>> {
    raw.map(|raw| parse(raw).ok_or_else(|| ApiError::bad_parameter("cursor", INVALID_CURSOR)))
        .transpose()
}

/// `Idempotent-Replayed: true` on an answer given again.
fn replayed(replayed: bool) -> Option<String> {
    replayed.then(|| "true".to_owned())
}

#[derive(ApiResponse)]
enum LoginResponse {
    /// Logged in: a new session and its first token pair.
    #[oai(status = 200)]
    Ok(
        Json<dto::TokenResponse>,
        /// Cookie mode only: the refresh token as an `HttpOnly` cookie.
        #[oai(header = "Set-Cookie")]
        Option<String>,
    ),
    /// Too many failed logins for this username from this client, or from this client
    /// for any username: refused without checking the password. `Retry-After` gives the
    /// seconds until the window frees.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] String),
}

#[derive(ApiResponse)]
enum RefreshResponse {
    /// The presented refresh token is spent; here is the session's new pair.
    #[oai(status = 201)]
    Created(
        Json<dto::TokenResponse>,
        /// Cookie mode only: the new refresh token as an `HttpOnly` cookie.
        #[oai(header = "Set-Cookie")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
enum LogoutResponse {
    /// The sessions are ended: their access and refresh tokens no longer work.
    #[oai(status = 200)]
    Ok(
        Json<dto::LogoutResponse>,
        /// Cookie mode only: deletes the refresh cookie (`Max-Age=0`).
        #[oai(header = "Set-Cookie")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
enum RegisterResponse {
    /// The account exists; log in with it.
    #[oai(status = 201)]
    Created(
        Json<dto::UserResponse>,
        /// `true` when this is the answer of an earlier request with the same
        /// `Idempotency-Key`, given again: no second account was made.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
    /// Too many registrations from this client address: refused without any work.
    /// `Retry-After` gives the seconds until the window frees.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] String),
}

#[derive(ApiResponse)]
enum MeResponse {
    #[oai(status = 200)]
    Ok(Json<dto::UserResponse>),
}

#[derive(ApiResponse)]
enum SetPhoneResponse {
    /// The number is the caller's now, unverified, and a code is on its way by SMS.
    #[oai(status = 202)]
    Accepted(Json<dto::PhoneCodeResponse>),
    /// A code was requested too recently, or the SMS caps of the caller or of the number
    /// are reached: nothing changed and nothing was sent. `Retry-After` gives the seconds
    /// until a request can succeed.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] String),
}

#[derive(ApiResponse)]
enum VerifyPhoneResponse {
    /// The number is verified: todo SMS go to it from now on.
    #[oai(status = 200)]
    Ok(Json<dto::UserResponse>),
}

#[derive(ApiResponse)]
enum CreateTodoResponse {
    #[oai(status = 201)]
    Created(
        Json<dto::TodoResponse>,
        /// `true` when this is the answer of an earlier request with the same
        /// `Idempotency-Key`, given again: no second todo was made.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
    /// Too many todos created by this user in the current minute: nothing was created.
    /// `Retry-After` gives the seconds until the window frees.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] String),
}

#[derive(ApiResponse)]
enum ListTodosResponse {
    #[oai(status = 200)]
    Ok(Json<dto::TodoPage>),
}

#[derive(ApiResponse)]
enum TodoResponse {
    #[oai(status = 200)]
    Ok(Json<dto::TodoResponse>),
}

#[derive(ApiResponse)]
enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
enum ListSessionsResponse {
    #[oai(status = 200)]
    Ok(Json<dto::SessionPage>),
}

#[derive(ApiResponse)]
enum JwksResponse {
    /// The public keys; cache them for the given time, and fetch again on an unknown `kid`.
    #[oai(status = 200)]
    Ok(Json<dto::JwkSet>, #[oai(header = "Cache-Control")] String),
}

/// How long verifiers may cache the JWKS. Short, so that a key staged for rotation
/// reaches them well before it signs (README, "Rotating keys").
pub const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

#[derive(ApiResponse)]
enum HealthResponse {
    #[oai(status = 200)]
    Ok(Json<dto::HealthResponse>),
}

fn logged_out(sessions_ended: u64, set_cookie: Option<String>) -> LogoutResponse {
    LogoutResponse::Ok(
        Json(dto::LogoutResponse {
            message: "Successfully logged out".into(),
            sessions_ended,
        }),
        set_cookie,
    )
}

/// A token pair as the answer: in the body (JSON mode), or with the refresh token moved
/// to a cookie and the session's CSRF token added (cookie mode).
fn deliver(
    pair: TokenPair,
    cookie_mode: bool,
    csrf: &CsrfKeys,
) -> (Json<dto::TokenResponse>, Option<String>) {
    let session = pair.session_id;
    let mut body = dto::TokenResponse::from(pair);
    if !cookie_mode {
        return (Json(body), None);
    }
    let set_cookie = body
        .refresh_token
        .take()
        .map(|token| cookie::set(&token, body.refresh_expires_in));
    body.csrf_token = Some(csrf.token(session));
    (Json(body), set_cookie)
}

/// Where the refresh token of a refresh or revoke came from.
enum Presented {
    /// The JSON body: JSON mode, no CSRF check (nothing ambient authenticates it).
    Body(String),
    /// The cookie, already checked against the `X-CSRF-Token` header.
    Cookie(String),
}

impl Presented {
    fn token(&self) -> &str {
        match self {
            Presented::Body(token) | Presented::Cookie(token) => token,
        }
    }

    fn into_token(self) -> String {
        match self {
            Presented::Body(token) | Presented::Cookie(token) => token,
        }
    }

    fn is_cookie(&self) -> bool {
        matches!(self, Presented::Cookie(_))
    }
}

/// The refresh token a request presents: the body's if there is one, else the cookie's,
/// which must come with the session's CSRF token in `X-CSRF-Token` (403 otherwise, before
/// anything is spent or revoked).
#[allow(
    clippy::result_large_err,
    reason = "the error is the response, as in every handler's ApiResult; built once per request"
)]
fn presented(
    services: &Services,
    csrf: &CsrfKeys,
    req: &Request,
    body_token: Option<dto::Text>,
) -> ApiResult<Presented> {
    if let Some(token) = body_token {
        return Ok(Presented::Body(token.0));
    }
    let token = cookie::read(req).ok_or_else(ApiError::missing_refresh_token)?;
    let header = cookie::csrf_header(req).ok_or_else(|| {
        ApiError::csrf("Send the 'X-CSRF-Token' header from the login response with the cookie")
    })?;
    let session = services.refresh.session_of(&token)?;
    if !csrf.verify(session, header) {
        return Err(ApiError::csrf(
            "The 'X-CSRF-Token' header does not match the session",
        ));
    }
    Ok(Presented::Cookie(token))
}

/// The whole API, one `OpenApi` impl so operation ids and tags stay in one place.
#[derive(Debug, Clone, Copy, Default)]
pub struct Api;

#[OpenApi]
impl Api {
    /// Log in
    ///
    /// Checks the credentials and opens a session. Unknown user and wrong password get
    /// the same answer in the same time. Failed logins are counted per username and
    /// client address and per client address; over a limit the answer is 429, without
    /// checking the password.
    #[oai(
        path = "/login",
        method = "post",
        tag = "Tag::Auth",
        operation_id = "login"
    )]
    async fn login(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        csrf: Data<&Arc<CsrfKeys>>,
        req: &Request,
        body: Json<dto::LoginRequest>,
        /// `true`: cookie mode, for browsers. The refresh token is set as the
        /// `__Secure-refresh_token` cookie (`HttpOnly; Secure; SameSite=Strict;
        /// Path=/token`) instead of in the body, and the body carries a `csrf_token` to
        /// send as `X-CSRF-Token` when refreshing or revoking with the cookie.
        cookie: Query<Option<bool>>,
    ) -> ApiResult<LoginResponse> {
        let body = body.0;
        let result = services
            .login
            .execute(LoginRequest {
                username: body.username.0,
                password: body.password.0,
                user_agent: user_agent(req),
                client: proxies.client_of(req),
            })
            .await;
        ops::login_outcome(match &result {
            Ok(_) => "success",
            Err(LoginError::InvalidCredentials) => "invalid_credentials",
            Err(LoginError::Throttled { .. }) => "throttled",
            Err(LoginError::Overloaded) => "overloaded",
            Err(LoginError::Unavailable(_)) => "unavailable",
            Err(LoginError::Unexpected(_)) => "error",
        });
        match result.map_err(LoginFailure::from) {
            Ok(logged_in) => {
                ops::sessions_revoked("evicted", logged_in.evicted);
                let (body, set_cookie) = deliver(logged_in.pair, cookie.0.unwrap_or(false), &csrf);
                Ok(LoginResponse::Ok(body, set_cookie))
            }
            Err(LoginFailure::TooManyRequests(problem, retry_after)) => {
                Ok(LoginResponse::TooManyRequests(problem, retry_after))
            }
            Err(LoginFailure::Other(error)) => Err(error),
        }
    }

    /// Refresh tokens
    ///
    /// Spends the refresh token and returns a new pair for the same session. A refresh
    /// token can be used once: presenting a spent one again ends its session.
    ///
    /// Cookie mode: send `{}` with the `__Secure-refresh_token` cookie and the header
    /// `X-CSRF-Token: <csrf_token from the login>`; a missing or wrong header is a 403 and
    /// spends nothing. The new refresh token comes back as the cookie. A `refresh_token`
    /// in the body wins over the cookie (JSON mode).
    #[oai(
        path = "/token/refresh",
        method = "post",
        tag = "Tag::Auth",
        operation_id = "refresh_token"
    )]
    async fn refresh(
        &self,
        services: Svc<'_>,
        csrf: Data<&Arc<CsrfKeys>>,
        req: &Request,
        body: Json<dto::RefreshRequest>,
        /// `true`: answer in cookie mode (the new refresh token as the cookie, not in the
        /// body). Implied when the cookie authenticates the request.
        cookie: Query<Option<bool>>,
    ) -> ApiResult<RefreshResponse> {
        let presented = presented(&services, &csrf, req, body.0.refresh_token)?;
        let result = services.refresh.execute(presented.token()).await;
        ops::refresh_outcome(match &result {
            Ok(_) => "success",
            Err(RefreshError::InvalidToken) => "invalid",
            Err(RefreshError::Reused) => "reused",
            Err(RefreshError::Unavailable(_)) => "unavailable",
            Err(RefreshError::Unexpected(_)) => "error",
        });
        // A cookie-authenticated refresh always answers with a cookie: the token must
        // never reach script that could only send the cookie.
        let cookie_mode = cookie.0.unwrap_or(false) || presented.is_cookie();
        let (body, set_cookie) = deliver(result?, cookie_mode, &csrf);
        Ok(RefreshResponse::Created(body, set_cookie))
    }

    /// Log out
    ///
    /// Ends the caller's session (`scope=local`, the default), all its other sessions
    /// (`others`) or all of them (`global`). Access and refresh tokens of ended sessions
    /// stop working at once.
    #[oai(
        path = "/logout",
        method = "post",
        tag = "Tag::Auth",
        operation_id = "logout"
    )]
    async fn logout(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        /// Which sessions to end: `local` (the default), `others` or `global`.
        // An `Option`, not `#[oai(default)]`: a default wraps the enum's `$ref` in an
        // `allOf`, which generated clients (openapi-python-client) refuse.
        scope: Query<Option<dto::Scope>>,
        /// `true`: also delete the refresh cookie of cookie mode (unless `scope=others`,
        /// which keeps this session).
        cookie: Query<Option<bool>>,
    ) -> ApiResult<LogoutResponse> {
        let principal = principal(&services, &auth).await?;
        let scope = scope.0.unwrap_or_default();
        let ended = services
            .logout
            .execute(LogoutCredential::Access(principal), scope.into())
            .await?;
        ops::sessions_revoked("logout", ended);
        let clear = cookie.0.unwrap_or(false) && scope != dto::Scope::Others;
        Ok(logged_out(ended, clear.then(cookie::clear)))
    }

    /// Log out with a refresh token
    ///
    /// For a client whose access token has expired: ends the refresh token's session
    /// (or, with `scope`, the user's other or all sessions).
    ///
    /// Cookie mode: leave `refresh_token` out and send the cookie with `X-CSRF-Token`, as
    /// for a refresh; the answer deletes the cookie unless `scope=others`.
    #[oai(
        path = "/token/revoke",
        method = "post",
        tag = "Tag::Auth",
        operation_id = "revoke_token"
    )]
    async fn revoke(
        &self,
        services: Svc<'_>,
        csrf: Data<&Arc<CsrfKeys>>,
        req: &Request,
        body: Json<dto::RevokeRequest>,
    ) -> ApiResult<LogoutResponse> {
        let body = body.0;
        let scope = body.scope.unwrap_or_default();
        let presented = presented(&services, &csrf, req, body.refresh_token)?;
        let clear = presented.is_cookie() && scope != dto::Scope::Others;
        let ended = services
            .logout
            .execute(
                LogoutCredential::Refresh(presented.into_token()),
                scope.into(),
            )
            .await
            .inspect_err(|e| {
                if matches!(e, LogoutError::Reused) {
                    ops::reuse_detected();
                }
            })?;
        ops::sessions_revoked("token_revoke", ended);
        Ok(logged_out(ended, clear.then(cookie::clear)))
    }

    /// Register
    ///
    /// Registrations are counted per client address; over the limit the answer is 429
    /// without any work. A taken name is 409 at once (no password is hashed for it).
    ///
    /// Send an `Idempotency-Key` to make a retry safe: the same key with the same body
    /// within 24 hours gets the first answer again (`Idempotent-Replayed: true`), and the
    /// same key with a different body 422.
    #[oai(
        path = "/users",
        method = "post",
        tag = "Tag::Users",
        operation_id = "register"
    )]
    async fn register(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        body: Json<dto::RegisterRequest>,
        /// A unique key for this registration (a UUID), to retry it safely.
        #[oai(name = "Idempotency-Key")]
        idempotency: Header<Option<String>>,
    ) -> ApiResult<RegisterResponse> {
        let body = body.0;
        let result = services
            .register
            .execute(RegisterRequest {
                username: body.username.0,
                password: body.password.0,
                phone: body.phone.map(|p| p.0),
                client: proxies.client_of(req),
                idempotency_key: idempotency_key(idempotency)?,
            })
            .await;
        match result {
            Ok(registered) => Ok(RegisterResponse::Created(
                Json(registered.user.into()),
                replayed(registered.replayed),
            )),
            Err(RegisterError::Throttled { retry_after }) => {
                let (problem, seconds) = too_many_requests(
                    "too-many-registrations",
                    "Too many registrations",
                    "Too many registrations from this client",
                    retry_after,
                );
                Ok(RegisterResponse::TooManyRequests(problem, seconds))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// The caller's profile
    #[oai(path = "/me", method = "get", tag = "Tag::Users", operation_id = "me")]
    async fn me(&self, services: Svc<'_>, auth: BearerAuth) -> ApiResult<MeResponse> {
        // Checks the token and the session in the same store round trip as the profile
        // read.
        let user = services.me.execute(&auth.0.token).await?;
        Ok(MeResponse::Ok(Json(user.into())))
    }

    /// Set the phone number
    ///
    /// Sets the caller's number, unverified, and texts it a 6-digit code to confirm with
    /// `POST /me/phone/verify` (valid 10 minutes by default). Todo SMS go only to a
    /// verified number. Send the same number again to get a new code (the number is
    /// unverified until it is confirmed); a new code replaces the previous one. Code requests are limited per user (one a minute by default) and
    /// count against the SMS caps per user and per number; over a limit the answer is 429
    /// and nothing changes.
    #[oai(
        path = "/me/phone",
        method = "post",
        tag = "Tag::Users",
        operation_id = "set_phone"
    )]
    async fn set_phone(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        body: Json<dto::SetPhoneRequest>,
    ) -> ApiResult<SetPhoneResponse> {
        let principal = principal(&services, &auth).await?;
        let result = services
            .set_phone
            .execute(
                principal,
                SetPhoneRequest {
                    phone: body.0.phone.0,
                },
            )
            .await;
        match result.map_err(SetPhoneFailure::from) {
            Ok(sent) => Ok(SetPhoneResponse::Accepted(Json(sent.into()))),
            Err(SetPhoneFailure::TooManyRequests(problem, retry_after)) => {
                Ok(SetPhoneResponse::TooManyRequests(problem, retry_after))
            }
            Err(SetPhoneFailure::Other(error)) => Err(error),
        }
    }

    /// Verify the phone number
    ///
    /// Confirms the caller's number with the code texted to it. A code works once, for
    /// the number it was sent to, until it expires, and only until 5 wrong codes were
    /// tried (then ask for a new one).
    #[oai(
        path = "/me/phone/verify",
        method = "post",
        tag = "Tag::Users",
        operation_id = "verify_phone"
    )]
    async fn verify_phone(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        body: Json<dto::VerifyPhoneRequest>,
    ) -> ApiResult<VerifyPhoneResponse> {
        // The number the code must match comes with the session check.
        let caller = services.authenticate.identify(&auth.0.token).await?;
        let user = services
            .verify_phone
            .execute(
                &caller,
                VerifyPhoneRequest {
                    code: body.0.code.0,
                },
            )
            .await?;
        Ok(VerifyPhoneResponse::Ok(Json(user.into())))
    }

    /// Create a todo
    ///
    /// A user holds at most a configured number of todos (409 beyond it) and creates at
    /// most a configured number per minute (429 beyond it, with `Retry-After`).
    ///
    /// Send an `Idempotency-Key` to make a retry safe: the same key with the same title
    /// within 24 hours gets the todo the first request created (`Idempotent-Replayed:
    /// true`), and the same key with a different title 422.
    #[oai(
        path = "/todo",
        method = "post",
        tag = "Tag::Todos",
        operation_id = "create_todo"
    )]
    async fn create_todo(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        body: Json<dto::CreateTodoRequest>,
        /// A unique key for this creation (a UUID), to retry it safely.
        #[oai(name = "Idempotency-Key")]
        idempotency: Header<Option<String>>,
    ) -> ApiResult<CreateTodoResponse> {
        let idempotency_key = idempotency_key(idempotency)?;
        // The SMS needs the phone: the profile comes with the session check.
        let caller = services.authenticate.identify(&auth.0.token).await?;
        let result = services
            .create_todo
            .execute(
                &caller,
                CreateTodoRequest {
                    title: body.0.title.0,
                    idempotency_key,
                },
            )
            .await;
        match result {
            Ok(created) => Ok(CreateTodoResponse::Created(
                Json(created.todo.into()),
                replayed(created.replayed),
            )),
            Err(CreateTodoError::RateLimited { retry_after }) => {
                let (problem, seconds) = too_many_requests(
                    "too-many-todos",
                    "Too many todos created",
                    "Too many todos created in the last minute",
                    retry_after,
                );
                Ok(CreateTodoResponse::TooManyRequests(problem, seconds))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// List the caller's todos
    ///
    /// One page, oldest first: `limit` todos (default 100, at most 1000) and, when more
    /// follow, `next`, which passed as `cursor` gives the next page.
    #[oai(
        path = "/todo",
        method = "get",
        tag = "Tag::Todos",
        operation_id = "list_todos"
    )]
    async fn list_todos(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        /// Todos per page: 1 to 1000, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// Where the page starts: the `next` of the previous page; absent for the first.
        #[oai(name = "cursor")]
        after: Query<Option<String>>,
    ) -> ApiResult<ListTodosResponse> {
        let after = cursor(after.0.as_deref(), dto::cursor::parse_todo)?;
        let principal = principal(&services, &auth).await?;
        let page = services
            .list_todos
            .execute(principal, after, limit.0)
            .await?;
        Ok(ListTodosResponse::Ok(Json(dto::TodoPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next.map(dto::cursor::todo),
        })))
    }

    /// Get one todo
    ///
    /// Another user's todo is reported as not found.
    #[oai(
        path = "/todo/:id",
        method = "get",
        tag = "Tag::Todos",
        operation_id = "get_todo"
    )]
    async fn get_todo(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> ApiResult<TodoResponse> {
        let principal = principal(&services, &auth).await?;
        let todo = services
            .get_todo
            .execute(principal, TodoId::from_uuid(id.0))
            .await?;
        Ok(TodoResponse::Ok(Json(todo.into())))
    }

    /// Update a todo
    #[oai(
        path = "/todo/:id",
        method = "patch",
        tag = "Tag::Todos",
        operation_id = "update_todo"
    )]
    async fn update_todo(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<dto::UpdateTodoRequest>,
    ) -> ApiResult<TodoResponse> {
        let principal = principal(&services, &auth).await?;
        let body = body.0;
        let todo = services
            .update_todo
            .execute(
                principal,
                TodoId::from_uuid(id.0),
                UpdateTodoRequest {
                    title: body.title.map(|t| t.0),
                    completed: body.completed,
                },
            )
            .await?;
        Ok(TodoResponse::Ok(Json(todo.into())))
    }

    /// Delete a todo
    #[oai(
        path = "/todo/:id",
        method = "delete",
        tag = "Tag::Todos",
        operation_id = "delete_todo"
    )]
    async fn delete_todo(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        let principal = principal(&services, &auth).await?;
        services
            .delete_todo
            .execute(principal, TodoId::from_uuid(id.0))
            .await?;
        Ok(NoContent::Done)
    }

    /// List the caller's sessions
    ///
    /// One page, oldest first: `limit` sessions (default 100, at most 1000) and, when more
    /// follow, `next`, which passed as `cursor` gives the next page.
    #[oai(
        path = "/sessions",
        method = "get",
        tag = "Tag::Sessions",
        operation_id = "list_sessions"
    )]
    async fn list_sessions(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        /// Sessions per page: 1 to 1000, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// Where the page starts: the `next` of the previous page; absent for the first.
        #[oai(name = "cursor")]
        after: Query<Option<String>>,
    ) -> ApiResult<ListSessionsResponse> {
        let after = cursor(after.0.as_deref(), dto::cursor::parse_session)?;
        let principal = principal(&services, &auth).await?;
        let page = services
            .list_sessions
            .execute(principal, after, limit.0)
            .await?;
        Ok(ListSessionsResponse::Ok(Json(dto::SessionPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next.map(dto::cursor::session),
        })))
    }

    /// End one of the caller's sessions
    #[oai(
        path = "/sessions/:id",
        method = "delete",
        tag = "Tag::Sessions",
        operation_id = "revoke_session"
    )]
    async fn revoke_session(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        let principal = principal(&services, &auth).await?;
        services
            .revoke_session
            .execute(principal, SessionId::from_uuid(id.0))
            .await?;
        ops::sessions_revoked("session_delete", 1);
        Ok(NoContent::Done)
    }

    /// Public keys of access tokens
    ///
    /// The RFC 7517 JWK set that verifies access tokens without a shared secret: pick the
    /// key by the token's `kid`, verify with `EdDSA` only, and check `typ` (`at+jwt`),
    /// `iss`, `aud` and `exp`. Empty while access tokens are HS256-signed (secrets are
    /// never published). A signature check alone does not show the session is still
    /// alive: logout is immediate only at this service.
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        tag = "Tag::Auth",
        operation_id = "jwks"
    )]
    async fn jwks(&self, keys: Data<&Arc<dto::JwkSet>>) -> JwksResponse {
        JwksResponse::Ok(Json(keys.0.as_ref().clone()), JWKS_CACHE_CONTROL.to_owned())
    }

    /// Liveness
    ///
    /// The process is up and serving. Unauthenticated and cheap.
    #[oai(
        path = "/healthz",
        method = "get",
        tag = "Tag::Health",
        operation_id = "healthz"
    )]
    async fn healthz(&self) -> HealthResponse {
        HealthResponse::Ok(Json(dto::HealthResponse {
            status: "ok".into(),
        }))
    }

    /// Readiness
    ///
    /// 200 while this instance can serve: its store answers and its background workers
    /// (the notification worker) run. 503 otherwise, so a load balancer sends traffic
    /// elsewhere until it recovers. Unauthenticated and cheap.
    #[oai(
        path = "/readyz",
        method = "get",
        tag = "Tag::Health",
        operation_id = "readyz"
    )]
    async fn readyz(
        &self,
        services: Svc<'_>,
        operations: Data<&Arc<Operations>>,
    ) -> ApiResult<HealthResponse> {
        services.readiness.execute().await?;
        if let Some(failing) = operations.not_ready() {
            return Err(ApiError::not_ready(failing));
        }
        Ok(HealthResponse::Ok(Json(dto::HealthResponse {
            status: "ready".into(),
        })))
    }
}
