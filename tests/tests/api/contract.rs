//! One contract for the store ports, run against the embedded store and against a real
//! Redis, so the two adapters cannot drift apart.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use application::ports::{
    ActiveUser, CodeCheck, CodeDigest, DeadLetter, InsertUserError, Outbox, PendingCode,
    PhoneVerifications, Rotation, RotationOutcome, SessionStore, SmsAdmission, SmsCaps, SmsLimit,
    SmsQuota, TodoRepository, UserRepository,
};
use domain::{
    Notification, NotificationId, NotificationKind, PasswordHash, PhoneCode, PhoneNumber, Session,
    SessionId, Sms, Timestamp, Todo, TodoId, TodoTitle, TokenId, User, UserId, Username,
};
use futures::future::join_all;
use uuid::Uuid;

fn now() -> Timestamp {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    Timestamp::from_unix_seconds(i64::try_from(secs).expect("fits"))
}

fn user(name: &str) -> User {
    User {
        id: UserId::from_uuid(Uuid::new_v4()),
        username: Username::parse(name).expect("valid"),
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        phone: Some(PhoneNumber::parse("+4915112345678").expect("valid")),
        // Stored and read back (the default would prove nothing).
        phone_verified: true,
        created_at: now(),
    }
}

fn todo(owner: UserId, title: &str) -> Todo {
    Todo {
        id: TodoId::from_uuid(Uuid::new_v4()),
        user_id: owner,
        title: TodoTitle::parse(title).expect("valid"),
        completed: false,
        created_at: now(),
        updated_at: now(),
    }
}

fn session(owner: UserId, lifetime: Duration) -> Session {
    Session {
        id: SessionId::from_uuid(Uuid::new_v4()),
        user_id: owner,
        refresh_jti: TokenId::from_uuid(Uuid::new_v4()),
        previous_jti: None,
        created_at: now(),
        refreshed_at: now(),
        expires_at: now().plus(lifetime),
        user_agent: Some("contract-test".into()),
    }
}

