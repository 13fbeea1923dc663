//! The cache's bookkeeping without Redis: what a fill may keep, what an invalidation or
//! an own write removes, the bound. (Against a real Redis: `tests/tests/api/cache.rs`.)

use super::*;
use domain::ids::Uuid;

fn user(n: u128) -> UserId {
    UserId::from_uuid(Uuid::from_u128(n))
}

fn session(n: u128) -> SessionId {
    SessionId::from_uuid(Uuid::from_u128(n))
}

fn key(user: UserId, session: SessionId) -> Value {
    Value::BulkString(crate::keys::session_key(user, session).into_bytes())
}

/// A state holding `sessions` of `owner` as ready until `until`.
fn holding(owner: UserId, sessions: &[SessionId], until: Instant) -> State<()> {
    let mut state = State::default();
    let id = state.fresh_id();
    state.users.insert(
        owner,
        UserEntry {
            id,
            profile: None,
            sessions: sessions
                .iter()
                .map(|s| (*s, Slot::Ready { until }))
                .collect(),
        },
    );
    state.sessions = sessions.len();
    state
}

#[test]
fn an_invalidated_session_key_drops_that_session_only() {
    let until = Instant::now() + Duration::from_secs(60);
    let mut state = holding(user(1), &[session(1), session(2)], until);
    invalidate(&mut state, &key(user(1), session(1)));
    assert_eq!(state.sessions, 1);
    let entry = state.users.get(&user(1)).expect("user kept");
    assert!(entry.sessions.contains_key(&session(2)));
    invalidate(&mut state, &key(user(1), session(2)));
    assert_eq!(state.sessions, 0);
    assert!(state.users.is_empty(), "an entry without sessions goes");
}

#[test]
fn an_invalidated_profile_drops_the_whole_user_and_nil_drops_everything() {
    let until = Instant::now() + Duration::from_secs(60);
    let mut state = holding(user(1), &[session(1), session(2)], until);
    invalidate(
        &mut state,
        &Value::BulkString(crate::keys::user_key(user(1)).into_bytes()),
    );
    assert_eq!(state.sessions, 0);
    assert!(state.users.is_empty());

    let mut state = holding(user(1), &[session(1)], until);
    invalidate(&mut state, &Value::Nil);
    assert_eq!(state.sessions, 0);
    assert!(state.users.is_empty());
}

#[test]
fn a_key_outside_the_user_layout_drops_everything_rather_than_guess() {
    let until = Instant::now() + Duration::from_secs(60);
    let mut state = holding(user(1), &[session(1)], until);
    invalidate(&mut state, &Value::BulkString(b"username:alice".to_vec()));
    assert!(state.users.is_empty());
    // Another user's key leaves this one alone.
    let mut state = holding(user(1), &[session(1)], until);
    invalidate(&mut state, &key(user(2), session(1)));
    assert_eq!(state.sessions, 1);
}

#[test]
fn the_configured_bound_sets_the_heartbeat_and_zero_is_off() {
    let config = SessionCacheConfig {
        staleness: Duration::from_millis(40),
        capacity: 10,
    };
    assert!(config.enabled());
    assert_eq!(config.heartbeat_interval(), Duration::from_millis(10));
    assert!(
        !SessionCacheConfig {
            staleness: Duration::ZERO,
            ..config
        }
        .enabled()
    );
}

#[test]
fn nothing_is_served_before_a_heartbeat_proves_the_link_nor_after_the_bound() {
    let cache: SessionCache<()> = SessionCache::new(SessionCacheConfig {
        staleness: Duration::from_millis(20),
        capacity: 10,
    });
    let now = Instant::now();
    assert!(!cache.proven_at(now), "no link yet");
    assert!(matches!(cache.lookup(user(1), session(1)), Lookup::Bypass));
    // A heartbeat on a link that is not the current one proves nothing.
    let link = cache.begin_link();
    cache.prove(link, now);
    assert!(!cache.proven_at(now));
    // Proven (as if attached): served up to the bound after the heartbeat was sent.
    cache.proven.store(cache.nanos(now) + 1, Ordering::Release);
    assert!(cache.proven_at(now + Duration::from_millis(20)));
    assert!(!cache.proven_at(now + Duration::from_millis(21)));
    // Losing the link ends the proof at once.
    cache.lose(link);
    assert!(!cache.proven_at(now));
    assert_eq!(cache.stats().entries, 0);
}

