//! The [`TokenCodec`] port over `jsonwebtoken`: HS256 JWTs for access and refresh tokens.
//!
//! # Design
//!
//! Every check below closes a known way in which JWT libraries have been fooled
//! (RFC 8725, "JWT Best Current Practices"):
//!
//! - **Two kinds, two keys, two types.** Access and refresh tokens are signed with different
//!   secrets *and* carry different `typ` headers: `at+jwt` (RFC 9068) and our own `rt+jwt`.
//!   Either alone would keep the kinds apart; both together mean that a configuration mistake
//!   (the same secret pasted into both variables) still cannot turn a seven-day refresh token
//!   into an access token, nor the reverse (RFC 8725 §3.11, explicit typing). A token with no
//!   `typ`, or the generic `JWT`, is refused. [`JwtCodec::new`] also refuses equal secrets.
//! - **The algorithm is pinned.** Verification accepts HS256 and nothing else, whatever the
//!   token's header claims, so `alg: none`, an HS384/HS512 variant or an algorithm-confusion
//!   attempt never reaches a signature check that could pass (RFC 8725 §3.1).
//! - **`iss` and `aud` are required and checked**, and so are `sub`, `sid` and `jti`, which
//!   must be canonical (lower-case, hyphenated) UUIDs.
//! - **We check `exp` ourselves.** `jsonwebtoken` would compare `exp` with the system clock;
//!   the use cases pass `now` from the `Clock` port, so expiry is tested without sleeping and
//!   every part of the service agrees on one clock. `jsonwebtoken`'s own check is switched off
//!   and `exp + leeway` is compared with `now` *after* the signature and every other claim
//!   have checked out: [`TokenError::Expired`] therefore means "genuine, but too old", never
//!   "something about this forgery was wrong". The leeway (default 30 s) absorbs clock skew
//!   between servers; an expiry at `t` is expired at `t + leeway`.
//! - **One failure for everything else.** A bad signature, a wrong `typ`, an unknown `kid`
//!   and a malformed token all give [`TokenError::Invalid`], so callers (and attackers
//!   watching responses) learn nothing about which check failed.
//! - **Work is bounded before it starts.** Tokens longer than [`MAX_TOKEN_LEN`] bytes are
//!   refused before any base64 or JSON parsing; keys, headers and the [`Validation`] are
//!   built once in [`JwtCodec::new`], so a request never parses a key.
//! - **Key ids for rotation.** Each header carries a `kid`: the first 8 bytes of SHA-256 of
//!   the secret, base64url encoded. It is stable across restarts, says nothing usable about
//!   the secret, and lets a later version hold several keys and pick one by `kid`. Today a
//!   token whose `kid` is not the current key's is refused.
//! - **Secrets never print.** They are held in [`secrecy`] types from configuration to key,
//!   and the `Debug` impls here show only key ids.
//!
//! # Layout
//! - [`JwtConfig`]: secrets, issuer, audience, leeway.
//! - [`JwtCodec`]: the [`TokenCodec`] implementation, built once by [`JwtCodec::new`].
//! - [`JwtConfigError`]: why a configuration was refused.

use std::fmt;
use std::time::Duration;

use application::ports::{TokenCodec, TokenError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::ids::Uuid;
use domain::{AccessClaims, RefreshClaims, SessionId, Timestamp, TokenId, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The `typ` header of refresh tokens; our own, by analogy with RFC 9068.
pub const REFRESH_TOKEN_TYPE: &str = "rt+jwt";
/// Tokens longer than this are refused unparsed. Ours are about 400 bytes.
pub const MAX_TOKEN_LEN: usize = 4096;
/// RFC 7518 §3.2: an HS256 key MUST be at least as long as the hash output, 256 bits.
pub const MIN_SECRET_LEN: usize = 32;
/// The clock-skew allowance used when none is configured.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Upper bound on the leeway: anything larger is no longer clock skew but a longer lifetime.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// What [`JwtCodec::new`] needs. `Debug` shows the secrets as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// HMAC key of access tokens, at least [`MIN_SECRET_LEN`] bytes.
    pub access_secret: SecretSlice<u8>,
    /// HMAC key of refresh tokens, at least [`MIN_SECRET_LEN`] bytes, different from
    /// `access_secret`.
    pub refresh_secret: SecretSlice<u8>,
    /// The `iss` claim issued and required.
    pub issuer: String,
    /// The `aud` claim issued and required.
    pub audience: String,
    /// Clock-skew allowance on `exp`, at most [`MAX_LEEWAY`].
    pub leeway: Duration,
}

impl JwtConfig {
    /// A configuration with the [`DEFAULT_LEEWAY`]. Secrets from text configuration convert
    /// with `SecretSlice::from(text.into_bytes())`.
    pub fn new(
        access_secret: SecretSlice<u8>,
        refresh_secret: SecretSlice<u8>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            access_secret,
            refresh_secret,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY,
        }
    }
}

