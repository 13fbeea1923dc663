//! OAuth 2.0 for standard clients and resource servers: the token endpoint (RFC 6749
//! password and refresh-token grants), revocation (RFC 7009), introspection (RFC 7662)
//! and the authorization server metadata (RFC 8414). The same sessions as the service's
//! own routes underneath: a password grant opens one, a refresh rotates it with reuse
//! detection, a revocation ends it.

use std::sync::Arc;

use application::clients::{Grant, OAuthClient};
use application::usecases::{
    Introspection, LoginOutcome, LoginRequest, RevokeTokenError, Revoked, TokenKind,
};
use poem::Request;
use poem::web::Data;
use poem_openapi::auth::Basic;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme};

use super::common::{Svc, Tag, log_in, origin, refreshed, user_agent};
use crate::client::TrustedProxies;
use crate::metrics;
use crate::oauth::{
    BasicCredentials, IntrospectionFailure, OAuthConfig, OAuthError, RevocationFailure,
    TokenFailure, presented_client,
};
use crate::problem::Failure;

/// A token request (RFC 6749 §4.3.2 and §6), form-encoded.
#[derive(Object, serde::Deserialize)]
#[oai(rename = "OAuthTokenRequest")]
pub struct TokenRequest {
    /// `password` or `refresh_token`.
    grant_type: String,
    /// The user's name (`password` grant).
    username: Option<String>,
    /// The user's password (`password` grant).
    password: Option<String>,
    /// The refresh token to spend (`refresh_token` grant).
    refresh_token: Option<String>,
    /// Ignored: access is not scoped.
    scope: Option<String>,
    /// The client, unless it authenticates with HTTP Basic.
    client_id: Option<String>,
    /// A confidential client's secret (`client_secret_post`), unless it uses HTTP Basic.
    client_secret: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Object)]
#[oai(rename = "OAuthTokenResponse")]
pub struct TokenBody {
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Spend it once, at this endpoint, with the same client.
    refresh_token: String,
}

/// A revocation request (RFC 7009 §2.1), form-encoded.
#[derive(Object, serde::Deserialize)]
#[oai(rename = "OAuthRevocationRequest")]
pub struct RevocationRequest {
    /// An access or a refresh token of the client; either ends its session.
    token: String,
    /// `access_token` or `refresh_token`: where to look first. Others are ignored.
    token_type_hint: Option<String>,
    /// The client, unless it authenticates with HTTP Basic.
    client_id: Option<String>,
    /// A confidential client's secret, unless it uses HTTP Basic.
    client_secret: Option<String>,
}

impl std::fmt::Debug for RevocationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationRequest")
            .field("token_type_hint", &self.token_type_hint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// An introspection request (RFC 7662 §2.1), form-encoded.
#[derive(Object, serde::Deserialize)]
#[oai(rename = "OAuthIntrospectionRequest")]
pub struct IntrospectionRequest {
    /// Any token; a token that is not a live one of this service is inactive.
    token: String,
    /// `access_token` or `refresh_token`: where to look first. Others are ignored.
    token_type_hint: Option<String>,
}

impl std::fmt::Debug for IntrospectionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionRequest")
            .field("token_type_hint", &self.token_type_hint)
            .finish_non_exhaustive()
    }
}

/// What a token is (RFC 7662 §2.2). An inactive token has `active: false` and nothing
/// else.
#[derive(Debug, Default, Object)]
#[oai(rename = "OAuthIntrospectionResponse")]
pub struct IntrospectionBody {
    /// Whether the token is live now: genuine, unexpired, and its session not ended
    /// (for a refresh token: not spent either).
    active: bool,
    /// The user's id.
    #[oai(skip_serializing_if_is_none)]
    sub: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    username: Option<String>,
    /// Expiry, seconds since the epoch.
    #[oai(skip_serializing_if_is_none)]
    exp: Option<i64>,
    /// Issue time, seconds since the epoch.
    #[oai(skip_serializing_if_is_none)]
    iat: Option<i64>,
    #[oai(skip_serializing_if_is_none)]
    iss: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    aud: Option<String>,
    /// `Bearer` for an access token, `refresh_token` for a refresh token.
    #[oai(skip_serializing_if_is_none)]
    token_type: Option<String>,
    /// The client the token was issued to; absent for the service's own login.
    #[oai(skip_serializing_if_is_none)]
    client_id: Option<String>,
    /// The session's id.
    #[oai(skip_serializing_if_is_none)]
    sid: Option<String>,
}

/// Authorization server metadata (RFC 8414 §2).
#[derive(Debug, Object)]
#[oai(rename = "OAuthServerMetadata")]
pub struct Metadata {
    issuer: String,
    token_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    jwks_uri: String,
    grant_types_supported: Vec<String>,
    /// Empty: there is no authorization endpoint.
    response_types_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
    revocation_endpoint_auth_methods_supported: Vec<String>,
    introspection_endpoint_auth_methods_supported: Vec<String>,
}

