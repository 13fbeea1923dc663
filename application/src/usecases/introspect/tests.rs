//! Tests of [`Introspect`], over mocks of the ports it uses (see `testkit`).

use domain::{AccessClaims, RefreshClaims, TokenId};
use mockall::predicate::eq;

use super::*;
use crate::usecases::testkit::*;

const TOKEN: &str = "some-token";
const ACCESS_JTI: TokenId = TokenId::from_uuid(domain::ids::Uuid::from_u128(0xACCE55));

fn client() -> ClientId {
    ClientId::parse("gateway").expect("as set up")
}

fn access(expires_at: Timestamp) -> AccessClaims {
    AccessClaims {
        user_id: USER_ID,
        session_id: SESSION_ID,
        token_id: ACCESS_JTI,
        issued_at: NOW,
        expires_at,
        auth_time: AUTH_TIME,
        client: Some(client()),
        amr: domain::AuthMethods::Password,
    }
}

fn refresh() -> RefreshClaims {
    RefreshClaims {
        user_id: USER_ID,
        session_id: SESSION_ID,
        token_id: REFRESH_JTI,
        issued_at: NOW,
        expires_at: NOW.plus(REFRESH_TTL),
        auth_time: AUTH_TIME,
        client: None,
        amr: domain::AuthMethods::Password,
    }
}

fn introspect(mut mocks: Mocks) -> Introspect {
    mocks.ids = no_ids();
    Introspect::new(&mocks.into_ports())
}

fn not_a_refresh_token(mocks: &mut Mocks) {
    mocks
        .tokens
        .expect_verify_refresh()
        .returning(|_, _| Err(TokenError::Invalid));
}

fn not_an_access_token(mocks: &mut Mocks) {
    mocks
        .tokens
        .expect_verify_access()
        .returning(|_, _| Err(TokenError::Invalid));
}

#[tokio::test]
async fn a_live_access_token_reports_its_claims_and_user() {
    let mut mocks = Mocks::new();
    mocks
        .tokens
        .expect_verify_access()
        .with(eq(TOKEN), eq(NOW))
        .returning(|_, _| Ok(access(NOW.plus(ACCESS_TTL))));
    mocks
        .sessions
        .expect_active_user_now()
        .with(eq(USER_ID), eq(SESSION_ID))
        .times(1)
        .returning(|_, _| Ok(ActiveUser::Active(user())));

    let answer = introspect(mocks)
        .execute(TOKEN, None)
        .await
        .expect("as set up");

    assert_eq!(
        answer,
        Introspection::Active(LiveToken {
            kind: TokenKind::Access,
            user_id: USER_ID,
            username: user().username,
            session_id: SESSION_ID,
            issued_at: NOW,
            expires_at: NOW.plus(ACCESS_TTL),
            client: Some(client()),
        })
    );
}

#[tokio::test]
async fn an_access_token_of_an_ended_session_or_a_gone_user_is_inactive() {
    for found in [ActiveUser::Revoked, ActiveUser::UserGone] {
        let mut mocks = Mocks::new();
        mocks
            .tokens
            .expect_verify_access()
            .returning(|_, _| Ok(access(NOW.plus(ACCESS_TTL))));
        mocks
            .sessions
            .expect_active_user_now()
            .return_once(move |_, _| Ok(found));

        let answer = introspect(mocks)
            .execute(TOKEN, None)
            .await
            .expect("as set up");

        assert_eq!(answer, Introspection::Inactive);
    }
}

#[tokio::test]
async fn a_token_at_its_expiry_is_inactive_without_asking_the_store() {
    let mut mocks = Mocks::new();
    // Within the codec's leeway, so the codec still accepts it.
    mocks
        .tokens
        .expect_verify_access()
        .returning(|_, _| Ok(access(NOW)));
    mocks.sessions.expect_active_user_now().never();

    let answer = introspect(mocks)
        .execute(TOKEN, None)
        .await
        .expect("as set up");

    assert_eq!(answer, Introspection::Inactive);
}

#[tokio::test]
async fn a_refresh_token_is_live_only_while_its_session_accepts_it_next() {
    for (found, live) in [
        (ActiveUser::Active(user()), true),
        (ActiveUser::Revoked, false),
    ] {
        let mut mocks = Mocks::new();
        not_an_access_token(&mut mocks);
        mocks
            .tokens
            .expect_verify_refresh()
            .returning(|_, _| Ok(refresh()));
        mocks
            .sessions
            .expect_refresh_holder()
            .with(eq(USER_ID), eq(SESSION_ID), eq(REFRESH_JTI))
            .times(1)
            .return_once(move |_, _, _| Ok(found));
        mocks.sessions.expect_active_user_now().never();

        let answer = introspect(mocks)
            .execute(TOKEN, None)
            .await
            .expect("as set up");

        match answer {
            Introspection::Active(token) => {
                assert!(live);
                assert_eq!(token.kind, TokenKind::Refresh);
                assert_eq!(token.client, None);
            }
            Introspection::Inactive => assert!(!live),
        }
    }
}

#[tokio::test]
async fn the_hint_orders_the_search_but_does_not_limit_it() {
    let mut mocks = Mocks::new();
    let mut order = mockall::Sequence::new();
    mocks
        .tokens
        .expect_verify_refresh()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Err(TokenError::Invalid));
    mocks
        .tokens
        .expect_verify_access()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(access(NOW.plus(ACCESS_TTL))));
    mocks
        .sessions
        .expect_active_user_now()
        .returning(|_, _| Ok(ActiveUser::Active(user())));

    let answer = introspect(mocks)
        .execute(TOKEN, Some(TokenKind::Refresh))
        .await
        .expect("as set up");

    assert!(matches!(answer, Introspection::Active(t) if t.kind == TokenKind::Access));
}

#[tokio::test]
async fn garbage_is_inactive_and_a_failing_store_is_an_error_not_an_answer() {
    let mut mocks = Mocks::new();
    not_an_access_token(&mut mocks);
    not_a_refresh_token(&mut mocks);
    assert_eq!(
        introspect(mocks)
            .execute("garbage", None)
            .await
            .expect("as set up"),
        Introspection::Inactive
    );

    let mut mocks = Mocks::new();
    mocks
        .tokens
        .expect_verify_access()
        .returning(|_, _| Ok(access(NOW.plus(ACCESS_TTL))));
    mocks
        .sessions
        .expect_active_user_now()
        .returning(|_, _| Err(unavailable()));
    let err = introspect(mocks).execute(TOKEN, None).await;
    assert!(
        matches!(err, Err(IntrospectError::Unavailable(_))),
        "{err:?}"
    );
}

#[test]
fn hints_are_the_rfc_names_and_anything_else_is_no_hint() {
    assert_eq!(
        TokenKind::from_hint("access_token"),
        Some(TokenKind::Access)
    );
    assert_eq!(
        TokenKind::from_hint("refresh_token"),
        Some(TokenKind::Refresh)
    );
    for other in ["", "id_token", "Access_Token", "refresh"] {
        assert_eq!(TokenKind::from_hint(other), None, "{other:?}");
    }
}
