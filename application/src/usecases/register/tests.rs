//! Tests of [`Register`], over mocks of the ports it uses (see `testkit`).

use domain::{PasswordHash, PhoneNumber, Timestamp};
use mockall::predicate::eq;

use super::*;
use crate::ports::HashError;
use crate::ports::StoreError;
use crate::usecases::testkit::*;

const CLIENT: &str = "198.51.100.4";

fn request(username: &str, password: &str, phone: Option<&str>) -> RegisterRequest {
    RegisterRequest {
        username: username.into(),
        password: password.into(),
        phone: phone.map(Into::into),
        client: CLIENT.parse().expect("valid ip"),
        idempotency_key: None,
    }
}

fn keyed(username: &str, password: &str) -> RegisterRequest {
    RegisterRequest {
        idempotency_key: Some(IdempotencyKey::parse("signup-1").expect("valid")),
        ..request(username, password, None)
    }
}

fn limits() -> Limits {
    Limits {
        registrations_per_client: WindowLimit {
            max: 4,
            window: Duration::from_secs(600),
        },
        ..Limits::default()
    }
}

/// Register over `mocks`; where a test set no expectation of its own, the client is
/// within its limit and the name is free.
fn register(mocks: Mocks) -> Register {
    register_with(mocks, Arc::default())
}

/// As [`register`], under an SMS policy.
fn register_with(mut mocks: Mocks, sms: Arc<SmsPolicy>) -> Register {
    mocks
        .rate_limiter
        .expect_hit()
        .with(
            eq(RateKey::Registration(ClientAddress::from_ip(
                CLIENT.parse().expect("valid ip"),
            ))),
            eq(limits().registrations_per_client),
        )
        .returning(|_, _| Ok(Admission::Admitted));
    mocks
        .users
        .expect_find_by_username()
        .returning(|_| Ok(None));
    Register::new(&mocks.into_ports(), limits(), sms)
}

fn fresh(user: User) -> Registered {
    Registered {
        user,
        replayed: false,
    }
}

fn expect_hash(mocks: &mut Mocks) {
    mocks
        .hasher
        .expect_hash()
        .withf(|password| password.expose() == PASSWORD)
        .times(1)
        .returning(|_| Ok(PasswordHash::new(PASSWORD_HASH)));
}

/// Validation failures do no work: no hashing, no id, no store access.
fn expect_no_work(mocks: &mut Mocks) {
    mocks.rate_limiter.expect_hit().never();
    mocks.users.expect_find_by_username().never();
    mocks.idempotency.expect_claim_registration().never();
    mocks.hasher.expect_hash().never();
    mocks.hasher.expect_verify().never();
    mocks.users.expect_insert().never();
    mocks.ids = no_ids();
}

fn assert_invalid(result: Result<Registered, RegisterError>, expected: Field) -> String {
    match result {
        Err(RegisterError::Invalid { field, message }) => {
            assert_eq!(field, expected, "{message}");
            message
        }
        other => panic!("expected Invalid({expected:?}), got {other:?}"),
    }
}

#[tokio::test]
async fn success_stores_the_hash_folded_name_and_parsed_phone() {
    let mut mocks = Mocks::new();
    expect_hash(&mut mocks);
    let stored = Captured::new();
    let record = stored.clone();
    mocks.users.expect_insert().times(1).returning(move |user| {
        record.set(user);
        Ok(())
    });

    let user = register(mocks)
        .execute(request("Alice.Smith", PASSWORD, Some("+4915112345678")))
        .await
        .expect("registered");

    let expected = User {
        id: UserId::from_uuid(seq(1)),
        username: Username::parse("alice.smith").expect("valid"),
        password_hash: PasswordHash::new(PASSWORD_HASH),
        phone: Some(PhoneNumber::parse("+4915112345678").expect("valid")),
        phone_verified: false,
        password_changed_at: None,
        created_at: NOW,
    };
    assert_eq!(stored.get(), expected);
    assert_eq!(user, fresh(expected));
    assert_eq!(user.user.username.as_str(), "alice.smith");
    assert_eq!(user.user.password_hash.as_str(), PASSWORD_HASH);
}