#[derive(ApiResponse)]
enum TokenAnswer {
    /// A token pair: a new session (`password`) or the session's next pair
    /// (`refresh_token`).
    #[oai(status = 200)]
    Ok(
        Json<TokenBody>,
        /// `no-cache` (RFC 6749 §5.1; `Cache-Control: no-store` is on every answer).
        #[oai(header = "Pragma")]
        String,
    ),
}

#[derive(ApiResponse)]
enum RevocationAnswer {
    /// Revoked, or nothing to revoke: an invalid, expired or unknown token is not an
    /// error (RFC 7009 §2.2).
    #[oai(status = 200)]
    Ok,
}

#[derive(ApiResponse)]
enum IntrospectionAnswer {
    /// The token's state.
    #[oai(status = 200)]
    Ok(Json<IntrospectionBody>),
}

#[derive(ApiResponse)]
enum MetadataAnswer {
    /// The metadata.
    #[oai(status = 200)]
    Ok(Json<Metadata>),
}

/// A confidential client (a resource server) authenticating with HTTP Basic: its
/// `client_id` and secret.
#[derive(SecurityScheme)]
#[oai(ty = "basic", rename = "ClientBasic")]
pub struct ClientBasic(Basic);

fn hint(raw: Option<&str>) -> Option<TokenKind> {
    raw.and_then(TokenKind::from_hint)
}

fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, OAuthError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("'{name}' is required")))
}

/// The client a token or revocation request comes from, authenticated.
fn client<'a>(
    config: &'a OAuthConfig,
    req: &Request,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<&'a OAuthClient, OAuthError> {
    let basic = BasicCredentials::of(req);
    let presented = presented_client(basic.as_ref(), form_id, form_secret)?;
    config
        .clients
        .authenticate(presented)
        .map_err(|_| OAuthError::invalid_client())
}

/// A use case's failure as an OAuth error, counted as the service's own routes count it.
fn oauth_failure(failure: Failure) -> OAuthError {
    let failure = metrics::failed(failure);
    OAuthError::from(&failure)
}

/// The operations of the `OAuth` tag.
#[derive(Debug, Clone, Copy, Default)]
pub struct OAuthApi;

