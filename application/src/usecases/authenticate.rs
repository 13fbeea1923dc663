//! Authenticate: turn a bearer access token into a [`Principal`], or refuse.
//!
//! A token is accepted while its signature and claims check out **and** its session is
//! alive in the store: one O(1) lookup per request, which is what makes logout and
//! reuse detection take effect at once rather than when the token's `exp` comes.

use std::sync::Arc;

use super::{Principal, store_failures};
use crate::Ports;
use crate::ports::{Clock, SessionStore, TokenCodec, TokenError};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Malformed, forged, wrong type, wrong issuer or audience.
    #[error("access token invalid")]
    InvalidToken,
    #[error("access token expired")]
    Expired,
    /// Correctly signed and unexpired, but its session was logged out or revoked.
    #[error("session revoked")]
    Revoked,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("authentication failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(AuthError);

pub struct Authenticate {
    sessions: Arc<dyn SessionStore>,
    tokens: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticate").finish_non_exhaustive()
    }
}

impl Authenticate {
    pub fn new(ports: &Ports) -> Self {
        Self {
            sessions: ports.sessions.clone(),
            tokens: ports.tokens.clone(),
            clock: ports.clock.clone(),
        }
    }

    /// # Errors
    /// See [`AuthError`]. A store failure is an error, never a pass: fail closed.
    pub async fn execute(&self, access_token: &str) -> Result<Principal, AuthError> {
        let claims = match self.tokens.verify_access(access_token, self.clock.now()) {
            Ok(claims) => claims,
            Err(TokenError::Expired) => return Err(AuthError::Expired),
            Err(TokenError::Invalid) => return Err(AuthError::InvalidToken),
            Err(TokenError::Unexpected(e)) => return Err(AuthError::Unexpected(e)),
        };
        if !self
            .sessions
            .is_active(claims.user_id, claims.session_id)
            .await?
        {
            return Err(AuthError::Revoked);
        }
        Ok(Principal {
            user_id: claims.user_id,
            session_id: claims.session_id,
        })
    }
}
