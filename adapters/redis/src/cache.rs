//! The session cache: what the per-request check reads (is the session alive, and the
//! user's profile), kept in this replica's memory and invalidated by Redis itself, so that
//! an authenticated request costs no round trip while revocation still takes effect at once.
//!
//! # How it stays right
//! - **Push invalidation.** One dedicated RESP3 connection (the *link*, named
//!   `jwt-todo-tracking`) runs `CLIENT TRACKING ON`; every cache fill reads its keys on that
//!   connection, so Redis remembers that this replica holds them and pushes `invalidate`
//!   for each such key the moment any client (any replica) changes it, expires it or
//!   deletes it. The pushes are applied synchronously by the connection's reader, in the
//!   order they arrive, before any later reply on that connection is delivered.
//! - **Proven liveness.** The link carries a `PING` every `staleness / 4`. Redis answers
//!   commands of one connection in order, and writes its pushes into that connection's
//!   stream as the write happens; so when the answer to a `PING` sent at `t` has been read,
//!   every invalidation for a write acknowledged before `t` has been applied. An entry is
//!   served only while such a `t` lies within the staleness bound of now; otherwise the
//!   request asks Redis as without the cache (and fails closed when Redis does not answer).
//!   A logout through another replica therefore takes effect here within the bound even if
//!   the link stalls; with a live link it takes one push (well under a millisecond).
//! - **A lost link empties the cache**, at once, from the reader that saw it close (and
//!   the tracker reconnects; a new link starts empty, since Redis tracks per connection).
//! - **Fills cannot resurrect.** A fill first leaves a *pending* mark, then reads; an
//!   invalidation (or a flush, or this replica's own write) removes the mark, and the read's
//!   answer is stored only if its mark is still there. A read that raced a write is thus
//!   dropped, whichever of the reply and the push is handled first.
//! - **Own writes** (logout, revocation, rotation, reuse detection, profile changes) drop
//!   the entries they touch before the store call returns, so the answer to the write is
//!   never followed by a cached "alive" on this replica.
//! - **Never past expiry**: an entry holds the session key's remaining TTL (`PTTL`, read
//!   with it) and is not served after it.
//! - **Bounded**: at most `capacity` sessions; a fill past it evicts another user's entry.
//!
//! Only a single Redis (`REDIS_URL`) has a link; under Cluster and Sentinel the cache is
//! off (the server warns at start): a failover there could move the keys to a node this
//! replica holds no tracking link to, which the heartbeat could not prove.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use domain::{SessionId, User, UserId};
use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, Value};

/// The cache's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionCacheConfig {
    /// How old the last proof of a live invalidation link may be for an entry to be
    /// served; `Duration::ZERO` turns the cache off.
    pub staleness: Duration,
    /// Most sessions held.
    pub capacity: usize,
}

impl Default for SessionCacheConfig {
    fn default() -> Self {
        Self {
            staleness: Duration::from_millis(50),
            capacity: 10_000,
        }
    }
}

impl SessionCacheConfig {
    /// Is the cache on?
    pub fn enabled(&self) -> bool {
        !self.staleness.is_zero() && self.capacity > 0
    }

    /// How often the link is proven: four heartbeats per bound, so one late answer does not
    /// turn the cache off.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.staleness / 4).max(Duration::from_millis(1))
    }
}

/// The cache's counters and state, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCacheStats {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests that asked Redis (not cached, expired, or the link not proven).
    pub misses: u64,
    /// Sessions held now.
    pub entries: u64,
    /// Whether the link is proven within the bound now.
    pub live: bool,
}

/// The client name of the link, so an operator sees it in `CLIENT LIST`.
pub(crate) const LINK_NAME: &str = "jwt-todo-tracking";

/// What [`SessionCache::lookup`] found; `L` is the link's connection.
pub(crate) enum Lookup<L = MultiplexedConnection> {
    /// Alive, with this profile: no round trip.
    Hit(User),
    /// Not held: read it on the link with [`SessionCache::complete`], which keeps it.
    Fill(Fill<L>),
    /// The link is not proven: ask Redis as without a cache.
    Bypass,
}

/// A fill in progress: the pending mark it left and the connection to read on.
pub(crate) struct Fill<L = MultiplexedConnection> {
    pub(crate) conn: L,
    entry: u64,
    mark: u64,
    /// Before the read was sent: the TTL it returns counts from here.
    pub(crate) sent: Instant,
}

