//! Token revocation (RFC 7009) by an OAuth client: revoking either token of a session
//! ends the session, so both its tokens stop working at once.

use std::sync::Arc;

use domain::{AuditKind, ClientId};
use tracing::instrument;

use super::audit::{Audit, Origin};
use super::introspect::{TokenKind, verify_either};
use super::shared::store_failures;
use crate::policy::TokenPolicy;
use crate::ports::{
    Clock, EndOutcome, Ports, PresentedRefresh, SessionScope, SessionStore, TokenCodec,
};

/// What a revocation did. Both are a success to the client (RFC 7009 §2.2: an invalid
/// token needs no revoking); the difference is for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The token's session was ended (or was a spent refresh token, which ended it as
    /// reuse).
    Session { reused: bool },
    /// Not a live token of ours: nothing to do.
    Nothing,
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeTokenError {
    /// A genuine token issued to another client (or to the service's own login): the
    /// client may not revoke it.
    #[error("token not issued to this client")]
    OtherClient,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("revocation failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(RevokeTokenError);

pub struct RevokeToken {
    audit: Audit,
    sessions: Arc<dyn SessionStore>,
    tokens: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
    policy: TokenPolicy,
}

impl std::fmt::Debug for RevokeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeToken").finish_non_exhaustive()
    }
}

impl RevokeToken {
    pub(crate) fn new(ports: &Ports, policy: TokenPolicy, audit: Audit) -> Self {
        Self {
            audit,
            sessions: ports.sessions.clone(),
            tokens: ports.tokens.clone(),
            clock: ports.clock.clone(),
            policy,
        }
    }

    /// Revokes `token` (either kind; `hint` only orders the search) for `client`.
    ///
    /// # Errors
    /// [`RevokeTokenError::OtherClient`] for a token of another client; store failures.
    #[instrument(name = "revoke_token", skip_all, fields(client = %client))]
    pub async fn execute(
        &self,
        token: &str,
        hint: Option<TokenKind>,
        client: ClientId,
        origin: Option<&Origin>,
    ) -> Result<Revoked, RevokeTokenError> {
        let now = self.clock.now();
        let Some(verified) = verify_either(self.tokens.as_ref(), token, hint, now)
            .map_err(RevokeTokenError::Unexpected)?
        else {
            return Ok(Revoked::Nothing);
        };
        if verified.client != Some(client) {
            return Err(RevokeTokenError::OtherClient);
        }
        let (user_id, session_id) = (verified.user_id, verified.session_id);
        let revoked = self.revoke(&verified, now).await?;
        match revoked {
            Revoked::Nothing => {}
            Revoked::Session { reused: false } => {
                let detail = format!("scope=local ended=1 client={client}");
                self.audit
                    .record(
                        user_id,
                        AuditKind::LoggedOut,
                        Some(session_id),
                        origin,
                        Some(detail),
                    )
                    .await;
            }
            Revoked::Session { reused: true } => {
                let presented = format!("for revocation by client={client}");
                self.audit
                    .reuse_detected(user_id, session_id, origin, &presented)
                    .await;
            }
        }
        Ok(revoked)
    }

    /// Ends the session `verified` speaks for, as its kind says.
    async fn revoke(
        &self,
        verified: &super::introspect::Verified,
        now: domain::Timestamp,
    ) -> Result<Revoked, RevokeTokenError> {
        let (user_id, session_id) = (verified.user_id, verified.session_id);
        match verified.kind {
            TokenKind::Access => {
                let ended = self.sessions.revoke(user_id, session_id).await?;
                tracing::info!(%user_id, %session_id, ended, "session revoked by access token");
                Ok(if ended {
                    Revoked::Session { reused: false }
                } else {
                    Revoked::Nothing
                })
            }
            TokenKind::Refresh => {
                let presented = PresentedRefresh {
                    user_id,
                    session_id,
                    presented: verified.token_id,
                    now,
                    grace: self.policy.reuse_grace,
                };
                let outcome = self
                    .sessions
                    .end_with_refresh(&presented, SessionScope::This)
                    .await?;
                Ok(match outcome {
                    EndOutcome::Ended(_) => {
                        tracing::info!(%user_id, %session_id, "session revoked by refresh token");
                        Revoked::Session { reused: false }
                    }
                    EndOutcome::ReuseDetected => {
                        tracing::warn!(%user_id, %session_id, "spent refresh token presented for revocation; session revoked");
                        Revoked::Session { reused: true }
                    }
                    EndOutcome::NotFound => Revoked::Nothing,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
