//! Tests of [`Refresh`], over mocks of the ports it uses (see `testkit`).

use domain::{AccessClaims, RefreshClaims};
use mockall::Sequence;
use mockall::predicate::{always, eq};

use super::*;
use crate::usecases::testkit::*;

const PRESENTED: &str = "presented-refresh-token";

fn claims() -> RefreshClaims {
    RefreshClaims {
        user_id: USER_ID,
        session_id: SESSION_ID,
        token_id: REFRESH_JTI,
        issued_at: domain::Timestamp::from_unix_seconds(1_699_990_000),
        expires_at: NOW.plus(std::time::Duration::from_secs(10)),
        auth_time: AUTH_TIME,
        client: None,
        amr: domain::AuthMethods::Password,
    }
}

fn refresh(mocks: Mocks) -> Refresh {
    let ports = mocks.into_ports();
    Refresh::new(&ports, policy(), audit(&ports))
}

fn expect_claims(mocks: &mut Mocks) {
    mocks
        .tokens
        .expect_verify_refresh()
        .with(eq(PRESENTED), eq(NOW))
        .times(1)
        .returning(|_, _| Ok(claims()));
}

fn expect_signing(mocks: &mut Mocks) {
    mocks
        .tokens
        .expect_issue_access()
        .times(1)
        .returning(|_| Ok("new-access".into()));
    mocks
        .tokens
        .expect_issue_refresh()
        .times(1)
        .returning(|_| Ok("new-refresh".into()));
}

fn expect_rotate(mocks: &mut Mocks, outcome: Result<RotationOutcome, crate::ports::StoreError>) {
    mocks
        .sessions
        .expect_rotate()
        .times(1)
        .return_once(move |_| outcome);
}

fn expect_verify_fails(mocks: &mut Mocks, err: TokenError) {
    mocks
        .tokens
        .expect_verify_refresh()
        .times(1)
        .return_once(move |_, _| Err(err));
}

fn expect_nothing_after_verify(mocks: &mut Mocks) {
    mocks.tokens.expect_issue_access().never();
    mocks.tokens.expect_issue_refresh().never();
    mocks.sessions.expect_rotate().never();
    mocks.ids = no_ids();
}

#[tokio::test]
async fn success_rotates_the_presented_jti_and_signs_the_new_one_first() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    let next = TokenId::from_uuid(seq(1));
    let access_jti = TokenId::from_uuid(seq(2));
    let expiry = NOW.plus(REFRESH_TTL);

    let mut order = Sequence::new();
    mocks
        .tokens
        .expect_issue_access()
        .with(eq(AccessClaims {
            user_id: USER_ID,
            session_id: SESSION_ID,
            token_id: access_jti,
            issued_at: NOW,
            expires_at: NOW.plus(ACCESS_TTL),
            auth_time: AUTH_TIME,
            client: None,
            amr: domain::AuthMethods::Password,
        }))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok("new-access".into()));
    mocks
        .tokens
        .expect_issue_refresh()
        .with(eq(RefreshClaims {
            user_id: USER_ID,
            session_id: SESSION_ID,
            token_id: next,
            issued_at: NOW,
            expires_at: expiry,
            auth_time: AUTH_TIME,
            client: None,
            amr: domain::AuthMethods::Password,
        }))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok("new-refresh".into()));
    mocks
        .sessions
        .expect_rotate()
        .with(eq(Rotation {
            user_id: USER_ID,
            session_id: SESSION_ID,
            presented: REFRESH_JTI,
            next,
            now: NOW,
            expires_at: expiry,
            grace: std::time::Duration::ZERO,
            trail: Some(crate::ports::TrailEntry {
                event: domain::AuditEvent {
                    kind: domain::AuditKind::Refreshed,
                    at: NOW,
                    session_id: Some(SESSION_ID),
                    client: None,
                    user_agent: None,
                    detail: None,
                },
                retention: crate::Limits::default().audit,
            }),
        }))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(RotationOutcome::Rotated(session(SESSION_ID))));

    let pair = refresh(mocks)
        .execute(PRESENTED, None, None)
        .await
        .expect("refreshed");

    assert_eq!(pair.access_token, "new-access");
    assert_eq!(pair.refresh_token, "new-refresh");
    assert_eq!(pair.session_id, SESSION_ID);
    assert_eq!(pair.issued_at, NOW);
    assert_eq!(pair.access_expires_at, NOW.plus(ACCESS_TTL));
    // Sliding: the new refresh token runs a full refresh_ttl from now, not from login.
    assert_eq!(pair.refresh_expires_at, expiry);
}

