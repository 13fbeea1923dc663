//! The client against a local fake of the Messages API: request shape, success, server
//! errors, rate limits, permanent errors, timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use domain::PhoneNumber;
use poem::http::StatusCode as PoemStatus;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Request, Response, Route, handler, post};
use serde_json::{Value, json};

use super::*;

#[derive(Clone, Debug)]
struct Recorded {
    path: String,
    authorization: Option<String>,
    body: Value,
}

#[derive(Clone)]
struct Fake {
    requests: Arc<Mutex<Vec<Recorded>>>,
    reply: Arc<dyn Fn() -> Response + Send + Sync>,
    delay: Duration,
}

#[handler]
async fn messages(req: &Request, Json(body): Json<Value>, fake: Data<&Fake>) -> Response {
    fake.requests.lock().unwrap().push(Recorded {
        path: req.uri().path().to_owned(),
        authorization: req.header("authorization").map(str::to_owned),
        body,
    });
    tokio::time::sleep(fake.delay).await;
    (fake.reply)()
}

async fn start(
    reply: impl Fn() -> Response + Send + Sync + 'static,
    delay: Duration,
) -> (String, Fake) {
    let fake = Fake {
        requests: Arc::default(),
        reply: Arc::new(reply),
        delay,
    };
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    let app = Route::new()
        .at("/v1/messages", post(messages))
        .data(fake.clone());
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    (format!("http://{addr}"), fake)
}

fn notifier(base_url: &str, timeout: Duration) -> VonageNotifier {
    VonageNotifier::new(VonageConfig {
        api_key: "key123".into(),
        api_secret: SecretString::from("s3cret"),
        from: "jwt-todo".into(),
        base_url: base_url.into(),
        timeout,
    })
    .unwrap()
}

fn sms() -> Sms {
    Sms {
        to: PhoneNumber::parse("+4915112345678").unwrap(),
        text: "Dear alice, hi".into(),
        secret: false,
    }
}

fn accepted() -> Response {
    (
        PoemStatus::ACCEPTED,
        Json(json!({"message_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"})),
    )
        .into_response()
}

fn problem(status: PoemStatus, title: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/problem+json")
        .body(json!({"type": "https://developer.vonage.com/api-errors", "title": title, "detail": "details"}).to_string())
}

#[tokio::test]
async fn sends_the_documented_request_and_keeps_the_message_uuid() {
    let (base, fake) = start(accepted, Duration::ZERO).await;
    let receipt = notifier(&base, Duration::from_secs(5))
        .send(&sms())
        .await
        .unwrap();
    assert_eq!(receipt, "aaaaaaaa-bbbb-cccc-dddd-0123456789ab");

    let requests = fake.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/messages");
    // base64("key123:s3cret")
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Basic a2V5MTIzOnMzY3JldA==")
    );
    assert_eq!(
        requests[0].body,
        json!({"message_type": "text", "channel": "sms", "to": "4915112345678", "from": "jwt-todo", "text": "Dear alice, hi"})
    );
}

#[tokio::test]
async fn server_errors_are_retryable() {
    let (base, _) = start(
        || problem(PoemStatus::INTERNAL_SERVER_ERROR, "Internal Error"),
        Duration::ZERO,
    )
    .await;
    match notifier(&base, Duration::from_secs(5)).send(&sms()).await {
        Err(NotifyError::Retryable {
            reason,
            retry_after: None,
        }) => {
            assert!(
                reason.contains("500") && reason.contains("Internal Error"),
                "{reason}"
            );
        }
        other => panic!("expected retryable, got {other:?}"),
    }
}