/// One user's cached sessions and profile. Exists only while it holds a session (pending
/// or ready); a profile invalidation removes it whole.
struct UserEntry {
    /// Which entry this is: one removed and created again is another.
    id: u64,
    profile: Option<User>,
    sessions: HashMap<SessionId, Slot>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A fill's read is on its way; `mark` is that fill's.
    Pending { mark: u64 },
    /// Alive until `until` (the session key's expiry), unless invalidated before.
    Ready { until: Instant },
}

struct State<L> {
    users: HashMap<UserId, UserEntry>,
    /// Slots held in all entries, pending ones included.
    sessions: usize,
    /// Counter for entry ids and pending marks.
    next_id: u64,
    /// The current link: its number and connection; `None` while there is none.
    link: Option<(u64, L)>,
    /// Number of the last link started.
    last_link: u64,
}

impl<L> Default for State<L> {
    fn default() -> Self {
        Self {
            users: HashMap::new(),
            sessions: 0,
            next_id: 0,
            link: None,
            last_link: 0,
        }
    }
}

impl<L> State<L> {
    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn remove_user(&mut self, user: UserId) {
        if let Some(entry) = self.users.remove(&user) {
            self.sessions -= entry.sessions.len();
        }
    }

    fn remove_session(&mut self, user: UserId, session: SessionId) {
        if let Some(entry) = self.users.get_mut(&user)
            && entry.sessions.remove(&session).is_some()
        {
            self.sessions -= 1;
            if entry.sessions.is_empty() {
                self.users.remove(&user);
            }
        }
    }

    /// Does `fill`'s pending mark still stand for `session` of `user`? Not if anything
    /// removed it since, even if the user's entry was made again meanwhile.
    fn marked_by<C>(&self, fill: &Fill<C>, user: UserId, session: SessionId) -> bool {
        self.users.get(&user).is_some_and(|entry| {
            entry.id == fill.entry
                && entry.sessions.get(&session) == Some(&Slot::Pending { mark: fill.mark })
        })
    }

    fn clear(&mut self) {
        self.users.clear();
        self.sessions = 0;
    }
}

/// The per-replica session cache (see the module docs); `L` is the link's connection
/// (another type in the unit tests, which have no Redis).
pub(crate) struct SessionCache<L = MultiplexedConnection> {
    config: SessionCacheConfig,
    /// The instant `proven` counts from.
    base: Instant,
    /// Nanoseconds from `base` to the sending of the last answered heartbeat, plus one;
    /// 0 while no link is proven.
    proven: AtomicU64,
    state: Mutex<State<L>>,
    hits: AtomicU64,
    misses: AtomicU64,
    started: AtomicBool,
}

