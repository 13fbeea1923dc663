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
