//! The contract: the committed spec matches the code, and it is served with Swagger UI.

use reqwest::StatusCode;

use crate::helpers::*;

const COMMITTED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../openapi/openapi.json"
));

#[tokio::test]
async fn committed_spec_matches_the_code() {
    let generated = server::openapi_json();
    if generated.trim() != COMMITTED.trim() {
        panic!(
            "openapi/openapi.json is out of date with the code.\n\
             Regenerate it with:  cargo run -q -p server -- openapi > openapi/openapi.json"
        );
    }
}

#[tokio::test]
async fn the_spec_and_swagger_ui_are_served() {
    let app = spawn_app().await;
    let served = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(served.status(), StatusCode::OK);
    let served: serde_json::Value = served.json().await.expect("json");
    let committed: serde_json::Value =
        serde_json::from_str(COMMITTED).expect("committed spec is json");
    assert_eq!(served, committed);
    assert!(served["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer");

    let yaml = app
        .client
        .get(app.url("/openapi.yaml"))
        .send()
        .await
        .expect("sent");
    assert_eq!(yaml.status(), StatusCode::OK);

    let docs = app.client.get(app.url("/docs")).send().await.expect("sent");
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.expect("html").contains("swagger"));
}

/// Every operation's documented answers: its statuses, and the problem types its
/// problem schema admits. Changing what an operation can answer is a contract change
/// for every generated client, so it must show up here too.
const ANSWERS: &[(&str, &[u16], &[&str])] = &[
    (
        "login_mfa",
        &[200, 400, 401, 408, 413, 415, 422, 429, 500, 503],
        &[
            "invalid-parameter",
            "invalid-challenge",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "invalid-field",
            "wrong-code",
            "too-many-codes",
            "internal",
            "unavailable",
        ],
    ),
    (
        "enrol_totp",
        &[201, 401, 409, 500, 503],
        &[
            "missing-token",
            "invalid-token",
            "mfa-enabled",
            "internal",
            "unavailable",
        ],
    ),
    (
        "mfa_status",
        &[200, 401, 500, 503],
        &["missing-token", "invalid-token", "internal", "unavailable"],
    ),
    (
        "renew_recovery_codes",
        &[200, 401, 404, 408, 413, 415, 422, 429, 500, 503],
        &[
            "missing-token",
            "invalid-token",
            "not-found",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "invalid-field",
            "wrong-code",
            "too-many-codes",
            "internal",
            "unavailable",
        ],
    ),
    (
        "disable_totp",
        &[204, 401, 404, 408, 413, 415, 422, 429, 500, 503],
        &[
            "missing-token",
            "invalid-token",
            "not-found",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "invalid-field",
            "wrong-code",
            "too-many-codes",
            "internal",
            "unavailable",
        ],
    ),
    (
        "confirm_totp",
        &[200, 401, 408, 413, 415, 422, 429, 500, 503],
        &[
            "missing-token",
            "invalid-token",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "invalid-field",
            "wrong-code",
            "no-pending-code",
            "too-many-codes",
            "internal",
            "unavailable",
        ],
    ),
    (
        "login",
        &[200, 400, 401, 408, 413, 415, 422, 429, 500, 503],
        &[
            "invalid-parameter",
            "invalid-credentials",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "too-many-logins",
            "internal",
            "unavailable",
        ],
    ),
    (
        "refresh_token",
        &[201, 400, 401, 403, 408, 413, 415, 422, 500, 503],
        &[
            "invalid-parameter",
            "invalid-token",
            "invalid-csrf-token",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "internal",
            "unavailable",
        ],
    ),
    (
        "logout",
        &[200, 400, 401, 500, 503],
        &[
            "invalid-parameter",
            "missing-token",
            "invalid-token",
            "internal",
            "unavailable",
        ],
    ),
    (
        "revoke_token",
        &[200, 401, 403, 408, 413, 415, 422, 500, 503],
        &[
            "invalid-token",
            "invalid-csrf-token",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "internal",
            "unavailable",
        ],
    ),
    ("jwks", &[200], &[]),
    (
        "register",
        &[201, 400, 408, 409, 413, 415, 422, 429, 500, 503],
        &[
            "invalid-parameter",
            "request-timeout",
            "username-taken",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "invalid-field",
            "idempotency-key-reused",
            "too-many-registrations",
            "internal",
            "unavailable",
        ],
    ),
    (
        "me",
        &[200, 401, 500, 503],
        &["missing-token", "invalid-token", "internal", "unavailable"],
    ),
    (
        "set_phone",
        &[202, 401, 408, 413, 415, 422, 429, 500, 503],
        &[
            "missing-token",
            "invalid-token",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "invalid-field",
            "too-many-sms",
            "internal",
            "unavailable",
        ],
    ),
    (
        "verify_phone",
        &[200, 401, 408, 413, 415, 422, 500, 503],
        &[
            "missing-token",
            "invalid-token",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "invalid-field",
            "wrong-code",
            "no-pending-code",
            "internal",
            "unavailable",
        ],
    ),
    (
        "change_password",
        &[204, 401, 403, 408, 413, 415, 422, 429, 500, 503],
        &[
            "missing-token",
            "invalid-token",
            "wrong-password",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "invalid-field",
            "too-many-logins",
            "internal",
            "unavailable",
        ],
    ),
    (
        "delete_account",
        &[204, 401, 403, 408, 413, 415, 422, 429, 500, 503],
        &[
            "missing-token",
            "invalid-token",
            "wrong-password",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "too-many-logins",
            "internal",
            "unavailable",
        ],
    ),
    (
        "request_password_reset",
        &[202, 408, 413, 415, 422, 429, 500, 503],
        &[
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "too-many-password-resets",
            "internal",
            "unavailable",
        ],
    ),
    (
        "reset_password",
        &[204, 408, 413, 415, 422, 429, 500, 503],
        &[
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "invalid-field",
            "wrong-code",
            "too-many-password-resets",
            "internal",
            "unavailable",
        ],
    ),
    (
        "create_todo",
        &[201, 400, 401, 408, 409, 413, 415, 422, 429, 500, 503],
        &[
            "invalid-parameter",
            "missing-token",
            "invalid-token",
            "request-timeout",
            "todo-quota-exceeded",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "invalid-field",
            "idempotency-key-reused",
            "too-many-todos",
            "internal",
            "unavailable",
        ],
    ),
    (
        "list_todos",
        &[200, 400, 401, 500, 503],
        &[
            "invalid-parameter",
            "missing-token",
            "invalid-token",
            "internal",
            "unavailable",
        ],
    ),
    (
        "get_todo",
        &[200, 400, 401, 404, 500, 503],
        &[
            "invalid-parameter",
            "missing-token",
            "invalid-token",
            "not-found",
            "internal",
            "unavailable",
        ],
    ),
    (
        "update_todo",
        &[200, 400, 401, 404, 408, 413, 415, 422, 500, 503],
        &[
            "invalid-parameter",
            "missing-token",
            "invalid-token",
            "not-found",
            "request-timeout",
            "payload-too-large",
            "unsupported-media-type",
            "invalid-body",
            "invalid-field",
            "internal",
            "unavailable",
        ],
    ),
    (
        "delete_todo",
        &[204, 400, 401, 404, 500, 503],
        &[
            "invalid-parameter",
            "missing-token",
            "invalid-token",
            "not-found",
            "internal",
            "unavailable",
        ],
    ),
    (
        "list_events",
        &[200, 400, 401, 500, 503],
        &[
            "invalid-parameter",
            "missing-token",
            "invalid-token",
            "internal",
            "unavailable",
        ],
    ),
    (
        "list_sessions",
        &[200, 400, 401, 500, 503],
        &[
            "invalid-parameter",
            "missing-token",
            "invalid-token",
            "internal",
            "unavailable",
        ],
    ),
    (
        "revoke_session",
        &[204, 400, 401, 404, 500, 503],
        &[
            "invalid-parameter",
            "missing-token",
            "invalid-token",
            "not-found",
            "internal",
            "unavailable",
        ],
    ),
    ("healthz", &[200], &[]),
    ("readyz", &[200, 500, 503], &["internal", "unavailable"]),
    // OAuth 2.0: errors are RFC 6749 §5.2 error objects, not problems (see below).
    ("oauth_token", &[200, 400, 401, 413, 429, 500, 503], &[]),
    ("oauth_revoke", &[200, 400, 401, 413, 500, 503], &[]),
    (
        "oauth_introspect",
        &[200, 400, 401, 403, 413, 500, 503],
        &[],
    ),
    ("oauth_metadata", &[200], &[]),
];

