//! Errors on the wire: RFC 9457 problem documents, and the one place where use-case
//! errors become HTTP statuses.
//!
//! Internal causes are logged here and never sent: a client sees a stable `type`, a
//! `title` and, for its own mistakes, a `detail` that helps it fix the request.

use application::ports::SmsLimit;
use application::usecases::{
    AuthError, CreateTodoError, DeleteTodoError, Field, GetTodoError, ListSessionsError,
    ListTodosError, LoginError, LogoutError, ReadinessError, RefreshError, RegisterError,
    RevokeSessionError, SetPhoneError, UpdateTodoError, VerifyPhoneError,
};
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// `WWW-Authenticate` realm on every 401 (RFC 6750 §3).
const REALM: &str = "jwt-todo";
/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "1";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Problem {
    /// A URI identifying the kind of problem; stable, so clients may branch on it.
    #[oai(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
    /// For validation problems: the request field at fault.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
}

impl poem_openapi::types::Example for Problem {
    fn example() -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "invalid-token", "Invalid token")
            .detail("The access token expired")
    }
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str) -> Self {
        Self {
            kind: format!("urn:jwt-todo:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            field: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    fn field(mut self, field: Field) -> Self {
        self.field = Some(field.as_str().to_owned());
        self
    }
}

/// Every error response of the API. All are `application/problem+json` with one
/// schema, so generated clients get a single error type.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed (e.g. a path parameter of the wrong type).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Missing, invalid, expired or revoked credentials (RFC 6750).
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// Cookie mode: the `X-CSRF-Token` header is missing or wrong; nothing was done.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource for this caller.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request body did not arrive within the server's body deadline; the connection
    /// is closed (send the request again on a new one).
    #[oai(status = 408, content_type = "application/problem+json")]
    RequestTimeout(Json<Problem>, #[oai(header = "Connection")] String),
    /// The resource already exists (e.g. a taken username).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The request body is larger than the server accepts.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The request body is not `application/json`.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The body is not valid JSON of the expected shape, or a value breaks a rule.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// An unexpected server failure; the cause is logged, never sent.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The store is unreachable or the server is saturated; retry after the given delay.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] String),
}

/// The error half of every operation's result.
pub type ApiResult<T> = Result<T, ApiError>;

/// The `error` codes of RFC 6750 §3.1 that a 401 may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerError {
    /// No credentials were presented: the challenge carries no error code.
    Missing,
    InvalidToken,
}

impl ApiError {
    pub fn unauthorized(code: BearerError, slug: &str, title: &str, detail: &str) -> Self {
        let challenge = match code {
            BearerError::Missing => format!("Bearer realm=\"{REALM}\""),
            BearerError::InvalidToken => {
                format!(
                    "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{detail}\""
                )
            }
        };
        ApiError::Unauthorized(
            Json(Problem::new(StatusCode::UNAUTHORIZED, slug, title).detail(detail)),
            challenge,
        )
    }

    /// A cookie-authenticated request without the right CSRF header.
    pub fn csrf(detail: &str) -> Self {
        ApiError::Forbidden(Json(
            Problem::new(
                StatusCode::FORBIDDEN,
                "invalid-csrf-token",
                "CSRF check failed",
            )
            .detail(detail),
        ))
    }