#[tokio::test]
async fn rate_limits_are_retryable_with_the_providers_delay() {
    let (base, _) = start(
        || {
            let mut response = problem(PoemStatus::TOO_MANY_REQUESTS, "Rate Limit Hit");
            response
                .headers_mut()
                .insert("retry-after", "7".parse().unwrap());
            response
        },
        Duration::ZERO,
    )
    .await;
    match notifier(&base, Duration::from_secs(5)).send(&sms()).await {
        Err(NotifyError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("expected retryable, got {other:?}"),
    }
}

#[tokio::test]
async fn client_errors_are_permanent() {
    for status in [
        PoemStatus::UNAUTHORIZED,
        PoemStatus::UNPROCESSABLE_ENTITY,
        PoemStatus::BAD_REQUEST,
    ] {
        let (base, _) = start(
            move || problem(status, "Invalid Credentials"),
            Duration::ZERO,
        )
        .await;
        match notifier(&base, Duration::from_secs(5)).send(&sms()).await {
            Err(NotifyError::Permanent { reason }) => {
                assert!(
                    reason.contains(status.as_str()) && reason.contains("Invalid Credentials"),
                    "{reason}"
                );
                assert!(!reason.contains("s3cret"));
            }
            other => panic!("{status}: expected permanent, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retryable() {
    let (base, _) = start(accepted, Duration::from_secs(3)).await;
    match notifier(&base, Duration::from_millis(200))
        .send(&sms())
        .await
    {
        Err(NotifyError::Retryable { reason, .. }) => {
            assert!(reason.contains("in time"), "{reason}")
        }
        other => panic!("expected retryable, got {other:?}"),
    }

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    match notifier(&format!("http://{closed}"), Duration::from_secs(2))
        .send(&sms())
        .await
    {
        Err(NotifyError::Retryable { .. }) => {}
        other => panic!("expected retryable, got {other:?}"),
    }
}

#[test]
fn secrets_and_numbers_stay_out_of_debug_and_logs() {
    let printed = format!(
        "{:?}",
        notifier("http://127.0.0.1:9", Duration::from_secs(1))
    );
    assert!(!printed.contains("s3cret"), "{printed}");
    assert_eq!(mask("+4915112345678"), "+49*******5678");
}

/// Collects what a subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `LogNotifier` logs for `sms`.
fn logged(sms: &Sms) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let receipt = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(LogNotifier.send(sms)).unwrap()
    });
    assert_eq!(receipt, "logged");
    String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn the_log_notifier_logs_an_ordinary_text_but_never_a_code() {
    let plain = logged(&sms());
    assert!(plain.contains("Dear alice, hi"), "{plain}");
    assert!(plain.contains("+49*******5678"), "{plain}");
    assert!(!plain.contains("4915112345678"), "{plain}");

    let code = domain::PhoneCode::parse("424242").unwrap();
    let secret = Sms::phone_code(
        &code,
        PhoneNumber::parse("+4915112345678").unwrap(),
        Duration::from_secs(600),
    );
    let text = logged(&secret);
    assert!(text.contains("SMS not sent"), "{text}");
    assert!(!text.contains("424242"), "{text}");
}

#[test]
fn credentials_come_in_pairs_with_a_sender_and_an_http_base_url() {
    let secret = || Some(SecretString::from("s3cret"));
    let some = |s: &str| Some(s.to_owned());
    assert!(
        VonageConfig::from_parts(None, None, None, None)
            .unwrap()
            .is_none(),
        "no credentials: SMS are only logged"
    );
    let cases = [
        (
            some("k"),
            None,
            None,
            None,
            VonageConfigError::MissingSecret,
        ),
        (None, secret(), None, None, VonageConfigError::MissingKey),
        (
            some("k"),
            secret(),
            None,
            None,
            VonageConfigError::MissingFrom,
        ),
        (
            some("k"),
            secret(),
            some("x"),
            some("ftp://x"),
            VonageConfigError::BadBaseUrl,
        ),
        (
            some("k"),
            secret(),
            some("x"),
            some("not a url"),
            VonageConfigError::BadBaseUrl,
        ),
    ];
    for (key, secret, from, base, expected) in cases {
        assert_eq!(
            VonageConfig::from_parts(key, secret, from, base).unwrap_err(),
            expected
        );
    }
    let config = VonageConfig::from_parts(some(" k "), secret(), some("jwt-todo"), None)
        .unwrap()
        .unwrap();
    assert_eq!(config.api_key, "k");
    assert_eq!(config.base_url, DEFAULT_BASE_URL);
    assert_eq!(config.timeout, DEFAULT_TIMEOUT);
    // The notifier holds a hand-built configuration to the same rule.
    let mut bad = config;
    bad.base_url = "ftp://x".into();
    assert!(VonageNotifier::new(bad).is_err());
}
