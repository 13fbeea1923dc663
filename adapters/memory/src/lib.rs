//! The embedded store: in-process implementations of jwt-todo's store ports, and the
//! system clock and random ids.
//!
//! This is the default when `REDIS_URL` is unset, so `cargo run -p server` works on a
//! bare machine, and it is what most tests run on. It keeps the same contract as the Redis
//! adapter (the same contract tests run against both): sessions expire at their
//! `expires_at`, rotation is atomic, usernames are unique.
//!
//! # Design
//! One `RwLock` over plain maps. Every port method takes the lock once and does its whole
//! job under it, which is what makes `rotate` and `insert` atomic. Expired sessions are
//! invisible to every read as soon as they expire (checked against the injected
//! [`Clock`], so tests can move time), and are physically dropped whenever their user's
//! sessions are touched and by [`MemoryStore::purge_expired`], which the server runs
//! periodically so that abandoned sessions do not pile up.
//!
//! Login throttling counters live under a lock of their own, so that a flood of refused
//! logins never contends with the per-request session checks. A counter is created by an
//! admitted attempt only (a refused one changes nothing), removed when it is given back to
//! zero, and invisible once its window has ended; [`MemoryStore::purge_expired`] drops
//! ended windows. Since every counted failure costs a password hash first, the number of
//! live counters is bounded by what the hasher can do in one window.
//!
//! The SMS outbox (`outbox`) has a lock of its own too, as do pending phone codes and
//! SMS counters (`phone`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use application::ports::{
    ActiveUser, Admission, Clock, IdGenerator, InsertUserError, LoginAttempt, LoginThrottle,
    Rotation, RotationOutcome, SessionStore, Settlement, StoreError, ThrottleLimits,
    TodoRepository, UserRepository, WindowLimit,
};
use async_trait::async_trait;
use domain::ids::Uuid;
use domain::{ClientAddress, Session, SessionId, Timestamp, Todo, TodoId, User, UserId, Username};

mod outbox;
mod phone;

/// Reads the wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Timestamp::from_unix_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// Random (v4) UUIDs from the operating system's CSPRNG: ids double as unguessable
/// handles (a todo id or session id reveals nothing and cannot be enumerated).
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_uuid(&self) -> Uuid {
        Uuid::new_v4()
    }
}

#[derive(Default)]
struct State {
    users: HashMap<UserId, User>,
    usernames: HashMap<Username, UserId>,
    /// Each todo with its insertion number, which orders lists (timestamps are in whole
    /// seconds and would tie).
    todos: HashMap<UserId, HashMap<TodoId, (u64, Todo)>>,
    next_todo_seq: u64,
    sessions: HashMap<UserId, HashMap<SessionId, Session>>,
}

impl State {
    /// Whether `session` of `user` exists and its refresh token has not expired.
    fn session_alive(&self, user: UserId, session: SessionId, now: Timestamp) -> bool {
        self.sessions
            .get(&user)
            .and_then(|s| s.get(&session))
            .is_some_and(|s| !s.expires_at.has_passed(now))
    }
}

/// What a login-throttle counter counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum CounterKey {
    Pair(Option<Username>, ClientAddress),
    Client(ClientAddress),
}

/// Failures counted in a window that ends at `resets_at`.
#[derive(Clone, Copy, Debug)]
struct Counter {
    count: u32,
    resets_at: Timestamp,
}

