//! Sessions: listing, revoking one, and logout scopes.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn sessions_are_listed_and_one_can_be_revoked() {
    let app = spawn_app().await;
    let laptop = app.login_user().await;
    let phone = app.login_user().await;
    let sessions: Vec<Value> = app.items("/sessions", &laptop.access).await;
    assert_eq!(sessions.len(), 2);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], laptop.body["session_id"]);

    let path = format!(
        "/sessions/{}",
        phone.body["session_id"].as_str().expect("sid")
    );
    let revoked = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&laptop.access)
        .send()
        .await
        .expect("sent");
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_unauthorized(app.me(&phone.access).await, Some("invalid_token")).await;
    assert_unauthorized(app.refresh(&phone.refresh).await, Some("invalid_token")).await;
    assert_eq!(app.me(&laptop.access).await.status(), StatusCode::OK);

    // Another user's session id is simply not found, and stays alive.
    let other = app.new_user("someone").await;
    let path = format!(
        "/sessions/{}",
        other.body["session_id"].as_str().expect("sid")
    );
    let attempt = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&laptop.access)
        .send()
        .await
        .expect("sent");
    assert_problem(attempt, StatusCode::NOT_FOUND).await;
    assert_eq!(app.me(&other.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_scopes_end_the_right_sessions() {
    let app = spawn_app().await;
    let a = app.login_user().await;
    let b = app.login_user().await;
    let c = app.login_user().await;

    let others = app
        .client
        .post(app.url("/logout?scope=others"))
        .bearer_auth(&a.access)
        .send()
        .await
        .expect("sent");
    assert_eq!(others.status(), StatusCode::OK);
    let body: Value = others.json().await.expect("json");
    assert_eq!(body["sessions_ended"], 2);
    assert_eq!(app.me(&a.access).await.status(), StatusCode::OK);
    assert_eq!(app.me(&b.access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&c.access).await.status(), StatusCode::UNAUTHORIZED);

    let d = app.login_user().await;
    let global = app
        .client
        .post(app.url("/logout?scope=global"))
        .bearer_auth(&d.access)
        .send()
        .await
        .expect("sent");
    assert_eq!(global.status(), StatusCode::OK);
    assert_eq!(app.me(&a.access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&d.access).await.status(), StatusCode::UNAUTHORIZED);

    let bad_scope = app
        .client
        .post(app.url("/logout?scope=everyone"))
        .bearer_auth(&d.access)
        .send()
        .await
        .expect("sent");
    assert_eq!(bad_scope.status(), StatusCode::BAD_REQUEST);
}