    /// Neither the body nor the cookie carries a refresh token.
    pub fn missing_refresh_token() -> Self {
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid request",
        )
        .detail("Send 'refresh_token' in the body, or the refresh cookie in cookie mode");
        problem.field = Some("refresh_token".to_owned());
        ApiError::Unprocessable(Json(problem))
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(Json(
            Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
                .detail(format!("No such {what}")),
        ))
    }

    pub fn unprocessable(slug: &str, detail: impl Into<String>, field: Option<Field>) -> Self {
        let mut problem =
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, slug, "Invalid request").detail(detail);
        if let Some(field) = field {
            problem = problem.field(field);
        }
        ApiError::Unprocessable(Json(problem))
    }

    /// The store (or the hasher) cannot serve now. Logged with its cause; the client only
    /// learns to retry.
    pub fn unavailable(cause: &anyhow::Error) -> Self {
        let reason = application::ports::unavailability(cause);
        tracing::warn!(error = ?cause, reason = reason.as_str(), "service unavailable");
        crate::ops::note_store_error(reason);
        Self::busy("The service is temporarily unavailable; retry shortly")
    }

    /// A request parameter (query or header) the operation cannot use.
    pub fn bad_parameter(name: &str, detail: impl Into<String>) -> Self {
        let mut problem = Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Invalid parameter",
        )
        .detail(detail);
        problem.field = Some(name.to_owned());
        ApiError::BadRequest(Json(problem))
    }

    /// An idempotency key used before for a different request.
    pub fn key_reused() -> Self {
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused",
        )
        .detail(
            "This Idempotency-Key was used for a different request; use a new key for a new \
             request",
        );
        problem.field = Some("Idempotency-Key".to_owned());
        ApiError::Unprocessable(Json(problem))
    }

    /// A quota of the caller's is full; freeing something makes room.
    pub fn quota(slug: &str, title: &str, detail: impl Into<String>) -> Self {
        ApiError::Conflict(Json(
            Problem::new(StatusCode::CONFLICT, slug, title).detail(detail),
        ))
    }

    /// A readiness condition besides the store fails (e.g. a stopped worker).
    pub fn not_ready(what: &str) -> Self {
        tracing::warn!(check = what, "not ready");
        Self::busy(&format!("Not ready: {what}"))
    }

    fn busy(detail: &str) -> Self {
        ApiError::Unavailable(
            Json(
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                )
                .detail(detail),
            ),
            RETRY_AFTER_SECS.to_owned(),
        )
    }

    pub fn internal(cause: &anyhow::Error) -> Self {
        tracing::error!(error = ?cause, "internal error");
        ApiError::Internal(Json(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
        )))
    }

    fn invalid_token(detail: &str) -> Self {
        Self::unauthorized(
            BearerError::InvalidToken,
            "invalid-token",
            "Invalid token",
            detail,
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidToken => ApiError::invalid_token("The access token is invalid"),
            AuthError::Expired => ApiError::invalid_token("The access token expired"),
            AuthError::Revoked => ApiError::invalid_token("The session was logged out or revoked"),
            AuthError::UserGone => ApiError::invalid_token("The user no longer exists"),
            AuthError::Unavailable(e) => ApiError::unavailable(&e),
            AuthError::Unexpected(e) => ApiError::internal(&e),
        }
    }
}

/// A 429 for the operations that rate-limit (`POST /login`, `POST /users`,
/// `POST /todo`): the problem document and the `Retry-After` value, in whole seconds, at
/// least 1 (RFC 9110 §10.2.3). Each of those operations declares it in its own response
/// enum, so only they list 429 in the contract.
pub fn too_many_requests(
    slug: &str,
    title: &str,
    what: &str,
    retry_after: std::time::Duration,
) -> (Json<Problem>, String) {
    let seconds = retry_after.as_secs().max(1);
    (
        Json(
            Problem::new(StatusCode::TOO_MANY_REQUESTS, slug, title)
                .detail(format!("{what}; retry in {seconds} s")),
        ),
        seconds.to_string(),
    )
}

/// What a login answers when it fails: one of the shared errors, or, for `POST /login`
/// alone, 429 (so only that operation declares it in the contract).
#[derive(Debug)]
pub enum LoginFailure {
    /// 429 with `Retry-After`: the problem document and the header's value.
    TooManyRequests(Json<Problem>, String),
    Other(ApiError),
}

