//! OAuth 2.0 on the wire: the form bodies of the token, revocation and introspection
//! endpoints, their answers, RFC 6749 §5.2 error objects (not problem documents: that
//! is what OAuth clients parse), how a request names its client, and the one place that
//! turns errors raised before an OAuth operation runs into such error objects.

use std::borrow::Cow;
use std::sync::Arc;

use application::clients::{OAuthClients, PresentedClient};
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::headers::authorization::Basic;
use poem::web::headers::{Authorization, HeaderMapExt};
use poem::{IntoResponse, Request, Response};
use poem_openapi::{ApiResponse, Enum, Object};

use crate::problem::{Failure, Kind};

/// Where the OAuth operations live; errors under it are OAuth error objects.
pub const PREFIX: &str = "/oauth/";

/// What the OAuth operations need besides the use cases.
#[derive(Clone, Debug)]
pub struct OAuthConfig {
    /// The registered clients.
    pub clients: Arc<OAuthClients>,
    /// The public base URL of this service (no trailing `/`): the metadata's `issuer`,
    /// and the base of the endpoint URLs it lists.
    pub public_url: String,
    /// `iss` and `aud` of the tokens this service issues, as introspection reports them.
    pub token_issuer: String,
    pub token_audience: String,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            clients: Arc::new(OAuthClients::default()),
            public_url: "http://localhost:8080".into(),
            token_issuer: "jwt-todo".into(),
            token_audience: "jwt-todo".into(),
        }
    }
}

/// RFC 6749 §5.2 error codes, and RFC 6749 §4.1.2.1's `temporarily_unavailable` and
/// `server_error`, which OAuth clients also understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "OAuthErrorCode", rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    TemporarilyUnavailable,
    ServerError,
}

/// An OAuth error object (RFC 6749 §5.2).
#[derive(Debug, Clone, Object)]
#[oai(rename = "OAuthError")]
pub struct ErrorBody {
    pub error: ErrorCode,
    /// For the developer, not the user.
    #[oai(skip_serializing_if_is_none)]
    pub error_description: Option<String>,
}

/// The challenge of every `invalid_client` answer (RFC 6749 §5.2).
pub const CLIENT_CHALLENGE: &str = "Basic realm=\"jwt-todo\", charset=\"UTF-8\"";

/// A failed OAuth request, before it is shaped into an operation's answer.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl OAuthError {
    fn new(status: StatusCode, code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            description,
        )
    }

    pub fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidClient,
            "Client authentication failed",
        )
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidGrant,
            description,
        )
    }

    pub fn unauthorized_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::UnauthorizedClient,
            description,
        )
    }

    /// An authenticated client that may not use this endpoint at all.
    pub fn forbidden(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ErrorCode::UnauthorizedClient,
            description,
        )
    }

    pub fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedGrantType,
            "Supported grant types: password, refresh_token",
        )
    }

    pub fn throttled(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TemporarilyUnavailable,
                "Too many failed logins; retry after the time in Retry-After",
            )
        }
    }

    pub fn unavailable(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TemporarilyUnavailable,
                "The service cannot answer right now; retry shortly",
            )
        }
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServerError,
            "An unexpected failure; it was logged",
        )
    }

    fn body(&self) -> poem_openapi::payload::Json<ErrorBody> {
        poem_openapi::payload::Json(ErrorBody {
            error: self.code,
            error_description: Some(self.description.clone().into_owned()),
        })
    }
}

