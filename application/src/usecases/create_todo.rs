//! CreateTodo: store a todo for the caller, and record the SMS that tells them so.
//!
//! The SMS goes into the outbox *before* the todo is stored, and the delivery worker
//! skips a notification whose todo does not exist. So whichever write fails, the client
//! is never told "created" for a todo that is not there, and no todo that was
//! acknowledged is ever left without its SMS being attempted. The SMS itself never
//! decides the answer: the seed failed the request when texting failed, after the todo
//! had been made.
//!
//! The SMS goes only to a verified number, within the SMS caps (see the `sms` module);
//! when a rule stops it, the todo is created all the same and the skip is counted.

use std::sync::Arc;

use domain::{Todo, TodoId, TodoTitle};
use tracing::instrument;

use super::{Caller, SmsGate, store_failures};
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
    sms: SmsGate,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl std::fmt::Debug for CreateTodo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateTodo").finish_non_exhaustive()
    }
}

impl CreateTodo {
    pub(crate) fn new(ports: &Ports, sms: SmsGate) -> Self {
        Self {
            todos: ports.todos.clone(),
            sms,
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
        }
    }

    /// # Errors
    /// See [`CreateTodoError`]. Nothing about the SMS can fail this call except the
    /// store being unavailable while counting or recording it, before the todo exists.
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
        // A user without a verified phone gets no SMS, and no error; nor does one over
        // the caps. The profile came with the session check, in the same round trip.
        self.sms.todo_created(&caller.user, todo.id, now).await?;
        self.todos.insert(&todo).await?;
        tracing::info!(todo_id = %todo.id, "todo created");
        Ok(todo)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use domain::{
        CountryCode, Notification, NotificationId, NotificationKind, PhoneNumber, Sms,
        TodoTitleError,
    };

    use super::*;
    use crate::ports::{SmsAdmission, SmsLimit};
    use crate::usecases::testkit::*;
    use crate::usecases::{SmsKind, SmsOutcome, SmsPolicy, SmsStats};

    fn create_with(mocks: Mocks, policy: SmsPolicy) -> (CreateTodo, Arc<SmsStats>) {
        let stats = Arc::new(SmsStats::default());
        let ports = mocks.into_ports();
        let gate = SmsGate::new(&ports, policy, Arc::clone(&stats));
        (CreateTodo::new(&ports, gate), stats)
    }

    fn create(mocks: Mocks) -> CreateTodo {
        create_with(mocks, SmsPolicy::default()).0
    }

    /// The quota is asked once, for the sample user and number, under the default caps
    /// and without a cooldown, and answers `answer`.
    fn admits(mocks: &mut Mocks, answer: SmsAdmission) {
        mocks
            .sms_quota
            .expect_admit()
            .withf(|user, to, caps, cooldown| {
                *user == USER_ID
                    && *to == phone()
                    && *caps == SmsPolicy::default().caps
                    && cooldown.is_none()
            })
            .times(1)
            .returning(move |_, _, _, _| Ok(answer));
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
        user.phone_verified = true;
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
        mocks
            .sms_quota
            .expect_admit()
            .times(1)
            .in_sequence(&mut order)
            .returning(|_, _, _, _| Ok(SmsAdmission::Admitted));
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

        let (use_case, stats) = create_with(mocks, SmsPolicy::default());
        let todo = use_case
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
                kind: NotificationKind::TodoCreated { todo_id: todo.id },
                sms: Sms {
                    to: phone(),
                    text: "Dear alice, a todo was created from your account just now.".into(),
                    secret: false,
                },
                attempts: 0,
                created_at: NOW,
            }
        );
        assert_eq!(stats.get(SmsKind::TodoCreated, SmsOutcome::Queued), 1);
    }

    #[tokio::test]
    async fn an_unverified_number_gets_no_sms_and_the_skip_is_counted() {
        let mut mocks = Mocks::new();
        let mut unverified = user_with_phone();
        unverified.phone_verified = false;
        mocks.sms_quota.expect_admit().never();
        mocks.outbox.expect_enqueue().never();
        mocks.todos.expect_insert().times(1).returning(|_| Ok(()));
        let (use_case, stats) = create_with(mocks, SmsPolicy::default());

        let todo = use_case
            .execute(&caller(unverified), request("buy milk"))
            .await
            .expect("created all the same");

        assert_eq!(todo, expected_todo());
        assert_eq!(stats.get(SmsKind::TodoCreated, SmsOutcome::Unverified), 1);
        assert_eq!(stats.get(SmsKind::TodoCreated, SmsOutcome::Queued), 0);
    }

    #[tokio::test]
    async fn over_a_cap_the_todo_is_created_and_the_sms_skipped_and_counted() {
        for (limit, outcome) in [
            (SmsLimit::User, SmsOutcome::UserCap),
            (SmsLimit::Number, SmsOutcome::NumberCap),
        ] {
            let mut mocks = Mocks::new();
            admits(
                &mut mocks,
                SmsAdmission::Refused {
                    limit,
                    retry_after: Duration::from_secs(60),
                },
            );
            mocks.outbox.expect_enqueue().never();
            mocks.todos.expect_insert().times(1).returning(|_| Ok(()));
            let (use_case, stats) = create_with(mocks, SmsPolicy::default());

            let todo = use_case
                .execute(&caller(user_with_phone()), request("buy milk"))
                .await
                .expect("created all the same");

            assert_eq!(todo, expected_todo());
            assert_eq!(stats.get(SmsKind::TodoCreated, outcome), 1, "{limit:?}");
            assert_eq!(stats.get(SmsKind::TodoCreated, SmsOutcome::Queued), 0);
        }
    }

    #[tokio::test]
    async fn a_verified_number_outside_the_allow_list_is_never_texted() {
        // E.g. verified before the allow-list was configured.
        let mut mocks = Mocks::new();
        mocks.sms_quota.expect_admit().never();
        mocks.outbox.expect_enqueue().never();
        mocks.todos.expect_insert().times(1).returning(|_| Ok(()));
        let policy = SmsPolicy {
            allowed_countries: vec![CountryCode::parse("+1").expect("valid")],
            ..SmsPolicy::default()
        };
        let (use_case, stats) = create_with(mocks, policy);

        use_case
            .execute(&caller(user_with_phone()), request("buy milk"))
            .await
            .expect("created");

        assert_eq!(stats.get(SmsKind::TodoCreated, SmsOutcome::Country), 1);
    }

    #[tokio::test]
    async fn a_quota_that_cannot_answer_fails_closed_before_the_todo_exists() {
        let mut mocks = Mocks::new();
        mocks
            .sms_quota
            .expect_admit()
            .times(1)
            .returning(|_, _, _, _| Err(unavailable()));
        mocks.outbox.expect_enqueue().never();
        mocks.todos.expect_insert().never();

        let result = create(mocks)
            .execute(&caller(user_with_phone()), request("buy milk"))
            .await;

        assert!(
            matches!(result, Err(CreateTodoError::Unavailable(_))),
            "{result:?}"
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
        admits(&mut mocks, SmsAdmission::Admitted);
        // The SMS may be queued all the same (a lost reply): its count is not given back.
        mocks.sms_quota.expect_give_back().never();
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
