//! Password hashing, with capacity split between choosing and checking passwords.

use async_trait::async_trait;

use domain::{PasswordHash, PasswordInput};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many hashes already queued; the caller should answer "try again later"
    /// rather than let work pile up without bound.
    #[error("password hasher overloaded")]
    Overloaded,
    #[error("password hashing failed")]
    Unexpected(#[source] anyhow::Error),
}

/// Password hashing (Argon2id in production). Implementations run the work off the async
/// executor and bound how much of it runs at once.
///
/// Capacity is split: [`PasswordHasher::hash`] (choosing a password: registration) may
/// only ever use part of it, so that a flood of registrations can never take the capacity
/// [`PasswordHasher::verify`] (logging in) needs.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// # Errors
    /// [`HashError`] when overloaded (its share is in use and its queue full) or on
    /// failure.
    async fn hash(&self, password: &PasswordInput) -> Result<PasswordHash, HashError>;

    /// Checks `password` against `hash`. With `hash = None` (unknown user) it performs the
    /// same work against a dummy hash and returns `false`, so that response time does not
    /// tell whether a username exists.
    ///
    /// # Errors
    /// [`HashError`] when overloaded or on failure.
    async fn verify(
        &self,
        password: &PasswordInput,
        hash: Option<PasswordHash>,
    ) -> Result<bool, HashError>;
}
