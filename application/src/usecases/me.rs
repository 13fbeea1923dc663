//! Me: the caller's own profile.
//!
//! The hottest authenticated read, so its whole store work is the one round trip of
//! [`Authenticate::identify`]: the session check and the profile read together.

use domain::User;

use super::{AuthError, Authenticate};
use crate::Ports;

pub struct Me {
    authenticate: Authenticate,
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
        }
    }

    /// The profile of the user whose access token this is, while its session is alive.
    ///
    /// # Errors
    /// See [`AuthError`]; a session whose user is gone is [`AuthError::UserGone`]. A
    /// store failure is an error, never a pass: fail closed.
    pub async fn execute(&self, access_token: &str) -> Result<User, AuthError> {
        Ok(self.authenticate.identify(access_token).await?.user)
    }
}

#[cfg(test)]
mod tests {
    use domain::{AccessClaims, TokenId};
    use mockall::predicate::eq;

    use super::*;
    use crate::ports::ActiveUser;
    use crate::usecases::testkit::*;

    const TOKEN: &str = "access-token";

    #[tokio::test]
    async fn returns_the_callers_user_from_the_one_store_call() {
        let mut mocks = Mocks::new();
        mocks.ids = no_ids();
        mocks
            .tokens
            .expect_verify_access()
            .with(eq(TOKEN), eq(NOW))
            .times(1)
            .returning(|_, _| {
                Ok(AccessClaims {
                    user_id: USER_ID,
                    session_id: SESSION_ID,
                    token_id: TokenId::from_uuid(seq(42)),
                    issued_at: NOW,
                    expires_at: NOW.plus(ACCESS_TTL),
                    auth_time: AUTH_TIME,
                })
            });
        mocks
            .sessions
            .expect_active_user()
            .with(eq(USER_ID), eq(SESSION_ID))
            .times(1)
            .returning(|_, _| Ok(ActiveUser::Active(user())));
        mocks.users.expect_find_by_id().never();

        let found = Me::new(&mocks.into_ports())
            .execute(TOKEN)
            .await
            .expect("found");

        assert_eq!(found, user());
    }
}
