//! Login: check a username and password, open a session, issue its first token pair.
//!
//! Every attempt passes the login throttle first, before any password work: a refused
//! attempt costs no hash. The throttle counts per (username, client) pair and per client,
//! never per username alone, so failing on a victim's name from one address cannot lock
//! the victim out from any other address.
//!
//! An admitted attempt holds a place in the throttle until it is settled: a wrong password
//! becomes a counted failure, anything else (success, overload, a store error) is not. A
//! login whose store calls fail is answered 503 and never counts as a failed password, even
//! when the reply of the admission is lost (the hold lapses by itself).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::{
    AuditKind, ClientAddress, PasswordInput, Session, SessionId, TokenId, TokenPair, Username,
};
use tracing::instrument;

use super::audit::{Audit, Origin};
use super::shared::{PairFor, codec_failure, hash_failures, issue_pair, store_failures};
use crate::policy::{Limits, TokenPolicy};
use crate::ports::Ports;
use crate::ports::{
    Admission, Clock, IdGenerator, LoginAttempt, LoginThrottle, PasswordHasher, SessionStore,
    Settlement, ThrottleLimits, TokenCodec, UserRepository,
};

pub struct LoginRequest {
    pub username: String,
    pub password: String,
    pub user_agent: Option<String>,
    /// The client's address (the TCP peer, or what a trusted proxy reported).
    pub client: IpAddr,
    /// The OAuth client logging the user in (the password grant); `None` for the
    /// service's own login. Named in the session's tokens.
    pub oauth_client: Option<domain::ClientId>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &domain::LoggedUsername::of(&self.username))
            .field("password", &"[REDACTED]")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user, wrong password or a malformed name: one answer for all, on purpose.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failures for this username from this client, or from this client at
    /// all: refused without checking the password. Retry after `retry_after`.
    #[error("too many failed logins")]
    Throttled { retry_after: Duration },
    /// Too many logins are being hashed right now; try again shortly.
    #[error("too many concurrent logins")]
    Overloaded,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("login failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(LoginError);

hash_failures!(LoginError);

/// A successful login: the new session's pair, and how many of the user's oldest
/// sessions it ended to stay within the per-user cap.
#[derive(Debug)]
pub struct LoggedIn {
    pub pair: TokenPair,
    pub evicted: u64,
}

pub struct Login {
    audit: Audit,
    users: Arc<dyn UserRepository>,
    sessions: Arc<dyn SessionStore>,
    tokens: Arc<dyn TokenCodec>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    throttle: Arc<dyn LoginThrottle>,
    policy: TokenPolicy,
    limits: ThrottleLimits,
    max_sessions: u32,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("policy", &self.policy)
            .field("limits", &self.limits)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

impl Login {
    pub(crate) fn new(
        ports: &Ports,
        policy: TokenPolicy,
        limits: ThrottleLimits,
        caps: Limits,
        audit: Audit,
    ) -> Self {
        Self {
            audit,
            users: ports.users.clone(),
            sessions: ports.sessions.clone(),
            tokens: ports.tokens.clone(),
            hasher: ports.hasher.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            throttle: ports.throttle.clone(),
            policy,
            limits,
            max_sessions: caps.max_sessions_per_user,
        }
    }

    /// # Errors
    /// See [`LoginError`]. Whether the user exists or the password is wrong, the answer
    /// is the same and costs the same: an unknown user's password is still hashed, and
    /// both count against the throttle alike.
    // The name as typed is never logged raw (it may forge a line, or be a password typed
    // into the wrong field): `LoggedUsername` is the folded name or `invalid(len=N)`.
    #[instrument(name = "login", skip_all, fields(username = %domain::LoggedUsername::of(&request.username), client = %request.client))]
    pub async fn execute(&self, request: LoginRequest) -> Result<LoggedIn, LoginError> {
        let username = Username::parse(&request.username).ok();
        let attempt = LoginAttempt {
            id: self.ids.new_uuid(),
            username: username.clone(),
            client: ClientAddress::from_ip(request.client),
        };
        // Fails closed: a store that cannot count refuses the login (503), unhashed.
        if let Admission::Refused { retry_after } =
            self.throttle.admit(&attempt, &self.limits).await?
        {
            tracing::info!(retry_after_secs = retry_after.as_secs(), "login throttled");
            return Err(LoginError::Throttled { retry_after });
        }

        let outcome = self.check_and_open(username, request).await;
        let settlement = match &outcome {
            Ok(_) => Settlement::Succeeded,
            Err(LoginError::InvalidCredentials) => Settlement::Failed,
            Err(_) => Settlement::Unjudged,
        };
        if let Err(e) = self
            .throttle
            .settle(&attempt, &self.limits, settlement)
            .await
        {
            // The hold lapses uncounted: a failure goes unrecorded (the store was failing
            // anyway), a success or an unjudged attempt loses nothing. The login's own
            // outcome stands.
            tracing::warn!(error = %e, ?settlement, "could not settle a login attempt");
        }
        outcome
    }

    /// The attempt, once admitted: check the password, open the session.
    async fn check_and_open(
        &self,
        username: Option<Username>,
        request: LoginRequest,
    ) -> Result<LoggedIn, LoginError> {
        // An over-long password is refused without hashing it (bounded work); it cannot be
        // anyone's password, so this reveals nothing about the account.
        let password =
            PasswordInput::new(request.password).map_err(|_| LoginError::InvalidCredentials)?;
        let user = match username {
            Some(username) => self.users.find_by_username(&username).await?,
            None => None,
        };
        let verified = self
            .hasher
            .verify(&password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
        let origin = Origin {
            client: request.client,
            user_agent: request.user_agent.clone(),
        };
        let user = match user {
            Some(user) if verified => user,
            Some(user) => {
                tracing::info!("login refused");
                self.audit
                    .record(user.id, AuditKind::LoginFailed, None, Some(&origin), None)
                    .await;
                return Err(LoginError::InvalidCredentials);
            }
            None => {
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
            &PairFor::session(&session, access_jti, request.oauth_client),
            now,
        )
        .map_err(|e| LoginError::Unexpected(codec_failure(e)))?;
        let Some(evicted) = self.sessions.create(&session, self.max_sessions).await? else {
            // The account was deleted since its password was checked: no one to log in.
            tracing::info!(user_id = %user.id, "login refused: the user was deleted meanwhile");
            return Err(LoginError::InvalidCredentials);
        };
        if evicted > 0 {
            tracing::info!(user_id = %user.id, evicted, "oldest sessions ended: session cap reached");
        }
        self.audit
            .record(
                user.id,
                AuditKind::LoginSucceeded,
                Some(session.id),
                Some(&origin),
                request.oauth_client.map(|c| format!("client={c}")),
            )
            .await;
        Ok(LoggedIn { pair, evicted })
    }
}

#[cfg(test)]
mod tests;
