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
//! Login throttling counters and rate limits live under a lock of their own, so that a
//! flood of refused logins never contends with the per-request session checks. A login
//! counter holds the failures of its window and the holds of attempts in flight; it is
//! created by an admitted attempt only (a refused one changes nothing), and invisible once
//! its window has ended and its holds have lapsed; [`MemoryStore::purge_expired`] drops
//! such counters, ended rate windows and expired idempotency keys. Since every counted
//! failure costs a password hash first, the number of live counters is bounded by what the
//! hasher can do in one window.
//!
//! Nothing here can lose a reply (every call completes under its lock or not at all), so
//! the lost-reply rules of the ports hold trivially; the idempotency keys and per-user
//! limits are kept exactly as the Redis adapter keeps them.
//!
//! The SMS outbox (`outbox`) has a lock of its own too, as do pending phone codes and
//! SMS counters (`phone`).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use application::ports::{
    ActiveUser, Admission, Clock, EndOutcome, IdGenerator, IdempotencyRecord, IdempotencyStore,
    InsertUserError, LOGIN_HOLD, LoginAttempt, LoginThrottle, Page, PresentedRefresh, RateKey,
    RateLimiter, Rotation, RotationOutcome, SessionCursor, SessionScope, SessionStore, Settlement,
    StoreError, ThrottleLimits, TodoCursor, TodoInsert, TodoInsertRules, TodoRepository,
    UserRepository, WindowLimit,
};
use async_trait::async_trait;
use domain::ids::Uuid;
use domain::{
    ClientAddress, IdempotencyKey, Session, SessionId, Timestamp, Todo, TodoId, TokenId, User,
    UserId, Username,
};

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
    todos: HashMap<UserId, UserTodos>,
    next_todo_seq: u64,
    /// Idempotency keys of todo creations: the request's fingerprint and the todo it
    /// created, until they expire.
    todo_keys: HashMap<(UserId, IdempotencyKey), Remembered<(String, Todo)>>,
    /// Todo creations per user in the current window.
    todo_creations: HashMap<UserId, Counter>,
    /// Idempotency keys of registrations.
    registration_keys: HashMap<IdempotencyKey, Remembered<IdempotencyRecord>>,
    sessions: HashMap<UserId, HashMap<SessionId, StoredSession>>,
}

/// One user's todos: each with its insertion number, which orders lists (timestamps are in
/// whole seconds and would tie), and the numbers in order, so that a page is read without
/// looking at the rest.
#[derive(Default)]
struct UserTodos {
    by_id: HashMap<TodoId, (u64, Todo)>,
    order: BTreeMap<u64, TodoId>,
}

/// A session as stored. `unanswered` is the Redis adapter's lost-reply mark; nothing here
/// loses a reply, so it is always `None`, and kept only so both stores check a presented
/// token by the same rule ([`StoredSession::accepts`]).
#[derive(Clone)]
struct StoredSession {
    session: Session,
    unanswered: Option<TokenId>,
}

impl StoredSession {
    /// Whether `presented` speaks for this session: its current refresh token, or the one
    /// the last rotation spent, within the grace window or when that rotation's answer was
    /// lost.
    fn accepts(&self, presented: TokenId, now: Timestamp, grace: Duration) -> bool {
        self.session.refresh_jti == presented || self.is_replay_of_last(presented, now, grace)
    }

    fn is_replay_of_last(&self, presented: TokenId, now: Timestamp, grace: Duration) -> bool {
        if self.session.previous_jti != Some(presented) {
            return false;
        }
        let elapsed = now.unix_seconds() - self.session.refreshed_at.unix_seconds();
        let within_grace =
            !grace.is_zero() && u64::try_from(elapsed).is_ok_and(|e| e <= grace.as_secs());
        within_grace || self.unanswered == Some(presented)
    }
}

/// Something kept until `expires_at`.
struct Remembered<T> {
    value: T,
    expires_at: Timestamp,
}

impl State {
    /// Whether `session` of `user` exists and its refresh token has not expired.
    fn session_alive(&self, user: UserId, session: SessionId, now: Timestamp) -> bool {
        self.sessions
            .get(&user)
            .and_then(|s| s.get(&session))
            .is_some_and(|s| !s.session.expires_at.has_passed(now))
    }
}