/// A cache whose link (a `()` here) is up and proven now, with a bound long enough that it
/// stays proven for the test.
fn live_cache(capacity: usize) -> SessionCache<()> {
    let cache = SessionCache::new(SessionCacheConfig {
        staleness: Duration::from_secs(30),
        capacity,
    });
    let link = cache.begin_link();
    cache.attach(link, ());
    cache.prove(link, Instant::now());
    cache
}

fn profile(owner: UserId) -> User {
    User {
        id: owner,
        username: domain::Username::parse("cached").expect("valid name"),
        password_hash: domain::PasswordHash::new("$argon2id$stub"),
        phone: None,
        phone_verified: false,
        password_changed_at: None,
        created_at: domain::Timestamp::from_unix_seconds(0),
    }
}

fn fill_of(cache: &SessionCache<()>, owner: UserId, sid: SessionId) -> Fill<()> {
    match cache.lookup(owner, sid) {
        Lookup::Fill(fill) => fill,
        Lookup::Hit(_) => panic!("expected a miss, got a hit"),
        Lookup::Bypass => panic!("expected a miss, got a bypass"),
    }
}

/// Served from the cache? (A miss's fill is abandoned, so the probe leaves no mark.)
fn is_hit(cache: &SessionCache<()>, owner: UserId, sid: SessionId) -> bool {
    match cache.lookup(owner, sid) {
        Lookup::Hit(_) => true,
        Lookup::Fill(fill) => {
            cache.abandon(&fill, owner, sid);
            false
        }
        Lookup::Bypass => false,
    }
}

const MINUTE: Option<Duration> = Some(Duration::from_secs(60));

#[test]
fn a_completed_fill_is_served_until_its_session_is_invalidated() {
    let cache = live_cache(10);
    let (owner, sid) = (user(1), session(1));
    let fill = fill_of(&cache, owner, sid);
    cache.complete(&fill, owner, sid, MINUTE, Some(&profile(owner)));
    assert!(is_hit(&cache, owner, sid));
    cache.on_push(
        1,
        &PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(vec![key(owner, sid)])],
        },
    );
    assert!(!is_hit(&cache, owner, sid));
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (1, 2));
}

#[test]
fn a_read_that_races_an_invalidation_is_never_kept() {
    let cache = live_cache(10);
    let (owner, sid) = (user(1), session(1));
    // The read was sent; the session is logged out elsewhere; the push is handled before
    // the read's (now stale) answer is.
    let fill = fill_of(&cache, owner, sid);
    invalidate(&mut cache.state(), &key(owner, sid));
    cache.complete(&fill, owner, sid, MINUTE, Some(&profile(owner)));
    assert!(!is_hit(&cache, owner, sid), "the stale answer was kept");

    // The same with the profile key, and with a flush.
    let fill = fill_of(&cache, owner, sid);
    invalidate(
        &mut cache.state(),
        &Value::BulkString(crate::keys::user_key(owner).into_bytes()),
    );
    cache.complete(&fill, owner, sid, MINUTE, Some(&profile(owner)));
    assert!(!is_hit(&cache, owner, sid));
    let fill = fill_of(&cache, owner, sid);
    invalidate(&mut cache.state(), &Value::Nil);
    cache.complete(&fill, owner, sid, MINUTE, Some(&profile(owner)));
    assert!(!is_hit(&cache, owner, sid));
}

#[test]
fn an_invalidation_that_removes_and_recreates_the_entry_still_voids_an_older_fill() {
    let cache = live_cache(10);
    let owner = user(1);
    let old = fill_of(&cache, owner, session(1));
    // The profile is invalidated (entry gone), then another session's fill creates the
    // user's entry again: the first fill's mark must not pass for that new entry's.
    invalidate(
        &mut cache.state(),
        &Value::BulkString(crate::keys::user_key(owner).into_bytes()),
    );
    let _newer = fill_of(&cache, owner, session(2));
    cache.complete(&old, owner, session(1), MINUTE, Some(&profile(owner)));
    assert!(!is_hit(&cache, owner, session(1)));
}

