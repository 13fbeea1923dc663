//! The [`TokenCodec`] port over `jsonwebtoken`: JWT access and refresh tokens, HS256 by
//! default, Ed25519 (EdDSA) for access tokens on request, several verification keys at once.
//!
//! # Design
//!
//! Every check below closes a known way in which JWT libraries have been fooled
//! (RFC 8725, "JWT Best Current Practices"):
//!
//! - **Two kinds, two key rings, two types.** Access and refresh tokens are signed with
//!   different keys, verified against different key rings *and* carry different `typ`
//!   headers: `at+jwt` (RFC 9068) and our own `rt+jwt`. Either alone would keep the kinds
//!   apart; both together mean that a configuration mistake (the same secret pasted into
//!   both variables) still cannot turn a seven-day refresh token into an access token, nor
//!   the reverse (RFC 8725 §3.11, explicit typing). A token with no `typ`, or the generic
//!   `JWT`, is refused. [`JwtCodec::new`] also refuses any HMAC secret that appears in both
//!   rings, current or previous.
//! - **Keys are chosen by `kid`, and each key pins its algorithm.** Every token names its
//!   key in the `kid` header. Verification looks the `kid` up in the ring of the expected
//!   kind (an unknown `kid` is [`TokenError::Invalid`]) and checks the token with that key
//!   and *its* algorithm only: HS256 for a secret, EdDSA for an Ed25519 public key. So
//!   `alg: none`, an HS384/HS512 variant, or an HS256 token "signed" with an Ed25519
//!   public key as HMAC secret (key confusion, RFC 8725 §2.1) never reaches a signature
//!   check that could pass (RFC 8725 §3.1). `jsonwebtoken` checks once more that the key's
//!   family matches the algorithm.
//! - **Rotation without logging everyone out.** A ring holds one signing key and any number
//!   of *previous* keys accepted for verification only ([`JwtConfig::access_previous`],
//!   [`JwtConfig::refresh_secrets_previous`]). Rotate by making the new key the signing key
//!   and the old one a previous key; remove the old one once every token it signed has
//!   expired (see README, "Rotating keys").
//! - **Key ids never reveal key material.** An HMAC key's `kid` is the first 8 bytes of
//!   SHA-256 of the secret, base64url encoded: stable across restarts and replicas, and 64
//!   bits of a hash of a 256-bit-or-more secret say nothing usable about it. An Ed25519
//!   key's `kid` is its RFC 7638 JWK thumbprint (SHA-256, base64url), which any verifier
//!   can recompute from the published key.
//! - **Public keys are published, secrets never.** [`JwtCodec::jwks`] lists the Ed25519
//!   access keys (signing and previous) as an RFC 7517 JWK set; HMAC keys are never in it,
//!   so with HS256 the set is empty.
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
//!   refused before any base64 or JSON parsing; keys, headers and each key's [`Validation`]
//!   are built once in [`JwtCodec::new`], so a request never parses a key.
//! - **Secrets never print.** They are held in [`secrecy`] types (or zeroizing Ed25519 keys)
//!   from configuration to key, and the `Debug` impls here show only key ids.
//!
//! # Layout
//! - [`JwtConfig`]: signing keys, previous keys, issuer, audience, leeway.
//! - [`AccessSigningKey`], [`AccessVerificationKey`], [`Ed25519PrivateKey`],
//!   [`Ed25519PublicKey`]: the keys, parsed from configuration.
//! - [`JwtCodec`]: the [`TokenCodec`] implementation, built once by [`JwtCodec::new`].
//! - [`JwtConfigError`]: why a configuration or a key was refused.
//! - [`check_hmac_secret`], [`WeakSecret`]: whether an HMAC secret is strong enough for
//!   production (a crude but documented test of how it was made; the server applies it
//!   with `APP_ENV=production` and names the variable).

use std::fmt;
use std::time::Duration;

