//! SMS on todo creation, against a local fake of the Vonage Messages API that records
//! every request. Never the real Vonage. The fake and the helpers that verify a user's
//! phone through it are shared with `phone.rs`.

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

/// Marks the user's phone verified through the store's own verification steps (for a
/// server that cannot text a code).
async fn verify_in_store(app: &TestApp, redis_url: &str, user: &Tokens) {
    use application::ports::{CodeCheck, CodeDigest, PendingCode, PhoneVerifications};
    let me: Value = app.me(&user.access).await.json().await.expect("json");
    let id = domain::UserId::from_uuid(me["id"].as_str().expect("id").parse().expect("uuid"));
    let store =
        adapter_redis::RedisStore::new(redis_url, adapter_redis::RedisStoreConfig::default())
            .expect("valid url");
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let now = domain::Timestamp::from_unix_seconds(i64::try_from(secs).expect("fits"));
    let later = now.plus(Duration::from_secs(3600));
    let digest = CodeDigest([1; 32]);
    let pending = PendingCode {
        user_id: id,
        phone: domain::PhoneNumber::parse(PHONE).expect("valid"),
        digest,
        expires_at: later,
        max_attempts: 1,
    };
    assert!(store.start(&pending).await.expect("start"));
    assert_eq!(
        store.confirm(id, &digest, now).await.expect("confirm"),
        CodeCheck::Verified
    );
}

const KEY: &str = "test-key";
const SECRET: &str = "test-secret";
const FROM: &str = "jwt-todo";
pub const PHONE: &str = "+4915112345678";

#[derive(Clone, Debug)]
pub struct Recorded {
    path: String,
    authorization: Option<String>,
    pub body: Value,
}

impl Recorded {
    pub fn to(&self) -> String {
        self.body["to"].as_str().unwrap_or_default().to_owned()
    }

    pub fn text(&self) -> String {
        self.body["text"].as_str().unwrap_or_default().to_owned()
    }

    /// The code, if this is a verification SMS.
    pub fn code(&self) -> Option<String> {
        let text = self.text();
        let code = text
            .strip_prefix("Your jwt-todo verification code is ")?
            .get(..6)?;
        Some(code.to_owned())
    }
}

/// How the fake answers one request: a status, and a `Retry-After` (seconds) with it.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<u64>,
}

impl From<u16> for Reply {
    fn from(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
        }
    }
}

/// A fake Messages API: answers with the queued replies in order, then with `then`, each
/// after `delay`.
#[derive(Clone)]
pub struct FakeVonage {
    requests: Arc<Mutex<Vec<Recorded>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
    then: Arc<Mutex<Reply>>,
    delay: Arc<Mutex<Duration>>,
}

#[handler]
async fn messages(req: &Request, Json(body): Json<Value>, fake: Data<&FakeVonage>) -> Response {
    fake.requests.lock().expect("lock").push(Recorded {
        path: req.uri().path().to_owned(),
        authorization: req.header("authorization").map(str::to_owned),
        body,
    });
    let delay = *fake.delay.lock().expect("lock");
    tokio::time::sleep(delay).await;
    let then = *fake.then.lock().expect("lock");
    let reply = fake
        .replies
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(then);
    let status = PoemStatus::from_u16(reply.status).expect("valid status");
    if status == PoemStatus::ACCEPTED {
        let uuid = format!(
            "00000000-0000-4000-8000-{:012}",
            fake.requests.lock().expect("lock").len()
        );
        (status, Json(json!({"message_uuid": uuid}))).into_response()
    } else {
        let mut response = Response::builder()
            .status(status)
            .content_type("application/problem+json");
        if let Some(seconds) = reply.retry_after {
            response = response.header("retry-after", seconds.to_string());
        }
        response.body(json!({"type": "https://developer.vonage.com/api-errors", "title": "Fake failure", "detail": "as configured"}).to_string())
    }
}

impl FakeVonage {
    pub async fn start(first: &[u16], then: u16) -> (String, Self) {
        let fake = Self {
            requests: Arc::default(),
            replies: Arc::new(Mutex::new(first.iter().map(|s| Reply::from(*s)).collect())),
            then: Arc::new(Mutex::new(Reply::from(then))),
            delay: Arc::default(),
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

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }

    fn accepted(&self) -> usize {
        // Every request beyond the queued failures was answered with `then`.
        self.requests().len()
    }

    /// Answers the next requests with `first`, then with `then`.
    pub fn script(&self, first: &[Reply], then: u16) {
        *self.replies.lock().expect("lock") = first.iter().copied().collect();
        *self.then.lock().expect("lock") = Reply::from(then);
    }

    /// Takes this long over every answer from now on.
    pub fn slow_down(&self, delay: Duration) {
        *self.delay.lock().expect("lock") = delay;
    }

    /// Forgets the requests recorded so far.
    pub fn clear(&self) {
        self.requests.lock().expect("lock").clear();
    }

    /// The codes texted to `phone` (E.164), oldest first.
    pub fn codes_to(&self, phone: &str) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| format!("+{}", r.to()) == phone)
            .filter_map(Recorded::code)
            .collect()
    }

    /// Waits for the `n`th code (1-based) texted to `phone` and returns it.
    pub async fn nth_code_to(&self, phone: &str, n: usize) -> String {
        eventually(Duration::from_secs(10), "a code SMS", || async {
            self.codes_to(phone).len() >= n
        })
        .await;
        self.codes_to(phone)[n - 1].clone()
    }
}

