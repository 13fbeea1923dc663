//! DeleteTodo: remove one of the caller's todos.

use std::sync::Arc;

use domain::TodoId;

use super::shared::{Principal, store_failures};
use crate::ports::Ports;
use crate::ports::TodoRepository;

#[derive(Debug, thiserror::Error)]
pub enum DeleteTodoError {
    #[error("todo not found")]
    NotFound,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("todo deletion failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(DeleteTodoError);

pub struct DeleteTodo {
    todos: Arc<dyn TodoRepository>,
}

impl std::fmt::Debug for DeleteTodo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeleteTodo").finish_non_exhaustive()
    }
}

impl DeleteTodo {
    pub fn new(ports: &Ports) -> Self {
        Self {
            todos: ports.todos.clone(),
        }
    }

    /// # Errors
    /// See [`DeleteTodoError`].
    pub async fn execute(&self, principal: Principal, id: TodoId) -> Result<(), DeleteTodoError> {
        if self.todos.delete(principal.user_id, id).await? {
            Ok(())
        } else {
            Err(DeleteTodoError::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::usecases::testkit::*;

    fn delete(mocks: Mocks) -> DeleteTodo {
        DeleteTodo::new(&mocks.into_ports())
    }

    #[tokio::test]
    async fn deletes_the_callers_todo() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_delete()
            .with(eq(USER_ID), eq(TODO_ID))
            .times(1)
            .returning(|_, _| Ok(true));

        delete(mocks)
            .execute(principal(), TODO_ID)
            .await
            .expect("deleted");
    }

    #[tokio::test]
    async fn missing_or_foreign_todo_is_not_found() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_delete()
            .with(eq(USER_ID), eq(TODO_ID))
            .times(1)
            .returning(|_, _| Ok(false));

        let result = delete(mocks).execute(principal(), TODO_ID).await;

        assert!(
            matches!(result, Err(DeleteTodoError::NotFound)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_unavailable_is_unavailable() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_delete()
            .times(1)
            .returning(|_, _| Err(unavailable()));

        let result = delete(mocks).execute(principal(), TODO_ID).await;

        assert!(
            matches!(result, Err(DeleteTodoError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_failure_is_unexpected() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_delete()
            .times(1)
            .returning(|_, _| Err(unexpected()));

        let result = delete(mocks).execute(principal(), TODO_ID).await;

        assert!(
            matches!(result, Err(DeleteTodoError::Unexpected(_))),
            "{result:?}"
        );
    }
}
