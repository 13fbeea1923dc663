//! Errors on the wire: RFC 9457 problem documents.
//!
//! Every problem `type` the API can answer is a [`Kind`], which fixes its status and
//! title. A [`Failure`] is one occurrence: its kind, the detail and field that help the
//! client fix its request, and the headers its status needs (`WWW-Authenticate` on a 401,
//! `Retry-After` on a 429 or 503, `Connection: close` on a 408). Building one has no side
//! effect besides logging its internal cause, which is never sent.
//!
//! Errors raised outside the operations, by poem and poem-openapi while routing and
//! extracting, become the same documents in [`render_error`].

use application::ports::Unavailability;
use application::usecases::Field;
use poem::Response;
use poem::http::{HeaderValue, StatusCode, header};

/// `WWW-Authenticate` realm on every 401 (RFC 6750 §3).
const REALM: &str = "jwt-todo";
/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: u64 = 1;
/// Every problem `type` is this prefix and the kind's slug.
pub const TYPE_PREFIX: &str = "urn:jwt-todo:problem:";

/// Every kind of problem an operation can answer: its `type`, status and title.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 400: a path, query or header parameter the operation cannot use.
    InvalidParameter,
    /// 401: no access token was sent.
    MissingToken,
    /// 401: the token is invalid, expired or revoked, or its user is gone.
    InvalidToken,
    /// 401: unknown user or wrong password (one answer for both).
    InvalidCredentials,
    /// 401: a login challenge that is malformed, unknown, expired or spent.
    InvalidChallenge,
    /// 403: cookie mode without the right `X-CSRF-Token`.
    InvalidCsrfToken,
    /// 403: the password re-entered to confirm a sensitive change is wrong.
    WrongPassword,
    /// 404: no such resource for this caller.
    NotFound,
    /// 408: the body did not arrive within the server's deadline.
    RequestTimeout,
    /// 409: the username is registered already.
    UsernameTaken,
    /// 409: the caller holds as many todos as it may.
    TodoQuotaExceeded,
    /// 409: a second factor is enabled already.
    MfaEnabled,
    /// 413: the body is larger than the server accepts.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: the body is not JSON of the expected shape.
    InvalidBody,
    /// 422: a value breaks a rule (a short password, a blank title ...).
    InvalidField,
    /// 422: an `Idempotency-Key` used before for a different request.
    IdempotencyKeyReused,
    /// 422: the phone code is wrong.
    WrongCode,
    /// 422: no phone code is pending.
    NoPendingCode,
    /// 429: too many failed logins.
    TooManyLogins,
    /// 429: too many registrations from this client.
    TooManyRegistrations,
    /// 429: too many todos created in the window.
    TooManyTodos,
    /// 429: an SMS limit (cooldown, per user, per number).
    TooManySms,
    /// 429: too many password-reset requests or confirmations from this client.
    TooManyPasswordResets,
    /// 429: too many second-factor codes tried for the account.
    TooManyCodes,
    /// 500: an unexpected failure; the cause is logged, never sent.
    Internal,
    /// 503: the store cannot serve, or the server is saturated.
    Unavailable,
}

