//! Tests of [`Authenticate`], over mocks of the ports it uses (see `testkit`).

use domain::TokenId;
use mockall::predicate::eq;

use super::*;
use crate::ports::StoreError;
use crate::usecases::testkit::*;

const TOKEN: &str = "access-token";

fn claims() -> AccessClaims {
    AccessClaims {
        user_id: USER_ID,
        session_id: SESSION_ID,
        token_id: TokenId::from_uuid(seq(42)),
        issued_at: domain::Timestamp::from_unix_seconds(1_699_999_900),
        expires_at: NOW.plus(ACCESS_TTL),
        auth_time: AUTH_TIME,
        client: None,
        amr: domain::AuthMethods::Password,
    }
}

fn authenticate(mut mocks: Mocks) -> Authenticate {
    mocks.ids = no_ids();
    Authenticate::new(&mocks.into_ports())
}

fn expect_claims(mocks: &mut Mocks) {
    mocks
        .tokens
        .expect_verify_access()
        .with(eq(TOKEN), eq(NOW))
        .times(1)
        .returning(|_, _| Ok(claims()));
}

fn expect_verify_fails(mocks: &mut Mocks, err: TokenError) {
    mocks
        .tokens
        .expect_verify_access()
        .times(1)
        .return_once(move |_, _| Err(err));
    mocks.sessions.expect_is_active().never();
}

#[tokio::test]
async fn valid_token_of_a_live_session_is_its_principal() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    mocks
        .sessions
        .expect_is_active()
        .with(eq(USER_ID), eq(SESSION_ID))
        .times(1)
        .returning(|_, _| Ok(true));

    let who = authenticate(mocks)
        .execute(TOKEN)
        .await
        .expect("authenticated");

    assert_eq!(who, principal());
}

#[tokio::test]
async fn expired_token_is_expired_without_a_store_lookup() {
    let mut mocks = Mocks::new();
    expect_verify_fails(&mut mocks, TokenError::Expired);

    let err = authenticate(mocks).execute(TOKEN).await;

    assert!(matches!(err, Err(AuthError::Expired)), "{err:?}");
}

#[tokio::test]
async fn invalid_token_is_invalid_without_a_store_lookup() {
    let mut mocks = Mocks::new();
    expect_verify_fails(&mut mocks, TokenError::Invalid);

    let err = authenticate(mocks).execute("forged").await;

    assert!(matches!(err, Err(AuthError::InvalidToken)), "{err:?}");
}

#[tokio::test]
async fn codec_failure_is_unexpected() {
    let mut mocks = Mocks::new();
    expect_verify_fails(&mut mocks, TokenError::Unexpected(anyhow::anyhow!("boom")));

    let err = authenticate(mocks).execute(TOKEN).await;

    assert!(matches!(err, Err(AuthError::Unexpected(_))), "{err:?}");
}

#[tokio::test]
async fn inactive_session_is_revoked() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    mocks
        .sessions
        .expect_is_active()
        .with(eq(USER_ID), eq(SESSION_ID))
        .times(1)
        .returning(|_, _| Ok(false));

    let err = authenticate(mocks).execute(TOKEN).await;

    assert!(matches!(err, Err(AuthError::Revoked)), "{err:?}");
}

#[tokio::test]
async fn store_unavailable_fails_closed() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    mocks
        .sessions
        .expect_is_active()
        .times(1)
        .returning(|_, _| Err(unavailable()));

    let err = authenticate(mocks).execute(TOKEN).await;

    assert!(matches!(err, Err(AuthError::Unavailable(_))), "{err:?}");
}

#[tokio::test]
async fn store_failure_fails_closed() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    mocks
        .sessions
        .expect_is_active()
        .times(1)
        .returning(|_, _| Err(unexpected()));

    let err = authenticate(mocks).execute(TOKEN).await;

    assert!(matches!(err, Err(AuthError::Unexpected(_))), "{err:?}");
}

fn identify_finding(found: Result<ActiveUser, StoreError>) -> Authenticate {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    mocks
        .sessions
        .expect_active_user()
        .with(eq(USER_ID), eq(SESSION_ID))
        .times(1)
        .return_once(move |_, _| found);
    // One round trip: no separate session check, no separate profile read.
    mocks.sessions.expect_is_active().never();
    mocks.users.expect_find_by_id().never();
    authenticate(mocks)
}

#[tokio::test]
async fn identify_returns_the_principal_with_its_user_in_one_store_call() {
    let caller = identify_finding(Ok(ActiveUser::Active(user())))
        .identify(TOKEN)
        .await
        .expect("identified");

    assert_eq!(
        caller,
        Caller {
            principal: principal(),
            user: user()
        }
    );
}

#[tokio::test]
async fn identify_refuses_a_revoked_session() {
    let err = identify_finding(Ok(ActiveUser::Revoked))
        .identify(TOKEN)
        .await;

    assert!(matches!(err, Err(AuthError::Revoked)), "{err:?}");
}

#[tokio::test]
async fn identify_refuses_a_session_whose_user_is_gone() {
    let err = identify_finding(Ok(ActiveUser::UserGone))
        .identify(TOKEN)
        .await;

    assert!(matches!(err, Err(AuthError::UserGone)), "{err:?}");
}

#[tokio::test]
async fn identify_fails_closed_when_the_store_is_unavailable() {
    let err = identify_finding(Err(unavailable())).identify(TOKEN).await;

    assert!(matches!(err, Err(AuthError::Unavailable(_))), "{err:?}");
}

#[tokio::test]
async fn identify_checks_the_token_before_the_store() {
    let mut mocks = Mocks::new();
    expect_verify_fails(&mut mocks, TokenError::Invalid);
    mocks.sessions.expect_active_user().never();

    let err = authenticate(mocks).identify("forged").await;

    assert!(matches!(err, Err(AuthError::InvalidToken)), "{err:?}");
}
