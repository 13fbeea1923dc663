//! The [`CodeHasher`] port: HMAC-SHA256 of a phone code, keyed with a key the server
//! derives from its refresh-token secret, so every replica computes the same digest with
//! no new secret to distribute.
//!
//! The store keeps only this digest. A six-digit code has a million values, so an
//! unkeyed hash would be reversed by trying them all; without the key, a copy of the
//! store (or a backup) reveals nothing about a pending code. The message binds the user
//! and the number the code was texted to, so a digest proves nothing about any other.

use application::ports::{CodeDigest, CodeHasher, SecretKind};
use domain::{PhoneCode, PhoneNumber, UserId};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: the derived key hashes phone codes and nothing else.
const LABEL: &[u8] = b"jwt-todo phone-code v1";

/// HMAC-SHA256 under a derived key. `Debug` never shows the key.
#[derive(Clone)]
pub struct HmacCodeHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for HmacCodeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacCodeHasher([REDACTED])")
    }
}

impl HmacCodeHasher {
    /// The key is `HMAC-SHA256(secret, "jwt-todo phone-code v1")`. A code pending while
    /// the secret changes no longer verifies: the user asks for a new one.
    pub fn derive(secret: &[u8]) -> Self {
        Self {
            key: hmac_sha256(secret, &[LABEL]),
        }
    }
}

impl CodeHasher for HmacCodeHasher {
    fn secret_digest(&self, user: UserId, kind: SecretKind, secret: &str) -> CodeDigest {
        // After the 16 bytes of the id, a phone code's message goes on with a digit; this
        // one with `#`, then a label that ends at `/`: no message of one kind is another's.
        let message: [&[u8]; 5] = [
            user.as_uuid().as_bytes(),
            b"#",
            kind.label().as_bytes(),
            b"/",
            secret.as_bytes(),
        ];
        match kind {
            SecretKind::LoginChallenge => CodeDigest(hmac_sha256(&self.key, &message)),
            // 80 random bits: unkeyed, so that the digests survive a new refresh secret.
            SecretKind::RecoveryCode => {
                let mut hash = Sha256::new();
                for part in message {
                    hash.update(part);
                }
                CodeDigest(hash.finalize().into())
            }
        }
    }

    fn digest(&self, user: UserId, phone: &PhoneNumber, code: &PhoneCode) -> CodeDigest {
        // The user id has a fixed length (16 bytes) and the number ends at a separator that
        // is no digit, so no two (user, number, code) triples make the same message.
        CodeDigest(hmac_sha256(
            &self.key,
            &[
                user.as_uuid().as_bytes(),
                phone.digits().as_bytes(),
                b"/",
                code.expose().as_bytes(),
            ],
        ))
    }
}

pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use domain::ids::Uuid;

    use super::*;

    const USER: UserId = UserId::from_uuid(Uuid::from_u128(0xA11CE));

    fn phone(raw: &str) -> PhoneNumber {
        PhoneNumber::parse(raw).expect("valid")
    }

    fn code(raw: &str) -> PhoneCode {
        PhoneCode::parse(raw).expect("valid")
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya ", b"want for nothing?"]);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_digest_is_the_hmac_of_user_number_and_code_under_the_derived_key() {
        let secret = b"r".repeat(32);
        let key = hmac_sha256(&secret, &[b"jwt-todo phone-code v1"]);
        let mut message = USER.as_uuid().as_bytes().to_vec();
        message.extend_from_slice(b"4915112345678/123456");
        let expected = hmac_sha256(&key, &[&message]);
        let digest =
            HmacCodeHasher::derive(&secret).digest(USER, &phone("+4915112345678"), &code("123456"));
        assert_eq!(digest, CodeDigest(expected));
        assert_eq!(CodeDigest::from_hex(&digest.to_hex()), Some(digest));
    }

    #[test]
    fn the_digest_binds_user_number_code_and_key() {
        let hasher = HmacCodeHasher::derive(b"secret-one-secret-one-secret-one");
        let base = hasher.digest(USER, &phone("+4915112345678"), &code("123456"));
        assert_eq!(
            base,
            hasher.digest(USER, &phone("+4915112345678"), &code("123456")),
            "deterministic: every replica agrees"
        );
        let others = [
            hasher.digest(
                UserId::from_uuid(Uuid::from_u128(0xB0B)),
                &phone("+4915112345678"),
                &code("123456"),
            ),
            hasher.digest(USER, &phone("+4915112345679"), &code("123456")),
            hasher.digest(USER, &phone("+4915112345678"), &code("123457")),
            HmacCodeHasher::derive(b"secret-two-secret-two-secret-two").digest(
                USER,
                &phone("+4915112345678"),
                &code("123456"),
            ),
            // Moving a digit from the number into the code changes the message too.
            hasher.digest(USER, &phone("+491511234567"), &code("812345")),
        ];
        for other in others {
            assert_ne!(other, base);
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let hasher = HmacCodeHasher::derive(b"secret-one-secret-one-secret-one");
        assert_eq!(format!("{hasher:?}"), "HmacCodeHasher([REDACTED])");
    }
}
