//! GetTodo: one of the caller's todos. Another user's todo is indistinguishable from a
//! missing one.

use std::sync::Arc;

use domain::{Todo, TodoId};

use super::shared::{Principal, store_failures};
use crate::ports::Ports;
use crate::ports::TodoRepository;

#[derive(Debug, thiserror::Error)]
pub enum GetTodoError {
    #[error("todo not found")]
    NotFound,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("todo lookup failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(GetTodoError);

pub struct GetTodo {
    todos: Arc<dyn TodoRepository>,
}

impl std::fmt::Debug for GetTodo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetTodo").finish_non_exhaustive()
    }
}

impl GetTodo {
    pub fn new(ports: &Ports) -> Self {
        Self {
            todos: ports.todos.clone(),
        }
    }

    /// # Errors
    /// See [`GetTodoError`].
    pub async fn execute(&self, principal: Principal, id: TodoId) -> Result<Todo, GetTodoError> {
        self.todos
            .get(principal.user_id, id)
            .await?
            .ok_or(GetTodoError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::usecases::testkit::*;

    fn get(mocks: Mocks) -> GetTodo {
        GetTodo::new(&mocks.into_ports())
    }

    #[tokio::test]
    async fn returns_the_callers_todo() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_get()
            .with(eq(USER_ID), eq(TODO_ID))
            .times(1)
            .returning(|_, _| Ok(Some(todo("buy milk", false))));

        let found = get(mocks)
            .execute(principal(), TODO_ID)
            .await
            .expect("found");

        assert_eq!(found, todo("buy milk", false));
    }

    #[tokio::test]
    async fn missing_or_foreign_todo_is_not_found() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_get()
            .with(eq(USER_ID), eq(TODO_ID))
            .times(1)
            .returning(|_, _| Ok(None));

        let result = get(mocks).execute(principal(), TODO_ID).await;

        assert!(matches!(result, Err(GetTodoError::NotFound)), "{result:?}");
    }

    #[tokio::test]
    async fn store_unavailable_is_unavailable() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_get()
            .times(1)
            .returning(|_, _| Err(unavailable()));

        let result = get(mocks).execute(principal(), TODO_ID).await;

        assert!(
            matches!(result, Err(GetTodoError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_failure_is_unexpected() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_get()
            .times(1)
            .returning(|_, _| Err(unexpected()));

        let result = get(mocks).execute(principal(), TODO_ID).await;

        assert!(
            matches!(result, Err(GetTodoError::Unexpected(_))),
            "{result:?}"
        );
    }
}
