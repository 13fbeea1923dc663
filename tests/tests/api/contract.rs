//! One contract for the store ports, run against the embedded store and against a real
//! Redis, so the two adapters cannot drift apart.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use application::ports::{
    ActiveUser, DeadLetter, InsertUserError, Outbox, Rotation, RotationOutcome, SessionStore,
    TodoRepository, UserRepository,
};
use domain::{
    Notification, NotificationId, PasswordHash, PhoneNumber, Session, SessionId, Sms, Timestamp,
    Todo, TodoId, TodoTitle, TokenId, User, UserId, Username,
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
    S: UserRepository + TodoRepository + SessionStore + Outbox,
{
    outbox_contract(store).await;

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
        todo_id: TodoId::from_uuid(Uuid::new_v4()),
        sms: Sms {
            to: PhoneNumber::parse("+4915112345678").expect("valid"),
            text: "Dear alice, a todo was created from your account just now.".into(),
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

    let first = notification(t0.plus(Duration::from_secs(0)));
    let second = notification(t0.plus(Duration::from_secs(1)));
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