#[tokio::test]
async fn phone_is_optional() {
    let mut mocks = Mocks::new();
    expect_hash(&mut mocks);
    mocks
        .users
        .expect_insert()
        .withf(|user| user.phone.is_none())
        .times(1)
        .returning(|_| Ok(()));

    let user = register(mocks)
        .execute(request("alice", PASSWORD, None))
        .await
        .expect("registered");

    assert_eq!(user.user.phone, None);
    assert_eq!(user.user.created_at, NOW);
}

#[tokio::test]
async fn invalid_username_is_refused_before_any_work() {
    for bad in ["al", "al ice", "ålice", "a/b", ""] {
        let mut mocks = Mocks::new();
        expect_no_work(&mut mocks);

        let result = register(mocks).execute(request(bad, PASSWORD, None)).await;

        assert_invalid(result, Field::Username);
    }
}

#[tokio::test]
async fn invalid_password_is_refused_before_any_work() {
    for bad in ["short", "         ", &"x".repeat(129)] {
        let mut mocks = Mocks::new();
        expect_no_work(&mut mocks);

        let result = register(mocks).execute(request("alice", bad, None)).await;

        assert_invalid(result, Field::Password);
    }
}

#[tokio::test]
async fn common_password_is_refused() {
    let mut mocks = Mocks::new();
    expect_no_work(&mut mocks);

    let result = register(mocks)
        .execute(request("alice", "Password123", None))
        .await;

    let message = assert_invalid(result, Field::Password);
    assert!(message.contains("common"), "{message}");
}

#[tokio::test]
async fn invalid_phone_is_refused_before_any_work() {
    for bad in ["4915112345678", "+0151123456", "+49 151 123", ""] {
        let mut mocks = Mocks::new();
        expect_no_work(&mut mocks);

        let result = register(mocks)
            .execute(request("alice", PASSWORD, Some(bad)))
            .await;

        assert_invalid(result, Field::Phone);
    }
}

#[tokio::test]
async fn a_number_outside_the_country_allow_list_is_refused_before_any_work() {
    let allow_germany = Arc::new(SmsPolicy {
        allowed_countries: vec![domain::CountryCode::parse("+49").expect("valid")],
        ..SmsPolicy::default()
    });
    let mut mocks = Mocks::new();
    expect_no_work(&mut mocks);

    let result = register_with(mocks, Arc::clone(&allow_germany))
        .execute(request("alice", PASSWORD, Some("+19005550123")))
        .await;

    let message = assert_invalid(result, Field::Phone);
    assert!(message.contains("country"), "{message}");

    // A number of an allowed country goes through, unverified.
    let mut mocks = Mocks::new();
    expect_hash(&mut mocks);
    mocks
        .users
        .expect_insert()
        .withf(|user| user.phone.is_some() && !user.phone_verified)
        .times(1)
        .returning(|_| Ok(()));
    register_with(mocks, allow_germany)
        .execute(request("alice", PASSWORD, Some("+4915112345678")))
        .await
        .expect("registered");
}

#[tokio::test]
async fn username_is_checked_first() {
    let mut mocks = Mocks::new();
    expect_no_work(&mut mocks);

    let result = register(mocks)
        .execute(request("a", "short", Some("bad")))
        .await;

    assert_invalid(result, Field::Username);
}

