//! Me: the caller's own profile.
//!
//! The hottest authenticated read, so it does its store work in one round trip: the
//! token is checked in memory, then the session check and the profile read go to the
//! store together ([`SessionStore::active_user`]) instead of one after the other.

use std::sync::Arc;

use domain::User;

use super::{AuthError, Authenticate, store_failures};
use crate::Ports;
use crate::ports::{ActiveUser, SessionStore};

#[derive(Debug, thiserror::Error)]
pub enum MeError {
    /// The access token is invalid or expired, or its session was revoked.
    #[error(transparent)]
    Unauthenticated(AuthError),
    /// The session outlived its user (deleted out of band).
    #[error("user not found")]
    NotFound,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("profile lookup failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(MeError);

impl From<AuthError> for MeError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Unavailable(e) => MeError::Unavailable(e),
            AuthError::Unexpected(e) => MeError::Unexpected(e),
            other => MeError::Unauthenticated(other),
        }
    }
}

pub struct Me {
    authenticate: Authenticate,
    sessions: Arc<dyn SessionStore>,
}

impl std::fmt::Debug for Me {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Me").finish_non_exhaustive()
    }
}

impl Me {
    pub fn new(ports: &Ports) -> Self {
        Self {
            authenticate: Authenticate::new(ports),
            sessions: ports.sessions.clone(),
        }
    }

    /// The profile of the user whose access token this is, while its session is alive.
    ///
    /// # Errors
    /// See [`MeError`]. A store failure is an error, never a pass: fail closed.
    pub async fn execute(&self, access_token: &str) -> Result<User, MeError> {
        let claims = self.authenticate.verify(access_token)?;
        match self
            .sessions
            .active_user(claims.user_id, claims.session_id)
            .await?
        {
            ActiveUser::Active(user) => Ok(user),
            ActiveUser::Revoked => Err(MeError::Unauthenticated(AuthError::Revoked)),
            ActiveUser::UserGone => Err(MeError::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::{AccessClaims, TokenId};
    use mockall::predicate::eq;

    use super::*;
    use crate::ports::{StoreError, TokenError};
    use crate::usecases::testkit::*;

    const TOKEN: &str = "access-token";

    fn me(mut mocks: Mocks) -> Me {
        mocks.ids = no_ids();
        Me::new(&mocks.into_ports())
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            user_id: USER_ID,
            session_id: SESSION_ID,
            token_id: TokenId::from_uuid(seq(42)),
            issued_at: domain::Timestamp::from_unix_seconds(1_699_999_900),
            expires_at: NOW.plus(ACCESS_TTL),
            auth_time: AUTH_TIME,
        }
    }

    /// A valid token, and the store answering `found` for its session.
    fn mocks_finding(found: Result<ActiveUser, StoreError>) -> Mocks {
        let mut mocks = Mocks::new();
        mocks
            .tokens
            .expect_verify_access()
            .with(eq(TOKEN), eq(NOW))
            .times(1)
            .returning(|_, _| Ok(claims()));
        mocks
            .sessions
            .expect_active_user()
            .with(eq(USER_ID), eq(SESSION_ID))
            .times(1)
            .return_once(move |_, _| found);
        // The one round trip: no separate session check, no separate profile read.
        mocks.sessions.expect_is_active().never();
        mocks.users.expect_find_by_id().never();
        mocks
    }

    #[tokio::test]
    async fn returns_the_callers_user_in_one_store_call() {
        let found = me(mocks_finding(Ok(ActiveUser::Active(user()))))
            .execute(TOKEN)
            .await
            .expect("found");

        assert_eq!(found, user());
    }

    #[tokio::test]
    async fn revoked_session_is_unauthenticated() {
        let result = me(mocks_finding(Ok(ActiveUser::Revoked)))
            .execute(TOKEN)
            .await;

        assert!(
            matches!(result, Err(MeError::Unauthenticated(AuthError::Revoked))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn missing_user_is_not_found() {
        let result = me(mocks_finding(Ok(ActiveUser::UserGone)))
            .execute(TOKEN)
            .await;

        assert!(matches!(result, Err(MeError::NotFound)), "{result:?}");
    }

    #[tokio::test]
    async fn invalid_token_touches_no_store() {
        let mut mocks = Mocks::new();
        mocks
            .tokens
            .expect_verify_access()
            .times(1)
            .returning(|_, _| Err(TokenError::Invalid));
        mocks.sessions.expect_active_user().never();

        let result = me(mocks).execute("forged").await;

        assert!(
            matches!(
                result,
                Err(MeError::Unauthenticated(AuthError::InvalidToken))
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_unavailable_fails_closed() {
        let result = me(mocks_finding(Err(unavailable()))).execute(TOKEN).await;

        assert!(matches!(result, Err(MeError::Unavailable(_))), "{result:?}");
    }

    #[tokio::test]
    async fn store_failure_is_unexpected() {
        let result = me(mocks_finding(Err(unexpected()))).execute(TOKEN).await;

        assert!(matches!(result, Err(MeError::Unexpected(_))), "{result:?}");
    }
}
