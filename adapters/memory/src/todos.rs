//! [`TodoRepository`] in process: each user's todos with their insertion order, and the
//! idempotency keys and creation counters an insert checks in the same step.

use std::collections::{BTreeMap, HashMap};

use application::ports::{
    Page, StoreError, TodoCursor, TodoInsert, TodoInsertRules, TodoRepository,
};
use async_trait::async_trait;
use domain::{Todo, TodoId, UserId};

use crate::{Counter, MemoryStore, Remembered};

/// One user's todos: each with its insertion number, which orders lists (timestamps are in
/// whole seconds and would tie), and the numbers in order, so that a page is read without
/// looking at the rest.
#[derive(Default)]
pub(crate) struct UserTodos {
    by_id: HashMap<TodoId, (u64, Todo)>,
    order: BTreeMap<u64, TodoId>,
}

#[async_trait]
impl TodoRepository for MemoryStore {
    async fn insert(&self, todo: &Todo, rules: &TodoInsertRules) -> Result<TodoInsert, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let user = todo.user_id;
        // A request in flight while its account was deleted stores nothing.
        if !state.users.contains_key(&user) {
            return Ok(TodoInsert::OwnerGone);
        }
        if let Some(write) = &rules.idempotency
            && let Some(kept) = state.todo_keys.get(&(user, write.key.clone()))
            && !kept.expires_at.has_passed(now)
        {
            let (fingerprint, first) = &kept.value;
            return Ok(if *fingerprint == write.fingerprint {
                TodoInsert::Replayed(first.clone())
            } else {
                TodoInsert::KeyReused
            });
        }
        // The same todo again (a retry of the very insert) is stored once.
        if state
            .todos
            .get(&user)
            .is_some_and(|t| t.by_id.contains_key(&todo.id))
        {
            return Ok(TodoInsert::Inserted);
        }
        let creations = Counter::live(state.todo_creations.get(&user), now);
        if let Some(counter) = creations.filter(|c| c.count >= rules.creations.max) {
            return Ok(TodoInsert::RateLimited {
                retry_after: counter.retry_after(now),
            });
        }
        let held = state.todos.get(&user).map_or(0, |t| t.by_id.len());
        if held >= rules.max_todos as usize {
            return Ok(TodoInsert::QuotaExceeded);
        }
        state.todo_creations.insert(
            user,
            Counter::counted(creations, rules.creations.window, now),
        );
        state.next_todo_seq += 1;
        let seq = state.next_todo_seq;
        let todos = state.todos.entry(user).or_default();
        todos.by_id.insert(todo.id, (seq, todo.clone()));
        todos.order.insert(seq, todo.id);
        if let Some(write) = &rules.idempotency {
            state.todo_keys.insert(
                (user, write.key.clone()),
                Remembered {
                    value: (write.fingerprint.clone(), todo.clone()),
                    expires_at: now.plus(write.ttl),
                },
            );
        }
        Ok(TodoInsert::Inserted)
    }

    async fn list(
        &self,
        user: UserId,
        after: Option<TodoCursor>,
        limit: usize,
    ) -> Result<Page<Todo, TodoCursor>, StoreError> {
        let state = self.read();
        let Some(todos) = state.todos.get(&user) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let start = after.map_or(0, |c| c.0.saturating_add(1));
        // One more than the page, to know whether another follows.
        let mut page: Vec<(u64, Todo)> = todos
            .order
            .range(start..)
            .take(limit.saturating_add(1))
            .filter_map(|(seq, id)| todos.by_id.get(id).map(|(_, t)| (*seq, t.clone())))
            .collect();
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            TodoCursor(page.last().map_or(0, |(seq, _)| *seq))
        });
        Ok(Page {
            items: page.into_iter().map(|(_, todo)| todo).collect(),
            next,
        })
    }

    async fn get(&self, user: UserId, id: TodoId) -> Result<Option<Todo>, StoreError> {
        Ok(self
            .read()
            .todos
            .get(&user)
            .and_then(|t| t.by_id.get(&id))
            .map(|(_, todo)| todo.clone()))
    }

    async fn update(&self, todo: &Todo) -> Result<bool, StoreError> {
        let mut state = self.write();
        match state
            .todos
            .get_mut(&todo.user_id)
            .and_then(|t| t.by_id.get_mut(&todo.id))
        {
            Some((_, stored)) => {
                *stored = todo.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete(&self, user: UserId, id: TodoId) -> Result<bool, StoreError> {
        let mut state = self.write();
        let Some(todos) = state.todos.get_mut(&user) else {
            return Ok(false);
        };
        Ok(match todos.by_id.remove(&id) {
            Some((seq, _)) => {
                todos.order.remove(&seq);
                true
            }
            None => false,
        })
    }
}
