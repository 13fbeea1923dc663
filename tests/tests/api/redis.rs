//! The Redis store, proven against a real Redis in a container: the store contract, the
//! HTTP flows, and an outage in the middle of a test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapter_memory::{MemoryStore, SystemClock};
use adapter_redis::{RedisStore, RedisStoreConfig};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use server::sample_user::{SAMPLE_PASSWORD, SAMPLE_USERNAME};

use crate::contract::store_contract;
use crate::helpers::*;

/// The image to run: `REDIS_IMAGE` (e.g. `redis:7` where a registry is reachable), else
/// the one `scripts/redis-image` builds locally from Debian's redis-server.
fn image() -> (String, String) {
    let spec = std::env::var("REDIS_IMAGE").unwrap_or_else(|_| "jwt-todo-redis:local".to_owned());
    match spec.rsplit_once(':') {
        Some((name, tag)) => (name.to_owned(), tag.to_owned()),
        None => (spec, "latest".to_owned()),
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

pub struct TestRedis {
    pub container: ContainerAsync<GenericImage>,
    pub url: String,
}

/// A fresh Redis with AOF persistence (`appendfsync always`: whatever Redis
/// acknowledged survives a restart), on a fixed host port so that a restarted container
/// is found at the same address.
pub async fn start_redis() -> TestRedis {
    start_redis_on(free_port()).await
}

/// As [`start_redis`], on a given host port.
pub async fn start_redis_on(port: u16) -> TestRedis {
    start_redis_with(port, &[]).await
}

/// As [`start_redis_on`], with more `redis-server` arguments.
pub async fn start_redis_with(port: u16, extra: &[&str]) -> TestRedis {
    let (name, tag) = image();
    let mut cmd = vec![
        "redis-server",
        "--bind",
        "0.0.0.0",
        "--protected-mode",
        "no",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ];
    cmd.extend_from_slice(extra);
    let container = GenericImage::new(name, tag)
        .with_exposed_port(6379.tcp())
        .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
        .with_mapped_port(port, 6379.tcp())
        .with_cmd(cmd)
        .start()
        .await
        .expect("Redis container starts (run scripts/redis-image first, or set REDIS_IMAGE)");
    TestRedis {
        container,
        url: format!("redis://127.0.0.1:{port}"),
    }
}

/// Runs `redis-cli` inside the Redis container.
pub async fn redis_cli(redis: &TestRedis, args: &[&str]) -> String {
    let mut cmd = vec!["redis-cli"];
    cmd.extend_from_slice(args);
    let mut result = redis
        .container
        .exec(testcontainers::core::ExecCommand::new(cmd))
        .await
        .expect("redis-cli runs");
    String::from_utf8_lossy(&result.stdout_to_vec().await.expect("stdout")).into_owned()
}

#[tokio::test]
async fn the_embedded_store_keeps_the_store_contract() {
    store_contract(&MemoryStore::new(Arc::new(SystemClock))).await;
}

#[tokio::test]
async fn the_redis_store_keeps_the_store_contract() {
    let redis = start_redis().await;
    let store = RedisStore::new(&redis.url, RedisStoreConfig::default()).expect("valid url");
    store_contract(&store).await;
}

#[tokio::test]
async fn the_seed_flows_work_over_redis() {
    let redis = start_redis().await;
    let app = spawn_app_with(&lenient_throttle(&[("REDIS_URL", &redis.url)])).await;
    let pair = login_when_ready(&app).await;

    let created = app.create_todo(&pair.access, "Buy milk").await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let second = tokens(app.refresh(&pair.refresh).await).await;
    // Replay of the spent token: refused, and the session is gone.
    assert_unauthorized(app.refresh(&pair.refresh).await, Some("invalid_token")).await;
    assert_unauthorized(app.me(&second.access).await, Some("invalid_token")).await;

    // Ten concurrent refreshes with one token: exactly one wins.
    let fresh = app.login_user().await;
    let statuses: Vec<StatusCode> = join_all((0..10).map(|_| app.refresh(&fresh.refresh)))
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );

    // Registration, ownership and logout.
    let mallory = app.new_user("mallory").await;
    let todo: Value = app
        .create_todo(&mallory.access, "mine")
        .await
        .json()
        .await
        .expect("json");
    let other = app.login_user().await;
    let path = format!("/todo/{}", todo["id"].as_str().expect("id"));
    assert_problem(app.get(&path, &other.access).await, StatusCode::NOT_FOUND).await;
    assert_eq!(app.logout(&other.access).await.status(), StatusCode::OK);
    assert_unauthorized(app.me(&other.access).await, Some("invalid_token")).await;
    assert_unauthorized(app.refresh(&other.refresh).await, Some("invalid_token")).await;
    assert_eq!(app.me(&mallory.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn sessions_expire_in_redis_with_their_refresh_token() {
    let redis = start_redis().await;
    let app = spawn_app_with(&lenient_throttle(&[
        ("REDIS_URL", &redis.url),
        ("ACCESS_TTL", "1s"),
        ("REFRESH_TTL", "2s"),
        ("JWT_LEEWAY", "0s"),
    ]))
    .await;
    let pair = login_when_ready(&app).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_unauthorized(app.refresh(&pair.refresh).await, Some("invalid_token")).await;
}

#[tokio::test]
async fn a_redis_outage_is_a_quick_503_and_the_server_recovers_without_losing_data() {
    let redis = start_redis().await;
    let app = spawn_app_with(&lenient_throttle(&[("REDIS_URL", &redis.url)])).await;
    let pair = login_when_ready(&app).await;
    let todo: Value = app
        .create_todo(&pair.access, "survives the outage")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("sent")
            .status(),
        StatusCode::OK
    );

    redis.container.stop().await.expect("stop redis");

    // Authenticated routes fail closed, fast, with a problem document; so does login.
    let started = Instant::now();
    let body = assert_problem(app.me(&pair.access).await, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(body["type"], "urn:jwt-todo:problem:unavailable");
    let response = app.create_todo(&pair.access, "while down").await;
    assert_eq!(response.headers()["retry-after"], "1");
    assert_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_problem(
        app.login(USER, PASSWORD).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_problem(ready, StatusCode::SERVICE_UNAVAILABLE).await;
    // Liveness is not readiness: the process is fine.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("sent")
            .status(),
        StatusCode::OK
    );

    redis.container.start().await.expect("restart redis");

    // The same server recovers by itself; what was acknowledged before is still there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("sent")
            .status();
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server did not recover after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.me(&pair.access).await.status(),
        StatusCode::OK,
        "the session survived"
    );
    let list: Vec<Value> = app.items("/todo", &pair.access).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], todo["id"]);
    let refreshed = app.refresh(&pair.refresh).await;
    assert_eq!(
        refreshed.status(),
        StatusCode::CREATED,
        "the refresh token survived too"
    );
}

#[tokio::test]
async fn a_redis_that_hangs_is_a_503_within_the_command_timeout() {
    let redis = start_redis().await;
    let app = spawn_app_with(&lenient_throttle(&[("REDIS_URL", &redis.url)])).await;
    let pair = login_when_ready(&app).await;

    // Paused: connections stay open but nothing answers, as in a network partition.
    redis.container.pause().await.expect("pause redis");
    let started = Instant::now();
    assert_problem(app.me(&pair.access).await, StatusCode::SERVICE_UNAVAILABLE).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "a hung Redis held the request for {waited:?}"
    );

    redis.container.unpause().await.expect("unpause redis");
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.me(&pair.access).await.status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "no recovery after unpause");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_server_started_before_redis_waits_for_it_and_then_serves() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    // As `server serve` starts it: the sample user is part of what is tested here.
    let app = spawn_serving_app_with(&lenient_throttle(&[("REDIS_URL", &url)])).await;
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_problem(ready, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_problem(
        app.login(SAMPLE_USERNAME, SAMPLE_PASSWORD).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;

    // Redis arrives late: the running server picks it up, and creates its sample user.
    let _redis = start_redis_on(port).await;
    let pair = login_sample_when_ready(&app).await;
    assert_eq!(app.me(&pair.access).await.status(), StatusCode::OK);
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), StatusCode::OK);
}

/// Registers the test user as soon as the server's store answers (it may start before
/// its Redis), and logs in.
pub async fn login_when_ready(app: &TestApp) -> Tokens {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = app
            .post_json(
                "/users",
                &serde_json::json!({"username": USER, "password": PASSWORD}),
                None,
            )
            .await;
        if matches!(
            response.status(),
            StatusCode::CREATED | StatusCode::CONFLICT
        ) {
            return app.login_user().await;
        }
        assert!(
            Instant::now() < deadline,
            "the store never answered: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs in as the development sample user, which a server started as `server serve`
/// starts it creates as soon as its store answers.
pub async fn login_sample_when_ready(app: &TestApp) -> Tokens {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = app.login(SAMPLE_USERNAME, SAMPLE_PASSWORD).await;
        if response.status() == StatusCode::OK {
            return tokens(response).await;
        }
        assert!(
            Instant::now() < deadline,
            "sample user never became available: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
