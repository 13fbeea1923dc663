//! Tests of [`CreateTodo`], over mocks of the ports it uses (see `testkit`).

use std::sync::Arc;

use domain::{
    CountryCode, Notification, NotificationId, NotificationKind, PhoneNumber, Sms, Timestamp,
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
    (CreateTodo::new(&ports, limits(), gate), stats)
}

fn limits() -> Limits {
    Limits {
        max_todos_per_user: 3,
        todo_creations: crate::ports::WindowLimit {
            max: 2,
            window: Duration::from_secs(60),
        },
        idempotency_ttl: Duration::from_secs(3600),
        ..Limits::default()
    }
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
        idempotency_key: None,
    }
}

fn created(todo: Todo) -> Created {
    Created {
        todo,
        replayed: false,
    }
}

/// The rules every insert is checked against, here with no idempotency key.
fn rules() -> TodoInsertRules {
    TodoInsertRules {
        max_todos: 3,
        creations: limits().todo_creations,
        idempotency: None,
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
        .withf(|_, checked| *checked == rules())
        .returning(move |todo, _| {
            record.set(todo);
            Ok(TodoInsert::Inserted)
        });

    let (use_case, stats) = create_with(mocks, SmsPolicy::default());
    let todo = use_case
        .execute(&who, request("   buy milk \n"))
        .await
        .expect("created");

    assert_eq!(todo, created(expected_todo()));
    assert_eq!(stored.get(), expected_todo());
    let todo = todo.todo;
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
    mocks
        .todos
        .expect_insert()
        .times(1)
        .returning(|_, _| Ok(TodoInsert::Inserted));
    let (use_case, stats) = create_with(mocks, SmsPolicy::default());

    let todo = use_case
        .execute(&caller(unverified), request("buy milk"))
        .await
        .expect("created all the same");

    assert_eq!(todo, created(expected_todo()));
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
        mocks
            .todos
            .expect_insert()
            .times(1)
            .returning(|_, _| Ok(TodoInsert::Inserted));
        let (use_case, stats) = create_with(mocks, SmsPolicy::default());

        let todo = use_case
            .execute(&caller(user_with_phone()), request("buy milk"))
            .await
            .expect("created all the same");

        assert_eq!(todo, created(expected_todo()));
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
    mocks
        .todos
        .expect_insert()
        .times(1)
        .returning(|_, _| Ok(TodoInsert::Inserted));
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
    mocks
        .todos
        .expect_insert()
        .times(1)
        .returning(|_, _| Ok(TodoInsert::Inserted));

    let todo = create(mocks)
        .execute(&who, request("buy milk"))
        .await
        .expect("created");
    assert_eq!(todo, created(expected_todo()));
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
        .returning(|_, _| Err(unavailable()));

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
        .returning(|_, _| Err(unexpected()));

    let result = create(mocks)
        .execute(&caller(user()), request("buy milk"))
        .await;
    assert!(
        matches!(result, Err(CreateTodoError::Unexpected(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_idempotency_key_travels_with_the_title_as_fingerprint() {
    let key = IdempotencyKey::parse("8e2b4c3e-retry-me").expect("valid");
    let mut mocks = Mocks::new();
    let expected = TodoInsertRules {
        idempotency: Some(IdempotentWrite {
            key: key.clone(),
            fingerprint: "buy milk".into(),
            ttl: Duration::from_secs(3600),
        }),
        ..rules()
    };
    mocks
        .todos
        .expect_insert()
        .withf(move |_, checked| *checked == expected)
        .times(1)
        .returning(|_, _| Ok(TodoInsert::Inserted));

    let mut keyed = request("  buy milk ");
    keyed.idempotency_key = Some(key);
    let todo = create(mocks)
        .execute(&caller(user()), keyed)
        .await
        .expect("created");
    assert!(!todo.replayed);
}

#[tokio::test]
async fn a_replayed_key_answers_with_the_first_todo() {
    let mut first = expected_todo();
    first.id = TodoId::from_uuid(seq(99));
    first.created_at = Timestamp::from_unix_seconds(1_600_000_000);
    let answered = first.clone();
    let mut mocks = Mocks::new();
    mocks
        .todos
        .expect_insert()
        .times(1)
        .return_once(move |_, _| Ok(TodoInsert::Replayed(answered)));

    let mut keyed = request("buy milk");
    keyed.idempotency_key = Some(IdempotencyKey::parse("k").expect("valid"));
    let todo = create(mocks)
        .execute(&caller(user()), keyed)
        .await
        .expect("replayed");
    assert_eq!(
        todo,
        Created {
            todo: first,
            replayed: true,
        }
    );
}

#[tokio::test]
async fn refusals_of_the_store_become_their_errors() {
    let refusals = [
        (TodoInsert::KeyReused, "key reused"),
        (TodoInsert::QuotaExceeded, "quota"),
        (
            TodoInsert::RateLimited {
                retry_after: Duration::from_secs(42),
            },
            "rate",
        ),
    ];
    for (refusal, what) in refusals {
        let mut mocks = Mocks::new();
        mocks
            .todos
            .expect_insert()
            .times(1)
            .return_once(move |_, _| Ok(refusal));
        let result = create(mocks)
            .execute(&caller(user()), request("buy milk"))
            .await;
        match (what, result) {
            ("key reused", Err(CreateTodoError::KeyReused))
            | ("quota", Err(CreateTodoError::QuotaExceeded { max: 3 })) => {}
            ("rate", Err(CreateTodoError::RateLimited { retry_after }))
                if retry_after == Duration::from_secs(42) => {}
            (what, other) => panic!("{what}: {other:?}"),
        }
    }
}
