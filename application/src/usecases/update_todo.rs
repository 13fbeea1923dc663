//! UpdateTodo: change the title and/or completion of one of the caller's todos.

use std::sync::Arc;

use domain::{Todo, TodoId, TodoTitle};

use super::shared::{Principal, store_failures};
use crate::ports::Ports;
use crate::ports::{Clock, TodoRepository};

/// Fields left `None` stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UpdateTodoRequest {
    pub title: Option<String>,
    pub completed: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateTodoError {
    #[error("todo not found")]
    NotFound,
    #[error("invalid title: {0}")]
    InvalidTitle(#[source] domain::TodoTitleError),
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("todo update failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(UpdateTodoError);

pub struct UpdateTodo {
    todos: Arc<dyn TodoRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for UpdateTodo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateTodo").finish_non_exhaustive()
    }
}

impl UpdateTodo {
    pub fn new(ports: &Ports) -> Self {
        Self {
            todos: ports.todos.clone(),
            clock: ports.clock.clone(),
        }
    }

    /// # Errors
    /// See [`UpdateTodoError`]. The title is validated before the store is touched.
    pub async fn execute(
        &self,
        principal: Principal,
        id: TodoId,
        request: UpdateTodoRequest,
    ) -> Result<Todo, UpdateTodoError> {
        let title = request
            .title
            .as_deref()
            .map(TodoTitle::parse)
            .transpose()
            .map_err(UpdateTodoError::InvalidTitle)?;
        let mut todo = self
            .todos
            .get(principal.user_id, id)
            .await?
            .ok_or(UpdateTodoError::NotFound)?;
        if let Some(title) = title {
            todo.title = title;
        }
        if let Some(completed) = request.completed {
            todo.completed = completed;
        }
        todo.updated_at = self.clock.now();
        if !self.todos.update(&todo).await? {
            return Err(UpdateTodoError::NotFound);
        }
        Ok(todo)
    }
}

#[cfg(test)]
mod tests;