impl<L: Clone> SessionCache<L> {
    pub(crate) fn new(config: SessionCacheConfig) -> Self {
        Self {
            config,
            base: Instant::now(),
            proven: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            started: AtomicBool::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<L>> {
        // Nothing done under the lock can leave it half-changed in a way that matters:
        // at worst an entry is missing.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Is the link proven within the bound at `now`?
    fn proven_at(&self, now: Instant) -> bool {
        let proven = self.proven.load(Ordering::Acquire);
        if proven == 0 {
            return false;
        }
        let age = self.nanos(now).saturating_sub(proven - 1);
        u128::from(age) <= self.config.staleness.as_nanos()
    }

    /// The cached answer for `session` of `user`, or how to get it.
    pub(crate) fn lookup(&self, user: UserId, session: SessionId) -> Lookup<L> {
        let now = Instant::now();
        if !self.proven_at(now) {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Bypass;
        }
        let mut state = self.state();
        if state.link.is_none() {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Bypass;
        }
        let held = state
            .users
            .get(&user)
            .and_then(|entry| Some((entry.sessions.get(&session).copied()?, entry)));
        match held {
            Some((Slot::Ready { until }, entry)) if until > now => {
                if let Some(profile) = &entry.profile {
                    let profile = profile.clone();
                    drop(state);
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Lookup::Hit(profile);
                }
            }
            // Another request is filling it: ask Redis without waiting for that one.
            Some((Slot::Pending { .. }, _)) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                return Lookup::Bypass;
            }
            _ => {}
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let Some((_, conn)) = state.link.clone() else {
            return Lookup::Bypass;
        };
        if state.sessions >= self.config.capacity {
            // Full: make room by dropping some user's entry (whichever the map yields
            // first; a later request of that user fills it again).
            let victim = state
                .users
                .keys()
                .find(|held| **held != user)
                .copied()
                .or_else(|| state.users.keys().next().copied());
            match victim {
                Some(victim) => state.remove_user(victim),
                None => return Lookup::Bypass,
            }
        }
        let mark = state.fresh_id();
        let fresh = state.fresh_id();
        let entry = state.users.entry(user).or_insert_with(|| UserEntry {
            id: fresh,
            profile: None,
            sessions: HashMap::new(),
        });
        let id = entry.id;
        let added = entry
            .sessions
            .insert(session, Slot::Pending { mark })
            .is_none();
        if added {
            state.sessions += 1;
        }
        Lookup::Fill(Fill {
            conn,
            entry: id,
            mark,
            sent: now,
        })
    }

    /// Keeps what a fill read, if nothing invalidated it meanwhile: `ttl` is the session
    /// key's remaining time to live (`None`: gone or without expiry, not kept), `profile`
    /// the user's record (`None`: gone, not kept).
    pub(crate) fn complete(
        &self,
        fill: &Fill<L>,
        user: UserId,
        session: SessionId,
        ttl: Option<Duration>,
        profile: Option<&User>,
    ) {
        let mut state = self.state();
        if !state.marked_by(fill, user, session) {
            return;
        }
        match (ttl, profile) {
            (Some(ttl), Some(profile)) => {
                if let Some(entry) = state.users.get_mut(&user) {
                    entry.sessions.insert(
                        session,
                        Slot::Ready {
                            until: fill.sent + ttl,
                        },
                    );
                    entry.profile = Some(profile.clone());
                }
            }
            _ => state.remove_session(user, session),
        }
    }

    /// Drops the pending mark of a fill that failed.
    pub(crate) fn abandon(&self, fill: &Fill<L>, user: UserId, session: SessionId) {
        let mut state = self.state();
        if state.marked_by(fill, user, session) {
            state.remove_session(user, session);
        }
    }

    /// This replica changed or ended `session` of `user`: forget it.
    pub(crate) fn forget_session(&self, user: UserId, session: SessionId) {
        self.state().remove_session(user, session);
    }

    /// This replica changed `user`'s profile or several of its sessions: forget them all.
    pub(crate) fn forget_user(&self, user: UserId) {
        self.state().remove_user(user);
    }

    pub(crate) fn stats(&self) -> SessionCacheStats {
        let entries = self.state().sessions;
        SessionCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: u64::try_from(entries).unwrap_or(u64::MAX),
            live: self.proven_at(Instant::now()),
        }
    }

    /// A push from Redis on link `link` (see the module docs).
    fn on_push(&self, link: u64, push: &PushInfo) {
        match push.kind {
            PushKind::Invalidate => {
                let mut state = self.state();
                for value in &push.data {
                    match value {
                        Value::Array(keys) => {
                            for key in keys {
                                invalidate(&mut state, key);
                            }
                        }
                        other => invalidate(&mut state, other),
                    }
                }
            }
            PushKind::Disconnection => self.lose(link),
            _ => {}
        }
    }

    /// Link `link` is up, tracking and named: fills may use it (nothing is served until a
    /// heartbeat on it is answered).
    fn attach(&self, link: u64, conn: L) {
        let mut state = self.state();
        if state.last_link == link {
            state.clear();
            state.link = Some((link, conn));
        }
    }

    /// Starts a new link number, ending whatever the previous one left.
    fn begin_link(&self) -> u64 {
        let mut state = self.state();
        self.proven.store(0, Ordering::Release);
        state.clear();
        state.link = None;
        state.last_link += 1;
        state.last_link
    }

    /// A heartbeat sent at `sent` on link `link` was answered.
    fn prove(&self, link: u64, sent: Instant) {
        let state = self.state();
        if state
            .link
            .as_ref()
            .is_some_and(|(current, _)| *current == link)
        {
            self.proven
                .fetch_max(self.nanos(sent).saturating_add(1), Ordering::AcqRel);
        }
    }

    /// Link `link` is gone: nothing is served and everything held is dropped, at once.
    fn lose(&self, link: u64) {
        let mut state = self.state();
        if state.last_link == link {
            self.proven.store(0, Ordering::Release);
            state.clear();
            state.link = None;
        }
    }

    fn link_is(&self, link: u64) -> bool {
        self.state()
            .link
            .as_ref()
            .is_some_and(|(current, _)| *current == link)
    }
}

/// Applies one invalidated key (`Nil`: Redis dropped everything it tracked, e.g. after a
/// `FLUSHALL`).
fn invalidate<L>(state: &mut State<L>, key: &Value) {
    let bytes: &[u8] = match key {
        Value::BulkString(bytes) => bytes,
        Value::SimpleString(text) => text.as_bytes(),
        Value::Nil => {
            state.clear();
            return;
        }
        _ => return,
    };
    match crate::keys::parse_user_key(bytes) {
        Some((user, Some(session))) => state.remove_session(user, session),
        Some((user, None)) => state.remove_user(user),
        // Not a key a fill reads; nothing of ours depends on it. A key of ours that does
        // not parse would be a bug: drop everything rather than risk serving it.
        None => state.clear(),
    }
}

impl SessionCache {
    /// Starts the tracker (once): it connects the link, keeps it proven, and reconnects
    /// after it is lost, until the store is dropped.
    pub(crate) fn start(self: &Arc<Self>, client: &redis::Client, command_timeout: Duration) {
        if self.started.load(Ordering::Acquire) || self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Started again from the first request, which runs on the runtime.
            self.started.store(false, Ordering::Release);
            return;
        };
        let info = client.get_connection_info().clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client = match redis::Client::open(info.set_redis_settings(resp3)) {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %e, "session cache off: cannot build the RESP3 client");
                return;
            }
        };
        runtime.spawn(track(Arc::downgrade(self), client, command_timeout));
    }
}