/// `POST /me/phone`.
pub async fn request_code(app: &TestApp, access: &str, phone: &str) -> reqwest::Response {
    app.post_json("/me/phone", &json!({"phone": phone}), Some(access))
        .await
}

/// `POST /me/phone/verify`.
pub async fn confirm_code(app: &TestApp, access: &str, code: &str) -> reqwest::Response {
    app.post_json("/me/phone/verify", &json!({"code": code}), Some(access))
        .await
}

/// Proves `phone` for the caller with a code read from the fake, and forgets the code SMS,
/// so that a test counts its todo SMS only.
pub async fn verify_phone(app: &TestApp, fake: &FakeVonage, access: &str, phone: &str) {
    let sent = fake.codes_to(phone).len();
    let requested = request_code(app, access, phone).await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let code = fake.nth_code_to(phone, sent + 1).await;
    let confirmed = confirm_code(app, access, &code).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let me: Value = confirmed.json().await.expect("json");
    assert_eq!(me["phone"], phone);
    assert_eq!(me["phone_verified"], true);
    fake.clear();
}

/// Registers and logs in `name` with `phone`, and verifies the phone.
pub async fn verified_user(app: &TestApp, fake: &FakeVonage, name: &str, phone: &str) -> Tokens {
    let tokens = app.new_user_with(name, Some(phone)).await;
    verify_phone(app, fake, &tokens.access, phone).await;
    tokens
}

pub fn vonage_env(base: &str) -> Vec<(&str, &str)> {
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
    let user = verified_user(&app, &fake, "victor", PHONE).await;

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
            == 2
    })
    .await;
}

