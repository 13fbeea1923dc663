//! The keys, as parsed from configuration: HMAC secrets, Ed25519 private and public keys,
//! and their key ids (`kid`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use secrecy::{SecretSlice, SecretString};
use sha2::{Digest, Sha256};

use crate::rules::{JwtConfigError, KeySlot};

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

    /// The key as `jsonwebtoken` signs with it.
    pub(crate) fn encoding_key(&self) -> Result<EncodingKey, JwtConfigError> {
        let der = self
            .0
            .to_pkcs8_der()
            .map_err(|_| JwtConfigError::BadEd25519Key)?;
        Ok(EncodingKey::from_ed_der(der.as_bytes()))
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

    /// The key as `jsonwebtoken` verifies with it.
    pub(crate) fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_ed_der(self.0.as_bytes())
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
    /// HMAC-SHA256 with a shared secret of at least
    /// [`MIN_SECRET_LEN`](crate::MIN_SECRET_LEN) bytes (the default).
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

/// A short, stable, non-reversible name for an HMAC key: base64url of the first 8 bytes of
/// its SHA-256. 64 bits of a hash of a 256-bit-or-more secret reveal nothing usable about it.
pub(crate) fn hmac_key_id(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    URL_SAFE_NO_PAD.encode(&digest[..8])
}

/// A key as a ring holds it: what identifies it (two equal `RingKey`s are one key listed
/// twice) and what it verifies with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingKey<'a> {
    Hs256(&'a [u8]),
    Ed25519Public(Ed25519PublicKey),
}

impl RingKey<'_> {
    /// The key's `kid`: see [`hmac_key_id`] and [`Ed25519PublicKey::key_id`].
    pub fn kid(&self) -> String {
        match self {
            RingKey::Hs256(secret) => hmac_key_id(secret),
            RingKey::Ed25519Public(public) => public.key_id(),
        }
    }

    /// The one algorithm this key is used with.
    pub fn alg(&self) -> Algorithm {
        match self {
            RingKey::Hs256(_) => Algorithm::HS256,
            RingKey::Ed25519Public(_) => Algorithm::EdDSA,
        }
    }
}

/// The keys of one kind of token, as configured: the signing key and the previous ones.
pub(crate) struct Ring<'a> {
    pub signing: RingKey<'a>,
    pub previous: Vec<RingKey<'a>>,
}

impl<'a> Ring<'a> {
    /// Every key with its place, the signing key first.
    pub fn slots(&self) -> impl Iterator<Item = (KeySlot, RingKey<'a>)> + '_ {
        std::iter::once((KeySlot::Signing, self.signing)).chain(
            self.previous
                .iter()
                .enumerate()
                .map(|(i, key)| (KeySlot::Previous(i), *key)),
        )
    }
}
