//! Tests of [`UpdateTodo`], over mocks of the ports it uses (see `testkit`).

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