/// Why [`JwtCodec::new`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtConfigError {
    #[error("the {which} secret must be at least {min} bytes long (RFC 7518 §3.2)", min = MIN_SECRET_LEN)]
    SecretTooShort { which: &'static str },
    #[error("the access and refresh secrets must differ")]
    SameSecret,
    #[error("the JWT issuer must not be empty")]
    EmptyIssuer,
    #[error("the JWT audience must not be empty")]
    EmptyAudience,
    #[error("the JWT leeway must be at most {} seconds", MAX_LEEWAY.as_secs())]
    LeewayTooLarge,
}

/// Everything needed to sign and check one kind of token, built once.
struct KeyMaterial {
    /// The exact `typ` this kind carries.
    typ: &'static str,
    /// Derived from the secret; see the crate docs.
    kid: String,
    /// `alg: HS256`, `typ`, `kid`: the header of every token of this kind.
    header: Header,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl KeyMaterial {
    fn new(typ: &'static str, secret: &[u8]) -> Self {
        let kid = key_id(secret);
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(kid.clone());
        Self {
            typ,
            kid,
            header,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

/// A short, stable, non-reversible name for a key: base64url of the first 8 bytes of its
/// SHA-256. 64 bits of a hash of a 256-bit-or-more secret reveal nothing usable about it.
fn key_id(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    URL_SAFE_NO_PAD.encode(&digest[..8])
}

/// The [`TokenCodec`] over HS256 JWTs. Cheap to share (`Arc`); never prints its keys.
pub struct JwtCodec {
    access: KeyMaterial,
    refresh: KeyMaterial,
    /// Pinned to HS256, requires and checks `iss`/`aud`, requires `exp`/`sub`; its own
    /// `exp` check is off (see the crate docs).
    validation: Validation,
    issuer: String,
    audience: String,
    leeway: Duration,
}

impl fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCodec")
            .field("access_kid", &self.access.kid)
            .field("refresh_kid", &self.refresh.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl JwtCodec {
    /// Builds keys, headers and validation rules once.
    ///
    /// # Errors
    /// [`JwtConfigError`] when a secret is shorter than [`MIN_SECRET_LEN`] bytes, the two
    /// secrets are equal, the issuer or audience is empty, or the leeway exceeds
    /// [`MAX_LEEWAY`].
    pub fn new(config: JwtConfig) -> Result<Self, JwtConfigError> {
        if config.access_secret.expose_secret() == config.refresh_secret.expose_secret() {
            return Err(JwtConfigError::SameSecret);
        }
        Self::build(config)
    }

    /// [`JwtCodec::new`] without the distinct-secrets check, so that tests can show the
    /// `typ` check keeps the kinds apart on its own.
    fn build(config: JwtConfig) -> Result<Self, JwtConfigError> {
        let access_secret = config.access_secret.expose_secret();
        let refresh_secret = config.refresh_secret.expose_secret();
        if access_secret.len() < MIN_SECRET_LEN {
            return Err(JwtConfigError::SecretTooShort { which: "access" });
        }
        if refresh_secret.len() < MIN_SECRET_LEN {
            return Err(JwtConfigError::SecretTooShort { which: "refresh" });
        }
        if config.issuer.is_empty() {
            return Err(JwtConfigError::EmptyIssuer);
        }
        if config.audience.is_empty() {
            return Err(JwtConfigError::EmptyAudience);
        }
        if config.leeway > MAX_LEEWAY {
            return Err(JwtConfigError::LeewayTooLarge);
        }

        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = true;
        validation.leeway = 0;

        Ok(Self {
            access: KeyMaterial::new(ACCESS_TOKEN_TYPE, access_secret),
            refresh: KeyMaterial::new(REFRESH_TOKEN_TYPE, refresh_secret),
            validation,
            issuer: config.issuer,
            audience: config.audience,
            leeway: config.leeway,
        })
    }

    /// The `kid` of access tokens (not secret), e.g. for logs at start-up.
    pub fn access_key_id(&self) -> &str {
        &self.access.kid
    }

    /// The `kid` of refresh tokens (not secret).
    pub fn refresh_key_id(&self) -> &str {
        &self.refresh.kid
    }

    fn issue(&self, keys: &KeyMaterial, claims: Claims) -> Result<String, TokenError> {
        let wire = WireClaimsOut {
            sub: claims.user_id.to_string(),
            sid: claims.session_id.to_string(),
            jti: claims.token_id.to_string(),
            iat: claims.issued_at.unix_seconds(),
            exp: claims.expires_at.unix_seconds(),
            iss: &self.issuer,
            aud: &self.audience,
            auth_time: claims.auth_time.unix_seconds(),
        };
        jsonwebtoken::encode(&keys.header, &wire, &keys.encoding)
            .map_err(|e| TokenError::Unexpected(anyhow::Error::new(e).context("signing a JWT")))
    }

    fn verify(
        &self,
        keys: &KeyMaterial,
        token: &str,
        now: Timestamp,
    ) -> Result<Claims, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        // Checks the signature with this kind's key, the algorithm against the pinned one,
        // the presence of exp/sub/iss/aud, and iss/aud against ours.
        let data = jsonwebtoken::decode::<WireClaimsIn>(token, &keys.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        let header = data.header;
        let claims = data.claims;

        let header_ok = header.alg == Algorithm::HS256
            && header.typ.as_deref().is_some_and(|typ| type_matches(typ, keys.typ))
            && header.kid.as_deref() == Some(keys.kid.as_str())
            // RFC 7515 §4.1.11: critical extensions we do not understand must be refused.
            && header.crit.is_none();
        // Already checked by `Validation`; repeated because it costs nothing.
        let audience_ok = claims.iss == self.issuer && claims.aud == self.audience;
        if !header_ok || !audience_ok || claims.iat > claims.exp || claims.auth_time > claims.iat {
            return Err(TokenError::Invalid);
        }

        let verified = Claims {
            user_id: UserId::from_uuid(canonical_uuid(&claims.sub)?),
            session_id: SessionId::from_uuid(canonical_uuid(&claims.sid)?),
            token_id: TokenId::from_uuid(canonical_uuid(&claims.jti)?),
            issued_at: Timestamp::from_unix_seconds(claims.iat),
            expires_at: Timestamp::from_unix_seconds(claims.exp),
            auth_time: Timestamp::from_unix_seconds(claims.auth_time),
        };

        // Last: only a token that is genuine in every other respect may be called expired.
        if verified.expires_at.plus(self.leeway).has_passed(now) {
            return Err(TokenError::Expired);
        }
        Ok(verified)
    }
}

/// RFC 7515 §4.1.9: `typ` is a media type, compared case-insensitively, and the
/// `application/` prefix may be left out; RFC 9068 §4 accepts both spellings.
fn type_matches(typ: &str, expected: &str) -> bool {
    let bare = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    bare.eq_ignore_ascii_case(expected)
}

/// Parses a UUID in exactly the form we issue (lower-case, hyphenated), so that no two
/// spellings of one identifier exist.
fn canonical_uuid(raw: &str) -> Result<Uuid, TokenError> {
    let uuid = Uuid::try_parse(raw).map_err(|_| TokenError::Invalid)?;
    let mut buffer = Uuid::encode_buffer();
    if uuid.hyphenated().encode_lower(&mut buffer) == raw {
        Ok(uuid)
    } else {
        Err(TokenError::Invalid)
    }
}

/// What access and refresh claims have in common (today: everything).
struct Claims {
    user_id: UserId,
    session_id: SessionId,
    token_id: TokenId,
    issued_at: Timestamp,
    expires_at: Timestamp,
    auth_time: Timestamp,
}

impl From<&AccessClaims> for Claims {
    fn from(c: &AccessClaims) -> Self {
        Self {
            user_id: c.user_id,
            session_id: c.session_id,
            token_id: c.token_id,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
            auth_time: c.auth_time,
        }
    }
}

impl From<&RefreshClaims> for Claims {
    fn from(c: &RefreshClaims) -> Self {
        Self {
            user_id: c.user_id,
            session_id: c.session_id,
            token_id: c.token_id,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
            auth_time: c.auth_time,
        }
    }
}

impl From<Claims> for AccessClaims {
    fn from(c: Claims) -> Self {
        Self {
            user_id: c.user_id,
            session_id: c.session_id,
            token_id: c.token_id,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
            auth_time: c.auth_time,
        }
    }
}

impl From<Claims> for RefreshClaims {
    fn from(c: Claims) -> Self {
        Self {
            user_id: c.user_id,
            session_id: c.session_id,
            token_id: c.token_id,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
            auth_time: c.auth_time,
        }
    }
}

/// The JWT payload as signed.
#[derive(Serialize)]
struct WireClaimsOut<'a> {
    sub: String,
    sid: String,
    jti: String,
    iat: i64,
    exp: i64,
    iss: &'a str,
    aud: &'a str,
    /// When the user logged in (RFC 9068 §2.2.1); the session's lifetime counts from it.
    auth_time: i64,
}

/// The JWT payload as read back. Every field is required; `aud` must be a single string.
#[derive(Deserialize)]
struct WireClaimsIn {
    sub: String,
    sid: String,
    jti: String,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
    auth_time: i64,
}

impl TokenCodec for JwtCodec {
    fn issue_access(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        self.issue(&self.access, claims.into())
    }

    fn issue_refresh(&self, claims: &RefreshClaims) -> Result<String, TokenError> {
        self.issue(&self.refresh, claims.into())
    }

    fn verify_access(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError> {
        self.verify(&self.access, token, now).map(Into::into)
    }

    fn verify_refresh(&self, token: &str, now: Timestamp) -> Result<RefreshClaims, TokenError> {
        self.verify(&self.refresh, token, now).map(Into::into)
    }
}

#[cfg(test)]
mod tests;
