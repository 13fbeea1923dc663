//! One contract for the store ports, run against the embedded store and against a real
//! Redis, so the two adapters cannot drift apart.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use application::ports::{
    AccountStore, AccountWrite, ActiveUser, Admission, AuditCursor, AuditLog, AuditRetention,
    CodeCheck, CodeDigest, DeadLetter, EndOutcome, Enrolment, IdempotencyRecord, IdempotencyStore,
    IdempotentWrite, InsertUserError, LoginAttempt, LoginThrottle, MAX_PENDING_CHALLENGES,
    MfaChallenge, Outbox, PasswordResets, PendingCode, PhoneVerifications, PresentedRefresh, Proof,
    ProofCheck, RateKey, RateLimiter, ResetCheck, Rotation, RotationOutcome, SealedSecret,
    SecondFactors, SessionCursor, SessionScope, SessionStore, Settlement, SmsAdmission, SmsCaps,
    SmsLimit, SmsQuota, Spend, ThrottleLimits, TodoCursor, TodoInsert, TodoInsertRules,
    TodoRepository, TrailEntry, UserRepository, WindowLimit,
};
use domain::{
    AuditEvent, AuditKind, AuthMethods, ClientAddress, IdempotencyKey, Notification,
    NotificationId, NotificationKind, PasswordHash, PhoneCode, PhoneNumber, Session, SessionId,
    Sms, Timestamp, Todo, TodoId, TodoTitle, TokenId, User, UserId, Username,
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
        password_changed_at: None,
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
        // Not the default, so that a store that forgot it fails the contract.
        amr: AuthMethods::PasswordAndOtp,
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
        trail: Some(TrailEntry {
            event: AuditEvent {
                kind: AuditKind::Refreshed,
                at: now(),
                session_id: Some(s.id),
                client: Some("203.0.113.5".into()),
                user_agent: None,
                detail: None,
            },
            retention: AuditRetention {
                max_age: Duration::from_secs(24 * 3600),
                max_events: 100,
                noise: WindowLimit {
                    max: 10,
                    window: Duration::from_secs(3600),
                },
            },
        }),
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// Rules no contract step reaches unless it means to.
fn roomy() -> TodoInsertRules {
    TodoInsertRules {
        max_todos: 1_000,
        creations: WindowLimit {
            max: 1_000,
            window: HOUR,
        },
        idempotency: None,
    }
}

/// A fresh user in `store`, for the steps that only need an owner that exists.
async fn new_owner<S: UserRepository>(store: &S) -> UserId {
    let owner = user(&format!("owner-{}", Uuid::new_v4().simple()));
    UserRepository::insert(store, &owner).await.expect("insert");
    owner.id
}

/// The second factor: one pending enrolment, enabled once; a step or a recovery code
/// spent once, with the challenge, the factor or the recovery codes it is spent on
/// (renewed codes replacing all the old ones); bounded, expiring
/// challenges; a resealed secret kept; and a forgiven rate-limit event.
async fn second_factor_contract<S>(store: &S)
where
    S: SecondFactors + UserRepository + RateLimiter + AccountStore + PasswordResets,
{
    let sealed = |s: &str| SealedSecret(format!("v1:{s}"));
    let digest = |b: u8| CodeDigest([b; 32]);
    let ghost = UserId::from_uuid(Uuid::new_v4());
    let later = now().plus(Duration::from_secs(600));
    assert_eq!(
        store
            .enrol(ghost, &sealed("a"), later)
            .await
            .expect("enrol"),
        Enrolment::Gone
    );
    let owner = new_owner(store).await;
    assert_eq!(store.totp(owner).await.expect("read"), None);
    for secret in ["first", "second"] {
        assert_eq!(
            store
                .enrol(owner, &sealed(secret), later)
                .await
                .expect("enrol"),
            Enrolment::Pending
        );
    }
    let pending = store.totp(owner).await.expect("read").expect("pending");
    assert_eq!(
        (pending.enabled, pending.sealed.clone()),
        (false, sealed("second"))
    );
    // Only the pending secret, the one replacing the first, is enabled.
    let codes: Vec<CodeDigest> = (1..=10).map(digest).collect();
    assert!(
        !store
            .enable(owner, &sealed("first"), 100, &codes)
            .await
            .expect("enable")
    );
    assert!(
        store
            .enable(owner, &sealed("second"), 100, &codes)
            .await
            .expect("enable")
    );
    assert!(
        !store
            .enable(owner, &sealed("second"), 101, &codes)
            .await
            .expect("enable")
    );
    assert_eq!(
        store
            .enrol(owner, &sealed("third"), later)
            .await
            .expect("enrol"),
        Enrolment::AlreadyEnabled
    );
    let on = store.totp(owner).await.expect("read").expect("enabled");
    assert_eq!(
        (on.enabled, on.last_step, on.recovery_codes_left),
        (true, Some(100), 10)
    );

    let challenge = |b: u8, expires_at| MfaChallenge {
        user_id: owner,
        digest: digest(b),
        expires_at,
        user_agent: Some("contract".into()),
    };
    assert!(
        store
            .open_challenge(&challenge(50, later))
            .await
            .expect("open")
    );
    assert_eq!(
        store
            .challenge(owner, &digest(50), now())
            .await
            .expect("read"),
        Some(challenge(50, later))
    );
    let on_challenge = |b: u8, reseal: Option<SealedSecret>| Spend::Challenge {
        digest: digest(b),
        now: now(),
        reseal,
    };
    let spend = |proof: Proof, on: Spend, secret: &'static str| {
        let sealed = sealed(secret);
        async move {
            store
                .spend(owner, &sealed, &proof, &on)
                .await
                .expect("spend")
        }
    };
    // A step not after the last one, an unknown challenge, another secret: nothing spent.
    assert_eq!(
        spend(Proof::Step(100), on_challenge(50, None), "second").await,
        ProofCheck::Reused
    );
    assert_eq!(
        spend(Proof::Step(101), on_challenge(51, None), "second").await,
        ProofCheck::NoChallenge
    );
    assert_eq!(
        spend(Proof::Step(101), on_challenge(50, None), "other").await,
        ProofCheck::Changed
    );
    // A later step spends itself and the challenge, and the resealed secret is kept.
    assert_eq!(
        spend(
            Proof::Step(101),
            on_challenge(50, Some(sealed("resealed"))),
            "second"
        )
        .await,
        ProofCheck::Accepted {
            recovery_codes_left: 10
        }
    );
    assert_eq!(
        store
            .challenge(owner, &digest(50), now())
            .await
            .expect("read"),
        None
    );
    let on = store.totp(owner).await.expect("read").expect("enabled");
    assert_eq!((on.sealed, on.last_step), (sealed("resealed"), Some(101)));
    // A recovery code works once.
    assert!(
        store
            .open_challenge(&challenge(52, later))
            .await
            .expect("open")
    );
    assert!(
        store
            .open_challenge(&challenge(53, later))
            .await
            .expect("open")
    );
    assert_eq!(
        spend(
            Proof::RecoveryCode(digest(3)),
            on_challenge(52, None),
            "resealed"
        )
        .await,
        ProofCheck::Accepted {
            recovery_codes_left: 9
        }
    );
    assert_eq!(
        spend(
            Proof::RecoveryCode(digest(3)),
            on_challenge(53, None),
            "resealed"
        )
        .await,
        ProofCheck::Reused
    );
    // An expired challenge is gone, and a user holds a bounded number of them: the oldest
    // goes first.
    let past = now().minus(Duration::from_secs(1));
    assert!(
        store
            .open_challenge(&challenge(60, past))
            .await
            .expect("open")
    );
    assert_eq!(
        store
            .challenge(owner, &digest(60), now())
            .await
            .expect("read"),
        None
    );
    for b in 0..u8::try_from(MAX_PENDING_CHALLENGES).expect("small") {
        let expires_at = later.plus(Duration::from_secs(u64::from(b) + 1));
        assert!(
            store
                .open_challenge(&challenge(100 + b, expires_at))
                .await
                .expect("open")
        );
    }
    assert_eq!(
        store
            .challenge(owner, &digest(53), now())
            .await
            .expect("read"),
        None
    );
    assert!(
        store
            .challenge(owner, &digest(100), now())
            .await
            .expect("read")
            .is_some()
    );
    // A new password, changed or reset, voids the challenges issued on the old one.
    let read = store.find_by_id(owner).await.expect("read").expect("user");
    let changed = User {
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3"),
        ..read.clone()
    };
    assert!(
        store
            .open_challenge(&challenge(70, later))
            .await
            .expect("open")
    );
    assert!(matches!(
        store.set_password(&read, &changed, None).await,
        Ok(AccountWrite::Done(_))
    ));
    assert_eq!(
        store
            .challenge(owner, &digest(70), now())
            .await
            .expect("read"),
        None
    );
    assert!(
        store
            .open_challenge(&challenge(71, later))
            .await
            .expect("open")
    );
    let reset_code = PendingCode {
        user_id: owner,
        phone: random_phone(),
        digest: digest(9),
        expires_at: later,
        max_attempts: 3,
    };
    assert!(store.start_reset(&reset_code).await.expect("start"));
    let reset = User {
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$cmVzZXQ"),
        ..changed.clone()
    };
    assert!(matches!(
        store
            .finish_reset(&changed, &digest(9), &reset, now())
            .await,
        Ok(ResetCheck::Reset { .. })
    ));
    assert_eq!(
        store
            .challenge(owner, &digest(71), now())
            .await
            .expect("read"),
        None
    );

    // Renewing spends the proof and replaces every code left with the new set; a spent
    // proof or another secret renews nothing.
    let renewed = |from: u8| Spend::Renew((from..from + 10).map(digest).collect());
    assert_eq!(
        spend(Proof::Step(101), renewed(200), "resealed").await,
        ProofCheck::Reused
    );
    assert_eq!(
        spend(Proof::Step(102), renewed(200), "other").await,
        ProofCheck::Changed
    );
    let on = store.totp(owner).await.expect("read").expect("enabled");
    assert_eq!((on.recovery_codes_left, on.last_step), (9, Some(101)));
    assert_eq!(
        spend(Proof::RecoveryCode(digest(4)), renewed(200), "resealed").await,
        ProofCheck::Accepted {
            recovery_codes_left: 10
        }
    );
    assert_eq!(
        spend(Proof::RecoveryCode(digest(5)), renewed(220), "resealed").await,
        ProofCheck::Reused,
        "the old codes are gone"
    );
    assert_eq!(
        spend(Proof::Step(102), renewed(230), "resealed").await,
        ProofCheck::Accepted {
            recovery_codes_left: 10
        }
    );
    let on = store.totp(owner).await.expect("read").expect("enabled");
    assert_eq!((on.recovery_codes_left, on.last_step), (10, Some(102)));

    // Disabling spends the proof and removes the factor and its codes.
    assert_eq!(
        spend(Proof::Step(102), Spend::Disable, "resealed").await,
        ProofCheck::Reused
    );
    assert_eq!(
        spend(Proof::RecoveryCode(digest(201)), Spend::Disable, "resealed").await,
        ProofCheck::Reused,
        "a code of a replaced set"
    );
    assert_eq!(
        spend(Proof::RecoveryCode(digest(230)), Spend::Disable, "resealed").await,
        ProofCheck::Accepted {
            recovery_codes_left: 0
        }
    );
    assert_eq!(store.totp(owner).await.expect("read"), None);
    assert_eq!(
        spend(Proof::RecoveryCode(digest(231)), Spend::Disable, "resealed").await,
        ProofCheck::Changed
    );

    // A forgiven event frees its place in the window, never below zero.
    let key = RateKey::MfaCodes(owner);
    let limit = WindowLimit {
        max: 2,
        window: Duration::from_secs(60),
    };
    store.forgive(&key).await.expect("forgive");
    for _ in 0..2 {
        assert_eq!(
            store.hit(&key, limit).await.expect("hit"),
            Admission::Admitted
        );
    }
    assert!(matches!(
        store.hit(&key, limit).await.expect("hit"),
        Admission::Refused { .. }
    ));
    store.forgive(&key).await.expect("forgive");
    assert_eq!(
        store.hit(&key, limit).await.expect("hit"),
        Admission::Admitted
    );
}

