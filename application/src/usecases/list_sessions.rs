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

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::usecases::testkit::*;

    fn list(mocks: Mocks) -> ListSessions {
        ListSessions::new(&mocks.into_ports())
    }

    #[tokio::test]
    async fn marks_only_the_callers_session_as_current() {
        let sessions = vec![session(OTHER_SESSION_ID), session(SESSION_ID)];
        let returned = sessions.clone();
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_list()
            .with(eq(USER_ID))
            .times(1)
            .return_once(move |_| Ok(returned));

        let views = list(mocks).execute(principal()).await.expect("listed");

        assert_eq!(
            views,
            vec![
                SessionView {
                    session: sessions[0].clone(),
                    current: false,
                },
                SessionView {
                    session: sessions[1].clone(),
                    current: true,
                },
            ]
        );
    }

    #[tokio::test]
    async fn no_sessions_is_an_empty_list() {
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_list()
            .with(eq(USER_ID))
            .times(1)
            .returning(|_| Ok(Vec::new()));

        let views = list(mocks).execute(principal()).await.expect("listed");

        assert!(views.is_empty());
    }

    #[tokio::test]
    async fn store_unavailable_is_unavailable() {
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_list()
            .times(1)
            .returning(|_| Err(unavailable()));

        let result = list(mocks).execute(principal()).await;

        assert!(
            matches!(result, Err(ListSessionsError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_failure_is_unexpected() {
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_list()
            .times(1)
            .returning(|_| Err(unexpected()));

        let result = list(mocks).execute(principal()).await;

        assert!(
            matches!(result, Err(ListSessionsError::Unexpected(_))),
            "{result:?}"
        );
    }
}
