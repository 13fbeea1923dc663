//! Tests of [`Login`], over mocks of the ports it uses (see `testkit`).

use domain::{AccessClaims, PasswordHash, RefreshClaims, User};
use mockall::Sequence;
use mockall::predicate::eq;

use super::*;
use crate::ports::HashError;
use crate::ports::{MockLoginThrottle, StoreError, TokenError};
use crate::usecases::testkit::*;

const CLIENT: &str = "203.0.113.7";

fn request(username: &str, password: &str) -> LoginRequest {
    LoginRequest {
        username: username.into(),
        password: password.into(),
        user_agent: Some("  Mozilla/5.0\r\n (X11)  ".into()),
        client: CLIENT.parse().expect("valid ip"),
        oauth_client: None,
    }
}

const MAX_SESSIONS: u32 = 7;

fn caps() -> Limits {
    Limits {
        max_sessions_per_user: MAX_SESSIONS,
        ..Limits::default()
    }
}

/// Ids for a login that stops before opening a session: only the attempt's.
fn attempt_id_only() -> crate::ports::MockIdGenerator {
    let mut ids = crate::ports::MockIdGenerator::new();
    ids.expect_new_uuid().times(1).returning(|| seq(1));
    ids
}

fn limits() -> ThrottleLimits {
    ThrottleLimits {
        pair: crate::ports::WindowLimit {
            max: 3,
            window: std::time::Duration::from_secs(60),
        },
        client: crate::ports::WindowLimit {
            max: 30,
            window: std::time::Duration::from_secs(600),
        },
    }
}

/// A throttle that admits every attempt and takes any settlement: for the tests
/// about what happens after admission. The throttle's own tests set theirs.
fn admitting() -> MockLoginThrottle {
    let mut throttle = MockLoginThrottle::new();
    throttle
        .expect_admit()
        .returning(|_, _| Ok(Admission::Admitted));
    throttle.expect_settle().returning(|_, _, _| Ok(()));
    throttle
}

/// Login over `mocks`, with an admitting throttle.
fn login(mut mocks: Mocks) -> Login {
    mocks.throttle = admitting();
    throttled_login(mocks)
}

/// Login over `mocks`, throttle included.
fn throttled_login(mocks: Mocks) -> Login {
    let ports = mocks.into_ports();
    Login::new(&ports, policy(), limits(), caps(), audit(&ports))
}

fn expect_user(mocks: &mut Mocks, found: Option<User>) {
    mocks
        .users
        .expect_find_by_username()
        .withf(|name| name.as_str() == "alice")
        .times(1)
        .return_once(move |_| Ok(found));
}

fn expect_verify(mocks: &mut Mocks, expected: Option<PasswordHash>, outcome: bool) {
    mocks
        .hasher
        .expect_verify()
        .withf(move |password, hash| password.expose() == PASSWORD && *hash == expected)
        .times(1)
        .returning(move |_, _| Ok(outcome));
}

fn expect_no_issue(mocks: &mut Mocks) {
    mocks.tokens.expect_issue_access().never();
    mocks.tokens.expect_issue_refresh().never();
    mocks.sessions.expect_create().never();
}