/// A new password ends the sessions it should, and deleting an account leaves nothing of
/// it; both act only on the record as read.
async fn account_contract<S>(store: &S)
where
    S: AccountStore
        + UserRepository
        + SessionStore
        + TodoRepository
        + PhoneVerifications
        + SmsQuota,
{
    // A new password: the record replaced, every session but the kept one ended.
    let name = format!("acct-{}", Uuid::new_v4().simple());
    let erin = user(&name);
    UserRepository::insert(store, &erin).await.expect("insert");
    let sessions: Vec<Session> = (0..3).map(|_| session(erin.id, HOUR)).collect();
    for s in &sessions {
        create(store, s).await;
    }
    let changed = User {
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3"),
        password_changed_at: Some(now()),
        ..erin.clone()
    };
    assert_eq!(
        store
            .set_password(&erin, &changed, Some(sessions[0].id))
            .await
            .expect("set"),
        AccountWrite::Done(2)
    );
    assert_eq!(
        store.find_by_id(erin.id).await.expect("read"),
        Some(changed.clone())
    );
    assert!(
        store
            .is_active(erin.id, sessions[0].id)
            .await
            .expect("check")
    );
    for s in &sessions[1..] {
        assert!(
            !store.is_active(erin.id, s.id).await.expect("check"),
            "ended"
        );
    }
    assert_eq!(all_sessions(store, erin.id, 10).await, vec![sessions[0].id]);
    // On a record that is no longer the one read: nothing at all.
    let stale = User {
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$eA$eA"),
        ..erin.clone()
    };
    assert_eq!(
        store.set_password(&erin, &stale, None).await.expect("set"),
        AccountWrite::Changed
    );
    assert_eq!(
        store.find_by_id(erin.id).await.expect("read"),
        Some(changed.clone())
    );
    assert!(
        store
            .is_active(erin.id, sessions[0].id)
            .await
            .expect("check")
    );
    let nobody = user("nobody-at-all");
    assert_eq!(
        store
            .set_password(&nobody, &nobody, None)
            .await
            .expect("set"),
        AccountWrite::Gone
    );
    // Without a session to keep, all end.
    let again = User {
        password_changed_at: Some(now().plus(Duration::from_secs(1))),
        ..changed.clone()
    };
    assert_eq!(
        store
            .set_password(&changed, &again, None)
            .await
            .expect("set"),
        AccountWrite::Done(1)
    );
    assert!(all_sessions(store, erin.id, 10).await.is_empty());

    // Deletion: everything of the account, and the name is free.
    let s = session(erin.id, HOUR);
    create(store, &s).await;
    let keyed = TodoInsertRules {
        idempotency: Some(IdempotentWrite {
            key: IdempotencyKey::parse("delete-me").expect("valid"),
            fingerprint: "kept".into(),
            ttl: HOUR,
        }),
        ..roomy()
    };
    let kept = todo(erin.id, "kept");
    assert_eq!(
        TodoRepository::insert(store, &kept, &keyed)
            .await
            .expect("insert"),
        TodoInsert::Inserted
    );
    insert(store, &todo(erin.id, "another")).await;
    let phone = random_phone();
    assert!(
        store
            .start(&PendingCode {
                user_id: erin.id,
                phone: phone.clone(),
                digest: CodeDigest([7; 32]),
                expires_at: now().plus(HOUR),
                max_attempts: 3,
            })
            .await
            .expect("start")
    );
    let caps = SmsCaps {
        user_hourly: 1,
        user_daily: 10,
        number_hourly: 10,
        number_daily: 10,
    };
    assert_eq!(
        store
            .admit(erin.id, &phone, &caps, Some(Duration::from_secs(60)))
            .await
            .expect("admit"),
        SmsAdmission::Admitted
    );
    let current = store
        .find_by_id(erin.id)
        .await
        .expect("read")
        .expect("erin");
    assert_eq!(
        store.delete_account(&again).await.expect("delete"),
        AccountWrite::Changed,
        "stale"
    );
    assert!(
        store.is_active(erin.id, s.id).await.expect("check"),
        "nothing deleted"
    );
    assert_eq!(
        store.delete_account(&current).await.expect("delete"),
        AccountWrite::Done(())
    );
    assert_eq!(store.find_by_id(erin.id).await.expect("read"), None);
    let username = Username::parse(&name).expect("valid");
    assert_eq!(store.find_by_username(&username).await.expect("read"), None);
    assert!(!store.is_active(erin.id, s.id).await.expect("check"));
    assert!(all_sessions(store, erin.id, 10).await.is_empty());
    assert!(all_todos(store, erin.id, 10).await.0.is_empty());
    assert_eq!(store.get(erin.id, kept.id).await.expect("get"), None);
    assert_eq!(
        store
            .confirm(erin.id, &CodeDigest([7; 32]), now())
            .await
            .expect("confirm"),
        CodeCheck::NoCode
    );
    assert_eq!(
        store
            .admit(
                erin.id,
                &random_phone(),
                &caps,
                Some(Duration::from_secs(60))
            )
            .await
            .expect("admit"),
        SmsAdmission::Admitted,
        "the user's SMS counters and cooldown went with it"
    );
    // Writes in flight at the deletion store nothing for the gone user.
    assert_eq!(
        TodoRepository::insert(store, &todo(erin.id, "late"), &keyed)
            .await
            .expect("insert"),
        TodoInsert::OwnerGone,
        "not even a replay of a key of the gone account"
    );
    assert_eq!(
        store
            .create(&session(erin.id, HOUR), MANY_SESSIONS)
            .await
            .expect("create"),
        None
    );
    assert_eq!(
        store.delete_account(&current).await.expect("delete"),
        AccountWrite::Gone
    );
    // The name is anyone's again.
    let heir = user(&name);
    UserRepository::insert(store, &heir)
        .await
        .expect("the name is free");
    assert_eq!(
        store.find_by_username(&username).await.expect("read"),
        Some(heir)
    );
}

