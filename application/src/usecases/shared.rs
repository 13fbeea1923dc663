//! What the use cases share: who is calling, the fields an error can name, page sizes,
//! token pairs, and the mapping of store failures into each use case's error.

use domain::{
    AccessClaims, AuthMethods, ClientId, RefreshClaims, Session, SessionId, Timestamp, TokenId,
    TokenPair, UserId,
};

use crate::policy::TokenPolicy;
use crate::ports::{TokenCodec, TokenError};

/// Who is calling: the outcome of [`Authenticate`](super::Authenticate), handed to every protected use case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: SessionId,
}

impl Principal {
    /// Who the (verified) access token names.
    pub(crate) fn of(claims: &AccessClaims) -> Self {
        Self {
            user_id: claims.user_id,
            session_id: claims.session_id,
        }
    }
}

/// A [`Principal`] with the user's profile, read in the same store round trip as the
/// session check ([`Authenticate::identify`]): for the use cases that need the profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub user: domain::User,
}

/// Which input field a validation error is about, for a precise client error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Username,
    Password,
    Phone,
    Title,
    /// A listing's page size.
    Limit,
    Code,
    /// The password a user chooses to replace theirs.
    NewPassword,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::Password => "password",
            Field::Phone => "phone",
            Field::Title => "title",
            Field::Limit => "limit",
            Field::Code => "code",
            Field::NewPassword => "new_password",
        }
    }
}

/// A requested page size, checked: 1 to [`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE), or the
/// default when none was asked for.
pub(crate) fn page_size(limit: Option<u32>) -> Result<usize, String> {
    let limit = limit.unwrap_or(crate::DEFAULT_PAGE_SIZE);
    if (1..=crate::MAX_PAGE_SIZE).contains(&limit) {
        Ok(limit as usize)
    } else {
        Err(format!(
            "limit must be between 1 and {}",
            crate::MAX_PAGE_SIZE
        ))
    }
}

/// What a token pair is signed for.
pub(crate) struct PairFor {
    pub user_id: UserId,
    pub session_id: SessionId,
    /// `jti` of the refresh token: the one the session will accept next.
    pub refresh_jti: TokenId,
    /// Expiry of the refresh token and so of the session; the access token never outlives it.
    pub session_expires_at: Timestamp,
    pub access_jti: TokenId,
    /// When the login that started the session happened.
    pub auth_time: Timestamp,
    /// `iat` of the refresh token: now for a new token; the original time when a token
    /// already issued is issued again (a grace-window replay), which, HMAC being
    /// deterministic, reproduces it exactly.
    pub refresh_issued_at: Timestamp,
    /// The OAuth client the session was opened for, named in both tokens.
    pub client: Option<ClientId>,
    /// How the session's login was made, named in both tokens (`amr`).
    pub amr: AuthMethods,
}

impl PairFor {
    pub fn session(session: &Session, access_jti: TokenId, client: Option<ClientId>) -> Self {
        Self {
            user_id: session.user_id,
            session_id: session.id,
            refresh_jti: session.refresh_jti,
            session_expires_at: session.expires_at,
            access_jti,
            auth_time: session.created_at,
            refresh_issued_at: session.refreshed_at,
            client,
            amr: session.amr,
        }
    }
}

/// Signs an access/refresh pair. Callers sign before they store anything, so a signing
/// failure changes nothing.
pub(crate) fn issue_pair(
    tokens: &dyn TokenCodec,
    policy: TokenPolicy,
    spec: &PairFor,
    now: Timestamp,
) -> Result<TokenPair, TokenError> {
    let access = AccessClaims {
        user_id: spec.user_id,
        session_id: spec.session_id,
        token_id: spec.access_jti,
        issued_at: now,
        expires_at: now.plus(policy.access_ttl).min(spec.session_expires_at),
        auth_time: spec.auth_time,
        client: spec.client,
        amr: spec.amr,
    };
    let refresh = RefreshClaims {
        user_id: spec.user_id,
        session_id: spec.session_id,
        token_id: spec.refresh_jti,
        issued_at: spec.refresh_issued_at,
        expires_at: spec.session_expires_at,
        auth_time: spec.auth_time,
        client: spec.client,
        amr: spec.amr,
    };
    Ok(TokenPair {
        access_token: tokens.issue_access(&access)?,
        refresh_token: tokens.issue_refresh(&refresh)?,
        issued_at: now,
        access_expires_at: access.expires_at,
        refresh_expires_at: refresh.expires_at,
        session_id: spec.session_id,
    })
}

/// Every use case error carries these two catch-alls; this keeps their conversion from
/// the store's error in one place.
macro_rules! store_failures {
    ($error:ident) => {
        impl From<$crate::ports::StoreError> for $error {
            fn from(err: $crate::ports::StoreError) -> Self {
                match err {
                    $crate::ports::StoreError::Unavailable(e) => $error::Unavailable(e),
                    $crate::ports::StoreError::Unexpected(e) => $error::Unexpected(e),
                }
            }
        }
    };
}
pub(crate) use store_failures;

/// `From<HashError>` for a use-case error with `Overloaded` and `Unexpected` variants: an
/// overloaded hasher asks the client to retry shortly, anything else is unexpected.
macro_rules! hash_failures {
    ($error:ident) => {
        impl From<$crate::ports::HashError> for $error {
            fn from(err: $crate::ports::HashError) -> Self {
                match err {
                    $crate::ports::HashError::Overloaded => $error::Overloaded,
                    $crate::ports::HashError::Unexpected(e) => $error::Unexpected(e),
                }
            }
        }
    };
}
pub(crate) use hash_failures;

/// Token errors that are not the client's fault are unexpected failures of ours.
pub(crate) fn codec_failure(err: TokenError) -> anyhow::Error {
    match err {
        TokenError::Unexpected(e) => e,
        other => anyhow::Error::new(other),
    }
}
