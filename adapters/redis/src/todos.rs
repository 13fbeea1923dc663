//! [`TodoRepository`] over Redis: a user's todos in one hash (`id -> <seq>|<JSON>`), their
//! listing order in a sorted set (`id` by insertion number), both under the user's hash
//! tag. An insert checks the idempotency key, the creation rate and the quota and writes
//! the todo, its place and the key in one script; a page reads only its own todos.

use std::sync::LazyLock;
use std::time::Duration;

use application::ports::{
    Page, StoreError, TodoCursor, TodoInsert, TodoInsertRules, TodoRepository,
};
use async_trait::async_trait;
use domain::{Todo, TodoId, UserId};
use redis::{AsyncCommands, Script};

use crate::RedisStore;
use crate::errors::corrupt;
use crate::keys::{
    todo_creations_key, todo_idempotency_key, todo_keys_key, todo_order_key, todo_seq_key,
    todos_key, user_key,
};
use crate::records::{TodoRecord, json, millis, parse_record, parse_todo};

static INSERT: LazyLock<Script> = lua!(guarded: "lua/todo_prelude.lua", "lua/insert_todo.lua");
static LIST: LazyLock<Script> = lua!(freeing: "lua/todo_prelude.lua", "lua/list_todos.lua");
static UPDATE: LazyLock<Script> = lua!(guarded: "lua/update_todo.lua");

#[async_trait]
impl TodoRepository for RedisStore {
    async fn insert(&self, todo: &Todo, rules: &TodoInsertRules) -> Result<TodoInsert, StoreError> {
        let user = todo.user_id;
        let record = json(&TodoRecord::from_todo(todo))?;
        let mut invocation = INSERT.key(todos_key(user));
        invocation
            .key(todo_seq_key(user))
            .key(todo_order_key(user))
            .key(todo_creations_key(user))
            .key(user_key(user))
            .arg(todo.id.to_string())
            .arg(record)
            .arg(rules.max_todos)
            .arg(rules.creations.max)
            .arg(millis(rules.creations.window).max(1));
        match &rules.idempotency {
            Some(write) => {
                invocation
                    .key(todo_idempotency_key(user, &write.key))
                    .key(todo_keys_key(user))
                    .arg(&write.fingerprint)
                    .arg(millis(write.ttl).max(1))
                    .arg(write.key.as_str());
            }
            None => {
                invocation.arg("").arg(0).arg("");
            }
        }
        let reply: Vec<String> = self
            .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
        match reply.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["inserted"] => Ok(TodoInsert::Inserted),
            ["replayed", first] => Ok(TodoInsert::Replayed(parse_record(first, user)?)),
            ["key_reused"] => Ok(TodoInsert::KeyReused),
            ["quota"] => Ok(TodoInsert::QuotaExceeded),
            ["gone"] => Ok(TodoInsert::OwnerGone),
            ["rate_limited", wait_ms] => {
                let wait_ms: u64 = wait_ms.parse().map_err(corrupt)?;
                Ok(TodoInsert::RateLimited {
                    // Whole seconds for `Retry-After`, rounded up.
                    retry_after: Duration::from_secs(wait_ms.div_ceil(1000).max(1)),
                })
            }
            _ => Err(corrupt(format!("unexpected insert reply {reply:?}"))),
        }
    }

    async fn list(
        &self,
        user: UserId,
        after: Option<TodoCursor>,
        limit: usize,
    ) -> Result<Page<Todo, TodoCursor>, StoreError> {
        let (todos, order) = (todos_key(user), todo_order_key(user));
        let start = after.map_or(0, |c| c.0);
        let raw: Vec<Option<String>> = self
            .run(|mut conn| async move {
                LIST.key(todos)
                    .key(order)
                    .arg(start)
                    .arg(limit)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        // A todo deleted between the two reads of the script cannot happen (one script);
        // an index entry without a record would be corruption, and is skipped rather than
        // failing the whole listing.
        let mut page = raw
            .iter()
            .flatten()
            .map(|r| parse_todo(r, user))
            .collect::<Result<Vec<_>, _>>()?;
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            TodoCursor(page.last().map_or(start, |(seq, _)| *seq))
        });
        Ok(Page {
            items: page.into_iter().map(|(_, todo)| todo).collect(),
            next,
        })
    }

    async fn get(&self, user: UserId, id: TodoId) -> Result<Option<Todo>, StoreError> {
        let key = todos_key(user);
        let field = id.to_string();
        let raw: Option<String> = self
            .run(|mut conn| async move { conn.hget(key, field).await })
            .await?;
        raw.map(|r| parse_todo(&r, user).map(|(_, todo)| todo))
            .transpose()
    }

    async fn update(&self, todo: &Todo) -> Result<bool, StoreError> {
        let record = json(&TodoRecord::from_todo(todo))?;
        let key = todos_key(todo.user_id);
        let id = todo.id.to_string();
        let updated: i64 = self
            .run(|mut conn| async move {
                UPDATE
                    .key(key)
                    .arg(id)
                    .arg(record)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(updated == 1)
    }

    async fn delete(&self, user: UserId, id: TodoId) -> Result<bool, StoreError> {
        let (todos, order) = (todos_key(user), todo_order_key(user));
        let field = id.to_string();
        // The record and its place in the order go together (MULTI/EXEC, one slot).
        let (deleted, _): (i64, i64) = self
            .run(|mut conn| async move {
                redis::pipe()
                    .atomic()
                    .hdel(todos, &field)
                    .zrem(order, &field)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(deleted == 1)
    }
}