/// The audit trail: newest first, in pages, bounded by count and age, noise within its
/// budget, each account's its own.
async fn audit_contract<S: AuditLog>(store: &S) {
    let user = UserId::from_uuid(Uuid::new_v4());
    let other = UserId::from_uuid(Uuid::new_v4());
    let retention = AuditRetention {
        max_age: HOUR,
        max_events: 4,
        noise: WindowLimit {
            max: 2,
            window: HOUR,
        },
    };
    let event = |kind: AuditKind, detail: &str| AuditEvent {
        kind,
        at: now(),
        session_id: Some(SessionId::from_uuid(Uuid::new_v4())),
        client: Some("192.0.2.1".into()),
        user_agent: None,
        detail: Some(detail.into()),
    };
    let page = |before: Option<AuditCursor>, limit: usize| {
        let before = before.clone();
        async move {
            store
                .events(user, before, limit, retention.max_age, now())
                .await
                .expect("events")
        }
    };
    for n in 0..3 {
        assert!(
            store
                .append(
                    user,
                    &event(AuditKind::Refreshed, &format!("r{n}")),
                    retention
                )
                .await
                .expect("append")
        );
    }
    assert!(
        store
            .append(other, &event(AuditKind::LoggedOut, "theirs"), retention)
            .await
            .expect("append")
    );
    let first = page(None, 2).await;
    let details = |events: &[AuditEvent]| -> Vec<String> {
        events.iter().filter_map(|e| e.detail.clone()).collect()
    };
    assert_eq!(details(&first.items), ["r2", "r1"], "newest first");
    assert_eq!(first.items[0].client.as_deref(), Some("192.0.2.1"));
    assert_eq!(first.items[0].user_agent, None);
    let second = page(first.next.clone(), 2).await;
    assert_eq!(details(&second.items), ["r0"]);
    assert!(second.next.is_none(), "the last page");
    // Noise within its budget: two of three kept.
    let noise: Vec<AuditEvent> = (0..3)
        .map(|n| event(AuditKind::LoginFailed, &format!("f{n}")))
        .collect();
    let kept: Vec<bool> = join_all(noise.iter().map(|e| store.append(user, e, retention)))
        .await
        .into_iter()
        .map(|r| r.expect("append"))
        .collect();
    assert_eq!(kept.iter().filter(|k| **k).count(), 2, "{kept:?}");
    // Bounded by count: the four newest of five.
    let all = page(None, 100).await;
    assert_eq!(all.items.len(), 4);
    assert_eq!(details(&all.items)[2..], ["r2", "r1"]);
    // Bounded by age: nothing older than `max_age` is listed.
    let later = now().plus(HOUR).plus(Duration::from_secs(5));
    let aged = store
        .events(user, None, 100, retention.max_age, later)
        .await
        .expect("events");
    assert!(aged.items.is_empty(), "{aged:?}");
    let theirs = store
        .events(other, None, 100, retention.max_age, now())
        .await
        .expect("events");
    assert_eq!(details(&theirs.items), ["theirs"]);
}

