//! Me: the caller's own profile.

use std::sync::Arc;

use domain::User;

use super::{Principal, store_failures};
use crate::Ports;
use crate::ports::UserRepository;

#[derive(Debug, thiserror::Error)]
pub enum MeError {
    /// The session outlived its user (deleted out of band).
    #[error("user not found")]
    NotFound,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("profile lookup failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(MeError);

pub struct Me {
    users: Arc<dyn UserRepository>,
}

impl std::fmt::Debug for Me {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Me").finish_non_exhaustive()
    }
}

impl Me {
    pub fn new(ports: &Ports) -> Self {
        Self {
            users: ports.users.clone(),
        }
    }

    /// # Errors
    /// See [`MeError`].
    pub async fn execute(&self, principal: Principal) -> Result<User, MeError> {
        self.users
            .find_by_id(principal.user_id)
            .await?
            .ok_or(MeError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::usecases::testkit::*;

    fn me(mocks: Mocks) -> Me {
        Me::new(&mocks.into_ports())
    }

    #[tokio::test]
    async fn returns_the_callers_user() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_by_id()
            .with(eq(USER_ID))
            .times(1)
            .returning(|_| Ok(Some(user())));

        let found = me(mocks).execute(principal()).await.expect("found");

        assert_eq!(found, user());
    }

    #[tokio::test]
    async fn missing_user_is_not_found() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_by_id()
            .with(eq(USER_ID))
            .times(1)
            .returning(|_| Ok(None));

        let result = me(mocks).execute(principal()).await;

        assert!(matches!(result, Err(MeError::NotFound)), "{result:?}");
    }

    #[tokio::test]
    async fn store_unavailable_is_unavailable() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_by_id()
            .times(1)
            .returning(|_| Err(unavailable()));

        let result = me(mocks).execute(principal()).await;

        assert!(matches!(result, Err(MeError::Unavailable(_))), "{result:?}");
    }

    #[tokio::test]
    async fn store_failure_is_unexpected() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_by_id()
            .times(1)
            .returning(|_| Err(unexpected()));

        let result = me(mocks).execute(principal()).await;

        assert!(matches!(result, Err(MeError::Unexpected(_))), "{result:?}");
    }
}
