//! Refresh: spend a refresh token, issue a new pair for the same session.
//!
//! Rotation is one atomic step in the session store. Presenting a refresh token of a
//! live session that is not its current one is a replay, and the store deletes the
//! session (RFC 9700 §4.14.2): the thief and the victim both lose it, and the victim's
//! next login starts clean.

use std::sync::Arc;

use domain::{TokenId, TokenPair};
use tracing::instrument;

use super::{PairFor, codec_failure, issue_pair, store_failures};
use crate::ports::{
    Clock, IdGenerator, Rotation, RotationOutcome, SessionStore, TokenCodec, TokenError,
};
use crate::{Ports, TokenPolicy};

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Malformed, forged, expired, or its session is gone.
    #[error("refresh token invalid")]
    InvalidToken,
    /// A spent refresh token was presented again; its session has been revoked.
    #[error("refresh token reused; session revoked")]
    Reused,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("refresh failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(RefreshError);

pub struct Refresh {
    sessions: Arc<dyn SessionStore>,
    tokens: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    policy: TokenPolicy,
}

impl std::fmt::Debug for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresh")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Refresh {
    pub fn new(ports: &Ports, policy: TokenPolicy) -> Self {
        Self {
            sessions: ports.sessions.clone(),
            tokens: ports.tokens.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            policy,
        }
    }

    /// # Errors
    /// See [`RefreshError`].
    #[instrument(name = "refresh", skip_all)]
    pub async fn execute(&self, refresh_token: &str) -> Result<TokenPair, RefreshError> {
        let now = self.clock.now();
        let claims = match self.tokens.verify_refresh(refresh_token, now) {
            Ok(claims) => claims,
            Err(TokenError::Expired | TokenError::Invalid) => {
                return Err(RefreshError::InvalidToken);
            }
            Err(TokenError::Unexpected(e)) => return Err(RefreshError::Unexpected(e)),
        };
        let rotation = Rotation {
            user_id: claims.user_id,
            session_id: claims.session_id,
            presented: claims.token_id,
            next: TokenId::from_uuid(self.ids.new_uuid()),
            now,
            expires_at: now.plus(self.policy.refresh_ttl),
        };
        // Sign first: once the store has rotated, the presented token is spent, so nothing
        // may fail between the rotation and the answer.
        let spec = PairFor {
            user_id: claims.user_id,
            session_id: claims.session_id,
            refresh_jti: rotation.next,
            session_expires_at: rotation.expires_at,
            access_jti: TokenId::from_uuid(self.ids.new_uuid()),
        };
        let pair = issue_pair(self.tokens.as_ref(), self.policy, &spec, now)
            .map_err(|e| RefreshError::Unexpected(codec_failure(e)))?;
        match self.sessions.rotate(&rotation).await? {
            RotationOutcome::Rotated(_) => {
                tracing::info!(user_id = %claims.user_id, session_id = %claims.session_id, "session refreshed");
                Ok(pair)
            }
            RotationOutcome::ReuseDetected => {
                tracing::warn!(
                    user_id = %claims.user_id,
                    session_id = %claims.session_id,
                    "refresh token reuse detected; session revoked"
                );
                Err(RefreshError::Reused)
            }
            RotationOutcome::NotFound => Err(RefreshError::InvalidToken),
        }
    }
}