#[tokio::test]
async fn a_provider_error_is_retried_until_exactly_one_message_is_delivered() {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let app = spawn_app_with(&vonage_env(&base)).await;
    let user = verified_user(&app, &fake, "victor", PHONE).await;
    fake.script(&[Reply::from(500)], 202);
    let sent_before = app
        .notifications
        .delivery
        .stats()
        .sent
        .load(std::sync::atomic::Ordering::Relaxed);

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
        || async { stats.sent.load(std::sync::atomic::Ordering::Relaxed) == sent_before + 1 },
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
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let app = spawn_app_with(&vonage_env(&base)).await;
    let user = verified_user(&app, &fake, "victor", PHONE).await;
    fake.script(&[], 401);

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
    let user = app.login_user().await;
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
    // The code SMS is "sent" to the log (its text withheld): nothing else can read it, so
    // a development server without Vonage has no verified numbers and no todo SMS.
    let app = spawn_app().await;
    let user = app.new_user_with("victor", Some(PHONE)).await;
    assert_eq!(
        request_code(&app, &user.access, PHONE).await.status(),
        StatusCode::ACCEPTED
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
    // Verified directly in the store: Vonage is unreachable for this server.
    verify_in_store(&first, &redis.url, &user).await;
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

const OTHER_PHONE: &str = "+4915187654321";

/// Caps out of the way, for tests about delivery rather than limits.
const GENEROUS_CAPS: [(&str, &str); 4] = [
    ("SMS_USER_HOURLY_CAP", "5000"),
    ("SMS_USER_DAILY_CAP", "5000"),
    ("SMS_NUMBER_HOURLY_CAP", "5000"),
    ("SMS_NUMBER_DAILY_CAP", "5000"),
];

/// One user floods the outbox with `FLOOD` SMS; another user's one SMS, queued after the
/// whole flood, is delivered after at most `BOUND` of the flood's, not behind all of it.
/// Counted in the order the fake receives them, not timed.
async fn one_users_flood_does_not_hold_back_another_users_sms(store: &[(&str, &str)]) {
    const FLOOD: usize = 400;
    // Two workers each hold one message, the round in progress may hold one more of the
    // flood, and the claims that move the backlog into rounds (100 at a time) each hand
    // out one: well under 20. A first-come-first-served queue would send hundreds first.
    const BOUND: usize = 20;
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.extend(GENEROUS_CAPS);
    env.push(("NOTIFY_CONCURRENCY", "2"));
    env.extend(store);
    // Todos are created by the hundred here; the creation rate is tested in abuse.rs.
    env.push(("TODO_CREATE_LIMIT", "1000000"));
    let app = spawn_app_with(&lenient_throttle(&env)).await;
    let flooder = verified_user(&app, &fake, "flooder", PHONE).await;
    let patient = verified_user(&app, &fake, "patient", OTHER_PHONE).await;
    // Each SMS takes the provider 15 ms: the flood needs seconds to drain.
    fake.slow_down(Duration::from_millis(15));

    for chunk in (0..FLOOD).collect::<Vec<_>>().chunks(50) {
        let created = futures::future::join_all(chunk.iter().map(|i| {
            let title = format!("flood {i}");
            let access = flooder.access.as_str();
            let app = &app;
            async move { app.create_todo(access, &title).await }
        }))
        .await;
        assert!(created.iter().all(|r| r.status() == StatusCode::CREATED));
    }
    let sent_before = fake.requests().len();
    assert!(
        sent_before < FLOOD - 100,
        "the flood must still be queued for this test to mean anything: {sent_before} sent"
    );
    assert_eq!(
        app.create_todo(&patient.access, "just one").await.status(),
        StatusCode::CREATED
    );

    let other = OTHER_PHONE.trim_start_matches('+').to_owned();
    eventually(
        Duration::from_secs(30),
        "the patient user's SMS",
        || async { fake.requests().iter().any(|r| r.to() == other) },
    )
    .await;
    let requests = fake.requests();
    let position = requests
        .iter()
        .position(|r| r.to() == other)
        .expect("delivered");
    let flood_first = position - sent_before;
    assert!(
        flood_first <= BOUND,
        "{flood_first} of the flood went before the other user's SMS (bound {BOUND})"
    );
    assert!(
        requests.len() < FLOOD,
        "the flood was still being delivered when the other SMS went out"
    );
}

#[tokio::test]
async fn one_users_flood_does_not_hold_back_another_users_sms_in_the_embedded_store() {
    one_users_flood_does_not_hold_back_another_users_sms(&[]).await;
}

#[tokio::test]
async fn one_users_flood_does_not_hold_back_another_users_sms_over_redis() {
    let redis = start_redis().await;
    one_users_flood_does_not_hold_back_another_users_sms(&[("REDIS_URL", &redis.url)]).await;
}

#[tokio::test]
async fn a_huge_retry_after_is_capped_at_the_max_backoff() {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.push(("NOTIFY_MAX_BACKOFF", "2s"));
    let app = spawn_app_with(&env).await;
    let user = verified_user(&app, &fake, "victor", PHONE).await;
    // Rate limited, "come back in a day": honoured only up to the 2 s cap.
    fake.script(
        &[Reply {
            status: 429,
            retry_after: Some(86_400),
        }],
        202,
    );

    assert_eq!(
        app.create_todo(&user.access, "Buy milk").await.status(),
        StatusCode::CREATED
    );
    eventually(Duration::from_secs(15), "the retried SMS", || async {
        fake.requests().len() == 2
    })
    .await;
    let requests = fake.requests();
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(
        app.notifications
            .delivery
            .stats()
            .retried
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn dead_letters_expire_after_their_retention() {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.push(("NOTIFY_DEAD_LETTER_RETENTION", "2s"));
    let app = spawn_app_with(&env).await;
    let user = verified_user(&app, &fake, "victor", PHONE).await;
    fake.script(&[], 400);
    assert_eq!(
        app.create_todo(&user.access, "Buy milk").await.status(),
        StatusCode::CREATED
    );
    let outbox = app.notifications.outbox.clone();
    let letters = || {
        let outbox = outbox.clone();
        async move { outbox.dead_letters().await.expect("dead letters").len() }
    };
    eventually(Duration::from_secs(10), "a dead letter", || async {
        letters().await == 1
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "the dead letter trimmed",
        || async { letters().await == 0 },
    )
    .await;
}

#[tokio::test]
async fn dead_letters_are_bounded_in_number() {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.push(("NOTIFY_DEAD_LETTER_MAX", "2"));
    let app = spawn_app_with(&env).await;
    let user = verified_user(&app, &fake, "victor", PHONE).await;
    fake.script(&[], 400);
    for i in 0..5 {
        assert_eq!(
            app.create_todo(&user.access, &format!("todo {i}"))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let stats = app.notifications.delivery.stats();
    let outbox = app.notifications.outbox.clone();
    eventually(
        Duration::from_secs(15),
        "five dead-lettered, two kept",
        || async {
            stats
                .dead_lettered
                .load(std::sync::atomic::Ordering::Relaxed)
                == 5
                && outbox.dead_letters().await.expect("dead letters").len() == 2
        },
    )
    .await;
}
