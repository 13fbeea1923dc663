//! Idempotency keys: a client's name for one logical write, so that retrying it after a
//! lost reply cannot perform it twice (draft-ietf-httpapi-idempotency-key-header).

use std::fmt;

/// A client-chosen key naming one logical request: 1 to 255 visible ASCII characters
/// (a UUID is the usual choice). Only its owner's requests share its namespace, so keys
/// need to be unique per client, not worldwide.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Idempotency-Key must be 1 to {max} visible ASCII characters (a UUID is a good choice)",
    max = IdempotencyKey::MAX_LEN
)]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, IdempotencyKeyError> {
        let valid =
            (1..=Self::MAX_LEN).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdempotencyKeyError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdempotencyKey {
    /// Keys are opaque client data: shown by length only, so they never forge log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey(len={})", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        for good in [
            "a",
            "8e2b4c3e-5f1d-4c8a-9e1f-2a3b4c5d6e7f",
            &"x".repeat(255),
        ] {
            assert_eq!(IdempotencyKey::parse(good).expect("valid").as_str(), good);
        }
        for bad in ["", " ", "a b", "line\nbreak", "caf\u{e9}", &"x".repeat(256)] {
            assert_eq!(
                IdempotencyKey::parse(bad),
                Err(IdempotencyKeyError),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = IdempotencyKey::parse("secret-ish").expect("valid");
        assert_eq!(format!("{key:?}"), "IdempotencyKey(len=10)");
    }
}