fn rotation(s: &Session, presented: TokenId) -> Rotation {
    Rotation {
        user_id: s.user_id,
        session_id: s.id,
        presented,
        next: TokenId::from_uuid(Uuid::new_v4()),
        now: now(),
        expires_at: now().plus(Duration::from_secs(3600)),
        grace: Duration::ZERO,
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// Every behaviour the use cases rely on.
pub async fn store_contract<S>(store: &S)
where
    S: UserRepository + TodoRepository + SessionStore + Outbox + PhoneVerifications + SmsQuota,
{
    outbox_contract(store).await;
    fair_outbox_contract(store).await;
    phone_contract(store).await;
    sms_quota_contract(store).await;

    // Users: unique, case-folded names; lookups by name and id.
    let alice = user("Alice");
    UserRepository::insert(store, &alice).await.expect("insert");
    let clash = user("ALICE");
    assert!(matches!(
        UserRepository::insert(store, &clash).await,
        Err(InsertUserError::UsernameTaken)
    ));
    let found = store
        .find_by_username(&Username::parse("alice").expect("valid"))
        .await
        .expect("lookup");
    assert_eq!(found.as_ref(), Some(&alice));
    assert_eq!(
        store.find_by_id(alice.id).await.expect("lookup"),
        Some(alice.clone())
    );
    assert_eq!(store.find_by_id(clash.id).await.expect("lookup"), None);
    assert_eq!(
        store
            .find_by_username(&Username::parse("nobody").expect("valid"))
            .await
            .expect("lookup"),
        None
    );
    let bob = user("bob");
    UserRepository::insert(store, &bob).await.expect("insert");

    // Todos: insertion order, scoped to their owner, update keeps the order.
    let todos: Vec<Todo> = ["one", "two", "three"]
        .iter()
        .map(|t| todo(alice.id, t))
        .collect();
    for t in &todos {
        TodoRepository::insert(store, t).await.expect("insert");
    }
    assert_eq!(
        TodoRepository::list(store, alice.id).await.expect("list"),
        todos
    );
    assert!(
        TodoRepository::list(store, bob.id)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store.get(alice.id, todos[1].id).await.expect("get"),
        Some(todos[1].clone())
    );
    assert_eq!(store.get(bob.id, todos[1].id).await.expect("get"), None);
    let mut changed = todos[0].clone();
    changed.completed = true;
    changed.title = TodoTitle::parse("one, done").expect("valid");
    assert!(store.update(&changed).await.expect("update"));
    assert_eq!(
        TodoRepository::list(store, alice.id).await.expect("list")[0],
        changed
    );
    let mut foreign = todos[0].clone();
    foreign.user_id = bob.id;
    assert!(
        !store.update(&foreign).await.expect("update"),
        "update through another owner"
    );
    assert!(
        !store
            .update(&todo(alice.id, "ghost"))
            .await
            .expect("update")
    );
    assert!(
        !store.delete(bob.id, todos[2].id).await.expect("delete"),
        "delete through another owner"
    );
    assert!(store.delete(alice.id, todos[2].id).await.expect("delete"));
    assert!(!store.delete(alice.id, todos[2].id).await.expect("delete"));
    assert_eq!(
        TodoRepository::list(store, alice.id)
            .await
            .expect("list")
            .len(),
        2
    );

    // Sessions: alive, scoped, rotated once, replay detected.
    let s1 = session(alice.id, HOUR);
    store.create(&s1).await.expect("create");
    assert!(store.is_active(alice.id, s1.id).await.expect("check"));
    assert!(!store.is_active(bob.id, s1.id).await.expect("check"));
    assert_eq!(
        store.active_user(alice.id, s1.id).await.expect("check"),
        ActiveUser::Active(alice.clone()),
        "the session check and the profile together"
    );
    assert_eq!(
        store.active_user(bob.id, s1.id).await.expect("check"),
        ActiveUser::Revoked,
        "another user's session is not theirs"
    );
    let ghost = session(UserId::from_uuid(Uuid::new_v4()), HOUR);
    store.create(&ghost).await.expect("create");
    assert_eq!(
        store
            .active_user(ghost.user_id, ghost.id)
            .await
            .expect("check"),
        ActiveUser::UserGone,
        "a live session whose user is gone"
    );
    let first = rotation(&s1, s1.refresh_jti);
    let RotationOutcome::Rotated(rotated) = store.rotate(&first).await.expect("rotate") else {
        panic!("the current token rotates");
    };
    assert_eq!(rotated.refresh_jti, first.next);
    assert_eq!(rotated.expires_at, first.expires_at);
    assert_eq!(rotated.created_at, s1.created_at);
    assert_eq!(rotated.user_agent, s1.user_agent);
    assert_eq!(
        store
            .rotate(&rotation(&s1, s1.refresh_jti))
            .await
            .expect("rotate"),
        RotationOutcome::ReuseDetected
    );
    assert!(
        !store.is_active(alice.id, s1.id).await.expect("check"),
        "reuse deletes the session"
    );
    assert_eq!(
        store.active_user(alice.id, s1.id).await.expect("check"),
        ActiveUser::Revoked
    );
    assert_eq!(
        store
            .rotate(&rotation(&s1, first.next))
            .await
            .expect("rotate"),
        RotationOutcome::NotFound
    );

    // Grace window: the token spent by the last rotation, replayed within it, gets the
    // session back unchanged; any older token, or the same one without grace, revokes.
    let g = session(alice.id, HOUR);
    store.create(&g).await.expect("create");
    let first = rotation(&g, g.refresh_jti);
    let RotationOutcome::Rotated(after_first) = store.rotate(&first).await.expect("rotate") else {
        panic!("rotates");
    };
    assert_eq!(after_first.previous_jti, Some(g.refresh_jti));
    let replay = Rotation {
        grace: Duration::from_secs(10),
        ..rotation(&g, g.refresh_jti)
    };
    match store.rotate(&replay).await.expect("rotate") {
        RotationOutcome::Replayed(session) => {
            assert_eq!(session.refresh_jti, first.next, "the pair already issued");
            assert_eq!(session.refreshed_at, after_first.refreshed_at);
        }
        other => panic!("expected a grace replay, got {other:?}"),
    }
    assert!(
        store.is_active(alice.id, g.id).await.expect("check"),
        "a grace replay keeps the session"
    );
    let second = rotation(&g, first.next);
    assert!(matches!(
        store.rotate(&second).await.expect("rotate"),
        RotationOutcome::Rotated(_)
    ));
    let too_old = Rotation {
        grace: Duration::from_secs(10),
        ..rotation(&g, g.refresh_jti)
    };
    assert_eq!(
        store.rotate(&too_old).await.expect("rotate"),
        RotationOutcome::ReuseDetected,
        "two rotations back"
    );
    let strict = session(alice.id, HOUR);
    store.create(&strict).await.expect("create");
    let spent = rotation(&strict, strict.refresh_jti);
    store.rotate(&spent).await.expect("rotate");
    assert_eq!(
        store
            .rotate(&rotation(&strict, strict.refresh_jti))
            .await
            .expect("rotate"),
        RotationOutcome::ReuseDetected
    );
    let late = Rotation {
        grace: Duration::from_secs(10),
        now: now().plus(Duration::from_secs(11)),
        ..rotation(&g, first.next)
    };
    let g2 = session(alice.id, HOUR);
    store.create(&g2).await.expect("create");
    let g2_first = rotation(&g2, g2.refresh_jti);
    store.rotate(&g2_first).await.expect("rotate");
    let late = Rotation {
        session_id: g2.id,
        presented: g2.refresh_jti,
        ..late
    };
    assert_eq!(
        store.rotate(&late).await.expect("rotate"),
        RotationOutcome::ReuseDetected,
        "after the window"
    );

    // Concurrent rotations with one token: exactly one wins.
    let s2 = session(alice.id, HOUR);
    store.create(&s2).await.expect("create");
    let attempts: Vec<Rotation> = (0..10).map(|_| rotation(&s2, s2.refresh_jti)).collect();
    let outcomes = join_all(attempts.iter().map(|r| store.rotate(r))).await;
    let winners = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(RotationOutcome::Rotated(_))))
        .count();
    assert_eq!(winners, 1, "{outcomes:?}");

    // Listing, revoking one, revoking all but one.
    let s3 = session(alice.id, HOUR);
    let s4 = session(alice.id, HOUR);
    let s5 = session(bob.id, HOUR);
    for s in [&s3, &s4, &s5] {
        store.create(s).await.expect("create");
    }
    let listed: Vec<SessionId> = SessionStore::list(store, alice.id)
        .await
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    assert!(
        listed.contains(&s3.id) && listed.contains(&s4.id) && !listed.contains(&s5.id),
        "{listed:?}"
    );
    assert!(
        !store.revoke(bob.id, s3.id).await.expect("revoke"),
        "revoke through another user"
    );
    assert!(store.revoke(alice.id, s3.id).await.expect("revoke"));
    assert!(!store.revoke(alice.id, s3.id).await.expect("revoke"));
    let s6 = session(alice.id, HOUR);
    store.create(&s6).await.expect("create");
    let ended = store
        .revoke_all(alice.id, Some(s6.id))
        .await
        .expect("revoke all");
    assert!(ended >= 1);
    let left: Vec<SessionId> = SessionStore::list(store, alice.id)
        .await
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, [s6.id]);
    assert!(
        store.is_active(bob.id, s5.id).await.expect("check"),
        "other users untouched"
    );
    assert_eq!(
        store.revoke_all(alice.id, None).await.expect("revoke all"),
        1
    );
    assert!(
        SessionStore::list(store, alice.id)
            .await
            .expect("list")
            .is_empty()
    );

    // Expiry: a session is gone when its refresh token expires.
    let short = session(bob.id, Duration::from_secs(1));
    store.create(&short).await.expect("create");
    assert!(store.is_active(bob.id, short.id).await.expect("check"));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(!store.is_active(bob.id, short.id).await.expect("check"));
    assert_eq!(
        store.active_user(bob.id, short.id).await.expect("check"),
        ActiveUser::Revoked,
        "an expired session is revoked for the profile read too"
    );
    assert_eq!(
        store
            .rotate(&rotation(&short, short.refresh_jti))
            .await
            .expect("rotate"),
        RotationOutcome::NotFound
    );
    let listed: Vec<SessionId> = SessionStore::list(store, bob.id)
        .await
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [s5.id]);

    store.ping().await.expect("ping");
}