#[tokio::test]
async fn expired_token_is_invalid_and_never_reaches_the_store() {
    let mut mocks = Mocks::new();
    expect_verify_fails(&mut mocks, TokenError::Expired);
    expect_nothing_after_verify(&mut mocks);

    let err = refresh(mocks).execute(PRESENTED, None, None).await;

    assert!(matches!(err, Err(RefreshError::InvalidToken)), "{err:?}");
}

#[tokio::test]
async fn invalid_token_is_invalid_and_never_reaches_the_store() {
    let mut mocks = Mocks::new();
    expect_verify_fails(&mut mocks, TokenError::Invalid);
    expect_nothing_after_verify(&mut mocks);

    let err = refresh(mocks).execute("forged", None, None).await;

    assert!(matches!(err, Err(RefreshError::InvalidToken)), "{err:?}");
}

#[tokio::test]
async fn a_token_spends_only_where_it_was_issued_and_elsewhere_is_not_reuse() {
    let cli = domain::ClientId::parse("cli").expect("as set up");
    let other = domain::ClientId::parse("other").expect("as set up");
    // (the token's client, the client presenting it)
    for (issued_to, presented_by) in [
        (None, Some(cli)),
        (Some(cli), None),
        (Some(cli), Some(other)),
    ] {
        let mut mocks = Mocks::new();
        mocks.tokens.expect_verify_refresh().returning(move |_, _| {
            Ok(RefreshClaims {
                client: issued_to,
                ..claims()
            })
        });
        expect_nothing_after_verify(&mut mocks);

        let err = refresh(mocks).execute(PRESENTED, presented_by, None).await;

        assert!(
            matches!(err, Err(RefreshError::InvalidToken)),
            "{issued_to:?} by {presented_by:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn codec_failure_on_verify_is_unexpected() {
    let mut mocks = Mocks::new();
    expect_verify_fails(&mut mocks, TokenError::Unexpected(anyhow::anyhow!("boom")));
    expect_nothing_after_verify(&mut mocks);

    let err = refresh(mocks).execute(PRESENTED, None, None).await;

    assert!(matches!(err, Err(RefreshError::Unexpected(_))), "{err:?}");
}

#[tokio::test]
async fn reuse_detected_is_reused() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    expect_signing(&mut mocks);
    expect_rotate(&mut mocks, Ok(RotationOutcome::ReuseDetected));

    let err = refresh(mocks).execute(PRESENTED, None, None).await;

    assert!(matches!(err, Err(RefreshError::Reused)), "{err:?}");
}

#[tokio::test]
async fn gone_session_is_invalid_token() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    expect_signing(&mut mocks);
    expect_rotate(&mut mocks, Ok(RotationOutcome::NotFound));

    let err = refresh(mocks).execute(PRESENTED, None, None).await;

    assert!(matches!(err, Err(RefreshError::InvalidToken)), "{err:?}");
}

#[tokio::test]
async fn store_unavailable_is_unavailable() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    expect_signing(&mut mocks);
    expect_rotate(&mut mocks, Err(unavailable()));

    let err = refresh(mocks).execute(PRESENTED, None, None).await;

    assert!(matches!(err, Err(RefreshError::Unavailable(_))), "{err:?}");
}

#[tokio::test]
async fn store_failure_is_unexpected() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    expect_signing(&mut mocks);
    expect_rotate(&mut mocks, Err(unexpected()));

    let err = refresh(mocks).execute(PRESENTED, None, None).await;

    assert!(matches!(err, Err(RefreshError::Unexpected(_))), "{err:?}");
}

#[tokio::test]
async fn signing_failure_is_unexpected_and_spends_nothing() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    mocks
        .tokens
        .expect_issue_access()
        .with(always())
        .times(1)
        .returning(|_| Err(TokenError::Unexpected(anyhow::anyhow!("no key"))));
    mocks.tokens.expect_issue_refresh().never();
    mocks.sessions.expect_rotate().never();

    let err = refresh(mocks).execute(PRESENTED, None, None).await;

    assert!(matches!(err, Err(RefreshError::Unexpected(_))), "{err:?}");
}

