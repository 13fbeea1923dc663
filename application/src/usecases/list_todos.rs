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

#[cfg(test)]
mod tests {
    use domain::{TodoId, TodoTitle};
    use mockall::predicate::eq;

    use super::*;
    use crate::usecases::testkit::*;

    fn list(mocks: Mocks) -> ListTodos {
        ListTodos::new(&mocks.into_ports())
    }

    #[tokio::test]
    async fn returns_the_callers_todos_in_store_order() {
        let first = todo("first", true);
        let mut second = todo("second", false);
        second.id = TodoId::from_uuid(seq(2));
        second.title = TodoTitle::parse("second").expect("valid");
        let todos = vec![first, second];
        let returned = todos.clone();
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_list()
            .with(eq(USER_ID))
            .times(1)
            .return_once(move |_| Ok(returned));

        let listed = list(mocks).execute(principal()).await.expect("listed");

        assert_eq!(listed, todos);
    }

    #[tokio::test]
    async fn no_todos_is_an_empty_list() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_list()
            .with(eq(USER_ID))
            .times(1)
            .returning(|_| Ok(Vec::new()));

        let listed = list(mocks).execute(principal()).await.expect("listed");

        assert!(listed.is_empty());
    }

    #[tokio::test]
    async fn store_unavailable_is_unavailable() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_list()
            .times(1)
            .returning(|_| Err(unavailable()));

        let result = list(mocks).execute(principal()).await;

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
            .returning(|_| Err(unexpected()));

        let result = list(mocks).execute(principal()).await;

        assert!(
            matches!(result, Err(ListTodosError::Unexpected(_))),
            "{result:?}"
        );
    }
}
