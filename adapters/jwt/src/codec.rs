//! [`JwtCodec`]: the [`TokenCodec`] over JWTs, built once from a checked [`JwtConfig`].
//! Signing fills the header and claims; verifying picks the key by `kid` in the expected
//! kind's ring and checks everything the crate docs list, `exp` last.

use std::fmt;
use std::time::Duration;

use application::ports::{TokenCodec, TokenError};
use domain::ids::Uuid;
use domain::{
    AccessClaims, AuthMethods, ClientId, RefreshClaims, SessionId, Timestamp, TokenId, UserId,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Validation};
use secrecy::ExposeSecret;

use crate::claims::{Claims, WireClaimsIn, WireClaimsOut};
use crate::config::JwtConfig;
use crate::keys::{AccessSigningKey, Ed25519PublicKey, RingKey};
use crate::ring::KeyRing;
use crate::rules::JwtConfigError;

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The `typ` header of refresh tokens; our own, by analogy with RFC 9068.
pub const REFRESH_TOKEN_TYPE: &str = "rt+jwt";
/// Tokens longer than this are refused unparsed. Ours are about 400 bytes.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The [`TokenCodec`] over JWTs. Cheap to share (`Arc`); never prints its keys.
pub struct JwtCodec {
    access: KeyRing,
    refresh: KeyRing,
    /// The Ed25519 access keys, signing key first: what [`JwtCodec::jwks`] publishes.
    published: Vec<Ed25519PublicKey>,
    issuer: String,
    audience: String,
    leeway: Duration,
}

impl fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCodec")
            .field("access_kid", &self.access.signer.kid)
            .field("access_alg", &self.access.signer.header.alg)
            .field("access_kids_accepted", &self.access.key_ids())
            .field("refresh_kid", &self.refresh.signer.kid)
            .field("refresh_kids_accepted", &self.refresh.key_ids())
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
    /// [`JwtConfigError`] for the first rule of [`JwtConfig::check`] the configuration
    /// breaks.
    pub fn new(config: JwtConfig) -> Result<Self, JwtConfigError> {
        config.check_kinds_apart()?;
        Self::build(config)
    }

    /// [`JwtCodec::new`] without the distinct-secrets check, so that tests can show the
    /// `typ` check keeps the kinds apart on its own.
    pub(crate) fn build(config: JwtConfig) -> Result<Self, JwtConfigError> {
        config.check_keys()?;

        // The rules every key shares; each verifier pins its own algorithm on a copy.
        let mut base = Validation::new(Algorithm::HS256);
        base.set_issuer(&[&config.issuer]);
        base.set_audience(&[&config.audience]);
        base.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        base.validate_exp = false;
        base.validate_nbf = false;
        base.validate_aud = true;
        base.leeway = 0;

        // Access: the signing key, then the previous keys; the Ed25519 ones are published.
        let access_keys = config.access_ring();
        let access_encoding = match &config.access_signing {
            AccessSigningKey::Hs256(secret) => EncodingKey::from_secret(secret.expose_secret()),
            AccessSigningKey::Ed25519(private) => private.encoding_key()?,
        };
        let access = KeyRing::new(ACCESS_TOKEN_TYPE, &access_keys, access_encoding, &base);
        let published = access_keys
            .slots()
            .filter_map(|(_, key)| match key {
                RingKey::Ed25519Public(public) => Some(public),
                RingKey::Hs256(_) => None,
            })
            .collect();

        // Refresh: HMAC only; nobody outside this service ever verifies one.
        let refresh_encoding = EncodingKey::from_secret(config.refresh_secret.expose_secret());
        let refresh = KeyRing::new(
            REFRESH_TOKEN_TYPE,
            &config.refresh_ring(),
            refresh_encoding,
            &base,
        );

        Ok(Self {
            access,
            refresh,
            published,
            issuer: config.issuer,
            audience: config.audience,
            leeway: config.leeway,
        })
    }

    /// The `kid` of the key signing access tokens now (not secret), e.g. for logs.
    pub fn access_key_id(&self) -> &str {
        &self.access.signer.kid
    }

    /// The `kid` of the key signing refresh tokens now (not secret).
    pub fn refresh_key_id(&self) -> &str {
        &self.refresh.signer.kid
    }

    /// Every `kid` accepted on access tokens, the signing key's first.
    pub fn access_key_ids(&self) -> Vec<&str> {
        self.access.key_ids()
    }

    /// Every `kid` accepted on refresh tokens, the signing key's first.
    pub fn refresh_key_ids(&self) -> Vec<&str> {
        self.refresh.key_ids()
    }

    /// The algorithm signing access tokens now.
    pub fn access_algorithm(&self) -> Algorithm {
        self.access.signer.header.alg
    }

    /// The public keys that verify access tokens, as an RFC 7517 JWK set for
    /// `/.well-known/jwks.json`: the Ed25519 signing key and previous Ed25519 keys. HMAC
    /// secrets are never published, so with HS256 the set is empty.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.published.iter().map(Ed25519PublicKey::jwk).collect(),
        }
    }

    /// The Ed25519 public keys behind [`JwtCodec::jwks`], signing key first.
    pub fn published_keys(&self) -> &[Ed25519PublicKey] {
        &self.published
    }

    fn issue(&self, keys: &KeyRing, claims: Claims) -> Result<String, TokenError> {
        let wire = WireClaimsOut {
            sub: claims.user_id.to_string(),
            sid: claims.session_id.to_string(),
            jti: claims.token_id.to_string(),
            iat: claims.issued_at.unix_seconds(),
            exp: claims.expires_at.unix_seconds(),
            iss: &self.issuer,
            aud: &self.audience,
            auth_time: claims.auth_time.unix_seconds(),
            client_id: claims.client.as_ref().map(ClientId::as_str),
            amr: claims.amr.amr(),
        };
        jsonwebtoken::encode(&keys.signer.header, &wire, &keys.signer.encoding)
            .map_err(|e| TokenError::Unexpected(anyhow::Error::new(e).context("signing a JWT")))
    }

    fn verify(&self, keys: &KeyRing, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        // The key is chosen by `kid` in this kind's ring only; the token's `alg` chooses
        // nothing. A token without a `kid`, or with one we do not hold, stops here.
        let unverified = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let key = unverified
            .kid
            .as_deref()
            .and_then(|kid| keys.find(kid))
            .ok_or(TokenError::Invalid)?;
        // Checks the signature with that key, the token's `alg` against the key's one
        // algorithm, the presence of exp/sub/iss/aud, and iss/aud against ours.
        let data = jsonwebtoken::decode::<WireClaimsIn>(token, &key.decoding, &key.validation)
            .map_err(|_| TokenError::Invalid)?;
        let header = data.header;
        let claims = data.claims;

        let header_ok = header.alg == key.alg
            && header.typ.as_deref().is_some_and(|typ| type_matches(typ, keys.typ))
            && header.kid.as_deref() == Some(key.kid.as_str())
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
            client: claims
                .client_id
                .as_deref()
                .map(ClientId::parse)
                .transpose()
                .map_err(|_| TokenError::Invalid)?,
            amr: match &claims.amr {
                None => AuthMethods::Password,
                Some(amr) => AuthMethods::from_amr(amr).ok_or(TokenError::Invalid)?,
            },
        };

        // Last: only a token that is genuine in every other respect may be called expired.
        if verified.expires_at.plus(self.leeway).has_passed(now) {
            return Err(TokenError::Expired);
        }
        Ok(verified)
    }
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
