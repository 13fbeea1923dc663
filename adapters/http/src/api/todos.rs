//! The caller's todos.

use application::usecases::{CreateTodoRequest, UpdateTodoRequest};
use domain::TodoId;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use super::common::{Answer, NoContent, Svc, Tag, cursor, failed, idempotency_key, replayed};
use crate::auth::BearerAuth;
use crate::contract::{CreateTodo, ListTodos, TodoById, UpdateTodo};
use crate::dto;

#[derive(ApiResponse)]
enum CreateTodoResponse {
    #[oai(status = 201)]
    Created(
        Json<dto::TodoResponse>,
        /// `true` when this is the answer of an earlier request with the same
        /// `Idempotency-Key`, given again: no second todo was made.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
enum ListTodosResponse {
    #[oai(status = 200)]
    Ok(Json<dto::TodoPage>),
}

#[derive(ApiResponse)]
enum TodoResponse {
    #[oai(status = 200)]
    Ok(Json<dto::TodoResponse>),
}

/// The operations of the `Todos` tag.
#[derive(Debug, Clone, Copy, Default)]
pub struct TodosApi;

#[OpenApi]
impl TodosApi {
    /// Create a todo
    ///
    /// A user holds at most a configured number of todos (409 beyond it) and creates at
    /// most a configured number per minute (429 beyond it, with `Retry-After`).
    ///
    /// Send an `Idempotency-Key` to make a retry safe: the same key with the same title
    /// within 24 hours gets the todo the first request created (`Idempotent-Replayed:
    /// true`), and the same key with a different title 422.
    #[oai(
        path = "/todo",
        method = "post",
        tag = "Tag::Todos",
        operation_id = "create_todo"
    )]
    async fn create_todo(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        body: Json<dto::CreateTodoRequest>,
        /// A unique key for this creation (a UUID), to retry it safely.
        #[oai(name = "Idempotency-Key")]
        idempotency: Header<Option<String>>,
    ) -> Answer<CreateTodoResponse, CreateTodo> {
        let idempotency_key = idempotency_key(idempotency).map_err(failed)?;
        // The SMS needs the phone: the profile comes with the session check.
        let caller = auth.caller(&services).await.map_err(failed)?;
        let created = services
            .create_todo
            .execute(
                &caller,
                CreateTodoRequest {
                    title: body.0.title.0,
                    idempotency_key,
                },
            )
            .await
            .map_err(failed)?;
        Ok(CreateTodoResponse::Created(
            Json(created.todo.into()),
            replayed(created.replayed),
        ))
    }

    /// List the caller's todos
    ///
    /// One page, oldest first: `limit` todos (default 100, at most 1000) and, when more
    /// follow, `next`, which passed as `cursor` gives the next page.
    #[oai(
        path = "/todo",
        method = "get",
        tag = "Tag::Todos",
        operation_id = "list_todos"
    )]
    async fn list_todos(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        /// Todos per page: 1 to 1000, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// Where the page starts: the `next` of the previous page; absent for the first.
        #[oai(name = "cursor")]
        after: Query<Option<String>>,
    ) -> Answer<ListTodosResponse, ListTodos> {
        let after = cursor(after.0.as_deref(), dto::cursor::parse_todo).map_err(failed)?;
        let caller = auth.caller(&services).await.map_err(failed)?;
        let page = services
            .list_todos
            .execute(caller.principal, after, limit.0)
            .await
            .map_err(failed)?;
        Ok(ListTodosResponse::Ok(Json(dto::TodoPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next.map(dto::cursor::todo),
        })))
    }

    /// Get one todo
    ///
    /// Another user's todo is reported as not found.
    #[oai(
        path = "/todo/:id",
        method = "get",
        tag = "Tag::Todos",
        operation_id = "get_todo"
    )]
    async fn get_todo(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Answer<TodoResponse, TodoById> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        let todo = services
            .get_todo
            .execute(caller.principal, TodoId::from_uuid(id.0))
            .await
            .map_err(failed)?;
        Ok(TodoResponse::Ok(Json(todo.into())))
    }

    /// Update a todo
    #[oai(
        path = "/todo/:id",
        method = "patch",
        tag = "Tag::Todos",
        operation_id = "update_todo"
    )]
    async fn update_todo(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<dto::UpdateTodoRequest>,
    ) -> Answer<TodoResponse, UpdateTodo> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        let body = body.0;
        let todo = services
            .update_todo
            .execute(
                caller.principal,
                TodoId::from_uuid(id.0),
                UpdateTodoRequest {
                    title: body.title.map(|t| t.0),
                    completed: body.completed,
                },
            )
            .await
            .map_err(failed)?;
        Ok(TodoResponse::Ok(Json(todo.into())))
    }

    /// Delete a todo
    #[oai(
        path = "/todo/:id",
        method = "delete",
        tag = "Tag::Todos",
        operation_id = "delete_todo"
    )]
    async fn delete_todo(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Answer<NoContent, TodoById> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        services
            .delete_todo
            .execute(caller.principal, TodoId::from_uuid(id.0))
            .await
            .map_err(failed)?;
        Ok(NoContent::Done)
    }
}