use application::ports::{TokenCodec, TokenError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::ids::Uuid;
use domain::{AccessClaims, RefreshClaims, SessionId, Timestamp, TokenId, UserId};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod strength;
pub use strength::{
    MIN_DISTINCT_BYTES, MIN_ESTIMATED_BITS, PATTERN_SHARE, WeakSecret, check_hmac_secret,
};

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
/// Upper bound on previous keys per kind: rotation needs one or two, not a key store.
pub const MAX_PREVIOUS_KEYS: usize = 10;

/// An Ed25519 private key for signing access tokens. Zeroized on drop; `Debug` shows only
/// its `kid`.
#[derive(Clone)]
pub struct Ed25519PrivateKey(ed25519_dalek::SigningKey);

impl Ed25519PrivateKey {
    /// Parses a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`), as written by
    /// `openssl genpkey -algorithm ed25519`.
    ///
    /// # Errors
    /// [`JwtConfigError::BadEd25519Key`] if it is not an Ed25519 PKCS#8 PEM key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, JwtConfigError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map(Self)
            .map_err(|_| JwtConfigError::BadEd25519Key)
    }

    /// A fresh key from the OS CSPRNG (development servers without a configured key).
    pub fn generate() -> Self {
        use rand::RngCore as _;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        seed.fill(0);
        Self(key)
    }

    /// The key as PKCS#8 PEM, e.g. to hand a generated key to another process in tests.
    ///
    /// # Errors
    /// [`JwtConfigError::BadEd25519Key`] if encoding fails (it does not for a valid key).
    pub fn to_pkcs8_pem(&self) -> Result<SecretString, JwtConfigError> {
        self.0
            .to_pkcs8_pem(Default::default())
            .map(|pem| SecretString::from(pem.as_str()))
            .map_err(|_| JwtConfigError::BadEd25519Key)
    }

    /// The matching public key.
    pub fn public_key(&self) -> Ed25519PublicKey {
        Ed25519PublicKey(self.0.verifying_key())
    }
}

impl fmt::Debug for Ed25519PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Ed25519PrivateKey")
            .field(&self.public_key().key_id())
            .finish()
    }
}

/// An Ed25519 public key that verifies access tokens.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519PublicKey(ed25519_dalek::VerifyingKey);

impl Ed25519PublicKey {
    /// Parses a public key given either as SPKI PEM (`-----BEGIN PUBLIC KEY-----`) or as the
    /// base64url `x` of its JWK (what `/.well-known/jwks.json` shows).
    ///
    /// # Errors
    /// [`JwtConfigError::BadEd25519Key`] if it is neither, or not a point on the curve.
    pub fn parse(text: &str) -> Result<Self, JwtConfigError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            return ed25519_dalek::VerifyingKey::from_public_key_pem(text)
                .map(Self)
                .map_err(|_| JwtConfigError::BadEd25519Key);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| JwtConfigError::BadEd25519Key)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| JwtConfigError::BadEd25519Key)?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| JwtConfigError::BadEd25519Key)
    }

    /// The JWK `x`: base64url of the 32-byte key (RFC 8037 §2).
    pub fn jwk_x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url): the key's `kid`.
    pub fn key_id(&self) -> String {
        // RFC 7638 §3.2: the required members, lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, self.jwk_x());
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The public JWK: `kty: OKP`, `crv: Ed25519`, `use: sig`, `alg: EdDSA`, `kid`.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(self.key_id()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: self.jwk_x(),
            }),
        }
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Ed25519PublicKey")
            .field(&self.key_id())
            .finish()
    }
}

/// How access tokens are signed.
#[derive(Clone, Debug)]
pub enum AccessSigningKey {
    /// HMAC-SHA256 with a shared secret of at least [`MIN_SECRET_LEN`] bytes (the default).
    Hs256(SecretSlice<u8>),
    /// EdDSA over Ed25519: other services verify with the published public key alone.
    /// (Boxed: the key with its precomputed public half is a few hundred bytes.)
    Ed25519(Box<Ed25519PrivateKey>),
}