/// A cap no contract step reaches unless it means to.
const MANY_SESSIONS: u32 = 1_000;

async fn insert<S: TodoRepository>(store: &S, todo: &Todo) {
    assert_eq!(
        TodoRepository::insert(store, todo, &roomy())
            .await
            .expect("insert"),
        TodoInsert::Inserted
    );
}

async fn create<S: SessionStore>(store: &S, session: &Session) {
    assert_eq!(
        store
            .create(session, MANY_SESSIONS)
            .await
            .expect("create session"),
        Some(0)
    );
}

/// Every todo of `user`, read page by page (pages of `size`), with the pages' sizes.
async fn all_todos<S: TodoRepository>(
    store: &S,
    user: UserId,
    size: usize,
) -> (Vec<Todo>, Vec<usize>) {
    let (mut todos, mut sizes, mut after) = (Vec::new(), Vec::new(), None);
    loop {
        let page = TodoRepository::list(store, user, after, size)
            .await
            .expect("list");
        sizes.push(page.items.len());
        todos.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return (todos, sizes),
        }
        assert!(sizes.len() < 1_000, "pagination never ends");
    }
}

/// Every live session of `user`, read page by page.
async fn all_sessions<S: SessionStore>(store: &S, user: UserId, size: usize) -> Vec<SessionId> {
    let (mut ids, mut after): (Vec<SessionId>, Option<SessionCursor>) = (Vec::new(), None);
    loop {
        let page = SessionStore::list(store, user, after, size)
            .await
            .expect("list");
        assert!(page.items.len() <= size, "a page holds at most its limit");
        ids.extend(page.items.iter().map(|s| s.id));
        match page.next {
            Some(next) => after = Some(next),
            None => return ids,
        }
        assert!(ids.len() < 10_000, "pagination never ends");
    }
}