#[test]
fn own_writes_drop_entries_and_void_fills_in_flight() {
    let cache = live_cache(10);
    let owner = user(1);
    for sid in [session(1), session(2)] {
        let fill = fill_of(&cache, owner, sid);
        cache.complete(&fill, owner, sid, MINUTE, Some(&profile(owner)));
    }
    cache.forget_session(owner, session(1));
    assert!(!is_hit(&cache, owner, session(1)));
    assert!(is_hit(&cache, owner, session(2)));
    // A fill in flight when this replica revokes every session: voided.
    let fill = fill_of(&cache, owner, session(1));
    cache.forget_user(owner);
    cache.complete(&fill, owner, session(1), MINUTE, Some(&profile(owner)));
    assert!(!is_hit(&cache, owner, session(1)));
    assert!(!is_hit(&cache, owner, session(2)));
}

#[test]
fn an_entry_never_outlives_its_session_key() {
    let cache = live_cache(10);
    let (owner, sid) = (user(1), session(1));
    let fill = fill_of(&cache, owner, sid);
    cache.complete(
        &fill,
        owner,
        sid,
        Some(Duration::from_millis(30)),
        Some(&profile(owner)),
    );
    assert!(is_hit(&cache, owner, sid));
    std::thread::sleep(Duration::from_millis(40));
    assert!(!is_hit(&cache, owner, sid), "served past the key's TTL");
    // A key without expiry, or a user gone, is answered but not kept.
    let fill = fill_of(&cache, owner, session(2));
    cache.complete(&fill, owner, session(2), None, Some(&profile(owner)));
    assert!(!is_hit(&cache, owner, session(2)));
    let fill = fill_of(&cache, owner, session(3));
    cache.complete(&fill, owner, session(3), MINUTE, None);
    assert!(!is_hit(&cache, owner, session(3)));
}

#[test]
fn a_concurrent_miss_of_a_session_being_filled_asks_redis_and_a_failed_fill_leaves_nothing() {
    let cache = live_cache(10);
    let (owner, sid) = (user(1), session(1));
    let fill = fill_of(&cache, owner, sid);
    assert!(matches!(cache.lookup(owner, sid), Lookup::Bypass));
    cache.abandon(&fill, owner, sid);
    assert_eq!(cache.stats().entries, 0);
}

#[test]
fn the_cache_holds_at_most_its_capacity() {
    let cache = live_cache(3);
    for n in 0..10 {
        let (owner, sid) = (user(n), session(n));
        let fill = fill_of(&cache, owner, sid);
        cache.complete(&fill, owner, sid, MINUTE, Some(&profile(owner)));
        assert!(cache.stats().entries <= 3, "{:?}", cache.stats());
        assert!(is_hit(&cache, owner, sid), "the newest entry is kept");
    }
}

#[test]
fn a_lost_link_empties_the_cache_and_voids_fills_in_flight() {
    let cache = live_cache(10);
    let owner = user(1);
    let done = fill_of(&cache, owner, session(1));
    cache.complete(&done, owner, session(1), MINUTE, Some(&profile(owner)));
    let pending = fill_of(&cache, owner, session(2));
    // The reader saw the connection close (the library's `Disconnection` push).
    cache.on_push(
        1,
        &PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        },
    );
    assert_eq!(cache.stats().entries, 0);
    assert!(!cache.stats().live);
    cache.complete(&pending, owner, session(2), MINUTE, Some(&profile(owner)));
    assert_eq!(cache.stats().entries, 0);
    assert!(matches!(cache.lookup(owner, session(1)), Lookup::Bypass));
    // A disconnection of an older link changes nothing of the current one.
    let link = cache.begin_link();
    cache.attach(link, ());
    cache.prove(link, Instant::now());
    cache.on_push(
        link - 1,
        &PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        },
    );
    assert!(cache.stats().live);
}
