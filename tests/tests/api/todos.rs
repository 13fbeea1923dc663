//! The todo collection, and ownership on every path.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn todos_can_be_listed_read_updated_and_deleted() {
    let app = spawn_app().await;
    let user = app.login_user().await;
    let first: Value = app
        .create_todo(&user.access, "  first  ")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(first["title"], "first");
    assert_eq!(first["completed"], false);
    let second: Value = app
        .create_todo(&user.access, "second")
        .await
        .json()
        .await
        .expect("json");

    let list: Vec<Value> = app.items("/todo", &user.access).await;
    let titles: Vec<&str> = list.iter().filter_map(|t| t["title"].as_str()).collect();
    assert_eq!(titles, ["first", "second"]);

    let id = first["id"].as_str().expect("id");
    let fetched: Value = app
        .get(&format!("/todo/{id}"), &user.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched, first);

    let patched = app
        .client
        .patch(app.url(&format!("/todo/{id}")))
        .bearer_auth(&user.access)
        .json(&json!({"completed": true}))
        .send()
        .await
        .expect("sent");
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.expect("json");
    assert_eq!(patched["completed"], true);
    assert_eq!(patched["title"], "first");

    let deleted = app
        .client
        .delete(app.url(&format!("/todo/{}", second["id"].as_str().expect("id"))))
        .bearer_auth(&user.access)
        .send()
        .await
        .expect("sent");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let list: Vec<Value> = app.items("/todo", &user.access).await;
    assert_eq!(list.len(), 1);
}

#[tokio::test]
async fn another_users_todo_is_not_found_on_every_path() {
    let app = spawn_app().await;
    let owner = app.login_user().await;
    let intruder = app.new_user("mallory").await;
    let todo: Value = app
        .create_todo(&owner.access, "private")
        .await
        .json()
        .await
        .expect("json");
    let path = format!("/todo/{}", todo["id"].as_str().expect("id"));

    assert_problem(
        app.get(&path, &intruder.access).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let patch = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&intruder.access)
        .json(&json!({"title": "mine now"}))
        .send()
        .await
        .expect("sent");
    assert_problem(patch, StatusCode::NOT_FOUND).await;
    let delete = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&intruder.access)
        .send()
        .await
        .expect("sent");
    assert_problem(delete, StatusCode::NOT_FOUND).await;
    let list: Vec<Value> = app.items("/todo", &intruder.access).await;
    assert!(list.is_empty());

    // Untouched for its owner; and a missing id looks exactly the same as someone else's.
    let still: Value = app
        .get(&path, &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(still["title"], "private");
    let missing = app
        .get(
            "/todo/00000000-0000-4000-8000-000000000000",
            &intruder.access,
        )
        .await;
    let a = assert_problem(missing, StatusCode::NOT_FOUND).await;
    let b = assert_problem(
        app.get(&path, &intruder.access).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn invalid_titles_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let user = app.login_user().await;
    for title in ["", "   ", &"x".repeat(201), "bell\u{7}"] {
        let response = app.create_todo(&user.access, title).await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let list: Vec<Value> = app.items("/todo", &user.access).await;
    assert!(list.is_empty());
}

#[tokio::test]
async fn seed_clients_sending_user_id_cannot_create_for_someone_else() {
    let app = spawn_app().await;
    let user = app.login_user().await;
    let me: Value = app.me(&user.access).await.json().await.expect("json");
    let response = app
        .post_json(
            "/todo",
            &json!({"user_id": "00000000-0000-4000-8000-000000000000", "title": "t"}),
            Some(&user.access),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let todo: Value = response.json().await.expect("json");
    assert_eq!(todo["user_id"], me["id"]);
}
