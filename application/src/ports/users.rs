//! Who the users are: [`UserRepository`], which also keeps usernames unique.

use async_trait::async_trait;

use domain::{User, UserId, Username};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

use super::store::StoreError;

/// Users and the username index.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user, claiming its username atomically.
    ///
    /// Idempotent per user id: inserting a user whose id already holds the name (a retry
    /// of the same registration after a lost reply) succeeds again and changes nothing
    /// that matters (the record is written again with the same identity).
    ///
    /// # Errors
    /// [`InsertUserError::UsernameTaken`] when another user holds the (case-folded) name;
    /// [`InsertUserError::Store`] on store failure, in which case the user may or may not
    /// exist: a retry with the same id settles it.
    async fn insert(&self, user: &User) -> Result<(), InsertUserError>;

    /// # Errors
    /// [`StoreError`] on store failure. An unknown name is `Ok(None)`.
    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError>;

    /// # Errors
    /// [`StoreError`] on store failure. An unknown id is `Ok(None)`.
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    #[error("username already taken")]
    UsernameTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}
