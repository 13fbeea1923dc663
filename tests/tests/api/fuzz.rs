//! Property tests of request decoding (a fuzz target that runs under nextest on stable):
//! arbitrary bytes and arbitrary JSON sent to the endpoints that take a body never get a
//! 5xx and never panic the server (a panic would be a 500 from the panic guard), and every
//! error is a problem document.
//!
//! The whole application runs in process (poem's `TestClient`, no sockets), on the
//! embedded store with login throttling out of reach (every attempt comes from one
//! address). Cases are few per run (`CASES`), enough to walk the decoders every CI run
//! in a few seconds; a run with `PROPTEST_CASES` set explores more.

use poem::Response;
use poem::endpoint::BoxEndpoint;
use poem::test::TestClient;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};
use server::{Application, Config};

use crate::helpers::{PASSWORD, USER};

/// Cases per strategy and endpoint in a CI run.
const CASES: u32 = 48;

/// The routes that decode a body, and whether they need a bearer token to get that far.
const ROUTES: &[(&str, &str, bool)] = &[
    ("POST", "/login", false),
    ("POST", "/users", false),
    ("POST", "/token/refresh", false),
    ("POST", "/token/revoke", false),
    ("POST", "/todo", true),
    ("PATCH", "/todo/0b0c0d0e-0000-4000-8000-000000000000", true),
    ("POST", "/me/phone", true),
    ("POST", "/me/phone/verify", true),
];

/// Field names the API knows, so that generated objects often get past the outer shape.
const FIELDS: &[&str] = &[
    "username",
    "password",
    "phone",
    "title",
    "completed",
    "refresh_token",
    "scope",
    "code",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,80}".prop_map(Value::String),
        "[a-z0-9_.+-]{0,70}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        3 => prop::sample::select(FIELDS).prop_map(str::to_owned),
                        1 => ".{0,12}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Objects made of the API's field names only, mostly with string values: these get past
/// the decoders into the use cases (validation, hashing, token parsing).
fn shaped() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        3 => ".{0,80}".prop_map(Value::String),
        1 => json_value(),
    ];
    prop::collection::vec((prop::sample::select(FIELDS), value), 1..8).prop_map(|fields| {
        Value::Object(
            fields
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        )
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        2 => shaped().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

async fn app() -> (TestClient<BoxEndpoint<'static, Response>>, String) {
    let config = Config::from_lookup(|key| match key {
        "BIND_ADDR" => Some("127.0.0.1:0".to_owned()),
        "LOGIN_PAIR_LIMIT" | "LOGIN_CLIENT_LIMIT" => Some("1000000".to_owned()),
        _ => None,
    })
    .expect("valid configuration");
    let client = TestClient::new(
        Application::build(config)
            .await
            .expect("server builds")
            .into_endpoint(),
    );
    let user = json!({"username": USER, "password": PASSWORD});
    client
        .post("/users")
        .body_json(&user)
        .send()
        .await
        .assert_status(poem::http::StatusCode::CREATED);
    let login = client.post("/login").body_json(&user).send().await;
    login.assert_status_is_ok();
    let tokens: Value = login.0.into_body().into_json().await.expect("json");
    let access = tokens["access_token"].as_str().expect("token").to_owned();
    (client, access)
}

#[test]
fn arbitrary_bodies_never_get_a_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (client, access) = rt.block_on(app());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    for &(method, path, authenticated) in ROUTES {
        let mut runner = TestRunner::new(RunnerConfig {
            cases,
            failure_persistence: None,
            ..RunnerConfig::default()
        });
        let outcome = runner.run(&body(), |bytes| {
            let (status, content_type) = rt.block_on(async {
                let request = match method {
                    "PATCH" => client.patch(path),
                    _ => client.post(path),
                };
                let mut request = request.content_type("application/json").body(bytes.clone());
                if authenticated {
                    request = request.header("authorization", format!("Bearer {access}"));
                }
                let response = request.send().await.0;
                let content_type = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                (response.status(), content_type)
            });
            prop_assert!(
                !status.is_server_error(),
                "{} {} answered {} to {:?}",
                method,
                path,
                status,
                String::from_utf8_lossy(&bytes)
            );
            if status.is_client_error() || status.is_server_error() {
                prop_assert!(
                    content_type.starts_with("application/problem+json"),
                    "{} {}: {} without a problem document",
                    method,
                    path,
                    status
                );
            }
            Ok(())
        });
        if let Err(failure) = outcome {
            panic!("{method} {path}: {failure}");
        }
    }
}