/// What a limiter counter counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum CounterKey {
    /// Failed logins of one name from one client.
    Pair(Option<Username>, ClientAddress),
    /// Failed logins from one client.
    Client(ClientAddress),
    /// A [`RateLimiter`] key.
    Rate(RateKey),
}

/// Events counted in a window that ends at `resets_at`.
#[derive(Clone, Copy, Debug)]
struct Counter {
    count: u32,
    resets_at: Timestamp,
}

impl Counter {
    /// The counter as seen at `now`: an ended window counts nothing.
    fn live(counter: Option<&Counter>, now: Timestamp) -> Option<Counter> {
        counter.copied().filter(|c| !c.resets_at.has_passed(now))
    }
}

/// A login counter: the failures of its window, and the holds of admitted attempts not
/// settled yet (attempt id, when the hold lapses).
#[derive(Clone, Debug, Default)]
struct LoginCounter {
    failures: Option<Counter>,
    holds: Vec<(Uuid, Timestamp)>,
}

impl LoginCounter {
    /// Drops what has ended by `now`.
    fn prune(&mut self, now: Timestamp) {
        self.failures = Counter::live(self.failures.as_ref(), now);
        self.holds.retain(|(_, lapses)| !lapses.has_passed(now));
    }

    fn is_empty(&self) -> bool {
        self.failures.is_none() && self.holds.is_empty()
    }

    /// Failures and holds: what the limit is checked against.
    fn used(&self) -> u32 {
        let holds = u32::try_from(self.holds.len()).unwrap_or(u32::MAX);
        self.failures.map_or(0, |f| f.count).saturating_add(holds)
    }

    /// How long until one more attempt fits under `limit`: the window's end when the
    /// failures alone fill it, else the first hold's lapse.
    fn wait(&self, limit: WindowLimit, now: Timestamp) -> Duration {
        let until = match self.failures {
            Some(f) if f.count >= limit.max => f.resets_at,
            _ => self
                .holds
                .iter()
                .map(|(_, lapses)| *lapses)
                .min()
                .unwrap_or(now),
        };
        until.remaining_after(now).max(Duration::from_secs(1))
    }
}

/// All the stores in one: users, todos and sessions share one lock; the login-throttle and
/// rate-limit counters, the outbox, the phone codes and the SMS counters have their own.
pub struct MemoryStore {
    state: RwLock<State>,
    outbox: Mutex<outbox::OutboxState>,
    /// Pending phone codes, one per user; locked after `state`, never before.
    codes: Mutex<HashMap<UserId, phone::CodeRecord>>,
    sms_counters: Mutex<HashMap<phone::SmsCounter, Counter>>,
    attempts: Mutex<Limiters>,
    clock: Arc<dyn Clock>,
}