#[tokio::test]
async fn a_taken_name_is_refused_before_any_hashing() {
    let mut mocks = Mocks::new();
    let mut holder = user();
    holder.id = UserId::from_uuid(seq(77));
    mocks
        .users
        .expect_find_by_username()
        .withf(|name| name.as_str() == "alice")
        .times(1)
        .return_once(move |_| Ok(Some(holder)));
    mocks.hasher.expect_hash().never();
    mocks.hasher.expect_verify().never();
    mocks.users.expect_insert().never();

    let result = register(mocks)
        .execute(request("Alice", PASSWORD, None))
        .await;

    assert!(
        matches!(result, Err(RegisterError::UsernameTaken)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_client_over_its_limit_is_refused_before_any_work() {
    let mut mocks = Mocks::new();
    mocks.rate_limiter.expect_hit().times(1).returning(|_, _| {
        Ok(Admission::Refused {
            retry_after: Duration::from_secs(30),
        })
    });
    mocks.users.expect_find_by_username().never();
    mocks.hasher.expect_hash().never();
    mocks.users.expect_insert().never();

    let result = register(mocks)
        .execute(request("alice", PASSWORD, None))
        .await;

    assert!(
        matches!(result, Err(RegisterError::Throttled { retry_after }) if retry_after == Duration::from_secs(30)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_limiter_that_cannot_count_fails_closed() {
    let mut mocks = Mocks::new();
    mocks
        .rate_limiter
        .expect_hit()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    mocks.users.expect_find_by_username().never();
    mocks.hasher.expect_hash().never();

    let result = register(mocks)
        .execute(request("alice", PASSWORD, None))
        .await;

    assert!(
        matches!(result, Err(RegisterError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_name_taken_between_the_check_and_the_insert_is_username_taken() {
    let mut mocks = Mocks::new();
    expect_hash(&mut mocks);
    mocks
        .users
        .expect_insert()
        .times(1)
        .returning(|_| Err(InsertUserError::UsernameTaken));

    let result = register(mocks)
        .execute(request("alice", PASSWORD, None))
        .await;

    assert!(
        matches!(result, Err(RegisterError::UsernameTaken)),
        "{result:?}"
    );
}

#[tokio::test]
async fn store_unavailable_is_unavailable() {
    let mut mocks = Mocks::new();
    expect_hash(&mut mocks);
    mocks
        .users
        .expect_insert()
        .times(1)
        .returning(|_| Err(InsertUserError::Store(unavailable())));

    let result = register(mocks)
        .execute(request("alice", PASSWORD, None))
        .await;

    assert!(
        matches!(result, Err(RegisterError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn store_failure_is_unexpected() {
    let mut mocks = Mocks::new();
    expect_hash(&mut mocks);
    mocks.users.expect_insert().times(1).returning(|_| {
        Err(InsertUserError::Store(StoreError::Unexpected(
            anyhow::anyhow!("x"),
        )))
    });

    let result = register(mocks)
        .execute(request("alice", PASSWORD, None))
        .await;

    assert!(
        matches!(result, Err(RegisterError::Unexpected(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn overloaded_hasher_is_overloaded_and_stores_nothing() {
    let mut mocks = Mocks::new();
    mocks
        .hasher
        .expect_hash()
        .times(1)
        .returning(|_| Err(HashError::Overloaded));
    mocks.users.expect_insert().never();

    let result = register(mocks)
        .execute(request("alice", PASSWORD, None))
        .await;

    assert!(
        matches!(result, Err(RegisterError::Overloaded)),
        "{result:?}"
    );
}

#[tokio::test]
async fn failing_hasher_is_unexpected_and_stores_nothing() {
    let mut mocks = Mocks::new();
    mocks
        .hasher
        .expect_hash()
        .times(1)
        .returning(|_| Err(HashError::Unexpected(anyhow::anyhow!("boom"))));
    mocks.users.expect_insert().never();

    let result = register(mocks)
        .execute(request("alice", PASSWORD, None))
        .await;

    assert!(
        matches!(result, Err(RegisterError::Unexpected(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn created_at_comes_from_the_clock() {
    let later = Timestamp::from_unix_seconds(1_800_000_000);
    let mut mocks = Mocks::new();
    mocks.clock = fixed_clock(later);
    expect_hash(&mut mocks);
    mocks
        .users
        .expect_insert()
        .withf(move |user| user.created_at == later)
        .times(1)
        .returning(|_| Ok(()));

    let user = register(mocks)
        .execute(request("alice", PASSWORD, None))
        .await
        .expect("registered");

    assert_eq!(user.user.created_at, later);
}

#[test]
fn request_debug_hides_the_password() {
    let printed = format!("{:?}", request("alice", "hunter2hunter2", None));
    assert!(!printed.contains("hunter2"));
}

/// The record an earlier request with the same key left, naming the user it made.
fn claimed(resource: u64) -> IdempotencyRecord {
    IdempotencyRecord {
        fingerprint: "register\nalice\n".into(),
        resource: seq(resource),
    }
}

#[tokio::test]
async fn a_key_is_claimed_with_the_id_the_user_gets() {
    let mut mocks = Mocks::new();
    mocks
        .idempotency
        .expect_claim_registration()
        .withf(|key, record, ttl| {
            key.as_str() == "signup-1" && *record == claimed(1) && *ttl == limits().idempotency_ttl
        })
        .times(1)
        .returning(|_, record, _| Ok(record.clone()));
    expect_hash(&mut mocks);
    mocks
        .users
        .expect_insert()
        .withf(|user| user.id == UserId::from_uuid(seq(1)))
        .times(1)
        .returning(|_| Ok(()));

    let registered = register(mocks)
        .execute(keyed("alice", PASSWORD))
        .await
        .expect("registered");

    assert!(!registered.replayed);
}

#[tokio::test]
async fn a_retry_whose_user_exists_is_answered_with_it_again() {
    // The first request made user seq(5) and its reply was lost.
    let mut existing = user();
    existing.id = UserId::from_uuid(seq(5));
    let found = existing.clone();
    let mut mocks = Mocks::new();
    mocks
        .idempotency
        .expect_claim_registration()
        .times(1)
        .returning(|_, _, _| Ok(claimed(5)));
    mocks
        .users
        .expect_find_by_username()
        .times(1)
        .return_once(move |_| Ok(Some(found)));
    mocks
        .hasher
        .expect_verify()
        .withf(|password, hash| {
            password.expose() == PASSWORD && *hash == Some(PasswordHash::new(PASSWORD_HASH))
        })
        .times(1)
        .returning(|_, _| Ok(true));
    mocks.hasher.expect_hash().never();
    mocks.users.expect_insert().never();

    let registered = register(mocks)
        .execute(keyed("alice", PASSWORD))
        .await
        .expect("replayed");

    assert_eq!(
        registered,
        Registered {
            user: existing,
            replayed: true,
        }
    );
}

#[tokio::test]
async fn a_retry_with_another_password_is_key_reused() {
    let mut existing = user();
    existing.id = UserId::from_uuid(seq(5));
    let mut mocks = Mocks::new();
    mocks
        .idempotency
        .expect_claim_registration()
        .times(1)
        .returning(|_, _, _| Ok(claimed(5)));
    mocks
        .users
        .expect_find_by_username()
        .times(1)
        .return_once(move |_| Ok(Some(existing)));
    mocks
        .hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Ok(false));
    mocks.users.expect_insert().never();

    let result = register(mocks)
        .execute(keyed("alice", "another fine passphrase"))
        .await;

    assert!(
        matches!(result, Err(RegisterError::KeyReused)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_retry_whose_user_never_got_written_finishes_with_the_same_id() {
    let mut mocks = Mocks::new();
    mocks
        .idempotency
        .expect_claim_registration()
        .times(1)
        .returning(|_, _, _| Ok(claimed(5)));
    expect_hash(&mut mocks);
    mocks
        .users
        .expect_insert()
        .withf(|user| user.id == UserId::from_uuid(seq(5)))
        .times(1)
        .returning(|_| Ok(()));

    let registered = register(mocks)
        .execute(keyed("alice", PASSWORD))
        .await
        .expect("registered");

    assert_eq!(registered.user.id, UserId::from_uuid(seq(5)));
    assert!(!registered.replayed);
}

#[tokio::test]
async fn a_key_used_for_another_registration_is_refused_before_any_work() {
    let mut mocks = Mocks::new();
    mocks
        .idempotency
        .expect_claim_registration()
        .times(1)
        .returning(|_, _, _| {
            Ok(IdempotencyRecord {
                fingerprint: "register\nbob\n".into(),
                resource: seq(5),
            })
        });
    mocks.users.expect_find_by_username().never();
    mocks.hasher.expect_hash().never();
    mocks.users.expect_insert().never();

    let result = register(mocks).execute(keyed("alice", PASSWORD)).await;

    assert!(
        matches!(result, Err(RegisterError::KeyReused)),
        "{result:?}"
    );
}

#[tokio::test]
async fn without_a_key_a_name_held_by_anyone_is_taken() {
    // Even a user whose id happens to match: only a key makes a retry recognisable.
    let mut mocks = Mocks::new();
    let holder = user();
    mocks
        .users
        .expect_find_by_username()
        .times(1)
        .return_once(move |_| Ok(Some(holder)));
    mocks.hasher.expect_verify().never();

    let result = register(mocks)
        .execute(request("alice", PASSWORD, None))
        .await;

    assert!(
        matches!(result, Err(RegisterError::UsernameTaken)),
        "{result:?}"
    );
}
