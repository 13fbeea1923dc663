//! The claims as the codec handles them, and as they travel in a token.

use domain::{
    AccessClaims, AuthMethods, ClientId, RefreshClaims, SessionId, Timestamp, TokenId, UserId,
};
use serde::{Deserialize, Serialize};

/// What access and refresh claims have in common (today: everything). The domain keeps
/// them distinct types; the codec signs and checks both the same way.
pub(crate) struct Claims {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub token_id: TokenId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub auth_time: Timestamp,
    pub client: Option<ClientId>,
    pub amr: AuthMethods,
}

/// `From` both ways between [`Claims`] and each kind's claims, field by field.
macro_rules! same_fields {
    ($($kind:ident),+) => {
        $(same_fields!(@one $kind: user_id, session_id, token_id, issued_at, expires_at, auth_time, client, amr);)+
    };
    (@one $kind:ident: $($field:ident),+) => {
        impl From<&$kind> for Claims {
            fn from(c: &$kind) -> Self {
                Self { $($field: c.$field),+ }
            }
        }

        impl From<Claims> for $kind {
            fn from(c: Claims) -> Self {
                Self { $($field: c.$field),+ }
            }
        }
    };
}

same_fields!(AccessClaims, RefreshClaims);

/// The JWT payload as signed.
#[derive(Serialize)]
pub(crate) struct WireClaimsOut<'a> {
    pub sub: String,
    pub sid: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: &'a str,
    pub aud: &'a str,
    /// When the user logged in (RFC 9068 §2.2.1); the session's lifetime counts from it.
    pub auth_time: i64,
    /// The OAuth client the token was issued to (RFC 9068 §2.2); absent for the
    /// service's own login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    /// How the user logged in (RFC 8176): `["pwd"]`, or `["pwd", "otp", "mfa"]` with a
    /// second factor.
    pub amr: &'static [&'static str],
}

/// The JWT payload as read back. Every field but `client_id` is required; `aud` must be
/// a single string.
#[derive(Deserialize)]
pub(crate) struct WireClaimsIn {
    pub sub: String,
    pub sid: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub auth_time: i64,
    #[serde(default)]
    pub client_id: Option<String>,
    /// Absent from tokens signed before `amr` was: those sessions began with a password.
    #[serde(default)]
    pub amr: Option<Vec<String>>,
}
