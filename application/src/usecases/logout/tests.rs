//! Tests of [`Logout`], over mocks of the ports it uses (see `testkit`).

use domain::{RefreshClaims, Timestamp, UserId};
use mockall::predicate::eq;

use super::*;
use crate::usecases::testkit::*;

const REFRESH: &str = "refresh-token";

fn logout(mut mocks: Mocks) -> Logout {
    mocks.ids = no_ids();
    let ports = mocks.into_ports();
    Logout::new(&ports, policy(), audit(&ports))
}

fn access() -> LogoutCredential {
    LogoutCredential::Access(principal())
}

fn refresh() -> LogoutCredential {
    LogoutCredential::Refresh(REFRESH.into())
}

/// The refresh token's claims name the session; no access token vouched for it.
fn expect_refresh_claims(mocks: &mut Mocks) {
    mocks
        .tokens
        .expect_verify_refresh()
        .with(eq(REFRESH), eq(NOW))
        .times(1)
        .returning(|_, _| {
            Ok(RefreshClaims {
                user_id: USER_ID,
                session_id: SESSION_ID,
                token_id: REFRESH_JTI,
                issued_at: Timestamp::from_unix_seconds(1_699_000_000),
                expires_at: NOW.plus(REFRESH_TTL),
                auth_time: AUTH_TIME,
                client: None,
                amr: domain::AuthMethods::Password,
            })
        });
}

fn expect_revoke(mocks: &mut Mocks, found: bool) {
    mocks
        .sessions
        .expect_revoke()
        .with(eq(USER_ID), eq(SESSION_ID))
        .times(1)
        .returning(move |_, _| Ok(found));
    mocks.sessions.expect_revoke_all().never();
}

fn expect_revoke_all(mocks: &mut Mocks, keep: Option<domain::SessionId>, ended: u64) {
    mocks
        .sessions
        .expect_revoke_all()
        .with(eq(USER_ID), eq(keep))
        .times(1)
        .returning(move |_, _| Ok(ended));
    mocks.sessions.expect_revoke().never();
}

/// What the store is asked when a refresh token ends sessions: the token as presented,
/// checked by the store in the same step as the ending.
fn presented() -> PresentedRefresh {
    PresentedRefresh {
        user_id: USER_ID,
        session_id: SESSION_ID,
        presented: REFRESH_JTI,
        now: NOW,
        grace: policy().reuse_grace,
    }
}

fn expect_end(mocks: &mut Mocks, scope: SessionScope, outcome: EndOutcome) {
    mocks
        .sessions
        .expect_end_with_refresh()
        .with(eq(presented()), eq(scope))
        .times(1)
        .returning(move |_, _| Ok(outcome));
    mocks.sessions.expect_revoke().never();
    mocks.sessions.expect_revoke_all().never();
}

fn expect_untouched_store(mocks: &mut Mocks) {
    mocks.sessions.expect_revoke().never();
    mocks.sessions.expect_revoke_all().never();
    mocks.sessions.expect_end_with_refresh().never();
}

#[tokio::test]
async fn access_local_revokes_the_callers_session() {
    let mut mocks = Mocks::new();
    mocks.tokens.expect_verify_refresh().never();
    mocks.sessions.expect_end_with_refresh().never();
    expect_revoke(&mut mocks, true);

    let ended = logout(mocks)
        .execute(access(), LogoutScope::Local, None)
        .await
        .expect("logged out");

    assert_eq!(ended, 1);
}

#[tokio::test]
async fn access_local_on_an_already_gone_session_is_not_an_error() {
    // The access token was checked by Authenticate; a concurrent logout got there first.
    let mut mocks = Mocks::new();
    expect_revoke(&mut mocks, false);

    let ended = logout(mocks)
        .execute(access(), LogoutScope::Local, None)
        .await
        .expect("logged out");

    assert_eq!(ended, 0);
}

#[tokio::test]
async fn refresh_local_ends_the_tokens_session_in_one_checked_step() {
    let mut mocks = Mocks::new();
    expect_refresh_claims(&mut mocks);
    expect_end(&mut mocks, SessionScope::This, EndOutcome::Ended(1));

    let ended = logout(mocks)
        .execute(refresh(), LogoutScope::Local, None)
        .await
        .expect("logged out");

    assert_eq!(ended, 1);
}