#[tokio::test]
async fn success_opens_a_session_and_signs_a_pair_for_it() {
    let mut mocks = Mocks::new();
    // The username is case-folded before the lookup.
    expect_user(&mut mocks, Some(user()));
    expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);

    // seq(1) names the throttle attempt.
    let session_id = SessionId::from_uuid(seq(2));
    let refresh_jti = TokenId::from_uuid(seq(3));
    let access_jti = TokenId::from_uuid(seq(4));
    let session_expiry = NOW.plus(REFRESH_TTL);

    // Both tokens are signed before anything is stored.
    let mut order = Sequence::new();
    mocks
        .tokens
        .expect_issue_access()
        .with(eq(AccessClaims {
            user_id: USER_ID,
            session_id,
            token_id: access_jti,
            issued_at: NOW,
            expires_at: NOW.plus(ACCESS_TTL),
            auth_time: NOW,
            client: None,
            amr: domain::AuthMethods::Password,
        }))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok("access-token".into()));
    mocks
        .tokens
        .expect_issue_refresh()
        .with(eq(RefreshClaims {
            user_id: USER_ID,
            session_id,
            token_id: refresh_jti,
            issued_at: NOW,
            expires_at: session_expiry,
            auth_time: NOW,
            client: None,
            amr: domain::AuthMethods::Password,
        }))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok("refresh-token".into()));
    let stored = Captured::new();
    let record = stored.clone();
    mocks
        .sessions
        .expect_create()
        .times(1)
        .in_sequence(&mut order)
        .withf(|_, max| *max == MAX_SESSIONS)
        .returning(move |session, _| {
            record.set(session);
            Ok(Some(0))
        });

    let pair = login(mocks)
        .execute(request("Alice", PASSWORD))
        .await
        .expect("login succeeds")
        .into_logged_in()
        .expect("no second factor")
        .pair;

    assert_eq!(
        stored.get(),
        Session {
            id: session_id,
            user_id: USER_ID,
            refresh_jti,
            previous_jti: None,
            created_at: NOW,
            refreshed_at: NOW,
            expires_at: session_expiry,
            user_agent: Some("Mozilla/5.0 (X11)".into()),
            amr: domain::AuthMethods::Password,
        }
    );
    assert_eq!(pair.access_token, "access-token");
    assert_eq!(pair.refresh_token, "refresh-token");
    assert_eq!(pair.session_id, session_id);
    assert_eq!(pair.issued_at, NOW);
    assert_eq!(pair.access_expires_at, NOW.plus(ACCESS_TTL));
    assert_eq!(pair.refresh_expires_at, session_expiry);
}

#[tokio::test]
async fn access_token_never_outlives_the_session() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
    mocks
        .tokens
        .expect_issue_access()
        .withf(|claims| claims.expires_at == NOW.plus(std::time::Duration::from_secs(60)))
        .times(1)
        .returning(|_| Ok("a".into()));
    mocks
        .tokens
        .expect_issue_refresh()
        .times(1)
        .returning(|_| Ok("r".into()));
    mocks
        .sessions
        .expect_create()
        .times(1)
        .returning(|_, _| Ok(Some(0)));
    let short = TokenPolicy {
        access_ttl: std::time::Duration::from_secs(3600),
        refresh_ttl: std::time::Duration::from_secs(60),
        ..TokenPolicy::default()
    };

    mocks.throttle = admitting();
    let pair = {
        let ports = mocks.into_ports();
        Login::new(&ports, short, limits(), caps(), audit(&ports))
    }
    .execute(request("alice", PASSWORD))
    .await
    .expect("login succeeds")
    .into_logged_in()
    .expect("no second factor")
    .pair;

    assert_eq!(pair.access_expires_at, pair.refresh_expires_at);
}

#[tokio::test]
async fn missing_user_agent_is_stored_as_none() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
    mocks
        .tokens
        .expect_issue_access()
        .returning(|_| Ok("a".into()));
    mocks
        .tokens
        .expect_issue_refresh()
        .returning(|_| Ok("r".into()));
    mocks
        .sessions
        .expect_create()
        .withf(|session, _| session.user_agent.is_none())
        .times(1)
        .returning(|_, _| Ok(Some(0)));

    let mut req = request("alice", PASSWORD);
    req.user_agent = Some(" \t\r\n".into());
    login(mocks)
        .execute(req)
        .await
        .expect("login succeeds")
        .into_logged_in()
        .expect("no second factor");
}