/// All the stores in one: users, todos and sessions share one lock; the login-throttle
/// counters and the outbox have their own.
pub struct MemoryStore {
    state: RwLock<State>,
    outbox: Mutex<outbox::OutboxState>,
    /// Pending phone codes, one per user; locked after `state`, never before.
    codes: Mutex<HashMap<UserId, phone::CodeRecord>>,
    sms_counters: Mutex<HashMap<phone::SmsCounter, Counter>>,
    attempts: Mutex<HashMap<CounterKey, Counter>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: RwLock::new(State::default()),
            outbox: Mutex::default(),
            codes: Mutex::default(),
            sms_counters: Mutex::default(),
            attempts: Mutex::new(HashMap::new()),
            clock,
        }
    }

    fn attempts(&self) -> MutexGuard<'_, HashMap<CounterKey, Counter>> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn codes(&self) -> MutexGuard<'_, HashMap<UserId, phone::CodeRecord>> {
        self.codes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sms_counters(&self) -> MutexGuard<'_, HashMap<phone::SmsCounter, Counter>> {
        self.sms_counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    // A panic while holding the lock cannot leave these maps half-updated in a way that
    // matters more than refusing all service would, so poisoning is ignored.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops every expired session, every ended throttle or SMS window and every expired
    /// phone code; returns how many sessions. Reads never see any of them anyway; this only
    /// returns their memory.
    pub fn purge_expired(&self) -> usize {
        let now = self.clock.now();
        self.attempts()
            .retain(|_, counter| !counter.resets_at.has_passed(now));
        self.purge_phone(now);
        let mut state = self.write();
        let mut purged = 0;
        state.sessions.retain(|_, sessions| {
            let before = sessions.len();
            sessions.retain(|_, s| !s.expires_at.has_passed(now));
            purged += before - sessions.len();
            !sessions.is_empty()
        });
        purged
    }

    /// The user's live sessions, with the expired ones dropped on the way.
    fn live_sessions(
        state: &mut State,
        user: UserId,
        now: Timestamp,
    ) -> Option<&mut HashMap<SessionId, Session>> {
        let sessions = state.sessions.get_mut(&user)?;
        sessions.retain(|_, s| !s.expires_at.has_passed(now));
        Some(sessions)
    }
}

#[async_trait]
impl UserRepository for MemoryStore {
    async fn insert(&self, user: &User) -> Result<(), InsertUserError> {
        let mut state = self.write();
        match state.usernames.entry(user.username.clone()) {
            Entry::Occupied(_) => return Err(InsertUserError::UsernameTaken),
            Entry::Vacant(slot) => {
                slot.insert(user.id);
            }
        }
        state.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let state = self.read();
        Ok(state
            .usernames
            .get(username)
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.read().users.get(&id).cloned())
    }
}

#[async_trait]
impl TodoRepository for MemoryStore {
    async fn insert(&self, todo: &Todo) -> Result<(), StoreError> {
        let mut state = self.write();
        state.next_todo_seq += 1;
        let seq = state.next_todo_seq;
        state
            .todos
            .entry(todo.user_id)
            .or_default()
            .insert(todo.id, (seq, todo.clone()));
        Ok(())
    }

    async fn list(&self, user: UserId) -> Result<Vec<Todo>, StoreError> {
        let mut todos: Vec<(u64, Todo)> = self
            .read()
            .todos
            .get(&user)
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default();
        todos.sort_by_key(|(seq, _)| *seq);
        Ok(todos.into_iter().map(|(_, todo)| todo).collect())
    }

    async fn get(&self, user: UserId, id: TodoId) -> Result<Option<Todo>, StoreError> {
        Ok(self
            .read()
            .todos
            .get(&user)
            .and_then(|t| t.get(&id))
            .map(|(_, todo)| todo.clone()))
    }

