//! Cookie mode for browsers: the refresh token in an `HttpOnly` cookie scoped to
//! `/token`, and a CSRF header token guarding every request the cookie authenticates.
//!
//! reqwest keeps no cookie jar here: each test sends the `Cookie` header itself, as a
//! browser would on `https://` (the test server is plain HTTP, so a real jar would drop a
//! `Secure` cookie).

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const COOKIE: &str = "__Secure-refresh_token";
/// The default refresh lifetime, 7 days, in seconds.
const REFRESH_MAX_AGE: i64 = 7 * 24 * 3600;

/// What a cookie-mode answer hands the browser.
#[derive(Debug)]
struct Browser {
    access: String,
    /// The refresh token, from `Set-Cookie`.
    cookie: String,
    csrf: String,
    body: Value,
}

fn set_cookie(response: &Response) -> Option<String> {
    let all: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii Set-Cookie").to_owned())
        .collect();
    assert!(all.len() <= 1, "at most one Set-Cookie: {all:?}");
    all.into_iter().next()
}

/// Checks every attribute of a refresh cookie and returns its value.
fn assert_refresh_cookie(header: &str, max_age: i64) -> String {
    let token = header
        .strip_prefix(&format!("{COOKIE}="))
        .and_then(|rest| rest.split_once(';'))
        .map(|(token, _)| token.to_owned())
        .expect("the refresh cookie");
    assert!(!token.is_empty());
    assert_eq!(
        header,
        format!(
            "{COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/token; Max-Age={max_age}"
        )
    );
    token
}

async fn browser(response: Response, status: StatusCode) -> Browser {
    assert_eq!(response.status(), status);
    let header = set_cookie(&response).expect("cookie mode sets a cookie");
    let body: Value = response.json().await.expect("json body");
    let max_age = body["refresh_expires_in"]
        .as_i64()
        .expect("refresh_expires_in");
    let cookie = assert_refresh_cookie(&header, max_age);
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token in the body in cookie mode: {body}"
    );
    Browser {
        access: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        csrf: body["csrf_token"].as_str().expect("csrf_token").to_owned(),
        cookie,
        body,
    }
}

async fn login_cookie(app: &TestApp) -> Browser {
    app.register_user().await;
    let response = app
        .post_json(
            "/login?cookie=true",
            &json!({"username": USER, "password": PASSWORD}),
            None,
        )
        .await;
    browser(response, StatusCode::OK).await
}

/// A POST with `{}`-style body, the refresh cookie and, if given, the CSRF header.
async fn with_cookie(
    app: &TestApp,
    path: &str,
    body: &Value,
    cookie: &str,
    csrf: Option<&str>,
) -> Response {
    let mut req = app
        .client
        .post(app.url(path))
        .json(body)
        .header("cookie", format!("theme=dark; {COOKIE}={cookie}"));
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    req.send().await.expect("request sent")
}

async fn refresh_cookie(app: &TestApp, cookie: &str, csrf: Option<&str>) -> Response {
    with_cookie(app, "/token/refresh", &json!({}), cookie, csrf).await
}

#[tokio::test]
async fn login_in_cookie_mode_sets_the_cookie_and_returns_a_csrf_token_instead() {
    let app = spawn_app().await;
    let user = login_cookie(&app).await;

    assert_eq!(user.body["refresh_expires_in"], REFRESH_MAX_AGE);
    assert_eq!(user.csrf.len(), 43, "base64url of 32 bytes: {}", user.csrf);
    assert_eq!(user.body["token_type"], "Bearer");
    // The access token is as usual.
    assert_eq!(app.me(&user.access).await.status(), StatusCode::OK);
    // The cookie is a working refresh token, not usable as an access token.
    assert_unauthorized(app.me(&user.cookie).await, Some("invalid_token")).await;
}

#[tokio::test]
async fn json_mode_stays_the_default_with_no_cookie_and_no_csrf_token() {
    let app = spawn_app().await;
    app.register_user().await;
    for path in ["/login", "/login?cookie=false"] {
        let response = app
            .post_json(path, &json!({"username": USER, "password": PASSWORD}), None)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(set_cookie(&response), None);
        let body: Value = response.json().await.expect("json");
        let mut keys: Vec<&str> = body
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "access_token",
                "expires_in",
                "refresh_expires_in",
                "refresh_token",
                "session_id",
                "token_type"
            ]
        );
        let refreshed = app
            .refresh(body["refresh_token"].as_str().expect("refresh_token"))
            .await;
        assert_eq!(refreshed.status(), StatusCode::CREATED);
        assert_eq!(set_cookie(&refreshed), None);
        let tokens = tokens(refreshed).await;
        assert!(tokens.body.get("csrf_token").is_none());
    }
}

#[tokio::test]
async fn refresh_with_the_cookie_and_csrf_header_rotates_into_a_new_cookie() {
    let app = spawn_app().await;
    let user = login_cookie(&app).await;

    // No `?cookie=true` needed: a cookie-authenticated refresh always answers with one.
    let rotated = browser(
        refresh_cookie(&app, &user.cookie, Some(&user.csrf)).await,
        StatusCode::CREATED,
    )
    .await;
    assert_ne!(rotated.cookie, user.cookie);
    assert_eq!(rotated.body["session_id"], user.body["session_id"]);
    assert_eq!(rotated.csrf, user.csrf, "the CSRF token is the session's");
    assert_eq!(app.me(&rotated.access).await.status(), StatusCode::OK);

    // And again with the new cookie.
    let again = browser(
        refresh_cookie(&app, &rotated.cookie, Some(&rotated.csrf)).await,
        StatusCode::CREATED,
    )
    .await;
    assert_ne!(again.cookie, rotated.cookie);
}

