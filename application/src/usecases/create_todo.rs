//! CreateTodo: store a todo for the caller, and record the SMS that tells them so.
//!
//! The SMS goes into the outbox *before* the todo is stored, and the delivery worker
//! skips a notification whose todo does not exist. So whichever write fails, the client
//! is never told "created" for a todo that is not there, and no todo that was
//! acknowledged is ever left without its SMS being attempted. The SMS itself never
//! decides the answer: the seed failed the request when texting failed, after the todo
//! had been made.

use std::sync::Arc;

use domain::{Notification, NotificationId, Sms, Todo, TodoId, TodoTitle};
use tracing::instrument;

use super::{Caller, store_failures};
use crate::Ports;
use crate::ports::{Clock, IdGenerator, Outbox, TodoRepository};

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
    outbox: Arc<dyn Outbox>,
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
            outbox: ports.outbox.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
        }
    }

    /// # Errors
    /// See [`CreateTodoError`]. Nothing about the SMS can fail this call except the
    /// store being unavailable while recording it, before the todo exists.
    #[instrument(name = "create_todo", skip_all, fields(user_id = %caller.principal.user_id))]
    pub async fn execute(
        &self,
        caller: &Caller,
        request: CreateTodoRequest,
    ) -> Result<Todo, CreateTodoError> {
        let title = TodoTitle::parse(&request.title).map_err(CreateTodoError::InvalidTitle)?;
        let now = self.clock.now();
        let todo = Todo {
            id: TodoId::from_uuid(self.ids.new_uuid()),
            user_id: caller.principal.user_id,
            title,
            completed: false,
            created_at: now,
            updated_at: now,
        };
        // A user without a phone gets no SMS, and no error. The profile came with the
        // session check, in the same store round trip.
        let user = &caller.user;
        if let Some(phone) = user.phone.clone() {
            let notification = Notification {
                id: NotificationId::from_uuid(self.ids.new_uuid()),
                user_id: user.id,
                todo_id: todo.id,
                sms: Sms::todo_created(&user.username, phone),
                attempts: 0,
                created_at: now,
            };
            self.outbox.enqueue(&notification).await?;
            tracing::debug!(notification_id = %notification.id, todo_id = %todo.id, "sms queued");
        }
        self.todos.insert(&todo).await?;
        tracing::info!(todo_id = %todo.id, "todo created");
        Ok(todo)
    }
}

#[cfg(test)]
mod tests {
    use domain::{PhoneNumber, TodoTitleError};

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

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("+4915112345678").expect("valid")
    }

    fn user_with_phone() -> domain::User {
        let mut user = user();
        user.phone = Some(phone());
        user
    }

    fn caller(user: domain::User) -> Caller {
        Caller {
            principal: principal(),
            user,
        }
    }

    fn expected_todo() -> Todo {
        Todo {
            id: TodoId::from_uuid(seq(1)),
            user_id: USER_ID,
            title: TodoTitle::parse("buy milk").expect("valid"),
            completed: false,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    #[tokio::test]
    async fn stores_a_trimmed_open_todo_and_queues_the_seeds_sms_first() {
        let mut mocks = Mocks::new();
        let mut order = mockall::Sequence::new();
        let who = caller(user_with_phone());
        let queued = Captured::new();
        let record = queued.clone();
        mocks
            .outbox
            .expect_enqueue()
            .times(1)
            .in_sequence(&mut order)
            .returning(move |n| {
                record.set(n);
                Ok(())
            });
        let stored = Captured::new();
        let record = stored.clone();
        mocks
            .todos
            .expect_insert()
            .times(1)
            .in_sequence(&mut order)
            .returning(move |todo| {
                record.set(todo);
                Ok(())
            });

        let todo = create(mocks)
            .execute(&who, request("   buy milk \n"))
            .await
            .expect("created");

        assert_eq!(todo, expected_todo());
        assert_eq!(stored.get(), expected_todo());
        assert_eq!(
            queued.get(),
            Notification {
                id: NotificationId::from_uuid(seq(2)),
                user_id: USER_ID,
                todo_id: todo.id,
                sms: Sms {
                    to: phone(),
                    text: "Dear alice, a todo was created from your account just now.".into(),
                },
                attempts: 0,
                created_at: NOW,
            }
        );
    }

    #[tokio::test]
    async fn a_user_without_a_phone_gets_no_sms_and_no_error() {
        let mut mocks = Mocks::new();
        let who = caller(user());
        mocks.outbox.expect_enqueue().never();
        mocks.todos.expect_insert().times(1).returning(|_| Ok(()));

        let todo = create(mocks)
            .execute(&who, request("buy milk"))
            .await
            .expect("created");
        assert_eq!(todo, expected_todo());
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
            mocks.outbox.expect_enqueue().never();
            mocks.ids = no_ids();

            let result = create(mocks).execute(&caller(user()), request(raw)).await;

            match result {
                Err(CreateTodoError::InvalidTitle(err)) => assert_eq!(err, expected),
                other => panic!("{raw:?}: expected InvalidTitle, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn outbox_unavailable_fails_before_the_todo_exists() {
        let mut mocks = Mocks::new();
        let who = caller(user_with_phone());
        mocks
            .outbox
            .expect_enqueue()
            .times(1)
            .returning(|_| Err(unavailable()));
        mocks.todos.expect_insert().never();

        let result = create(mocks).execute(&who, request("buy milk")).await;
        assert!(
            matches!(result, Err(CreateTodoError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_unavailable_is_unavailable() {
        let mut mocks = Mocks::new();
        let who = caller(user());
        mocks
            .todos
            .expect_insert()
            .times(1)
            .returning(|_| Err(unavailable()));

        let result = create(mocks).execute(&who, request("buy milk")).await;
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
            .execute(&caller(user()), request("buy milk"))
            .await;
        assert!(
            matches!(result, Err(CreateTodoError::Unexpected(_))),
            "{result:?}"
        );
    }
}
