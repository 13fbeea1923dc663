//! Phone numbers and SMS limits: SMS only to numbers proven with a texted code, within
//! caps per user and per number, to allowed countries; what one hostile account can do.
//! Against the recording fake of the Vonage Messages API (see `notifications.rs`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::notifications::{
    FakeVonage, PHONE, confirm_code, request_code, verified_user, verify_phone, vonage_env,
};
use crate::ops::{metrics, sample};
use crate::redis::start_redis;

const OTHER: &str = "+4917012345678";

/// `jwt_todo_sms_total{kind,outcome}`.
async fn sms_count(app: &TestApp, kind: &str, outcome: &str) -> f64 {
    let text = metrics(app).await;
    sample(
        &text,
        &format!(r#"jwt_todo_sms_total{{kind="{kind}",outcome="{outcome}"}}"#),
    )
    .unwrap_or(0.0)
}

async fn me(app: &TestApp, access: &str) -> Value {
    let response = app.me(access).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

/// Gives the worker time to deliver anything queued (nothing should be).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

/// The pumping attack: an account registered with a number nobody proved creates 200
/// todos. Nothing is texted; every todo is created; every skip is counted.
async fn an_unverified_number_is_never_texted(store: &[(&str, &str)]) {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.extend(store);
    // Todos are created by the hundred here; the creation rate is tested in abuse.rs.
    env.push(("TODO_CREATE_LIMIT", "1000000"));
    let app = spawn_app_with(&lenient_throttle(&env)).await;
    let pumper = app.new_user_with("pumper", Some("+8821612345678")).await;
    let profile = me(&app, &pumper.access).await;
    assert_eq!(profile["phone"], "+8821612345678");
    assert_eq!(profile["phone_verified"], false);

    for chunk in (0..200).collect::<Vec<_>>().chunks(50) {
        let created = futures::future::join_all(chunk.iter().map(|i| {
            let title = format!("pump {i}");
            let access = pumper.access.as_str();
            let app = &app;
            async move { app.create_todo(access, &title).await }
        }))
        .await;
        assert!(created.iter().all(|r| r.status() == StatusCode::CREATED));
    }
    settle().await;
    assert_eq!(fake.requests().len(), 0, "not one SMS");
    let list: Vec<Value> = app.items("/todo?limit=1000", &pumper.access).await;
    assert_eq!(list.len(), 200);
    assert_eq!(sms_count(&app, "todo_created", "unverified").await, 200.0);
    assert_eq!(sms_count(&app, "todo_created", "queued").await, 0.0);
}

#[tokio::test]
async fn an_unverified_number_is_never_texted_in_the_embedded_store() {
    an_unverified_number_is_never_texted(&[]).await;
}

#[tokio::test]
async fn an_unverified_number_is_never_texted_over_redis() {
    let redis = start_redis().await;
    an_unverified_number_is_never_texted(&[("REDIS_URL", &redis.url)]).await;
}

/// After verification, SMS stop at the user's hourly cap (the code counted too); todos
/// are still created and the skips counted.
async fn todo_sms_stop_at_the_users_cap(store: &[(&str, &str)]) {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.push(("SMS_USER_HOURLY_CAP", "5"));
    env.extend(store);
    // Todos are created by the hundred here; the creation rate is tested in abuse.rs.
    env.push(("TODO_CREATE_LIMIT", "1000000"));
    let app = spawn_app_with(&lenient_throttle(&env)).await;
    let user = verified_user(&app, &fake, "busy", PHONE).await;

    for i in 0..20 {
        let created = app.create_todo(&user.access, &format!("todo {i}")).await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    // The code was one of the five.
    eventually(Duration::from_secs(10), "four todo SMS", || async {
        fake.requests().len() == 4
    })
    .await;
    settle().await;
    assert_eq!(fake.requests().len(), 4, "no SMS past the cap");
    assert_eq!(sms_count(&app, "todo_created", "queued").await, 4.0);
    assert_eq!(sms_count(&app, "todo_created", "user_cap").await, 16.0);
    assert_eq!(sms_count(&app, "phone_code", "queued").await, 1.0);
    let list: Vec<Value> = app.items("/todo?limit=1000", &user.access).await;
    assert_eq!(list.len(), 20, "every todo created");
    // A code request is over the cap too: 429, and nothing changes.
    let refused = request_code(&app, &user.access, OTHER).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(me(&app, &user.access).await["phone"], PHONE);
}

#[tokio::test]
async fn todo_sms_stop_at_the_users_cap_in_the_embedded_store() {
    todo_sms_stop_at_the_users_cap(&[]).await;
}

#[tokio::test]
async fn todo_sms_stop_at_the_users_cap_over_redis() {
    let redis = start_redis().await;
    todo_sms_stop_at_the_users_cap(&[("REDIS_URL", &redis.url)]).await;
}

/// Two accounts that both verified one number share its cap: a number cannot be pumped
/// through many accounts.
async fn a_numbers_cap_holds_across_accounts(store: &[(&str, &str)]) {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.push(("SMS_NUMBER_HOURLY_CAP", "4"));
    env.extend(store);
    let app = spawn_app_with(&lenient_throttle(&env)).await;
    // Two codes to the one number: two of its four.
    let first = verified_user(&app, &fake, "first", PHONE).await;
    let second = verified_user(&app, &fake, "second", PHONE).await;
    for i in 0..5 {
        for user in [&first, &second] {
            let created = app.create_todo(&user.access, &format!("todo {i}")).await;
            assert_eq!(created.status(), StatusCode::CREATED);
        }
    }
    eventually(Duration::from_secs(10), "two todo SMS", || async {
        fake.requests().len() == 2
    })
    .await;
    settle().await;
    assert_eq!(fake.requests().len(), 2, "no SMS past the number's cap");
    assert_eq!(sms_count(&app, "todo_created", "number_cap").await, 8.0);
    // A third account cannot even ask for a code to that number.
    let third = app.new_user("third").await;
    let refused = request_code(&app, &third.access, PHONE).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let body = assert_problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "urn:jwt-todo:problem:too-many-sms");
    assert!(me(&app, &third.access).await.get("phone").is_none());
}

#[tokio::test]
async fn a_numbers_cap_holds_across_accounts_in_the_embedded_store() {
    a_numbers_cap_holds_across_accounts(&[]).await;
}

#[tokio::test]
async fn a_numbers_cap_holds_across_accounts_over_redis() {
    let redis = start_redis().await;
    a_numbers_cap_holds_across_accounts(&[("REDIS_URL", &redis.url)]).await;
}

#[tokio::test]
async fn registration_stores_the_number_unverified_and_texts_nothing() {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let app = spawn_app_with(&vonage_env(&base)).await;
    let created = app
        .post_json(
            "/users",
            &json!({"username": "newcomer", "password": "a fine long passphrase", "phone": PHONE}),
            None,
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let body: Value = created.json().await.expect("json");
    assert_eq!(body["phone"], PHONE);
    assert_eq!(body["phone_verified"], false);
    settle().await;
    assert!(fake.requests().is_empty(), "registration texts nothing");
}

/// The verification flow, each rule of a code in turn.
async fn a_code_proves_its_number_once_and_only_its_number(store: &[(&str, &str)]) {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.push(("PHONE_CODE_COOLDOWN", "1s"));
    env.extend(store);
    let app = spawn_app_with(&lenient_throttle(&env)).await;
    let user = app.new_user("verifier").await;
    let access = user.access.as_str();
    assert_eq!(me(&app, access).await["phone_verified"], false);

    // Asking: the number is set, unverified, and a six-digit code texted to it.
    let requested = request_code(&app, access, PHONE).await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let body: Value = requested.json().await.expect("json");
    assert_eq!(
        body,
        json!({"phone": PHONE, "phone_verified": false, "expires_in": 600, "resend_in": 1})
    );
    let first = fake.nth_code_to(PHONE, 1).await;
    assert!(first.len() == 6 && first.bytes().all(|b| b.is_ascii_digit()));
    let profile = me(&app, access).await;
    assert_eq!(
        (profile["phone"].clone(), profile["phone_verified"].clone()),
        (json!(PHONE), json!(false))
    );

    // A malformed code is refused without counting; a wrong one says how many tries are left.
    let malformed = assert_problem(
        confirm_code(&app, access, "12345").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(malformed["field"], "code");
    let wrong = wrong_code(&first);
    let body = assert_problem(
        confirm_code(&app, access, &wrong).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["type"], "urn:jwt-todo:problem:wrong-code");
    assert!(
        body["detail"].as_str().expect("detail").contains("4 more"),
        "{body}"
    );

    // A new request replaces the code: the first one is just wrong now.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        request_code(&app, access, PHONE).await.status(),
        StatusCode::ACCEPTED
    );
    let second = fake.nth_code_to(PHONE, 2).await;
    if second != first {
        let body = assert_problem(
            confirm_code(&app, access, &first).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["type"], "urn:jwt-todo:problem:wrong-code");
    }

    // The right code verifies the number ...
    let verified = confirm_code(&app, access, &second).await;
    assert_eq!(verified.status(), StatusCode::OK);
    let body: Value = verified.json().await.expect("json");
    assert_eq!(body["phone_verified"], true);
    assert_eq!(me(&app, access).await["phone_verified"], true);
    // ... once: sent again it changes nothing (the answer to a lost reply).
    assert_eq!(
        confirm_code(&app, access, &second).await.status(),
        StatusCode::OK
    );

    // A new number starts unverified, and the old number's code does not prove it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        request_code(&app, access, OTHER).await.status(),
        StatusCode::ACCEPTED
    );
    let profile = me(&app, access).await;
    assert_eq!(
        (profile["phone"].clone(), profile["phone_verified"].clone()),
        (json!(OTHER), json!(false))
    );
    let other_code = fake.nth_code_to(OTHER, 1).await;
    if other_code != second {
        assert_problem(
            confirm_code(&app, access, &second).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    assert_eq!(
        confirm_code(&app, access, &other_code).await.status(),
        StatusCode::OK
    );
    let profile = me(&app, access).await;
    assert_eq!(
        (profile["phone"].clone(), profile["phone_verified"].clone()),
        (json!(OTHER), json!(true))
    );

    // Once spent, it never verifies again: back to the first number, with the spent code.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        request_code(&app, access, PHONE).await.status(),
        StatusCode::ACCEPTED
    );
    let fresh = fake.nth_code_to(PHONE, 3).await;
    if fresh != other_code {
        assert_problem(
            confirm_code(&app, access, &other_code).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(me(&app, access).await["phone_verified"], false);
    }
}

/// A six-digit code that is not `code`.
fn wrong_code(code: &str) -> String {
    let value: u32 = code.parse().expect("digits");
    format!("{:06}", (value + 1) % 1_000_000)
}

#[tokio::test]
async fn a_code_proves_its_number_once_and_only_its_number_in_the_embedded_store() {
    a_code_proves_its_number_once_and_only_its_number(&[]).await;
}

#[tokio::test]
async fn a_code_proves_its_number_once_and_only_its_number_over_redis() {
    let redis = start_redis().await;
    a_code_proves_its_number_once_and_only_its_number(&[("REDIS_URL", &redis.url)]).await;
}

/// Five wrong codes kill the code: even the right one fails afterwards. A hostile
/// caller gets 5 guesses in a million per code, and codes are rate-limited.
async fn five_wrong_codes_kill_the_code(store: &[(&str, &str)]) {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.extend(store);
    let app = spawn_app_with(&lenient_throttle(&env)).await;
    let user = app.new_user("guesser").await;
    assert_eq!(
        request_code(&app, &user.access, PHONE).await.status(),
        StatusCode::ACCEPTED
    );
    let code = fake.nth_code_to(PHONE, 1).await;
    let wrong = wrong_code(&code);
    for left in ["4 more", "3 more", "2 more", "1 more", "last try"] {
        let body = assert_problem(
            confirm_code(&app, &user.access, &wrong).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            body["detail"].as_str().expect("detail").contains(left),
            "{body}"
        );
    }
    let body = assert_problem(
        confirm_code(&app, &user.access, &code).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["type"], "urn:jwt-todo:problem:no-pending-code");
    assert_eq!(me(&app, &user.access).await["phone_verified"], false);
}

#[tokio::test]
async fn five_wrong_codes_kill_the_code_in_the_embedded_store() {
    five_wrong_codes_kill_the_code(&[]).await;
}

#[tokio::test]
async fn five_wrong_codes_kill_the_code_over_redis() {
    let redis = start_redis().await;
    five_wrong_codes_kill_the_code(&[("REDIS_URL", &redis.url)]).await;
}

#[tokio::test]
async fn an_expired_code_verifies_nothing() {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    // Long enough for the worker to send the code on a loaded machine (it skips a code
    // that expired before it was sent), short enough to wait out.
    let ttl = Duration::from_secs(4);
    env.push(("PHONE_CODE_TTL", "4s"));
    let app = spawn_app_with(&env).await;
    let user = app.new_user("slowpoke").await;
    let requested = tokio::time::Instant::now();
    assert_eq!(
        request_code(&app, &user.access, PHONE).await.status(),
        StatusCode::ACCEPTED
    );
    let code = fake.nth_code_to(PHONE, 1).await;
    // Past the code's expiry, counted from before it was asked for.
    tokio::time::sleep_until(requested + ttl + Duration::from_millis(1100)).await;
    let body = assert_problem(
        confirm_code(&app, &user.access, &code).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["type"], "urn:jwt-todo:problem:no-pending-code");
    assert_eq!(me(&app, &user.access).await["phone_verified"], false);
}

/// Asking for codes again and again: one per cooldown, nothing sent and nothing changed
/// in between.
async fn code_requests_are_rate_limited(store: &[(&str, &str)]) {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.extend(store);
    let app = spawn_app_with(&lenient_throttle(&env)).await;
    let user = app.new_user("impatient").await;
    assert_eq!(
        request_code(&app, &user.access, PHONE).await.status(),
        StatusCode::ACCEPTED
    );
    for number in [PHONE, OTHER, PHONE] {
        let refused = request_code(&app, &user.access, number).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = refused.headers()["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
    }
    settle().await;
    assert_eq!(fake.requests().len(), 1, "one code, whatever the requests");
    assert_eq!(
        me(&app, &user.access).await["phone"],
        PHONE,
        "nothing changed"
    );
    assert_eq!(sms_count(&app, "phone_code", "cooldown").await, 3.0);
    // The one code still works.
    let code = fake.nth_code_to(PHONE, 1).await;
    assert_eq!(
        confirm_code(&app, &user.access, &code).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn code_requests_are_rate_limited_in_the_embedded_store() {
    code_requests_are_rate_limited(&[]).await;
}

#[tokio::test]
async fn code_requests_are_rate_limited_over_redis() {
    let redis = start_redis().await;
    code_requests_are_rate_limited(&[("REDIS_URL", &redis.url)]).await;
}

#[tokio::test]
async fn numbers_outside_the_country_allow_list_are_refused_and_never_texted() {
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.push(("SMS_ALLOWED_COUNTRIES", "+49, +43"));
    let app = spawn_app_with(&env).await;

    let premium = "+8821612345678";
    let refused = app
        .post_json(
            "/users",
            &json!({"username": "abroad", "password": "a fine long passphrase", "phone": premium}),
            None,
        )
        .await;
    let body = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["field"], "phone");
    assert!(
        body["detail"].as_str().expect("detail").contains("country"),
        "{body}"
    );

    let user = app.new_user("at-home").await;
    let body = assert_problem(
        request_code(&app, &user.access, premium).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["field"], "phone");
    assert!(
        me(&app, &user.access).await.get("phone").is_none(),
        "nothing changed"
    );
    // An allowed country goes through.
    verify_phone(&app, &fake, &user.access, "+4312345678").await;
    settle().await;
    assert!(
        fake.requests().iter().all(|r| !r.to().starts_with("882")),
        "never texted"
    );
}

#[tokio::test]
async fn the_code_never_reaches_the_logs() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }
    // nextest runs every test in a process of its own, so this global subscriber sees this
    // test's server alone.
    let captured = Captured::default();
    tracing::subscriber::set_global_default(server::telemetry::subscriber(
        server::LogFormat::Json,
        tracing_subscriber::EnvFilter::new("trace,hyper=info,h2=info,reqwest=info,poem=info"),
        captured.clone(),
    ))
    .expect("the test process's only subscriber");

    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.push(("PHONE_CODE_COOLDOWN", "1s"));
    let app = spawn_app_with(&env).await;
    let user = app.new_user("secretive").await;
    let mut codes = Vec::new();
    for n in 1..=2 {
        assert_eq!(
            request_code(&app, &user.access, PHONE).await.status(),
            StatusCode::ACCEPTED
        );
        codes.push(fake.nth_code_to(PHONE, n).await);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    // A wrong try with the first (replaced) code, the right one with the second.
    confirm_code(&app, &user.access, &codes[0]).await;
    assert_eq!(
        confirm_code(&app, &user.access, &codes[1]).await.status(),
        StatusCode::OK
    );
    settle().await;

    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(text.contains("phone code queued"), "the flow was logged");
    for code in &codes {
        assert!(
            !text.contains(&format!("code is {code}")),
            "an SMS text was logged"
        );
        // Six digits occur by chance in timestamps (after a '.') and in ids (among hex);
        // anywhere else, it is the code.
        for (at, _) in text.match_indices(code.as_str()) {
            let before = text[..at].chars().next_back().unwrap_or(' ');
            let after = text[at + code.len()..].chars().next().unwrap_or(' ');
            let by_chance = before == '.'
                || before.is_ascii_hexdigit()
                || before == '-'
                || after.is_ascii_hexdigit()
                || after == '-';
            assert!(
                by_chance,
                "the code {code} reached the logs: ...{}...",
                &text[at.saturating_sub(80)..(at + 80).min(text.len())]
            );
        }
    }
}
