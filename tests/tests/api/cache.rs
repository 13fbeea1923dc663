//! The session cache against a real Redis: served without a round trip, yet a logout on
//! another replica, this replica's own writes, a stalled Redis and a dropped invalidation
//! link all take effect within the rules of `adapter_redis`'s `cache` module.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::notifications::request_code;
use crate::ops::metrics;
use crate::redis::{TestRedis, redis_cli, start_redis};

const ACCESS: &str = "cache-access-secret-0123456789abcdef0123";
const REFRESH: &str = "cache-refresh-secret-0123456789abcdef012";

/// A replica on `redis` with the session cache at `staleness`.
async fn replica(redis: &TestRedis, staleness: &str) -> TestApp {
    spawn_app_with(&lenient_throttle(&[
        ("REDIS_URL", &redis.url),
        ("ACCESS_SECRET", ACCESS),
        ("REFRESH_SECRET", REFRESH),
        ("SESSION_CACHE_STALENESS", staleness),
    ]))
    .await
}

/// The value of an unlabelled series on `/metrics`, if it is there.
async fn series(app: &TestApp, name: &str) -> Option<f64> {
    metrics(app).await.lines().find_map(|line| {
        let (series, value) = line.split_once(' ')?;
        (series == name)
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

async fn hits(app: &TestApp) -> f64 {
    series(app, "jwt_todo_session_cache_hits_total")
        .await
        .expect("the cache reports its hits")
}

/// Waits until `app`'s invalidation link is proven, then reads `access` through `app`
/// until it is answered from the cache.
async fn cached(app: &TestApp, access: &str) {
    eventually(
        Duration::from_secs(10),
        "the invalidation link is proven",
        || async { series(app, "jwt_todo_session_cache_live").await == Some(1.0) },
    )
    .await;
    let before = hits(app).await;
    eventually(
        Duration::from_secs(10),
        "a read served from the cache",
        || async {
            assert_eq!(app.me(access).await.status(), StatusCode::OK);
            hits(app).await > before
        },
    )
    .await;
}

#[tokio::test]
async fn a_logout_through_another_replica_ends_a_cached_session_by_push() {
    let redis = start_redis().await;
    // A long bound: only a push can end the cached entry quickly, since the link stays
    // proven all along.
    let (a, b) = (replica(&redis, "1s").await, replica(&redis, "1s").await);
    let pair = a.new_user("pushed").await;
    cached(&b, &pair.access).await;

    assert_eq!(a.logout(&pair.access).await.status(), StatusCode::OK);
    let logged_out = Instant::now();
    // Without the push, B would answer 200 from its cache until the session expired.
    let mut last = StatusCode::OK;
    while logged_out.elapsed() < Duration::from_secs(5) {
        last = b.me(&pair.access).await.status();
        if last == StatusCode::UNAUTHORIZED {
            break;
        }
    }
    assert_eq!(
        last,
        StatusCode::UNAUTHORIZED,
        "B kept serving a logged-out session"
    );
    println!("logout on A seen by B after {:?}", logged_out.elapsed());
    // And it stays so (the refusal is not cached, Redis is asked again).
    assert_unauthorized(b.me(&pair.access).await, Some("invalid_token")).await;
}

#[tokio::test]
async fn a_profile_change_through_another_replica_is_seen_by_push() {
    let redis = start_redis().await;
    let (a, b) = (replica(&redis, "1s").await, replica(&redis, "1s").await);
    let pair = a.new_user("moving").await;
    cached(&b, &pair.access).await;
    let set = request_code(&a, &pair.access, "+8821612345678").await;
    assert!(set.status().is_success(), "{}", set.status());
    eventually(Duration::from_secs(5), "B shows the new number", || async {
        let profile: Value = b.me(&pair.access).await.json().await.expect("json");
        profile["phone"] == "+8821612345678"
    })
    .await;
}

#[tokio::test]
async fn this_replicas_own_writes_end_its_cached_entries_before_it_answers() {
    let redis = start_redis().await;
    let app = replica(&redis, "1s").await;

    // Logout: the very next request is refused, with no wait at all.
    let pair = app.new_user("own_writes").await;
    cached(&app, &pair.access).await;
    assert_eq!(app.logout(&pair.access).await.status(), StatusCode::OK);
    assert_unauthorized(app.me(&pair.access).await, Some("invalid_token")).await;

    // Revoking another session by id.
    let first = app.login_ok("own_writes", PASSWORD).await;
    let second = app.login_ok("own_writes", PASSWORD).await;
    cached(&app, &second.access).await;
    let sessions = app.items("/sessions", &first.access).await;
    let other = sessions
        .iter()
        .find(|s| s["current"] != true)
        .and_then(|s| s["id"].as_str())
        .expect("the other session is listed")
        .to_owned();
    let revoked = app
        .client
        .delete(app.url(&format!("/sessions/{other}")))
        .bearer_auth(&first.access)
        .send()
        .await
        .expect("sent");
    assert!(revoked.status().is_success(), "{}", revoked.status());
    assert_unauthorized(app.me(&second.access).await, Some("invalid_token")).await;

    // Reuse detection: a replayed refresh token ends its session, cached or not.
    cached(&app, &first.access).await;
    let rotated = tokens(app.refresh(&first.refresh).await).await;
    cached(&app, &rotated.access).await;
    assert_eq!(
        app.refresh(&first.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_unauthorized(app.me(&rotated.access).await, Some("invalid_token")).await;

    // A profile change is shown by the next read.
    let third = app.login_ok("own_writes", PASSWORD).await;
    cached(&app, &third.access).await;
    let set = request_code(&app, &third.access, "+8821612345678").await;
    assert!(set.status().is_success(), "{}", set.status());
    let profile: Value = app.me(&third.access).await.json().await.expect("json");
    assert_eq!(profile["phone"], "+8821612345678");
}

#[tokio::test]
async fn with_redis_stalled_nothing_is_served_from_the_cache_after_the_bound() {
    let redis = start_redis().await;
    let bound = Duration::from_millis(200);
    let app = replica(&redis, "200ms").await;
    let pair = app.new_user("stalled").await;
    cached(&app, &pair.access).await;

    // Paused: the link stays open but no heartbeat is answered, as in a partition.
    redis.container.pause().await.expect("pause redis");
    let paused = Instant::now();
    // Whatever was served before, a request that starts after the bound (plus the
    // heartbeat interval's worth of a reply in flight, bound / 4) is not served from the
    // cache: it asks Redis, which does not answer, and fails closed.
    tokio::time::sleep_until((paused + bound + bound / 4 + Duration::from_millis(5)).into()).await;
    let hits_before = hits(&app).await;
    assert_problem(app.me(&pair.access).await, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(
        hits(&app).await,
        hits_before,
        "served from the cache past the bound"
    );
    assert_eq!(series(&app, "jwt_todo_session_cache_live").await, Some(0.0));

    redis.container.unpause().await.expect("unpause redis");
    eventually(
        Duration::from_secs(10),
        "service after the stall",
        || async { app.me(&pair.access).await.status() == StatusCode::OK },
    )
    .await;
    cached(&app, &pair.access).await;
}

#[tokio::test]
async fn a_dropped_link_empties_the_cache_at_once_and_is_opened_again() {
    let redis = start_redis().await;
    let app = replica(&redis, "1s").await;
    let pair = app.new_user("dropped").await;
    cached(&app, &pair.access).await;
    assert!(series(&app, "jwt_todo_session_cache_entries").await >= Some(1.0));

    let listed = redis_cli(&redis, &["CLIENT", "LIST"]).await;
    let id = listed
        .lines()
        .find(|line| line.contains("name=jwt-todo-tracking"))
        .and_then(|line| line.split_whitespace().find_map(|f| f.strip_prefix("id=")))
        .expect("the link is named in CLIENT LIST")
        .to_owned();
    let killed = redis_cli(&redis, &["CLIENT", "KILL", "ID", &id]).await;
    assert_eq!(killed.trim(), "1", "{killed}");
    eventually(Duration::from_secs(2), "an empty cache", || async {
        series(&app, "jwt_todo_session_cache_entries").await == Some(0.0)
    })
    .await;
    // Requests go on being answered meanwhile (through the shared connection), and the
    // cache serves again once a new link is proven.
    assert_eq!(app.me(&pair.access).await.status(), StatusCode::OK);
    cached(&app, &pair.access).await;
    let listed = redis_cli(&redis, &["CLIENT", "LIST"]).await;
    assert_eq!(
        listed.matches("name=jwt-todo-tracking").count(),
        1,
        "one link, not one per reconnection: {listed}"
    );
}

#[tokio::test]
async fn a_zero_bound_turns_the_cache_off() {
    let redis = start_redis().await;
    let app = replica(&redis, "0").await;
    let pair = app.new_user("uncached").await;
    assert_eq!(app.me(&pair.access).await.status(), StatusCode::OK);
    assert_eq!(
        series(&app, "jwt_todo_session_cache_hits_total").await,
        None
    );
    let listed = redis_cli(&redis, &["CLIENT", "LIST"]).await;
    assert!(!listed.contains("jwt-todo-tracking"), "{listed}");
}
