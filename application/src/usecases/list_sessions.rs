//! ListSessions: the caller's live sessions, marking the one making the request.

use std::sync::Arc;

use domain::Session;

use super::{Principal, store_failures};
use crate::Ports;
use crate::ports::SessionStore;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub session: Session,
    pub current: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ListSessionsError {
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("listing sessions failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(ListSessionsError);

pub struct ListSessions {
    sessions: Arc<dyn SessionStore>,
}

impl std::fmt::Debug for ListSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListSessions").finish_non_exhaustive()
    }
}

impl ListSessions {
    pub fn new(ports: &Ports) -> Self {
        Self {
            sessions: ports.sessions.clone(),
        }
    }

    /// # Errors
    /// See [`ListSessionsError`].
    pub async fn execute(
        &self,
        principal: Principal,
    ) -> Result<Vec<SessionView>, ListSessionsError> {
        let sessions = self.sessions.list(principal.user_id).await?;
        Ok(sessions
            .into_iter()
            .map(|session| SessionView {
                current: session.id == principal.session_id,
                session,
            })
            .collect())
    }
}