#[tokio::test]
async fn a_grace_replay_reissues_the_refresh_token_already_issued() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    // The pre-signed pair for a rotation that does not happen...
    expect_signing(&mut mocks);
    // ... then the session's current token, signed again with its original iat.
    let mut current = session(SESSION_ID);
    current.refresh_jti = TokenId::from_uuid(seq(77));
    current.previous_jti = Some(REFRESH_JTI);
    current.refreshed_at = NOW.plus(std::time::Duration::from_secs(0));
    let expected = RefreshClaims {
        user_id: USER_ID,
        session_id: SESSION_ID,
        token_id: current.refresh_jti,
        issued_at: current.refreshed_at,
        expires_at: current.expires_at,
        auth_time: current.created_at,
        client: None,
        amr: domain::AuthMethods::Password,
    };
    mocks
        .tokens
        .expect_issue_access()
        .times(1)
        .returning(|_| Ok("replayed-access".into()));
    mocks
        .tokens
        .expect_issue_refresh()
        .with(eq(expected))
        .times(1)
        .returning(|_| Ok("already-issued-refresh".into()));
    let replayed = current.clone();
    expect_rotate(&mut mocks, Ok(RotationOutcome::Replayed(replayed)));

    let pair = refresh(mocks)
        .execute(PRESENTED, None, None)
        .await
        .expect("answered");
    assert_eq!(pair.refresh_token, "already-issued-refresh");
    assert_eq!(pair.access_token, "replayed-access");
    assert_eq!(pair.session_id, SESSION_ID);
}

#[tokio::test]
async fn the_grace_window_of_the_policy_reaches_the_store() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    expect_signing(&mut mocks);
    mocks
        .sessions
        .expect_rotate()
        .withf(|r| r.grace == std::time::Duration::from_secs(10))
        .times(1)
        .returning(|_| Ok(RotationOutcome::Rotated(session(SESSION_ID))));
    let policy = TokenPolicy {
        reuse_grace: std::time::Duration::from_secs(10),
        ..policy()
    };
    {
        let ports = mocks.into_ports();
        Refresh::new(&ports, policy, audit(&ports))
    }
    .execute(PRESENTED, None, None)
    .await
    .expect("rotated");
}

#[tokio::test]
async fn refreshes_are_capped_by_the_absolute_session_lifetime() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    expect_signing(&mut mocks);
    // Logged in at AUTH_TIME; the cap ends before NOW + refresh_ttl.
    let lifetime = std::time::Duration::from_secs(
        u64::try_from(NOW.unix_seconds() - AUTH_TIME.unix_seconds()).expect("positive") + 60,
    );
    let cap = AUTH_TIME.plus(lifetime);
    mocks
        .sessions
        .expect_rotate()
        .withf(move |r| r.expires_at == cap)
        .times(1)
        .returning(|_| Ok(RotationOutcome::Rotated(session(SESSION_ID))));
    let policy = TokenPolicy {
        max_session_lifetime: lifetime,
        ..policy()
    };
    let pair = {
        let ports = mocks.into_ports();
        Refresh::new(&ports, policy, audit(&ports))
    }
    .execute(PRESENTED, None, None)
    .await
    .expect("rotated");
    assert_eq!(pair.refresh_expires_at, cap);
}

#[tokio::test]
async fn a_session_past_its_absolute_lifetime_cannot_be_refreshed() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    expect_nothing_after_verify(&mut mocks);
    let lifetime = std::time::Duration::from_secs(
        u64::try_from(NOW.unix_seconds() - AUTH_TIME.unix_seconds()).expect("positive"),
    );
    let policy = TokenPolicy {
        max_session_lifetime: lifetime,
        ..policy()
    };
    let result = {
        let ports = mocks.into_ports();
        Refresh::new(&ports, policy, audit(&ports))
    }
    .execute(PRESENTED, None, None)
    .await;
    assert!(
        matches!(result, Err(RefreshError::InvalidToken)),
        "{result:?}"
    );
}

#[test]
fn session_of_reads_the_session_and_touches_no_store() {
    let mut mocks = Mocks::new();
    expect_claims(&mut mocks);
    expect_nothing_after_verify(&mut mocks);
    assert!(matches!(refresh(mocks).session_of(PRESENTED), Ok(id) if id == SESSION_ID));
}

#[test]
fn session_of_a_bad_or_expired_token_is_invalid() {
    for err in [TokenError::Invalid, TokenError::Expired] {
        let mut mocks = Mocks::new();
        expect_verify_fails(&mut mocks, err);
        expect_nothing_after_verify(&mut mocks);
        assert!(matches!(
            refresh(mocks).session_of("forged"),
            Err(RefreshError::InvalidToken)
        ));
    }
}
