//! Logout: revoke sessions, so that their access **and** refresh tokens fail at once
//! (the seed only forgot the access token).
//!
//! A client may prove who it is with its access token, or with its refresh token when
//! the access token has already expired, so that signing out always works. A refresh token
//! speaks for its session only while it is the session's current one: a spent refresh
//! token is reuse (RFC 9700 §4.14.2) wherever it is presented, here as at refresh. Its
//! session is revoked as stolen and nothing else is ended, whatever scope was asked for.

use std::sync::Arc;

use super::{Principal, store_failures};
use crate::ports::{
    Clock, EndOutcome, PresentedRefresh, SessionScope, SessionStore, TokenCodec, TokenError,
};
use crate::{Ports, TokenPolicy};

/// Which sessions to end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogoutScope {
    /// The caller's session only (the seed's behaviour).
    #[default]
    Local,
    /// Every other session of the caller; the caller stays signed in.
    Others,
    /// Every session of the caller, this one included.
    Global,
}

impl From<LogoutScope> for SessionScope {
    fn from(scope: LogoutScope) -> Self {
        match scope {
            LogoutScope::Local => SessionScope::This,
            LogoutScope::Others => SessionScope::Others,
            LogoutScope::Global => SessionScope::All,
        }
    }
}

/// How the caller proved who it is.
#[derive(Clone, Debug)]
pub enum LogoutCredential {
    /// An access token, already checked by [`super::Authenticate`].
    Access(Principal),
    /// A refresh token, checked here.
    Refresh(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// The refresh token is malformed, forged, expired, or its session is already gone.
    #[error("refresh token invalid")]
    InvalidToken,
    /// The refresh token was a spent one: its session has been revoked as stolen, and
    /// nothing else was ended.
    #[error("refresh token reused; session revoked")]
    Reused,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("logout failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(LogoutError);

pub struct Logout {
    sessions: Arc<dyn SessionStore>,
    tokens: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
    policy: TokenPolicy,
}

impl std::fmt::Debug for Logout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logout").finish_non_exhaustive()
    }
}

impl Logout {
    pub fn new(ports: &Ports, policy: TokenPolicy) -> Self {
        Self {
            sessions: ports.sessions.clone(),
            tokens: ports.tokens.clone(),
            clock: ports.clock.clone(),
            policy,
        }
    }

    /// Returns how many sessions were ended.
    ///
    /// # Errors
    /// See [`LogoutError`].
    pub async fn execute(
        &self,
        credential: LogoutCredential,
        scope: LogoutScope,
    ) -> Result<u64, LogoutError> {
        let (principal, ended) = match credential {
            LogoutCredential::Access(principal) => {
                let ended = match scope {
                    LogoutScope::Local => u64::from(
                        self.sessions
                            .revoke(principal.user_id, principal.session_id)
                            .await?,
                    ),
                    LogoutScope::Others | LogoutScope::Global => {
                        let keep = (scope == LogoutScope::Others).then_some(principal.session_id);
                        self.sessions.revoke_all(principal.user_id, keep).await?
                    }
                };
                (principal, ended)
            }
            LogoutCredential::Refresh(token) => {
                let now = self.clock.now();
                let claims = match self.tokens.verify_refresh(&token, now) {
                    Ok(claims) => claims,
                    Err(TokenError::Expired | TokenError::Invalid) => {
                        return Err(LogoutError::InvalidToken);
                    }
                    Err(TokenError::Unexpected(e)) => return Err(LogoutError::Unexpected(e)),
                };
                let presented = PresentedRefresh {
                    user_id: claims.user_id,
                    session_id: claims.session_id,
                    presented: claims.token_id,
                    now,
                    grace: self.policy.reuse_grace,
                };
                match self
                    .sessions
                    .end_with_refresh(&presented, scope.into())
                    .await?
                {
                    EndOutcome::Ended(ended) => (
                        Principal {
                            user_id: claims.user_id,
                            session_id: claims.session_id,
                        },
                        ended,
                    ),
                    EndOutcome::NotFound => return Err(LogoutError::InvalidToken),
                    EndOutcome::ReuseDetected => {
                        tracing::warn!(
                            user_id = %claims.user_id,
                            session_id = %claims.session_id,
                            ?scope,
                            "spent refresh token presented to log out; session revoked"
                        );
                        return Err(LogoutError::Reused);
                    }
                }
            }
        };
        tracing::info!(user_id = %principal.user_id, session_id = %principal.session_id, ?scope, ended, "logged out");
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use domain::{RefreshClaims, Timestamp, UserId};
    use mockall::predicate::eq;

    use super::*;
    use crate::usecases::testkit::*;

    const REFRESH: &str = "refresh-token";

    fn logout(mut mocks: Mocks) -> Logout {
        mocks.ids = no_ids();
        Logout::new(&mocks.into_ports(), policy())
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
            .execute(access(), LogoutScope::Local)
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
            .execute(access(), LogoutScope::Local)
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
            .execute(refresh(), LogoutScope::Local)
            .await
            .expect("logged out");

        assert_eq!(ended, 1);
    }

    #[tokio::test]
    async fn refresh_on_a_gone_session_is_invalid_token() {
        for scope in [LogoutScope::Local, LogoutScope::Others, LogoutScope::Global] {
            let mut mocks = Mocks::new();
            expect_refresh_claims(&mut mocks);
            expect_end(&mut mocks, scope.into(), EndOutcome::NotFound);

            let err = logout(mocks).execute(refresh(), scope).await;

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
            expect_end(&mut mocks, scope.into(), EndOutcome::ReuseDetected);

            let err = logout(mocks).execute(refresh(), scope).await;

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

            let err = logout(mocks).execute(refresh(), scope).await;

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

        let err = logout(mocks).execute(refresh(), LogoutScope::Local).await;

        assert!(matches!(err, Err(LogoutError::Unexpected(_))), "{err:?}");
    }

    #[tokio::test]
    async fn access_others_revokes_all_but_the_callers_session() {
        let mut mocks = Mocks::new();
        mocks.sessions.expect_end_with_refresh().never();
        expect_revoke_all(&mut mocks, Some(SESSION_ID), 3);

        let ended = logout(mocks)
            .execute(access(), LogoutScope::Others)
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
            .execute(access(), LogoutScope::Global)
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
                .execute(refresh(), scope)
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
                })
            });
        mocks
            .sessions
            .expect_end_with_refresh()
            .withf(move |p, scope| {
                p.user_id == other
                    && p.session_id == OTHER_SESSION_ID
                    && *scope == SessionScope::Others
            })
            .times(1)
            .returning(|_, _| Ok(EndOutcome::Ended(1)));

        let ended = logout(mocks)
            .execute(refresh(), LogoutScope::Others)
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

        let err = logout(mocks).execute(access(), LogoutScope::Local).await;

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

        let err = logout(mocks).execute(access(), LogoutScope::Global).await;

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

        let err = logout(mocks).execute(refresh(), LogoutScope::Others).await;

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

        let err = logout(mocks).execute(access(), LogoutScope::Local).await;

        assert!(matches!(err, Err(LogoutError::Unexpected(_))), "{err:?}");
    }

    #[test]
    fn default_scope_is_local() {
        assert_eq!(LogoutScope::default(), LogoutScope::Local);
    }
}
