//! Login throttling, over HTTP, in both stores: failures counted per (username, client)
//! and per client, 429 with `Retry-After`, no lockout of a victim from elsewhere, a
//! success that resets, no difference between known and unknown names, and counters
//! shared by every server on one Redis.
//!
//! The client is the TCP peer, or, from a trusted proxy (here: the test itself, on
//! 127.0.0.1), the address in `X-Forwarded-For`; most scenarios use the latter to play
//! several clients at once.

use std::net::IpAddr;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::redis::start_redis;

/// Failures allowed per (username, client) and per client in these tests.
const PAIR_LIMIT: usize = 3;
const CLIENT_LIMIT: usize = 7;
/// The window, in seconds: long enough that no window ends during a test.
const WINDOW_SECS: u64 = 600;

const USER: &str = "throttled_user";
const PASSWORD: &str = "a fine long passphrase";

fn throttle_vars<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![
        ("LOGIN_PAIR_LIMIT", "3"),
        ("LOGIN_PAIR_WINDOW", "10m"),
        ("LOGIN_CLIENT_LIMIT", "7"),
        ("LOGIN_CLIENT_WINDOW", "10m"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ];
    vars.extend_from_slice(extra);
    vars
}

/// `POST /login` as the client `from`, through the "proxy" on 127.0.0.1.
async fn login_from(app: &TestApp, from: &str, username: &str, password: &str) -> Response {
    app.client
        .post(app.url("/login"))
        .header("X-Forwarded-For", from)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("request sent")
}

