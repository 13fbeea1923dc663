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
    AuditKind, AuthMethods, ClientAddress, ClientId, LoginChallenge, PasswordInput, Session,
    SessionId, Timestamp, TokenId, TokenPair, UserId, Username,
};
use tracing::instrument;

use super::audit::{Audit, Origin};
use super::shared::{PairFor, codec_failure, hash_failures, issue_pair, store_failures};
use crate::policy::{Limits, TokenPolicy};
use crate::ports::Ports;
use crate::ports::{
    Admission, Clock, CodeHasher, IdGenerator, LoginAttempt, LoginThrottle, MfaChallenge,
    PasswordHasher, SecondFactors, SecretKind, SessionStore, Settlement, StoreError,
    ThrottleLimits, TokenCodec, UserRepository,
};

/// How long a login challenge waits for its second factor.
pub const MFA_CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);

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

/// What a right password gets.
#[derive(Debug)]
pub enum LoginOutcome {
    /// A session and its first pair.
    LoggedIn(LoggedIn),
    /// The account has a second factor: no session yet. The login goes on at
    /// [`CompleteLogin`](super::CompleteLogin) with this challenge and a code.
    SecondFactor(SecondFactorRequired),
}

impl LoginOutcome {
    /// The session opened, if the login did not wait for a second factor.
    pub fn into_logged_in(self) -> Option<LoggedIn> {
        match self {
            LoginOutcome::LoggedIn(logged_in) => Some(logged_in),
            LoginOutcome::SecondFactor(_) => None,
        }
    }
}

/// A login waiting for its second factor.
#[derive(Debug)]
pub struct SecondFactorRequired {
    /// The handle to send back with the code: single use, for this login only.
    pub challenge: LoginChallenge,
    pub expires_at: Timestamp,
}

/// Opening a session once the user proved who they are: shared by the password login and
/// its completion with a second factor.
pub(crate) struct SessionOpener {
    audit: Audit,
    sessions: Arc<dyn SessionStore>,
    tokens: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    policy: TokenPolicy,
    max_sessions: u32,
}

/// Why [`SessionOpener::open`] failed.
pub(crate) enum OpenError {
    Store(StoreError),
    Codec(anyhow::Error),
}

/// A session to open, and how its user proved who they are.
pub(crate) struct Opening<'a> {
    pub user_id: UserId,
    pub user_agent: Option<&'a str>,
    pub oauth_client: Option<ClientId>,
    pub amr: AuthMethods,
    pub origin: &'a Origin,
    /// Said in the audit event, after the methods.
    pub detail: Option<String>,
}

impl SessionOpener {
    pub(crate) fn new(ports: &Ports, policy: TokenPolicy, caps: Limits, audit: Audit) -> Self {
        Self {
            audit,
            sessions: ports.sessions.clone(),
            tokens: ports.tokens.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            policy,
            max_sessions: caps.max_sessions_per_user,
        }
    }

    /// Opens the session and signs its first pair; `None` when the user was deleted
    /// meanwhile (nothing is stored then).
    pub(crate) async fn open(&self, opening: Opening<'_>) -> Result<Option<LoggedIn>, OpenError> {
        let now = self.clock.now();
        let session = Session {
            id: SessionId::from_uuid(self.ids.new_uuid()),
            user_id: opening.user_id,
            refresh_jti: TokenId::from_uuid(self.ids.new_uuid()),
            previous_jti: None,
            created_at: now,
            refreshed_at: now,
            expires_at: self.policy.session_expiry(now, now),
            user_agent: Session::clean_user_agent(opening.user_agent),
            amr: opening.amr,
        };
        let access_jti = TokenId::from_uuid(self.ids.new_uuid());
        let pair = issue_pair(
            self.tokens.as_ref(),
            self.policy,
            &PairFor::session(&session, access_jti, opening.oauth_client),
            now,
        )
        .map_err(|e| OpenError::Codec(codec_failure(e)))?;
        let Some(evicted) = self
            .sessions
            .create(&session, self.max_sessions)
            .await
            .map_err(OpenError::Store)?
        else {
            // The account was deleted since it was checked: no one to log in.
            tracing::info!(user_id = %opening.user_id, "login refused: the user was deleted meanwhile");
            return Ok(None);
        };
        if evicted > 0 {
            tracing::info!(user_id = %opening.user_id, evicted, "oldest sessions ended: session cap reached");
        }
        let mut detail = vec![format!("amr={}", opening.amr.joined())];
        detail.extend(opening.oauth_client.map(|c| format!("client={c}")));
        detail.extend(opening.detail);
        self.audit
            .record(
                opening.user_id,
                AuditKind::LoginSucceeded,
                Some(session.id),
                Some(opening.origin),
                Some(detail.join(" ")),
            )
            .await;
        Ok(Some(LoggedIn { pair, evicted }))
    }
}