/// Every behaviour the use cases rely on.
pub async fn store_contract<S>(store: &S)
where
    S: UserRepository
        + TodoRepository
        + SessionStore
        + Outbox
        + LoginThrottle
        + RateLimiter
        + IdempotencyStore
        + PhoneVerifications
        + SmsQuota
        + AccountStore
        + AuditLog
        + PasswordResets
        + SecondFactors,
{
    second_factor_contract(store).await;
    account_contract(store).await;
    audit_contract(store).await;
    outbox_contract(store).await;
    fair_outbox_contract(store).await;
    phone_contract(store).await;
    sms_quota_contract(store).await;
    limiter_contract(store).await;
    todo_rules_contract(store).await;
    session_cap_contract(store).await;
    ending_by_refresh_contract(store).await;
    registration_key_contract(store).await;

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
    // A retry of the same registration (same id) succeeds again and changes nothing.
    UserRepository::insert(store, &alice)
        .await
        .expect("a retry with the same id");
    assert_eq!(
        store.find_by_id(alice.id).await.expect("lookup"),
        Some(alice.clone())
    );
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
        insert(store, t).await;
    }
    assert_eq!(all_todos(store, alice.id, 100).await.0, todos);
    assert_eq!(
        all_todos(store, alice.id, 2).await,
        (todos.clone(), vec![2, 1]),
        "pages of two, in insertion order"
    );
    assert_eq!(
        all_todos(store, alice.id, 3).await,
        (todos.clone(), vec![3]),
        "an exact last page says there is no next"
    );
    assert!(all_todos(store, bob.id, 100).await.0.is_empty());
    assert_eq!(
        store.get(alice.id, todos[1].id).await.expect("get"),
        Some(todos[1].clone())
    );
    assert_eq!(store.get(bob.id, todos[1].id).await.expect("get"), None);
    let mut changed = todos[0].clone();
    changed.completed = true;
    changed.title = TodoTitle::parse("one, done").expect("valid");
    assert!(store.update(&changed).await.expect("update"));
    assert_eq!(all_todos(store, alice.id, 100).await.0[0], changed);
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
    assert!(store.delete(alice.id, todos[1].id).await.expect("delete"));
    assert!(!store.delete(alice.id, todos[1].id).await.expect("delete"));
    assert_eq!(
        all_todos(store, alice.id, 1).await,
        (vec![changed.clone(), todos[2].clone()], vec![1, 1]),
        "a deleted todo leaves no hole in the pages"
    );

    // Sessions: alive, scoped, rotated once, replay detected.
    let s1 = session(alice.id, HOUR);
    create(store, &s1).await;
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
    for (user, expected) in [
        (alice.id, ActiveUser::Active(alice.clone())),
        (bob.id, ActiveUser::Revoked),
    ] {
        assert_eq!(
            store.active_user_now(user, s1.id).await.expect("check"),
            expected,
            "the uncached read answers as the (possibly cached) one"
        );
    }
    let ghost = session(UserId::from_uuid(Uuid::new_v4()), HOUR);
    assert_eq!(
        store.create(&ghost, MANY_SESSIONS).await.expect("create"),
        None,
        "no session for a user who does not exist (a login racing its account's deletion)"
    );
    assert_eq!(
        store
            .active_user(ghost.user_id, ghost.id)
            .await
            .expect("check"),
        ActiveUser::Revoked,
        "and nothing was stored"
    );
    // Introspection's read of a refresh token: live only as the one the session accepts.
    assert_eq!(
        store
            .refresh_holder(alice.id, s1.id, s1.refresh_jti)
            .await
            .expect("check"),
        ActiveUser::Active(alice.clone()),
        "the current refresh token, with the profile"
    );
    assert_eq!(
        store
            .refresh_holder(bob.id, s1.id, s1.refresh_jti)
            .await
            .expect("check"),
        ActiveUser::Revoked,
        "another user's session is not theirs"
    );
    let first = rotation(&s1, s1.refresh_jti);
    let RotationOutcome::Rotated(rotated) = store.rotate(&first).await.expect("rotate") else {
        panic!("the current token rotates");
    };
    assert_eq!(
        store
            .refresh_holder(alice.id, s1.id, s1.refresh_jti)
            .await
            .expect("check"),
        ActiveUser::Revoked,
        "a spent refresh token is no longer live, and reading it spent nothing"
    );
    assert_eq!(
        store
            .refresh_holder(alice.id, s1.id, first.next)
            .await
            .expect("check"),
        ActiveUser::Active(alice.clone()),
        "its successor is"
    );
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
        store.active_user_now(alice.id, s1.id).await.expect("check"),
        ActiveUser::Revoked
    );
    assert_eq!(
        store
            .rotate(&rotation(&s1, first.next))
            .await
            .expect("rotate"),
        RotationOutcome::NotFound
    );
    // The rotation put its event in the trail with itself; the reuse and the miss did not.
    let trail = store
        .events(alice.id, None, 100, HOUR, now())
        .await
        .expect("trail")
        .items;
    let refreshed = trail
        .iter()
        .filter(|e| e.kind == AuditKind::Refreshed && e.session_id == Some(s1.id))
        .count();
    assert_eq!(refreshed, 1, "{trail:?}");

    // Grace window: the token spent by the last rotation, replayed within it, gets the
    // session back unchanged; any older token, or the same one without grace, revokes.
    let g = session(alice.id, HOUR);
    create(store, &g).await;
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
    create(store, &strict).await;
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
    create(store, &g2).await;
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
    create(store, &s2).await;
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
        create(store, s).await;
    }
    let listed = all_sessions(store, alice.id, 1).await;
    assert!(
        listed.contains(&s3.id) && listed.contains(&s4.id) && !listed.contains(&s5.id),
        "{listed:?}"
    );
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), listed.len(), "pages never repeat a session");
    assert!(
        !store.revoke(bob.id, s3.id).await.expect("revoke"),
        "revoke through another user"
    );
    assert!(store.revoke(alice.id, s3.id).await.expect("revoke"));
    assert!(!store.revoke(alice.id, s3.id).await.expect("revoke"));
    let s6 = session(alice.id, HOUR);
    create(store, &s6).await;
    let ended = store
        .revoke_all(alice.id, Some(s6.id))
        .await
        .expect("revoke all");
    assert!(ended >= 1);
    let left = all_sessions(store, alice.id, 100).await;
    assert_eq!(left, [s6.id]);
    assert!(
        store.is_active(bob.id, s5.id).await.expect("check"),
        "other users untouched"
    );
    assert_eq!(
        store.revoke_all(alice.id, None).await.expect("revoke all"),
        1
    );
    assert!(all_sessions(store, alice.id, 100).await.is_empty());

    // Expiry: a session is gone when its refresh token expires.
    let short = session(bob.id, Duration::from_secs(1));
    create(store, &short).await;
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
    let listed = all_sessions(store, bob.id, 100).await;
    assert_eq!(listed, [s5.id]);

    store.ping().await.expect("ping");
}