fn notification(created_at: Timestamp) -> Notification {
    Notification {
        id: NotificationId::from_uuid(Uuid::new_v4()),
        user_id: UserId::from_uuid(Uuid::new_v4()),
        kind: NotificationKind::TodoCreated {
            todo_id: TodoId::from_uuid(Uuid::new_v4()),
        },
        sms: Sms {
            to: PhoneNumber::parse("+4915112345678").expect("valid"),
            text: "Dear alice, a todo was created from your account just now.".into(),
            secret: false,
        },
        attempts: 0,
        created_at,
    }
}

/// The outbox: FIFO among due messages, leases that hide a claimed message until they
/// run out, retries rescheduled, dead letters kept with their error.
async fn outbox_contract<S: Outbox>(store: &S) {
    let t0 = now();
    let lease = Duration::from_secs(30);
    assert_eq!(
        store.claim(t0, lease).await.expect("claim"),
        None,
        "empty outbox"
    );

    // One user's: among a user's messages, the oldest goes first (between users, claims
    // go round robin; see `fair_outbox_contract`).
    let first = notification(t0.plus(Duration::from_secs(0)));
    let second = Notification {
        user_id: first.user_id,
        ..notification(t0.plus(Duration::from_secs(1)))
    };
    store.enqueue(&first).await.expect("enqueue");
    store.enqueue(&second).await.expect("enqueue");
    // Not due before its time.
    let before = Timestamp::from_unix_seconds(t0.unix_seconds() - 1);
    assert_eq!(store.claim(before, lease).await.expect("claim"), None);

    // Oldest first; a claimed message is invisible while leased.
    let later = t0.plus(Duration::from_secs(2));
    assert_eq!(
        store.claim(later, lease).await.expect("claim"),
        Some(first.clone())
    );
    assert_eq!(
        store.claim(later, lease).await.expect("claim"),
        Some(second.clone())
    );
    assert_eq!(store.claim(later, lease).await.expect("claim"), None);

    // A lease that runs out (a worker died) makes the message due again.
    let expired = later.plus(lease);
    let again = store.claim(expired, lease).await.expect("claim");
    assert!(
        again == Some(first.clone()) || again == Some(second.clone()),
        "{again:?}"
    );

    // Retry: stored with its new attempt count, due at the given time.
    let mut retried = first.clone();
    retried.attempts = 1;
    let due = expired.plus(Duration::from_secs(60));
    store.retry(&retried, due).await.expect("retry");
    store
        .complete(second.id, "uuid-of-second")
        .await
        .expect("complete");
    let just_before = Timestamp::from_unix_seconds(due.unix_seconds() - 1);
    assert_eq!(store.claim(just_before, lease).await.expect("claim"), None);
    assert_eq!(
        store.claim(due, lease).await.expect("claim"),
        Some(retried.clone())
    );

    // Dead letters keep the message and its error; the message is no longer due.
    let dead = DeadLetter {
        notification: retried.clone(),
        error: "Vonage answered 401".into(),
        failed_at: due,
    };
    store.dead_letter(&dead).await.expect("dead letter");
    assert_eq!(
        store
            .claim(due.plus(Duration::from_secs(3600)), lease)
            .await
            .expect("claim"),
        None
    );
    let letters = store.dead_letters().await.expect("dead letters");
    assert!(letters.contains(&dead), "{letters:?}");

    // Dead letters are trimmed by age, then by count, oldest first.
    let letter = |failed_at: Timestamp| DeadLetter {
        notification: notification(t0),
        error: "Vonage answered 400".into(),
        failed_at,
    };
    let at = |offset: i64| Timestamp::from_unix_seconds(due.unix_seconds() + offset);
    let (old, middle, newer) = (letter(at(-100)), letter(at(-50)), letter(at(10)));
    for d in [&old, &middle, &newer] {
        store.dead_letter(d).await.expect("dead letter");
    }
    assert_eq!(
        store.trim_dead_letters(at(-60), 10).await.expect("trim"),
        1,
        "the one older than the retention"
    );
    assert_eq!(
        store.trim_dead_letters(at(-1000), 2).await.expect("trim"),
        1,
        "the oldest beyond the most kept"
    );
    assert_eq!(
        store.dead_letters().await.expect("dead letters"),
        [dead.clone(), newer.clone()]
    );
    assert_eq!(
        store.trim_dead_letters(at(-1000), 2).await.expect("trim"),
        0
    );

    // Concurrent claims: each message goes to one claimer.
    let many: Vec<Notification> = (0..5).map(|_| notification(t0)).collect();
    for n in &many {
        store.enqueue(n).await.expect("enqueue");
    }
    let at = due.plus(Duration::from_secs(7200));
    let claims = join_all((0..10).map(|_| store.claim(at, lease))).await;
    let mut claimed: Vec<NotificationId> = claims
        .into_iter()
        .filter_map(|c| c.expect("claim"))
        .map(|n| n.id)
        .collect();
    claimed.sort();
    let mut expected: Vec<NotificationId> = many.iter().map(|n| n.id).collect();
    expected.sort();
    assert_eq!(claimed, expected, "every message claimed exactly once");
    for n in &many {
        store.complete(n.id, "done").await.expect("complete");
    }
}

