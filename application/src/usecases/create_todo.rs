//! CreateTodo: store a todo for the caller.

use std::sync::Arc;

use domain::{Todo, TodoId, TodoTitle};
use tracing::instrument;

use super::{Principal, store_failures};
use crate::Ports;
use crate::ports::{Clock, IdGenerator, TodoRepository};

#[derive(Debug, Clone)]
pub struct CreateTodoRequest {
    pub title: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateTodoError {
    #[error("invalid title: {0}")]
    InvalidTitle(#[source] domain::TodoTitleError),
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("todo creation failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(CreateTodoError);

pub struct CreateTodo {
    todos: Arc<dyn TodoRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl std::fmt::Debug for CreateTodo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateTodo").finish_non_exhaustive()
    }
}

impl CreateTodo {
    pub fn new(ports: &Ports) -> Self {
        Self {
            todos: ports.todos.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
        }
    }

    /// # Errors
    /// See [`CreateTodoError`].
    #[instrument(name = "create_todo", skip_all, fields(user_id = %principal.user_id))]
    pub async fn execute(
        &self,
        principal: Principal,
        request: CreateTodoRequest,
    ) -> Result<Todo, CreateTodoError> {
        let title = TodoTitle::parse(&request.title).map_err(CreateTodoError::InvalidTitle)?;
        let now = self.clock.now();
        let todo = Todo {
            id: TodoId::from_uuid(self.ids.new_uuid()),
            user_id: principal.user_id,
            title,
            completed: false,
            created_at: now,
            updated_at: now,
        };
        self.todos.insert(&todo).await?;
        tracing::info!(todo_id = %todo.id, "todo created");
        Ok(todo)
    }
}

#[cfg(test)]
mod tests {
    use domain::TodoTitleError;

    use super::*;
    use crate::usecases::testkit::*;

    fn create(mocks: Mocks) -> CreateTodo {
        CreateTodo::new(&mocks.into_ports())
    }

    fn request(title: &str) -> CreateTodoRequest {
        CreateTodoRequest {
            title: title.into(),
        }
    }

    #[tokio::test]
    async fn stores_a_trimmed_open_todo_owned_by_the_caller() {
        let mut mocks = Mocks::new();
        let stored = Captured::new();
        let record = stored.clone();
        mocks.todos.expect_insert().times(1).returning(move |todo| {
            record.set(todo);
            Ok(())
        });

        let todo = create(mocks)
            .execute(principal(), request("   buy milk \n"))
            .await
            .expect("created");

        let expected = Todo {
            id: TodoId::from_uuid(seq(1)),
            user_id: USER_ID,
            title: TodoTitle::parse("buy milk").expect("valid"),
            completed: false,
            created_at: NOW,
            updated_at: NOW,
        };
        assert_eq!(stored.get(), expected);
        assert_eq!(todo, expected);
        assert_eq!(todo.title.as_str(), "buy milk");
    }

    #[tokio::test]
    async fn invalid_title_never_reaches_the_store() {
        for (raw, expected) in [
            ("   ", TodoTitleError::Empty),
            ("", TodoTitleError::Empty),
            (
                &*"x".repeat(TodoTitle::MAX_CHARS + 1),
                TodoTitleError::TooLong,
            ),
            ("a\u{7}b", TodoTitleError::ControlCharacter),
        ] {
            let mut mocks = Mocks::new();
            mocks.todos.expect_insert().never();
            mocks.ids = no_ids();

            let result = create(mocks).execute(principal(), request(raw)).await;

            match result {
                Err(CreateTodoError::InvalidTitle(err)) => assert_eq!(err, expected),
                other => panic!("{raw:?}: expected InvalidTitle, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn store_unavailable_is_unavailable() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_insert()
            .times(1)
            .returning(|_| Err(unavailable()));

        let result = create(mocks)
            .execute(principal(), request("buy milk"))
            .await;

        assert!(
            matches!(result, Err(CreateTodoError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_failure_is_unexpected() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_insert()
            .times(1)
            .returning(|_| Err(unexpected()));

        let result = create(mocks)
            .execute(principal(), request("buy milk"))
            .await;

        assert!(
            matches!(result, Err(CreateTodoError::Unexpected(_))),
            "{result:?}"
        );
    }
}
