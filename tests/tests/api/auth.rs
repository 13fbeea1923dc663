//! The seed's flows: login, refresh, logout, and the attacks on them.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_seed_walkthrough_works_end_to_end() {
    let app = spawn_app().await;

    // Login: 200 with the seed's field names, plus additive ones.
    let first = app.login_user().await;
    assert_eq!(first.body["token_type"], "Bearer");
    assert_eq!(first.body["expires_in"], 900);
    assert!(
        first.body["refresh_expires_in"]
            .as_i64()
            .is_some_and(|s| s > 900)
    );

    // Create a todo: 201, owned by the caller.
    let created = app.create_todo(&first.access, "Buy milk").await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let todo: serde_json::Value = created.json().await.expect("json");
    assert_eq!(todo["title"], "Buy milk");
    let me: serde_json::Value = app.me(&first.access).await.json().await.expect("json");
    assert_eq!(todo["user_id"], me["id"]);

    // Refresh: 201, a new pair; the new access token works.
    let refreshed = app.refresh(&first.refresh).await;
    assert_eq!(refreshed.status(), StatusCode::CREATED);
    let second = tokens(refreshed).await;
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(app.me(&second.access).await.status(), StatusCode::OK);

    // Logout: 200; afterwards the access and the refresh token are both refused.
    let logout = app.logout(&second.access).await;
    assert_eq!(logout.status(), StatusCode::OK);
    let body: serde_json::Value = logout.json().await.expect("json");
    assert_eq!(body["message"], "Successfully logged out");
    assert_unauthorized(
        app.create_todo(&second.access, "after logout").await,
        Some("invalid_token"),
    )
    .await;
    assert_unauthorized(app.refresh(&second.refresh).await, Some("invalid_token")).await;
    assert_unauthorized(app.logout(&second.access).await, Some("invalid_token")).await;
}