/// A phone-code notification: its kind, expiry and secret text survive the outbox.
fn code_notification(user: UserId, created_at: Timestamp) -> Notification {
    let code = PhoneCode::parse("424242").expect("valid");
    Notification {
        id: NotificationId::from_uuid(Uuid::new_v4()),
        user_id: user,
        kind: NotificationKind::PhoneCode {
            expires_at: created_at.plus(Duration::from_secs(600)),
        },
        sms: Sms::phone_code(
            &code,
            PhoneNumber::parse("+4915112345678").expect("valid"),
            Duration::from_secs(600),
        ),
        attempts: 0,
        created_at,
    }
}

/// Claims are fair: round robin over users, each user's messages oldest first. One user's
/// flood does not hold another user's message back.
async fn fair_outbox_contract<S: Outbox>(store: &S) {
    let t0 = now();
    let lease = Duration::from_secs(30);
    let flooder = UserId::from_uuid(Uuid::new_v4());
    let flood: Vec<Notification> = (0..10)
        .map(|i| Notification {
            user_id: flooder,
            ..notification(t0.plus(Duration::from_secs(i)))
        })
        .collect();
    for n in &flood {
        store.enqueue(n).await.expect("enqueue");
    }
    // Another user's message, queued after the whole flood, and a code SMS of theirs.
    let other = UserId::from_uuid(Uuid::new_v4());
    let single = code_notification(other, t0.plus(Duration::from_secs(9)));
    store.enqueue(&single).await.expect("enqueue");

    let at = t0.plus(Duration::from_secs(100));
    let mut claimed = Vec::new();
    while let Some(n) = store.claim(at, lease).await.expect("claim") {
        claimed.push(n);
    }
    assert_eq!(claimed.len(), 11, "every message claimed once");
    let position = claimed
        .iter()
        .position(|n| n.id == single.id)
        .expect("claimed");
    assert!(
        position <= 1,
        "the other user's message waited behind {position} of the flood"
    );
    assert_eq!(
        claimed[position], single,
        "kind, expiry and secret text kept"
    );
    let flood_order: Vec<NotificationId> = claimed
        .iter()
        .filter(|n| n.user_id == flooder)
        .map(|n| n.id)
        .collect();
    assert_eq!(
        flood_order,
        flood.iter().map(|n| n.id).collect::<Vec<_>>(),
        "one user's messages oldest first"
    );
    for n in &claimed {
        store.complete(n.id, "done").await.expect("complete");
    }
    assert_eq!(
        store
            .claim(at.plus(Duration::from_secs(3600)), lease)
            .await
            .expect("claim"),
        None
    );
}