async fn register(app: &TestApp, username: &str) {
    let response = app
        .post_json(
            "/users",
            &json!({"username": username, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// Asserts a 429 problem with a `Retry-After` within the window; returns the body.
async fn assert_throttled(response: Response) -> Value {
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("a 429 carries Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(
        (1..=WINDOW_SECS).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let body = assert_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        body["type"], "urn:jwt-todo:problem:too-many-logins",
        "{body}"
    );
    body
}

/// `n` failed logins of `username` from `from`, each a plain 401.
async fn fail(app: &TestApp, from: &str, username: &str, n: usize) {
    for i in 0..n {
        let response = login_from(app, from, username, "not the password").await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "failure {} of {n} for {username} from {from}",
            i + 1
        );
    }
}

/// Every scenario, each from addresses of its own, on one server.
async fn scenarios(app: &TestApp, user: &str) {
    over_the_pair_limit_is_429_and_the_victim_logs_in_elsewhere(app, user).await;
    a_success_resets_the_pair(app, user).await;
    known_and_unknown_names_are_counted_alike(app, user).await;
    over_the_client_limit_every_name_is_429_from_that_client_only(app, user).await;
}

async fn over_the_pair_limit_is_429_and_the_victim_logs_in_elsewhere(app: &TestApp, user: &str) {
    let attacker = "198.51.100.1";
    fail(app, attacker, user, PAIR_LIMIT).await;
    assert_throttled(login_from(app, attacker, user, "not the password").await).await;
    // Even the right password is refused from there, unchecked, until the window ends.
    assert_throttled(login_from(app, attacker, user, PASSWORD).await).await;
    // Another name from the same address is not affected by this pair's count.
    assert_eq!(
        login_from(app, attacker, "someone_else", "x")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The victim, from their own address, is not slowed at all.
    assert_eq!(
        login_from(app, "198.51.100.2", user, PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn a_success_resets_the_pair(app: &TestApp, user: &str) {
    let typist = "198.51.100.3";
    fail(app, typist, user, PAIR_LIMIT - 1).await;
    assert_eq!(
        login_from(app, typist, user, PASSWORD).await.status(),
        StatusCode::OK
    );
    // Had the count not been reset, the second of these would be 429.
    fail(app, typist, user, PAIR_LIMIT).await;
    assert_throttled(login_from(app, typist, user, PASSWORD).await).await;
}

async fn known_and_unknown_names_are_counted_alike(app: &TestApp, user: &str) {
    let mut seen = Vec::new();
    for (from, name) in [("198.51.100.4", user), ("198.51.100.5", "nobody_at_all")] {
        let mut answers = Vec::new();
        for _ in 0..=PAIR_LIMIT {
            let response = login_from(app, from, name, "not the password").await;
            let status = response.status();
            let retry_after = response.headers().contains_key("retry-after");
            let mut body: Value = response.json().await.expect("problem body");
            // The only part that may differ: the seconds left in the window.
            body["detail"] = Value::Null;
            answers.push((status, retry_after, body));
        }
        seen.push(answers);
    }
    assert_eq!(
        seen[0], seen[1],
        "a known and an unknown name answered differently"
    );
    assert_eq!(seen[0][PAIR_LIMIT].0, StatusCode::TOO_MANY_REQUESTS);
}

async fn over_the_client_limit_every_name_is_429_from_that_client_only(app: &TestApp, user: &str) {
    let sprayer = "203.0.113.9";
    for i in 0..CLIENT_LIMIT {
        fail(app, sprayer, &format!("sprayed_{i}"), 1).await;
    }
    assert_throttled(login_from(app, sprayer, "sprayed_new", "x").await).await;
    assert_throttled(login_from(app, sprayer, user, PASSWORD).await).await;
    // The address next door is another client.
    assert_eq!(
        login_from(app, "203.0.113.10", user, PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn login_throttling_in_the_embedded_store() {
    let app = spawn_app_with(&throttle_vars(&[])).await;
    register(&app, USER).await;
    scenarios(&app, USER).await;
}

#[tokio::test]
async fn login_throttling_in_redis() {
    let redis = start_redis().await;
    let app = spawn_app_with(&throttle_vars(&[("REDIS_URL", &redis.url)])).await;
    register(&app, USER).await;
    scenarios(&app, USER).await;
}

#[tokio::test]
async fn two_servers_on_one_redis_share_their_counters() {
    let redis = start_redis().await;
    let vars = throttle_vars(&[("REDIS_URL", &redis.url)]);
    let (first, second) = (spawn_app_with(&vars).await, spawn_app_with(&vars).await);
    register(&first, USER).await;
    let attacker = "198.51.100.77";
    // Failures alternate between the replicas ...
    for i in 0..PAIR_LIMIT {
        let app = if i % 2 == 0 { &first } else { &second };
        fail(app, attacker, USER, 1).await;
    }
    // ... and both refuse the next attempt.
    assert_throttled(login_from(&first, attacker, USER, PASSWORD).await).await;
    assert_throttled(login_from(&second, attacker, USER, PASSWORD).await).await;
    // A success on one replica resets the pair for the other.
    let typist = "198.51.100.78";
    fail(&first, typist, USER, PAIR_LIMIT - 1).await;
    assert_eq!(
        login_from(&second, typist, USER, PASSWORD).await.status(),
        StatusCode::OK
    );
    fail(&first, typist, USER, PAIR_LIMIT).await;
}

#[tokio::test]
async fn a_redis_that_is_down_refuses_logins_with_503() {
    let redis = start_redis().await;
    let app = spawn_app_with(&throttle_vars(&[("REDIS_URL", &redis.url)])).await;
    register(&app, USER).await;
    redis.container.stop().await.expect("stop redis");
    let response = login_from(&app, "198.51.100.90", USER, PASSWORD).await;
    assert_eq!(response.headers()["retry-after"], "1");
    assert_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_from_an_untrusted_peer() {
    let app = spawn_app_with(&[("LOGIN_PAIR_LIMIT", "3"), ("LOGIN_PAIR_WINDOW", "10m")]).await;
    register(&app, USER).await;
    for from in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        fail(&app, from, USER, 1).await;
    }
    // Three "different" addresses, one real client: it is over its limit.
    assert_throttled(login_from(&app, "198.51.100.4", USER, PASSWORD).await).await;
}

#[tokio::test]
async fn the_tcp_peer_is_the_client_by_default() {
    let app = spawn_app_with(&[("LOGIN_PAIR_LIMIT", "3"), ("LOGIN_PAIR_WINDOW", "10m")]).await;
    register(&app, USER).await;
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(IpAddr::from(ip))
            .build()
            .expect("client")
    };
    let (attacker, victim) = (from([127, 0, 0, 2]), from([127, 0, 0, 3]));
    let login = |client: &reqwest::Client, password: &str| {
        client
            .post(app.url("/login"))
            .json(&json!({"username": USER, "password": password}))
            .send()
    };
    for _ in 0..PAIR_LIMIT {
        let response = login(&attacker, "wrong").await.expect("sent");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_throttled(login(&attacker, PASSWORD).await.expect("sent")).await;
    assert_eq!(
        login(&victim, PASSWORD).await.expect("sent").status(),
        StatusCode::OK
    );
}
