//! Todos, always reached through their owner, and the rules an insertion is held to.

use async_trait::async_trait;
use std::time::Duration;

use domain::{Todo, TodoId, UserId};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

use super::idempotency::IdempotentWrite;
use super::page::Page;
use super::store::StoreError;
use super::throttle::WindowLimit;

/// Where a page of todos starts: after the todo with this insertion number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TodoCursor(pub u64);

/// What stands between a todo and its insertion, checked in the same atomic step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TodoInsertRules {
    /// Most todos a user may hold.
    pub max_todos: u32,
    /// Most creations per user per window (only accepted creations count).
    pub creations: WindowLimit,
    /// The client's key for this creation, if it sent one.
    pub idempotency: Option<IdempotentWrite>,
}

/// The result of [`TodoRepository::insert`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TodoInsert {
    /// Stored.
    Inserted,
    /// The idempotency key was already used for the same request: nothing was stored,
    /// and this is the todo the first request created, as it was then.
    Replayed(Todo),
    /// The idempotency key was already used for a different request: nothing was stored.
    KeyReused,
    /// The user already holds `max_todos` todos: nothing was stored.
    QuotaExceeded,
    /// The user created `creations.max` todos in the current window: nothing was stored;
    /// the window frees after `retry_after`.
    RateLimited { retry_after: Duration },
    /// The user does not exist (any more: the account was deleted while the request was
    /// on its way): nothing was stored.
    OwnerGone,
}

/// Todos, always addressed through their owner: there is no way to reach a todo without
/// naming the user it belongs to, so ownership is checked by construction.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait TodoRepository: Send + Sync {
    /// Stores `todo` unless `rules` refuse it, in one atomic step: a replayed key answers
    /// with the first result, the quota and the creation rate are checked and the todo,
    /// its place in the listing order and the key are written together.
    ///
    /// A lost reply is safe to retry with the same idempotency key: the retry finds the
    /// key and gets [`TodoInsert::Replayed`] if the first attempt ran.
    ///
    /// # Errors
    /// [`StoreError`] on store failure, in which case the todo may or may not be stored
    /// (see above).
    async fn insert(&self, todo: &Todo, rules: &TodoInsertRules) -> Result<TodoInsert, StoreError>;

    /// One page of the user's todos, oldest first: at most `limit` of them, after
    /// `after` (from the start when `None`). Only the page is ever read.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn list(
        &self,
        user: UserId,
        after: Option<TodoCursor>,
        limit: usize,
    ) -> Result<Page<Todo, TodoCursor>, StoreError>;

    /// `Ok(None)` when no todo with this id belongs to this user (whether it does not
    /// exist or belongs to someone else: the two are indistinguishable by design).
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn get(&self, user: UserId, id: TodoId) -> Result<Option<Todo>, StoreError>;

    /// Replaces a todo of `todo.user_id`. Returns `false` when it no longer exists.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn update(&self, todo: &Todo) -> Result<bool, StoreError>;

    /// Returns `false` when no such todo belonged to the user.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn delete(&self, user: UserId, id: TodoId) -> Result<bool, StoreError>;
}
