//! Bad input gets a clear problem document and changes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_422_problems() {
    let app = spawn_app().await;
    let send_raw = |path: &'static str, body: &'static str| {
        app.client
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (path, body) in [
        ("/login", "{not json"),
        ("/login", r#"{"username": 5, "password": "x"}"#),
        ("/login", r#"{"username": "username"}"#),
        ("/login", "[]"),
        ("/token/refresh", r#"{"refresh_token": null}"#),
        ("/users", r#"{"username": "abc", "password": 12345678}"#),
    ] {
        let response = send_raw(path, body).await.expect("sent");
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

#[tokio::test]
async fn a_body_without_json_content_type_is_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/login"))
        .header("content-type", "text/plain")
        .body(r#"{"username":"username","password":"password"}"#)
        .send()
        .await
        .expect("sent");
    assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn huge_bodies_are_refused_with_413_with_or_without_content_length() {
    let app = spawn_app().await;
    let user = app.login_user().await;
    let huge = json!({"title": "x".repeat(100_000)});
    let response = app.post_json("/todo", &huge, Some(&user.access)).await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    // Chunked, no Content-Length: still cut off.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..100).map(|_| Ok(vec![b' '; 1024])).collect();
    let response = app
        .client
        .post(app.url("/todo"))
        .bearer_auth(&user.access)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("sent");
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    let list: Vec<Value> = app.items("/todo", &user.access).await;
    assert!(list.is_empty());
}

#[tokio::test]
async fn unknown_routes_and_bad_ids_are_problems_too() {
    let app = spawn_app().await;
    let user = app.login_user().await;
    let response = app
        .client
        .get(app.url("/nowhere"))
        .send()
        .await
        .expect("sent");
    assert_problem(response, StatusCode::NOT_FOUND).await;
    let response = app.get("/todo/not-a-uuid", &user.access).await;
    assert_problem(response, StatusCode::BAD_REQUEST).await;
    let response = app
        .client
        .put(app.url("/login"))
        .send()
        .await
        .expect("sent");
    assert_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let app = spawn_app().await;
    app.register_user().await;
    for response in [
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("sent"),
        app.login(USER, "wrong").await,
        app.login(USER, PASSWORD).await,
    ] {
        let headers = response.headers();
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
    }
}
