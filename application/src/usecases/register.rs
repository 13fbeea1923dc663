//! Register: create a user with a policy-checked password and an optional E.164 phone.
//!
//! A phone given here is stored unverified and nothing is texted to it: registration is
//! unauthenticated, so sending codes from it would let anyone pump SMS. The user asks for
//! a code with `POST /me/phone`. A number outside the SMS country allow-list is refused.

use std::sync::Arc;

use domain::{NewPassword, PhoneNumber, User, UserId, Username};
use tracing::instrument;

use super::{Field, SmsPolicy, store_failures};
use crate::Ports;
use crate::ports::{
    Clock, HashError, IdGenerator, InsertUserError, PasswordHasher, UserRepository,
};

pub struct RegisterRequest {
    pub username: String,
    pub password: String,
    pub phone: Option<String>,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{field:?}: {message}")]
    Invalid { field: Field, message: String },
    #[error("username already taken")]
    UsernameTaken,
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

pub struct Register {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    sms: Arc<SmsPolicy>,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register").finish_non_exhaustive()
    }
}

impl Register {
    pub fn new(ports: &Ports, sms: Arc<SmsPolicy>) -> Self {
        Self {
            users: ports.users.clone(),
            hasher: ports.hasher.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            sms,
        }
    }

    /// # Errors
    /// See [`RegisterError`]. Validation happens before any work or store access.
    #[instrument(name = "register", skip_all, fields(username = %request.username))]
    pub async fn execute(&self, request: RegisterRequest) -> Result<User, RegisterError> {
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
        let password_hash = self
            .hasher
            .hash(password.as_input())
            .await
            .map_err(|e| match e {
                HashError::Overloaded => RegisterError::Overloaded,
                HashError::Unexpected(e) => RegisterError::Unexpected(e),
            })?;
        let user = User {
            id: UserId::from_uuid(self.ids.new_uuid()),
            username,
            password_hash,
            phone,
            phone_verified: false,
            created_at: self.clock.now(),
        };
        match self.users.insert(&user).await {
            Ok(()) => {
                tracing::info!(user_id = %user.id, "user registered");
                Ok(user)
            }
            Err(InsertUserError::UsernameTaken) => Err(RegisterError::UsernameTaken),
            Err(InsertUserError::Store(e)) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::{PasswordHash, PhoneNumber, Timestamp};

    use super::*;
    use crate::ports::StoreError;
    use crate::usecases::testkit::*;

    fn request(username: &str, password: &str, phone: Option<&str>) -> RegisterRequest {
        RegisterRequest {
            username: username.into(),
            password: password.into(),
            phone: phone.map(Into::into),
        }
    }

    fn register(mocks: Mocks) -> Register {
        Register::new(&mocks.into_ports(), Arc::default())
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
        mocks.hasher.expect_hash().never();
        mocks.hasher.expect_verify().never();
        mocks.users.expect_insert().never();
        mocks.ids = no_ids();
    }

    fn assert_invalid(result: Result<User, RegisterError>, expected: Field) -> String {
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
        assert_eq!(user, expected);
        assert_eq!(user.username.as_str(), "alice.smith");
        assert_eq!(user.password_hash.as_str(), PASSWORD_HASH);
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

        assert_eq!(user.phone, None);
        assert_eq!(user.created_at, NOW);
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

        let result = Register::new(&mocks.into_ports(), Arc::clone(&allow_germany))
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
        Register::new(&mocks.into_ports(), allow_germany)
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
    async fn taken_username_is_username_taken() {
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

        assert_eq!(user.created_at, later);
    }

    #[test]
    fn request_debug_hides_the_password() {
        let printed = format!("{:?}", request("alice", "hunter2hunter2", None));
        assert!(!printed.contains("hunter2"));
    }
}
