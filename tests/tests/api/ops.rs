//! Operations: `/metrics`, request ids, readiness, and logs that never hold a secret.

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::notifications::request_code;

pub(crate) async fn metrics(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.expect("text body")
}

/// The value of one sample line (`name{labels} value`), if present.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_auth_outcomes() {
    let app = spawn_app().await;
    let tokens = app.login_user().await;
    assert_eq!(
        app.login(USER, "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    for id in [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()] {
        let response = app.get(&format!("/todo/{id}"), &tokens.access).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    for path in ["/wp-admin", "/a/b/c/d"] {
        let response = app.client.get(app.url(path)).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    // Rotate once, then replay the spent token: a reuse, which revokes the session.
    assert_eq!(
        app.refresh(&tokens.refresh).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.refresh(&tokens.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = app.login_user().await;
    assert_eq!(app.logout(&again.access).await.status(), StatusCode::OK);

    let text = metrics(&app).await;
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    };
    expect(
        r#"jwt_todo_http_requests_total{method="GET",route="/todo/{id}",status="404"}"#,
        2.0,
    );
    expect(
        r#"jwt_todo_http_requests_total{method="GET",route="unmatched",status="404"}"#,
        2.0,
    );
    expect(
        r#"jwt_todo_http_request_duration_seconds_count{method="POST",route="/login",status="200"}"#,
        2.0,
    );
    expect(r#"jwt_todo_logins_total{outcome="success"}"#, 2.0);
    expect(
        r#"jwt_todo_logins_total{outcome="invalid_credentials"}"#,
        1.0,
    );
    expect(r#"jwt_todo_token_refreshes_total{outcome="success"}"#, 1.0);
    expect(r#"jwt_todo_token_refreshes_total{outcome="reused"}"#, 1.0);
    expect("jwt_todo_refresh_reuse_detected_total", 1.0);
    expect(r#"jwt_todo_sessions_revoked_total{reason="reuse"}"#, 1.0);
    expect(r#"jwt_todo_sessions_revoked_total{reason="logout"}"#, 1.0);
    expect("jwt_todo_notification_worker_running", 1.0);
    assert!(
        !text.contains(&tokens.access[..20]) && !text.lines().any(|l| l.contains("/todo/0")),
        "no raw path or token in a label"
    );
}

#[tokio::test]
async fn notification_outcomes_are_counted() {
    let app = spawn_app().await;
    let tokens = app.new_user("phoned").await;
    // A code request; without Vonage credentials the SMS is logged, which counts as sent.
    let requested = request_code(&app, &tokens.access, "+4915112345678").await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    eventually(
        std::time::Duration::from_secs(10),
        "sms counted",
        || async {
            sample(
                &metrics(&app).await,
                r#"jwt_todo_notifications_total{outcome="sent"}"#,
            ) == Some(1.0)
        },
    )
    .await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_taken_from_the_request_when_sane() {
    let app = spawn_app().await;
    let with_id = |id: &str| {
        app.client
            .get(app.url("/healthz"))
            .header("x-request-id", id)
            .send()
    };
    let response = with_id("trace-42.a_b:c").await.expect("sent");
    assert_eq!(response.headers()["x-request-id"], "trace-42.a_b:c");

    for bad in ["has space", "<script>", &"x".repeat(129)] {
        let response = with_id(bad).await.expect("sent");
        let id = response.headers()["x-request-id"].to_str().expect("ascii");
        assert!(
            uuid::Uuid::parse_str(id).is_ok(),
            "{bad:?} replaced, got {id}"
        );
    }
    // Absent: generated, on errors and unknown paths too, and different each time.
    let mut seen = Vec::new();
    for path in ["/me", "/nowhere", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.expect("sent");
        let id = response.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{path}: {id}");
        seen.push(id);
    }
    seen.dedup();
    assert_eq!(seen.len(), 3);
}

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn json_logs_name_each_request_and_hold_no_token_or_password() {
    let captured = Captured::default();
    tracing::subscriber::set_global_default(server::telemetry::subscriber(
        server::LogFormat::Json,
        tracing_subscriber::EnvFilter::new("trace,hyper=info,h2=info,reqwest=info"),
        captured.clone(),
    ))
    .expect("the only test that installs a global subscriber");

    let app = spawn_app().await;
    let password = "correct horse battery staple 42";
    let response = app
        .post_json(
            "/users",
            &json!({"username": "logged", "password": password}),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let first = app.login_ok("logged", password).await;
    assert_eq!(
        app.login("logged", "not the password at all")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.me(&first.access).await.status(), StatusCode::OK);
    let rotated = tokens(app.refresh(&first.refresh).await).await;
    assert_eq!(app.logout(&rotated.access).await.status(), StatusCode::OK);
    // Dead tokens presented again are logged as refusals, never echoed.
    assert_eq!(
        app.refresh(&rotated.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me(&rotated.access).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let text = String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    let mut request_lines = 0;
    for line in &lines {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        if value["message"] == "request" {
            request_lines += 1;
            let span = &value["spans"][0];
            assert!(
                span["request_id"].is_string() && span["route"].is_string(),
                "{line}"
            );
            assert!(
                value["status"].is_u64() && value["latency_ms"].is_number(),
                "{line}"
            );
        }
    }
    assert!(
        request_lines >= 8,
        "one line per request, got {request_lines}:\n{text}"
    );
    // Whole secrets, and the signature part of each token (what makes it usable).
    let mut secrets = vec![password.to_owned(), "not the password at all".to_owned()];
    for token in [
        &first.access,
        &first.refresh,
        &rotated.access,
        &rotated.refresh,
    ] {
        secrets.push(token.clone());
        secrets.push(token.rsplit('.').next().expect("a JWT").to_owned());
    }
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret reached the logs: {secret}\n{text}"
        );
    }
}

#[tokio::test]
async fn store_failures_are_counted_and_make_the_replica_unready() {
    // Nothing listens there: every store call fails within the store's timeout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let app = spawn_app_with(&[("REDIS_URL", &format!("redis://127.0.0.1:{closed}"))]).await;
    let readyz = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_problem(readyz, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_problem(
        app.login(USER, PASSWORD).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;

    let text = metrics(&app).await;
    let http_errors = sample(&text, r#"jwt_todo_store_errors_total{component="http"}"#);
    assert_eq!(http_errors, Some(2.0), "{text}");
    assert_eq!(
        sample(&text, r#"jwt_todo_logins_total{outcome="unavailable"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"jwt_todo_http_requests_total{method="GET",route="/readyz",status="503"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn redis_pool_usage_is_exported() {
    let redis = crate::redis::start_redis().await;
    let app = spawn_app_with(&[("REDIS_URL", &redis.url)]).await;
    // Readiness checks the pool with a connection of its own.
    let readyz = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(readyz.status(), StatusCode::OK);

    let text = metrics(&app).await;
    let state = |s: &str| {
        sample(
            &text,
            &format!(r#"jwt_todo_redis_pool_connections{{state="{s}"}}"#),
        )
    };
    assert_eq!(state("max"), Some(16.0), "{text}");
    let open = state("open").expect("open connections exported");
    assert!(open >= 1.0, "readiness opened a pooled connection: {text}");
    let idle = state("idle").expect("idle connections exported");
    assert!(idle <= open, "{text}");
    assert_eq!(state("waiting"), Some(0.0), "{text}");
}
