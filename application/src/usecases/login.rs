//! Login: check a username and password, open a session, issue its first token pair.

use std::sync::Arc;

use domain::{PasswordInput, Session, SessionId, TokenId, TokenPair, Username};
use tracing::instrument;

use super::{PairFor, codec_failure, issue_pair, store_failures};
use crate::ports::{
    Clock, HashError, IdGenerator, PasswordHasher, SessionStore, TokenCodec, UserRepository,
};
use crate::{Ports, TokenPolicy};

pub struct LoginRequest {
    pub username: String,
    pub password: String,
    pub user_agent: Option<String>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user, wrong password or a malformed name: one answer for all, on purpose.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many logins are being hashed right now; try again shortly.
    #[error("too many concurrent logins")]
    Overloaded,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("login failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(LoginError);

impl From<HashError> for LoginError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Overloaded => LoginError::Overloaded,
            HashError::Unexpected(e) => LoginError::Unexpected(e),
        }
    }
}

pub struct Login {
    users: Arc<dyn UserRepository>,
    sessions: Arc<dyn SessionStore>,
    tokens: Arc<dyn TokenCodec>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    policy: TokenPolicy,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Login {
    pub fn new(ports: &Ports, policy: TokenPolicy) -> Self {
        Self {
            users: ports.users.clone(),
            sessions: ports.sessions.clone(),
            tokens: ports.tokens.clone(),
            hasher: ports.hasher.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            policy,
        }
    }

    /// # Errors
    /// See [`LoginError`]. Whether the user exists or the password is wrong, the answer
    /// is the same and costs the same: an unknown user's password is still hashed.
    #[instrument(name = "login", skip_all, fields(username = %request.username))]
    pub async fn execute(&self, request: LoginRequest) -> Result<TokenPair, LoginError> {
        // An over-long password is refused without hashing it (bounded work); it cannot be
        // anyone's password, so this reveals nothing about the account.
        let password =
            PasswordInput::new(request.password).map_err(|_| LoginError::InvalidCredentials)?;
        let user = match Username::parse(&request.username) {
            Ok(username) => self.users.find_by_username(&username).await?,
            Err(_) => None,
        };
        let verified = self
            .hasher
            .verify(&password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
        let user = match user {
            Some(user) if verified => user,
            _ => {
                tracing::info!("login refused");
                return Err(LoginError::InvalidCredentials);
            }
        };

        let now = self.clock.now();
        let session = Session {
            id: SessionId::from_uuid(self.ids.new_uuid()),
            user_id: user.id,
            refresh_jti: TokenId::from_uuid(self.ids.new_uuid()),
            previous_jti: None,
            created_at: now,
            refreshed_at: now,
            expires_at: self.policy.session_expiry(now, now),
            user_agent: Session::clean_user_agent(request.user_agent.as_deref()),
        };
        let access_jti = TokenId::from_uuid(self.ids.new_uuid());
        let pair = issue_pair(
            self.tokens.as_ref(),
            self.policy,
            &PairFor::session(&session, access_jti),
            now,
        )
        .map_err(|e| LoginError::Unexpected(codec_failure(e)))?;
        self.sessions.create(&session).await?;
        tracing::info!(user_id = %user.id, session_id = %session.id, "login succeeded");
        Ok(pair)
    }
}

#[cfg(test)]
mod tests {
    use domain::{AccessClaims, PasswordHash, RefreshClaims, User};
    use mockall::Sequence;
    use mockall::predicate::eq;

    use super::*;
    use crate::ports::{StoreError, TokenError};
    use crate::usecases::testkit::*;

    fn request(username: &str, password: &str) -> LoginRequest {
        LoginRequest {
            username: username.into(),
            password: password.into(),
            user_agent: Some("  Mozilla/5.0\r\n (X11)  ".into()),
        }
    }

    fn login(mocks: Mocks) -> Login {
        Login::new(&mocks.into_ports(), policy())
    }

    fn expect_user(mocks: &mut Mocks, found: Option<User>) {
        mocks
            .users
            .expect_find_by_username()
            .withf(|name| name.as_str() == "alice")
            .times(1)
            .return_once(move |_| Ok(found));
    }

    fn expect_verify(mocks: &mut Mocks, expected: Option<PasswordHash>, outcome: bool) {
        mocks
            .hasher
            .expect_verify()
            .withf(move |password, hash| password.expose() == PASSWORD && *hash == expected)
            .times(1)
            .returning(move |_, _| Ok(outcome));
    }

    fn expect_no_issue(mocks: &mut Mocks) {
        mocks.tokens.expect_issue_access().never();
        mocks.tokens.expect_issue_refresh().never();
        mocks.sessions.expect_create().never();
    }

    #[tokio::test]
    async fn success_opens_a_session_and_signs_a_pair_for_it() {
        let mut mocks = Mocks::new();
        // The username is case-folded before the lookup.
        expect_user(&mut mocks, Some(user()));
        expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);

        let session_id = SessionId::from_uuid(seq(1));
        let refresh_jti = TokenId::from_uuid(seq(2));
        let access_jti = TokenId::from_uuid(seq(3));
        let session_expiry = NOW.plus(REFRESH_TTL);

        // Both tokens are signed before anything is stored.
        let mut order = Sequence::new();
        mocks
            .tokens
            .expect_issue_access()
            .with(eq(AccessClaims {
                user_id: USER_ID,
                session_id,
                token_id: access_jti,
                issued_at: NOW,
                expires_at: NOW.plus(ACCESS_TTL),
                auth_time: NOW,
            }))
            .times(1)
            .in_sequence(&mut order)
            .returning(|_| Ok("access-token".into()));
        mocks
            .tokens
            .expect_issue_refresh()
            .with(eq(RefreshClaims {
                user_id: USER_ID,
                session_id,
                token_id: refresh_jti,
                issued_at: NOW,
                expires_at: session_expiry,
                auth_time: NOW,
            }))
            .times(1)
            .in_sequence(&mut order)
            .returning(|_| Ok("refresh-token".into()));
        let stored = Captured::new();
        let record = stored.clone();
        mocks
            .sessions
            .expect_create()
            .times(1)
            .in_sequence(&mut order)
            .returning(move |session| {
                record.set(session);
                Ok(())
            });

        let pair = login(mocks)
            .execute(request("Alice", PASSWORD))
            .await
            .expect("login succeeds");

        assert_eq!(
            stored.get(),
            Session {
                id: session_id,
                user_id: USER_ID,
                refresh_jti,
                previous_jti: None,
                created_at: NOW,
                refreshed_at: NOW,
                expires_at: session_expiry,
                user_agent: Some("Mozilla/5.0 (X11)".into()),
            }
        );
        assert_eq!(pair.access_token, "access-token");
        assert_eq!(pair.refresh_token, "refresh-token");
        assert_eq!(pair.session_id, session_id);
        assert_eq!(pair.issued_at, NOW);
        assert_eq!(pair.access_expires_at, NOW.plus(ACCESS_TTL));
        assert_eq!(pair.refresh_expires_at, session_expiry);
    }

    #[tokio::test]
    async fn access_token_never_outlives_the_session() {
        let mut mocks = Mocks::new();
        expect_user(&mut mocks, Some(user()));
        expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
        mocks
            .tokens
            .expect_issue_access()
            .withf(|claims| claims.expires_at == NOW.plus(std::time::Duration::from_secs(60)))
            .times(1)
            .returning(|_| Ok("a".into()));
        mocks
            .tokens
            .expect_issue_refresh()
            .times(1)
            .returning(|_| Ok("r".into()));
        mocks
            .sessions
            .expect_create()
            .times(1)
            .returning(|_| Ok(()));
        let short = TokenPolicy {
            access_ttl: std::time::Duration::from_secs(3600),
            refresh_ttl: std::time::Duration::from_secs(60),
            ..TokenPolicy::default()
        };

        let pair = Login::new(&mocks.into_ports(), short)
            .execute(request("alice", PASSWORD))
            .await
            .expect("login succeeds");

        assert_eq!(pair.access_expires_at, pair.refresh_expires_at);
    }

    #[tokio::test]
    async fn missing_user_agent_is_stored_as_none() {
        let mut mocks = Mocks::new();
        expect_user(&mut mocks, Some(user()));
        expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
        mocks
            .tokens
            .expect_issue_access()
            .returning(|_| Ok("a".into()));
        mocks
            .tokens
            .expect_issue_refresh()
            .returning(|_| Ok("r".into()));
        mocks
            .sessions
            .expect_create()
            .withf(|session| session.user_agent.is_none())
            .times(1)
            .returning(|_| Ok(()));

        let mut req = request("alice", PASSWORD);
        req.user_agent = Some(" \t\r\n".into());
        login(mocks).execute(req).await.expect("login succeeds");
    }

    #[tokio::test]
    async fn wrong_password_is_refused_without_a_session() {
        let mut mocks = Mocks::new();
        expect_user(&mut mocks, Some(user()));
        expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), false);
        expect_no_issue(&mut mocks);
        mocks.ids = no_ids();

