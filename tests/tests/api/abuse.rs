//! What one account, one stalled Redis or one flood can do to everyone else: the findings
//! of issue #13, each replayed as the attack it was, on the store(s) it concerns.
//!
//! - A stalled Redis (`docker pause`): replies are lost, commands still run. A login that
//!   got 503 never counts as a failed password; a refresh retried after a 503 gets the
//!   successor its lost answer held, never a theft verdict.
//! - A full Redis (`maxmemory` + `noeviction`): 503 with `Retry-After`, never 500, and
//!   readiness off until it has room again.
//! - Quotas and pages: one account cannot grow its data, or the answers about it, without
//!   bound.
//! - A spent refresh token presented to log out is reuse, and ends no other session.
//! - Registration floods cannot starve logins of the password hasher.
//! - Idempotency keys: a retried creation or registration happens once.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::redis::{free_port, redis_cli, start_redis, start_redis_with};

const PASSWORD: &str = "a fine long passphrase";

/// Waits until the server's store answers (`/readyz` 200).
async fn ready(app: &TestApp) {
    eventually(Duration::from_secs(20), "the server is ready", || async {
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
}

/// Registers `name` and logs in, on a server whose store may have just started.
async fn user_on(app: &TestApp, name: &str) -> Tokens {
    ready(app).await;
    app.new_user(name).await
}

async fn post_with_key(
    app: &TestApp,
    path: &str,
    body: &Value,
    bearer: Option<&str>,
    key: &str,
) -> Response {
    let mut request = app
        .client
        .post(app.url(path))
        .header("Idempotency-Key", key)
        .json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request sent")
}

async fn metrics(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text")
}

// --- 1. A write whose reply timed out still runs -----------------------------------------

#[tokio::test]
async fn a_stalled_redis_neither_locks_a_user_out_nor_turns_a_retried_refresh_into_theft() {
    let redis = start_redis().await;
    // Default login limits: five failures of one name from one address lock it out.
    let app = spawn_app_with(&[("REDIS_URL", &redis.url)]).await;
    let first = user_on(&app, "stalled_victim").await;
    // One refresh first, so Redis knows the rotation script: one it does not know would be
    // refused (NOSCRIPT) after the stall, and never run, which is no lost reply at all.
    let victim = tokens(app.refresh(&first.refresh).await).await;

    // Redis stalls: every call times out, but its command stays queued and runs later.
    redis.container.pause().await.expect("pause redis");
    let logins = join_all((0..5).map(|_| app.login("stalled_victim", PASSWORD))).await;
    for login in logins {
        assert_problem(login, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    let refresh = app.refresh(&victim.refresh).await;
    assert_problem(refresh, StatusCode::SERVICE_UNAVAILABLE).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.container.unpause().await.expect("unpause redis");
    ready(&app).await;

    // The five 503s counted nothing: the right password logs in at once.
    let login = app.login("stalled_victim", PASSWORD).await;
    assert_eq!(
        login.status(),
        StatusCode::OK,
        "a 503 was counted as a failed password"
    );

    // The refresh that got 503 ran after all; retried, as the 503 invites, it gets the
    // successor its lost answer held, and the session lives on.
    let retried = app.refresh(&victim.refresh).await;
    assert_eq!(
        retried.status(),
        StatusCode::CREATED,
        "the retried refresh was taken for theft"
    );
    let successor = tokens(retried).await;
    assert_eq!(app.me(&successor.access).await.status(), StatusCode::OK);
    let next = app.refresh(&successor.refresh).await;
    assert_eq!(
        next.status(),
        StatusCode::CREATED,
        "the successor is current"
    );
    let next = tokens(next).await;

    // Once only: the lost answer was given; the same spent token again is theft.
    assert_unauthorized(app.refresh(&victim.refresh).await, Some("invalid_token")).await;
    assert_unauthorized(app.me(&next.access).await, Some("invalid_token")).await;
}

#[tokio::test]
async fn a_todo_retried_after_a_stalled_write_with_its_key_exists_once() {
    let redis = start_redis().await;
    // A roomy timeout, so that on a busy machine only the stalled write times out.
    let app = spawn_app_with(&[
        ("REDIS_URL", &redis.url),
        ("REDIS_COMMAND_TIMEOUT", "1500ms"),
    ])
    .await;
    let user = user_on(&app, "stalled_writer").await;
    // One creation first, so Redis knows the insert script: a script it does not know
    // would be refused (NOSCRIPT) after the stall, and only loaded on a retry the timed
    // out call no longer makes.
    assert_eq!(
        app.create_todo(&user.access, "warm-up").await.status(),
        StatusCode::CREATED
    );

    // Writes stall (reads go on): the session check passes, the insert waits in Redis
    // past the command timeout, the client gets 503, and the insert runs afterwards.
    let paused = redis_cli(&redis, &["CLIENT", "PAUSE", "4000", "WRITE"]).await;
    assert!(paused.contains("OK"), "{paused}");
    let lost = post_with_key(
        &app,
        "/todo",
        &json!({"title": "exactly once"}),
        Some(&user.access),
        "retry-me-1",
    )
    .await;
    assert_problem(lost, StatusCode::SERVICE_UNAVAILABLE).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    ready(&app).await;

    let retried = post_with_key(
        &app,
        "/todo",
        &json!({"title": "exactly once"}),
        Some(&user.access),
        "retry-me-1",
    )
    .await;
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert_eq!(
        retried
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true"),
        "the lost creation ran; the retry gets its answer"
    );
    let titles: Vec<Value> = app.items("/todo", &user.access).await;
    assert_eq!(titles.len(), 2, "{titles:?}");
}

// --- 5. A full Redis answers 500, and readiness stays green --------------------------------

#[tokio::test]
async fn a_full_redis_is_503_with_retry_after_and_not_ready_until_it_has_room() {
    let redis = start_redis_with(free_port(), &["--maxmemory-policy", "noeviction"]).await;
    let app = spawn_app_with(&[("REDIS_URL", &redis.url)]).await;
    let user = user_on(&app, "full_store").await;

    // Fill Redis, then cap it below what it holds: every write is refused with OOM.
    redis_cli(
        &redis,
        &[
            "EVAL",
            "for i = 1, 2000 do redis.call('SET', 'ballast:' .. i, string.rep('x', 4096)) end",
            "0",
        ],
    )
    .await;
    let capped = redis_cli(&redis, &["CONFIG", "SET", "maxmemory", "1mb"]).await;
    assert!(capped.contains("OK"), "{capped}");

    let refused = [
        app.create_todo(&user.access, "no room").await,
        app.refresh(&user.refresh).await,
        app.login("full_store", PASSWORD).await,
        app.post_json(
            "/users",
            &json!({"username": "no_room_for_me", "password": PASSWORD}),
            None,
        )
        .await,
    ];
    for response in refused {
        assert_eq!(
            response.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"1"[..]),
            "{} {:?}",
            response.url(),
            response.status()
        );
        assert_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    let readiness = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_problem(readiness, StatusCode::SERVICE_UNAVAILABLE).await;
    let text = metrics(&app).await;
    assert!(
        text.contains(r#"jwt_todo_store_unavailable_total{reason="oom"}"#),
        "{text}"
    );

    // Room again: ready, and every write works; the refused ones changed nothing.
    redis_cli(&redis, &["CONFIG", "SET", "maxmemory", "0"]).await;
    ready(&app).await;
    assert_eq!(
        app.create_todo(&user.access, "room again").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.items("/todo", &user.access).await.len(), 1);
    assert_eq!(
        app.refresh(&user.refresh).await.status(),
        StatusCode::CREATED,
        "the refused refresh spent nothing"
    );
    assert_eq!(
        app.login("full_store", PASSWORD).await.status(),
        StatusCode::OK
    );
}

// --- 7. A spent refresh token ends other sessions -----------------------------------------

async fn a_spent_refresh_token_is_reuse_when_revoking(app: &TestApp) {
    let laptop = app.new_user("revoker").await;
    let phone = app.login_ok("revoker", PASSWORD).await;
    let rotated = tokens(app.refresh(&laptop.refresh).await).await;

    // The thief holds the laptop's old refresh token and asks to end the other sessions.
    let response = app
        .post_json(
            "/token/revoke",
            &json!({"refresh_token": laptop.refresh, "scope": "others"}),
            None,
        )
        .await;
    assert_unauthorized(response, Some("invalid_token")).await;
    assert_eq!(
        app.me(&phone.access).await.status(),
        StatusCode::OK,
        "no other session ended"
    );
    // The session the spent token belonged to is revoked, as a replay at refresh would.
    assert_unauthorized(app.me(&rotated.access).await, Some("invalid_token")).await;
    assert_unauthorized(app.refresh(&rotated.refresh).await, Some("invalid_token")).await;
    let text = metrics(app).await;
    assert!(
        text.contains(r#"jwt_todo_sessions_revoked_total{reason="reuse"} 1"#),
        "{text}"
    );

    // The current token still speaks for its session.
    let ended: Value = app
        .post_json(
            "/token/revoke",
            &json!({"refresh_token": phone.refresh, "scope": "local"}),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ended["sessions_ended"], 1);
}

#[tokio::test]
async fn a_spent_refresh_token_ends_no_other_session_in_the_embedded_store() {
    a_spent_refresh_token_is_reuse_when_revoking(&spawn_app().await).await;
}

#[tokio::test]
async fn a_spent_refresh_token_ends_no_other_session_over_redis() {
    let redis = start_redis().await;
    let app = spawn_app_with(&[("REDIS_URL", &redis.url)]).await;
    ready(&app).await;
    a_spent_refresh_token_is_reuse_when_revoking(&app).await;
}

// --- 2. No quotas, no pagination -----------------------------------------------------------

const QUOTA_VARS: [(&str, &str); 3] = [
    ("MAX_TODOS_PER_USER", "5"),
    ("TODO_CREATE_LIMIT", "7"),
    ("MAX_SESSIONS_PER_USER", "3"),
];

async fn quotas_and_pages(app: &TestApp) {
    let user = app.new_user("quota_holder").await;
    let other = app.new_user("quota_bystander").await;

    // At most five todos: the sixth is 409, and a deletion makes room.
    let mut ids = Vec::new();
    for i in 0..5 {
        let todo: Value = app
            .create_todo(&user.access, &format!("todo {i}"))
            .await
            .json()
            .await
            .expect("json");
        ids.push(todo["id"].as_str().expect("id").to_owned());
    }
    let full = assert_problem(
        app.create_todo(&user.access, "one too many").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(full["type"], "urn:jwt-todo:problem:todo-quota-exceeded");
    let deleted = app
        .client
        .delete(app.url(&format!("/todo/{}", ids[0])))
        .bearer_auth(&user.access)
        .send()
        .await
        .expect("sent");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.create_todo(&user.access, "room again").await.status(),
        StatusCode::CREATED
    );

    // Seven creations a minute: the eighth is 429 with Retry-After, for this user only.
    assert_eq!(
        app.create_todo(&user.access, "over quota").await.status(),
        StatusCode::CONFLICT,
        "six creations so far, and the quota is full again"
    );
    let mut deletions = Vec::new();
    for id in &ids[1..3] {
        deletions.push(
            app.client
                .delete(app.url(&format!("/todo/{id}")))
                .bearer_auth(&user.access)
                .send(),
        );
    }
    for deleted in join_all(deletions).await {
        assert_eq!(deleted.expect("sent").status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(
        app.create_todo(&user.access, "seventh").await.status(),
        StatusCode::CREATED
    );
    let limited = app.create_todo(&user.access, "eighth").await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let problem = assert_problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(problem["type"], "urn:jwt-todo:problem:too-many-todos");
    assert_eq!(
        app.create_todo(&other.access, "unaffected").await.status(),
        StatusCode::CREATED
    );

    // Pages: limit and cursor; the pages together are the whole list, in order.
    let all = app.items("/todo", &user.access).await;
    assert_eq!(all.len(), 4);
    let mut paged = Vec::new();
    let mut path = "/todo?limit=3".to_owned();
    loop {
        let page: Value = app
            .get(&path, &user.access)
            .await
            .json()
            .await
            .expect("json");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 3, "{page}");
        paged.extend(items.iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("/todo?limit=3&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(paged, all);
    for bad in [
        "/todo?limit=0",
        "/todo?limit=1001",
        "/todo?cursor=bm9wZQ",
        "/todo?cursor=%%%",
    ] {
        assert_problem(app.get(bad, &user.access).await, StatusCode::BAD_REQUEST).await;
    }

    // At most three sessions: a fourth login ends the oldest, whose tokens die at once.
    // (Sessions are ordered by expiry in whole seconds: the first one must be a second
    // older than the others to be the one that goes.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = app.login_ok("quota_holder", PASSWORD).await;
    let third = app.login_ok("quota_holder", PASSWORD).await;
    let sessions: Value = app
        .get("/sessions?limit=2", &third.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(sessions["items"].as_array().map(Vec::len), Some(2));
    assert!(sessions["next"].is_string(), "{sessions}");
    let fourth = app.login_ok("quota_holder", PASSWORD).await;
    assert_unauthorized(app.me(&user.access).await, Some("invalid_token")).await;
    assert_unauthorized(app.refresh(&user.refresh).await, Some("invalid_token")).await;
    for live in [&second, &third, &fourth] {
        assert_eq!(app.me(&live.access).await.status(), StatusCode::OK);
    }
    assert_eq!(app.items("/sessions", &fourth.access).await.len(), 3);
    assert_eq!(
        app.me(&other.access).await.status(),
        StatusCode::OK,
        "other users' sessions are not touched"
    );
    let text = metrics(app).await;
    assert!(
        text.contains(r#"jwt_todo_sessions_revoked_total{reason="evicted"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn quotas_and_pages_hold_in_the_embedded_store() {
    quotas_and_pages(&spawn_app_with(&QUOTA_VARS).await).await;
}

#[tokio::test]
async fn quotas_and_pages_hold_over_redis() {
    let redis = start_redis().await;
    let mut vars = QUOTA_VARS.to_vec();
    vars.push(("REDIS_URL", &redis.url));
    let app = spawn_app_with(&vars).await;
    ready(&app).await;
    quotas_and_pages(&app).await;
}

/// The resident set of this test process, in KiB (the server runs in it).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One account floods creations and full-page listings; another user's `GET /me` keeps
/// answering, every listing stays one bounded page, and memory stays bounded.
async fn one_account_cannot_degrade_another(app: &TestApp) {
    let flooder = app.new_user("flooder").await;
    let bystander = app.new_user("bystander").await;
    let rss_before = rss_kib();
    let until = Instant::now() + Duration::from_secs(4);

    let create = |n: usize| {
        let access = flooder.access.clone();
        async move {
            let mut statuses = Vec::new();
            let mut i = 0;
            while Instant::now() < until {
                let response = app.create_todo(&access, &format!("flood {n}-{i}")).await;
                statuses.push(response.status());
                i += 1;
            }
            statuses
        }
    };
    let list = || {
        let access = flooder.access.clone();
        async move {
            let mut largest = 0usize;
            while Instant::now() < until {
                let response = app.get("/todo?limit=1000", &access).await;
                assert_eq!(response.status(), StatusCode::OK);
                let body = response.bytes().await.expect("body");
                largest = largest.max(body.len());
                let page: Value = serde_json::from_slice(&body).expect("json");
                assert!(page["items"].as_array().is_some_and(|i| i.len() <= 1000));
            }
            largest
        }
    };
    let watch = || {
        let access = bystander.access.clone();
        async move {
            let mut slowest = Duration::ZERO;
            let mut answered = 0;
            while Instant::now() < until {
                let started = Instant::now();
                let response = app.me(&access).await;
                slowest = slowest.max(started.elapsed());
                assert_eq!(
                    response.status(),
                    StatusCode::OK,
                    "the bystander was refused"
                );
                answered += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (slowest, answered)
        }
    };
    let (creations, listings, (slowest, answered)) = tokio::join!(
        join_all((0..8).map(create)),
        join_all((0..4).map(|_| list())),
        watch()
    );

    let statuses: Vec<StatusCode> = creations.into_iter().flatten().collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert!(created <= 2_000, "the quota held: {created}");
    assert!(
        statuses.iter().all(|s| matches!(
            *s,
            StatusCode::CREATED | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS
        )),
        "{statuses:?}"
    );
    let largest = listings.into_iter().max().unwrap_or(0);
    // A page of 1,000 todos of short titles: well under half a MiB.
    assert!(largest < 512 * 1024, "a listing answered {largest} bytes");
    assert!(answered > 10, "the bystander got {answered} answers");
    // Not a performance target: proof that the bystander was never starved.
    assert!(
        slowest < Duration::from_secs(2),
        "the bystander waited {slowest:?}"
    );
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 128 * 1024, "the process grew by {grown} KiB");
}

const FLOOD_VARS: [(&str, &str); 2] = [
    ("MAX_TODOS_PER_USER", "2000"),
    ("TODO_CREATE_LIMIT", "1000000"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_cannot_degrade_another_in_the_embedded_store() {
    one_account_cannot_degrade_another(&spawn_app_with(&FLOOD_VARS).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_cannot_degrade_another_over_redis() {
    let redis = start_redis().await;
    let mut vars = FLOOD_VARS.to_vec();
    vars.push(("REDIS_URL", &redis.url));
    let app = spawn_app_with(&vars).await;
    ready(&app).await;
    one_account_cannot_degrade_another(&app).await;
}

// --- 4. Registration starves login ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_flood_does_not_starve_logins() {
    // Logins of one user from one address are many here: the login throttle is not
    // what this test is about.
    let app = spawn_app_with(&lenient_throttle(&[("REGISTER_CLIENT_LIMIT", "1000000")])).await;
    app.new_user("taken_name").await;
    app.new_user("regular").await;

    // A hundred clients post a taken name, and fifty more fresh names that must be hashed,
    // while twenty-two people log in.
    let app = &app;
    let register = |name: String| async move {
        app.post_json(
            "/users",
            &json!({"username": name, "password": PASSWORD}),
            None,
        )
        .await
    };
    let taken = join_all((0..100).map(|_| register("taken_name".to_owned())));
    let fresh = join_all((0..50).map(|i| register(format!("fresh_{i}"))));
    let logins = join_all((0..22).map(|_| app.login("regular", PASSWORD)));
    let (taken, fresh, logins) = tokio::join!(taken, fresh, logins);

    let login_statuses: Vec<StatusCode> = logins.iter().map(Response::status).collect();
    assert!(
        login_statuses.iter().all(|s| *s == StatusCode::OK),
        "logins were starved: {login_statuses:?}"
    );
    assert!(
        taken.iter().all(|r| r.status() == StatusCode::CONFLICT),
        "a taken name is 409 at once, without hashing"
    );
    assert!(
        fresh.iter().all(|r| matches!(
            r.status(),
            StatusCode::CREATED | StatusCode::SERVICE_UNAVAILABLE
        )),
        "registrations over their share of the hasher are told to retry"
    );
}

#[tokio::test]
async fn registrations_are_throttled_per_client_before_any_work() {
    let app = spawn_app_with(&[
        ("REGISTER_CLIENT_LIMIT", "3"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let register = |name: String, from: &'static str| {
        app.client
            .post(app.url("/users"))
            .header("X-Forwarded-For", from)
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
    };
    for i in 0..3 {
        let response = register(format!("limited_{i}"), "203.0.113.9")
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    // Over the limit: 429 whatever the name (a taken one too: no enumeration at speed).
    for name in ["limited_3", "limited_0"] {
        let response = register(name.to_owned(), "203.0.113.9")
            .await
            .expect("sent");
        assert!(response.headers().contains_key("retry-after"));
        let problem = assert_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(
            problem["type"],
            "urn:jwt-todo:problem:too-many-registrations"
        );
    }
    // Another client is not affected; nothing was created by the refused attempts.
    let other = register("limited_3".to_owned(), "198.51.100.20")
        .await
        .expect("sent");
    assert_eq!(other.status(), StatusCode::CREATED);
}

// --- Idempotency keys ------------------------------------------------------------------------

async fn idempotency_keys(app: &TestApp) {
    let user = app.new_user("keyholder").await;
    let first = post_with_key(
        app,
        "/todo",
        &json!({"title": "once"}),
        Some(&user.access),
        "k-1",
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");

    let again = post_with_key(
        app,
        "/todo",
        &json!({"title": "once"}),
        Some(&user.access),
        "k-1",
    )
    .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.expect("json");
    assert_eq!(again, first, "the first answer again");

    let different = post_with_key(
        app,
        "/todo",
        &json!({"title": "something else"}),
        Some(&user.access),
        "k-1",
    )
    .await;
    let problem = assert_problem(different, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        problem["type"],
        "urn:jwt-todo:problem:idempotency-key-reused"
    );
    assert_eq!(app.items("/todo", &user.access).await.len(), 1);

    // Keys belong to their user: another user's same key is a new request.
    let other = app.new_user("other_keyholder").await;
    let theirs = post_with_key(
        app,
        "/todo",
        &json!({"title": "once"}),
        Some(&other.access),
        "k-1",
    )
    .await;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    assert!(theirs.headers().get("idempotent-replayed").is_none());

    // A malformed key is refused before anything happens.
    let bad = post_with_key(
        app,
        "/todo",
        &json!({"title": "x"}),
        Some(&user.access),
        "a b",
    )
    .await;
    assert_problem(bad, StatusCode::BAD_REQUEST).await;

    // Registration: the same key and body answer the first 201 again; another body 422.
    let body = json!({"username": "keyed_signup", "password": PASSWORD, "phone": "+4915112345678"});
    let created = post_with_key(app, "/users", &body, None, "signup-1").await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.expect("json");
    let replayed = post_with_key(app, "/users", &body, None, "signup-1").await;
    assert_eq!(replayed.status(), StatusCode::CREATED);
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(replayed.json::<Value>().await.expect("json"), created);
    let other_password = json!({"username": "keyed_signup", "password": "another fine passphrase", "phone": "+4915112345678"});
    assert_problem(
        post_with_key(app, "/users", &other_password, None, "signup-1").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let other_name = json!({"username": "keyed_other", "password": PASSWORD});
    assert_problem(
        post_with_key(app, "/users", &other_name, None, "signup-1").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // Without a key, the same registration again is what it always was: 409.
    assert_problem(
        app.post_json("/users", &body, None).await,
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn idempotency_keys_make_retries_safe_in_the_embedded_store() {
    idempotency_keys(&spawn_app().await).await;
}

#[tokio::test]
async fn idempotency_keys_make_retries_safe_over_redis() {
    let redis = start_redis().await;
    let app = spawn_app_with(&[("REDIS_URL", &redis.url)]).await;
    ready(&app).await;
    idempotency_keys(&app).await;
}
