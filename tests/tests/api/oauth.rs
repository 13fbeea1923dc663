//! OAuth 2.0 interop: a real OAuth client (the `oauth2` crate) drives the token and
//! revocation endpoints; every RFC 6749 §5.2 error case, introspection for resource
//! servers, the metadata, and seed 004's form bodies on the service's own routes.

use application::clients::SecretDigest;
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicRequestTokenError};
use oauth2::{
    ClientId, ClientSecret, RefreshToken, ResourceOwnerPassword, ResourceOwnerUsername,
    RevocationUrl, StandardRevocableToken, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const WEB_SECRET: &str = "web-secret-3f1b2c4d5e6f708192a3b4c5d6e7f809";
const GATEWAY_SECRET: &str = "gateway-secret-0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const PUBLIC_URL: &str = "https://auth.example.test";

/// The clients every test server registers: a public one, a confidential one, a resource
/// server allowed to introspect, and a client allowed only the password grant.
fn clients() -> String {
    json!([
        {"client_id": "cli", "grant_types": ["password", "refresh_token"]},
        {"client_id": "web~app", "client_secret_sha256": SecretDigest::of(WEB_SECRET).to_hex(),
         "grant_types": ["password", "refresh_token"]},
        {"client_id": "gateway", "client_secret_sha256": SecretDigest::of(GATEWAY_SECRET).to_hex(),
         "introspection": true},
        {"client_id": "kiosk", "grant_types": ["password"]},
    ])
    .to_string()
}

pub async fn spawn_oauth_app(extra: &[(&str, &str)]) -> TestApp {
    let clients = clients();
    let mut vars = vec![
        ("OAUTH_CLIENTS", clients.as_str()),
        ("PUBLIC_URL", PUBLIC_URL),
    ];
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

/// The `oauth2` crate's HTTP client, over the workspace's reqwest. The crate refuses a
/// revocation URL that is not `https` (RFC 7009 §5); the test server speaks plain HTTP,
/// so this client plays the TLS-terminating proxy: it sends an `https` URL as `http`.
async fn send(request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let client = reqwest::Client::new();
    let (parts, body) = request.into_parts();
    let url = parts.uri.to_string().replacen("https://", "http://", 1);
    let mut outgoing = client.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let response = outgoing.send().await?;
    let mut builder = poem::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder.body(body).expect("a response"))
}

fn oauth_client(
    app: &TestApp,
    id: &str,
    secret: Option<&str>,
) -> oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
    oauth2::EndpointSet,
> {
    let client = BasicClient::new(ClientId::new(id.to_owned()))
        .set_token_uri(TokenUrl::new(app.url("/oauth/token")).expect("url"))
        .set_revocation_url(
            RevocationUrl::new(app.url("/oauth/revoke").replacen("http://", "https://", 1))
                .expect("url"),
        );
    match secret {
        Some(secret) => client.set_client_secret(ClientSecret::new(secret.to_owned())),
        None => client,
    }
}

async fn password_grant(
    app: &TestApp,
    id: &str,
    secret: Option<&str>,
) -> oauth2::basic::BasicTokenResponse {
    app.register_user().await;
    oauth_client(app, id, secret)
        .exchange_password(
            &ResourceOwnerUsername::new(USER.to_owned()),
            &ResourceOwnerPassword::new(PASSWORD.to_owned()),
        )
        .request_async(&send)
        .await
        .expect("password grant")
}

fn oauth_error_code<E: std::error::Error>(
    err: &BasicRequestTokenError<E>,
) -> Option<BasicErrorResponseType> {
    match err {
        oauth2::RequestTokenError::ServerResponse(response) => Some(response.error().clone()),
        _ => None,
    }
}

/// A form POST to `path`, with HTTP Basic credentials when given.
async fn post_form(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.expect("request sent")
}

/// Asserts an RFC 6749 §5.2 error object with `status` and `error`; returns it.
async fn assert_oauth_error(response: reqwest::Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    if status == StatusCode::UNAUTHORIZED {
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(challenge.starts_with("Basic realm="), "{challenge:?}");
    }
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let response = post_form(
        app,
        "/oauth/introspect",
        &[("token", token)],
        Some(("gateway", GATEWAY_SECRET)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_real_oauth_client_logs_in_refreshes_and_revokes() {
    let app = spawn_oauth_app(&[]).await;
    for (id, secret) in [("cli", None), ("web~app", Some(WEB_SECRET))] {
        let client = oauth_client(&app, id, secret);
        let first = password_grant(&app, id, secret).await;
        assert_eq!(first.token_type(), &oauth2::basic::BasicTokenType::Bearer);
        assert!(first.expires_in().is_some_and(|d| d.as_secs() > 0));
        let access = first.access_token().secret().clone();
        assert_eq!(app.me(&access).await.status(), StatusCode::OK);

        // Refresh: a new pair; the old access token keeps working until it expires, the
        // old refresh token is spent.
        let spent = first.refresh_token().expect("a refresh token").clone();
        let second = client
            .exchange_refresh_token(&spent)
            .request_async(&send)
            .await
            .expect("refresh grant");
        let access = second.access_token().secret().clone();
        assert_eq!(app.me(&access).await.status(), StatusCode::OK);

        // Revoking the refresh token ends the session: its access token stops at once.
        let refresh = second.refresh_token().expect("a refresh token").clone();
        client
            .revoke_token(StandardRevocableToken::RefreshToken(refresh.clone()))
            .expect("revocation url set")
            .request_async(&send)
            .await
            .expect("revoked");
        assert_unauthorized(app.me(&access).await, Some("invalid_token")).await;
        // Revoking again (now invalid) is still a success (RFC 7009 §2.2).
        client
            .revoke_token(StandardRevocableToken::RefreshToken(refresh))
            .expect("revocation url set")
            .request_async(&send)
            .await
            .expect("revoking a dead token succeeds");

        // Revoking by access token ends the session too.
        let third = password_grant(&app, id, secret).await;
        client
            .revoke_token(StandardRevocableToken::AccessToken(
                third.access_token().clone(),
            ))
            .expect("revocation url set")
            .request_async(&send)
            .await
            .expect("revoked");
        assert_unauthorized(
            app.me(third.access_token().secret()).await,
            Some("invalid_token"),
        )
        .await;
        let err = client
            .exchange_refresh_token(third.refresh_token().expect("a refresh token"))
            .request_async(&send)
            .await
            .expect_err("the session is over");
        assert_eq!(
            oauth_error_code(&err),
            Some(BasicErrorResponseType::InvalidGrant)
        );
    }
}

#[tokio::test]
async fn reuse_of_a_refresh_token_through_the_token_endpoint_ends_the_session() {
    let app = spawn_oauth_app(&[]).await;
    let client = oauth_client(&app, "cli", None);
    let first = password_grant(&app, "cli", None).await;
    let spent = first.refresh_token().expect("refresh").clone();
    let second = client
        .exchange_refresh_token(&spent)
        .request_async(&send)
        .await
        .expect("refreshed");

    // The thief (or the victim, whichever is second) presents the spent token.
    let err = client
        .exchange_refresh_token(&spent)
        .request_async(&send)
        .await
        .expect_err("reuse");
    assert_eq!(
        oauth_error_code(&err),
        Some(BasicErrorResponseType::InvalidGrant)
    );
    // The whole session is gone: the legitimate successor pair no longer works.
    assert_unauthorized(
        app.me(second.access_token().secret()).await,
        Some("invalid_token"),
    )
    .await;
    let err = client
        .exchange_refresh_token(second.refresh_token().expect("refresh"))
        .request_async(&send)
        .await
        .expect_err("the session was revoked");
    assert_eq!(
        oauth_error_code(&err),
        Some(BasicErrorResponseType::InvalidGrant)
    );
}

#[tokio::test]
async fn the_token_endpoint_answers_every_error_as_rfc_6749_says() {
    let app = spawn_oauth_app(&[]).await;
    app.register_user().await;
    let password = [
        ("grant_type", "password"),
        ("username", USER),
        ("password", PASSWORD),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        password.iter().chain(extra).copied().collect()
    };

    // Success carries the RFC 6749 §5.1 shape and headers.
    let ok = post_form(&app, "/oauth/token", &with(&[("client_id", "cli")]), None).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    assert_eq!(ok.headers()["pragma"], "no-cache");
    let body: Value = ok.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].is_string() && body["refresh_token"].is_string());
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0));

    /// A form, HTTP Basic credentials, and the expected status and `error`.
    type Case<'a> = (
        Vec<(&'a str, &'a str)>,
        Option<(&'a str, &'a str)>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        // No grant type, an unknown one.
        (
            vec![("client_id", "cli")],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("grant_type", "client_credentials"), ("client_id", "cli")],
            None,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        // A missing parameter of the grant.
        (
            vec![
                ("grant_type", "password"),
                ("username", USER),
                ("client_id", "cli"),
            ],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("grant_type", "refresh_token"), ("client_id", "cli")],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        // A parameter sent twice (RFC 6749 §3.2).
        (
            with(&[("client_id", "cli"), ("client_id", "cli")]),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        // Client authentication: none, unknown, wrong secret, a secret for a public
        // client, a confidential client without its secret, two methods at once.
        (with(&[]), None, StatusCode::UNAUTHORIZED, "invalid_client"),
        (
            with(&[("client_id", "nobody")]),
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            with(&[]),
            Some(("web~app", "wrong")),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            with(&[("client_id", "cli"), ("client_secret", "anything")]),
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            with(&[("client_id", "web~app")]),
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            with(&[("client_secret", WEB_SECRET)]),
            Some(("web~app", WEB_SECRET)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        // A client asking for a grant it was not given; a resource server asking for tokens.
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", "kiosk"),
            ],
            None,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            with(&[]),
            Some(("gateway", GATEWAY_SECRET)),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        // Wrong password, unknown user: one answer.
        (
            vec![
                ("grant_type", "password"),
                ("username", USER),
                ("password", "not the password"),
                ("client_id", "cli"),
            ],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("username", "nobody-here"),
                ("password", PASSWORD),
                ("client_id", "cli"),
            ],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        // A refresh token that is not one.
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "garbage"),
                ("client_id", "cli"),
            ],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
    ];
    for (form, basic, status, error) in cases {
        let response = post_form(&app, "/oauth/token", &form, basic).await;
        assert_oauth_error(response, status, error).await;
    }

    // Not a form at all.
    let response = app
        .post_json("/oauth/token", &json!({"grant_type": "password"}), None)
        .await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    // Too large.
    let huge = "x".repeat(64 * 1024);
    let mut form = with(&[("client_id", "cli")]);
    form.push(("scope", huge.as_str()));
    let response = post_form(&app, "/oauth/token", &form, None).await;
    assert_oauth_error(response, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
}

