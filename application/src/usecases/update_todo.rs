//! UpdateTodo: change the title and/or completion of one of the caller's todos.

use std::sync::Arc;

use domain::{Todo, TodoId, TodoTitle};

use super::{Principal, store_failures};
use crate::Ports;
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
mod tests {
    use domain::TodoTitleError;
    use mockall::predicate::eq;

    use super::*;
    use crate::usecases::testkit::*;

    fn update(mocks: Mocks) -> UpdateTodo {
        UpdateTodo::new(&mocks.into_ports())
    }

    fn expect_existing(mocks: &mut Mocks, existing: Todo) {
        mocks
            .todos
            .expect_get()
            .with(eq(USER_ID), eq(TODO_ID))
            .times(1)
            .return_once(move |_, _| Ok(Some(existing)));
    }

    /// Expects one `update` with exactly `expected`, answering `found`.
    fn expect_update(mocks: &mut Mocks, expected: Todo, found: bool) {
        mocks
            .todos
            .expect_update()
            .with(eq(expected))
            .times(1)
            .returning(move |_| Ok(found));
    }

    fn title(raw: &str) -> TodoTitle {
        TodoTitle::parse(raw).expect("valid title")
    }

    #[tokio::test]
    async fn title_only_keeps_completion_and_bumps_updated_at() {
        let existing = todo("buy milk", true);
        let mut expected = existing.clone();
        expected.title = title("buy oat milk");
        expected.updated_at = NOW;
        let mut mocks = Mocks::new();
        expect_existing(&mut mocks, existing);
        expect_update(&mut mocks, expected.clone(), true);

        let updated = update(mocks)
            .execute(
                principal(),
                TODO_ID,
                UpdateTodoRequest {
                    title: Some("  buy oat milk  ".into()),
                    completed: None,
                },
            )
            .await
            .expect("updated");

        assert_eq!(updated, expected);
        assert!(updated.completed);
        assert_eq!(updated.created_at, todo("x", false).created_at);
    }

    #[tokio::test]
    async fn completion_only_keeps_the_title() {
        let existing = todo("buy milk", false);
        let mut expected = existing.clone();
        expected.completed = true;
        expected.updated_at = NOW;
        let mut mocks = Mocks::new();
        expect_existing(&mut mocks, existing);
        expect_update(&mut mocks, expected.clone(), true);

        let updated = update(mocks)
            .execute(
                principal(),
                TODO_ID,
                UpdateTodoRequest {
                    title: None,
                    completed: Some(true),
                },
            )
            .await
            .expect("updated");

        assert_eq!(updated, expected);
        assert_eq!(updated.title.as_str(), "buy milk");
    }

    #[tokio::test]
    async fn both_fields_change_together() {
        let existing = todo("buy milk", true);
        let mut expected = existing.clone();
        expected.title = title("sell milk");
        expected.completed = false;
        expected.updated_at = NOW;
        let mut mocks = Mocks::new();
        expect_existing(&mut mocks, existing);
        expect_update(&mut mocks, expected.clone(), true);

        let updated = update(mocks)
            .execute(
                principal(),
                TODO_ID,
                UpdateTodoRequest {
                    title: Some("sell milk".into()),
                    completed: Some(false),
                },
            )
            .await
            .expect("updated");

        assert_eq!(updated, expected);
    }

    #[tokio::test]
    async fn empty_request_changes_nothing_but_updated_at() {
        let existing = todo("buy milk", false);
        let mut expected = existing.clone();
        expected.updated_at = NOW;
        let mut mocks = Mocks::new();
        expect_existing(&mut mocks, existing);
        expect_update(&mut mocks, expected.clone(), true);

        let updated = update(mocks)
            .execute(principal(), TODO_ID, UpdateTodoRequest::default())
            .await
            .expect("updated");

        assert_eq!(updated, expected);
    }

    #[tokio::test]
    async fn invalid_title_is_refused_before_the_store() {
        for (raw, expected) in [
            ("  ", TodoTitleError::Empty),
            (
                &*"y".repeat(TodoTitle::MAX_CHARS + 1),
                TodoTitleError::TooLong,
            ),
            ("a\nb", TodoTitleError::ControlCharacter),
        ] {
            let mut mocks = Mocks::new();
            mocks.todos.expect_get().never();
            mocks.todos.expect_update().never();

            let result = update(mocks)
                .execute(
                    principal(),
                    TODO_ID,
                    UpdateTodoRequest {
                        title: Some(raw.into()),
                        completed: Some(true),
                    },
                )
                .await;

            match result {
                Err(UpdateTodoError::InvalidTitle(err)) => assert_eq!(err, expected),
                other => panic!("{raw:?}: expected InvalidTitle, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn missing_or_foreign_todo_is_not_found_without_an_update() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_get()
            .with(eq(USER_ID), eq(TODO_ID))
            .times(1)
            .returning(|_, _| Ok(None));
        mocks.todos.expect_update().never();

        let result = update(mocks)
            .execute(
                principal(),
                TODO_ID,
                UpdateTodoRequest {
                    title: None,
                    completed: Some(true),
                },
            )
            .await;

        assert!(
            matches!(result, Err(UpdateTodoError::NotFound)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn todo_deleted_before_the_update_is_not_found() {
        let existing = todo("buy milk", false);
        let mut expected = existing.clone();
        expected.completed = true;
        expected.updated_at = NOW;
        let mut mocks = Mocks::new();
        expect_existing(&mut mocks, existing);
        expect_update(&mut mocks, expected, false);

        let result = update(mocks)
            .execute(
                principal(),
                TODO_ID,
                UpdateTodoRequest {
                    title: None,
                    completed: Some(true),
                },
            )
            .await;

        assert!(
            matches!(result, Err(UpdateTodoError::NotFound)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_unavailable_on_get_is_unavailable() {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_get()
            .times(1)
            .returning(|_, _| Err(unavailable()));
        mocks.todos.expect_update().never();

        let result = update(mocks)
            .execute(principal(), TODO_ID, UpdateTodoRequest::default())
            .await;

        assert!(
            matches!(result, Err(UpdateTodoError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_unavailable_on_update_is_unavailable() {
        let mut mocks = Mocks::new();
        expect_existing(&mut mocks, todo("buy milk", false));
        mocks
            .todos
            .expect_update()
            .times(1)
            .returning(|_| Err(unavailable()));

        let result = update(mocks)
            .execute(principal(), TODO_ID, UpdateTodoRequest::default())
            .await;

        assert!(
            matches!(result, Err(UpdateTodoError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_failure_is_unexpected() {
        let mut mocks = Mocks::new();
        expect_existing(&mut mocks, todo("buy milk", false));
        mocks
            .todos
            .expect_update()
            .times(1)
            .returning(|_| Err(unexpected()));

        let result = update(mocks)
            .execute(principal(), TODO_ID, UpdateTodoRequest::default())
            .await;

        assert!(
            matches!(result, Err(UpdateTodoError::Unexpected(_))),
            "{result:?}"
        );
    }
}