/// The counters of [`LoginThrottle`] and [`RateLimiter`].
#[derive(Default)]
struct Limiters {
    logins: HashMap<CounterKey, LoginCounter>,
    rates: HashMap<CounterKey, Counter>,
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
            attempts: Mutex::new(Limiters::default()),
            clock,
        }
    }

    fn attempts(&self) -> MutexGuard<'_, Limiters> {
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

    /// Drops every expired session, every ended throttle, rate or SMS window, lapsed hold,
    /// expired idempotency key and expired phone code; returns how many sessions. Reads never see any of them
    /// anyway; this only returns their memory.
    pub fn purge_expired(&self) -> usize {
        let now = self.clock.now();
        {
            let mut limiters = self.attempts();
            limiters.logins.retain(|_, counter| {
                counter.prune(now);
                !counter.is_empty()
            });
            limiters
                .rates
                .retain(|_, counter| !counter.resets_at.has_passed(now));
        }
        self.purge_phone(now);
        let mut state = self.write();
        state
            .todo_keys
            .retain(|_, kept| !kept.expires_at.has_passed(now));
        state
            .registration_keys
            .retain(|_, kept| !kept.expires_at.has_passed(now));
        state
            .todo_creations
            .retain(|_, counter| !counter.resets_at.has_passed(now));
        let mut purged = 0;
        state.sessions.retain(|_, sessions| {
            let before = sessions.len();
            sessions.retain(|_, s| !s.session.expires_at.has_passed(now));
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
    ) -> Option<&mut HashMap<SessionId, StoredSession>> {
        let sessions = state.sessions.get_mut(&user)?;
        sessions.retain(|_, s| !s.session.expires_at.has_passed(now));
        Some(sessions)
    }
}

#[async_trait]
impl UserRepository for MemoryStore {
    async fn insert(&self, user: &User) -> Result<(), InsertUserError> {
        let mut state = self.write();
        match state.usernames.entry(user.username.clone()) {
            // A retry of the same registration (same id) finds its own claim.
            Entry::Occupied(holder) if *holder.get() != user.id => {
                return Err(InsertUserError::UsernameTaken);
            }
            Entry::Occupied(_) => {}
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
    async fn insert(&self, todo: &Todo, rules: &TodoInsertRules) -> Result<TodoInsert, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let user = todo.user_id;
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
                retry_after: counter
                    .resets_at
                    .remaining_after(now)
                    .max(Duration::from_secs(1)),
            });
        }
        let held = state.todos.get(&user).map_or(0, |t| t.by_id.len());
        if held >= rules.max_todos as usize {
            return Ok(TodoInsert::QuotaExceeded);
        }
        let counter = creations.unwrap_or(Counter {
            count: 0,
            resets_at: now.plus(rules.creations.window),
        });
        state.todo_creations.insert(
            user,
            Counter {
                count: counter.count.saturating_add(1),
                ..counter
            },
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

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, session: &Session, max_sessions: u32) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let sessions = state.sessions.entry(session.user_id).or_default();
        sessions.retain(|_, s| !s.session.expires_at.has_passed(now));
        let mut evicted = 0;
        // The same session again (a retry of the very create) is stored again, counted once.
        while !sessions.contains_key(&session.id)
            && sessions.len() >= (max_sessions as usize).max(1)
        {
            // The one that expires first: the longest without a refresh.
            let Some(oldest) = sessions
                .values()
                .min_by_key(|s| (s.session.expires_at, s.session.created_at, s.session.id))
                .map(|s| s.session.id)
            else {
                break;
            };
            sessions.remove(&oldest);
            evicted += 1;
        }
        sessions.insert(
            session.id,
            StoredSession {
                session: session.clone(),
                unanswered: None,
            },
        );
        Ok(evicted)
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
        let Some(stored) = sessions.get_mut(&rotation.session_id) else {
            return Ok(RotationOutcome::NotFound);
        };
        if stored.session.refresh_jti != rotation.presented {
            if stored.is_replay_of_last(rotation.presented, rotation.now, rotation.grace) {
                if stored.unanswered == Some(rotation.presented) {
                    stored.unanswered = None;
                }
                return Ok(RotationOutcome::Replayed(stored.session.clone()));
            }
            sessions.remove(&rotation.session_id);
            return Ok(RotationOutcome::ReuseDetected);
        }
        let session = &mut stored.session;
        session.previous_jti = Some(rotation.presented);
        session.refresh_jti = rotation.next;
        session.refreshed_at = rotation.now;
        session.expires_at = rotation.expires_at;
        stored.unanswered = None;
        Ok(RotationOutcome::Rotated(stored.session.clone()))
    }

    async fn end_with_refresh(
        &self,
        presented: &PresentedRefresh,
        scope: SessionScope,
    ) -> Result<EndOutcome, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let Some(sessions) = Self::live_sessions(&mut state, presented.user_id, now) else {
            return Ok(EndOutcome::NotFound);
        };
        let Some(stored) = sessions.get(&presented.session_id) else {
            return Ok(EndOutcome::NotFound);
        };
        if !stored.accepts(presented.presented, presented.now, presented.grace) {
            sessions.remove(&presented.session_id);
            return Ok(EndOutcome::ReuseDetected);
        }
        let before = sessions.len();
        match scope {
            SessionScope::This => {
                sessions.remove(&presented.session_id);
            }
            SessionScope::Others => sessions.retain(|id, _| *id == presented.session_id),
            SessionScope::All => sessions.clear(),
        }
        Ok(EndOutcome::Ended((before - sessions.len()) as u64))
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

    async fn list(
        &self,
        user: UserId,
        after: Option<SessionCursor>,
        limit: usize,
    ) -> Result<Page<Session, SessionCursor>, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        // At most the per-user cap of sessions: sorting them all is bounded.
        let mut sessions: Vec<Session> = Self::live_sessions(&mut state, user, now)
            .map(|s| {
                s.values()
                    .map(|s| s.session.clone())
                    .filter(|s| after.is_none_or(|a| cursor_of(s) > a))
                    .collect()
            })
            .unwrap_or_default();
        sessions.sort_by_key(cursor_of);
        let next = (sessions.len() > limit).then(|| {
            sessions.truncate(limit);
            sessions.last().map_or(
                SessionCursor {
                    created_at: now,
                    id: SessionId::from_uuid(Uuid::nil()),
                },
                cursor_of,
            )
        });
        Ok(Page {
            items: sessions,
            next,
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A session's place in the listing order.
fn cursor_of(session: &Session) -> SessionCursor {
    SessionCursor {
        created_at: session.created_at,
        id: session.id,
    }
}

fn login_keys(attempt: &LoginAttempt) -> [CounterKey; 2] {
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
        let keys = login_keys(attempt);
        let windows: [WindowLimit; 2] = [limits.pair, limits.client];
        let mut limiters = self.attempts();
        let mut refused = None;
        for (key, limit) in keys.iter().zip(windows) {
            if let Some(counter) = limiters.logins.get_mut(key) {
                counter.prune(now);
                if counter.used() >= limit.max {
                    let wait = counter.wait(limit, now);
                    refused = Some(refused.map_or(wait, |w: Duration| w.max(wait)));
                }
            }
        }
        if let Some(retry_after) = refused {
            return Ok(Admission::Refused { retry_after });
        }
        for key in keys {
            limiters
                .logins
                .entry(key)
                .or_default()
                .holds
                .push((attempt.id, now.plus(LOGIN_HOLD)));
        }
        Ok(Admission::Admitted)
    }

    async fn settle(
        &self,
        attempt: &LoginAttempt,
        limits: &ThrottleLimits,
        settlement: Settlement,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let keys = login_keys(attempt);
        let windows: [WindowLimit; 2] = [limits.pair, limits.client];
        let mut limiters = self.attempts();
        for (index, (key, limit)) in keys.into_iter().zip(windows).enumerate() {
            let counter = limiters.logins.entry(key).or_default();
            let held = counter.holds.len();
            counter.holds.retain(|(id, _)| *id != attempt.id);
            // Settled once: without its hold (already settled, or lapsed), a repeated
            // settlement changes nothing.
            let had_hold = counter.holds.len() < held;
            match settlement {
                Settlement::Failed if had_hold => {
                    let live = Counter::live(counter.failures.as_ref(), now).unwrap_or(Counter {
                        count: 0,
                        resets_at: now.plus(limit.window),
                    });
                    counter.failures = Some(Counter {
                        count: live.count.saturating_add(1),
                        ..live
                    });
                }
                // The pair's failures end with a success; the client's stay.
                Settlement::Succeeded if index == 0 => counter.failures = None,
                _ => {}
            }
        }
        limiters.logins.retain(|_, counter| {
            counter.prune(now);
            !counter.is_empty()
        });
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for MemoryStore {
    async fn hit(&self, key: &RateKey, limit: WindowLimit) -> Result<Admission, StoreError> {
        let now = self.clock.now();
        let key = CounterKey::Rate(key.clone());
        let mut limiters = self.attempts();
        let counter = Counter::live(limiters.rates.get(&key), now);
        if let Some(counter) = counter.filter(|c| c.count >= limit.max) {
            return Ok(Admission::Refused {
                retry_after: counter
                    .resets_at
                    .remaining_after(now)
                    .max(Duration::from_secs(1)),
            });
        }
        let counter = counter.unwrap_or(Counter {
            count: 0,
            resets_at: now.plus(limit.window),
        });
        limiters.rates.insert(
            key,
            Counter {
                count: counter.count.saturating_add(1),
                ..counter
            },
        );
        Ok(Admission::Admitted)
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim_registration(
        &self,
        key: &IdempotencyKey,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<IdempotencyRecord, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let kept = state
            .registration_keys
            .entry(key.clone())
            .and_modify(|kept| {
                if kept.expires_at.has_passed(now) {
                    *kept = Remembered {
                        value: record.clone(),
                        expires_at: now.plus(ttl),
                    };
                }
            })
            .or_insert_with(|| Remembered {
                value: record.clone(),
                expires_at: now.plus(ttl),
            });
        Ok(kept.value.clone())
    }
}
