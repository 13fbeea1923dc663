//! RevokeSession: end one of the caller's sessions by id (e.g. a lost phone).

use std::sync::Arc;

use domain::SessionId;

use super::{Principal, store_failures};
use crate::Ports;
use crate::ports::SessionStore;

#[derive(Debug, thiserror::Error)]
pub enum RevokeSessionError {
    /// No live session with this id belongs to the caller.
    #[error("session not found")]
    NotFound,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("revoking the session failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(RevokeSessionError);

pub struct RevokeSession {
    sessions: Arc<dyn SessionStore>,
}

impl std::fmt::Debug for RevokeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeSession").finish_non_exhaustive()
    }
}

impl RevokeSession {
    pub fn new(ports: &Ports) -> Self {
        Self {
            sessions: ports.sessions.clone(),
        }
    }

    /// # Errors
    /// See [`RevokeSessionError`]. The store is addressed through the caller's user id,
    /// so another user's session id is simply not found.
    pub async fn execute(
        &self,
        principal: Principal,
        id: SessionId,
    ) -> Result<(), RevokeSessionError> {
        if self.sessions.revoke(principal.user_id, id).await? {
            tracing::info!(user_id = %principal.user_id, session_id = %id, "session revoked");
            Ok(())
        } else {
            Err(RevokeSessionError::NotFound)
        }
    }
}
