//! CSRF tokens for cookie mode.
//!
//! A browser attaches the refresh cookie to any request to `/token/...`, including one a
//! hostile page makes it send. `SameSite=Strict` already keeps the cookie off cross-site
//! requests; the header token is the second, independent lock: a cookie-authenticated
//! refresh or revoke must also carry `X-CSRF-Token`, which only the page that logged in
//! has read from the login response (another origin can neither read that response nor
//! set a custom header on a simple cross-site request).
//!
//! The token is `base64url(HMAC-SHA256(key, session id))`: stateless, the same on every
//! replica, valid for the session's whole life and useless for any other session. The
//! key is derived from the refresh-token secret (`HMAC-SHA256(REFRESH_SECRET, label)`),
//! so there is no new secret to distribute, and it rotates with it: tokens made under a
//! previous refresh secret still verify while that secret is listed as previous.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::SessionId;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: the derived key signs CSRF tokens and nothing else.
const LABEL: &[u8] = b"jwt-todo csrf-token v1";

/// The keys CSRF tokens are made and checked with. Never printed.
#[derive(Clone)]
pub struct CsrfKeys {
    current: [u8; 32],
    previous: Vec<[u8; 32]>,
}

impl std::fmt::Debug for CsrfKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKeys([REDACTED])")
    }
}

impl CsrfKeys {
    /// Keys derived from the refresh-token secret and the previous ones still accepted.
    pub fn derive(refresh_secret: &[u8], previous: &[&[u8]]) -> Self {
        Self {
            current: derive_key(refresh_secret),
            previous: previous.iter().map(|secret| derive_key(secret)).collect(),
        }
    }

    /// The token for a session, under the current key.
    pub fn token(&self, session: SessionId) -> String {
        URL_SAFE_NO_PAD.encode(mac(&self.current, session))
    }

    /// Whether `presented` is the session's token under the current or a previous key,
    /// compared in constant time.
    pub fn verify(&self, session: SessionId, presented: &str) -> bool {
        let presented = presented.as_bytes();
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|key| URL_SAFE_NO_PAD.encode(mac(key, session)))
            // Check every key (no early exit), so timing does not tell which one matched.
            .fold(subtle::Choice::from(0), |matched, expected| {
                matched | expected.as_bytes().ct_eq(presented)
            })
            .into()
    }
}

fn derive_key(secret: &[u8]) -> [u8; 32] {
    hmac_sha256(secret, LABEL)
}

fn mac(key: &[u8; 32], session: SessionId) -> [u8; 32] {
    hmac_sha256(key, session.as_uuid().as_bytes())
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    const SESSION: SessionId = SessionId::from_uuid(Uuid::from_u128(0x5E55));
    const OTHER: SessionId = SessionId::from_uuid(Uuid::from_u128(0x5E56));

    fn keys(secret: &str) -> CsrfKeys {
        CsrfKeys::derive(secret.as_bytes(), &[])
    }

    #[test]
    fn the_token_is_base64url_hmac_of_the_session_under_the_derived_key() {
        let secret = b"r".repeat(32);
        let key = hmac_sha256(&secret, b"jwt-todo csrf-token v1");
        let expected = URL_SAFE_NO_PAD.encode(hmac_sha256(&key, SESSION.as_uuid().as_bytes()));
        let token = CsrfKeys::derive(&secret, &[]).token(SESSION);
        assert_eq!(token, expected);
        assert_eq!(token.len(), 43, "32 bytes, unpadded base64url");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_token_verifies_for_its_session_only() {
        let keys = keys("secret-one-secret-one-secret-one");
        let token = keys.token(SESSION);
        assert!(keys.verify(SESSION, &token));
        assert!(!keys.verify(OTHER, &token));
        assert_ne!(keys.token(OTHER), token);
    }

    #[test]
    fn wrong_empty_or_altered_tokens_fail() {
        let keys = keys("secret-one-secret-one-secret-one");
        let token = keys.token(SESSION);
        assert!(!keys.verify(SESSION, ""));
        assert!(!keys.verify(SESSION, &token[..token.len() - 1]));
        assert!(!keys.verify(SESSION, &format!("{token}A")));
        let mut altered = token.clone().into_bytes();
        altered[0] = if altered[0] == b'A' { b'B' } else { b'A' };
        assert!(!keys.verify(SESSION, &String::from_utf8_lossy(&altered)));
    }

    #[test]
    fn another_secret_makes_other_tokens() {
        let one = keys("secret-one-secret-one-secret-one");
        let two = keys("secret-two-secret-two-secret-two");
        assert_ne!(one.token(SESSION), two.token(SESSION));
        assert!(!two.verify(SESSION, &one.token(SESSION)));
    }

    #[test]
    fn tokens_under_a_previous_secret_verify_after_rotation() {
        let old = keys("secret-one-secret-one-secret-one");
        let rotated = CsrfKeys::derive(
            b"secret-two-secret-two-secret-two",
            &[b"secret-one-secret-one-secret-one"],
        );
        assert!(rotated.verify(SESSION, &old.token(SESSION)));
        assert!(rotated.verify(SESSION, &rotated.token(SESSION)));
        assert_ne!(
            rotated.token(SESSION),
            old.token(SESSION),
            "new tokens use the new key"
        );
    }

    #[test]
    fn debug_never_shows_the_keys() {
        let keys = keys("secret-one-secret-one-secret-one");
        assert_eq!(format!("{keys:?}"), "CsrfKeys([REDACTED])");
    }
}
