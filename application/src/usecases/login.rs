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
            created_at: now,
            refreshed_at: now,
            expires_at: now.plus(self.policy.refresh_ttl),
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
