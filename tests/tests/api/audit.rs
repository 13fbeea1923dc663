//! The audit trail, over HTTP, in both stores: what happened to an account, newest first,
//! paginated, bounded in age and count, its owner's alone, and never flushed by strangers.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::ops::metrics;
use crate::redis::start_redis;

/// Every event of the caller's trail, newest first, read in pages of `size`, with the
/// pages' sizes.
async fn trail(app: &TestApp, access: &str, size: usize) -> (Vec<Value>, Vec<usize>) {
    let (mut events, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(next) => format!("/me/events?limit={size}&cursor={next}"),
            None => format!("/me/events?limit={size}"),
        };
        let response = app.get(&path, access).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let page: Value = response.json().await.expect("json");
        let items = page["items"].as_array().expect("items").clone();
        sizes.push(items.len());
        events.extend(items);
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (events, sizes),
        }
        assert!(sizes.len() < 100, "pagination never ends");
    }
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

/// The account's story, newest first, in pages; each event with its time, session,
/// client and user agent; another account sees none of it.
async fn events_appear_in_order_and_paginate(store: &[(&str, &str)]) {
    let app = spawn_app_with(store).await;
    let first = app.new_user("storied").await;
    let session = first.body["session_id"].as_str().expect("sid").to_owned();
    let second = app.login_ok("storied", PASSWORD).await;
    let rotated = tokens(app.refresh(&second.refresh).await).await;
    assert_eq!(
        app.login("storied", "not the password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let revoked = app
        .client
        .delete(app.url(&format!(
            "/sessions/{}",
            rotated.body["session_id"].as_str().expect("sid")
        )))
        .bearer_auth(&first.access)
        .header("user-agent", "audit-test/1.0")
        .send()
        .await
        .expect("sent");
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let changed = app
        .post_json(
            "/me/password",
            &json!({"current_password": PASSWORD, "new_password": "a changed passphrase"}),
            Some(&first.access),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.logout(&first.access).await.status(), StatusCode::OK);
    let reader = app.login_ok("storied", "a changed passphrase").await;

    let (events, sizes) = trail(&app, &reader.access, 2).await;
    assert_eq!(
        kinds(&events),
        [
            "login_succeeded",
            "logged_out",
            "password_changed",
            "session_revoked",
            "login_failed",
            "refreshed",
            "login_succeeded",
            "login_succeeded",
        ],
        "newest first"
    );
    assert_eq!(sizes, [2, 2, 2, 2], "pages of two, the last one exact");
    let revoked = &events[3];
    assert_eq!(revoked["session_id"], session.as_str(), "{revoked}");
    assert_eq!(revoked["client"], "127.0.0.1");
    assert_eq!(revoked["user_agent"], "audit-test/1.0");
    assert!(
        revoked["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("revoked=")),
        "{revoked}"
    );
    assert_eq!(events[1]["detail"], "scope=local ended=1");
    let times: Vec<i64> = events
        .iter()
        .map(|e| e["at"].as_i64().expect("at"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    // Nobody else's, and nobody sees it but its owner.
    let other = app.new_user("bystander").await;
    assert_eq!(
        kinds(&trail(&app, &other.access, 100).await.0),
        ["login_succeeded"]
    );
    // A cursor this listing did not give out is a 400.
    let forged = app
        .get("/me/events?cursor=bm90LWEtY3Vyc29y", &reader.access)
        .await;
    assert_problem(forged, StatusCode::BAD_REQUEST).await;
    let text = metrics(&app).await;
    assert!(
        text.contains("jwt_todo_audit_events_total{kind=\"password_changed\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn events_appear_in_order_and_paginate_in_the_embedded_store() {
    events_appear_in_order_and_paginate(&[]).await;
}

#[tokio::test]
async fn events_appear_in_order_and_paginate_over_redis() {
    let redis = start_redis().await;
    events_appear_in_order_and_paginate(&[("REDIS_URL", &redis.url)]).await;
}

/// Events older than `AUDIT_RETENTION` are gone, and a trail keeps at most
/// `AUDIT_MAX_EVENTS`, the newest.
async fn events_expire_and_are_bounded(store: &[(&str, &str)]) {
    let mut vars = vec![("AUDIT_RETENTION", "2s"), ("AUDIT_MAX_EVENTS", "3")];
    vars.extend(store);
    let app = spawn_app_with(&lenient_throttle(&vars)).await;
    app.new_user("fleeting").await;
    let mut last = None;
    for _ in 0..4 {
        last = Some(app.login_ok("fleeting", PASSWORD).await);
    }
    let last = last.expect("logged in");
    let (events, _) = trail(&app, &last.access, 100).await;
    assert_eq!(kinds(&events), ["login_succeeded"; 3], "the three newest");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (events, _) = trail(&app, &last.access, 100).await;
    assert!(events.is_empty(), "expired: {events:?}");
}

#[tokio::test]
async fn events_expire_and_are_bounded_in_the_embedded_store() {
    events_expire_and_are_bounded(&[]).await;
}

#[tokio::test]
async fn events_expire_and_are_bounded_over_redis() {
    let redis = start_redis().await;
    events_expire_and_are_bounded(&[("REDIS_URL", &redis.url)]).await;
}

/// Anyone knowing a username can fail logins at it from many addresses: those events are
/// kept 20 an hour, so they cannot push the owner's own events out of the trail.
async fn strangers_cannot_flush_the_trail(store: &[(&str, &str)]) {
    let mut vars = vec![("AUDIT_MAX_EVENTS", "30")];
    vars.extend(store);
    let app = spawn_app_with(&lenient_throttle(&vars)).await;
    let owner = app.new_user("watched").await;
    for _ in 0..40 {
        assert_eq!(
            app.login("watched", "a guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let (events, _) = trail(&app, &owner.access, 100).await;
    let failed = kinds(&events)
        .iter()
        .filter(|k| *k == "login_failed")
        .count();
    assert_eq!(failed, 20, "the hour's budget of failed logins");
    assert_eq!(
        kinds(&events).last().map(String::as_str),
        Some("login_succeeded"),
        "the owner's own login is still there"
    );
    let text = metrics(&app).await;
    assert!(
        text.contains("jwt_todo_audit_events_unstored_total{reason=\"over_budget\"} 20"),
        "{text}"
    );
}

#[tokio::test]
async fn strangers_cannot_flush_the_trail_in_the_embedded_store() {
    strangers_cannot_flush_the_trail(&[]).await;
}

#[tokio::test]
async fn strangers_cannot_flush_the_trail_over_redis() {
    let redis = start_redis().await;
    strangers_cannot_flush_the_trail(&[("REDIS_URL", &redis.url)]).await;
}
