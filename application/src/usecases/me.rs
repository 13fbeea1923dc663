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