/// Login throttling and rate limits: holds taken on admission and settled once, failures
/// counted only when a hold becomes one, limits that refuse without counting.
async fn limiter_contract<S: LoginThrottle + RateLimiter>(store: &S) {
    let client = ClientAddress::from_ip(
        format!("198.51.100.{}", rand_octet())
            .parse()
            .expect("valid ip"),
    );
    let attempt = |name: &str| LoginAttempt {
        id: Uuid::new_v4(),
        username: Some(Username::parse(name).expect("valid")),
        client,
    };
    let limits = ThrottleLimits {
        pair: WindowLimit {
            max: 2,
            window: HOUR,
        },
        client: WindowLimit {
            max: 100,
            window: HOUR,
        },
    };

    // Two admissions in flight fill the pair: a third is refused while they are held.
    let (first, second, third) = (attempt("carol"), attempt("carol"), attempt("carol"));
    for a in [&first, &second] {
        assert_eq!(
            store.admit(a, &limits).await.expect("admit"),
            Admission::Admitted
        );
    }
    assert!(matches!(
        store.admit(&third, &limits).await.expect("admit"),
        Admission::Refused { .. }
    ));
    // Unjudged (a 503): released, nothing counted; settling it again changes nothing.
    for _ in 0..2 {
        store
            .settle(&first, &limits, Settlement::Unjudged)
            .await
            .expect("settle");
    }
    // A failure counts once, however often it is settled.
    for _ in 0..3 {
        store
            .settle(&second, &limits, Settlement::Failed)
            .await
            .expect("settle");
    }
    let fourth = attempt("carol");
    assert_eq!(
        store.admit(&fourth, &limits).await.expect("admit"),
        Admission::Admitted,
        "one failure and no hold: room for one more"
    );
    store
        .settle(&fourth, &limits, Settlement::Failed)
        .await
        .expect("settle");
    match store
        .admit(&attempt("carol"), &limits)
        .await
        .expect("admit")
    {
        Admission::Refused { retry_after } => assert!(
            retry_after > Duration::from_secs(HOUR.as_secs() - 60) && retry_after <= HOUR,
            "two failures fill the window until it ends: {retry_after:?}"
        ),
        other => panic!("two failures refuse: {other:?}"),
    }
    // Another name from the same client, and the same name elsewhere, are not refused.
    let dave = attempt("dave");
    assert_eq!(
        store.admit(&dave, &limits).await.expect("admit"),
        Admission::Admitted
    );
    // A success clears its pair.
    store
        .settle(&dave, &limits, Settlement::Failed)
        .await
        .expect("settle");
    let dave_again = attempt("dave");
    store.admit(&dave_again, &limits).await.expect("admit");
    store
        .settle(&dave_again, &limits, Settlement::Succeeded)
        .await
        .expect("settle");
    for _ in 0..2 {
        let a = attempt("dave");
        assert_eq!(
            store.admit(&a, &limits).await.expect("admit"),
            Admission::Admitted,
            "a success cleared the pair's failures"
        );
        store
            .settle(&a, &limits, Settlement::Unjudged)
            .await
            .expect("settle");
    }

    // Rate limits: `max` hits per window, then refusals that count nothing.
    let key = RateKey::Registration(client);
    let limit = WindowLimit {
        max: 3,
        window: HOUR,
    };
    for _ in 0..3 {
        assert_eq!(
            store.hit(&key, limit).await.expect("hit"),
            Admission::Admitted
        );
    }
    for _ in 0..3 {
        match store.hit(&key, limit).await.expect("hit") {
            Admission::Refused { retry_after } => {
                assert!(retry_after >= Duration::from_secs(1) && retry_after <= HOUR)
            }
            other => panic!("over the limit: {other:?}"),
        }
    }
    let elsewhere = RateKey::Registration(ClientAddress::from_ip(
        "2001:db8:77::1".parse().expect("valid ip"),
    ));
    assert_eq!(
        store.hit(&elsewhere, limit).await.expect("hit"),
        Admission::Admitted,
        "limits are per client"
    );
}