#[OpenApi]
impl OAuthApi {
    /// Token endpoint (RFC 6749)
    ///
    /// `grant_type=password` (with `username`, `password`) opens a session, as `POST
    /// /login`; `grant_type=refresh_token` (with `refresh_token`) spends the refresh token
    /// for the session's next pair, as `POST /token/refresh`: a spent token presented
    /// again ends the session. A refresh token spends only here and only by the client it
    /// was issued to. The client authenticates with HTTP Basic (confidential clients) or
    /// names itself with `client_id` (public clients). Errors are RFC 6749 §5.2 error
    /// objects.
    #[oai(
        path = "/oauth/token",
        method = "post",
        tag = "Tag::OAuth",
        operation_id = "oauth_token"
    )]
    async fn token(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        oauth: Data<&Arc<OAuthConfig>>,
        req: &Request,
        body: Form<TokenRequest>,
    ) -> Result<TokenAnswer, TokenFailure> {
        let form = body.0;
        let client = client(
            &oauth,
            req,
            form.client_id.as_deref(),
            form.client_secret.as_deref(),
        )?;
        let grant =
            Grant::parse(&form.grant_type).ok_or_else(OAuthError::unsupported_grant_type)?;
        if !client.may_use(grant) {
            return Err(OAuthError::unauthorized_client(format!(
                "This client may not use the {} grant",
                grant.as_str()
            ))
            .into());
        }
        let pair = match grant {
            Grant::Password => {
                let request = LoginRequest {
                    username: required(form.username.as_deref(), "username")?.to_owned(),
                    password: required(form.password.as_deref(), "password")?.to_owned(),
                    user_agent: user_agent(req),
                    client: proxies.client_of(req),
                    oauth_client: Some(client.id),
                };
                match log_in(&services, request).await {
                    Ok(LoginOutcome::LoggedIn(logged_in)) => Ok(logged_in.pair),
                    Ok(LoginOutcome::SecondFactor(_)) => {
                        return Err(OAuthError::invalid_grant(
                            "This account has a second factor, which the password grant cannot \
                             carry: log in at POST /login",
                        )
                        .into());
                    }
                    Err(failure) => Err(failure),
                }
            }
            Grant::RefreshToken => {
                let token = required(form.refresh_token.as_deref(), "refresh_token")?;
                refreshed(&services, token, Some(client.id), &origin(&proxies, req)).await
            }
        }
        .map_err(oauth_failure)?;
        let expires_in = pair
            .access_expires_at
            .unix_seconds()
            .saturating_sub(pair.issued_at.unix_seconds());
        Ok(TokenAnswer::Ok(
            Json(TokenBody {
                access_token: pair.access_token,
                token_type: "Bearer".into(),
                expires_in: u64::try_from(expires_in).unwrap_or(0),
                refresh_token: pair.refresh_token,
            }),
            "no-cache".into(),
        ))
    }

    /// Revocation endpoint (RFC 7009)
    ///
    /// Revoking an access or a refresh token ends its session: both its tokens stop
    /// working at once, here and at every resource server that introspects. An invalid,
    /// expired or already revoked token answers 200 too. A client may revoke only tokens
    /// issued to it; a spent refresh token presented here ends its session as reuse.
    #[oai(
        path = "/oauth/revoke",
        method = "post",
        tag = "Tag::OAuth",
        operation_id = "oauth_revoke"
    )]
    async fn revoke(
        &self,
        services: Svc<'_>,
        oauth: Data<&Arc<OAuthConfig>>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        body: Form<RevocationRequest>,
    ) -> Result<RevocationAnswer, RevocationFailure> {
        let form = body.0;
        let client = client(
            &oauth,
            req,
            form.client_id.as_deref(),
            form.client_secret.as_deref(),
        )?;
        let hint = hint(form.token_type_hint.as_deref());
        match services
            .revoke_token
            .execute(&form.token, hint, client.id, Some(&origin(&proxies, req)))
            .await
        {
            Ok(Revoked::Session { reused: true }) => {
                metrics::reuse_detected();
                Ok(RevocationAnswer::Ok)
            }
            Ok(Revoked::Session { reused: false }) => {
                metrics::sessions_revoked("token_revoke", 1);
                Ok(RevocationAnswer::Ok)
            }
            Ok(Revoked::Nothing) => Ok(RevocationAnswer::Ok),
            Err(RevokeTokenError::OtherClient) => Err(OAuthError::unauthorized_client(
                "The token was not issued to this client",
            )
            .into()),
            Err(e) => Err(oauth_failure(Failure::from(e)).into()),
        }
    }

    /// Introspection endpoint (RFC 7662)
    ///
    /// For resource servers: whether a token is live right now, and whose. A token whose
    /// session was logged out or revoked (through any replica) is inactive at once, as is
    /// anything expired, spent, malformed or not ours. Only a registered confidential
    /// client allowed to introspect may ask, with HTTP Basic.
    #[oai(
        path = "/oauth/introspect",
        method = "post",
        tag = "Tag::OAuth",
        operation_id = "oauth_introspect"
    )]
    async fn introspect(
        &self,
        services: Svc<'_>,
        oauth: Data<&Arc<OAuthConfig>>,
        auth: ClientBasic,
        body: Form<IntrospectionRequest>,
    ) -> Result<IntrospectionAnswer, IntrospectionFailure> {
        let basic = BasicCredentials::decode(&auth.0.username, &auth.0.password);
        let presented = application::clients::PresentedClient {
            id: &basic.id,
            secret: Some(&basic.secret),
        };
        let client = oauth
            .clients
            .authenticate(presented)
            .map_err(|_| OAuthError::invalid_client())?;
        if !client.may_introspect() {
            return Err(OAuthError::forbidden("This client may not introspect tokens").into());
        }
        let form = body.0;
        let answer = services
            .introspect
            .execute(&form.token, hint(form.token_type_hint.as_deref()))
            .await
            .map_err(|e| oauth_failure(Failure::from(e)))?;
        let body = match answer {
            Introspection::Inactive => IntrospectionBody::default(),
            Introspection::Active(token) => IntrospectionBody {
                active: true,
                sub: Some(token.user_id.to_string()),
                username: Some(token.username.as_str().to_owned()),
                exp: Some(token.expires_at.unix_seconds()),
                iat: Some(token.issued_at.unix_seconds()),
                iss: Some(oauth.token_issuer.clone()),
                aud: Some(oauth.token_audience.clone()),
                token_type: Some(
                    match token.kind {
                        TokenKind::Access => "Bearer",
                        TokenKind::Refresh => "refresh_token",
                    }
                    .into(),
                ),
                client_id: token.client.map(|c| c.as_str().to_owned()),
                sid: Some(token.session_id.to_string()),
            },
        };
        Ok(IntrospectionAnswer::Ok(Json(body)))
    }

    /// Authorization server metadata (RFC 8414)
    ///
    /// Where the OAuth endpoints are and what they support, for clients that discover them.
    #[oai(
        path = "/.well-known/oauth-authorization-server",
        method = "get",
        tag = "Tag::OAuth",
        operation_id = "oauth_metadata"
    )]
    async fn metadata(&self, oauth: Data<&Arc<OAuthConfig>>) -> MetadataAnswer {
        let base = oauth.public_url.trim_end_matches('/');
        let strings =
            |items: &[&str]| -> Vec<String> { items.iter().map(|s| (*s).to_owned()).collect() };
        let client_auth = strings(&["none", "client_secret_basic", "client_secret_post"]);
        MetadataAnswer::Ok(Json(Metadata {
            issuer: base.to_owned(),
            token_endpoint: format!("{base}/oauth/token"),
            revocation_endpoint: format!("{base}/oauth/revoke"),
            introspection_endpoint: format!("{base}/oauth/introspect"),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            grant_types_supported: Grant::ALL.iter().map(|g| g.as_str().to_owned()).collect(),
            response_types_supported: Vec::new(),
            token_endpoint_auth_methods_supported: client_auth.clone(),
            revocation_endpoint_auth_methods_supported: client_auth,
            introspection_endpoint_auth_methods_supported: strings(&["client_secret_basic"]),
        }))
    }
}