#[tokio::test]
async fn refresh_on_a_gone_session_is_invalid_token() {
    for scope in [LogoutScope::Local, LogoutScope::Others, LogoutScope::Global] {
        let mut mocks = Mocks::new();
        expect_refresh_claims(&mut mocks);
        expect_end(&mut mocks, scope.sessions(), EndOutcome::NotFound);

        let err = logout(mocks).execute(refresh(), scope, None).await;

        assert!(
            matches!(err, Err(LogoutError::InvalidToken)),
            "{scope:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_spent_refresh_token_is_reuse_in_every_scope() {
    for scope in [LogoutScope::Local, LogoutScope::Others, LogoutScope::Global] {
        let mut mocks = Mocks::new();
        expect_refresh_claims(&mut mocks);
        expect_end(&mut mocks, scope.sessions(), EndOutcome::ReuseDetected);

        let err = logout(mocks).execute(refresh(), scope, None).await;

        assert!(
            matches!(err, Err(LogoutError::Reused)),
            "{scope:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn invalid_or_expired_refresh_token_is_invalid_and_touches_nothing() {
    for (scope, failure) in [
        (LogoutScope::Local, TokenError::Invalid),
        (LogoutScope::Others, TokenError::Expired),
        (LogoutScope::Global, TokenError::Invalid),
    ] {
        let mut mocks = Mocks::new();
        mocks
            .tokens
            .expect_verify_refresh()
            .times(1)
            .return_once(move |_, _| Err(failure));
        expect_untouched_store(&mut mocks);

        let err = logout(mocks).execute(refresh(), scope, None).await;

        assert!(
            matches!(err, Err(LogoutError::InvalidToken)),
            "{scope:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn codec_failure_is_unexpected_and_touches_nothing() {
    let mut mocks = Mocks::new();
    mocks
        .tokens
        .expect_verify_refresh()
        .times(1)
        .returning(|_, _| Err(TokenError::Unexpected(anyhow::anyhow!("boom"))));
    expect_untouched_store(&mut mocks);

    let err = logout(mocks)
        .execute(refresh(), LogoutScope::Local, None)
        .await;

    assert!(matches!(err, Err(LogoutError::Unexpected(_))), "{err:?}");
}

#[tokio::test]
async fn access_others_revokes_all_but_the_callers_session() {
    let mut mocks = Mocks::new();
    mocks.sessions.expect_end_with_refresh().never();
    expect_revoke_all(&mut mocks, Some(SESSION_ID), 3);

    let ended = logout(mocks)
        .execute(access(), LogoutScope::Others, None)
        .await
        .expect("logged out");

    assert_eq!(ended, 3);
}

#[tokio::test]
async fn access_global_revokes_every_session() {
    let mut mocks = Mocks::new();
    mocks.sessions.expect_end_with_refresh().never();
    expect_revoke_all(&mut mocks, None, 4);

    let ended = logout(mocks)
        .execute(access(), LogoutScope::Global, None)
        .await
        .expect("logged out");

    assert_eq!(ended, 4);
}

#[tokio::test]
async fn refresh_others_and_global_end_what_they_name() {
    for (scope, expected, ended) in [
        (LogoutScope::Others, SessionScope::Others, 2),
        (LogoutScope::Global, SessionScope::All, 5),
    ] {
        let mut mocks = Mocks::new();
        expect_refresh_claims(&mut mocks);
        expect_end(&mut mocks, expected, EndOutcome::Ended(ended));

        let result = logout(mocks)
            .execute(refresh(), scope, None)
            .await
            .expect("logged out");

        assert_eq!(result, ended, "{scope:?}");
    }
}

#[tokio::test]
async fn ending_is_addressed_by_the_tokens_user() {
    // Another user's refresh token speaks only for that user.
    let other = UserId::from_uuid(seq(99));
    let mut mocks = Mocks::new();
    mocks
        .tokens
        .expect_verify_refresh()
        .times(1)
        .returning(move |_, _| {
            Ok(RefreshClaims {
                user_id: other,
                session_id: OTHER_SESSION_ID,
                token_id: REFRESH_JTI,
                issued_at: NOW,
                expires_at: NOW.plus(REFRESH_TTL),
                auth_time: AUTH_TIME,
                client: None,
                amr: domain::AuthMethods::Password,
            })
        });
    mocks
        .sessions
        .expect_end_with_refresh()
        .withf(move |p, scope| {
            p.user_id == other && p.session_id == OTHER_SESSION_ID && *scope == SessionScope::Others
        })
        .times(1)
        .returning(|_, _| Ok(EndOutcome::Ended(1)));

    let ended = logout(mocks)
        .execute(refresh(), LogoutScope::Others, None)
        .await
        .expect("logged out");

    assert_eq!(ended, 1);
}

#[tokio::test]
async fn store_unavailable_on_revoke_is_unavailable() {
    let mut mocks = Mocks::new();
    mocks
        .sessions
        .expect_revoke()
        .times(1)
        .returning(|_, _| Err(unavailable()));

    let err = logout(mocks)
        .execute(access(), LogoutScope::Local, None)
        .await;

    assert!(matches!(err, Err(LogoutError::Unavailable(_))), "{err:?}");
}

#[tokio::test]
async fn store_unavailable_on_revoke_all_is_unavailable() {
    let mut mocks = Mocks::new();
    mocks
        .sessions
        .expect_revoke_all()
        .times(1)
        .returning(|_, _| Err(unavailable()));

    let err = logout(mocks)
        .execute(access(), LogoutScope::Global, None)
        .await;

    assert!(matches!(err, Err(LogoutError::Unavailable(_))), "{err:?}");
}

#[tokio::test]
async fn store_unavailable_on_ending_by_refresh_is_unavailable() {
    let mut mocks = Mocks::new();
    expect_refresh_claims(&mut mocks);
    mocks
        .sessions
        .expect_end_with_refresh()
        .times(1)
        .returning(|_, _| Err(unavailable()));

    let err = logout(mocks)
        .execute(refresh(), LogoutScope::Others, None)
        .await;

    assert!(matches!(err, Err(LogoutError::Unavailable(_))), "{err:?}");
}

#[tokio::test]
async fn store_failure_is_unexpected() {
    let mut mocks = Mocks::new();
    mocks
        .sessions
        .expect_revoke()
        .times(1)
        .returning(|_, _| Err(unexpected()));

    let err = logout(mocks)
        .execute(access(), LogoutScope::Local, None)
        .await;

    assert!(matches!(err, Err(LogoutError::Unexpected(_))), "{err:?}");
}

#[test]
fn default_scope_is_local() {
    assert_eq!(LogoutScope::default(), LogoutScope::Local);
}
