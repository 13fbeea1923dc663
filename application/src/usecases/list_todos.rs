//! ListTodos: one page of the caller's todos, oldest first.
//!
//! Pages are bounded ([`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE)) and only the page is read
//! from the store, so no request makes the server or the store hold more than a page,
//! however many todos the caller has.

use std::sync::Arc;

use domain::Todo;

use super::shared::{Field, Principal, page_size, store_failures};
use crate::ports::Ports;
use crate::ports::{Page, TodoCursor, TodoRepository};

#[derive(Debug, thiserror::Error)]
pub enum ListTodosError {
    /// `limit` is outside 1..=[`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE).
    #[error("{field:?}: {message}")]
    Invalid { field: Field, message: String },
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("listing todos failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(ListTodosError);

pub struct ListTodos {
    todos: Arc<dyn TodoRepository>,
}

impl std::fmt::Debug for ListTodos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListTodos").finish_non_exhaustive()
    }
}

impl ListTodos {
    pub fn new(ports: &Ports) -> Self {
        Self {
            todos: ports.todos.clone(),
        }
    }

    /// The page after `after` (the first page when `None`), of at most `limit` todos
    /// ([`DEFAULT_PAGE_SIZE`](crate::DEFAULT_PAGE_SIZE) when `None`).
    ///
    /// # Errors
    /// See [`ListTodosError`].
    pub async fn execute(
        &self,
        principal: Principal,
        after: Option<TodoCursor>,
        limit: Option<u32>,
    ) -> Result<Page<Todo, TodoCursor>, ListTodosError> {
        let limit = page_size(limit).map_err(|message| ListTodosError::Invalid {
            field: Field::Limit,
            message,
        })?;
        Ok(self.todos.list(principal.user_id, after, limit).await?)
    }
}

#[cfg(test)]
mod tests {
    use domain::{TodoId, TodoTitle};
    use mockall::predicate::eq;

    use super::*;
    use crate::usecases::testkit::*;
    use crate::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

    fn list(mocks: Mocks) -> ListTodos {
        ListTodos::new(&mocks.into_ports())
    }

    #[tokio::test]
    async fn returns_the_stores_page_with_its_next_cursor() {
        let first = todo("first", true);
        let mut second = todo("second", false);
        second.id = TodoId::from_uuid(seq(2));
        second.title = TodoTitle::parse("second").expect("valid");
        let page = Page {
            items: vec![first, second],
            next: Some(TodoCursor(7)),
        };
        let returned = page.clone();
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_list()
            .with(eq(USER_ID), eq(Some(TodoCursor(3))), eq(2))
            .times(1)
            .return_once(move |_, _, _| Ok(returned));

        let listed = list(mocks)
            .execute(principal(), Some(TodoCursor(3)), Some(2))
            .await
            .expect("listed");

        assert_eq!(listed, page);
    }

    #[tokio::test]
    async fn the_first_page_has_the_default_size() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_list()
            .with(eq(USER_ID), eq(None), eq(DEFAULT_PAGE_SIZE as usize))
            .times(1)
            .returning(|_, _, _| {
                Ok(Page {
                    items: Vec::new(),
                    next: None,
                })
            });

        let listed = list(mocks)
            .execute(principal(), None, None)
            .await
            .expect("listed");

        assert!(listed.items.is_empty());
        assert_eq!(listed.next, None);
    }

    #[tokio::test]
    async fn page_sizes_outside_the_bounds_are_refused_without_reading() {
        for limit in [0, MAX_PAGE_SIZE + 1, u32::MAX] {
            let mut mocks = Mocks::new();
            mocks.todos.expect_list().never();
            let result = list(mocks).execute(principal(), None, Some(limit)).await;
            assert!(
                matches!(
                    result,
                    Err(ListTodosError::Invalid {
                        field: Field::Limit,
                        ..
                    })
                ),
                "{limit}: {result:?}"
            );
        }
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_list()
            .with(eq(USER_ID), eq(None), eq(MAX_PAGE_SIZE as usize))
            .times(1)
            .returning(|_, _, _| {
                Ok(Page {
                    items: Vec::new(),
                    next: None,
                })
            });
        list(mocks)
            .execute(principal(), None, Some(MAX_PAGE_SIZE))
            .await
            .expect("the largest page is allowed");
    }

    #[tokio::test]
    async fn store_unavailable_is_unavailable() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_list()
            .times(1)
            .returning(|_, _, _| Err(unavailable()));

        let result = list(mocks).execute(principal(), None, None).await;

        assert!(
            matches!(result, Err(ListTodosError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_failure_is_unexpected() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_list()
            .times(1)
            .returning(|_, _, _| Err(unexpected()));

        let result = list(mocks).execute(principal(), None, None).await;

        assert!(
            matches!(result, Err(ListTodosError::Unexpected(_))),
            "{result:?}"
        );
    }
}
