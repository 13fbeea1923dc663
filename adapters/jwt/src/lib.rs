//! The [`TokenCodec`](application::ports::TokenCodec) port over `jsonwebtoken`: JWT access and refresh tokens, HS256 by
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
//!   kind (an unknown `kid` is [`TokenError::Invalid`](application::ports::TokenError::Invalid)) and checks the token with that key
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
//!   have checked out: [`TokenError::Expired`](application::ports::TokenError::Expired) therefore means "genuine, but too old", never
//!   "something about this forgery was wrong". The leeway (default 30 s) absorbs clock skew
//!   between servers; an expiry at `t` is expired at `t + leeway`.
//! - **One failure for everything else.** A bad signature, a wrong `typ`, an unknown `kid`
//!   and a malformed token all give [`TokenError::Invalid`](application::ports::TokenError::Invalid), so callers (and attackers
//!   watching responses) learn nothing about which check failed.
//! - **Work is bounded before it starts.** Tokens longer than [`MAX_TOKEN_LEN`] bytes are
//!   refused before any base64 or JSON parsing; keys, headers and each key's [`Validation`](jsonwebtoken::Validation)
//!   are built once in [`JwtCodec::new`], so a request never parses a key.
//! - **Secrets never print.** They are held in [`secrecy`] types (or zeroizing Ed25519 keys)
//!   from configuration to key, and the `Debug` impls here show only key ids.
//!
//! # Layout
//! - `rules`: the bounds ([`MIN_SECRET_LEN`], [`MAX_PREVIOUS_KEYS`], [`MAX_LEEWAY`],
//!   [`MAX_CLAIM_LEN`]) and [`JwtConfigError`], which names the ring and the [`KeySlot`]
//!   of the key at fault so that the server can name its variable.
//! - `keys`: [`AccessSigningKey`], [`AccessVerificationKey`], [`Ed25519PrivateKey`],
//!   [`Ed25519PublicKey`], parsed from configuration, and their key ids.
//! - `config`: [`JwtConfig`] (signing keys, previous keys, issuer, audience, leeway) and
//!   every rule it must keep: [`JwtConfig::check`], and [`JwtConfig::check_strength`] for
//!   production.
//! - `ring`: one kind's signing key and verifiers, built once.
//! - `claims`: the claims as signed and read back.
//! - `codec`: [`JwtCodec`], the `TokenCodec` implementation, built once by
//!   [`JwtCodec::new`].
//! - `strength`: [`check_hmac_secret`], [`WeakSecret`]: whether an HMAC secret is strong
//!   enough for production (a crude but documented test of how it was made; the server
//!   asks [`JwtConfig::check_strength`] with `APP_ENV=production` and names the variable).

mod claims;
mod codec;
mod config;
mod keys;
mod ring;
mod rules;
mod strength;

pub use codec::{ACCESS_TOKEN_TYPE, JwtCodec, MAX_TOKEN_LEN, REFRESH_TOKEN_TYPE};
pub use config::{DEFAULT_LEEWAY, JwtConfig};
pub use keys::{AccessSigningKey, AccessVerificationKey, Ed25519PrivateKey, Ed25519PublicKey};
pub use rules::{
    JwtConfigError, KeySlot, MAX_CLAIM_LEN, MAX_LEEWAY, MAX_PREVIOUS_KEYS, MIN_SECRET_LEN,
};
pub use strength::{
    MIN_DISTINCT_BYTES, MIN_ESTIMATED_BITS, PATTERN_SHARE, WeakSecret, check_hmac_secret,
};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
