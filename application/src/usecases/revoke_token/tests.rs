//! Tests of [`RevokeToken`], over mocks of the ports it uses (see `testkit`).

use domain::{AccessClaims, RefreshClaims, TokenId};
use mockall::predicate::{always, eq};

use super::*;
use crate::ports::TokenError;
use crate::usecases::testkit::*;

const TOKEN: &str = "some-token";

fn client(id: &str) -> ClientId {
    ClientId::parse(id).expect("as set up")
}

fn access(client: Option<ClientId>) -> AccessClaims {
    AccessClaims {
        user_id: USER_ID,
        session_id: SESSION_ID,
        token_id: TokenId::from_uuid(seq(9)),
        issued_at: NOW,
        expires_at: NOW.plus(ACCESS_TTL),
        auth_time: AUTH_TIME,
        client,
        amr: domain::AuthMethods::Password,
    }
}

fn refresh(client: Option<ClientId>) -> RefreshClaims {
    RefreshClaims {
        user_id: USER_ID,
        session_id: SESSION_ID,
        token_id: REFRESH_JTI,
        issued_at: NOW,
        expires_at: NOW.plus(REFRESH_TTL),
        auth_time: AUTH_TIME,
        client,
        amr: domain::AuthMethods::Password,
    }
}

fn revoke(mut mocks: Mocks) -> RevokeToken {
    mocks.ids = no_ids();
    let ports = mocks.into_ports();
    RevokeToken::new(&ports, policy(), audit(&ports))
}

fn only_a_refresh_token(mocks: &mut Mocks, claims: RefreshClaims) {
    mocks
        .tokens
        .expect_verify_access()
        .returning(|_, _| Err(TokenError::Invalid));
    mocks
        .tokens
        .expect_verify_refresh()
        .return_once(move |_, _| Ok(claims));
}

#[tokio::test]
async fn an_access_token_of_the_client_ends_its_session() {
    let mut mocks = Mocks::new();
    mocks
        .tokens
        .expect_verify_access()
        .returning(|_, _| Ok(access(Some(client("cli")))));
    mocks
        .sessions
        .expect_revoke()
        .with(eq(USER_ID), eq(SESSION_ID))
        .times(1)
        .returning(|_, _| Ok(true));

    let done = revoke(mocks)
        .execute(TOKEN, None, client("cli"), None)
        .await
        .expect("as set up");

    assert_eq!(done, Revoked::Session { reused: false });
}

#[tokio::test]
async fn a_refresh_token_ends_its_session_and_a_spent_one_counts_as_reuse() {
    for (outcome, expected) in [
        (EndOutcome::Ended(1), Revoked::Session { reused: false }),
        (EndOutcome::ReuseDetected, Revoked::Session { reused: true }),
        (EndOutcome::NotFound, Revoked::Nothing),
    ] {
        let mut mocks = Mocks::new();
        only_a_refresh_token(&mut mocks, refresh(Some(client("cli"))));
        mocks
            .sessions
            .expect_end_with_refresh()
            .with(always(), eq(SessionScope::This))
            .times(1)
            .return_once(move |_, _| Ok(outcome));

        let done = revoke(mocks)
            .execute(TOKEN, Some(TokenKind::Refresh), client("cli"), None)
            .await
            .expect("as set up");

        assert_eq!(done, expected);
    }
}

#[tokio::test]
async fn a_token_of_another_client_or_of_the_services_own_login_is_refused_untouched() {
    for owner in [Some(client("other")), None] {
        let mut mocks = Mocks::new();
        only_a_refresh_token(&mut mocks, refresh(owner));
        mocks.sessions.expect_end_with_refresh().never();
        mocks.sessions.expect_revoke().never();

        let err = revoke(mocks)
            .execute(TOKEN, None, client("cli"), None)
            .await;

        assert!(matches!(err, Err(RevokeTokenError::OtherClient)), "{err:?}");
    }
}

#[tokio::test]
async fn anything_else_is_nothing_to_revoke() {
    let mut mocks = Mocks::new();
    mocks
        .tokens
        .expect_verify_access()
        .returning(|_, _| Err(TokenError::Expired));
    mocks
        .tokens
        .expect_verify_refresh()
        .returning(|_, _| Err(TokenError::Invalid));

    let done = revoke(mocks)
        .execute(TOKEN, None, client("cli"), None)
        .await
        .expect("as set up");

    assert_eq!(done, Revoked::Nothing);
}
