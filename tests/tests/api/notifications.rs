//! SMS on todo creation, against a local fake of the Vonage Messages API that records
//! every request. Never the real Vonage.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::StatusCode as PoemStatus;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Request, Response, Route, handler, post};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::redis::start_redis;

const KEY: &str = "test-key";
const SECRET: &str = "test-secret";
const FROM: &str = "jwt-todo";
const PHONE: &str = "+4915112345678";

#[derive(Clone, Debug)]
struct Recorded {
    path: String,
    authorization: Option<String>,
    body: Value,
}

/// A fake Messages API: answers with the queued statuses in order, then with `then`.
#[derive(Clone)]
struct FakeVonage {
    requests: Arc<Mutex<Vec<Recorded>>>,
    replies: Arc<Mutex<VecDeque<u16>>>,
    then: u16,
}

#[handler]
async fn messages(req: &Request, Json(body): Json<Value>, fake: Data<&FakeVonage>) -> Response {
    fake.requests.lock().expect("lock").push(Recorded {
        path: req.uri().path().to_owned(),
        authorization: req.header("authorization").map(str::to_owned),
        body,
    });
    let status = fake
        .replies
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(fake.then);
    let status = PoemStatus::from_u16(status).expect("valid status");
    if status == PoemStatus::ACCEPTED {
        let uuid = format!(
            "00000000-0000-4000-8000-{:012}",
            fake.requests.lock().expect("lock").len()
        );
        (status, Json(json!({"message_uuid": uuid}))).into_response()
    } else {
        Response::builder()
            .status(status)
            .content_type("application/problem+json")
            .body(json!({"type": "https://developer.vonage.com/api-errors", "title": "Fake failure", "detail": "as configured"}).to_string())
    }
}

impl FakeVonage {
    async fn start(first: &[u16], then: u16) -> (String, Self) {
        let fake = Self {
            requests: Arc::default(),
            replies: Arc::new(Mutex::new(first.iter().copied().collect())),
            then,
        };
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind");
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .expect("socket addr");
        let app = Route::new()
            .at("/v1/messages", post(messages))
            .data(fake.clone());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        (format!("http://{addr}"), fake)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }

    fn accepted(&self) -> usize {
        // Every request beyond the queued failures was answered with `then`.
        self.requests().len()
    }
}

fn vonage_env(base: &str) -> Vec<(&str, &str)> {
    vec![
        ("VONAGE_API_KEY", KEY),
        ("VONAGE_API_SECRET", SECRET),
        ("VONAGE_FROM", FROM),
        ("VONAGE_BASE_URL", base),
    ]
}

