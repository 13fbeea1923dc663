//! `APP_ENV=production` and the development sample user: production never creates it,
//! and refuses to start on a store that holds it (one Redis shared with a development
//! run), naming the account and the keys to delete. A real user who happens to be
//! called `username` is not the sample user. A store that cannot answer does not let
//! the check be skipped.

use reqwest::StatusCode;
use serde_json::json;
use server::sample_user::{SAMPLE_PASSWORD, SAMPLE_USERNAME as SAMPLE_USER};
use server::{Application, Config};

use crate::cluster::cli;
use crate::helpers::*;
use crate::redis::{login_sample_when_ready, start_redis};

/// Made by `openssl rand -base64 32` and `-hex 32`, as production wants them. Test values
/// only.
const ACCESS_SECRET: &str = "R+Ye5Llw9NNEFHFA9KFTv7Ar7dv6OQK2RFu4ZcWidbk=";
const REFRESH_SECRET: &str = "adb46d9a9be04301d2be7e0662961155a3a7779a8fba4983b75b40363d93d074";

/// `vars` for a production server, with strong secrets.
fn production<'a>(vars: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![
        ("APP_ENV", "production"),
        ("ACCESS_SECRET", ACCESS_SECRET),
        ("REFRESH_SECRET", REFRESH_SECRET),
    ];
    all.extend_from_slice(vars);
    all
}

/// The application `server serve` builds (`server::launch`) with `vars`, for servers that
/// must refuse to start; the error as `main` prints it.
async fn build(vars: &[(&str, &str)]) -> Result<Application, String> {
    let mut env: std::collections::HashMap<&str, &str> = vars.iter().copied().collect();
    env.insert("BIND_ADDR", "127.0.0.1:0");
    let config = Config::from_lookup(|key| env.get(key).map(|v| (*v).to_owned()))
        .map_err(|e| e.to_string())?;
    server::launch(config).await.map_err(|e| format!("{e:#}"))
}

#[tokio::test]
async fn a_production_server_never_creates_the_sample_user() {
    let app = spawn_serving_app_with(&production(&[])).await;
    assert_unauthorized(app.login(SAMPLE_USER, SAMPLE_PASSWORD).await, None).await;
}

#[tokio::test]
async fn a_production_server_refuses_a_store_holding_the_sample_user() {
    let redis = start_redis().await;
    // A development run on this Redis creates the sample user ...
    let development = spawn_serving_app_with(&lenient_throttle(&[("REDIS_URL", &redis.url)])).await;
    login_sample_when_ready(&development).await;
    drop(development);

    // ... and a production server on the same Redis will not start, saying why and how.
    let message = build(&production(&[("REDIS_URL", &redis.url)]))
        .await
        .expect_err("production must refuse the sample user");
    assert!(
        message.contains("development sample account 'username'")
            && message.contains("accepts the published password"),
        "{message}"
    );
    assert!(message.contains("'username:username'"), "{message}");
    let pattern = message
        .split("every key matching '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no key pattern in: {message}"));
    assert!(
        pattern.starts_with("{u:") && pattern.ends_with("}:*"),
        "{pattern}"
    );

    // Doing what it says is enough: delete those keys, and production starts, without
    // the sample user.
    let keys = cli(redis.container.id(), &["--scan", "--pattern", pattern]).await;
    assert!(keys.lines().any(|k| k.ends_with(":user")), "{keys}");
    for key in keys.lines().filter(|k| !k.is_empty()) {
        cli(redis.container.id(), &["DEL", key]).await;
    }
    cli(redis.container.id(), &["DEL", "username:username"]).await;
    let app = spawn_serving_app_with(&production(&[("REDIS_URL", &redis.url)])).await;
    assert_unauthorized(app.login(SAMPLE_USER, SAMPLE_PASSWORD).await, None).await;
}

#[tokio::test]
async fn a_real_user_called_username_does_not_stop_production() {
    let redis = start_redis().await;
    let vars = production(&[("REDIS_URL", &redis.url)]);
    let first = spawn_serving_app_with(&vars).await;
    let own = "a passphrase of their own";
    let response = first
        .post_json(
            "/users",
            &json!({"username": SAMPLE_USER, "password": own}),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // The account is called `username` but does not accept `password`: not the sample.
    let second = build(&vars).await.expect("starts");
    drop(second);
    assert_unauthorized(first.login(SAMPLE_USER, SAMPLE_PASSWORD).await, None).await;
    first.login_ok(SAMPLE_USER, own).await;
}

#[tokio::test]
async fn a_production_server_does_not_start_unchecked_while_its_store_is_down() {
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let message = build(&production(&[("REDIS_URL", &url)]))
        .await
        .expect_err("must not skip the check");
    assert!(
        message.contains("cannot check whether the store holds the development sample user"),
        "{message}"
    );
    // Development still starts and waits for its store, as before.
    build(&lenient_throttle(&[("REDIS_URL", &url)]))
        .await
        .expect("development starts without its store");
}
