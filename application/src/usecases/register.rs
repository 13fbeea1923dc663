//! Register: create a user with a policy-checked password and an optional E.164 phone.
//!
//! Cheap refusals come first and expensive work last: the input is validated, the client's
//! registration rate is counted, and the name is looked up *before* the password is hashed,
//! so a taken name (409) or a flood from one address (429) costs no Argon2 work. The hash
//! itself runs in the share of the hasher registrations are allowed, which never includes
//! the capacity logins keep.
//!
//! With an `Idempotency-Key`, a retry after a lost reply gets the first answer: the key is
//! claimed (with the id of the user about to be created) before anything else is written,
//! so a retry finds it, and either finds that user and answers with it, or finishes the
//! registration with the same id. A key used for a different request is refused.
//!
//! A phone given here is stored unverified and nothing is texted to it: registration is
//! unauthenticated, so sending codes from it would let anyone pump SMS. The user asks for
//! a code with `POST /me/phone`. A number outside the SMS country allow-list is refused.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::{ClientAddress, IdempotencyKey, NewPassword, PhoneNumber, User, UserId, Username};
use tracing::instrument;

use super::{Field, SmsPolicy, store_failures};
use crate::ports::{
    Admission, Clock, HashError, IdGenerator, IdempotencyRecord, IdempotencyStore, InsertUserError,
    PasswordHasher, RateKey, RateLimiter, UserRepository, WindowLimit,
};
use crate::{Limits, Ports};

pub struct RegisterRequest {
    pub username: String,
    pub password: String,
    pub phone: Option<String>,
    /// The client's address (the TCP peer, or what a trusted proxy reported).
    pub client: IpAddr,
    pub idempotency_key: Option<IdempotencyKey>,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("username", &domain::LoggedUsername::of(&self.username))
            .field("password", &"[REDACTED]")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{field:?}: {message}")]
    Invalid { field: Field, message: String },
    #[error("username already taken")]
    UsernameTaken,
    /// Too many registrations from this client; retry after `retry_after`.
    #[error("too many registrations")]
    Throttled { retry_after: Duration },
    /// The idempotency key was used before for a different registration.
    #[error("idempotency key reused for a different request")]
    KeyReused,
    #[error("too many concurrent password hashes")]
    Overloaded,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("registration failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(RegisterError);

impl RegisterError {
    fn invalid(field: Field, err: impl std::fmt::Display) -> Self {
        RegisterError::Invalid {
            field,
            message: err.to_string(),
        }
    }
}

impl From<HashError> for RegisterError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Overloaded => RegisterError::Overloaded,
            HashError::Unexpected(e) => RegisterError::Unexpected(e),
        }
    }
}

/// A registration's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub user: User,
    /// The answer of an earlier request with the same idempotency key, given again.
    pub replayed: bool,
}

pub struct Register {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    rate: Arc<dyn RateLimiter>,
    idempotency: Arc<dyn IdempotencyStore>,
    per_client: WindowLimit,
    idempotency_ttl: Duration,
    sms: Arc<SmsPolicy>,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register")
            .field("per_client", &self.per_client)
            .finish_non_exhaustive()
    }
}

impl Register {
    pub fn new(ports: &Ports, limits: Limits, sms: Arc<SmsPolicy>) -> Self {
        Self {
            users: ports.users.clone(),
            hasher: ports.hasher.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            rate: ports.rate_limiter.clone(),
            idempotency: ports.idempotency.clone(),
            per_client: limits.registrations_per_client,
            idempotency_ttl: limits.idempotency_ttl,
            sms,
        }
    }

    /// # Errors
    /// See [`RegisterError`]. Validation happens before any work or store access; the
    /// rate limit and the name check before any hashing.
    // Never the raw name: see `LoggedUsername`.
    #[instrument(name = "register", skip_all, fields(username = %domain::LoggedUsername::of(&request.username)))]
    pub async fn execute(&self, request: RegisterRequest) -> Result<Registered, RegisterError> {
        let username = Username::parse(&request.username)
            .map_err(|e| RegisterError::invalid(Field::Username, e))?;
        let password = NewPassword::parse(request.password)
            .map_err(|e| RegisterError::invalid(Field::Password, e))?;
        let phone = request
            .phone
            .as_deref()
            .map(PhoneNumber::parse)
            .transpose()
            .map_err(|e| RegisterError::invalid(Field::Phone, e))?;
        if phone.as_ref().is_some_and(|p| !self.sms.allows(p)) {
            return Err(RegisterError::invalid(
                Field::Phone,
                super::sms::COUNTRY_NOT_ALLOWED,
            ));
        }

        // Every attempt that could reach the store counts, a taken name included: that
        // also slows down anyone enumerating names through 409s.
        let client = RateKey::Registration(ClientAddress::from_ip(request.client));
        if let Admission::Refused { retry_after } = self.rate.hit(&client, self.per_client).await? {
            tracing::info!(
                retry_after_secs = retry_after.as_secs(),
                "registration throttled"
            );
            return Err(RegisterError::Throttled { retry_after });
        }

        let id = match &request.idempotency_key {
            None => UserId::from_uuid(self.ids.new_uuid()),
            Some(key) => {
                let ours = IdempotencyRecord {
                    fingerprint: fingerprint(&username, phone.as_ref()),
                    resource: self.ids.new_uuid(),
                };
                let held = self
                    .idempotency
                    .claim_registration(key, &ours, self.idempotency_ttl)
                    .await?;
                if held.fingerprint != ours.fingerprint {
                    return Err(RegisterError::KeyReused);
                }
                UserId::from_uuid(held.resource)
            }
        };

        if let Some(existing) = self.users.find_by_username(&username).await? {
            // Only a retry with the same key can find its own user: the password decides
            // whether it is the same request (it is part of the body, but never stored).
            if request.idempotency_key.is_some() && existing.id == id {
                return if self
                    .hasher
                    .verify(password.as_input(), Some(existing.password_hash.clone()))
                    .await?
                {
                    tracing::info!(user_id = %id, "registration replayed");
                    Ok(Registered {
                        user: existing,
                        replayed: true,
                    })
                } else {
                    Err(RegisterError::KeyReused)
                };
            }
            return Err(RegisterError::UsernameTaken);
        }

        let password_hash = self.hasher.hash(password.as_input()).await?;
        let user = User {
            id,
            username,
            password_hash,
            phone,
            phone_verified: false,
            created_at: self.clock.now(),
        };
        match self.users.insert(&user).await {
            Ok(()) => {
                tracing::info!(user_id = %user.id, "user registered");
                Ok(Registered {
                    user,
                    replayed: false,
                })
            }
            Err(InsertUserError::UsernameTaken) => Err(RegisterError::UsernameTaken),
            Err(InsertUserError::Store(e)) => Err(e.into()),
        }
    }
}

/// A registration in canonical form, for comparing retries: the name as folded and the
/// phone as parsed. The password is compared against the created user's hash instead,
/// so that it is never stored anywhere else.
fn fingerprint(username: &Username, phone: Option<&PhoneNumber>) -> String {
    format!(
        "register\n{username}\n{}",
        phone.map_or("", PhoneNumber::as_str)
    )
}

#[cfg(test)]
mod tests {
    use domain::{PasswordHash, PhoneNumber, Timestamp};
    use mockall::predicate::eq;

    use super::*;
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
                key.as_str() == "signup-1"
                    && *record == claimed(1)
                    && *ttl == limits().idempotency_ttl
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
}
