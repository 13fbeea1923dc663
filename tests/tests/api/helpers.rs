//! `TestApp`: a running server and a helper per endpoint.

use std::collections::HashMap;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use server::{Application, Config, Notifications};
use tokio::sync::{OnceCell, oneshot};

/// The user most tests sign in as: each server gets it through `POST /users`, like any
/// client's user ([`TestApp::login_user`]). The development sample user is `server
/// serve`'s, and only the tests of it ([`spawn_serving_app_with`]) see it.
pub const USER: &str = "tester";
pub const PASSWORD: &str = "a fine long passphrase";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub notifications: Notifications,
    /// Set once [`USER`] is registered on this server's store.
    user: OnceCell<()>,
    _shutdown: oneshot::Sender<()>,
}

/// A token pair as the API returns it.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub body: Value,
}

/// A development server on the embedded store, built by `Application::build`: no user
/// until a test registers one.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// As [`spawn_app`], with some environment variables set.
pub async fn spawn_app_with(vars: &[(&str, &str)]) -> TestApp {
    spawn(vars, false).await
}

/// As [`spawn_app_with`], but built as `server serve` builds it (`server::launch`): in
/// development with the sample user, in production only on a store without it. For the
/// tests of the sample user.
pub async fn spawn_serving_app_with(vars: &[(&str, &str)]) -> TestApp {
    spawn(vars, true).await
}

async fn spawn(vars: &[(&str, &str)], serving: bool) -> TestApp {
    // The workspace builds reqwest without a default crypto provider (see adapters/vonage):
    // every process that builds an HTTP client installs one first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut env: HashMap<String, String> =
        HashMap::from([("BIND_ADDR".to_owned(), "127.0.0.1:0".to_owned())]);
    env.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let config =
        Config::from_lookup(|key| env.get(key).cloned()).expect("test configuration is valid");
    let app = if serving {
        server::launch(config).await
    } else {
        Application::build(config).await
    }
    .expect("server builds");
    let base = format!("http://{}", app.local_addr());
    let notifications = app.notifications();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        notifications,
        user: OnceCell::new(),
        _shutdown: tx,
    }
}

/// `vars` with login throttling out of the way, for tests that poll `POST /login` until
/// a user exists: each 401 before that is a failure the throttle would count.
/// Throttling itself is tested in `throttle.rs`.
pub fn lenient_throttle<'a>(vars: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vars.to_vec();
    all.extend([
        ("LOGIN_PAIR_LIMIT", "1000000"),
        ("LOGIN_CLIENT_LIMIT", "1000000"),
    ]);
    all
}

/// Polls `check` until it holds, for at most `within`.
pub async fn eventually<F, Fut>(within: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value, bearer: Option<&str>) -> Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .expect("request sent")
    }

    /// The `items` of the first page of a listing (`/todo`, `/sessions`).
    pub async fn items(&self, path: &str, bearer: &str) -> Vec<Value> {
        let response = self.get(path, bearer).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let page: Value = response.json().await.expect("json");
        page["items"].as_array().expect("a page of items").clone()
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/login",
            &json!({"username": username, "password": password}),
            None,
        )
        .await
    }

    pub async fn login_ok(&self, username: &str, password: &str) -> Tokens {
        let response = self.login(username, password).await;
        assert_eq!(response.status(), StatusCode::OK);
        tokens(response).await
    }

    /// Registers [`USER`] unless this server has already; a 409 means another server on
    /// the same store did, which is as good.
    pub async fn register_user(&self) {
        self.user
            .get_or_init(|| async {
                let response = self
                    .post_json(
                        "/users",
                        &json!({"username": USER, "password": PASSWORD}),
                        None,
                    )
                    .await;
                assert!(
                    matches!(
                        response.status(),
                        StatusCode::CREATED | StatusCode::CONFLICT
                    ),
                    "registering {USER}: {}",
                    response.status()
                );
            })
            .await;
    }

    /// Logs in as [`USER`] (registered first if need be): a new session each call.
    pub async fn login_user(&self) -> Tokens {
        self.register_user().await;
        self.login_ok(USER, PASSWORD).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/token/refresh",
            &json!({"refresh_token": refresh_token}),
            None,
        )
        .await
    }

    pub async fn logout(&self, access_token: &str) -> Response {
        self.client
            .post(self.url("/logout"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn create_todo(&self, access_token: &str, title: &str) -> Response {
        self.post_json("/todo", &json!({"title": title}), Some(access_token))
            .await
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.get("/me", access_token).await
    }

    /// Registers and logs in a fresh user.
    pub async fn new_user(&self, username: &str) -> Tokens {
        self.new_user_with(username, None).await
    }

    /// Registers (with an optional phone) and logs in a fresh user.
    pub async fn new_user_with(&self, username: &str, phone: Option<&str>) -> Tokens {
        let password = PASSWORD;
        let response = self
            .post_json(
                "/users",
                &json!({"username": username, "password": password, "phone": phone}),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        self.login_ok(username, password).await
    }
}

pub async fn tokens(response: Response) -> Tokens {
    let body: Value = response.json().await.expect("json body");
    Tokens {
        access: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        refresh: body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
        body,
    }
}

/// Asserts an RFC 9457 problem response with `status`, returning its body.
pub async fn assert_problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content-type was {content_type}"
    );
    let body: Value = response.json().await.expect("problem body is json");
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:jwt-todo:problem:")),
        "{body}"
    );
    assert!(body["title"].is_string(), "{body}");
    body
}

/// Asserts a 401 with an RFC 6750 challenge; `error` is the expected `error=` code.
pub async fn assert_unauthorized(response: Response, error: Option<&str>) -> Value {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("401 carries WWW-Authenticate")
        .to_owned();
    assert!(
        challenge.starts_with("Bearer realm=\"jwt-todo\""),
        "{challenge}"
    );
    match error {
        Some(code) => assert!(
            challenge.contains(&format!("error=\"{code}\"")),
            "{challenge}"
        ),
        None => assert!(!challenge.contains("error="), "{challenge}"),
    }
    assert_problem(response, StatusCode::UNAUTHORIZED).await
}
