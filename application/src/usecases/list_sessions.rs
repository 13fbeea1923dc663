//! ListSessions: one page of the caller's live sessions, marking the one making the
//! request.

use std::sync::Arc;

use domain::Session;

use super::shared::{Field, Principal, page_size, store_failures};
use crate::ports::Ports;
use crate::ports::{Page, SessionCursor, SessionStore};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub session: Session,
    pub current: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ListSessionsError {
    /// `limit` is outside 1..=[`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE).
    #[error("{field:?}: {message}")]
    Invalid { field: Field, message: String },
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

    /// The page after `after` (the first page when `None`), of at most `limit` sessions
    /// ([`DEFAULT_PAGE_SIZE`](crate::DEFAULT_PAGE_SIZE) when `None`).
    ///
    /// # Errors
    /// See [`ListSessionsError`].
    pub async fn execute(
        &self,
        principal: Principal,
        after: Option<SessionCursor>,
        limit: Option<u32>,
    ) -> Result<Page<SessionView, SessionCursor>, ListSessionsError> {
        let limit = page_size(limit).map_err(|message| ListSessionsError::Invalid {
            field: Field::Limit,
            message,
        })?;
        let page = self.sessions.list(principal.user_id, after, limit).await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|session| SessionView {
                    current: session.id == principal.session_id,
                    session,
                })
                .collect(),
            next: page.next,
        })
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::usecases::testkit::*;
    use crate::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

    fn list(mocks: Mocks) -> ListSessions {
        ListSessions::new(&mocks.into_ports())
    }

    #[tokio::test]
    async fn marks_only_the_callers_session_as_current_and_keeps_the_cursor() {
        let sessions = vec![session(OTHER_SESSION_ID), session(SESSION_ID)];
        let next = SessionCursor {
            created_at: sessions[1].created_at,
            id: SESSION_ID,
        };
        let after = SessionCursor {
            created_at: sessions[0].created_at,
            id: OTHER_SESSION_ID,
        };
        let returned = Page {
            items: sessions.clone(),
            next: Some(next),
        };
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_list()
            .with(eq(USER_ID), eq(Some(after)), eq(DEFAULT_PAGE_SIZE as usize))
            .times(1)
            .return_once(move |_, _, _| Ok(returned));

        let views = list(mocks)
            .execute(principal(), Some(after), None)
            .await
            .expect("listed");

        assert_eq!(
            views,
            Page {
                items: vec![
                    SessionView {
                        session: sessions[0].clone(),
                        current: false,
                    },
                    SessionView {
                        session: sessions[1].clone(),
                        current: true,
                    },
                ],
                next: Some(next),
            }
        );
    }

    #[tokio::test]
    async fn page_sizes_outside_the_bounds_are_refused_without_reading() {
        for limit in [0, MAX_PAGE_SIZE + 1] {
            let mut mocks = Mocks::new();
            mocks.sessions.expect_list().never();
            let result = list(mocks).execute(principal(), None, Some(limit)).await;
            assert!(
                matches!(
                    result,
                    Err(ListSessionsError::Invalid {
                        field: Field::Limit,
                        ..
                    })
                ),
                "{limit}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn no_sessions_is_an_empty_page() {
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_list()
            .with(eq(USER_ID), eq(None), eq(1))
            .times(1)
            .returning(|_, _, _| {
                Ok(Page {
                    items: Vec::new(),
                    next: None,
                })
            });

        let views = list(mocks)
            .execute(principal(), None, Some(1))
            .await
            .expect("listed");

        assert!(views.items.is_empty());
        assert_eq!(views.next, None);
    }

    #[tokio::test]
    async fn store_unavailable_is_unavailable() {
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_list()
            .times(1)
            .returning(|_, _, _| Err(unavailable()));

        let result = list(mocks).execute(principal(), None, None).await;

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
            .returning(|_, _, _| Err(unexpected()));

        let result = list(mocks).execute(principal(), None, None).await;

        assert!(
            matches!(result, Err(ListSessionsError::Unexpected(_))),
            "{result:?}"
        );
    }
}