#[tokio::test]
async fn wrong_password_is_refused_without_a_session() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), false);
    expect_no_issue(&mut mocks);
    mocks.ids = attempt_id_only();

    let err = login(mocks).execute(request("alice", PASSWORD)).await;

    assert!(
        matches!(err, Err(LoginError::InvalidCredentials)),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_user_still_costs_a_hash_against_none() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, None);
    // Timing equality: the hasher runs, against the dummy hash.
    expect_verify(&mut mocks, None, false);
    expect_no_issue(&mut mocks);
    mocks.ids = attempt_id_only();

    let err = login(mocks).execute(request("alice", PASSWORD)).await;

    assert!(
        matches!(err, Err(LoginError::InvalidCredentials)),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_user_is_refused_even_if_the_hasher_said_yes() {
    // Defence in depth: no user means no login, whatever the dummy verify returned.
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, None);
    expect_verify(&mut mocks, None, true);
    expect_no_issue(&mut mocks);
    mocks.ids = attempt_id_only();

    let err = login(mocks).execute(request("alice", PASSWORD)).await;

    assert!(
        matches!(err, Err(LoginError::InvalidCredentials)),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_username_is_verified_against_none_without_a_lookup() {
    for bad in ["al", "al ice", "ålice", &"a".repeat(65)] {
        let mut mocks = Mocks::new();
        mocks.users.expect_find_by_username().never();
        expect_verify(&mut mocks, None, false);
        expect_no_issue(&mut mocks);
        mocks.ids = attempt_id_only();

        let err = login(mocks).execute(request(bad, PASSWORD)).await;

        assert!(
            matches!(err, Err(LoginError::InvalidCredentials)),
            "{bad}: {err:?}"
        );
    }
}

#[tokio::test]
async fn over_long_password_is_refused_without_hashing() {
    let mut mocks = Mocks::new();
    mocks.users.expect_find_by_username().never();
    mocks.hasher.expect_verify().never();
    expect_no_issue(&mut mocks);
    mocks.ids = attempt_id_only();

    let err = login(mocks)
        .execute(request("alice", &"x".repeat(PasswordInput::MAX_LEN + 1)))
        .await;

    assert!(
        matches!(err, Err(LoginError::InvalidCredentials)),
        "{err:?}"
    );
}

#[tokio::test]
async fn empty_password_is_refused_without_hashing() {
    let mut mocks = Mocks::new();
    mocks.users.expect_find_by_username().never();
    mocks.hasher.expect_verify().never();
    expect_no_issue(&mut mocks);
    mocks.ids = attempt_id_only();

    let err = login(mocks).execute(request("alice", "")).await;

    assert!(
        matches!(err, Err(LoginError::InvalidCredentials)),
        "{err:?}"
    );
}

#[tokio::test]
async fn password_at_the_length_bound_is_still_checked() {
    let long = "x".repeat(PasswordInput::MAX_LEN);
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    let expected = long.clone();
    mocks
        .hasher
        .expect_verify()
        .withf(move |password, hash| password.expose() == expected && hash.is_some())
        .times(1)
        .returning(|_, _| Ok(false));
    expect_no_issue(&mut mocks);

    let err = login(mocks).execute(request("alice", &long)).await;

    assert!(
        matches!(err, Err(LoginError::InvalidCredentials)),
        "{err:?}"
    );
}

#[tokio::test]
async fn store_unavailable_on_lookup_is_unavailable() {
    let mut mocks = Mocks::new();
    mocks
        .users
        .expect_find_by_username()
        .times(1)
        .returning(|_| Err(unavailable()));
    mocks.hasher.expect_verify().never();
    expect_no_issue(&mut mocks);

    let err = login(mocks).execute(request("alice", PASSWORD)).await;

    assert!(matches!(err, Err(LoginError::Unavailable(_))), "{err:?}");
}

#[tokio::test]
async fn store_failure_on_lookup_is_unexpected() {
    let mut mocks = Mocks::new();
    mocks
        .users
        .expect_find_by_username()
        .times(1)
        .returning(|_| Err(unexpected()));
    mocks.hasher.expect_verify().never();
    expect_no_issue(&mut mocks);

    let err = login(mocks).execute(request("alice", PASSWORD)).await;

    assert!(matches!(err, Err(LoginError::Unexpected(_))), "{err:?}");
}

#[tokio::test]
async fn store_unavailable_on_session_create_is_unavailable() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
    mocks
        .tokens
        .expect_issue_access()
        .times(1)
        .returning(|_| Ok("a".into()));
    mocks
        .tokens
        .expect_issue_refresh()
        .times(1)
        .returning(|_| Ok("r".into()));
    mocks
        .sessions
        .expect_create()
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable(anyhow::anyhow!("down"))));

    let err = login(mocks).execute(request("alice", PASSWORD)).await;

    assert!(matches!(err, Err(LoginError::Unavailable(_))), "{err:?}");
}