pub struct Login {
    audit: Audit,
    opener: SessionOpener,
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    throttle: Arc<dyn LoginThrottle>,
    factors: Arc<dyn SecondFactors>,
    code_hasher: Arc<dyn CodeHasher>,
    limits: ThrottleLimits,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("limits", &self.limits)
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
            opener: SessionOpener::new(ports, policy, caps, audit.clone()),
            audit,
            users: ports.users.clone(),
            hasher: ports.hasher.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            throttle: ports.throttle.clone(),
            factors: ports.second_factors.clone(),
            code_hasher: ports.code_hasher.clone(),
            limits,
        }
    }

    /// # Errors
    /// See [`LoginError`]. Whether the user exists or the password is wrong, the answer
    /// is the same and costs the same: an unknown user's password is still hashed, and
    /// both count against the throttle alike.
    // The name as typed is never logged raw (it may forge a line, or be a password typed
    // into the wrong field): `LoggedUsername` is the folded name or `invalid(len=N)`.
    #[instrument(name = "login", skip_all, fields(username = %domain::LoggedUsername::of(&request.username), client = %request.client))]
    pub async fn execute(&self, request: LoginRequest) -> Result<LoginOutcome, LoginError> {
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
    ) -> Result<LoginOutcome, LoginError> {
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

        // The password is right. An account with a second factor gets a challenge, not
        // a session: only the code completes the login.
        if self
            .factors
            .totp(user.id)
            .await?
            .is_some_and(|factor| factor.enabled)
        {
            return self.challenge(user.id, &origin, request.oauth_client).await;
        }
        match self
            .opener
            .open(Opening {
                user_id: user.id,
                user_agent: request.user_agent.as_deref(),
                oauth_client: request.oauth_client,
                amr: AuthMethods::Password,
                origin: &origin,
                detail: None,
            })
            .await?
        {
            Some(logged_in) => Ok(LoginOutcome::LoggedIn(logged_in)),
            None => Err(LoginError::InvalidCredentials),
        }
    }

    /// Issues the challenge of a login whose second factor is due.
    async fn challenge(
        &self,
        user: UserId,
        origin: &Origin,
        oauth_client: Option<ClientId>,
    ) -> Result<LoginOutcome, LoginError> {
        let challenge = LoginChallenge::new(user, self.ids.new_uuid());
        let expires_at = self.clock.now().plus(MFA_CHALLENGE_TTL);
        let stored = MfaChallenge {
            user_id: user,
            digest: self.code_hasher.secret_digest(
                user,
                SecretKind::LoginChallenge,
                &challenge.expose_secret(),
            ),
            expires_at,
            user_agent: Session::clean_user_agent(origin.user_agent.as_deref()),
        };
        if !self.factors.open_challenge(&stored).await? {
            return Err(LoginError::InvalidCredentials);
        }
        tracing::info!(user_id = %user, "password accepted; second factor required");
        self.audit
            .record(
                user,
                AuditKind::MfaChallenged,
                None,
                Some(origin),
                oauth_client.map(|c| format!("client={c}")),
            )
            .await;
        Ok(LoginOutcome::SecondFactor(SecondFactorRequired {
            challenge,
            expires_at,
        }))
    }
}

impl From<OpenError> for LoginError {
    fn from(err: OpenError) -> Self {
        match err {
            OpenError::Store(e) => e.into(),
            OpenError::Codec(e) => LoginError::Unexpected(e),
        }
    }
}

#[cfg(test)]
mod tests;
