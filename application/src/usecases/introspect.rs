//! Token introspection (RFC 7662): whether a token is live right now, and what it says,
//! for a resource server that is not this service. A live token is one whose signature,
//! type, issuer, audience and expiry check out *and* whose session the store still holds
//! (for a refresh token: whose session still accepts it next), so a logout or a
//! revocation through any replica makes its tokens inactive at once.

use std::sync::Arc;

use domain::{ClientId, SessionId, Timestamp, UserId, Username};
use tracing::instrument;

use super::shared::store_failures;
use crate::ports::{ActiveUser, Clock, Ports, SessionStore, TokenCodec, TokenError};

/// Which kind of token a caller believes it holds (`token_type_hint`). Only an order of
/// search: a token of the other kind is still found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    /// The kind an RFC 7009 / RFC 7662 `token_type_hint` value names; `None` for any
    /// other value, which the RFCs say to ignore.
    pub fn from_hint(hint: &str) -> Option<Self> {
        match hint {
            "access_token" => Some(TokenKind::Access),
            "refresh_token" => Some(TokenKind::Refresh),
            _ => None,
        }
    }

    /// The kinds to try, the hinted one first.
    pub(crate) fn search_order(hint: Option<TokenKind>) -> [TokenKind; 2] {
        match hint {
            Some(TokenKind::Refresh) => [TokenKind::Refresh, TokenKind::Access],
            _ => [TokenKind::Access, TokenKind::Refresh],
        }
    }
}

/// What a live token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveToken {
    pub kind: TokenKind,
    pub user_id: UserId,
    pub username: Username,
    pub session_id: SessionId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// The OAuth client it was issued to; `None` for the service's own login.
    pub client: Option<ClientId>,
}

/// The answer of an introspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Introspection {
    Active(LiveToken),
    /// Expired, revoked, spent, malformed, forged or not ours: RFC 7662 §2.2 says no more.
    Inactive,
}

#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("introspection failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(IntrospectError);

pub struct Introspect {
    sessions: Arc<dyn SessionStore>,
    tokens: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Introspect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspect").finish_non_exhaustive()
    }
}

/// What both token kinds assert, whichever this one is.
pub(crate) struct Verified {
    pub kind: TokenKind,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub token_id: domain::TokenId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub client: Option<ClientId>,
}

/// `token` verified as either kind, the hinted kind first: its claims if it is a genuine
/// token of ours (within the codec's leeway), `None` for anything else. For the
/// operations that take a token of either kind (RFC 7009, RFC 7662).
///
/// # Errors
/// The codec failed (not the token).
pub(crate) fn verify_either(
    tokens: &dyn TokenCodec,
    token: &str,
    hint: Option<TokenKind>,
    now: Timestamp,
) -> Result<Option<Verified>, anyhow::Error> {
    // The two claim types are distinct on purpose; their shared fields, once.
    macro_rules! verified {
        ($kind:expr, $claims:expr) => {
            $claims.map(|c| Verified {
                kind: $kind,
                user_id: c.user_id,
                session_id: c.session_id,
                token_id: c.token_id,
                issued_at: c.issued_at,
                expires_at: c.expires_at,
                client: c.client,
            })
        };
    }
    for kind in TokenKind::search_order(hint) {
        let verified = match kind {
            TokenKind::Access => verified!(kind, tokens.verify_access(token, now)),
            TokenKind::Refresh => verified!(kind, tokens.verify_refresh(token, now)),
        };
        match verified {
            Ok(verified) => return Ok(Some(verified)),
            Err(TokenError::Expired | TokenError::Invalid) => {}
            Err(TokenError::Unexpected(e)) => return Err(e),
        }
    }
    Ok(None)
}

impl Introspect {
    pub fn new(ports: &Ports) -> Self {
        Self {
            sessions: ports.sessions.clone(),
            tokens: ports.tokens.clone(),
            clock: ports.clock.clone(),
        }
    }

    /// # Errors
    /// The store could not answer: the caller must not take that for "inactive" or
    /// "active", so it is an error (503), not an answer.
    #[instrument(name = "introspect", skip_all)]
    pub async fn execute(
        &self,
        token: &str,
        hint: Option<TokenKind>,
    ) -> Result<Introspection, IntrospectError> {
        let Some(verified) = self.verify(token, hint)? else {
            return Ok(Introspection::Inactive);
        };
        let found = match verified.kind {
            TokenKind::Access => {
                // Not from a cache: a resource server acts on this answer, so a logout
                // through any replica must already show.
                self.sessions
                    .active_user_now(verified.user_id, verified.session_id)
                    .await?
            }
            TokenKind::Refresh => {
                self.sessions
                    .refresh_holder(verified.user_id, verified.session_id, verified.token_id)
                    .await?
            }
        };
        Ok(match found {
            ActiveUser::Active(user) => Introspection::Active(LiveToken {
                kind: verified.kind,
                user_id: verified.user_id,
                username: user.username,
                session_id: verified.session_id,
                issued_at: verified.issued_at,
                expires_at: verified.expires_at,
                client: verified.client,
            }),
            ActiveUser::Revoked | ActiveUser::UserGone => Introspection::Inactive,
        })
    }

    /// The token's claims if it is a genuine, unexpired token of either kind (the hinted
    /// kind tried first); `None` otherwise.
    fn verify(
        &self,
        token: &str,
        hint: Option<TokenKind>,
    ) -> Result<Option<Verified>, IntrospectError> {
        let now = self.clock.now();
        let verified = verify_either(self.tokens.as_ref(), token, hint, now)
            .map_err(IntrospectError::Unexpected)?;
        // The codec's leeway is for other verifiers' clocks; ours issued the token, so
        // past `exp` it is over.
        Ok(verified.filter(|v| !v.expires_at.has_passed(now)))
    }
}

#[cfg(test)]
mod tests;