#[tokio::test]
async fn overloaded_hasher_is_overloaded() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    mocks
        .hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Err(HashError::Overloaded));
    expect_no_issue(&mut mocks);

    let err = login(mocks).execute(request("alice", PASSWORD)).await;

    assert!(matches!(err, Err(LoginError::Overloaded)), "{err:?}");
}

#[tokio::test]
async fn failing_hasher_is_unexpected() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    mocks
        .hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Err(HashError::Unexpected(anyhow::anyhow!("boom"))));
    expect_no_issue(&mut mocks);

    let err = login(mocks).execute(request("alice", PASSWORD)).await;

    assert!(matches!(err, Err(LoginError::Unexpected(_))), "{err:?}");
}

#[tokio::test]
async fn signing_failure_is_unexpected_and_creates_no_session() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
    mocks
        .tokens
        .expect_issue_access()
        .times(1)
        .returning(|_| Ok("a".into()));
    mocks
        .tokens
        .expect_issue_refresh()
        .times(1)
        .returning(|_| Err(TokenError::Unexpected(anyhow::anyhow!("no key"))));
    mocks.sessions.expect_create().never();

    let err = login(mocks).execute(request("alice", PASSWORD)).await;

    assert!(matches!(err, Err(LoginError::Unexpected(_))), "{err:?}");
}

#[tokio::test]
async fn access_signing_failure_creates_no_session() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
    mocks
        .tokens
        .expect_issue_access()
        .times(1)
        .returning(|_| Err(TokenError::Unexpected(anyhow::anyhow!("no key"))));
    mocks.tokens.expect_issue_refresh().never();
    mocks.sessions.expect_create().never();

    let err = login(mocks).execute(request("alice", PASSWORD)).await;

    assert!(matches!(err, Err(LoginError::Unexpected(_))), "{err:?}");
}

fn alice_from(client: &str) -> LoginAttempt {
    LoginAttempt {
        id: seq(1),
        username: Some(Username::parse("alice").expect("valid")),
        client: ClientAddress::from_ip(client.parse().expect("valid ip")),
    }
}

/// Expects exactly one admission of `attempt` under the configured limits.
fn expect_admit(mocks: &mut Mocks, attempt: LoginAttempt, admission: Admission) {
    mocks
        .throttle
        .expect_admit()
        .withf(move |a, l| *a == attempt && *l == limits())
        .times(1)
        .returning(move |_, _| Ok(admission));
}

fn expect_settle(mocks: &mut Mocks, attempt: LoginAttempt, settlement: Option<Settlement>) {
    match settlement {
        None => {
            mocks.throttle.expect_settle().never();
        }
        Some(settlement) => {
            mocks
                .throttle
                .expect_settle()
                .withf(move |a, l, s| *a == attempt && *l == limits() && *s == settlement)
                .times(1)
                .returning(|_, _, _| Ok(()));
        }
    }
}

fn expect_success_after_verify(mocks: &mut Mocks) {
    mocks
        .tokens
        .expect_issue_access()
        .times(1)
        .returning(|_| Ok("a".into()));
    mocks
        .tokens
        .expect_issue_refresh()
        .times(1)
        .returning(|_| Ok("r".into()));
    mocks
        .sessions
        .expect_create()
        .times(1)
        .returning(|_, _| Ok(Some(0)));
}

