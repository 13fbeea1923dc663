//! OAuth 2.0 client identifiers: which registered client a session was opened for.

use std::fmt;

/// A registered OAuth 2.0 client's `client_id` (RFC 6749 §2.2): 1 to
/// [`ClientId::MAX_LEN`] characters of `A-Z a-z 0-9 . _ ~ -` (URL-unreserved, so it needs
/// no escaping in a form, a URL or HTTP Basic).
///
/// `Copy`, held inline: it travels in every token's claims, which are `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId {
    len: u8,
    bytes: [u8; ClientId::MAX_LEN],
}

/// Why a string is not a [`ClientId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientIdError {
    #[error("a client id must not be empty")]
    Empty,
    #[error("a client id is at most {} characters", ClientId::MAX_LEN)]
    TooLong,
    #[error("a client id may hold only A-Z, a-z, 0-9, '.', '_', '~' and '-'")]
    Character,
}

impl ClientId {
    /// The longest client id.
    pub const MAX_LEN: usize = 64;

    /// # Errors
    /// Empty, longer than [`ClientId::MAX_LEN`], or a character outside the allowed set.
    pub fn parse(raw: &str) -> Result<Self, ClientIdError> {
        if raw.is_empty() {
            return Err(ClientIdError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(ClientIdError::TooLong);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
        {
            return Err(ClientIdError::Character);
        }
        let mut bytes = [0; Self::MAX_LEN];
        bytes[..raw.len()].copy_from_slice(raw.as_bytes());
        Ok(Self {
            // At most MAX_LEN (64), checked above.
            len: u8::try_from(raw.len()).map_err(|_| ClientIdError::TooLong)?,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII was ever copied in (checked in `parse`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClientId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_short_unreserved_ascii() {
        let id = ClientId::parse("resource-server_1.v2~x").expect("as set up");
        assert_eq!(id.as_str(), "resource-server_1.v2~x");
        assert_eq!(id.to_string(), "resource-server_1.v2~x");
        assert_eq!(ClientId::parse(""), Err(ClientIdError::Empty));
        assert_eq!(
            ClientId::parse(&"a".repeat(ClientId::MAX_LEN)).map(|id| id.as_str().len()),
            Ok(ClientId::MAX_LEN)
        );
        assert_eq!(
            ClientId::parse(&"a".repeat(ClientId::MAX_LEN + 1)),
            Err(ClientIdError::TooLong)
        );
        for bad in ["a b", "a:b", "a%20", "é", "a\nb", "a/b"] {
            assert_eq!(
                ClientId::parse(bad),
                Err(ClientIdError::Character),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn equal_ids_compare_equal_whatever_was_parsed_before() {
        assert_eq!(ClientId::parse("abc"), ClientId::parse("abc"));
        assert_ne!(ClientId::parse("abc"), ClientId::parse("abcd"));
    }
}
