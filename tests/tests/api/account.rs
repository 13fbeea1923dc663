//! The account around the session, over HTTP, in both stores: changing the password ends
//! the other sessions (never the caller's), deleting an account leaves nothing of it and
//! frees its name, and both are confirmed by the password under the login throttle.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::redis::{redis_cli, start_redis};

const NEW_PASSWORD: &str = "an entirely new passphrase";

async fn change_password(
    app: &TestApp,
    access: &str,
    current: &str,
    new: &str,
) -> reqwest::Response {
    app.post_json(
        "/me/password",
        &json!({"current_password": current, "new_password": new}),
        Some(access),
    )
    .await
}

async fn delete_account(app: &TestApp, access: &str, password: &str) -> reqwest::Response {
    app.client
        .delete(app.url("/me"))
        .bearer_auth(access)
        .json(&json!({"password": password}))
        .send()
        .await
        .expect("request sent")
}

async fn user_id(app: &TestApp, access: &str) -> String {
    let me: Value = app.me(access).await.json().await.expect("json");
    me["id"].as_str().expect("id").to_owned()
}

async fn a_password_change_ends_the_other_sessions_and_not_the_callers(store: &[(&str, &str)]) {
    let app = spawn_app_with(store).await;
    let caller = app.new_user("changer").await;
    let laptop = app.login_ok("changer", PASSWORD).await;
    let phone = app.login_ok("changer", PASSWORD).await;

    let changed = change_password(&app, &caller.access, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);

    // The caller goes on, with both of its tokens.
    assert_eq!(app.me(&caller.access).await.status(), StatusCode::OK);
    let rotated = app.refresh(&caller.refresh).await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    // Every other session ended at once: access and refresh tokens alike.
    for other in [&laptop, &phone] {
        assert_unauthorized(app.me(&other.access).await, Some("invalid_token")).await;
        assert_unauthorized(app.refresh(&other.refresh).await, Some("invalid_token")).await;
    }
    assert_eq!(
        app.login("changer", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.login_ok("changer", NEW_PASSWORD).await;

    // A retry of the same request (its answer lost) gets the same answer and ends nothing.
    let fresh = app.login_ok("changer", NEW_PASSWORD).await;
    let rotated = tokens(rotated).await;
    let retried = change_password(&app, &rotated.access, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(retried.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.me(&fresh.access).await.status(),
        StatusCode::OK,
        "nothing more ended"
    );
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_not_the_callers_in_the_embedded_store() {
    a_password_change_ends_the_other_sessions_and_not_the_callers(&[]).await;
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_not_the_callers_over_redis() {
    let redis = start_redis().await;
    a_password_change_ends_the_other_sessions_and_not_the_callers(&[("REDIS_URL", &redis.url)])
        .await;
}

/// A stolen access token is no shortcut to the password: a wrong one is 403 and changes
/// nothing, the guesses count with failed logins, and a bad new password is refused first.
async fn the_current_password_guards_the_change(store: &[(&str, &str)]) {
    let app = spawn_app_with(store).await;
    let thief = app.new_user("guarded").await;
    let owner = app.login_ok("guarded", PASSWORD).await;

    let weak = change_password(&app, &thief.access, PASSWORD, "password123").await;
    let problem = assert_problem(weak, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "new_password", "{problem}");

    for _ in 0..5 {
        let wrong = change_password(&app, &thief.access, "a guess at it", NEW_PASSWORD).await;
        let problem = assert_problem(wrong, StatusCode::FORBIDDEN).await;
        assert_eq!(
            problem["type"], "urn:jwt-todo:problem:wrong-password",
            "{problem}"
        );
    }
    // The sixth is refused unchecked, the right password included.
    let throttled = change_password(&app, &thief.access, PASSWORD, NEW_PASSWORD).await;
    assert!(throttled.headers().contains_key("retry-after"));
    let problem = assert_problem(throttled, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        problem["type"], "urn:jwt-todo:problem:too-many-logins",
        "{problem}"
    );
    // The same count guards the login form: the throttle is one.
    assert_eq!(
        app.login("guarded", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Nothing changed.
    assert_eq!(app.me(&owner.access).await.status(), StatusCode::OK);
    let deleted = delete_account(&app, &thief.access, PASSWORD).await;
    assert_eq!(
        deleted.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "deletion shares the count"
    );
}

#[tokio::test]
async fn the_current_password_guards_the_change_in_the_embedded_store() {
    the_current_password_guards_the_change(&[]).await;
}

#[tokio::test]
async fn the_current_password_guards_the_change_over_redis() {
    let redis = start_redis().await;
    the_current_password_guards_the_change(&[("REDIS_URL", &redis.url)]).await;
}

/// Deleting an account: a wrong password changes nothing; the right one ends every token
/// of it at once, empties it and frees the name for anyone.
async fn deleting_an_account_frees_its_name_and_kills_its_tokens(app: &TestApp) -> String {
    let doomed = app.new_user("doomed").await;
    let other = app.login_ok("doomed", PASSWORD).await;
    let id = user_id(app, &doomed.access).await;
    // A second factor, its recovery codes and a pending login challenge go too.
    crate::mfa::enable_totp(app, &doomed.access).await;
    crate::mfa::challenge_of(app, "doomed").await;
    for title in ["one", "two"] {
        assert_eq!(
            app.create_todo(&doomed.access, title).await.status(),
            StatusCode::CREATED
        );
    }
    let keyed = app
        .client
        .post(app.url("/todo"))
        .bearer_auth(&doomed.access)
        .header("Idempotency-Key", "0b3c6f0e-9a51-4e8c-a1a2-5d0f1c2b3a4d")
        .json(&json!({"title": "keyed"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(keyed.status(), StatusCode::CREATED);
    let bystander = app.new_user("bystander").await;

    let wrong = delete_account(app, &doomed.access, "not the password").await;
    assert_problem(wrong, StatusCode::FORBIDDEN).await;
    assert_eq!(
        app.items("/todo", &doomed.access).await.len(),
        3,
        "nothing deleted"
    );

    let deleted = delete_account(app, &doomed.access, PASSWORD).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for tokens in [&doomed, &other] {
        assert_unauthorized(app.me(&tokens.access).await, Some("invalid_token")).await;
        assert_unauthorized(
            app.create_todo(&tokens.access, "late").await,
            Some("invalid_token"),
        )
        .await;
        assert_unauthorized(app.refresh(&tokens.refresh).await, Some("invalid_token")).await;
    }
    // A retry (its answer lost) is refused as unauthenticated: what it asked is done.
    assert_eq!(
        delete_account(app, &doomed.access, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("doomed", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // The name is anyone's: a new account, with nothing of the old one.
    let heir = app.new_user("doomed").await;
    assert_ne!(user_id(app, &heir.access).await, id);
    assert!(app.items("/todo", &heir.access).await.is_empty());
    assert_eq!(app.items("/sessions", &heir.access).await.len(), 1);
    // Nobody else was touched.
    assert_eq!(app.me(&bystander.access).await.status(), StatusCode::OK);
    id
}

#[tokio::test]
async fn deleting_an_account_frees_its_name_and_kills_its_tokens_in_the_embedded_store() {
    let app = spawn_app().await;
    deleting_an_account_frees_its_name_and_kills_its_tokens(&app).await;
}

#[tokio::test]
async fn deleting_an_account_leaves_no_key_of_it_in_redis() {
    let redis = start_redis().await;
    let app = spawn_app_with(&[("REDIS_URL", &redis.url)]).await;
    // Some of the per-user keys exist only once a phone code was asked for.
    let id = deleting_an_account_frees_its_name_and_kills_its_tokens(&app).await;
    let left = redis_cli(&redis, &["--scan", "--pattern", &format!("{{u:{id}}}*")]).await;
    assert!(
        left.trim().is_empty(),
        "keys of the deleted account: {left}"
    );
    // The name's index names the heir, not the deleted id.
    let holder = redis_cli(&redis, &["GET", "username:doomed"]).await;
    assert_ne!(holder.trim(), id);
    assert!(!holder.trim().is_empty());
}

/// The per-user keys a phone code leaves (the code, the SMS counters and cooldown) go too.
#[tokio::test]
async fn deleting_an_account_takes_its_codes_and_counters_over_redis() {
    use crate::notifications::{FakeVonage, request_code, vonage_env};
    let redis = start_redis().await;
    let (base, fake) = FakeVonage::start(&[], 202).await;
    let mut env = vonage_env(&base);
    env.push(("REDIS_URL", &redis.url));
    let app = spawn_app_with(&env).await;
    let user = app.new_user("texted").await;
    let id = user_id(&app, &user.access).await;
    assert_eq!(
        request_code(&app, &user.access, "+4915112345678")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let before = redis_cli(&redis, &["--scan", "--pattern", &format!("{{u:{id}}}*")]).await;
    assert!(
        before.contains(":phone_code") && before.contains(":sms:"),
        "{before}"
    );

    assert_eq!(
        delete_account(&app, &user.access, PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    let left = redis_cli(&redis, &["--scan", "--pattern", &format!("{{u:{id}}}*")]).await;
    assert!(
        left.trim().is_empty(),
        "keys of the deleted account: {left}"
    );
    drop(fake);
}

/// A name left held by a deleted id (the deleting process died before freeing it) is
/// taken over by the next registration, never locked for good.
#[tokio::test]
async fn a_name_orphaned_by_a_crashed_deletion_is_free_again_over_redis() {
    let redis = start_redis().await;
    let app = spawn_app_with(&[("REDIS_URL", &redis.url)]).await;
    let user = app.new_user("orphaned").await;
    let id = user_id(&app, &user.access).await;
    // What the deletion's first step leaves: the account gone, the name still its.
    redis_cli(&redis, &["DEL", &format!("{{u:{id}}}:user")]).await;
    assert_eq!(
        redis_cli(&redis, &["GET", "username:orphaned"])
            .await
            .trim(),
        id
    );

    app.new_user("orphaned").await;
    assert_ne!(
        redis_cli(&redis, &["GET", "username:orphaned"])
            .await
            .trim(),
        id
    );
}

/// On every replica at once: another replica's cache stops serving the deleted account's
/// tokens within its bound, as for any revocation.
#[tokio::test]
async fn a_deleted_accounts_tokens_die_on_every_replica() {
    let redis = start_redis().await;
    let vars = [
        ("REDIS_URL", redis.url.as_str()),
        ("ACCESS_SECRET", "replica-access-secret-0123456789abcdef"),
        ("REFRESH_SECRET", "replica-refresh-secret-0123456789abcdef"),
    ];
    let (a, b) = (spawn_app_with(&vars).await, spawn_app_with(&vars).await);
    let user = a.new_user("everywhere").await;
    // B serves it from its cache now.
    for _ in 0..3 {
        assert_eq!(b.me(&user.access).await.status(), StatusCode::OK);
    }
    assert_eq!(
        delete_account(&a, &user.access, PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    // The cache's default bound (SESSION_CACHE_STALENESS); a push usually arrives first.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_unauthorized(b.me(&user.access).await, Some("invalid_token")).await;
    assert_unauthorized(b.refresh(&user.refresh).await, Some("invalid_token")).await;
}

/// Two changes racing on one account: exactly one wins, and the password is the winner's;
/// the loser is told its current password is no longer right.
async fn racing_changes_have_one_winner(store: &[(&str, &str)]) {
    let app = spawn_app_with(store).await;
    let tokens = app.new_user("racer").await;
    let (a, b) = ("first new passphrase", "second new passphrase");
    let (one, two) = tokio::join!(
        change_password(&app, &tokens.access, PASSWORD, a),
        change_password(&app, &tokens.access, PASSWORD, b),
    );
    let mut statuses = [one.status(), two.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::NO_CONTENT, StatusCode::FORBIDDEN]);
    let winner = if one.status() == StatusCode::NO_CONTENT {
        a
    } else {
        b
    };
    let loser = if winner == a { b } else { a };
    app.login_ok("racer", winner).await;
    assert_eq!(
        app.login("racer", loser).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("racer", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn racing_changes_have_one_winner_in_the_embedded_store() {
    racing_changes_have_one_winner(&[]).await;
}

#[tokio::test]
async fn racing_changes_have_one_winner_over_redis() {
    let redis = start_redis().await;
    racing_changes_have_one_winner(&[("REDIS_URL", &redis.url)]).await;
}

/// Requests of the account in flight while it is deleted leave nothing behind, even on a
/// replica whose session cache still serves the account's token for a moment: todos
/// created and logins made there until the end are refused by the store, and no key of
/// the account is left in Redis once all have answered.
#[tokio::test]
async fn requests_racing_the_deletion_leave_nothing_over_redis() {
    let redis = start_redis().await;
    let vars = lenient_throttle(&[
        ("REDIS_URL", redis.url.as_str()),
        ("TODO_CREATE_LIMIT", "1000000"),
        ("ACCESS_SECRET", "replica-access-secret-0123456789abcdef"),
        ("REFRESH_SECRET", "replica-refresh-secret-0123456789abcdef"),
    ]);
    let (a, b) = (spawn_app_with(&vars).await, spawn_app_with(&vars).await);
    let doomed = a.new_user("raced").await;
    let id = user_id(&a, &doomed.access).await;
    // B serves the session from its cache.
    assert_eq!(b.me(&doomed.access).await.status(), StatusCode::OK);
    let done = std::sync::atomic::AtomicBool::new(false);
    let flood = async {
        let mut statuses = Vec::new();
        // Until B refuses the token (and a little after), creations and logins through B.
        let mut refused = 0;
        while refused < 20 {
            let (created, login) = tokio::join!(
                b.create_todo(&doomed.access, "racing"),
                b.login("raced", PASSWORD)
            );
            if created.status() == StatusCode::UNAUTHORIZED
                && done.load(std::sync::atomic::Ordering::SeqCst)
            {
                refused += 1;
            }
            statuses.push((created.status(), login.status()));
        }
        statuses
    };
    let deletion = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let deleted = delete_account(&a, &doomed.access, PASSWORD).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        deleted
    };
    let (statuses, deleted) = tokio::join!(flood, deletion);
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for (created, login) in statuses {
        assert!(
            matches!(created, StatusCode::CREATED | StatusCode::UNAUTHORIZED),
            "{created}"
        );
        assert!(
            matches!(login, StatusCode::OK | StatusCode::UNAUTHORIZED),
            "{login}"
        );
    }
    let left = redis_cli(&redis, &["--scan", "--pattern", &format!("{{u:{id}}}*")]).await;
    assert!(
        left.trim().is_empty(),
        "keys of the deleted account: {left}"
    );
}

/// A code SMS still queued when its account is deleted is never sent.
async fn a_deleted_accounts_queued_code_is_never_sent(store: &[(&str, &str)]) {
    use crate::notifications::{FakeVonage, Reply, request_code, vonage_env};
    let (base, fake) = FakeVonage::start(&[], 202).await;
    // The first delivery is refused for 3 seconds: the code waits in the outbox.
    fake.script(
        &[Reply {
            status: 429,
            retry_after: Some(3),
        }],
        202,
    );
    let mut env = vonage_env(&base);
    env.extend(store);
    let app = spawn_app_with(&env).await;
    let user = app.new_user("texted_then_gone").await;
    assert_eq!(
        request_code(&app, &user.access, "+4915112345678")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    eventually(
        std::time::Duration::from_secs(5),
        "the first attempt",
        || async { fake.requests().len() == 1 },
    )
    .await;
    assert_eq!(
        delete_account(&app, &user.access, PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    // Past the retry: the worker dropped it.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(fake.requests().len(), 1, "the code was not sent again");
}

#[tokio::test]
async fn a_deleted_accounts_queued_code_is_never_sent_in_the_embedded_store() {
    a_deleted_accounts_queued_code_is_never_sent(&[]).await;
}

#[tokio::test]
async fn a_deleted_accounts_queued_code_is_never_sent_over_redis() {
    let redis = start_redis().await;
    a_deleted_accounts_queued_code_is_never_sent(&[("REDIS_URL", &redis.url)]).await;
}

mod reset {
    use std::time::Duration;

    use reqwest::StatusCode;
    use serde_json::{Value, json};

    use super::NEW_PASSWORD;
    use crate::helpers::*;
    use crate::notifications::{FakeVonage, verified_user, vonage_env};
    use crate::redis::start_redis;

    const PHONE: &str = "+4915112345678";

    async fn request_reset(app: &TestApp, username: &str) -> reqwest::Response {
        app.post_json("/password/reset", &json!({"username": username}), None)
            .await
    }

    async fn confirm_reset(
        app: &TestApp,
        username: &str,
        code: &str,
        new: &str,
    ) -> reqwest::Response {
        app.post_json(
            "/password/reset/confirm",
            &json!({"username": username, "code": code, "new_password": new}),
            None,
        )
        .await
    }

    /// The reset codes texted to `phone`, oldest first.
    fn reset_codes(fake: &FakeVonage, phone: &str) -> Vec<String> {
        fake.requests()
            .iter()
            .filter(|r| format!("+{}", r.to()) == phone)
            .filter_map(|r| {
                r.text()
                    .strip_prefix("Your jwt-todo password reset code is ")
                    .and_then(|rest| rest.get(..6))
                    .map(str::to_owned)
            })
            .collect()
    }

    async fn nth_reset_code(fake: &FakeVonage, phone: &str, n: usize) -> String {
        eventually(Duration::from_secs(10), "a reset code SMS", || async {
            reset_codes(fake, phone).len() >= n
        })
        .await;
        reset_codes(fake, phone)[n - 1].clone()
    }

    async fn spawn(store: &[(&str, &str)], extra: &[(&str, &str)]) -> (TestApp, FakeVonage) {
        let (base, fake) = FakeVonage::start(&[], 202).await;
        let mut env = vonage_env(&base);
        env.push(("PHONE_CODE_COOLDOWN", "1s"));
        env.extend(store);
        env.extend(extra);
        (spawn_app_with(&env).await, fake)
    }

    /// A reset by SMS sets the new password and ends **every** session; the code works
    /// once (its retry changes nothing); a wrong code is the same answer as no code.
    async fn a_reset_ends_every_session(store: &[(&str, &str)]) {
        let (app, fake) = spawn(store, &[]).await;
        let first = verified_user(&app, &fake, "forgetful", PHONE).await;
        let second = app.login_ok("forgetful", PASSWORD).await;
        // Past the code-request cooldown of the verification.
        tokio::time::sleep(Duration::from_millis(1100)).await;

        let asked = request_reset(&app, "Forgetful").await;
        assert_eq!(asked.status(), StatusCode::ACCEPTED);
        let code = nth_reset_code(&fake, PHONE, 1).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let refused = confirm_reset(&app, "forgetful", wrong, NEW_PASSWORD).await;
        let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(
            problem["type"], "urn:jwt-todo:problem:wrong-code",
            "{problem}"
        );
        assert_eq!(
            app.me(&first.access).await.status(),
            StatusCode::OK,
            "nothing changed"
        );

        let reset = confirm_reset(&app, "forgetful", &code, NEW_PASSWORD).await;
        assert_eq!(reset.status(), StatusCode::NO_CONTENT);
        for tokens in [&first, &second] {
            assert_unauthorized(app.me(&tokens.access).await, Some("invalid_token")).await;
            assert_unauthorized(app.refresh(&tokens.refresh).await, Some("invalid_token")).await;
        }
        assert_eq!(
            app.login("forgetful", PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let after = app.login_ok("forgetful", NEW_PASSWORD).await;

        // The spent code again (a retry whose answer was lost) answers the same and
        // changes nothing: the new session lives, the password stays.
        let again = confirm_reset(&app, "forgetful", &code, "yet another passphrase").await;
        assert_eq!(again.status(), StatusCode::NO_CONTENT);
        assert_eq!(app.me(&after.access).await.status(), StatusCode::OK);
        app.login_ok("forgetful", NEW_PASSWORD).await;
    }

    #[tokio::test]
    async fn a_reset_ends_every_session_in_the_embedded_store() {
        a_reset_ends_every_session(&[]).await;
    }

    #[tokio::test]
    async fn a_reset_ends_every_session_over_redis() {
        let redis = start_redis().await;
        a_reset_ends_every_session(&[("REDIS_URL", &redis.url)]).await;
    }

    /// The status, the headers that could differ and the body of an answer.
    async fn answer(response: reqwest::Response) -> (StatusCode, Option<String>, Value) {
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, content_type, response.json().await.expect("json"))
    }

    /// Whoever a request names (a verified account, an unverified one, nobody, not even a
    /// valid name), the answer is the same; so is a confirmation's for nobody and for a
    /// wrong code. Only the verified account is texted.
    async fn reset_answers_tell_nothing(store: &[(&str, &str)]) {
        let (app, fake) = spawn(store, &[]).await;
        verified_user(&app, &fake, "known", PHONE).await;
        app.new_user_with("unverified", Some("+4915112345679"))
            .await;
        tokio::time::sleep(Duration::from_millis(1100)).await;

        let mut answers = Vec::new();
        for name in ["known", "unverified", "nobody-here", "not a name!"] {
            answers.push(answer(request_reset(&app, name).await).await);
        }
        for other in &answers[1..] {
            assert_eq!(other, &answers[0]);
        }
        assert_eq!(answers[0].0, StatusCode::ACCEPTED);
        nth_reset_code(&fake, PHONE, 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            fake.requests().len(),
            1,
            "only the verified number is texted"
        );

        let nobody = answer(confirm_reset(&app, "nobody-here", "123456", NEW_PASSWORD).await).await;
        let unverified =
            answer(confirm_reset(&app, "unverified", "123456", NEW_PASSWORD).await).await;
        let code = reset_codes(&fake, PHONE)[0].clone();
        let wrong = if code == "123456" { "654321" } else { "123456" };
        let known = answer(confirm_reset(&app, "known", wrong, NEW_PASSWORD).await).await;
        assert_eq!(nobody, known);
        assert_eq!(unverified, known);
        assert_eq!(known.0, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[tokio::test]
    async fn reset_answers_tell_nothing_in_the_embedded_store() {
        reset_answers_tell_nothing(&[]).await;
    }

    #[tokio::test]
    async fn reset_answers_tell_nothing_over_redis() {
        let redis = start_redis().await;
        reset_answers_tell_nothing(&[("REDIS_URL", &redis.url)]).await;
    }

    /// A code dies after its wrong tries, and one client's requests and confirmations are
    /// counted together: 429 past the limit, without any work.
    #[tokio::test]
    async fn guesses_are_bounded_per_code_and_per_client() {
        let (app, fake) = spawn(&[], &[("PASSWORD_RESET_CLIENT_LIMIT", "7")]).await;
        verified_user(&app, &fake, "guessed", PHONE).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            request_reset(&app, "guessed").await.status(),
            StatusCode::ACCEPTED
        );
        let code = nth_reset_code(&fake, PHONE, 1).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        // Five wrong tries (the default) kill the code: the right one is refused after.
        for _ in 0..5 {
            let refused = confirm_reset(&app, "guessed", wrong, NEW_PASSWORD).await;
            assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
        let dead = confirm_reset(&app, "guessed", &code, NEW_PASSWORD).await;
        assert_eq!(
            dead.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "the code is dead"
        );
        // That was the seventh counted: the eighth is over the per-client limit.
        let throttled = request_reset(&app, "guessed").await;
        assert!(throttled.headers().contains_key("retry-after"));
        let problem = assert_problem(throttled, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(
            problem["type"],
            "urn:jwt-todo:problem:too-many-password-resets"
        );
        app.login_ok("guessed", PASSWORD).await;
    }

    /// Anyone may ask for a reset in an account's name, from any number of addresses: the
    /// account gets a few codes a day (PASSWORD_RESET_USER_LIMIT), never its whole SMS
    /// budget, and its own todo SMS still go out.
    #[tokio::test]
    async fn strangers_asking_in_an_accounts_name_cannot_use_up_its_sms() {
        let (app, fake) = spawn(
            &[],
            &[
                ("PASSWORD_RESET_USER_LIMIT", "2"),
                ("PASSWORD_RESET_CLIENT_LIMIT", "1000"),
                ("SMS_USER_HOURLY_CAP", "4"),
            ],
        )
        .await;
        let owner = verified_user(&app, &fake, "targeted", PHONE).await;
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            assert_eq!(
                request_reset(&app, "targeted").await.status(),
                StatusCode::ACCEPTED
            );
        }
        nth_reset_code(&fake, PHONE, 2).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(reset_codes(&fake, PHONE).len(), 2, "two codes, not four");
        // The verification code and two reset codes: one SMS of the hour is left for a todo.
        assert_eq!(
            app.create_todo(&owner.access, "still texted")
                .await
                .status(),
            StatusCode::CREATED
        );
        eventually(Duration::from_secs(10), "the todo SMS", || async {
            fake.requests()
                .iter()
                .any(|r| r.text().contains("a todo was created"))
        })
        .await;
    }
}