/// Forgets what a write of this replica touches when it is dropped: at the end of the
/// store call, after the write and on every path out of it (an error included: a write
/// whose reply was lost may still have happened), so before the answer is sent.
pub(crate) struct ForgetOnReturn<'a> {
    pub(crate) cache: Option<&'a SessionCache>,
    pub(crate) user: UserId,
    /// `None`: every session of the user, and the profile.
    pub(crate) session: Option<SessionId>,
}

impl Drop for ForgetOnReturn<'_> {
    fn drop(&mut self) {
        match (self.cache, self.session) {
            (Some(cache), Some(session)) => cache.forget_session(self.user, session),
            (Some(cache), None) => cache.forget_user(self.user),
            (None, _) => {}
        }
    }
}

/// The tracker (see [`SessionCache::start`]).
async fn track(cache: Weak<SessionCache>, client: redis::Client, command_timeout: Duration) {
    const BACKOFF_MIN: Duration = Duration::from_millis(20);
    const BACKOFF_MAX: Duration = Duration::from_secs(2);
    let mut backoff = BACKOFF_MIN;
    let mut warned = false;
    loop {
        let Some(strong) = cache.upgrade() else {
            return;
        };
        let link = strong.begin_link();
        let interval = strong.config.heartbeat_interval();
        drop(strong);
        match connect(&cache, &client, link, command_timeout).await {
            Ok(conn) => {
                if warned {
                    tracing::info!("session cache: invalidation link up again");
                }
                warned = false;
                backoff = BACKOFF_MIN;
                let Some(strong) = cache.upgrade() else {
                    return;
                };
                strong.attach(link, conn.clone());
                drop(strong);
                heartbeat(&cache, conn, link, interval, command_timeout).await;
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "session cache: no invalidation link; every request asks Redis until there is one");
                    warned = true;
                }
            }
        }
        let Some(strong) = cache.upgrade() else {
            return;
        };
        strong.lose(link);
        drop(strong);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Opens link `link`: RESP3 with pushes applied to the cache, named, tracking.
async fn connect(
    cache: &Weak<SessionCache>,
    client: &redis::Client,
    link: u64,
    command_timeout: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    let pushes = cache.clone();
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(command_timeout))
        .set_response_timeout(Some(command_timeout))
        .set_push_sender(move |push: PushInfo| {
            if let Some(cache) = pushes.upgrade() {
                cache.on_push(link, &push);
            }
            Ok::<(), std::convert::Infallible>(())
        });
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(LINK_NAME)
        .query_async::<()>(&mut conn)
        .await?;
    redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .query_async::<()>(&mut conn)
        .await?;
    Ok(conn)
}

/// Proves link `link` every `interval` until it is lost, replaced, unanswered for too
/// long, or the store is dropped.
async fn heartbeat(
    cache: &Weak<SessionCache>,
    mut conn: MultiplexedConnection,
    link: u64,
    interval: Duration,
    command_timeout: Duration,
) {
    // A link silent this long is dropped and opened again (a half-open TCP connection
    // would otherwise keep the cache off until the kernel noticed).
    let give_up = command_timeout
        .saturating_mul(4)
        .max(Duration::from_secs(1));
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_answer = Instant::now();
    loop {
        ticks.tick().await;
        {
            let Some(strong) = cache.upgrade() else {
                return;
            };
            if !strong.link_is(link) {
                return;
            }
        }
        let sent = Instant::now();
        match redis::cmd("PING").query_async::<String>(&mut conn).await {
            Ok(_) => {
                last_answer = Instant::now();
                let Some(strong) = cache.upgrade() else {
                    return;
                };
                strong.prove(link, sent);
            }
            Err(e) if e.is_connection_dropped() || e.is_io_error() => return,
            Err(_) => {
                if last_answer.elapsed() > give_up {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