        let err = login(mocks).execute(request("alice", PASSWORD)).await;

        assert!(
            matches!(err, Err(LoginError::InvalidCredentials)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn unknown_user_still_costs_a_hash_against_none() {
        let mut mocks = Mocks::new();
        expect_user(&mut mocks, None);
        // Timing equality: the hasher runs, against the dummy hash.
        expect_verify(&mut mocks, None, false);
        expect_no_issue(&mut mocks);
        mocks.ids = no_ids();

        let err = login(mocks).execute(request("alice", PASSWORD)).await;

        assert!(
            matches!(err, Err(LoginError::InvalidCredentials)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn unknown_user_is_refused_even_if_the_hasher_said_yes() {
        // Defence in depth: no user means no login, whatever the dummy verify returned.
        let mut mocks = Mocks::new();
        expect_user(&mut mocks, None);
        expect_verify(&mut mocks, None, true);
        expect_no_issue(&mut mocks);
        mocks.ids = no_ids();

        let err = login(mocks).execute(request("alice", PASSWORD)).await;

        assert!(
            matches!(err, Err(LoginError::InvalidCredentials)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn malformed_username_is_verified_against_none_without_a_lookup() {
        for bad in ["al", "al ice", "ålice", &"a".repeat(65)] {
            let mut mocks = Mocks::new();
            mocks.users.expect_find_by_username().never();
            expect_verify(&mut mocks, None, false);
            expect_no_issue(&mut mocks);
            mocks.ids = no_ids();

            let err = login(mocks).execute(request(bad, PASSWORD)).await;

            assert!(
                matches!(err, Err(LoginError::InvalidCredentials)),
                "{bad}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn over_long_password_is_refused_without_hashing() {
        let mut mocks = Mocks::new();
        mocks.users.expect_find_by_username().never();
        mocks.hasher.expect_verify().never();
        expect_no_issue(&mut mocks);
        mocks.ids = no_ids();

        let err = login(mocks)
            .execute(request("alice", &"x".repeat(PasswordInput::MAX_LEN + 1)))
            .await;

        assert!(
            matches!(err, Err(LoginError::InvalidCredentials)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn empty_password_is_refused_without_hashing() {
        let mut mocks = Mocks::new();
        mocks.users.expect_find_by_username().never();
        mocks.hasher.expect_verify().never();
        expect_no_issue(&mut mocks);
        mocks.ids = no_ids();

        let err = login(mocks).execute(request("alice", "")).await;

        assert!(
            matches!(err, Err(LoginError::InvalidCredentials)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn password_at_the_length_bound_is_still_checked() {
        let long = "x".repeat(PasswordInput::MAX_LEN);
        let mut mocks = Mocks::new();
        expect_user(&mut mocks, Some(user()));
        let expected = long.clone();
        mocks
            .hasher
            .expect_verify()
            .withf(move |password, hash| password.expose() == expected && hash.is_some())
            .times(1)
            .returning(|_, _| Ok(false));
        expect_no_issue(&mut mocks);

        let err = login(mocks).execute(request("alice", &long)).await;

        assert!(
            matches!(err, Err(LoginError::InvalidCredentials)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn store_unavailable_on_lookup_is_unavailable() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_by_username()
            .times(1)
            .returning(|_| Err(unavailable()));
        mocks.hasher.expect_verify().never();
        expect_no_issue(&mut mocks);

        let err = login(mocks).execute(request("alice", PASSWORD)).await;

        assert!(matches!(err, Err(LoginError::Unavailable(_))), "{err:?}");
    }

    #[tokio::test]
    async fn store_failure_on_lookup_is_unexpected() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_by_username()
            .times(1)
            .returning(|_| Err(unexpected()));
        mocks.hasher.expect_verify().never();
        expect_no_issue(&mut mocks);

        let err = login(mocks).execute(request("alice", PASSWORD)).await;

        assert!(matches!(err, Err(LoginError::Unexpected(_))), "{err:?}");
    }

    #[tokio::test]
    async fn store_unavailable_on_session_create_is_unavailable() {
        let mut mocks = Mocks::new();
        expect_user(&mut mocks, Some(user()));
        expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
        mocks
            .tokens
            .expect_issue_access()
            .times(1)
            .returning(|_| Ok("a".into()));
        mocks
            .tokens
            .expect_issue_refresh()
            .times(1)
            .returning(|_| Ok("r".into()));
        mocks
            .sessions
            .expect_create()
            .times(1)
            .returning(|_| Err(StoreError::Unavailable(anyhow::anyhow!("down"))));

        let err = login(mocks).execute(request("alice", PASSWORD)).await;

        assert!(matches!(err, Err(LoginError::Unavailable(_))), "{err:?}");
    }

    #[tokio::test]
    async fn overloaded_hasher_is_overloaded() {
        let mut mocks = Mocks::new();
        expect_user(&mut mocks, Some(user()));
        mocks
            .hasher
            .expect_verify()
            .times(1)
            .returning(|_, _| Err(HashError::Overloaded));
        expect_no_issue(&mut mocks);

        let err = login(mocks).execute(request("alice", PASSWORD)).await;

        assert!(matches!(err, Err(LoginError::Overloaded)), "{err:?}");
    }

    #[tokio::test]
    async fn failing_hasher_is_unexpected() {
        let mut mocks = Mocks::new();
        expect_user(&mut mocks, Some(user()));
        mocks
            .hasher
            .expect_verify()
            .times(1)
            .returning(|_, _| Err(HashError::Unexpected(anyhow::anyhow!("boom"))));
        expect_no_issue(&mut mocks);

        let err = login(mocks).execute(request("alice", PASSWORD)).await;

        assert!(matches!(err, Err(LoginError::Unexpected(_))), "{err:?}");
    }

    #[tokio::test]
    async fn signing_failure_is_unexpected_and_creates_no_session() {
        let mut mocks = Mocks::new();
        expect_user(&mut mocks, Some(user()));
        expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
        mocks
            .tokens
            .expect_issue_access()
            .times(1)
            .returning(|_| Ok("a".into()));
        mocks
            .tokens
            .expect_issue_refresh()
            .times(1)
            .returning(|_| Err(TokenError::Unexpected(anyhow::anyhow!("no key"))));
        mocks.sessions.expect_create().never();

        let err = login(mocks).execute(request("alice", PASSWORD)).await;

        assert!(matches!(err, Err(LoginError::Unexpected(_))), "{err:?}");
    }

    #[tokio::test]
    async fn access_signing_failure_creates_no_session() {
        let mut mocks = Mocks::new();
        expect_user(&mut mocks, Some(user()));
        expect_verify(&mut mocks, Some(PasswordHash::new(PASSWORD_HASH)), true);
        mocks
            .tokens
            .expect_issue_access()
            .times(1)
            .returning(|_| Err(TokenError::Unexpected(anyhow::anyhow!("no key"))));
        mocks.tokens.expect_issue_refresh().never();
        mocks.sessions.expect_create().never();

        let err = login(mocks).execute(request("alice", PASSWORD)).await;

        assert!(matches!(err, Err(LoginError::Unexpected(_))), "{err:?}");
    }

    #[test]
    fn request_debug_hides_the_password() {
        let printed = format!("{:?}", request("alice", "hunter2hunter2"));
        assert!(printed.contains("alice"));
        assert!(!printed.contains("hunter2"));
    }
}