/// A fresh last octet, so that contract runs against one store never share a client.
fn rand_octet() -> u8 {
    (Uuid::new_v4().as_u128() % 250) as u8 + 1
}

/// The rules of a todo insert, decided in the same step as the write.
async fn todo_rules_contract<S: TodoRepository + UserRepository>(store: &S) {
    let owner = user(&format!("rules{}", rand_octet()));
    UserRepository::insert(store, &owner).await.expect("insert");
    let key = IdempotencyKey::parse(&format!("key-{}", Uuid::new_v4())).expect("valid");
    let keyed = |fingerprint: &str| TodoInsertRules {
        idempotency: Some(IdempotentWrite {
            key: key.clone(),
            fingerprint: fingerprint.into(),
            ttl: HOUR,
        }),
        ..roomy()
    };

    // An idempotency key: the first request inserts, a retry gets that todo, a different
    // request under the same key is refused; none of them inserts a second todo.
    let first = todo(owner.id, "keyed");
    assert_eq!(
        TodoRepository::insert(store, &first, &keyed("keyed"))
            .await
            .expect("insert"),
        TodoInsert::Inserted
    );
    let retry = todo(owner.id, "keyed");
    assert_eq!(
        TodoRepository::insert(store, &retry, &keyed("keyed"))
            .await
            .expect("insert"),
        TodoInsert::Replayed(first.clone())
    );
    let other = todo(owner.id, "something else");
    assert_eq!(
        TodoRepository::insert(store, &other, &keyed("something else"))
            .await
            .expect("insert"),
        TodoInsert::KeyReused
    );
    // The same todo inserted again (a driver's retry of the very command) is one todo.
    assert_eq!(
        TodoRepository::insert(store, &first, &roomy())
            .await
            .expect("insert"),
        TodoInsert::Inserted
    );
    assert_eq!(all_todos(store, owner.id, 100).await.0, vec![first.clone()]);

    // Quota: at most `max_todos`; a deletion makes room again.
    let quota = TodoInsertRules {
        max_todos: 2,
        ..roomy()
    };
    let second = todo(owner.id, "second");
    assert_eq!(
        TodoRepository::insert(store, &second, &quota)
            .await
            .expect("insert"),
        TodoInsert::Inserted
    );
    assert_eq!(
        TodoRepository::insert(store, &todo(owner.id, "third"), &quota)
            .await
            .expect("insert"),
        TodoInsert::QuotaExceeded
    );
    assert!(store.delete(owner.id, second.id).await.expect("delete"));
    assert_eq!(
        TodoRepository::insert(store, &todo(owner.id, "third"), &quota)
            .await
            .expect("insert"),
        TodoInsert::Inserted
    );

    // Creation rate: counted per user; refusals count nothing and say when to retry.
    let rater = user(&format!("rater{}", rand_octet()));
    UserRepository::insert(store, &rater).await.expect("insert");
    let rate = TodoInsertRules {
        creations: WindowLimit {
            max: 2,
            window: HOUR,
        },
        ..roomy()
    };
    for title in ["a", "b"] {
        assert_eq!(
            TodoRepository::insert(store, &todo(rater.id, title), &rate)
                .await
                .expect("insert"),
            TodoInsert::Inserted
        );
    }
    match TodoRepository::insert(store, &todo(rater.id, "c"), &rate)
        .await
        .expect("insert")
    {
        TodoInsert::RateLimited { retry_after } => {
            assert!(retry_after >= Duration::from_secs(1) && retry_after <= HOUR)
        }
        other => panic!("over the rate: {other:?}"),
    }
    assert_eq!(all_todos(store, rater.id, 100).await.0.len(), 2);
    let bystander = new_owner(store).await;
    assert_eq!(
        TodoRepository::insert(store, &todo(bystander, "others unaffected"), &rate)
            .await
            .expect("insert"),
        TodoInsert::Inserted
    );

    // A cursor past the end is an empty last page.
    let page = TodoRepository::list(store, owner.id, Some(TodoCursor(u64::MAX - 1)), 10)
        .await
        .expect("list");
    assert!(page.items.is_empty() && page.next.is_none(), "{page:?}");
}

