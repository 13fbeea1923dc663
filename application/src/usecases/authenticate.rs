//! Authenticate: turn a bearer access token into a [`Principal`], or refuse.
//!
//! A token is accepted while its signature and claims check out **and** its session is
//! alive in the store: one O(1) lookup per request, which is what makes logout and
//! reuse detection take effect at once rather than when the token's `exp` comes.

use std::sync::Arc;

use domain::AccessClaims;

use super::shared::{Caller, Principal, store_failures};
use crate::ports::Ports;
use crate::ports::{ActiveUser, Clock, SessionStore, TokenCodec, TokenError};

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
    /// The session is alive but its user is gone (deleted out of band).
    #[error("user not found")]
    UserGone,
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
        let claims = self.verify(access_token)?;
        if !self
            .sessions
            .is_active(claims.user_id, claims.session_id)
            .await?
        {
            return Err(AuthError::Revoked);
        }
        Ok(Principal::of(&claims))
    }

    /// [`Authenticate::execute`] and the caller's profile, with the session check and the
    /// profile read in one store round trip.
    ///
    /// # Errors
    /// See [`AuthError`]. A store failure is an error, never a pass: fail closed.
    pub async fn identify(&self, access_token: &str) -> Result<Caller, AuthError> {
        let claims = self.verify(access_token)?;
        match self
            .sessions
            .active_user(claims.user_id, claims.session_id)
            .await?
        {
            ActiveUser::Active(user) => Ok(Caller {
                principal: Principal::of(&claims),
                user,
            }),
            ActiveUser::Revoked => Err(AuthError::Revoked),
            ActiveUser::UserGone => Err(AuthError::UserGone),
        }
    }

    /// The token's signature and claims only, with no store lookup: the first half of
    /// [`Authenticate::execute`] and [`Authenticate::identify`].
    fn verify(&self, access_token: &str) -> Result<AccessClaims, AuthError> {
        match self.tokens.verify_access(access_token, self.clock.now()) {
            Ok(claims) => Ok(claims),
            Err(TokenError::Expired) => Err(AuthError::Expired),
            Err(TokenError::Invalid) => Err(AuthError::InvalidToken),
            Err(TokenError::Unexpected(e)) => Err(AuthError::Unexpected(e)),
        }
    }
}

#[cfg(test)]
mod tests;
