//! ListTodos: the caller's todos, oldest first.

use std::sync::Arc;

use domain::Todo;

use super::{Principal, store_failures};
use crate::Ports;
use crate::ports::TodoRepository;

#[derive(Debug, thiserror::Error)]
pub enum ListTodosError {
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

    /// # Errors
    /// See [`ListTodosError`].
    pub async fn execute(&self, principal: Principal) -> Result<Vec<Todo>, ListTodosError> {
        Ok(self.todos.list(principal.user_id).await?)
    }
}