/// A key that still verifies access tokens but no longer signs any.
#[derive(Clone, Debug)]
pub enum AccessVerificationKey {
    Hs256(SecretSlice<u8>),
    Ed25519(Ed25519PublicKey),
}

/// What [`JwtCodec::new`] needs. `Debug` shows the secrets as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// Signs access tokens (and verifies them).
    pub access_signing: AccessSigningKey,
    /// Verify access tokens signed before a rotation; sign nothing. HS256 secrets here
    /// also let a switch from HS256 to Ed25519 keep the tokens already issued.
    pub access_previous: Vec<AccessVerificationKey>,
    /// HMAC key of refresh tokens, at least [`MIN_SECRET_LEN`] bytes, never one of the
    /// access secrets.
    pub refresh_secret: SecretSlice<u8>,
    /// Verify refresh tokens signed before a rotation; sign nothing.
    pub refresh_secrets_previous: Vec<SecretSlice<u8>>,
    /// The `iss` claim issued and required.
    pub issuer: String,
    /// The `aud` claim issued and required.
    pub audience: String,
    /// Clock-skew allowance on `exp`, at most [`MAX_LEEWAY`].
    pub leeway: Duration,
}

impl JwtConfig {
    /// An HS256 configuration without previous keys, with the [`DEFAULT_LEEWAY`]. Secrets
    /// from text configuration convert with `SecretSlice::from(text.into_bytes())`.
    pub fn new(
        access_secret: SecretSlice<u8>,
        refresh_secret: SecretSlice<u8>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            access_signing: AccessSigningKey::Hs256(access_secret),
            access_previous: Vec::new(),
            refresh_secret,
            refresh_secrets_previous: Vec::new(),
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
    #[error("the {which} keys list one key twice")]
    DuplicateKey { which: &'static str },
    #[error("at most {MAX_PREVIOUS_KEYS} previous {which} keys")]
    TooManyPreviousKeys { which: &'static str },
    #[error("not an Ed25519 key in the expected format")]
    BadEd25519Key,
    #[error("the JWT issuer must not be empty")]
    EmptyIssuer,
    #[error("the JWT audience must not be empty")]
    EmptyAudience,
    #[error("the JWT leeway must be at most {} seconds", MAX_LEEWAY.as_secs())]
    LeewayTooLarge,
}

/// The key that signs one kind of token, with its header built once.
struct Signer {
    kid: String,
    /// `alg`, `typ`, `kid`: the header of every token this key signs.
    header: Header,
    encoding: EncodingKey,
}

/// A key that verifies one kind of token: its own algorithm and validation rules.
struct Verifier {
    kid: String,
    alg: Algorithm,
    decoding: DecodingKey,
    /// The shared rules (iss, aud, required claims) pinned to `alg` alone.
    validation: Validation,
}

/// Everything needed to sign and check one kind of token, built once.
struct KeyRing {
    /// The exact `typ` this kind carries.
    typ: &'static str,
    signer: Signer,
    /// The signing key's own verifier first, then the previous keys. A handful at most,
    /// so a linear search by `kid` beats any map.
    verifiers: Vec<Verifier>,
}

impl KeyRing {
    fn find(&self, kid: &str) -> Option<&Verifier> {
        self.verifiers.iter().find(|v| v.kid == kid)
    }
}

/// A key as the ring sees it, before the ring is built.
enum RingKey<'a> {
    Hs256(&'a [u8]),
    Ed25519Public(Ed25519PublicKey),
}

impl RingKey<'_> {
    fn verifier(&self, base: &Validation) -> Verifier {
        let (kid, alg, decoding) = match self {
            RingKey::Hs256(secret) => (
                hmac_key_id(secret),
                Algorithm::HS256,
                DecodingKey::from_secret(secret),
            ),
            RingKey::Ed25519Public(public) => (
                public.key_id(),
                Algorithm::EdDSA,
                DecodingKey::from_ed_der(public.0.as_bytes()),
            ),
        };
        let mut validation = base.clone();
        validation.algorithms = vec![alg];
        Verifier {
            kid,
            alg,
            decoding,
            validation,
        }
    }
}

/// A short, stable, non-reversible name for an HMAC key: base64url of the first 8 bytes of
/// its SHA-256. 64 bits of a hash of a 256-bit-or-more secret reveal nothing usable about it.
fn hmac_key_id(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    URL_SAFE_NO_PAD.encode(&digest[..8])
}

fn header(alg: Algorithm, typ: &'static str, kid: &str) -> Header {
    let mut header = Header::new(alg);
    header.typ = Some(typ.to_owned());
    header.kid = Some(kid.to_owned());
    header
}

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
        let kids = |ring: &KeyRing| -> Vec<String> {
            ring.verifiers.iter().map(|v| v.kid.clone()).collect()
        };
        f.debug_struct("JwtCodec")
            .field("access_kid", &self.access.signer.kid)
            .field("access_alg", &self.access.signer.header.alg)
            .field("access_kids_accepted", &kids(&self.access))
            .field("refresh_kid", &self.refresh.signer.kid)
            .field("refresh_kids_accepted", &kids(&self.refresh))
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
    /// [`JwtConfigError`] when a secret is shorter than [`MIN_SECRET_LEN`] bytes, an HMAC
    /// secret is in both the access and the refresh keys, a ring lists one key twice or
    /// more than [`MAX_PREVIOUS_KEYS`] previous keys, the issuer or audience is empty, or
    /// the leeway exceeds [`MAX_LEEWAY`].
    pub fn new(config: JwtConfig) -> Result<Self, JwtConfigError> {
        let access_secrets: Vec<&[u8]> = access_secrets(&config).collect();
        let refresh_secrets: Vec<&[u8]> = refresh_secrets(&config).collect();
        if access_secrets
            .iter()
            .any(|access| refresh_secrets.contains(access))
        {
            return Err(JwtConfigError::SameSecret);
        }
        Self::build(config)
    }

    /// [`JwtCodec::new`] without the distinct-secrets check, so that tests can show the
    /// `typ` check keeps the kinds apart on its own.
    fn build(config: JwtConfig) -> Result<Self, JwtConfigError> {
        if access_secrets(&config).any(|s| s.len() < MIN_SECRET_LEN) {
            return Err(JwtConfigError::SecretTooShort { which: "access" });
        }
        if refresh_secrets(&config).any(|s| s.len() < MIN_SECRET_LEN) {
            return Err(JwtConfigError::SecretTooShort { which: "refresh" });
        }
        if config.access_previous.len() > MAX_PREVIOUS_KEYS {
            return Err(JwtConfigError::TooManyPreviousKeys { which: "access" });
        }
        if config.refresh_secrets_previous.len() > MAX_PREVIOUS_KEYS {
            return Err(JwtConfigError::TooManyPreviousKeys { which: "refresh" });
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

        // The rules every key shares; each verifier pins its own algorithm on a copy.
        let mut base = Validation::new(Algorithm::HS256);
        base.set_issuer(&[&config.issuer]);
        base.set_audience(&[&config.audience]);
        base.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        base.validate_exp = false;
        base.validate_nbf = false;
        base.validate_aud = true;
        base.leeway = 0;

        // Access: the signing key, then the previous keys.
        let (access_signer, access_current) = match &config.access_signing {
            AccessSigningKey::Hs256(secret) => {
                let secret = secret.expose_secret();
                let kid = hmac_key_id(secret);
                (
                    Signer {
                        header: header(Algorithm::HS256, ACCESS_TOKEN_TYPE, &kid),
                        kid,
                        encoding: EncodingKey::from_secret(secret),
                    },
                    RingKey::Hs256(secret),
                )
            }
            AccessSigningKey::Ed25519(private) => {
                let public = private.public_key();
                let kid = public.key_id();
                let private: &Ed25519PrivateKey = private;
                let der = private
                    .0
                    .to_pkcs8_der()
                    .map_err(|_| JwtConfigError::BadEd25519Key)?;
                (
                    Signer {
                        header: header(Algorithm::EdDSA, ACCESS_TOKEN_TYPE, &kid),
                        kid,
                        encoding: EncodingKey::from_ed_der(der.as_bytes()),
                    },
                    RingKey::Ed25519Public(public),
                )
            }
        };
        let access_keys: Vec<RingKey<'_>> = std::iter::once(access_current)
            .chain(config.access_previous.iter().map(|key| match key {
                AccessVerificationKey::Hs256(secret) => RingKey::Hs256(secret.expose_secret()),
                AccessVerificationKey::Ed25519(public) => RingKey::Ed25519Public(*public),
            }))
            .collect();
        let published = access_keys
            .iter()
            .filter_map(|key| match key {
                RingKey::Ed25519Public(public) => Some(*public),
                RingKey::Hs256(_) => None,
            })
            .collect();
        let access = ring(
            ACCESS_TOKEN_TYPE,
            access_signer,
            &access_keys,
            &base,
            "access",
        )?;

        // Refresh: HMAC only; nobody outside this service ever verifies one.
        let refresh_secret = config.refresh_secret.expose_secret();
        let refresh_kid = hmac_key_id(refresh_secret);
        let refresh_signer = Signer {
            header: header(Algorithm::HS256, REFRESH_TOKEN_TYPE, &refresh_kid),
            kid: refresh_kid,
            encoding: EncodingKey::from_secret(refresh_secret),
        };
        let refresh_keys: Vec<RingKey<'_>> = refresh_secrets(&config).map(RingKey::Hs256).collect();
        let refresh = ring(
            REFRESH_TOKEN_TYPE,
            refresh_signer,
            &refresh_keys,
            &base,
            "refresh",
        )?;

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
        self.access
            .verifiers
            .iter()
            .map(|v| v.kid.as_str())
            .collect()
    }

    /// Every `kid` accepted on refresh tokens, the signing key's first.
    pub fn refresh_key_ids(&self) -> Vec<&str> {
        self.refresh
            .verifiers
            .iter()
            .map(|v| v.kid.as_str())
            .collect()
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
        };

        // Last: only a token that is genuine in every other respect may be called expired.
        if verified.expires_at.plus(self.leeway).has_passed(now) {
            return Err(TokenError::Expired);
        }
        Ok(verified)
    }
}

/// Every HMAC secret that verifies access tokens, current (when HS256) and previous.
fn access_secrets(config: &JwtConfig) -> impl Iterator<Item = &[u8]> {
    let current = match &config.access_signing {
        AccessSigningKey::Hs256(secret) => Some(secret.expose_secret()),
        AccessSigningKey::Ed25519(_) => None,
    };
    current
        .into_iter()
        .chain(config.access_previous.iter().filter_map(|key| match key {
            AccessVerificationKey::Hs256(secret) => Some(secret.expose_secret()),
            AccessVerificationKey::Ed25519(_) => None,
        }))
}

/// Every HMAC secret that verifies refresh tokens, current first.
fn refresh_secrets(config: &JwtConfig) -> impl Iterator<Item = &[u8]> {
    std::iter::once(config.refresh_secret.expose_secret()).chain(
        config
            .refresh_secrets_previous
            .iter()
            .map(ExposeSecret::expose_secret),
    )
}

/// Builds a ring, refusing two keys with one `kid` (the same key listed twice: which of
/// the two entries is meant would be a guess).
fn ring(
    typ: &'static str,
    signer: Signer,
    keys: &[RingKey<'_>],
    base: &Validation,
    which: &'static str,
) -> Result<KeyRing, JwtConfigError> {
    let verifiers: Vec<Verifier> = keys.iter().map(|key| key.verifier(base)).collect();
    for (i, verifier) in verifiers.iter().enumerate() {
        if verifiers[..i].iter().any(|v| v.kid == verifier.kid) {
            return Err(JwtConfigError::DuplicateKey { which });
        }
    }
    Ok(KeyRing {
        typ,
        signer,
        verifiers,
    })
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
mod proptests;
#[cfg(test)]
mod tests;