/// The per-user session cap: a login beyond it ends the sessions that expire first.
async fn session_cap_contract<S: SessionStore + UserRepository>(store: &S) {
    let owner = new_owner(store).await;
    let in_hours = |hours: u64| {
        let mut s = session(
            owner,
            HOUR.saturating_mul(u32::try_from(hours).expect("small")),
        );
        s.user_agent = Some(format!("device {hours}"));
        s
    };
    let (soon, later, latest) = (in_hours(1), in_hours(2), in_hours(3));
    for s in [&later, &soon, &latest] {
        assert_eq!(store.create(s, 3).await.expect("create"), Some(0));
    }
    let fourth = in_hours(4);
    assert_eq!(store.create(&fourth, 3).await.expect("create"), Some(1));
    assert!(
        !store.is_active(owner, soon.id).await.expect("check"),
        "the session that expires first is ended"
    );
    let mut left = all_sessions(store, owner, 100).await;
    left.sort();
    let mut expected = vec![later.id, latest.id, fourth.id];
    expected.sort();
    assert_eq!(left, expected);
    // Creating the same session again (a retry) ends nothing more.
    assert_eq!(store.create(&fourth, 3).await.expect("create"), Some(0));
    assert_eq!(all_sessions(store, owner, 100).await.len(), 3);
    // A lower cap ends as many as needed.
    assert_eq!(
        store.create(&in_hours(5), 2).await.expect("create"),
        Some(2)
    );
    assert_eq!(all_sessions(store, owner, 100).await.len(), 2);
}

/// Ending sessions on the word of a refresh token, checked in the same step.
async fn ending_by_refresh_contract<S: SessionStore + UserRepository>(store: &S) {
    let owner = new_owner(store).await;
    let presented = |s: &Session, token: TokenId, grace: Duration| PresentedRefresh {
        user_id: s.user_id,
        session_id: s.id,
        presented: token,
        now: now(),
        grace,
    };
    let sessions: Vec<Session> = (0..3).map(|_| session(owner, HOUR)).collect();
    for s in &sessions {
        create(store, s).await;
    }
    // A spent token, any scope: its session is deleted as stolen, nothing else ends.
    let first = rotation(&sessions[0], sessions[0].refresh_jti);
    store.rotate(&first).await.expect("rotate");
    for scope in [SessionScope::All, SessionScope::Others, SessionScope::This] {
        let outcome = store
            .end_with_refresh(
                &presented(&sessions[0], sessions[0].refresh_jti, Duration::ZERO),
                scope,
            )
            .await
            .expect("end");
        if scope == SessionScope::All {
            assert_eq!(outcome, EndOutcome::ReuseDetected, "{scope:?}");
        } else {
            assert_eq!(outcome, EndOutcome::NotFound, "already deleted: {scope:?}");
        }
    }
    assert!(!store.is_active(owner, sessions[0].id).await.expect("check"));
    for s in &sessions[1..] {
        assert!(
            store.is_active(owner, s.id).await.expect("check"),
            "reuse ends no other session"
        );
    }
    // The current token: Others keeps its own session, This ends only it.
    assert_eq!(
        store
            .end_with_refresh(
                &presented(&sessions[1], sessions[1].refresh_jti, Duration::ZERO),
                SessionScope::Others
            )
            .await
            .expect("end"),
        EndOutcome::Ended(1)
    );
    assert!(store.is_active(owner, sessions[1].id).await.expect("check"));
    assert!(!store.is_active(owner, sessions[2].id).await.expect("check"));
    // Within the grace window, the token the last rotation spent still speaks.
    let spent = sessions[1].refresh_jti;
    store
        .rotate(&rotation(&sessions[1], spent))
        .await
        .expect("rotate");
    assert_eq!(
        store
            .end_with_refresh(
                &presented(&sessions[1], spent, Duration::from_secs(30)),
                SessionScope::This
            )
            .await
            .expect("end"),
        EndOutcome::Ended(1)
    );
    assert!(all_sessions(store, owner, 100).await.is_empty());
    // All, with the current token, ends every session.
    let more: Vec<Session> = (0..2).map(|_| session(owner, HOUR)).collect();
    for s in &more {
        create(store, s).await;
    }
    assert_eq!(
        store
            .end_with_refresh(
                &presented(&more[0], more[0].refresh_jti, Duration::ZERO),
                SessionScope::All
            )
            .await
            .expect("end"),
        EndOutcome::Ended(2)
    );
    assert!(all_sessions(store, owner, 100).await.is_empty());
}

/// Registration keys: the first record stays, whoever asks later.
async fn registration_key_contract<S: IdempotencyStore>(store: &S) {
    let key = IdempotencyKey::parse(&format!("signup-{}", Uuid::new_v4())).expect("valid");
    let first = IdempotencyRecord {
        fingerprint: "register\nerin\n".into(),
        resource: Uuid::new_v4(),
    };
    assert_eq!(
        store
            .claim_registration(&key, &first, HOUR)
            .await
            .expect("claim"),
        first
    );
    let later = IdempotencyRecord {
        fingerprint: "register\nfrank\n".into(),
        resource: Uuid::new_v4(),
    };
    assert_eq!(
        store
            .claim_registration(&key, &later, HOUR)
            .await
            .expect("claim"),
        first,
        "the key keeps its first record"
    );
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
            password_changed_at: None,
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
            password_changed_at: None,
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
            password_changed_at: None,
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
