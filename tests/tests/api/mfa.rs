//! The second factor (TOTP), over HTTP, in both stores, with codes computed by `totp-rs`
//! as an authenticator app would: enrolling, the login's challenge and its completion, a
//! code and a recovery code each accepted once (also when two requests race), the
//! challenge no token and single use, failed codes throttled per account, disabling on a
//! fresh code only, renewing the recovery codes, what `GET /me/mfa` tells, `amr` in the
//! tokens and through refresh, and the trail.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::redis::start_redis;

/// The code an authenticator app shows for `secret` (base32), `offset` seconds from now.
pub fn app_code(secret: &str, offset: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).expect("base32"))
        .build()
        .expect("totp")
        .generate(now + offset)
        .to_string()
}

/// Enrols and confirms a TOTP factor for the caller: its secret and recovery codes.
pub async fn enable_totp(app: &TestApp, access: &str) -> (String, Vec<String>) {
    let enrolled = app
        .post_json("/me/mfa/totp", &json!({}), Some(access))
        .await;
    assert_eq!(enrolled.status(), StatusCode::CREATED);
    let enrolled: Value = enrolled.json().await.expect("json");
    let secret = enrolled["secret"].as_str().expect("secret").to_owned();
    let confirmed = app
        .post_json(
            "/me/mfa/totp/confirm",
            &json!({"code": app_code(&secret, 0)}),
            Some(access),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let confirmed: Value = confirmed.json().await.expect("json");
    let codes = confirmed["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    (secret, codes)
}

/// A password login that must answer a challenge: the challenge.
pub async fn challenge_of(app: &TestApp, username: &str) -> String {
    let response = app.login(username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert!(body.get("access_token").is_none(), "no tokens yet: {body}");
    body["challenge"].as_str().expect("challenge").to_owned()
}

async fn complete(app: &TestApp, challenge: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/login/mfa",
        &json!({"challenge": challenge, "code": code}),
        None,
    )
    .await
}

fn amr_of(access: &str) -> Value {
    let claims: Value = jsonwebtoken::dangerous::insecure_decode(access)
        .expect("payload")
        .claims;
    claims["amr"].clone()
}

async fn disable(app: &TestApp, access: &str, code: &str) -> reqwest::Response {
    app.client
        .delete(app.url("/me/mfa/totp"))
        .bearer_auth(access)
        .json(&json!({"code": code}))
        .send()
        .await
        .expect("request sent")
}

/// `GET /me/mfa`: the factor's state and the recovery codes left.
async fn status_of(app: &TestApp, access: &str) -> (String, u64) {
    let response = app
        .client
        .get(app.url("/me/mfa"))
        .bearer_auth(access)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    (
        body["totp"].as_str().expect("totp").to_owned(),
        body["recovery_codes_left"].as_u64().expect("count"),
    )
}

async fn kind_of(response: reqwest::Response, status: StatusCode) -> String {
    let problem = assert_problem(response, status).await;
    problem["type"].as_str().expect("type").to_owned()
}

async fn the_second_factor_guards_the_login(store: &[(&str, &str)]) {
    let app = spawn_app_with(store).await;
    let before = app.new_user("two-factor").await;
    assert_eq!(amr_of(&before.access), json!(["pwd"]));
    assert_eq!(status_of(&app, &before.access).await, ("off".into(), 0));

    let enrolled = app
        .post_json("/me/mfa/totp", &json!({}), Some(&before.access))
        .await;
    assert_eq!(enrolled.status(), StatusCode::CREATED);
    let enrolled: Value = enrolled.json().await.expect("json");
    let uri = enrolled["otpauth_uri"].as_str().expect("uri");
    assert!(
        uri.starts_with("otpauth://totp/jwt-todo:two-factor?"),
        "{uri}"
    );
    // Pending: the password alone still logs in, and a wrong first code enables nothing.
    assert_eq!(status_of(&app, &before.access).await, ("pending".into(), 0));
    app.login_ok("two-factor", PASSWORD).await;
    let wrong = app
        .post_json(
            "/me/mfa/totp/confirm",
            &json!({"code": "12345"}),
            Some(&before.access),
        )
        .await;
    assert!(
        kind_of(wrong, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .ends_with(":invalid-field")
    );

    let (secret, recovery) = enable_totp(&app, &before.access).await;
    assert_eq!(recovery.len(), 10);
    assert_eq!(status_of(&app, &before.access).await, ("on".into(), 10));
    let again = app
        .post_json("/me/mfa/totp", &json!({}), Some(&before.access))
        .await;
    assert!(
        kind_of(again, StatusCode::CONFLICT)
            .await
            .ends_with(":mfa-enabled")
    );
    // The sessions already open go on.
    assert_eq!(app.me(&before.access).await.status(), StatusCode::OK);

    let challenge = challenge_of(&app, "two-factor").await;
    // A challenge is no token.
    assert_unauthorized(app.me(&challenge).await, Some("invalid_token")).await;
    // The confirmation's code is spent: it does not log in, and the challenge survives.
    let reused = complete(&app, &challenge, &app_code(&secret, 0)).await;
    assert!(
        kind_of(reused, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .ends_with(":wrong-code")
    );
    let done = complete(&app, &challenge, &app_code(&secret, 30)).await;
    assert_eq!(done.status(), StatusCode::OK);
    let with_otp = tokens(done).await;
    assert_eq!(amr_of(&with_otp.access), json!(["pwd", "otp", "mfa"]));
    assert_eq!(app.me(&with_otp.access).await.status(), StatusCode::OK);
    // Through refresh, the session keeps how it began.
    let refreshed = tokens(app.refresh(&with_otp.refresh).await).await;
    assert_eq!(amr_of(&refreshed.access), json!(["pwd", "otp", "mfa"]));
    // A challenge works once.
    let twice = complete(&app, &challenge, &app_code(&secret, 30)).await;
    assert!(
        kind_of(twice, StatusCode::UNAUTHORIZED)
            .await
            .ends_with(":invalid-challenge")
    );
    let forged = complete(
        &app,
        &format!("{}0", &challenge[..challenge.len() - 1]),
        "123456",
    )
    .await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // A recovery code stands in for a code, once, in any case and spacing.
    let challenge = challenge_of(&app, "two-factor").await;
    let typed = recovery[0].to_uppercase().replace('-', " ");
    let recovered = complete(&app, &challenge, &typed).await;
    assert_eq!(recovered.status(), StatusCode::OK);
    assert_eq!(
        amr_of(&tokens(recovered).await.access),
        json!(["pwd", "otp", "mfa"])
    );
    assert_eq!(status_of(&app, &before.access).await, ("on".into(), 9));
    let challenge = challenge_of(&app, "two-factor").await;
    let spent = complete(&app, &challenge, &recovery[0]).await;
    assert!(
        kind_of(spent, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .ends_with(":wrong-code")
    );

    // Disabling needs a fresh code: the last one used is refused, a recovery code does it.
    let stale = disable(&app, &refreshed.access, &app_code(&secret, 30)).await;
    assert!(
        kind_of(stale, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .ends_with(":wrong-code")
    );
    assert_eq!(
        disable(&app, &refreshed.access, &recovery[1])
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let none = disable(&app, &refreshed.access, &recovery[2]).await;
    assert!(
        kind_of(none, StatusCode::NOT_FOUND)
            .await
            .ends_with(":not-found")
    );
    let plain = app.login_ok("two-factor", PASSWORD).await;
    assert_eq!(amr_of(&plain.access), json!(["pwd"]));
    assert_eq!(status_of(&app, &plain.access).await, ("off".into(), 0));

    // The trail tells the story, newest first.
    let events = app.items("/me/events?limit=1000", &plain.access).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in [
        "mfa_enabled",
        "mfa_challenged",
        "mfa_failed",
        "mfa_disabled",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert_eq!(kinds.first(), Some(&"login_succeeded"));
    let details: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "login_succeeded")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(details.contains(&"amr=pwd,otp,mfa"), "{details:?}");
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("amr=pwd,otp,mfa recovery_code codes_left=")),
        "{details:?}"
    );
}

#[tokio::test]
async fn the_second_factor_guards_the_login_in_the_embedded_store() {
    the_second_factor_guards_the_login(&[]).await;
}

#[tokio::test]
async fn the_second_factor_guards_the_login_over_redis() {
    let redis = start_redis().await;
    the_second_factor_guards_the_login(&[("REDIS_URL", &redis.url)]).await;
}

/// One code, two challenges, sent at once: one login, never two.
async fn a_code_wins_one_race(store: &[(&str, &str)]) {
    let app = spawn_app_with(store).await;
    let owner = app.new_user("racer").await;
    let (secret, _) = enable_totp(&app, &owner.access).await;
    let code = app_code(&secret, 30);
    let challenges = futures::future::join_all((0..4).map(|_| challenge_of(&app, "racer"))).await;
    let answers =
        futures::future::join_all(challenges.iter().map(|c| complete(&app, c, &code))).await;
    let statuses: Vec<StatusCode> = answers.iter().map(reqwest::Response::status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY].contains(s)),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_code_wins_one_race_in_the_embedded_store() {
    a_code_wins_one_race(&[]).await;
}

#[tokio::test]
async fn a_code_wins_one_race_over_redis() {
    let redis = start_redis().await;
    a_code_wins_one_race(&[("REDIS_URL", &redis.url)]).await;
}

/// Someone with the password gets a handful of guesses per window, counted per account
/// whoever guesses (new challenges do not reset it); right codes are not counted, and
/// other accounts are untouched.
async fn guesses_are_throttled_per_account(store: &[(&str, &str)]) {
    let app = spawn_app_with(store).await;
    let victim = app.new_user("guessed").await;
    let (secret, _) = enable_totp(&app, &victim.access).await;
    let bystander = app.new_user("bystander").await;
    let (other_secret, recovery) = enable_totp(&app, &bystander.access).await;
    // Right codes are not counted: the owner's own logins never use up the limit.
    for code in &recovery[..6] {
        let challenge = challenge_of(&app, "bystander").await;
        assert_eq!(
            complete(&app, &challenge, code).await.status(),
            StatusCode::OK
        );
    }
    let right = app_code(&secret, 30);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };

    // The confirmation was right, so it does not count; five wrong ones, each on a new
    // challenge, do.
    for attempt in 0..5 {
        let challenge = challenge_of(&app, "guessed").await;
        let answer = complete(&app, &challenge, wrong).await;
        assert_eq!(
            answer.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "attempt {attempt}"
        );
    }
    let challenge = challenge_of(&app, "guessed").await;
    let refused = complete(&app, &challenge, &right).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(
        kind_of(refused, StatusCode::TOO_MANY_REQUESTS)
            .await
            .ends_with(":too-many-codes")
    );

    let theirs = challenge_of(&app, "bystander").await;
    let fine = complete(&app, &theirs, &app_code(&other_secret, 30)).await;
    assert_eq!(fine.status(), StatusCode::OK);
}

#[tokio::test]
async fn guesses_are_throttled_per_account_in_the_embedded_store() {
    guesses_are_throttled_per_account(&[]).await;
}

#[tokio::test]
async fn guesses_are_throttled_per_account_over_redis() {
    let redis = start_redis().await;
    guesses_are_throttled_per_account(&[("REDIS_URL", &redis.url)]).await;
}

/// The password grant cannot carry a second factor: refused as a bad grant, no tokens.
#[tokio::test]
async fn the_password_grant_refuses_an_account_with_a_second_factor() {
    let app = crate::oauth::spawn_oauth_app(&[]).await;
    let owner = app.new_user("grantee").await;
    enable_totp(&app, &owner.access).await;
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "cli"),
            ("username", "grantee"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body.get("access_token").is_none());
}

/// A challenge issued on a password the owner has since changed completes nothing: the
/// owner who sees `mfa_challenged` in the trail and changes the password is safe at once.
async fn a_new_password_voids_pending_challenges(store: &[(&str, &str)]) {
    let app = spawn_app_with(store).await;
    let owner = app.new_user("changes-it").await;
    let (secret, _) = enable_totp(&app, &owner.access).await;
    let stolen = challenge_of(&app, "changes-it").await;
    let new_password = "a password the thief lacks";
    let changed = app
        .post_json(
            "/me/password",
            &json!({"current_password": PASSWORD, "new_password": new_password}),
            Some(&owner.access),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);

    let late = complete(&app, &stolen, &app_code(&secret, 30)).await;
    assert!(
        kind_of(late, StatusCode::UNAUTHORIZED)
            .await
            .ends_with(":invalid-challenge")
    );
    let response = app.login("changes-it", new_password).await;
    let fresh: Value = response.json().await.expect("json");
    let fresh = fresh["challenge"].as_str().expect("challenge");
    let done = complete(&app, fresh, &app_code(&secret, 30)).await;
    assert_eq!(done.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_new_password_voids_pending_challenges_in_the_embedded_store() {
    a_new_password_voids_pending_challenges(&[]).await;
}

#[tokio::test]
async fn a_new_password_voids_pending_challenges_over_redis() {
    let redis = start_redis().await;
    a_new_password_voids_pending_challenges(&[("REDIS_URL", &redis.url)]).await;
}

async fn renew(app: &TestApp, access: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/me/mfa/recovery-codes",
        &json!({"code": code}),
        Some(access),
    )
    .await
}

async fn codes_of(response: reqwest::Response) -> Vec<String> {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect()
}

/// A user whose confirmation answer was lost (or who used up or lost the codes) gets a
/// new set on a fresh code: the old set stops working in the same step, a spent code
/// renews nothing, two renewals racing on one recovery code make one set, and an account
/// without a factor has nothing to renew.
async fn recovery_codes_are_renewed_on_a_fresh_code(store: &[(&str, &str)]) {
    let app = spawn_app_with(store).await;
    let owner = app.new_user("renews").await;
    let (secret, old) = enable_totp(&app, &owner.access).await;
    // The confirmation's answer never arrived: retrying it cannot show the codes again.
    let retried = app
        .post_json(
            "/me/mfa/totp/confirm",
            &json!({"code": app_code(&secret, 30)}),
            Some(&owner.access),
        )
        .await;
    assert!(
        kind_of(retried, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .ends_with(":no-pending-code")
    );

    let fresh = app_code(&secret, 30);
    let new = codes_of(renew(&app, &owner.access, &fresh).await).await;
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)), "{new:?} vs {old:?}");
    // The code just spent renews nothing more (and the set stays the one answered).
    let again = renew(&app, &owner.access, &fresh).await;
    assert!(
        kind_of(again, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .ends_with(":wrong-code")
    );
    let challenge = challenge_of(&app, "renews").await;
    let stale = complete(&app, &challenge, &old[0]).await;
    assert!(
        kind_of(stale, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .ends_with(":wrong-code")
    );
    let logged_in = complete(&app, &challenge, &new[0]).await;
    assert_eq!(logged_in.status(), StatusCode::OK);
    assert_eq!(status_of(&app, &owner.access).await, ("on".into(), 9));

    // Two renewals racing on one recovery code: one new set, the other refused.
    let answers =
        futures::future::join_all((0..2).map(|_| renew(&app, &owner.access, &new[1]))).await;
    let statuses: Vec<StatusCode> = answers.iter().map(reqwest::Response::status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&StatusCode::UNPROCESSABLE_ENTITY),
        "{statuses:?}"
    );
    let mut winner = None;
    for answer in answers {
        if answer.status() == StatusCode::OK {
            winner = Some(codes_of(answer).await);
        }
    }
    let latest = winner.expect("one set");
    assert_eq!(status_of(&app, &owner.access).await, ("on".into(), 10));
    // The set before it is gone with it; the newest works.
    let challenge = challenge_of(&app, "renews").await;
    let replaced = complete(&app, &challenge, &new[2]).await;
    assert_eq!(replaced.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        complete(&app, &challenge, &latest[0]).await.status(),
        StatusCode::OK
    );

    let events = app.items("/me/events?limit=1000", &owner.access).await;
    let renewals: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "recovery_codes_renewed")
        .collect();
    assert_eq!(renewals.len(), 2, "{events:?}");
    assert!(
        renewals.iter().all(|e| e["detail"] == "codes=10"),
        "{renewals:?}"
    );

    let plain = app.new_user("no-factor").await;
    let nothing = renew(&app, &plain.access, "123456").await;
    assert!(
        kind_of(nothing, StatusCode::NOT_FOUND)
            .await
            .ends_with(":not-found")
    );
}

#[tokio::test]
async fn recovery_codes_are_renewed_on_a_fresh_code_in_the_embedded_store() {
    recovery_codes_are_renewed_on_a_fresh_code(&[]).await;
}

#[tokio::test]
async fn recovery_codes_are_renewed_on_a_fresh_code_over_redis() {
    let redis = start_redis().await;
    recovery_codes_are_renewed_on_a_fresh_code(&[("REDIS_URL", &redis.url)]).await;
}