/// Defines an operation's error answers: the statuses it declares, each an OAuth error
/// object, and the conversion from [`OAuthError`] (an undeclared status is a bug: logged,
/// answered as 500, and a panic in debug builds, as for problem contracts). The variants
/// are collected first (`@collect`), so that the derive sees plain tokens.
macro_rules! oauth_failures {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        oauth_failures!(@collect [$(#[$doc])*] $name [] $($variant)+);

        impl From<OAuthError> for $name {
            fn from(err: OAuthError) -> Self {
                $(oauth_failures!(@try $variant, err);)+
                tracing::error!(status = err.status.as_u16(), "an OAuth error the operation does not declare");
                debug_assert!(false, "{} does not declare {}", stringify!($name), err.status);
                Self::from(OAuthError::internal())
            }
        }
    };
    (@collect [$($doc:tt)*] $name:ident [$($done:tt)*]) => {
        $($doc)*
        #[derive(Debug, ApiResponse)]
        pub enum $name { $($done)* }
    };
    (@collect $doc:tt $name:ident [$($done:tt)*] BadRequest $($rest:ident)*) => {
        oauth_failures!(@collect $doc $name [$($done)*
            /// `invalid_request` (a parameter is missing, repeated or malformed, or the body
            /// is not a form), `invalid_grant` (wrong username or password; a refresh token
            /// that is invalid, expired, spent or not this client's), `unauthorized_client`
            /// (the client may not use this grant or act on this token),
            /// `unsupported_grant_type`.
            #[oai(status = 400)]
            BadRequest(poem_openapi::payload::Json<ErrorBody>),
        ] $($rest)*);
    };
    (@collect $doc:tt $name:ident [$($done:tt)*] Unauthorized $($rest:ident)*) => {
        oauth_failures!(@collect $doc $name [$($done)*
            /// `invalid_client`: unknown client, wrong or missing secret, or a secret sent
            /// for a public client.
            #[oai(status = 401)]
            Unauthorized(
                poem_openapi::payload::Json<ErrorBody>,
                /// `Basic realm="jwt-todo"`.
                #[oai(header = "WWW-Authenticate")]
                String,
            ),
        ] $($rest)*);
    };
    (@collect $doc:tt $name:ident [$($done:tt)*] Forbidden $($rest:ident)*) => {
        oauth_failures!(@collect $doc $name [$($done)*
            /// `unauthorized_client`: the client is authenticated but may not use this
            /// endpoint.
            #[oai(status = 403)]
            Forbidden(poem_openapi::payload::Json<ErrorBody>),
        ] $($rest)*);
    };
    (@collect $doc:tt $name:ident [$($done:tt)*] TooLarge $($rest:ident)*) => {
        oauth_failures!(@collect $doc $name [$($done)*
            /// `invalid_request`: the body is larger than the server accepts.
            #[oai(status = 413)]
            TooLarge(poem_openapi::payload::Json<ErrorBody>),
        ] $($rest)*);
    };
    (@collect $doc:tt $name:ident [$($done:tt)*] Throttled $($rest:ident)*) => {
        oauth_failures!(@collect $doc $name [$($done)*
            /// `temporarily_unavailable`: too many failed logins for this username from
            /// this client, or from this client; the password was not checked.
            #[oai(status = 429)]
            Throttled(
                poem_openapi::payload::Json<ErrorBody>,
                /// Seconds until the window frees.
                #[oai(header = "Retry-After")]
                String,
            ),
        ] $($rest)*);
    };
    (@collect $doc:tt $name:ident [$($done:tt)*] Internal $($rest:ident)*) => {
        oauth_failures!(@collect $doc $name [$($done)*
            /// `server_error`: an unexpected failure; the cause is logged, never sent.
            #[oai(status = 500)]
            Internal(poem_openapi::payload::Json<ErrorBody>),
        ] $($rest)*);
    };
    (@collect $doc:tt $name:ident [$($done:tt)*] Unavailable $($rest:ident)*) => {
        oauth_failures!(@collect $doc $name [$($done)*
            /// `temporarily_unavailable`: the store cannot answer (or too many logins are
            /// being checked at once); nothing was changed.
            #[oai(status = 503)]
            Unavailable(
                poem_openapi::payload::Json<ErrorBody>,
                /// Seconds before a retry may succeed.
                #[oai(header = "Retry-After")]
                String,
            ),
        ] $($rest)*);
    };
    (@try BadRequest, $err:ident) => {
        if $err.status == StatusCode::BAD_REQUEST { return Self::BadRequest($err.body()); }
    };
    (@try Unauthorized, $err:ident) => {
        if $err.status == StatusCode::UNAUTHORIZED {
            return Self::Unauthorized($err.body(), CLIENT_CHALLENGE.to_owned());
        }
    };
    (@try Forbidden, $err:ident) => {
        if $err.status == StatusCode::FORBIDDEN { return Self::Forbidden($err.body()); }
    };
    (@try TooLarge, $err:ident) => {
        if $err.status == StatusCode::PAYLOAD_TOO_LARGE { return Self::TooLarge($err.body()); }
    };
    (@try Throttled, $err:ident) => {
        if $err.status == StatusCode::TOO_MANY_REQUESTS {
            return Self::Throttled($err.body(), $err.retry_after.unwrap_or(1).to_string());
        }
    };
    (@try Internal, $err:ident) => {
        if $err.status == StatusCode::INTERNAL_SERVER_ERROR { return Self::Internal($err.body()); }
    };
    (@try Unavailable, $err:ident) => {
        if $err.status == StatusCode::SERVICE_UNAVAILABLE {
            return Self::Unavailable($err.body(), $err.retry_after.unwrap_or(1).to_string());
        }
    };
}

oauth_failures! {
    /// The errors of `POST /oauth/token`.
    TokenFailure { BadRequest, Unauthorized, TooLarge, Throttled, Internal, Unavailable }
}
oauth_failures! {
    /// The errors of `POST /oauth/revoke`.
    RevocationFailure { BadRequest, Unauthorized, TooLarge, Internal, Unavailable }
}
oauth_failures! {
    /// The errors of `POST /oauth/introspect`.
    IntrospectionFailure { BadRequest, Unauthorized, Forbidden, TooLarge, Internal, Unavailable }
}

impl From<&Failure> for OAuthError {
    /// A use case's failure, already mapped to a problem (and counted), in OAuth terms.
    fn from(failure: &Failure) -> Self {
        let retry_after = failure.retry_after().unwrap_or(1);
        match failure.kind() {
            Kind::InvalidCredentials => Self::invalid_grant("The username or password is wrong"),
            Kind::InvalidToken => Self::invalid_grant(
                "The refresh token is invalid, expired, spent, or not this client's; presenting \
                 a spent one ends its session",
            ),
            Kind::TooManyLogins => Self::throttled(retry_after),
            Kind::Unavailable => Self::unavailable(retry_after),
            Kind::InvalidParameter | Kind::InvalidBody | Kind::InvalidField => {
                Self::invalid_request(
                    failure
                        .problem()
                        .detail
                        .clone()
                        .unwrap_or_else(|| failure.problem().title.clone()),
                )
            }
            _ => Self::internal(),
        }
    }
}

/// A client's HTTP Basic credentials, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl BasicCredentials {
    /// RFC 6749 §2.3.1: the client form-encodes its id and secret before Base64 (the
    /// `oauth2` crate turns `~` into `%7E`, for one), so both are decoded here. A part
    /// that does not decode is kept as sent, and then matches no client.
    pub fn decode(user: &str, password: &str) -> Self {
        let decode = |raw: &str| {
            let spaced = raw.replace('+', " ");
            percent_encoding::percent_decode_str(&spaced)
                .decode_utf8()
                .map_or_else(|_| raw.to_owned(), std::borrow::Cow::into_owned)
        };
        Self {
            id: decode(user),
            secret: decode(password),
        }
    }

    /// The request's HTTP Basic credentials, if it sends any.
    pub fn of(req: &Request) -> Option<Self> {
        req.headers()
            .typed_get::<Authorization<Basic>>()
            .map(|basic| Self::decode(basic.username(), basic.password()))
    }
}

/// How a request names its client: HTTP Basic (`client_secret_basic`), or `client_id`
/// (and `client_secret`, `client_secret_post`) in the form. Using both is an
/// `invalid_request` (RFC 6749 §2.3).
///
/// # Errors
/// `invalid_request` for two methods at once; `invalid_client` for no client at all.
pub fn presented_client<'a>(
    basic: Option<&'a BasicCredentials>,
    form_id: Option<&'a str>,
    form_secret: Option<&'a str>,
) -> Result<PresentedClient<'a>, OAuthError> {
    match (basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "Authenticate the client one way: HTTP Basic or client_secret in the form, not both",
        )),
        (Some(basic), Some(id), None) if id != basic.id => Err(OAuthError::invalid_request(
            "client_id differs from the HTTP Basic user name",
        )),
        (Some(basic), _, None) => Ok(PresentedClient {
            id: &basic.id,
            secret: Some(&basic.secret),
        }),
        (None, Some(id), secret) => Ok(PresentedClient { id, secret }),
        (None, None, _) => Err(OAuthError::invalid_client()),
    }
}