#[tokio::test]
async fn a_refused_attempt_costs_no_lookup_and_no_hash() {
    let mut mocks = Mocks::new();
    let retry_after = std::time::Duration::from_secs(42);
    expect_admit(
        &mut mocks,
        alice_from(CLIENT),
        Admission::Refused { retry_after },
    );
    mocks.users.expect_find_by_username().never();
    mocks.hasher.expect_verify().never();
    mocks.throttle.expect_settle().never();
    expect_no_issue(&mut mocks);
    mocks.ids = attempt_id_only();

    let err = throttled_login(mocks)
        .execute(request("Alice", PASSWORD))
        .await;

    assert!(
        matches!(err, Err(LoginError::Throttled { retry_after: r }) if r == retry_after),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_throttle_is_asked_first_and_a_success_clears_the_pair() {
    let mut mocks = Mocks::new();
    let mut order = Sequence::new();
    mocks
        .throttle
        .expect_admit()
        .withf(|a, l| *a == alice_from(CLIENT) && *l == limits())
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(Admission::Admitted));
    mocks
        .users
        .expect_find_by_username()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(Some(user())));
    mocks
        .hasher
        .expect_verify()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(true));
    expect_success_after_verify(&mut mocks);
    mocks
        .throttle
        .expect_settle()
        .withf(|a, _, s| *a == alice_from(CLIENT) && *s == Settlement::Succeeded)
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(()));

    throttled_login(mocks)
        .execute(request("ALICE", PASSWORD))
        .await
        .expect("login succeeds")
        .into_logged_in()
        .expect("no second factor");
}