/// What OAuth clients parse: every error of an OAuth operation is an `OAuthError` object
/// as JSON, and every 401 carries the Basic challenge.
#[test]
fn oauth_operations_answer_errors_as_oauth_error_objects() {
    let spec: serde_json::Value = serde_json::from_str(COMMITTED).expect("committed spec is json");
    for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
        let op = &spec["paths"][path]["post"];
        assert_eq!(
            op["requestBody"]["content"]
                .as_object()
                .expect("a body")
                .keys()
                .collect::<Vec<_>>(),
            ["application/x-www-form-urlencoded"],
            "{path}"
        );
        for (status, response) in op["responses"].as_object().expect("responses") {
            if status.starts_with('2') {
                continue;
            }
            let content = response["content"].as_object().expect("a body");
            assert_eq!(content.len(), 1, "{path} {status}");
            let (media, body) = content.iter().next().expect("one");
            assert!(
                media.starts_with("application/json"),
                "{path} {status}: {media}"
            );
            assert_eq!(
                body["schema"]["$ref"], "#/components/schemas/OAuthError",
                "{path} {status}"
            );
            if status == "401" {
                assert!(
                    response["headers"]["WWW-AUTHENTICATE"].is_object()
                        || response["headers"]["WWW-Authenticate"].is_object(),
                    "{path} 401: {response}"
                );
            }
        }
    }
}

