//! What the operations share: tags, request helpers, token delivery, and the one way a
//! use-case error leaves a handler ([`failed`]).

use std::sync::Arc;

use application::Services;
use application::usecases::{LoggedIn, LoginOutcome, LoginRequest, Origin};
use domain::{ClientId, IdempotencyKey, TokenPair};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Header;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Tags};

use crate::contract::{Errors, OpError};
use crate::csrf::CsrfKeys;
use crate::problem::Failure;
use crate::{cookie, dto, metrics};

#[derive(Tags)]
pub(super) enum Tag {
    /// Login, token refresh, logout.
    Auth,
    /// OAuth 2.0 for standard clients and resource servers: token, revocation,
    /// introspection, metadata.
    #[oai(rename = "OAuth")]
    OAuth,
    /// Registration and the caller's profile.
    Users,
    /// The caller's todos.
    Todos,
    /// The caller's sessions (logged-in devices).
    Sessions,
    /// Liveness for load balancers.
    Health,
}

/// The success of an operation that has nothing to return.
#[derive(ApiResponse)]
pub(super) enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

pub(super) type Svc<'a> = Data<&'a Arc<Services>>;

/// An operation's answer: its success response, or a failure within its contract.
pub(super) type Answer<T, S> = Result<T, OpError<S>>;

/// A use-case error (or any failure) as operation `S`'s answer, counted on its way out.
pub(super) fn failed<S: Errors>(err: impl Into<Failure>) -> OpError<S> {
    OpError::new(metrics::failed(err.into()))
}

/// A login (the service's own, or an OAuth password grant), counted in
/// `jwt_todo_logins_total` and, for the sessions it evicted, `sessions_revoked`.
///
/// A right password for an account with a second factor is counted as `second_factor`;
/// its completion (`POST /login/mfa`) as the `success`.
pub(super) async fn log_in(
    services: &Services,
    request: LoginRequest,
) -> Result<LoginOutcome, Failure> {
    match services.login.execute(request).await {
        Ok(LoginOutcome::LoggedIn(logged_in)) => {
            Ok(LoginOutcome::LoggedIn(logged_in_counted(logged_in)))
        }
        Ok(LoginOutcome::SecondFactor(challenge)) => {
            metrics::login_outcome("second_factor");
            Ok(LoginOutcome::SecondFactor(challenge))
        }
        Err(e) => {
            let failure = Failure::from(e);
            metrics::login_outcome(failure.outcome_label());
            Err(failure)
        }
    }
}

/// A session opened by a login, counted.
pub(super) fn logged_in_counted(logged_in: LoggedIn) -> LoggedIn {
    metrics::login_outcome("success");
    metrics::sessions_revoked("evicted", logged_in.evicted);
    logged_in
}

/// A refresh (the service's own, or an OAuth refresh grant by `client`), counted in
/// `jwt_todo_token_refreshes_total` (and a reuse in the theft counters).
pub(super) async fn refreshed(
    services: &Services,
    refresh_token: &str,
    client: Option<ClientId>,
    origin: &Origin,
) -> Result<TokenPair, Failure> {
    match services
        .refresh
        .execute(refresh_token, client, Some(origin))
        .await
    {
        Ok(pair) => {
            metrics::refresh_outcome("success");
            Ok(pair)
        }
        Err(e) => {
            let failure = Failure::from(e);
            metrics::refresh_outcome(failure.outcome_label());
            Err(failure)
        }
    }
}

const INVALID_CURSOR: &str = "Not a cursor this listing gave out; pass its 'next' unchanged";

/// Where `req` came from, for the audit trail.
pub(super) fn origin(proxies: &crate::client::TrustedProxies, req: &Request) -> Origin {
    Origin {
        client: proxies.client_of(req),
        user_agent: user_agent(req),
    }
}

pub(super) fn user_agent(req: &Request) -> Option<String> {
    req.header(poem::http::header::USER_AGENT)
        .map(str::to_owned)
}

/// The `Idempotency-Key` header, checked.
pub(super) fn idempotency_key(
    header: Header<Option<String>>,
) -> Result<Option<IdempotencyKey>, Failure> {
    header
        .0
        .as_deref()
        .map(IdempotencyKey::parse)
        .transpose()
        .map_err(|e| Failure::bad_parameter("Idempotency-Key", e.to_string()))
}

/// The `cursor` query parameter of a listing, read by `parse` (the listing's own cursor
/// form); anything else is a 400.
pub(super) fn cursor<C>(
    raw: Option<&str>,
    parse: fn(&str) -> Option<C>,
) -> Result<Option<C>, Failure> {
    raw.map(|raw| parse(raw).ok_or_else(|| Failure::bad_parameter("cursor", INVALID_CURSOR)))
        .transpose()
}

/// `Idempotent-Replayed: true` on an answer given again.
pub(super) fn replayed(replayed: bool) -> Option<String> {
    replayed.then(|| "true".to_owned())
}

/// A token pair as the answer: in the body (JSON mode), or with the refresh token moved
/// to a cookie and the session's CSRF token added (cookie mode).
pub(super) fn deliver(
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
pub(super) enum Presented {
    /// The JSON body: JSON mode, no CSRF check (nothing ambient authenticates it).
    Body(String),
    /// The cookie, already checked against the `X-CSRF-Token` header.
    Cookie(String),
}

impl Presented {
    pub(super) fn token(&self) -> &str {
        match self {
            Presented::Body(token) | Presented::Cookie(token) => token,
        }
    }

    pub(super) fn into_token(self) -> String {
        match self {
            Presented::Body(token) | Presented::Cookie(token) => token,
        }
    }

    pub(super) fn is_cookie(&self) -> bool {
        matches!(self, Presented::Cookie(_))
    }

    /// The refresh token a request presents: the body's if there is one, else the
    /// cookie's, which must come with the session's CSRF token in `X-CSRF-Token` (403
    /// otherwise, before anything is spent or revoked).
    pub(super) fn of(
        services: &Services,
        csrf: &CsrfKeys,
        req: &Request,
        body_token: Option<dto::Text>,
    ) -> Result<Self, Failure> {
        if let Some(token) = body_token {
            return Ok(Presented::Body(token.0));
        }
        let token = cookie::read(req).ok_or_else(Failure::missing_refresh_token)?;
        let header = cookie::csrf_header(req).ok_or_else(|| {
            Failure::csrf("Send the 'X-CSRF-Token' header from the login response with the cookie")
        })?;
        let session = services.refresh.session_of(&token)?;
        if !csrf.verify(session, header) {
            return Err(Failure::csrf(
                "The 'X-CSRF-Token' header does not match the session",
            ));
        }
        Ok(Presented::Cookie(token))
    }
}