async fn todo_titles(app: &TestApp, access: &str) -> Vec<String> {
    let list: Vec<Value> = app.items("/todo", access).await;
    list.iter()
        .filter_map(|t| t["title"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn creating_a_todo_texts_the_user_with_the_documented_request() {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let app = spawn_app_with(&vonage_env(&base)).await;
    let user = app.new_user_with("victor", Some(PHONE)).await;

    let created = app.create_todo(&user.access, "Buy milk").await;
    assert_eq!(created.status(), StatusCode::CREATED);
    eventually(Duration::from_secs(10), "the SMS", || async {
        fake.requests().len() == 1
    })
    .await;

    let request = &fake.requests()[0];
    assert_eq!(request.path, "/v1/messages");
    // Basic base64("test-key:test-secret")
    assert_eq!(
        request.authorization.as_deref(),
        Some("Basic dGVzdC1rZXk6dGVzdC1zZWNyZXQ=")
    );
    assert_eq!(
        request.body,
        json!({
            "message_type": "text",
            "channel": "sms",
            "to": "4915112345678",
            "from": FROM,
            "text": "Dear victor, a todo was created from your account just now."
        })
    );
    assert_eq!(todo_titles(&app, &user.access).await, ["Buy milk"]);
    eventually(Duration::from_secs(5), "sent counter", || async {
        app.notifications
            .delivery
            .stats()
            .sent
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    })
    .await;
}

#[tokio::test]
async fn a_provider_error_is_retried_until_exactly_one_message_is_delivered() {
    let (base, fake) = FakeVonage::start(&[500], 202).await;
    let app = spawn_app_with(&vonage_env(&base)).await;
    let user = app.new_user_with("victor", Some(PHONE)).await;

    // The todo is acknowledged at once, whatever the SMS does.
    assert_eq!(
        app.create_todo(&user.access, "Buy milk").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(todo_titles(&app, &user.access).await, ["Buy milk"]);

    let stats = &app.notifications.delivery.stats();
    eventually(
        Duration::from_secs(15),
        "delivery after one retry",
        || async { stats.sent.load(std::sync::atomic::Ordering::Relaxed) == 1 },
    )
    .await;
    assert_eq!(stats.retried.load(std::sync::atomic::Ordering::Relaxed), 1);
    // Nothing more is sent once one message got through.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[0].body, requests[1].body,
        "the retry sends the same message"
    );
    assert!(
        app.notifications
            .outbox
            .dead_letters()
            .await
            .expect("dead letters")
            .is_empty()
    );
}

#[tokio::test]
async fn a_permanent_provider_error_is_dead_lettered_and_not_retried() {
    let (base, fake) = FakeVonage::start(&[], 401).await;
    let app = spawn_app_with(&vonage_env(&base)).await;
    let user = app.new_user_with("victor", Some(PHONE)).await;

    assert_eq!(
        app.create_todo(&user.access, "Buy milk").await.status(),
        StatusCode::CREATED
    );
    let outbox = app.notifications.outbox.clone();
    eventually(Duration::from_secs(10), "a dead letter", || {
        let outbox = outbox.clone();
        async move {
            !outbox
                .dead_letters()
                .await
                .expect("dead letters")
                .is_empty()
        }
    })
    .await;
    let dead = outbox.dead_letters().await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert!(dead[0].error.contains("401"), "{}", dead[0].error);
    assert_eq!(dead[0].notification.attempts, 1);
    assert_eq!(dead[0].notification.sms.to.as_str(), PHONE);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.accepted(), 1, "a 401 is never retried");
    assert_eq!(todo_titles(&app, &user.access).await, ["Buy milk"]);
}

#[tokio::test]
async fn a_user_without_a_phone_gets_no_sms_and_no_error() {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let app = spawn_app_with(&vonage_env(&base)).await;
    let user = app.login_sample().await;
    assert_eq!(
        app.create_todo(&user.access, "quiet").await.status(),
        StatusCode::CREATED
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(fake.requests().is_empty());
    assert_eq!(todo_titles(&app, &user.access).await, ["quiet"]);
}

#[tokio::test]
async fn without_vonage_credentials_notifications_are_only_logged() {
    let app = spawn_app().await;
    let user = app.new_user_with("victor", Some(PHONE)).await;
    assert_eq!(
        app.create_todo(&user.access, "dev mode").await.status(),
        StatusCode::CREATED
    );
    let stats = &app.notifications.delivery.stats();
    eventually(Duration::from_secs(10), "the logged SMS", || async {
        stats.sent.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;
}

#[tokio::test]
async fn a_restarted_server_sends_what_was_pending_in_redis() {
    let redis = start_redis().await;
    // First server: Vonage unreachable, so the SMS stays pending in the outbox.
    let unreachable = format!(
        "http://{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
    );
    // Both servers share their secrets, as replicas do, so tokens survive the restart.
    let secrets = [
        ("ACCESS_SECRET", "access-secret-shared-by-both-servers-0123"),
        (
            "REFRESH_SECRET",
            "refresh-secret-shared-by-both-servers-012",
        ),
    ];
    let mut first_env = vonage_env(&unreachable);
    first_env.push(("REDIS_URL", &redis.url));
    first_env.extend(secrets);
    let first = spawn_app_with(&first_env).await;
    let user = first.new_user_with("victor", Some(PHONE)).await;
    assert_eq!(
        first.create_todo(&user.access, "Buy milk").await.status(),
        StatusCode::CREATED
    );
    let stats = first.notifications.delivery.stats();
    eventually(
        Duration::from_secs(10),
        "a failed first attempt",
        || async { stats.retried.load(std::sync::atomic::Ordering::Relaxed) >= 1 },
    )
    .await;
    drop(first);

    // Second server on the same Redis, Vonage reachable: the pending SMS goes out once.
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut second_env = vonage_env(&base);
    second_env.push(("REDIS_URL", &redis.url));
    second_env.extend(secrets);
    let second = spawn_app_with(&second_env).await;
    eventually(Duration::from_secs(20), "the pending SMS", || async {
        fake.requests().len() == 1
    })
    .await;
    assert_eq!(
        fake.requests()[0].body["text"],
        "Dear victor, a todo was created from your account just now."
    );
    assert_eq!(todo_titles(&second, &user.access).await, ["Buy milk"]);
}
