//! Logout: revoke sessions, so that their access **and** refresh tokens fail at once
//! (the seed only forgot the access token).
//!
//! A client may prove who it is with its access token, or with its refresh token when
//! the access token has already expired, so that signing out always works.

use std::sync::Arc;

use super::{Principal, store_failures};
use crate::Ports;
use crate::ports::{Clock, SessionStore, TokenCodec, TokenError};

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
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("logout failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(LogoutError);

pub struct Logout {
    sessions: Arc<dyn SessionStore>,
    tokens: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Logout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logout").finish_non_exhaustive()
    }
}

impl Logout {
    pub fn new(ports: &Ports) -> Self {
        Self {
            sessions: ports.sessions.clone(),
            tokens: ports.tokens.clone(),
            clock: ports.clock.clone(),
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
    ) -> Result<u64, LogoutError> {
        let (principal, checked) = match credential {
            LogoutCredential::Access(principal) => (principal, true),
            LogoutCredential::Refresh(token) => {
                let claims = match self.tokens.verify_refresh(&token, self.clock.now()) {
                    Ok(claims) => claims,
                    Err(TokenError::Expired | TokenError::Invalid) => {
                        return Err(LogoutError::InvalidToken);
                    }
                    Err(TokenError::Unexpected(e)) => return Err(LogoutError::Unexpected(e)),
                };
                // Any correctly signed refresh token of the session may end it, even a
                // spent one: ending a session grants nothing.
                (
                    Principal {
                        user_id: claims.user_id,
                        session_id: claims.session_id,
                    },
                    false,
                )
            }
        };
        let ended = match scope {
            LogoutScope::Local => {
                let ended = self
                    .sessions
                    .revoke(principal.user_id, principal.session_id)
                    .await?;
                if !ended && !checked {
                    return Err(LogoutError::InvalidToken);
                }
                u64::from(ended)
            }
            LogoutScope::Others | LogoutScope::Global => {
                // A refresh token alone only speaks for a live session: a dead session's
                // token must not be able to sign the user out everywhere.
                if !checked
                    && !self
                        .sessions
                        .is_active(principal.user_id, principal.session_id)
                        .await?
                {
                    return Err(LogoutError::InvalidToken);
                }
                let keep = (scope == LogoutScope::Others).then_some(principal.session_id);
                self.sessions.revoke_all(principal.user_id, keep).await?
            }
        };
        tracing::info!(user_id = %principal.user_id, session_id = %principal.session_id, ?scope, ended, "logged out");
        Ok(ended)
    }
}