    async fn update(&self, todo: &Todo) -> Result<bool, StoreError> {
        let mut state = self.write();
        match state
            .todos
            .get_mut(&todo.user_id)
            .and_then(|t| t.get_mut(&todo.id))
        {
            Some((_, stored)) => {
                *stored = todo.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete(&self, user: UserId, id: TodoId) -> Result<bool, StoreError> {
        Ok(self
            .write()
            .todos
            .get_mut(&user)
            .is_some_and(|t| t.remove(&id).is_some()))
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let sessions = state.sessions.entry(session.user_id).or_default();
        sessions.retain(|_, s| !s.expires_at.has_passed(now));
        sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn is_active(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        Ok(self.read().session_alive(user, session, self.clock.now()))
    }

    async fn active_user(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<ActiveUser, StoreError> {
        let state = self.read();
        let active = state.session_alive(user, session, self.clock.now());
        Ok(match (active, state.users.get(&user)) {
            (false, _) => ActiveUser::Revoked,
            (true, Some(found)) => ActiveUser::Active(found.clone()),
            (true, None) => ActiveUser::UserGone,
        })
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let Some(sessions) = Self::live_sessions(&mut state, rotation.user_id, now) else {
            return Ok(RotationOutcome::NotFound);
        };
        let Some(session) = sessions.get_mut(&rotation.session_id) else {
            return Ok(RotationOutcome::NotFound);
        };
        if session.refresh_jti != rotation.presented {
            let elapsed = rotation.now.unix_seconds() - session.refreshed_at.unix_seconds();
            let within_grace = !rotation.grace.is_zero()
                && u64::try_from(elapsed).is_ok_and(|e| e <= rotation.grace.as_secs());
            if within_grace && session.previous_jti == Some(rotation.presented) {
                return Ok(RotationOutcome::Replayed(session.clone()));
            }
            sessions.remove(&rotation.session_id);
            return Ok(RotationOutcome::ReuseDetected);
        }
        session.previous_jti = Some(rotation.presented);
        session.refresh_jti = rotation.next;
        session.refreshed_at = rotation.now;
        session.expires_at = rotation.expires_at;
        Ok(RotationOutcome::Rotated(session.clone()))
    }

    async fn revoke(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        Ok(
            Self::live_sessions(&mut state, user, now)
                .is_some_and(|s| s.remove(&session).is_some()),
        )
    }

    async fn revoke_all(&self, user: UserId, keep: Option<SessionId>) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let Some(sessions) = Self::live_sessions(&mut state, user, now) else {
            return Ok(0);
        };
        let before = sessions.len();
        sessions.retain(|id, _| Some(*id) == keep);
        Ok((before - sessions.len()) as u64)
    }

    async fn list(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let mut sessions: Vec<Session> = Self::live_sessions(&mut state, user, now)
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        sessions.sort_by_key(|s| (s.created_at, s.id));
        Ok(sessions)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Time until a full window frees: at least a second, so that `Retry-After` is never 0.
fn retry_after(counter: Counter, now: Timestamp) -> std::time::Duration {
    counter
        .resets_at
        .remaining_after(now)
        .max(std::time::Duration::from_secs(1))
}

fn counter_keys(attempt: &LoginAttempt) -> [CounterKey; 2] {
    [
        CounterKey::Pair(attempt.username.clone(), attempt.client),
        CounterKey::Client(attempt.client),
    ]
}

#[async_trait]
impl LoginThrottle for MemoryStore {
    async fn admit(
        &self,
        attempt: &LoginAttempt,
        limits: &ThrottleLimits,
    ) -> Result<Admission, StoreError> {
        let now = self.clock.now();
        let keys = counter_keys(attempt);
        let windows: [WindowLimit; 2] = [limits.pair, limits.client];
        let mut counters = self.attempts();
        // A counter whose window has ended counts nothing.
        let live = |counters: &HashMap<CounterKey, Counter>, key: &CounterKey| {
            counters
                .get(key)
                .copied()
                .filter(|c| !c.resets_at.has_passed(now))
        };
        let refused = keys
            .iter()
            .zip(windows)
            .filter_map(|(key, limit)| live(&counters, key).filter(|c| c.count >= limit.max))
            .map(|c| retry_after(c, now))
            .max();
        if let Some(retry_after) = refused {
            return Ok(Admission::Refused { retry_after });
        }
        for (key, limit) in keys.into_iter().zip(windows) {
            let counter = live(&counters, &key).unwrap_or(Counter {
                count: 0,
                resets_at: now.plus(limit.window),
            });
            counters.insert(
                key,
                Counter {
                    count: counter.count.saturating_add(1),
                    ..counter
                },
            );
        }
        Ok(Admission::Admitted)
    }

    async fn settle(
        &self,
        attempt: &LoginAttempt,
        settlement: Settlement,
    ) -> Result<(), StoreError> {
        let [pair, client] = counter_keys(attempt);
        let mut counters = self.attempts();
        let mut give_back = |key: CounterKey| {
            if let Entry::Occupied(mut entry) = counters.entry(key) {
                let counter = entry.get_mut();
                counter.count = counter.count.saturating_sub(1);
                if counter.count == 0 {
                    entry.remove();
                }
            }
        };
        give_back(client);
        match settlement {
            Settlement::Unjudged => give_back(pair),
            Settlement::Succeeded => {
                counters.remove(&pair);
            }
        }
        Ok(())
    }
}
