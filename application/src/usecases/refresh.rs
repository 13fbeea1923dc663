//! Refresh: spend a refresh token, issue a new pair for the same session.
//!
//! Rotation is one atomic step in the session store. Presenting a refresh token of a
//! live session that is not its current one is a replay, and the store deletes the
//! session (RFC 9700 §4.14.2): the thief and the victim both lose it, and the victim's
//! next login starts clean.

use std::sync::Arc;

use domain::{AuditKind, ClientId, SessionId, TokenId, TokenPair};
use tracing::instrument;

use super::audit::{Audit, Origin};
use super::shared::{PairFor, codec_failure, issue_pair, store_failures};
use crate::ports::{
    Clock, IdGenerator, Rotation, RotationOutcome, SessionStore, TokenCodec, TokenError,
};
use crate::{policy::TokenPolicy, ports::Ports};

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
    audit: Audit,
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
    pub(crate) fn new(ports: &Ports, policy: TokenPolicy, audit: Audit) -> Self {
        Self {
            audit,
            sessions: ports.sessions.clone(),
            tokens: ports.tokens.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            policy,
        }
    }

    /// The session a refresh token belongs to, if its signature and expiry check out;
    /// the store is not asked and nothing is spent. For an inbound adapter that must bind
    /// a request to the session before acting on it (the CSRF check of cookie mode): the
    /// token still has to pass [`Refresh::execute`] or the logout to do anything.
    ///
    /// # Errors
    /// [`RefreshError::InvalidToken`] for a malformed, forged or expired token.
    pub fn session_of(&self, refresh_token: &str) -> Result<SessionId, RefreshError> {
        match self.tokens.verify_refresh(refresh_token, self.clock.now()) {
            Ok(claims) => Ok(claims.session_id),
            Err(TokenError::Expired | TokenError::Invalid) => Err(RefreshError::InvalidToken),
            Err(TokenError::Unexpected(e)) => Err(RefreshError::Unexpected(e)),
        }
    }

    /// # Errors
    /// See [`RefreshError`].
    #[instrument(name = "refresh", skip_all)]
    pub async fn execute(
        &self,
        refresh_token: &str,
        client: Option<ClientId>,
        origin: Option<&Origin>,
    ) -> Result<TokenPair, RefreshError> {
        let now = self.clock.now();
        let claims = match self.tokens.verify_refresh(refresh_token, now) {
            Ok(claims) => claims,
            Err(TokenError::Expired | TokenError::Invalid) => {
                return Err(RefreshError::InvalidToken);
            }
            Err(TokenError::Unexpected(e)) => return Err(RefreshError::Unexpected(e)),
        };
        // A token spends only where it was issued: an OAuth client's at the token endpoint
        // by that client, the service's own at its own refresh. Checked before the store
        // is asked, so a token presented in the wrong place spends nothing and is not
        // taken for reuse.
        if claims.client != client {
            tracing::info!(
                session_id = %claims.session_id,
                "refresh token presented by a client it was not issued to"
            );
            return Err(RefreshError::InvalidToken);
        }
        // The absolute lifetime, counted from the login, caps every refresh.
        let expires_at = self.policy.session_expiry(now, claims.auth_time);
        if expires_at.has_passed(now) {
            return Err(RefreshError::InvalidToken);
        }
        let rotation = Rotation {
            user_id: claims.user_id,
            session_id: claims.session_id,
            presented: claims.token_id,
            next: TokenId::from_uuid(self.ids.new_uuid()),
            now,
            expires_at,
            grace: self.policy.reuse_grace,
            // In the trail with the rotation itself, in the same store step.
            trail: Some(self.audit.entry(
                AuditKind::Refreshed,
                Some(claims.session_id),
                origin,
                None,
            )),
        };
        // Sign first: once the store has rotated, the presented token is spent, so nothing
        // may fail between the rotation and the answer.
        let spec = PairFor {
            user_id: claims.user_id,
            session_id: claims.session_id,
            refresh_jti: rotation.next,
            session_expires_at: rotation.expires_at,
            access_jti: TokenId::from_uuid(self.ids.new_uuid()),
            auth_time: claims.auth_time,
            refresh_issued_at: now,
            client: claims.client,
            // Signed into the refresh token at login: the session keeps how it began.
            amr: claims.amr,
        };
        let pair = issue_pair(self.tokens.as_ref(), self.policy, &spec, now)
            .map_err(|e| RefreshError::Unexpected(codec_failure(e)))?;
        match self.sessions.rotate(&rotation).await? {
            RotationOutcome::Rotated(_) => {
                if let Some(entry) = &rotation.trail {
                    self.audit.stored_with(claims.user_id, entry);
                }
                Ok(pair)
            }
            RotationOutcome::Replayed(session) => {
                // Two tabs refreshed at once: the loser gets the winner's refresh token
                // again (reproduced exactly) and a fresh access token for the session.
                tracing::info!(
                    user_id = %claims.user_id,
                    session_id = %claims.session_id,
                    "refresh replayed within the grace window; same pair answered"
                );
                let access_jti = TokenId::from_uuid(self.ids.new_uuid());
                issue_pair(
                    self.tokens.as_ref(),
                    self.policy,
                    &PairFor::session(&session, access_jti, claims.client),
                    now,
                )
                .map_err(|e| RefreshError::Unexpected(codec_failure(e)))
            }
            RotationOutcome::ReuseDetected => {
                tracing::warn!(
                    user_id = %claims.user_id,
                    session_id = %claims.session_id,
                    "refresh token reuse detected; session revoked"
                );
                self.audit
                    .reuse_detected(claims.user_id, claims.session_id, origin, "at refresh")
                    .await;
                Err(RefreshError::Reused)
            }
            RotationOutcome::NotFound => Err(RefreshError::InvalidToken),
        }
    }
}

#[cfg(test)]
mod tests;