#[tokio::test]
async fn replaying_a_spent_refresh_token_revokes_the_whole_session() {
    let app = spawn_app().await;
    let stolen = app.login_user().await;
    let victim = tokens(app.refresh(&stolen.refresh).await).await;

    // The thief replays the spent token: refused, and the session is gone for everyone.
    assert_unauthorized(app.refresh(&stolen.refresh).await, Some("invalid_token")).await;
    assert_unauthorized(app.me(&victim.access).await, Some("invalid_token")).await;
    assert_unauthorized(app.refresh(&victim.refresh).await, Some("invalid_token")).await;

    // Other sessions of the user are untouched.
    let other = app.login_user().await;
    assert_eq!(app.me(&other.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn of_ten_concurrent_refreshes_with_one_token_exactly_one_succeeds() {
    let app = spawn_app().await;
    let pair = app.login_user().await;
    let responses = join_all((0..10).map(|_| app.refresh(&pair.refresh))).await;
    let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
    let winners = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(winners, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn unknown_user_and_wrong_password_are_indistinguishable() {
    let app = spawn_app().await;
    app.register_user().await;
    let wrong_password = app.login(USER, "not-the-password").await;
    let unknown_user = app.login("nobody-here", "not-the-password").await;
    let invalid_name = app.login("?", "not-the-password").await;
    let a = assert_unauthorized(wrong_password, None).await;
    let b = assert_unauthorized(unknown_user, None).await;
    let c = assert_unauthorized(invalid_name, None).await;
    assert_eq!(a, b);
    assert_eq!(b, c);
    assert_eq!(a["detail"], "Please provide valid login details");
}

#[tokio::test]
async fn one_kind_of_token_never_passes_for_the_other() {
    let app = spawn_app().await;
    let pair = app.login_user().await;
    assert_unauthorized(app.me(&pair.refresh).await, Some("invalid_token")).await;
    assert_unauthorized(app.refresh(&pair.access).await, Some("invalid_token")).await;
    // Neither attempt hurt the session.
    assert_eq!(app.me(&pair.access).await.status(), StatusCode::OK);
    assert_eq!(
        app.refresh(&pair.refresh).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn broken_and_forged_tokens_are_refused() {
    let app = spawn_app().await;
    let pair = app.login_user().await;
    let mut parts: Vec<String> = pair.access.split('.').map(str::to_owned).collect();
    let tampered = {
        parts[1].insert(0, 'e');
        parts.join(".")
    };
    let alg_none = format!(
        "{}.{}.",
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0", // {"alg":"none","typ":"at+jwt"}
        pair.access.split('.').nth(1).expect("payload")
    );
    for token in [
        "",
        "garbage",
        "a.b.c",
        tampered.as_str(),
        alg_none.as_str(),
        &"x".repeat(5000),
    ] {
        let response = app.me(token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
    }
    // A token from another server (other secrets) is refused too.
    let other = spawn_app().await;
    let foreign = other.login_user().await;
    assert_unauthorized(app.me(&foreign.access).await, Some("invalid_token")).await;
}

#[tokio::test]
async fn missing_credentials_get_an_rfc6750_challenge() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/me")).send().await.expect("sent");
    assert_unauthorized(response, None).await;
    let response = app
        .client
        .get(app.url("/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_access_tokens_are_refused_and_refresh_still_works() {
    let app = spawn_app_with(&[("ACCESS_TTL", "1s"), ("JWT_LEEWAY", "0s")]).await;
    let pair = app.login_user().await;
    assert_eq!(pair.body["expires_in"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let body = assert_unauthorized(app.me(&pair.access).await, Some("invalid_token")).await;
    assert_eq!(body["detail"], "The access token expired");
    let fresh = tokens(app.refresh(&pair.refresh).await).await;
    assert_eq!(app.me(&fresh.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn sessions_end_with_their_refresh_token() {
    let app = spawn_app_with(&[
        ("ACCESS_TTL", "1s"),
        ("REFRESH_TTL", "2s"),
        ("JWT_LEEWAY", "0s"),
    ])
    .await;
    let pair = app.login_user().await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_unauthorized(app.refresh(&pair.refresh).await, Some("invalid_token")).await;
}

#[tokio::test]
async fn registration_validates_and_refuses_duplicates() {
    let app = spawn_app().await;
    let created = app
        .post_json(
            "/users",
            &json!({"username": "Alice", "password": "a fine long passphrase", "phone": "+4915112345678"}),
            None,
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let user: serde_json::Value = created.json().await.expect("json");
    assert_eq!(user["username"], "alice");
    assert_eq!(user["phone"], "+4915112345678");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());

    let duplicate = app
        .post_json(
            "/users",
            &json!({"username": "ALICE", "password": "another long passphrase"}),
            None,
        )
        .await;
    assert_problem(duplicate, StatusCode::CONFLICT).await;

    for (body, field) in [
        (
            json!({"username": "bob", "password": "password123"}),
            "password",
        ),
        (
            json!({"username": "bob", "password": "a fine long passphrase", "phone": "0151 1234"}),
            "phone",
        ),
        (
            json!({"username": "b o b", "password": "a fine long passphrase"}),
            "username",
        ),
    ] {
        let problem = assert_problem(
            app.post_json("/users", &body, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(problem["field"], field, "{problem}");
    }
    // The new user can log in, case-insensitively.
    app.login_ok("ALICE", "a fine long passphrase").await;
}

#[tokio::test]
async fn revoke_by_refresh_token_signs_out_without_an_access_token() {
    let app = spawn_app().await;
    let pair = app.login_user().await;
    let response = app
        .post_json(
            "/token/revoke",
            &json!({"refresh_token": pair.refresh}),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_unauthorized(app.me(&pair.access).await, Some("invalid_token")).await;
    // Once the session is gone, the same token is refused.
    let again = app
        .post_json(
            "/token/revoke",
            &json!({"refresh_token": pair.refresh}),
            None,
        )
        .await;
    assert_unauthorized(again, Some("invalid_token")).await;
}

#[tokio::test]
async fn within_the_reuse_grace_two_tabs_refreshing_at_once_both_stay_signed_in() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "10s")]).await;
    let pair = app.login_user().await;
    let first = tokens(app.refresh(&pair.refresh).await).await;
    // The second tab replays the same (now spent) token: it gets the pair already issued.
    let replay = app.refresh(&pair.refresh).await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    let second = tokens(replay).await;
    assert_eq!(
        second.refresh, first.refresh,
        "the refresh token already issued, exactly"
    );
    assert_eq!(app.me(&second.access).await.status(), StatusCode::OK);
    assert_eq!(app.me(&first.access).await.status(), StatusCode::OK);
    // The chain goes on from there, once.
    let third = tokens(app.refresh(&first.refresh).await).await;
    assert_eq!(app.me(&third.access).await.status(), StatusCode::OK);
    // A token two rotations old is theft even within the window: the session ends.
    assert_unauthorized(app.refresh(&pair.refresh).await, Some("invalid_token")).await;
    assert_unauthorized(app.me(&third.access).await, Some("invalid_token")).await;
}

#[tokio::test]
async fn refreshes_never_extend_a_session_past_its_absolute_lifetime() {
    let app = spawn_app_with(&[
        ("ACCESS_TTL", "1s"),
        ("REFRESH_TTL", "1h"),
        ("SESSION_MAX_LIFETIME", "2s"),
        ("JWT_LEEWAY", "0s"),
    ])
    .await;
    let pair = app.login_user().await;
    assert!(
        pair.body["refresh_expires_in"]
            .as_i64()
            .is_some_and(|s| s <= 2),
        "{}",
        pair.body
    );
    let refreshed = tokens(app.refresh(&pair.refresh).await).await;
    assert!(
        refreshed.body["refresh_expires_in"]
            .as_i64()
            .is_some_and(|s| s <= 2),
        "{}",
        refreshed.body
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_unauthorized(app.refresh(&refreshed.refresh).await, Some("invalid_token")).await;
}