fn random_phone() -> PhoneNumber {
    let digits = Uuid::new_v4().as_u128() % 100_000_000;
    PhoneNumber::parse(&format!("+49151{digits:08}")).expect("valid")
}

/// Phone verification: one pending code per user, kept as its digest; counted wrong
/// attempts, expiry, single use, replacement; the number verified in the same step.
async fn phone_contract<S: UserRepository + PhoneVerifications>(store: &S) {
    let t = now();
    let digest = |n: u8| CodeDigest([n; 32]);
    let mut carol = user("carol");
    carol.phone = None;
    carol.phone_verified = false;
    UserRepository::insert(store, &carol).await.expect("insert");
    let (a, b) = (random_phone(), random_phone());
    let pending = |phone: &PhoneNumber, d: u8, expires_at: Timestamp| PendingCode {
        user_id: carol.id,
        phone: phone.clone(),
        digest: digest(d),
        expires_at,
        max_attempts: 3,
    };
    let confirm = |d: u8, at: Timestamp| async move {
        store.confirm(carol.id, &CodeDigest([d; 32]), at).await
    };
    let profile = || async {
        store
            .find_by_id(carol.id)
            .await
            .expect("lookup")
            .expect("carol")
    };

    // Nobody to verify: nothing is created.
    let ghost = UserId::from_uuid(Uuid::new_v4());
    let for_ghost = PendingCode {
        user_id: ghost,
        ..pending(&a, 1, t.plus(HOUR))
    };
    assert!(!store.start(&for_ghost).await.expect("start"));
    assert_eq!(store.find_by_id(ghost).await.expect("lookup"), None);
    assert_eq!(
        store.confirm(ghost, &digest(1), t).await.expect("confirm"),
        CodeCheck::NoCode
    );
    assert_eq!(
        confirm(1, t).await.expect("confirm"),
        CodeCheck::NoCode,
        "none asked for"
    );

    // Starting sets the number, unverified, and touches nothing else.
    assert!(
        store
            .start(&pending(&a, 1, t.plus(HOUR)))
            .await
            .expect("start")
    );
    let started = profile().await;
    assert_eq!(
        started,
        User {
            phone: Some(a.clone()),
            phone_verified: false,
            ..carol.clone()
        }
    );

    // Wrong codes count down; the code is dead after the last, even for the right digest.
    for left in [2, 1, 0] {
        assert_eq!(
            confirm(9, t).await.expect("confirm"),
            CodeCheck::Wrong {
                attempts_left: left
            }
        );
    }
    assert_eq!(confirm(1, t).await.expect("confirm"), CodeCheck::NoCode);
    assert!(!profile().await.phone_verified);

    // A new code replaces the old one: the old digest is just wrong now.
    assert!(
        store
            .start(&pending(&a, 2, t.plus(HOUR)))
            .await
            .expect("start")
    );
    assert_eq!(
        confirm(1, t).await.expect("confirm"),
        CodeCheck::Wrong { attempts_left: 2 }
    );
    // Expired by the clock it is asked with: no attempt is counted.
    assert_eq!(
        confirm(2, t.plus(HOUR)).await.expect("confirm"),
        CodeCheck::NoCode
    );
    assert!(!profile().await.phone_verified);
    // The right code verifies the number in the same step.
    assert_eq!(confirm(2, t).await.expect("confirm"), CodeCheck::Verified);
    assert_eq!(
        profile().await,
        User {
            phone: Some(a.clone()),
            phone_verified: true,
            ..carol.clone()
        }
    );
    // Single use: the same code again is only the answer to a retry, changing nothing;
    // any other code finds nothing to check and counts nothing.
    assert_eq!(confirm(2, t).await.expect("confirm"), CodeCheck::Verified);
    assert_eq!(confirm(5, t).await.expect("confirm"), CodeCheck::NoCode);
    assert_eq!(confirm(5, t).await.expect("confirm"), CodeCheck::NoCode);
    assert!(profile().await.phone_verified);

    // A new number starts unverified; the old number's code proves nothing about it.
    assert!(
        store
            .start(&pending(&b, 3, t.plus(HOUR)))
            .await
            .expect("start")
    );
    assert_eq!(
        profile().await,
        User {
            phone: Some(b.clone()),
            phone_verified: false,
            ..carol.clone()
        }
    );
    assert_eq!(
        confirm(2, t).await.expect("confirm"),
        CodeCheck::Wrong { attempts_left: 2 }
    );
    assert_eq!(confirm(3, t).await.expect("confirm"), CodeCheck::Verified);
    assert_eq!(profile().await.phone, Some(b));
}