impl Kind {
    /// The last part of the `type` URI.
    pub const fn slug(self) -> &'static str {
        match self {
            Kind::InvalidParameter => "invalid-parameter",
            Kind::MissingToken => "missing-token",
            Kind::InvalidToken => "invalid-token",
            Kind::InvalidCredentials => "invalid-credentials",
            Kind::InvalidChallenge => "invalid-challenge",
            Kind::InvalidCsrfToken => "invalid-csrf-token",
            Kind::WrongPassword => "wrong-password",
            Kind::NotFound => "not-found",
            Kind::RequestTimeout => "request-timeout",
            Kind::UsernameTaken => "username-taken",
            Kind::TodoQuotaExceeded => "todo-quota-exceeded",
            Kind::MfaEnabled => "mfa-enabled",
            Kind::PayloadTooLarge => "payload-too-large",
            Kind::UnsupportedMediaType => "unsupported-media-type",
            Kind::InvalidBody => "invalid-body",
            Kind::InvalidField => "invalid-field",
            Kind::IdempotencyKeyReused => "idempotency-key-reused",
            Kind::WrongCode => "wrong-code",
            Kind::NoPendingCode => "no-pending-code",
            Kind::TooManyLogins => "too-many-logins",
            Kind::TooManyRegistrations => "too-many-registrations",
            Kind::TooManyTodos => "too-many-todos",
            Kind::TooManySms => "too-many-sms",
            Kind::TooManyPasswordResets => "too-many-password-resets",
            Kind::TooManyCodes => "too-many-codes",
            Kind::Internal => "internal",
            Kind::Unavailable => "unavailable",
        }
    }

    pub const fn status(self) -> StatusCode {
        match self {
            Kind::InvalidParameter => StatusCode::BAD_REQUEST,
            Kind::MissingToken
            | Kind::InvalidToken
            | Kind::InvalidCredentials
            | Kind::InvalidChallenge => StatusCode::UNAUTHORIZED,
            Kind::InvalidCsrfToken | Kind::WrongPassword => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Kind::UsernameTaken | Kind::TodoQuotaExceeded | Kind::MfaEnabled => {
                StatusCode::CONFLICT
            }
            Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::InvalidBody
            | Kind::InvalidField
            | Kind::IdempotencyKeyReused
            | Kind::WrongCode
            | Kind::NoPendingCode => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::TooManyLogins
            | Kind::TooManyRegistrations
            | Kind::TooManyTodos
            | Kind::TooManySms
            | Kind::TooManyPasswordResets
            | Kind::TooManyCodes => StatusCode::TOO_MANY_REQUESTS,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Short, human-readable summary of the kind.
    pub const fn title(self) -> &'static str {
        match self {
            Kind::InvalidParameter => "Invalid parameter",
            Kind::MissingToken => "Authentication required",
            Kind::InvalidToken => "Invalid token",
            Kind::InvalidCredentials => "Invalid credentials",
            Kind::InvalidChallenge => "Invalid login challenge",
            Kind::InvalidCsrfToken => "CSRF check failed",
            Kind::WrongPassword => "Wrong password",
            Kind::NotFound => "Not found",
            Kind::RequestTimeout => "Request Timeout",
            Kind::UsernameTaken => "Username taken",
            Kind::TodoQuotaExceeded => "Todo quota reached",
            Kind::MfaEnabled => "Second factor enabled already",
            Kind::PayloadTooLarge => "Payload Too Large",
            Kind::UnsupportedMediaType => "Unsupported media type",
            Kind::InvalidBody | Kind::InvalidField | Kind::WrongCode | Kind::NoPendingCode => {
                "Invalid request"
            }
            Kind::IdempotencyKeyReused => "Idempotency key reused",
            Kind::TooManyLogins => "Too many failed logins",
            Kind::TooManyRegistrations => "Too many registrations",
            Kind::TooManyTodos => "Too many todos created",
            Kind::TooManySms => "Too many SMS",
            Kind::TooManyPasswordResets => "Too many password resets",
            Kind::TooManyCodes => "Too many codes",
            Kind::Internal => "Internal server error",
            Kind::Unavailable => "Service unavailable",
        }
    }

    /// The `type` URI.
    pub fn uri(self) -> String {
        format!("{TYPE_PREFIX}{}", self.slug())
    }
}

/// An RFC 9457 problem document, as sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// A URI identifying the kind of problem; stable, so clients may branch on it.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For validation problems: the request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// A problem of a status outside the operations' kinds (an unknown route, a 405).
    fn of_status(status: StatusCode) -> Self {
        let title = status.canonical_reason().unwrap_or("Error");
        Self {
            kind: format!(
                "{TYPE_PREFIX}{}",
                title.to_ascii_lowercase().replace(' ', "-")
            ),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            field: None,
        }
    }

    /// The document as a response with its status and content type.
    pub(crate) fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        Response::builder()
            .status(status)
            .content_type("application/problem+json")
            .body(body)
    }
}

/// One failure of an operation: the problem document and what its status needs. Boxed:
/// it travels in every handler's `Result`, whose success is the common case.
#[derive(Debug, Clone)]
pub struct Failure(Box<Details>);

#[derive(Debug, Clone)]
struct Details {
    kind: Kind,
    problem: Problem,
    /// 401: the RFC 6750 challenge.
    challenge: Option<String>,
    /// 429 and 503: seconds before a retry may succeed.
    retry_after: Option<u64>,
    /// 503 because the store could not serve: why (for metrics; never sent).
    store: Option<Unavailability>,
    /// This failure's label in an operation's outcome metric.
    outcome: &'static str,
}

/// The `error` codes of RFC 6750 §3.1 that a 401 may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BearerError {
    /// No credentials were presented: the challenge carries no error code.
    Missing,
    InvalidToken,
}