impl From<LoginError> for LoginFailure {
    fn from(err: LoginError) -> Self {
        match err {
            LoginError::Throttled { retry_after } => {
                let (problem, seconds) = too_many_requests(
                    "too-many-logins",
                    "Too many failed logins",
                    "Too many failed logins from this client",
                    retry_after,
                );
                LoginFailure::TooManyRequests(problem, seconds)
            }
            other => LoginFailure::Other(login_error(other)),
        }
    }
}

/// Every other login error. `Throttled` never gets here (see [`LoginFailure`]); should it,
/// it is still a refusal with `Retry-After`, never a success or a 500.
fn login_error(err: LoginError) -> ApiError {
    match err {
        LoginError::Throttled { .. } => ApiError::busy("Too many failed logins; retry later"),
        LoginError::InvalidCredentials => ApiError::unauthorized(
            BearerError::Missing,
            "invalid-credentials",
            "Invalid credentials",
            "Please provide valid login details",
        ),
        LoginError::Overloaded => ApiError::busy("Too many logins at once; retry shortly"),
        LoginError::Unavailable(e) => ApiError::unavailable(&e),
        LoginError::Unexpected(e) => ApiError::internal(&e),
    }
}

impl From<RefreshError> for ApiError {
    fn from(err: RefreshError) -> Self {
        match err {
            RefreshError::InvalidToken => {
                ApiError::invalid_token("The refresh token is invalid or expired")
            }
            // Same answer as any other dead token: the thief learns nothing from it.
            RefreshError::Reused => {
                ApiError::invalid_token("The refresh token is invalid or expired")
            }
            RefreshError::Unavailable(e) => ApiError::unavailable(&e),
            RefreshError::Unexpected(e) => ApiError::internal(&e),
        }
    }
}

