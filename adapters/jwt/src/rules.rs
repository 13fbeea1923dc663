//! The bounds a configuration must keep, and the error that names the one it broke.
//!
//! A leaf module: the keys, the configuration and the codec all report through
//! [`JwtConfigError`]. Every error about one key says which ring it is in (`which`:
//! `"access"` or `"refresh"`) and where ([`KeySlot`]), so that the server can name the
//! variable (and the list entry) that holds it without ever quoting the key.

use std::fmt;
use std::time::Duration;

use crate::strength::WeakSecret;

/// RFC 7518 §3.2: an HS256 key MUST be at least as long as the hash output, 256 bits.
pub const MIN_SECRET_LEN: usize = 32;
/// Upper bound on the leeway: anything larger is no longer clock skew but a longer lifetime.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Upper bound on previous keys per kind: rotation needs one or two, not a key store.
pub const MAX_PREVIOUS_KEYS: usize = 10;
/// Longest `iss` or `aud`: every token carries them, twice per pair.
pub const MAX_CLAIM_LEN: usize = 256;

/// Where a key sits in its ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySlot {
    /// The key that signs (and verifies).
    Signing,
    /// The previous key at this index of the configuration's list (0-based); verifies only.
    Previous(usize),
}

impl fmt::Display for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySlot::Signing => f.write_str("signing key"),
            KeySlot::Previous(i) => write!(f, "previous key {}", i + 1),
        }
    }
}

/// Why a configuration or a key was refused. Never quotes a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtConfigError {
    #[error("the {which} {slot} must be at least {min} bytes long (RFC 7518 §3.2)", min = MIN_SECRET_LEN)]
    SecretTooShort { which: &'static str, slot: KeySlot },
    /// An HMAC secret verifies both kinds: `refresh` is the first refresh key that is also
    /// an access key.
    #[error(
        "the access and refresh secrets must differ (the refresh {refresh} is an access secret)"
    )]
    SameSecret { refresh: KeySlot },
    /// `slot` holds the same key as `earlier`, which comes before it in the ring.
    #[error("the {which} keys list one key twice (the {slot} repeats the {earlier})")]
    DuplicateKey {
        which: &'static str,
        slot: KeySlot,
        earlier: KeySlot,
    },
    #[error("at most {MAX_PREVIOUS_KEYS} previous {which} keys")]
    TooManyPreviousKeys { which: &'static str },
    #[error("not an Ed25519 key in the expected format")]
    BadEd25519Key,
    #[error("the JWT issuer must not be empty")]
    EmptyIssuer,
    #[error("the JWT audience must not be empty")]
    EmptyAudience,
    #[error("the JWT issuer must be at most {MAX_CLAIM_LEN} characters")]
    IssuerTooLong,
    #[error("the JWT audience must be at most {MAX_CLAIM_LEN} characters")]
    AudienceTooLong,
    #[error("the JWT leeway must be at most {} seconds", MAX_LEEWAY.as_secs())]
    LeewayTooLarge,
    /// From [`JwtConfig::check_strength`](crate::JwtConfig::check_strength) only.
    #[error("the {which} {slot} is too weak: it {weakness}")]
    WeakSecret {
        which: &'static str,
        slot: KeySlot,
        weakness: WeakSecret,
    },
}