/// SMS caps: fixed windows per user and per number, checked and counted in one step,
/// nothing counted when refused, a cooldown for code requests, counts given back.
async fn sms_quota_contract<S: SmsQuota>(store: &S) {
    let caps = SmsCaps {
        user_hourly: 2,
        user_daily: 10,
        number_hourly: 3,
        number_daily: 10,
    };
    let admitted = |a: SmsAdmission| a == SmsAdmission::Admitted;
    let refused_by = |a: SmsAdmission, expected: SmsLimit, most: Duration| match a {
        SmsAdmission::Refused { limit, retry_after } => {
            assert_eq!(limit, expected, "{a:?}");
            assert!(
                retry_after >= Duration::from_secs(1) && retry_after <= most,
                "{a:?}"
            );
        }
        SmsAdmission::Admitted => panic!("expected a refusal by {expected:?}"),
    };
    let user = || UserId::from_uuid(Uuid::new_v4());
    let (u1, u2, u3, u4) = (user(), user(), user(), user());
    let (n1, n2, n3) = (random_phone(), random_phone(), random_phone());

    // The user's hourly cap.
    for _ in 0..2 {
        assert!(admitted(
            store.admit(u1, &n1, &caps, None).await.expect("admit")
        ));
    }
    refused_by(
        store.admit(u1, &n2, &caps, None).await.expect("admit"),
        SmsLimit::User,
        HOUR,
    );
    // The number's cap, whoever sends: n1 has 2; u2 takes the third.
    assert!(admitted(
        store.admit(u2, &n1, &caps, None).await.expect("admit")
    ));
    refused_by(
        store.admit(u2, &n1, &caps, None).await.expect("admit"),
        SmsLimit::Number,
        HOUR,
    );
    // ... and the refusal gave u2's count back: one more of u2 goes, then u2 is full.
    assert!(admitted(
        store.admit(u2, &n2, &caps, None).await.expect("admit")
    ));
    refused_by(
        store.admit(u2, &n3, &caps, None).await.expect("admit"),
        SmsLimit::User,
        HOUR,
    );

    // The daily cap, when it is the tighter one, waits up to a day.
    let daily = SmsCaps {
        user_hourly: 5,
        user_daily: 1,
        ..caps
    };
    assert!(admitted(
        store.admit(u3, &n3, &daily, None).await.expect("admit")
    ));
    let day = Duration::from_secs(24 * 3600);
    match store.admit(u3, &n3, &daily, None).await.expect("admit") {
        SmsAdmission::Refused { limit, retry_after } => {
            assert_eq!(limit, SmsLimit::User);
            assert!(retry_after > HOUR && retry_after <= day, "{retry_after:?}");
        }
        other => panic!("expected the daily cap, got {other:?}"),
    }

    // A code request's cooldown, and giving a count back with it.
    let cooldown = Some(Duration::from_secs(60));
    let roomy = SmsCaps {
        user_hourly: 10,
        number_hourly: 10,
        ..caps
    };
    let n4 = random_phone();
    assert!(admitted(
        store.admit(u4, &n4, &roomy, cooldown).await.expect("admit")
    ));
    refused_by(
        store.admit(u4, &n4, &roomy, cooldown).await.expect("admit"),
        SmsLimit::Cooldown,
        Duration::from_secs(60),
    );
    // Without a cooldown (a todo SMS) the same user goes on.
    assert!(admitted(
        store.admit(u4, &n4, &roomy, None).await.expect("admit")
    ));
    store.give_back(u4, &n4, true).await.expect("give back");
    assert!(
        admitted(store.admit(u4, &n4, &roomy, cooldown).await.expect("admit")),
        "the cooldown was given back"
    );
    // Given-back counts: u1 (full above) gets one SMS back.
    store.give_back(u1, &n1, false).await.expect("give back");
    assert!(admitted(
        store.admit(u1, &n2, &caps, None).await.expect("admit")
    ));
    refused_by(
        store.admit(u1, &n2, &caps, None).await.expect("admit"),
        SmsLimit::User,
        HOUR,
    );
}
