//! CreateTodo: store a todo for the caller, and record the SMS that tells them so.
//!
//! The SMS goes into the outbox *before* the todo is stored, and the delivery worker
//! skips a notification whose todo does not exist. So whichever write fails, the client
//! is never told "created" for a todo that is not there, and no todo that was
//! acknowledged is ever left without its SMS being attempted. The SMS itself never
//! decides the answer: the seed failed the request when texting failed, after the todo
//! had been made.
//!
//! The insert is one atomic store step that also enforces the per-user quota and creation
//! rate and, when the client sent an `Idempotency-Key`, answers a retry with the todo the
//! first request created instead of creating another.
//! The SMS goes only to a verified number, within the SMS caps (see the `sms` module);
//! when a rule stops it, the todo is created all the same and the skip is counted.

use std::sync::Arc;
use std::time::Duration;

use domain::{IdempotencyKey, Todo, TodoId, TodoTitle};
use tracing::instrument;

use super::shared::{Caller, store_failures};
use super::sms::SmsGate;
use crate::ports::{
    Clock, IdGenerator, IdempotentWrite, TodoInsert, TodoInsertRules, TodoRepository,
};
use crate::{policy::Limits, ports::Ports};

#[derive(Debug, Clone)]
pub struct CreateTodoRequest {
    pub title: String,
    pub idempotency_key: Option<IdempotencyKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateTodoError {
    #[error("invalid title: {0}")]
    InvalidTitle(#[source] domain::TodoTitleError),
    /// The caller already holds the most todos a user may.
    #[error("todo quota of {max} reached")]
    QuotaExceeded { max: u32 },
    /// The caller created too many todos in the current window; retry after `retry_after`.
    #[error("too many todos created")]
    RateLimited { retry_after: Duration },
    /// The idempotency key was used before for a different todo.
    #[error("idempotency key reused for a different request")]
    KeyReused,
    /// The caller's account was deleted while the request was on its way.
    #[error("user gone")]
    UserGone,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("todo creation failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(CreateTodoError);

/// A creation's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub todo: Todo,
    /// The answer of an earlier request with the same idempotency key, given again.
    pub replayed: bool,
}

pub struct CreateTodo {
    todos: Arc<dyn TodoRepository>,
    sms: SmsGate,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    limits: Limits,
}

impl std::fmt::Debug for CreateTodo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateTodo")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl CreateTodo {
    pub(crate) fn new(ports: &Ports, limits: Limits, sms: SmsGate) -> Self {
        Self {
            todos: ports.todos.clone(),
            sms,
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            limits,
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
    ) -> Result<Created, CreateTodoError> {
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
        let rules = TodoInsertRules {
            max_todos: self.limits.max_todos_per_user,
            creations: self.limits.todo_creations,
            idempotency: request.idempotency_key.map(|key| IdempotentWrite {
                key,
                fingerprint: todo.title.as_str().to_owned(),
                ttl: self.limits.idempotency_ttl,
            }),
        };
        match self.todos.insert(&todo, &rules).await? {
            TodoInsert::Inserted => {
                tracing::info!(todo_id = %todo.id, "todo created");
                Ok(Created {
                    todo,
                    replayed: false,
                })
            }
            // The notification queued above names a todo that will never exist: the
            // worker skips it.
            TodoInsert::Replayed(first) => {
                tracing::info!(todo_id = %first.id, "todo creation replayed");
                Ok(Created {
                    todo: first,
                    replayed: true,
                })
            }
            TodoInsert::KeyReused => Err(CreateTodoError::KeyReused),
            TodoInsert::OwnerGone => Err(CreateTodoError::UserGone),
            TodoInsert::QuotaExceeded => {
                tracing::info!(max = rules.max_todos, "todo quota reached");
                Err(CreateTodoError::QuotaExceeded {
                    max: rules.max_todos,
                })
            }
            TodoInsert::RateLimited { retry_after } => {
                tracing::info!(
                    retry_after_secs = retry_after.as_secs(),
                    "todo creation rate limited"
                );
                Err(CreateTodoError::RateLimited { retry_after })
            }
        }
    }
}

#[cfg(test)]
mod tests;