impl From<LogoutError> for ApiError {
    fn from(err: LogoutError) -> Self {
        match err {
            // A spent token gets the answer any dead token gets: the thief learns nothing.
            LogoutError::InvalidToken | LogoutError::Reused => {
                ApiError::invalid_token("The refresh token is invalid or expired")
            }
            LogoutError::Unavailable(e) => ApiError::unavailable(&e),
            LogoutError::Unexpected(e) => ApiError::internal(&e),
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(err: RegisterError) -> Self {
        match err {
            RegisterError::Invalid { field, message } => {
                ApiError::unprocessable("invalid-field", message, Some(field))
            }
            RegisterError::UsernameTaken => ApiError::Conflict(Json(
                Problem::new(StatusCode::CONFLICT, "username-taken", "Username taken")
                    .detail("This username is already registered")
                    .field(Field::Username),
            )),
            RegisterError::KeyReused => ApiError::key_reused(),
            // Answered as 429 by the operation itself (see `too_many_requests`); should it
            // get here, it is still a refusal with `Retry-After`.
            RegisterError::Throttled { .. } => {
                ApiError::busy("Too many registrations from this client; retry later")
            }
            RegisterError::Overloaded => {
                ApiError::busy("Too many registrations at once; retry shortly")
            }
            RegisterError::Unavailable(e) => ApiError::unavailable(&e),
            RegisterError::Unexpected(e) => ApiError::internal(&e),
        }
    }
}

/// The remaining use cases share their shapes: not found, an invalid title, and the two
/// catch-alls.
macro_rules! map_errors {
    ($error:ident { $($variant:ident => $mapped:expr),* $(,)? }) => {
        impl From<$error> for ApiError {
            fn from(err: $error) -> Self {
                match err {
                    $($error::$variant => $mapped,)*
                    $error::Unavailable(e) => ApiError::unavailable(&e),
                    $error::Unexpected(e) => ApiError::internal(&e),
                }
            }
        }
    };
}

impl From<ListTodosError> for ApiError {
    fn from(err: ListTodosError) -> Self {
        match err {
            ListTodosError::Invalid { field, message } => {
                ApiError::bad_parameter(field.as_str(), message)
            }
            ListTodosError::Unavailable(e) => ApiError::unavailable(&e),
            ListTodosError::Unexpected(e) => ApiError::internal(&e),
        }
    }
}

impl From<ListSessionsError> for ApiError {
    fn from(err: ListSessionsError) -> Self {
        match err {
            ListSessionsError::Invalid { field, message } => {
                ApiError::bad_parameter(field.as_str(), message)
            }
            ListSessionsError::Unavailable(e) => ApiError::unavailable(&e),
            ListSessionsError::Unexpected(e) => ApiError::internal(&e),
        }
    }
}
map_errors!(GetTodoError { NotFound => ApiError::not_found("todo") });
map_errors!(DeleteTodoError { NotFound => ApiError::not_found("todo") });
map_errors!(ReadinessError {});
map_errors!(RevokeSessionError { NotFound => ApiError::not_found("session") });

impl From<CreateTodoError> for ApiError {
    fn from(err: CreateTodoError) -> Self {
        match err {
            CreateTodoError::InvalidTitle(e) => {
                ApiError::unprocessable("invalid-field", e.to_string(), Some(Field::Title))
            }
            CreateTodoError::QuotaExceeded { max } => ApiError::quota(
                "todo-quota-exceeded",
                "Todo quota reached",
                format!("A user may hold at most {max} todos; delete some to make room"),
            ),
            CreateTodoError::KeyReused => ApiError::key_reused(),
            // Answered as 429 by the operation itself (see `too_many_requests`).
            CreateTodoError::RateLimited { .. } => {
                ApiError::busy("Too many todos created; retry later")
            }
            CreateTodoError::Unavailable(e) => ApiError::unavailable(&e),
            CreateTodoError::Unexpected(e) => ApiError::internal(&e),
        }
    }
}

impl From<UpdateTodoError> for ApiError {
    fn from(err: UpdateTodoError) -> Self {
        match err {
            UpdateTodoError::NotFound => ApiError::not_found("todo"),
            UpdateTodoError::InvalidTitle(e) => {
                ApiError::unprocessable("invalid-field", e.to_string(), Some(Field::Title))
            }
            UpdateTodoError::Unavailable(e) => ApiError::unavailable(&e),
            UpdateTodoError::Unexpected(e) => ApiError::internal(&e),
        }
    }
}

/// What `POST /me/phone` answers when it fails: one of the shared errors, or, for that
/// operation alone, 429 (so only it declares 429 in the contract).
#[derive(Debug)]
pub enum SetPhoneFailure {
    /// 429 with `Retry-After`: the problem document and the header's value.
    TooManyRequests(Json<Problem>, String),
    Other(ApiError),
}

impl From<SetPhoneError> for SetPhoneFailure {
    fn from(err: SetPhoneError) -> Self {
        let other = |e| SetPhoneFailure::Other(e);
        match err {
            SetPhoneError::TooManyRequests { limit, retry_after } => {
                let seconds = retry_after.as_secs().max(1);
                let why = match limit {
                    SmsLimit::Cooldown => "A code was sent moments ago",
                    SmsLimit::User => "This account has reached its SMS limit",
                    SmsLimit::Number => "This number has reached its SMS limit",
                };
                SetPhoneFailure::TooManyRequests(
                    Json(
                        Problem::new(
                            StatusCode::TOO_MANY_REQUESTS,
                            "too-many-sms",
                            "Too many SMS",
                        )
                        .detail(format!("{why}; retry in {seconds} s")),
                    ),
                    seconds.to_string(),
                )
            }
            SetPhoneError::InvalidPhone(e) => other(ApiError::unprocessable(
                "invalid-field",
                e.to_string(),
                Some(Field::Phone),
            )),
            err @ SetPhoneError::CountryNotAllowed => other(ApiError::unprocessable(
                "invalid-field",
                err.to_string(),
                Some(Field::Phone),
            )),
            SetPhoneError::UserGone => other(ApiError::invalid_token("The user no longer exists")),
            SetPhoneError::Unavailable(e) => other(ApiError::unavailable(&e)),
            SetPhoneError::Unexpected(e) => other(ApiError::internal(&e)),
        }
    }
}

impl From<VerifyPhoneError> for ApiError {
    fn from(err: VerifyPhoneError) -> Self {
        match err {
            VerifyPhoneError::InvalidCode(e) => {
                ApiError::unprocessable("invalid-field", e.to_string(), Some(Field::Code))
            }
            VerifyPhoneError::WrongCode { attempts_left: 0 } => ApiError::unprocessable(
                "wrong-code",
                "The code is wrong, and that was its last try: request a new code",
                Some(Field::Code),
            ),
            VerifyPhoneError::WrongCode { attempts_left } => ApiError::unprocessable(
                "wrong-code",
                format!("The code is wrong; {attempts_left} more tries for this code"),
                Some(Field::Code),
            ),
            VerifyPhoneError::NoPendingCode => ApiError::unprocessable(
                "no-pending-code",
                "No code is pending for this number (none was requested, or it expired, was \
                 used, was replaced, or had too many wrong tries): request one with \
                 POST /me/phone",
                Some(Field::Code),
            ),
            VerifyPhoneError::Unavailable(e) => ApiError::unavailable(&e),
            VerifyPhoneError::Unexpected(e) => ApiError::internal(&e),
        }
    }
}

/// Turns errors raised outside our operations (by poem and poem-openapi while routing
/// and extracting) into the same problem documents, so every error a client can see has
/// one shape. Errors that already are our responses pass through unchanged.
pub(crate) async fn render_error(err: poem::Error) -> Response {
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParseRequestPayloadError,
    };

    if err.is_from_response() {
        return err.into_response();
    }
    let api_error = if err.is::<AuthorizationError>() {
        ApiError::unauthorized(
            BearerError::Missing,
            "missing-token",
            "Authentication required",
            "Send an access token as 'Authorization: Bearer <token>'",
        )
    } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        ApiError::unprocessable("invalid-body", truncate(&e.reason), None)
    } else if err.is::<ContentTypeError>() {
        ApiError::UnsupportedMediaType(Json(
            Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            )
            .detail("Send the request body as 'Content-Type: application/json'"),
        ))
    } else if let Some(e) = err.downcast_ref::<ParseParamError>() {
        ApiError::BadRequest(Json(
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-parameter",
                "Invalid parameter",
            )
            .detail(format!(
                "Parameter '{}' is invalid: {}",
                e.name,
                truncate(&e.reason)
            )),
        ))
    } else {
        let status = err.status();
        if status.is_server_error() {
            tracing::error!(error = %err, "unhandled server error");
        }
        let title = status.canonical_reason().unwrap_or("Error");
        let slug = title.to_ascii_lowercase().replace(' ', "-");
        let mut problem = Problem::new(status, &slug, title);
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            problem = problem.detail("The request body is too large");
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The body did not arrive in time. What is left of it may still be on its
            // way, so the connection cannot carry another request: close it (RFC 9110
            // §15.5.9), which also frees it from a client that trickles on.
            return ApiError::RequestTimeout(
                Json(problem.detail("The request body did not arrive in time; send it again")),
                "close".to_owned(),
            )
            .into_response();
        }
        return problem_response(problem);
    };
    api_error.into_response()
}

/// A problem document as a response, for statuses outside [`ApiError`] (404 on unknown
/// routes, 405, 413 ...).
pub(crate) fn problem_response(problem: Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = poem_openapi::types::ToJSON::to_json_string(&problem);
    Response::builder()
        .status(status)
        .content_type("application/problem+json")
        .body(body)
}

/// Parser messages are useful to a client but may quote its input; keep them short.
fn truncate(reason: &str) -> String {
    const MAX: usize = 200;
    match reason.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &reason[..cut]),
        None => reason.to_owned(),
    }
}
