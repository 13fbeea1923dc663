//! Issuing and verifying access and refresh tokens.

use domain::{AccessClaims, RefreshClaims, Timestamp};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Well-formed and correctly signed, but past its `exp` (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// Anything else: bad signature, wrong algorithm or type, wrong issuer or audience,
    /// malformed. Deliberately one variant: callers must not branch on why a forgery failed.
    #[error("token invalid")]
    Invalid,
    #[error("token codec failure")]
    Unexpected(#[source] anyhow::Error),
}

/// Issues and verifies tokens. Access and refresh tokens use distinct keys and types, so
/// one kind can never be verified as the other.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait TokenCodec: Send + Sync {
    /// # Errors
    /// [`TokenError::Unexpected`] if signing fails.
    fn issue_access(&self, claims: &AccessClaims) -> Result<String, TokenError>;

    /// # Errors
    /// [`TokenError::Unexpected`] if signing fails.
    fn issue_refresh(&self, claims: &RefreshClaims) -> Result<String, TokenError>;

    /// Checks signature, algorithm, type, issuer, audience and expiry against `now`.
    ///
    /// # Errors
    /// [`TokenError::Expired`] or [`TokenError::Invalid`].
    fn verify_access(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError>;

    /// As [`TokenCodec::verify_access`], for refresh tokens.
    ///
    /// # Errors
    /// [`TokenError::Expired`] or [`TokenError::Invalid`].
    fn verify_refresh(&self, token: &str, now: Timestamp) -> Result<RefreshClaims, TokenError>;
}
