//! Login, refresh, logout and revocation, and the public keys of access tokens.

use std::sync::Arc;

use application::usecases::{LoginOutcome, LoginRequest, LogoutCredential, MFA_CHALLENGE_TTL};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiRequest, ApiResponse, OpenApi};

use super::common::{
    Answer, Presented, Svc, Tag, deliver, failed, log_in, origin, refreshed, user_agent,
};
use crate::auth::BearerAuth;
use crate::client::TrustedProxies;
use crate::contract::{Login, Logout, Refresh, Revoke};
use crate::csrf::CsrfKeys;
use crate::problem::Failure;
use crate::{cookie, dto, metrics};

#[derive(ApiResponse)]
enum LoginResponse {
    /// Logged in: a new session and its first token pair. Or, for an account with a
    /// second factor, a `challenge` (and no tokens): complete it at `POST /login/mfa`.
    #[oai(status = 200)]
    Ok(
        Json<dto::LoginAnswer>,
        /// Cookie mode only: the refresh token as an `HttpOnly` cookie.
        #[oai(header = "Set-Cookie")]
        Option<String>,
    ),
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
enum JwksResponse {
    /// The public keys; cache them for the given time, and fetch again on an unknown `kid`.
    #[oai(status = 200)]
    Ok(Json<dto::JwkSet>, #[oai(header = "Cache-Control")] String),
}

/// How long verifiers may cache the JWKS. Short, so that a key staged for rotation
/// reaches them well before it signs (README, "Rotating keys").
pub const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

/// A request body as JSON, or as a form with the same fields: seed 004's clients post
/// forms (`curl -d "username=...&password=..."`). Enums of concrete types, because the
/// derive takes no generics.
macro_rules! json_or_form {
    ($($name:ident($body:ty);)+) => {$(
        #[derive(ApiRequest)]
        enum $name {
            /// JSON.
            Json(Json<$body>),
            /// The same fields as a form. Never cookie mode: a form can be posted by
            /// another site's page.
            Form(Form<$body>),
        }

        impl $name {
            /// The body, and whether it came as a form.
            fn into_parts(self) -> ($body, bool) {
                match self {
                    $name::Json(Json(body)) => (body, false),
                    $name::Form(Form(body)) => (body, true),
                }
            }
        }
    )+};
}

json_or_form! {
    LoginBody(dto::LoginRequest);
    RefreshBody(dto::RefreshRequest);
    RevokeBody(dto::RevokeRequest);
}

/// Cookie mode asked for with a form body: refused, since a form is what a cross-site
/// page can post, and a cookie set by that answer would log the browser into the
/// attacker's account (login CSRF).
fn no_cookie_mode_for_forms() -> Failure {
    Failure::bad_parameter(
        "cookie",
        "Cookie mode needs a JSON body; a form body gets its tokens in the answer",
    )
}

/// The refresh token of a form body: the form must carry it (the cookie is never read
/// for a form, see [`no_cookie_mode_for_forms`]).
fn form_token(token: Option<dto::Text>) -> Result<Presented, Failure> {
    token
        .map(|token| Presented::Body(token.0))
        .ok_or_else(Failure::missing_refresh_token)
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

/// The operations of the `Auth` tag.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokensApi;

#[OpenApi]
impl TokensApi {
    /// Log in
    ///
    /// Checks the credentials and opens a session. Unknown user and wrong password get
    /// the same answer in the same time. Failed logins are counted per username and
    /// client address and per client address; over a limit the answer is 429, without
    /// checking the password. The body is JSON or a form with the same fields (as seed
    /// 004's clients send it); a form never gets cookie mode.
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
        body: LoginBody,
        /// `true`: cookie mode, for browsers (JSON bodies only). The refresh token is set as the
        /// `__Secure-refresh_token` cookie (`HttpOnly; Secure; SameSite=Strict;
        /// Path=/token`) instead of in the body, and the body carries a `csrf_token` to
        /// send as `X-CSRF-Token` when refreshing or revoking with the cookie.
        cookie: Query<Option<bool>>,
    ) -> Answer<LoginResponse, Login> {
        let (body, form) = body.into_parts();
        if form && cookie.0 == Some(true) {
            return Err(failed(no_cookie_mode_for_forms()));
        }
        let outcome = log_in(
            &services,
            LoginRequest {
                username: body.username.0,
                password: body.password.0,
                user_agent: user_agent(req),
                client: proxies.client_of(req),
                oauth_client: None,
            },
        )
        .await
        .map_err(failed)?;
        Ok(match outcome {
            LoginOutcome::LoggedIn(logged_in) => {
                let (Json(body), set_cookie) =
                    deliver(logged_in.pair, cookie.0.unwrap_or(false), &csrf);
                LoginResponse::Ok(Json(dto::LoginAnswer::Tokens(body)), set_cookie)
            }
            LoginOutcome::SecondFactor(required) => LoginResponse::Ok(
                Json(dto::LoginAnswer::SecondFactor(dto::SecondFactorChallenge {
                    challenge: required.challenge.to_string(),
                    expires_in: i64::try_from(MFA_CHALLENGE_TTL.as_secs()).unwrap_or(i64::MAX),
                    methods: vec!["totp".into(), "recovery_code".into()],
                })),
                None,
            ),
        })
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
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        body: RefreshBody,
        /// `true`: answer in cookie mode (the new refresh token as the cookie, not in the
        /// body). Implied when the cookie authenticates the request.
        cookie: Query<Option<bool>>,
    ) -> Answer<RefreshResponse, Refresh> {
        let presented = match body.into_parts() {
            (body, false) => Presented::of(&services, &csrf, req, body.refresh_token),
            (_, true) if cookie.0 == Some(true) => Err(no_cookie_mode_for_forms()),
            (body, true) => form_token(body.refresh_token),
        }
        .map_err(failed)?;
        let pair = refreshed(&services, presented.token(), None, &origin(&proxies, req))
            .await
            .map_err(failed)?;
        // A cookie-authenticated refresh always answers with a cookie: the token must
        // never reach script that could only send the cookie.
        let cookie_mode = cookie.0.unwrap_or(false) || presented.is_cookie();
        let (body, set_cookie) = deliver(pair, cookie_mode, &csrf);
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
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        auth: BearerAuth,
        /// Which sessions to end: `local` (the default), `others` or `global`.
        // An `Option`, not `#[oai(default)]`: a default wraps the enum's `$ref` in an
        // `allOf`, which generated clients (openapi-python-client) refuse.
        scope: Query<Option<dto::Scope>>,
        /// `true`: also delete the refresh cookie of cookie mode (unless `scope=others`,
        /// which keeps this session).
        cookie: Query<Option<bool>>,
    ) -> Answer<LogoutResponse, Logout> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        let scope = scope.0.unwrap_or_default();
        let ended = services
            .logout
            .execute(
                LogoutCredential::Access(caller.principal),
                scope.into(),
                Some(&origin(&proxies, req)),
            )
            .await
            .map_err(failed)?;
        metrics::sessions_revoked("logout", ended);
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
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        body: RevokeBody,
    ) -> Answer<LogoutResponse, Revoke> {
        let (body, form) = body.into_parts();
        let scope = body.scope.unwrap_or_default();
        let presented = if form {
            form_token(body.refresh_token)
        } else {
            Presented::of(&services, &csrf, req, body.refresh_token)
        }
        .map_err(failed)?;
        let clear = presented.is_cookie() && scope != dto::Scope::Others;
        let ended = services
            .logout
            .execute(
                LogoutCredential::Refresh(presented.into_token()),
                scope.into(),
                Some(&origin(&proxies, req)),
            )
            .await
            .map_err(|e| {
                let failure = Failure::from(e);
                if failure.outcome_label() == "reused" {
                    metrics::reuse_detected();
                }
                failed(failure)
            })?;
        metrics::sessions_revoked("token_revoke", ended);
        Ok(logged_out(ended, clear.then(cookie::clear)))
    }

    /// Public keys of access tokens
    ///
    /// The RFC 7517 JWK set that verifies access tokens without a shared secret: pick the
    /// key by the token's `kid`, verify with `EdDSA` only, and check `typ` (`at+jwt`),
    /// `iss`, `aud` and `exp`. Empty while access tokens are HS256-signed (secrets are
    /// never published). A signature check alone does not show the session is still
    /// alive: a resource server learns that from `POST /oauth/introspect`.
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        tag = "Tag::Auth",
        operation_id = "jwks"
    )]
    async fn jwks(&self, keys: Data<&Arc<dto::JwkSet>>) -> JwksResponse {
        JwksResponse::Ok(Json(keys.0.as_ref().clone()), JWKS_CACHE_CONTROL.to_owned())
    }
}