#[tokio::test]
async fn a_refresh_token_spends_only_where_it_was_issued() {
    let app = spawn_oauth_app(&[]).await;
    // A token of the service's own login is not an OAuth client's ...
    let own = app.login_user().await;
    let response = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &own.refresh),
            ("client_id", "cli"),
        ],
        None,
    )
    .await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // ... and was not spent or taken for reuse: it still refreshes where it belongs.
    assert_eq!(
        app.refresh(&own.refresh).await.status(),
        StatusCode::CREATED
    );

    // An OAuth client's token is not another client's, nor the service's own refresh's.
    let cli = password_grant(&app, "cli", None).await;
    let cli_refresh = cli.refresh_token().expect("refresh").secret().clone();
    let response = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &cli_refresh),
        ],
        Some(("web~app", WEB_SECRET)),
    )
    .await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_unauthorized(app.refresh(&cli_refresh).await, Some("invalid_token")).await;
    // Revoking it as another client is refused, and revokes nothing.
    let response = post_form(
        &app,
        "/oauth/revoke",
        &[("token", &cli_refresh)],
        Some(("web~app", WEB_SECRET)),
    )
    .await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "unauthorized_client").await;
    assert_eq!(
        app.me(cli.access_token().secret()).await.status(),
        StatusCode::OK
    );
    // Its own client still spends it.
    oauth_client(&app, "cli", None)
        .exchange_refresh_token(&RefreshToken::new(cli_refresh))
        .request_async(&send)
        .await
        .expect("the owner refreshes");
}

