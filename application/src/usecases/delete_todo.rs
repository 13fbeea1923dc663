//! DeleteTodo: remove one of the caller's todos.

use std::sync::Arc;

use domain::TodoId;

use super::{Principal, store_failures};
use crate::Ports;
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