impl Failure {
    /// A failure of `kind`, titled and without detail.
    pub fn new(kind: Kind) -> Self {
        let outcome = match kind {
            Kind::Internal => "error",
            Kind::Unavailable => "unavailable",
            _ => "refused",
        };
        Self(Box::new(Details {
            kind,
            problem: Problem {
                kind: kind.uri(),
                title: kind.title().to_owned(),
                status: kind.status().as_u16(),
                detail: None,
                field: None,
            },
            challenge: None,
            retry_after: (kind == Kind::Unavailable).then_some(RETRY_AFTER_SECS),
            store: None,
            outcome,
        }))
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.problem.detail = Some(detail.into());
        self
    }

    fn field(mut self, field: &str) -> Self {
        self.0.problem.field = Some(field.to_owned());
        self
    }

    /// Names the request field at fault.
    pub fn at(self, field: Field) -> Self {
        self.field(field.as_str())
    }

    /// Sets the label this failure counts under in its operation's outcome metric.
    pub fn outcome(mut self, outcome: &'static str) -> Self {
        self.0.outcome = outcome;
        self
    }

    pub fn kind(&self) -> Kind {
        self.0.kind
    }

    pub fn problem(&self) -> &Problem {
        &self.0.problem
    }

    /// The label of this failure in an operation's outcome metric.
    pub fn outcome_label(&self) -> &'static str {
        self.0.outcome
    }

    /// Seconds before a retry may succeed (429 and 503).
    pub fn retry_after(&self) -> Option<u64> {
        self.0.retry_after
    }

    /// Why the store could not serve, when that is the failure.
    pub fn store_unavailability(&self) -> Option<Unavailability> {
        self.0.store
    }

    fn challenge(mut self, code: BearerError) -> Self {
        self.0.challenge = Some(match code {
            BearerError::Missing => format!("Bearer realm=\"{REALM}\""),
            BearerError::InvalidToken => format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{}\"",
                self.0.problem.detail.as_deref().unwrap_or_default()
            ),
        });
        self
    }

    /// 401 for a request without an access token.
    pub fn missing_token() -> Self {
        Self::new(Kind::MissingToken)
            .detail("Send an access token as 'Authorization: Bearer <token>'")
            .challenge(BearerError::Missing)
    }

    /// 401 for a token that is invalid, expired, revoked or whose user is gone.
    pub fn invalid_token(detail: &str) -> Self {
        Self::new(Kind::InvalidToken)
            .detail(detail)
            .challenge(BearerError::InvalidToken)
    }

    /// 401 for a failed login: no token error code, the client presented none.
    pub fn invalid_credentials() -> Self {
        Self::new(Kind::InvalidCredentials)
            .detail("Please provide valid login details")
            .challenge(BearerError::Missing)
    }

    /// 401 for a login challenge that cannot be completed: no token error code either.
    pub fn invalid_challenge() -> Self {
        Self::new(Kind::InvalidChallenge)
            .detail("The login challenge is invalid, expired or used: log in again")
            .challenge(BearerError::Missing)
    }

    /// A cookie-authenticated request without the right CSRF header.
    pub fn csrf(detail: &str) -> Self {
        Self::new(Kind::InvalidCsrfToken).detail(detail)
    }

    /// Neither the body nor the cookie carries a refresh token.
    pub fn missing_refresh_token() -> Self {
        Self::new(Kind::InvalidBody)
            .detail("Send 'refresh_token' in the body, or the refresh cookie in cookie mode")
            .field("refresh_token")
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Kind::NotFound).detail(format!("No such {what}"))
    }

    /// A value in the body breaks a rule.
    pub fn invalid_field(field: Field, detail: impl Into<String>) -> Self {
        Self::new(Kind::InvalidField).detail(detail).at(field)
    }

    /// A request parameter (path, query or header) the operation cannot use.
    pub fn bad_parameter(name: &str, detail: impl Into<String>) -> Self {
        Self::new(Kind::InvalidParameter).detail(detail).field(name)
    }

    /// An idempotency key used before for a different request.
    pub fn key_reused() -> Self {
        Self::new(Kind::IdempotencyKeyReused)
            .detail(
                "This Idempotency-Key was used for a different request; use a new key for a new \
                 request",
            )
            .field("Idempotency-Key")
    }

    /// A 429: `what` was refused; a retry after `retry_after` (in whole seconds, at least
    /// 1, RFC 9110 §10.2.3) may succeed.
    pub fn too_many(kind: Kind, what: &str, retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_secs().max(1);
        let mut failure = Self::new(kind).detail(format!("{what}; retry in {seconds} s"));
        failure.0.retry_after = Some(seconds);
        failure
    }

    /// The store (or the hasher) cannot serve now. Logged with its cause; the client only
    /// learns to retry.
    pub fn unavailable(cause: &anyhow::Error) -> Self {
        let reason = application::ports::unavailability(cause);
        tracing::warn!(error = ?cause, reason = reason.as_str(), "service unavailable");
        let mut failure = Self::busy("The service is temporarily unavailable; retry shortly");
        failure.0.store = Some(reason);
        failure
    }

    /// A 503 that is no store failure: the server is saturated or not ready.
    pub fn busy(detail: &str) -> Self {
        Self::new(Kind::Unavailable).detail(detail)
    }

    /// A readiness condition besides the store fails (e.g. a stopped worker).
    pub fn not_ready(what: &str) -> Self {
        tracing::warn!(check = what, "not ready");
        Self::busy(&format!("Not ready: {what}"))
    }

    /// A 500; the cause is logged, never sent.
    pub fn internal(cause: &anyhow::Error) -> Self {
        tracing::error!(error = ?cause, "internal error");
        Self::new(Kind::Internal)
    }

    /// The failure as a response: status, problem document and headers.
    pub fn into_response(self) -> Response {
        let this = *self.0;
        let mut response = this.problem.into_response();
        let headers = response.headers_mut();
        if let Some(challenge) = this.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = this.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if this.kind == Kind::RequestTimeout {
            // What is left of the body may still be on its way, so the connection cannot
            // carry another request: close it (RFC 9110 §15.5.9), which also frees it from
            // a client that trickles on.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<Failure> for poem::Error {
    fn from(failure: Failure) -> Self {
        poem::Error::from_response(failure.into_response())
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
    let failure = if err.is::<AuthorizationError>() {
        Failure::missing_token()
    } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        Failure::new(Kind::InvalidBody).detail(truncate(&e.reason))
    } else if err.is::<ContentTypeError>() {
        Failure::new(Kind::UnsupportedMediaType)
            .detail("Send the request body as 'Content-Type: application/json'")
    } else if let Some(e) = err.downcast_ref::<ParseParamError>() {
        Failure::new(Kind::InvalidParameter).detail(format!(
            "Parameter '{}' is invalid: {}",
            e.name,
            truncate(&e.reason)
        ))
    } else {
        match err.status() {
            // Anything else malformed before the operation ran, e.g. a path segment that
            // does not split into the route's parameters (`/todo/a,b`).
            StatusCode::BAD_REQUEST => Failure::new(Kind::InvalidParameter).detail(format!(
                "The request is malformed: {}",
                truncate(&err.to_string())
            )),
            StatusCode::PAYLOAD_TOO_LARGE => {
                Failure::new(Kind::PayloadTooLarge).detail("The request body is too large")
            }
            StatusCode::REQUEST_TIMEOUT => Failure::new(Kind::RequestTimeout)
                .detail("The request body did not arrive in time; send it again"),
            status => {
                if status.is_server_error() {
                    tracing::error!(error = %err, "unhandled server error");
                }
                return Problem::of_status(status).into_response();
            }
        }
    };
    failure.into_response()
}

/// A plain 500 problem, for a panicking handler.
pub(crate) fn internal_response() -> Response {
    Failure::new(Kind::Internal).into_response()
}

/// Parser messages are useful to a client but may quote its input; keep them short.
fn truncate(reason: &str) -> String {
    const MAX: usize = 200;
    match reason.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &reason[..cut]),
        None => reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_serialises_as_rfc_9457_without_empty_members() {
        let failure = Failure::not_found("todo");
        let json = serde_json::to_value(failure.problem()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "type": "urn:jwt-todo:problem:not-found",
                "title": "Not found",
                "status": 404,
                "detail": "No such todo",
            })
        );
    }

    #[test]
    fn statuses_carry_their_headers() {
        let response = Failure::invalid_token("The access token expired").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE),
            Some(&HeaderValue::from_static(
                "Bearer realm=\"jwt-todo\", error=\"invalid_token\", \
                 error_description=\"The access token expired\""
            ))
        );
        let response = Failure::too_many(
            Kind::TooManyTodos,
            "Too many todos",
            std::time::Duration::from_millis(10),
        )
        .into_response();
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("1"))
        );
        let response = Failure::busy("x").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));
        let response = Failure::new(Kind::RequestTimeout).into_response();
        assert_eq!(
            response.headers().get(header::CONNECTION),
            Some(&HeaderValue::from_static("close"))
        );
    }
}