#[tokio::test]
async fn a_missing_or_wrong_csrf_header_is_403_and_spends_nothing() {
    let app = spawn_app().await;
    let user = login_cookie(&app).await;
    let other_session = login_cookie(&app).await;

    let wrong = [
        None,
        Some(""),
        Some("not-the-token"),
        // A real CSRF token, but of another session of the same user.
        Some(other_session.csrf.as_str()),
        // The refresh token itself is not the CSRF token either.
        Some(user.cookie.as_str()),
    ];
    for csrf in wrong {
        for path in ["/token/refresh", "/token/revoke"] {
            let response = with_cookie(&app, path, &json!({}), &user.cookie, csrf).await;
            assert_eq!(set_cookie(&response), None, "{path} {csrf:?}");
            let problem = assert_problem(response, StatusCode::FORBIDDEN).await;
            assert_eq!(problem["type"], "urn:jwt-todo:problem:invalid-csrf-token");
        }
    }

    // Nothing was spent or revoked: the session and the very same cookie still work.
    assert_eq!(app.me(&user.access).await.status(), StatusCode::OK);
    browser(
        refresh_cookie(&app, &user.cookie, Some(&user.csrf)).await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn replaying_a_rotated_cookie_revokes_the_session_as_in_json_mode() {
    let app = spawn_app().await;
    let user = login_cookie(&app).await;
    let rotated = browser(
        refresh_cookie(&app, &user.cookie, Some(&user.csrf)).await,
        StatusCode::CREATED,
    )
    .await;

    // The spent cookie again, with a valid CSRF header (a stolen copy): theft.
    let replay = refresh_cookie(&app, &user.cookie, Some(&user.csrf)).await;
    assert_eq!(set_cookie(&replay), None);
    assert_unauthorized(replay, Some("invalid_token")).await;

    // The whole session is gone: even the newest cookie and its access token.
    assert_unauthorized(
        refresh_cookie(&app, &rotated.cookie, Some(&rotated.csrf)).await,
        Some("invalid_token"),
    )
    .await;
    assert_unauthorized(app.me(&rotated.access).await, Some("invalid_token")).await;
}

#[tokio::test]
async fn revoke_with_the_cookie_ends_the_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    let user = login_cookie(&app).await;

    let response = with_cookie(
        &app,
        "/token/revoke",
        &json!({}),
        &user.cookie,
        Some(&user.csrf),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        set_cookie(&response).as_deref(),
        Some("__Secure-refresh_token=; HttpOnly; Secure; SameSite=Strict; Path=/token; Max-Age=0")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["sessions_ended"], 1);

    assert_unauthorized(app.me(&user.access).await, Some("invalid_token")).await;
    assert_unauthorized(
        refresh_cookie(&app, &user.cookie, Some(&user.csrf)).await,
        Some("invalid_token"),
    )
    .await;
}

#[tokio::test]
async fn revoke_of_the_other_sessions_keeps_the_cookie() {
    let app = spawn_app().await;
    let user = login_cookie(&app).await;
    let other = app.login_user().await;

    let response = with_cookie(
        &app,
        "/token/revoke",
        &json!({"scope": "others"}),
        &user.cookie,
        Some(&user.csrf),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookie(&response), None, "this session stays");
    assert_unauthorized(app.me(&other.access).await, Some("invalid_token")).await;
    assert_eq!(app.me(&user.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_with_cookie_true_clears_the_cookie() {
    let app = spawn_app().await;
    let user = login_cookie(&app).await;

    let plain = app.login_user().await;
    let response = app.logout(&plain.access).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookie(&response), None, "JSON mode logout is unchanged");

    let response = app
        .client
        .post(app.url("/logout?cookie=true"))
        .bearer_auth(&user.access)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        set_cookie(&response).as_deref(),
        Some("__Secure-refresh_token=; HttpOnly; Secure; SameSite=Strict; Path=/token; Max-Age=0")
    );
    assert_unauthorized(
        refresh_cookie(&app, &user.cookie, Some(&user.csrf)).await,
        Some("invalid_token"),
    )
    .await;
}

#[tokio::test]
async fn a_token_in_the_body_wins_over_the_cookie() {
    let app = spawn_app().await;
    let json_user = app.login_user().await;
    let browser_user = login_cookie(&app).await;

    // Body token + cookie, no CSRF header: JSON mode, the body's session.
    let response = with_cookie(
        &app,
        "/token/refresh",
        &json!({"refresh_token": json_user.refresh}),
        &browser_user.cookie,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(set_cookie(&response), None);
    let rotated = tokens(response).await;
    assert_eq!(rotated.body["session_id"], json_user.body["session_id"]);

    // The cookie was not touched.
    browser(
        refresh_cookie(&app, &browser_user.cookie, Some(&browser_user.csrf)).await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn a_json_client_can_switch_to_cookie_mode_on_refresh() {
    let app = spawn_app().await;
    let user = app.login_user().await;
    let response = app
        .post_json(
            "/token/refresh?cookie=true",
            &json!({"refresh_token": user.refresh}),
            None,
        )
        .await;
    let browser_user = browser(response, StatusCode::CREATED).await;
    assert_eq!(browser_user.body["session_id"], user.body["session_id"]);
    browser(
        refresh_cookie(&app, &browser_user.cookie, Some(&browser_user.csrf)).await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn no_body_token_and_no_cookie_is_422_and_a_bad_cookie_is_401() {
    let app = spawn_app().await;
    for path in ["/token/refresh", "/token/revoke"] {
        let response = app.post_json(path, &json!({}), None).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["field"], "refresh_token");

        let response = with_cookie(&app, path, &json!({}), "forged.cookie.value", Some("x")).await;
        assert_unauthorized(response, Some("invalid_token")).await;
    }
}
