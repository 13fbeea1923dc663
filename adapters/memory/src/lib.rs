//! The embedded store: in-process implementations of jwt-todo's store ports, and the
//! system clock and random ids.
//!
//! This is the default when `REDIS_URL` is unset, so `cargo run -p server` works on a
//! bare machine, and it is what most tests run on. It keeps the same contract as the Redis
//! adapter (the same contract tests run against both): sessions expire at their
//! `expires_at`, rotation is atomic, usernames are unique.
//!
//! # Layout
//! - Here: [`MemoryStore`], its locks and the state they guard, and
//!   [`MemoryStore::purge_expired`].
//! - One module per port: `users`, `accounts`, `audit`, `mfa`, `todos`, `sessions`, `throttle` (login throttle and rate
//!   limits), `idempotency` (registrations' keys), `outbox`, `phone` (verification and SMS
//!   caps).
//! - `system`: [`SystemClock`] and [`RandomIds`].
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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use application::ports::{Clock, CodeDigest, IdempotencyRecord, PendingCode};
use domain::{IdempotencyKey, PhoneNumber, SessionId, Timestamp, Todo, User, UserId, Username};

mod accounts;
mod audit;
mod idempotency;
mod mfa;
mod outbox;
mod phone;
mod sessions;
mod system;
mod throttle;
mod todos;
mod users;

pub use system::{RandomIds, SystemClock};

#[derive(Default)]
struct State {
    users: HashMap<UserId, User>,
    usernames: HashMap<Username, UserId>,
    todos: HashMap<UserId, todos::UserTodos>,
    next_todo_seq: u64,
    /// Idempotency keys of todo creations: the request's fingerprint and the todo it
    /// created, until they expire.
    todo_keys: HashMap<(UserId, IdempotencyKey), Remembered<(String, Todo)>>,
    /// Todo creations per user in the current window.
    todo_creations: HashMap<UserId, Counter>,
    /// Idempotency keys of registrations.
    registration_keys: HashMap<IdempotencyKey, Remembered<IdempotencyRecord>>,
    sessions: HashMap<UserId, HashMap<SessionId, sessions::StoredSession>>,
    /// Second factors, recovery codes and login challenges.
    mfa: HashMap<UserId, mfa::UserMfa>,
}

/// Something kept until `expires_at`.
struct Remembered<T> {
    value: T,
    expires_at: Timestamp,
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

    /// A live counter (see [`Counter::live`]) with one more event counted; without one, a
    /// new window of `window` starts at `now` with this event.
    fn counted(live: Option<Counter>, window: Duration, now: Timestamp) -> Counter {
        let counter = live.unwrap_or(Counter {
            count: 0,
            resets_at: now.plus(window),
        });
        Counter {
            count: counter.count.saturating_add(1),
            ..counter
        }
    }

    /// How long until this window ends: at least a second, as `Retry-After` counts whole
    /// seconds.
    fn retry_after(&self, now: Timestamp) -> Duration {
        self.resets_at
            .remaining_after(now)
            .max(Duration::from_secs(1))
    }
}

/// A pending (or spent) code, as stored: its digest, never the code.
#[derive(Clone, Debug)]
pub(crate) struct CodeRecord {
    pub(crate) code: PendingCode,
    pub(crate) attempts: u32,
    pub(crate) spent: bool,
}

/// What a digest presented against a [`CodeRecord`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tried {
    /// No live code: expired, or dead after too many wrong tries.
    Dead,
    /// The code is spent; `true` when the digest is the one that spent it (a retry).
    Spent(bool),
    /// Wrong, and counted: this many tries are left.
    Wrong { attempts_left: u32 },
    /// Right. Not spent yet: the caller spends it with what it does.
    Right,
}

impl CodeRecord {
    pub(crate) fn new(code: PendingCode) -> Self {
        Self {
            code,
            attempts: 0,
            spent: false,
        }
    }

    /// `digest` against this code at `now`, counting a wrong one, as the Redis scripts do
    /// (`code_prelude.lua`). Compared in constant time: timing tells nothing of how much
    /// of a digest matched.
    pub(crate) fn try_digest(&mut self, digest: &CodeDigest, now: Timestamp) -> Tried {
        if self.code.expires_at.has_passed(now) {
            return Tried::Dead;
        }
        let matches = bool::from(subtle::ConstantTimeEq::ct_eq(
            &self.code.digest.0[..],
            &digest.0[..],
        ));
        if self.spent {
            return Tried::Spent(matches);
        }
        if self.attempts >= self.code.max_attempts {
            return Tried::Dead;
        }
        if !matches {
            self.attempts += 1;
            return Tried::Wrong {
                attempts_left: self.code.max_attempts - self.attempts,
            };
        }
        Tried::Right
    }
}

/// What an SMS counter counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SmsCounter {
    Cooldown(UserId),
    UserHour(UserId),
    UserDay(UserId),
    NumberHour(PhoneNumber),
    NumberDay(PhoneNumber),
}

/// All the stores in one: users, todos and sessions share one lock; the login-throttle and
/// rate-limit counters, the outbox, the phone codes and the SMS counters have their own.
pub struct MemoryStore {
    state: RwLock<State>,
    outbox: Mutex<outbox::OutboxState>,
    /// Pending phone codes, one per user; locked after `state`, never before.
    codes: Mutex<HashMap<UserId, CodeRecord>>,
    /// Pending password-reset codes, one per user; locked after `state`, never before.
    resets: Mutex<HashMap<UserId, CodeRecord>>,
    sms_counters: Mutex<HashMap<SmsCounter, Counter>>,
    /// Each account's audit trail; a lock of its own, never held with another.
    trails: Mutex<audit::Trails>,
    attempts: Mutex<throttle::Limiters>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    pub(crate) fn codes(&self) -> MutexGuard<'_, HashMap<UserId, CodeRecord>> {
        self.codes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn resets(&self) -> MutexGuard<'_, HashMap<UserId, CodeRecord>> {
        self.resets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn trails(&self) -> MutexGuard<'_, audit::Trails> {
        self.trails.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn sms_counters(&self) -> MutexGuard<'_, HashMap<SmsCounter, Counter>> {
        self.sms_counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: RwLock::new(State::default()),
            outbox: Mutex::default(),
            codes: Mutex::default(),
            resets: Mutex::default(),
            sms_counters: Mutex::default(),
            trails: Mutex::default(),
            attempts: Mutex::new(throttle::Limiters::default()),
            clock,
        }
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
    /// expired idempotency key and expired phone code; returns how many sessions. Reads
    /// never see any of them anyway; this only returns their memory.
    pub fn purge_expired(&self) -> usize {
        let now = self.clock.now();
        self.purge_throttle(now);
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
        state.mfa.retain(|_, mfa| mfa.purge_expired(now));
        let mut purged = 0;
        state.sessions.retain(|_, sessions| {
            let before = sessions.len();
            sessions.retain(|_, s| !s.session.expires_at.has_passed(now));
            purged += before - sessions.len();
            !sessions.is_empty()
        });
        purged
    }

    /// Drops ended SMS windows and expired codes.
    pub(crate) fn purge_phone(&self, now: Timestamp) {
        self.sms_counters()
            .retain(|_, counter| !counter.resets_at.has_passed(now));
        self.codes()
            .retain(|_, record| !record.code.expires_at.has_passed(now));
        self.resets()
            .retain(|_, record| !record.code.expires_at.has_passed(now));
    }
}
