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