#[test]
fn each_operation_documents_exactly_its_statuses_and_problem_types() {
    let spec: serde_json::Value = serde_json::from_str(COMMITTED).expect("committed spec is json");
    let mut documented = Vec::new();
    for operations in spec["paths"].as_object().expect("paths").values() {
        for op in operations.as_object().expect("operations").values() {
            let id = op["operationId"].as_str().expect("operationId").to_owned();
            let responses = op["responses"].as_object().expect("responses");
            let statuses: Vec<u16> = responses
                .keys()
                .map(|s| s.parse().expect("a numeric status"))
                .collect();
            // Every error response of an operation shares its one problem schema.
            let schemas: std::collections::BTreeSet<&str> = responses
                .values()
                .filter_map(|r| r["content"]["application/problem+json"]["schema"]["$ref"].as_str())
                .collect();
            assert!(
                schemas.len() <= 1,
                "{id}: one problem schema, not {schemas:?}"
            );
            let kinds: Vec<String> = schemas
                .iter()
                .flat_map(|reference| {
                    let name = reference.rsplit('/').next().expect("a schema name");
                    spec["components"]["schemas"][name]["properties"]["type"]["enum"]
                        .as_array()
                        .expect("an enum of problem types")
                        .iter()
                        .map(|t| {
                            t.as_str()
                                .and_then(|t| t.strip_prefix("urn:jwt-todo:problem:"))
                                .expect("a problem type URI")
                                .to_owned()
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            documented.push((id, statuses, kinds));
        }
    }
    let expected: Vec<(String, Vec<u16>, Vec<String>)> = ANSWERS
        .iter()
        .map(|(id, statuses, kinds)| {
            (
                (*id).to_owned(),
                statuses.to_vec(),
                kinds.iter().map(|k| (*k).to_owned()).collect(),
            )
        })
        .collect();
    documented.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(documented, expected);
}
