//! GetTodo: one of the caller's todos. Another user's todo is indistinguishable from a
//! missing one.

use std::sync::Arc;

use domain::{Todo, TodoId};

use super::{Principal, store_failures};
use crate::Ports;
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
