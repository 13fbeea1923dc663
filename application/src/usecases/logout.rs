//! Logout: revoke sessions, so that their access **and** refresh tokens fail at once
//! (the seed only forgot the access token).
//!
//! A client may prove who it is with its access token, or with its refresh token when
//! the access token has already expired, so that signing out always works. A refresh token
//! speaks for its session only while it is the session's current one: a spent refresh
//! token is reuse (RFC 9700 §4.14.2) wherever it is presented, here as at refresh. Its
//! session is revoked as stolen and nothing else is ended, whatever scope was asked for.

use std::sync::Arc;

use domain::AuditKind;

use super::audit::{Audit, Origin};
use super::shared::{Principal, store_failures};
use crate::ports::{
    Clock, EndOutcome, PresentedRefresh, SessionScope, SessionStore, TokenCodec, TokenError,
};
use crate::{policy::TokenPolicy, ports::Ports};

/// Which sessions to end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogoutScope {
    /// The caller's session only (the seed's behaviour).
    #[default]
    Local,
    /// Every other session of the caller; the caller stays signed in.
    Others,
    /// Every session of the caller, this one included.
    Global,
}

impl LogoutScope {
    /// The scope as the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutScope::Local => "local",
            LogoutScope::Others => "others",
            LogoutScope::Global => "global",
        }
    }

    /// The sessions the store ends for this scope.
    fn sessions(self) -> SessionScope {
        match self {
            LogoutScope::Local => SessionScope::This,
            LogoutScope::Others => SessionScope::Others,
            LogoutScope::Global => SessionScope::All,
        }
    }
}

/// How the caller proved who it is.
#[derive(Clone, Debug)]
pub enum LogoutCredential {
    /// An access token, already checked by [`super::Authenticate`].
    Access(Principal),
    /// A refresh token, checked here.
    Refresh(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// The refresh token is malformed, forged, expired, or its session is already gone.
    #[error("refresh token invalid")]
    InvalidToken,
    /// The refresh token was a spent one: its session has been revoked as stolen, and
    /// nothing else was ended.
    #[error("refresh token reused; session revoked")]
    Reused,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("logout failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(LogoutError);

pub struct Logout {
    audit: Audit,
    sessions: Arc<dyn SessionStore>,
    tokens: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
    policy: TokenPolicy,
}

impl std::fmt::Debug for Logout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logout").finish_non_exhaustive()
    }
}

impl Logout {
    pub(crate) fn new(ports: &Ports, policy: TokenPolicy, audit: Audit) -> Self {
        Self {
            audit,
            sessions: ports.sessions.clone(),
            tokens: ports.tokens.clone(),
            clock: ports.clock.clone(),
            policy,
        }
    }

    /// Returns how many sessions were ended.
    ///
    /// # Errors
    /// See [`LogoutError`].
    pub async fn execute(
        &self,
        credential: LogoutCredential,
        scope: LogoutScope,
        origin: Option<&Origin>,
    ) -> Result<u64, LogoutError> {
        let (principal, ended) = match credential {
            LogoutCredential::Access(principal) => {
                let ended = match scope {
                    LogoutScope::Local => u64::from(
                        self.sessions
                            .revoke(principal.user_id, principal.session_id)
                            .await?,
                    ),
                    LogoutScope::Others | LogoutScope::Global => {
                        let keep = (scope == LogoutScope::Others).then_some(principal.session_id);
                        self.sessions.revoke_all(principal.user_id, keep).await?
                    }
                };
                (principal, ended)
            }
            LogoutCredential::Refresh(token) => {
                let now = self.clock.now();
                let claims = match self.tokens.verify_refresh(&token, now) {
                    Ok(claims) => claims,
                    Err(TokenError::Expired | TokenError::Invalid) => {
                        return Err(LogoutError::InvalidToken);
                    }
                    Err(TokenError::Unexpected(e)) => return Err(LogoutError::Unexpected(e)),
                };
                let presented = PresentedRefresh {
                    user_id: claims.user_id,
                    session_id: claims.session_id,
                    presented: claims.token_id,
                    now,
                    grace: self.policy.reuse_grace,
                };
                match self
                    .sessions
                    .end_with_refresh(&presented, scope.sessions())
                    .await?
                {
                    EndOutcome::Ended(ended) => (
                        Principal {
                            user_id: claims.user_id,
                            session_id: claims.session_id,
                        },
                        ended,
                    ),
                    EndOutcome::NotFound => return Err(LogoutError::InvalidToken),
                    EndOutcome::ReuseDetected => {
                        tracing::warn!(
                            user_id = %claims.user_id,
                            session_id = %claims.session_id,
                            ?scope,
                            "spent refresh token presented to log out; session revoked"
                        );
                        self.audit
                            .reuse_detected(claims.user_id, claims.session_id, origin, "to log out")
                            .await;
                        return Err(LogoutError::Reused);
                    }
                }
            }
        };
        self.audit
            .record(
                principal.user_id,
                AuditKind::LoggedOut,
                Some(principal.session_id),
                origin,
                Some(format!("scope={} ended={ended}", scope.as_str())),
            )
            .await;
        Ok(ended)
    }
}

#[cfg(test)]
mod tests;