/// For a request under [`PREFIX`]: answers errors raised before an OAuth operation ran
/// (an unreadable or non-form body, a missing or malformed Basic header on
/// introspection, a body too large) as OAuth error objects instead of problem
/// documents. Everything else passes through, as an error still.
pub(crate) fn shape_error(err: poem::Error) -> poem::Result<Response> {
    if err.is_from_response() {
        return Err(err);
    }
    use poem_openapi::error::{AuthorizationError, ContentTypeError};
    let shaped = if err.is::<AuthorizationError>() {
        OAuthError::invalid_client()
    } else if err.is::<ContentTypeError>() || err.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        OAuthError::invalid_request("Send the parameters as application/x-www-form-urlencoded")
    } else if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        OAuthError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            ..OAuthError::invalid_request("The body is larger than the server accepts")
        }
    } else if err.status() == StatusCode::BAD_REQUEST {
        OAuthError::invalid_request(format!("The form could not be read: {err}"))
    } else {
        return Err(err);
    };
    Ok(render(&shaped))
}

/// An [`OAuthError`] as a response, outside any operation.
fn render(err: &OAuthError) -> Response {
    let mut response = err.body().into_response();
    response.set_status(err.status);
    if err.status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CLIENT_CHALLENGE),
        );
    }
    response
}
