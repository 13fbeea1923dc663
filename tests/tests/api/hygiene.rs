//! Input hygiene over HTTP: a password must have something visible in it and is compared
//! in NFKC, and a title cannot hide or reorder its text.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_password_with_nothing_visible_is_refused_and_creates_no_user() {
    let app = spawn_app().await;
    for invisible in [
        "\u{200B}".repeat(8),
        " ".repeat(12),
        "\u{3164}".repeat(8),
        "\u{200E}\u{200F}\u{202E}\u{2060}\u{FEFF}\u{00AD}\u{200C}\u{200D}".to_owned(),
    ] {
        let response = app
            .post_json(
                "/users",
                &json!({"username": "ghost", "password": invisible}),
                None,
            )
            .await;
        let body = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["field"], "password", "{body}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("visible character")),
            "{body}"
        );
        assert_unauthorized(app.login("ghost", &invisible).await, None).await;
    }
    // The name was never taken.
    app.new_user("ghost").await;
}

#[tokio::test]
async fn passwords_are_compared_in_nfkc() {
    let app = spawn_app().await;
    // Registered with decomposed accents (as some keyboards send them), typed back
    // composed, and the other way round; full-width letters are their ASCII selves.
    let decomposed = "cre\u{300}me bru\u{302}le\u{301}e pour deux";
    let response = app
        .post_json(
            "/users",
            &json!({"username": "chef", "password": decomposed}),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    app.login_ok("chef", "crème brûlée pour deux").await;
    app.login_ok("chef", decomposed).await;

    let response = app
        .post_json(
            "/users",
            &json!({"username": "wide", "password": "ｗｉｄｅ ｐａｓｓｐｈｒａｓｅ"}),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    app.login_ok("wide", "wide passphrase").await;
    assert_unauthorized(app.login("wide", "wide passphrasE").await, None).await;
}

#[tokio::test]
async fn a_title_that_hides_or_reorders_text_is_a_clear_422_and_changes_nothing() {
    let app = spawn_app().await;
    let user = app.login_sample().await;
    let kept: Value = app
        .create_todo(&user.access, "pay invoice.pdf")
        .await
        .json()
        .await
        .expect("json");
    let path = format!("/todo/{}", kept["id"].as_str().expect("id"));

    for (title, says) in [
        ("pay invoice \u{202E}fdp.exe", "bidirectional control"),
        ("pay \u{2067}invoice\u{2069}", "bidirectional control"),
        ("pay\u{200B}pal", "invisible formatting"),
        ("buy milk\u{E0068}\u{E0069}", "invisible formatting"),
        ("\u{200D}", "visible character"),
    ] {
        for response in [
            app.create_todo(&user.access, title).await,
            app.client
                .patch(app.url(&path))
                .bearer_auth(&user.access)
                .json(&json!({"title": title}))
                .send()
                .await
                .expect("sent"),
        ] {
            let body = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(body["field"], "title", "{title:?}: {body}");
            assert!(
                body["detail"].as_str().is_some_and(|d| d.contains(says)),
                "{title:?}: {body}"
            );
        }
    }
    let list: Vec<Value> = app
        .get("/todo", &user.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["title"], "pay invoice.pdf");

    // Emoji joined with U+200D, and a subdivision flag, are ordinary text.
    for title in [
        "code review 👩\u{200D}💻",
        "match 🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
    ] {
        let created = app.create_todo(&user.access, title).await;
        assert_eq!(created.status(), StatusCode::CREATED, "{title:?}");
        let body: Value = created.json().await.expect("json");
        assert_eq!(body["title"], title);
    }
}