#[tokio::test]
async fn a_wrong_password_stays_counted() {
    let mut mocks = Mocks::new();
    expect_admit(&mut mocks, alice_from(CLIENT), Admission::Admitted);
    expect_user(&mut mocks, Some(user()));
    expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), false);
    expect_settle(&mut mocks, alice_from(CLIENT), Some(Settlement::Failed));
    expect_no_issue(&mut mocks);

    let err = throttled_login(mocks)
        .execute(request("alice", PASSWORD))
        .await;

    assert!(
        matches!(err, Err(LoginError::InvalidCredentials)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unknown_user_is_counted_exactly_as_a_known_one() {
    // Same key (the name, not whether it exists), same admission, nothing given back.
    let mut mocks = Mocks::new();
    expect_admit(&mut mocks, alice_from(CLIENT), Admission::Admitted);
    expect_user(&mut mocks, None);
    expect_verify(&mut mocks, None, false);
    expect_settle(&mut mocks, alice_from(CLIENT), Some(Settlement::Failed));
    expect_no_issue(&mut mocks);
    mocks.ids = attempt_id_only();

    let err = throttled_login(mocks)
        .execute(request("alice", PASSWORD))
        .await;

    assert!(
        matches!(err, Err(LoginError::InvalidCredentials)),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_names_share_one_pair_per_client_and_ipv6_counts_per_64() {
    let mut mocks = Mocks::new();
    let attempt = LoginAttempt {
        id: seq(1),
        username: None,
        client: ClientAddress::from_ip("2001:db8:1:2::1".parse().expect("ip")),
    };
    expect_admit(&mut mocks, attempt.clone(), Admission::Admitted);
    expect_verify(&mut mocks, None, false);
    expect_settle(&mut mocks, attempt, Some(Settlement::Failed));
    expect_no_issue(&mut mocks);
    mocks.ids = attempt_id_only();
    let mut req = request("not a name", PASSWORD);
    req.client = "2001:db8:1:2:ffff::9".parse().expect("ip");

    let err = throttled_login(mocks).execute(req).await;

    assert!(
        matches!(err, Err(LoginError::InvalidCredentials)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_overloaded_hasher_gives_the_attempt_back() {
    let mut mocks = Mocks::new();
    expect_admit(&mut mocks, alice_from(CLIENT), Admission::Admitted);
    expect_user(&mut mocks, Some(user()));
    mocks
        .hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Err(HashError::Overloaded));
    expect_settle(&mut mocks, alice_from(CLIENT), Some(Settlement::Unjudged));
    expect_no_issue(&mut mocks);

    let err = throttled_login(mocks)
        .execute(request("alice", PASSWORD))
        .await;

    assert!(matches!(err, Err(LoginError::Overloaded)), "{err:?}");
}

#[tokio::test]
async fn a_store_that_cannot_count_fails_closed_without_hashing() {
    for (failure, unavailable_expected) in [(unavailable(), true), (unexpected(), false)] {
        let mut mocks = Mocks::new();
        mocks
            .throttle
            .expect_admit()
            .times(1)
            .return_once(move |_, _| Err(failure));
        mocks.throttle.expect_settle().never();
        mocks.users.expect_find_by_username().never();
        mocks.hasher.expect_verify().never();
        expect_no_issue(&mut mocks);

        let err = throttled_login(mocks)
            .execute(request("alice", PASSWORD))
            .await;

        if unavailable_expected {
            assert!(matches!(err, Err(LoginError::Unavailable(_))), "{err:?}");
        } else {
            assert!(matches!(err, Err(LoginError::Unexpected(_))), "{err:?}");
        }
    }
}

#[tokio::test]
async fn a_failed_settlement_does_not_undo_a_success() {
    let mut mocks = Mocks::new();
    expect_admit(&mut mocks, alice_from(CLIENT), Admission::Admitted);
    expect_user(&mut mocks, Some(user()));
    expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
    expect_success_after_verify(&mut mocks);
    mocks
        .throttle
        .expect_settle()
        .times(1)
        .returning(|_, _, _| Err(unavailable()));

    let logged_in = throttled_login(mocks)
        .execute(request("alice", PASSWORD))
        .await
        .expect("login succeeds")
        .into_logged_in()
        .expect("no second factor");

    assert_eq!(logged_in.pair.access_token, "a");
}

#[tokio::test]
async fn a_store_failure_after_admission_is_never_a_counted_failure() {
    // The 503 case of a stalled store: the attempt was admitted, then the lookup
    // failed. It is settled as unjudged, never as a failed password.
    let mut mocks = Mocks::new();
    expect_admit(&mut mocks, alice_from(CLIENT), Admission::Admitted);
    mocks
        .users
        .expect_find_by_username()
        .times(1)
        .returning(|_| Err(unavailable()));
    mocks.hasher.expect_verify().never();
    expect_settle(&mut mocks, alice_from(CLIENT), Some(Settlement::Unjudged));
    expect_no_issue(&mut mocks);
    mocks.ids = attempt_id_only();

    let err = throttled_login(mocks)
        .execute(request("alice", PASSWORD))
        .await;

    assert!(matches!(err, Err(LoginError::Unavailable(_))), "{err:?}");
}

#[tokio::test]
async fn sessions_ended_to_stay_under_the_cap_are_reported() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
    mocks
        .tokens
        .expect_issue_access()
        .returning(|_| Ok("a".into()));
    mocks
        .tokens
        .expect_issue_refresh()
        .returning(|_| Ok("r".into()));
    mocks
        .sessions
        .expect_create()
        .withf(|_, max| *max == MAX_SESSIONS)
        .times(1)
        .returning(|_, _| Ok(Some(2)));

    let logged_in = login(mocks)
        .execute(request("alice", PASSWORD))
        .await
        .expect("login succeeds")
        .into_logged_in()
        .expect("no second factor");

    assert_eq!(logged_in.evicted, 2);
}

#[test]
fn request_debug_hides_the_password() {
    let printed = format!("{:?}", request("alice", "hunter2hunter2"));
    assert!(printed.contains("alice"));
    assert!(!printed.contains("hunter2"));
    // A rejected name (a password typed into the wrong field) is never printed either.
    let printed = format!("{:?}", request("my secret pass\n", "x"));
    assert!(!printed.contains("secret"), "{printed}");
}