#[tokio::test]
async fn failed_password_grants_are_throttled_like_logins() {
    let app = spawn_oauth_app(&[("LOGIN_PAIR_LIMIT", "2")]).await;
    app.register_user().await;
    let wrong = [
        ("grant_type", "password"),
        ("username", USER),
        ("password", "wrong password!"),
        ("client_id", "cli"),
    ];
    for _ in 0..2 {
        let response = post_form(&app, "/oauth/token", &wrong, None).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    let response = post_form(&app, "/oauth/token", &wrong, None).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after > 0);
    assert_oauth_error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "temporarily_unavailable",
    )
    .await;
    // The service's own login shares the count.
    assert_eq!(
        app.login(USER, "wrong password!").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn introspection_tells_a_resource_server_whether_a_token_is_live() {
    let app = spawn_oauth_app(&[]).await;
    let granted = password_grant(&app, "web~app", Some(WEB_SECRET)).await;
    let access = granted.access_token().secret().clone();
    let refresh = granted.refresh_token().expect("refresh").secret().clone();

    let live = introspect(&app, &access).await;
    assert_eq!(live["active"], true);
    assert_eq!(live["username"], USER);
    assert_eq!(live["client_id"], "web~app");
    assert_eq!(live["token_type"], "Bearer");
    assert_eq!(live["iss"], "jwt-todo");
    assert_eq!(live["aud"], "jwt-todo");
    for claim in ["sub", "sid"] {
        assert!(live[claim].is_string(), "{claim}: {live}");
    }
    assert!(live["exp"].as_i64() > live["iat"].as_i64());
    let live_refresh = introspect(&app, &refresh).await;
    assert_eq!(live_refresh["active"], true);
    assert_eq!(live_refresh["token_type"], "refresh_token");
    assert_eq!(live_refresh["sid"], live["sid"]);
    // A token of the service's own login: live, and no client.
    let own = app.login_user().await;
    let own_live = introspect(&app, &own.access).await;
    assert_eq!(own_live["active"], true);
    assert!(own_live.get("client_id").is_none(), "{own_live}");

    // Spent, garbage, ended: inactive, and nothing else said.
    let rotated = oauth_client(&app, "web~app", Some(WEB_SECRET))
        .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
        .request_async(&send)
        .await
        .expect("refreshed");
    assert_eq!(introspect(&app, &refresh).await, json!({"active": false}));
    assert_eq!(introspect(&app, "garbage").await, json!({"active": false}));
    assert_eq!(
        app.logout(rotated.access_token().secret()).await.status(),
        StatusCode::OK
    );
    for token in [
        rotated.access_token().secret(),
        rotated.refresh_token().expect("r").secret(),
    ] {
        assert_eq!(introspect(&app, token).await, json!({"active": false}));
    }
}

#[tokio::test]
async fn introspection_is_for_registered_confidential_clients_only() {
    let app = spawn_oauth_app(&[]).await;
    let own = app.login_user().await;
    let form = [("token", own.access.as_str())];
    // Anonymous, a public client's id alone, a wrong secret: 401 with a challenge.
    assert_oauth_error(
        post_form(&app, "/oauth/introspect", &form, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    for basic in [
        ("cli", ""),
        ("gateway", "wrong"),
        ("nobody", GATEWAY_SECRET),
    ] {
        assert_oauth_error(
            post_form(&app, "/oauth/introspect", &form, Some(basic)).await,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        )
        .await;
    }
    // A confidential client not allowed to introspect.
    assert_oauth_error(
        post_form(
            &app,
            "/oauth/introspect",
            &form,
            Some(("web~app", WEB_SECRET)),
        )
        .await,
        StatusCode::FORBIDDEN,
        "unauthorized_client",
    )
    .await;
    // No token.
    assert_oauth_error(
        post_form(
            &app,
            "/oauth/introspect",
            &[],
            Some(("gateway", GATEWAY_SECRET)),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn the_metadata_lists_the_endpoints_this_server_serves() {
    let app = spawn_oauth_app(&[]).await;
    let response = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let metadata: Value = response.json().await.expect("json");
    assert_eq!(metadata["issuer"], PUBLIC_URL);
    assert_eq!(
        metadata["grant_types_supported"],
        json!(["password", "refresh_token"])
    );
    assert_eq!(metadata["response_types_supported"], json!([]));
    assert_eq!(
        metadata["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic"])
    );
    // Each endpoint, moved from the public URL to this test server, is served: a form
    // POST gets an OAuth answer (not 404/405), the JWKS a key set.
    for endpoint in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let url = metadata[endpoint].as_str().expect("a URL");
        let path = url.strip_prefix(PUBLIC_URL).expect("under the public URL");
        let response = post_form(
            &app,
            path,
            &[("grant_type", "password"), ("token", "x")],
            None,
        )
        .await;
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    let jwks = metadata["jwks_uri"].as_str().expect("a URL");
    let path = jwks.strip_prefix(PUBLIC_URL).expect("under the public URL");
    let response = app.client.get(app.url(path)).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let keys: Value = response.json().await.expect("json");
    assert!(keys["keys"].is_array());
}

#[tokio::test]
async fn seed_004_posts_forms_to_the_services_own_routes() {
    let app = spawn_app().await;
    app.register_user().await;
    let login = app
        .client
        .post(app.url("/login"))
        .form(&[("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .expect("sent");
    assert_eq!(login.status(), StatusCode::OK);
    let pair = tokens(login).await;
    assert_eq!(app.me(&pair.access).await.status(), StatusCode::OK);

    let refreshed = app
        .client
        .post(app.url("/token/refresh"))
        .form(&[("refresh_token", pair.refresh.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(refreshed.status(), StatusCode::CREATED);
    let next = tokens(refreshed).await;
    // Same rules as JSON: the spent token again is reuse and ends the session.
    let reuse = app
        .client
        .post(app.url("/token/refresh"))
        .form(&[("refresh_token", pair.refresh.as_str())])
        .send()
        .await
        .expect("sent");
    assert_unauthorized(reuse, Some("invalid_token")).await;
    assert_unauthorized(app.me(&next.access).await, Some("invalid_token")).await;

    // Revoke by form.
    let again = app.login_user().await;
    let revoked = app
        .client
        .post(app.url("/token/revoke"))
        .form(&[
            ("refresh_token", again.refresh.as_str()),
            ("scope", "local"),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_unauthorized(app.me(&again.access).await, Some("invalid_token")).await;

    // Wrong password by form: the same problem as by JSON.
    let wrong = app
        .client
        .post(app.url("/login"))
        .form(&[("username", USER), ("password", "nope nope nope")])
        .send()
        .await
        .expect("sent");
    assert_problem(wrong, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_form_never_gets_cookie_mode_or_reads_the_cookie() {
    let app = spawn_app().await;
    app.register_user().await;
    // A cross-site page can post a form: it must not set a refresh cookie (login CSRF).
    let response = app
        .client
        .post(app.url("/login?cookie=true"))
        .form(&[("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .expect("sent");
    assert!(response.headers().get("set-cookie").is_none());
    let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["field"], "cookie");

    // A form without a refresh token is refused even with a cookie and a CSRF header.
    let cookie_login = app
        .post_json(
            "/login?cookie=true",
            &json!({"username": USER, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(cookie_login.status(), StatusCode::OK);
    let set_cookie = cookie_login.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    let body: Value = cookie_login.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf token").to_owned();
    for path in ["/token/refresh", "/token/revoke"] {
        let response = app
            .client
            .post(app.url(path))
            .header("cookie", &set_cookie)
            .header("x-csrf-token", &csrf)
            .form(&[("scope", "local")])
            .send()
            .await
            .expect("sent");
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

#[tokio::test]
async fn a_logout_through_one_replica_is_seen_by_introspection_on_another() {
    let redis = crate::redis::start_redis().await;
    let shared = [
        ("REDIS_URL", redis.url.as_str()),
        ("ACCESS_SECRET", "replica-access-secret-0123456789abcdef"),
        ("REFRESH_SECRET", "replica-refresh-secret-0123456789abcdef"),
    ];
    let a = spawn_oauth_app(&shared).await;
    let b = spawn_oauth_app(&shared).await;
    let granted = password_grant(&a, "cli", None).await;
    let access = granted.access_token().secret().clone();
    assert_eq!(introspect(&b, &access).await["active"], true);

    assert_eq!(a.logout(&access).await.status(), StatusCode::OK);
    // No wait, no cache to expire: the very next introspection on B says inactive.
    assert_eq!(introspect(&b, &access).await, json!({"active": false}));
}
