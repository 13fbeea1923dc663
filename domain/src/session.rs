//! Sessions and the tokens issued for them.
//!
//! A session is one login of one user (a device, a browser). Login creates it; every
//! access token and refresh token carries its id (`sid`). The store holds the session
//! while it lives, so revoking it (logout, reuse detection) ends every token of that
//! login at once, however long their `exp` still runs.
//!
//! Refresh tokens rotate: the session records the `jti` of the one refresh token it will
//! accept next. Presenting it spends it and yields a new pair; presenting any older one
//! of the same session is a replay, which is how a stolen refresh token is noticed
//! (RFC 9700 §4.14.2).

use std::fmt;

use crate::{ClientId, SessionId, Timestamp, TokenId, UserId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// `jti` of the only refresh token this session accepts next.
    pub refresh_jti: TokenId,
    /// `jti` of the refresh token spent by the last rotation: within the reuse grace
    /// window, replaying it returns the pair already issued instead of revoking.
    pub previous_jti: Option<TokenId>,
    pub created_at: Timestamp,
    /// When the last rotation happened (`created_at` until the first).
    pub refreshed_at: Timestamp,
    /// When the current refresh token expires; the store forgets the session then.
    pub expires_at: Timestamp,
    /// The client's `User-Agent` at login, to help a user tell their sessions apart.
    pub user_agent: Option<String>,
    /// How the user proved who they were at login; every token of the session says so.
    pub amr: AuthMethods,
}

/// How a user proved who they are when a session began: the `amr` claim of its tokens
/// (RFC 8176 §2), kept with the session so refreshes carry it on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AuthMethods {
    /// The password alone (`["pwd"]`).
    #[default]
    Password,
    /// The password and a one-time code: a TOTP code or a single-use recovery code
    /// (`["pwd", "otp", "mfa"]`).
    PasswordAndOtp,
}

impl AuthMethods {
    /// The `amr` values (RFC 8176 §2).
    pub const fn amr(self) -> &'static [&'static str] {
        match self {
            AuthMethods::Password => &["pwd"],
            AuthMethods::PasswordAndOtp => &["pwd", "otp", "mfa"],
        }
    }

    /// The inverse of [`AuthMethods::amr`], in any order; `None` for any other set.
    pub fn from_amr<S: AsRef<str>>(values: &[S]) -> Option<Self> {
        [AuthMethods::Password, AuthMethods::PasswordAndOtp]
            .into_iter()
            .find(|methods| {
                let amr = methods.amr();
                amr.len() == values.len() && values.iter().all(|v| amr.contains(&v.as_ref()))
            })
    }

    /// Whether a second factor was used.
    pub const fn is_multi_factor(self) -> bool {
        matches!(self, AuthMethods::PasswordAndOtp)
    }

    /// The `amr` values joined by `,`, as stores keep them.
    pub fn joined(self) -> String {
        self.amr().join(",")
    }

    /// The inverse of [`AuthMethods::joined`]; an empty text (a record from before
    /// `amr`) is [`AuthMethods::Password`].
    pub fn from_joined(raw: &str) -> Option<Self> {
        if raw.is_empty() {
            return Some(AuthMethods::Password);
        }
        Self::from_amr(&raw.split(',').collect::<Vec<_>>())
    }
}

impl Session {
    /// Bound on the stored user agent: it is client-controlled text.
    pub const MAX_USER_AGENT: usize = 256;

    /// Trims a client-supplied user agent to something safe to store and show.
    pub fn clean_user_agent(raw: Option<&str>) -> Option<String> {
        let cleaned: String = raw?
            .chars()
            .filter(|c| !c.is_control())
            .take(Self::MAX_USER_AGENT)
            .collect();
        let cleaned = cleaned.trim();
        (!cleaned.is_empty()).then(|| cleaned.to_owned())
    }
}

/// What an access token asserts once its signature and registered claims checked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub token_id: TokenId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// When the user logged in to start this session (`auth_time`, RFC 9068 §2.2.1).
    pub auth_time: Timestamp,
    /// The OAuth 2.0 client the session was opened for (`client_id`, RFC 9068 §2.2);
    /// `None` for a session of the service's own login.
    pub client: Option<ClientId>,
    /// How the user logged in to start this session (`amr`, RFC 8176).
    pub amr: AuthMethods,
}

/// What a refresh token asserts. A distinct type from [`AccessClaims`] so that the
/// compiler, and the token codec's distinct keys and `typ`, keep the two kinds apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshClaims {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub token_id: TokenId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// When the user logged in to start this session: refreshes never extend a session
    /// past `auth_time` plus the absolute session lifetime.
    pub auth_time: Timestamp,
    /// As [`AccessClaims::client`]. Only that client may spend the token (at the OAuth
    /// token endpoint); the service's own refresh spends only client-less tokens.
    pub client: Option<ClientId>,
    /// As [`AccessClaims::amr`].
    pub amr: AuthMethods,
}

/// An access/refresh token pair as handed to a client. `Debug` hides the tokens: they
/// are bearer credentials and must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub issued_at: Timestamp,
    pub access_expires_at: Timestamp,
    pub refresh_expires_at: Timestamp,
    pub session_id: SessionId,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("issued_at", &self.issued_at)
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("session_id", &self.session_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_cleaned_and_bounded() {
        assert_eq!(Session::clean_user_agent(None), None);
        assert_eq!(Session::clean_user_agent(Some("  \t ")), None);
        assert_eq!(
            Session::clean_user_agent(Some("curl/8\r\nX: y")),
            Some("curl/8X: y".into())
        );
        assert_eq!(
            Session::clean_user_agent(Some(&"a".repeat(1000))).map(|s| s.len()),
            Some(256)
        );
    }

    #[test]
    fn auth_methods_read_back_from_their_claims_and_their_stored_form() {
        for methods in [AuthMethods::Password, AuthMethods::PasswordAndOtp] {
            assert_eq!(AuthMethods::from_amr(methods.amr()), Some(methods));
            assert_eq!(AuthMethods::from_joined(&methods.joined()), Some(methods));
        }
        assert_eq!(
            AuthMethods::from_amr(&["mfa", "pwd", "otp"]),
            Some(AuthMethods::PasswordAndOtp)
        );
        assert_eq!(AuthMethods::from_joined(""), Some(AuthMethods::Password));
        assert_eq!(AuthMethods::from_amr(&["pwd", "pwd"]), None);
        assert_eq!(AuthMethods::from_amr(&["otp"]), None);
        assert_eq!(AuthMethods::from_joined("pwd,sms"), None);
    }

    #[test]
    fn token_pairs_never_print_their_tokens() {
        let pair = TokenPair {
            access_token: "secret-access".into(),
            refresh_token: "secret-refresh".into(),
            issued_at: Timestamp::from_unix_seconds(0),
            access_expires_at: Timestamp::from_unix_seconds(1),
            refresh_expires_at: Timestamp::from_unix_seconds(2),
            session_id: SessionId::from_uuid(uuid::Uuid::nil()),
        };
        let printed = format!("{pair:?}");
        assert!(!printed.contains("secret"));
    }
}
