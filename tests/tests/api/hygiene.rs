//! Input and log hygiene over HTTP: what a client types never reaches a log line raw,
//! a password must have something visible in it and is compared in NFKC, and a title
//! cannot hide or reorder its text.

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

use crate::helpers::*;

/// Every field value of every span and event, as recorded: what any layer (text, JSON,
/// an exporter) could write, whether or not the text format shows that span.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<String>>>);

struct Collect<'a>(&'a mut Vec<String>);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push(format!("{}={value}", field.name()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={value:?}", field.name()));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorded {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: Context<'_, S>,
    ) {
        attrs.record(&mut Collect(&mut self.0.lock().expect("not poisoned")));
    }
    fn on_record(
        &self,
        _: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: Context<'_, S>,
    ) {
        values.record(&mut Collect(&mut self.0.lock().expect("not poisoned")));
    }
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        event.record(&mut Collect(&mut self.0.lock().expect("not poisoned")));
    }
}

/// The text log as a terminal would show it.
#[derive(Clone, Default)]
struct Text(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Text {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Text {
    type Writer = Text;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// The server runs on this test's thread (tokio's current-thread runtime), so a subscriber
// set for this thread alone sees all of it, beside the global one another test installs.
#[tokio::test]
async fn usernames_reach_the_logs_only_folded_or_as_a_placeholder() {
    let recorded = Recorded::default();
    let text = Text::default();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new(
                "trace,hyper=info,h2=info,reqwest=info",
            ))
            .with(recorded.clone())
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(text.clone()),
            ),
    );
    let app = spawn_app().await;

    // A newline that would forge a line, and a password typed into the name field.
    let forged = "mallory\nINFO jwt_todo: login succeeded username=admin";
    let password_like = "Tr0ub4dor&3 correct horse";
    for name in [forged, password_like] {
        assert_unauthorized(app.login(name, "whatever it is").await, None).await;
        let response = app
            .post_json(
                "/users",
                &json!({"username": name, "password": "a fine long passphrase"}),
                None,
            )
            .await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    // A valid name is logged, folded.
    assert_unauthorized(app.login("Alice.Example", "not her password").await, None).await;

    let fields = recorded.0.lock().expect("not poisoned").join("\n");
    let text = String::from_utf8(text.0.lock().expect("not poisoned").clone()).expect("utf-8");
    for raw in ["mallory", "INFO jwt_todo", "Tr0ub4dor", "correct horse"] {
        assert!(!fields.contains(raw), "{raw:?} recorded:\n{fields}");
        assert!(!text.contains(raw), "{raw:?} logged:\n{text}");
    }
    assert!(
        fields.contains("username=invalid(len=53)") && fields.contains("username=invalid(len=25)"),
        "{fields}"
    );
    assert!(text.contains("username=alice.example"), "{text}");
    assert!(text.contains("username=invalid(len=53)"), "{text}");
}

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
    let user = app.login_user().await;
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
    let list: Vec<Value> = app.items("/todo", &user.access).await;
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
