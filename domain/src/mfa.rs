//! The second factor's values: TOTP codes, recovery codes and login challenges, as users
//! and clients type and send them.

use std::fmt;

use crate::UserId;
use crate::ids::Uuid;

/// What a second-factor field holds: a 6-digit TOTP code, or one of the user's recovery
/// codes. Surrounding whitespace (a paste) is forgiven; in a recovery code, so are case,
/// spaces and dashes. `Debug` shows only which it is.
#[derive(Clone, PartialEq, Eq)]
pub enum SecondFactorCode {
    Totp(String),
    Recovery(RecoveryCode),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("code must be the 6 digits of the authenticator app, or a recovery code")]
pub struct SecondFactorCodeError;

impl SecondFactorCode {
    pub const TOTP_DIGITS: usize = 6;

    pub fn parse(raw: &str) -> Result<Self, SecondFactorCodeError> {
        let raw = raw.trim();
        if raw.len() == Self::TOTP_DIGITS && raw.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Self::Totp(raw.to_owned()));
        }
        RecoveryCode::parse(raw)
            .map(Self::Recovery)
            .ok_or(SecondFactorCodeError)
    }

    /// A TOTP code only: where a recovery code makes no sense (confirming an enrolment).
    pub fn parse_totp(raw: &str) -> Result<String, SecondFactorCodeError> {
        match Self::parse(raw)? {
            Self::Totp(code) => Ok(code),
            Self::Recovery(_) => Err(SecondFactorCodeError),
        }
    }
}

impl fmt::Debug for SecondFactorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Totp(_) => f.write_str("Totp([REDACTED])"),
            Self::Recovery(_) => f.write_str("Recovery([REDACTED])"),
        }
    }
}

/// A single-use recovery code: 16 characters of an alphabet without look-alikes (no `0`,
/// `1`, `l`, `o`), 80 random bits, shown as `xxxx-xxxx-xxxx-xxxx`. That many bits need no
/// secret key to hash safely (no one tries 2^80 codes against a stolen digest), so a
/// digest outlives any key rotation. Held in its canonical form (lower case, no dash) for
/// hashing. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl RecoveryCode {
    const ALPHABET: &'static [u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    const LEN: usize = 16;

    /// A code from the 122 random bits of a random (v4) UUID: 80 of them.
    pub fn from_random_uuid(uuid: Uuid) -> Self {
        Self::from_random(random_bits(uuid))
    }

    /// A code from uniformly random bits: the low 80 of them.
    pub fn from_random(random: u128) -> Self {
        let code = (0..Self::LEN)
            .map(|i| char::from(Self::ALPHABET[((random >> (5 * i)) & 31) as usize]))
            .collect();
        Self(code)
    }

    /// A code as a user typed it; `None` if it cannot be one.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() > 4 * Self::LEN {
            return None;
        }
        let code: String = raw
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        (code.len() == Self::LEN && code.bytes().all(|b| Self::ALPHABET.contains(&b)))
            .then_some(Self(code))
    }

    /// The canonical form, for the keyed hash only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// As shown to the user once: `xxxx-xxxx-xxxx-xxxx`.
    pub fn display(&self) -> String {
        let groups: Vec<&str> = (0..Self::LEN / 4)
            .map(|i| &self.0[4 * i..4 * i + 4])
            .collect();
        groups.join("-")
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode([REDACTED])")
    }
}

/// The 122 random bits of a random (v4) UUID, in the low bits: its 6 fixed bits (the
/// version, bits 76..80 of the big-endian value, and the variant, bits 62..64) left out.
fn random_bits(uuid: Uuid) -> u128 {
    let value = uuid.as_u128();
    let low = value & ((1 << 62) - 1);
    let middle = (value >> 64) & 0xfff;
    let high = value >> 80;
    low | (middle << 62) | (high << 74)
}

/// The handle of a login waiting for its second factor: the user's id and 122 random
/// bits, `<user id>.<secret>` in simple (unhyphenated) hex. The id lets the store find
/// the challenge where the rest of the account lives; the secret is what proves it, and
/// the store keeps only its keyed digest. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginChallenge {
    pub user_id: UserId,
    secret: Uuid,
}

impl LoginChallenge {
    pub fn new(user_id: UserId, secret: Uuid) -> Self {
        Self { user_id, secret }
    }

    /// A challenge as a client sent it back; `None` if it cannot be one.
    pub fn parse(raw: &str) -> Option<Self> {
        let (user, secret) = raw.split_once('.')?;
        let simple = |s: &str| {
            (s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then(|| Uuid::try_parse(s).ok())
                .flatten()
        };
        Some(Self {
            user_id: UserId::from_uuid(simple(user)?),
            secret: simple(secret)?,
        })
    }

    /// The secret part, for the keyed hash only.
    pub fn expose_secret(&self) -> String {
        self.secret.simple().to_string()
    }
}

impl fmt::Display for LoginChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            self.user_id.as_uuid().simple(),
            self.secret.simple()
        )
    }
}

impl fmt::Debug for LoginChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginChallenge")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_told_apart_and_forgive_what_a_paste_adds() {
        assert!(matches!(
            SecondFactorCode::parse(" 123456\n"),
            Ok(SecondFactorCode::Totp(c)) if c == "123456"
        ));
        let code = RecoveryCode::from_random(0x0123_4567_89ab_cdef_0123);
        let shown = code.display();
        assert_eq!(shown.len(), 19);
        for typed in [shown.clone(), shown.to_uppercase(), shown.replace('-', " ")] {
            assert_eq!(
                SecondFactorCode::parse(&typed),
                Ok(SecondFactorCode::Recovery(code.clone()))
            );
        }
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "abcd-efgh-ijkm-npq0",
            "abcdefghijkmnpqrs",
        ] {
            assert_eq!(
                SecondFactorCode::parse(bad),
                Err(SecondFactorCodeError),
                "{bad}"
            );
        }
        assert_eq!(
            SecondFactorCode::parse_totp(&shown),
            Err(SecondFactorCodeError)
        );
    }

    #[test]
    fn recovery_codes_use_eighty_random_bits() {
        assert_ne!(
            RecoveryCode::from_random(1).expose(),
            RecoveryCode::from_random(1 << 79).expose()
        );
        assert_eq!(
            RecoveryCode::from_random(1).expose(),
            RecoveryCode::from_random(1 | (1 << 80)).expose()
        );
    }

    #[test]
    fn a_uuids_fixed_bits_are_left_out() {
        // Only the version and variant bits set: nothing random, so nothing is kept.
        let fixed = Uuid::from_u128((0xf << 76) | (0b11 << 62));
        assert_eq!(random_bits(fixed), 0);
        let all = Uuid::from_u128(u128::MAX);
        assert_eq!(random_bits(all), (1 << 122) - 1);
    }

    #[test]
    fn challenges_read_back_and_refuse_anything_else() {
        let challenge = LoginChallenge::new(
            UserId::from_uuid(Uuid::from_u128(7)),
            Uuid::from_u128(0xabcdef),
        );
        let text = challenge.to_string();
        assert_eq!(LoginChallenge::parse(&text), Some(challenge.clone()));
        assert!(!format!("{challenge:?}").contains("abcdef"));
        for bad in [
            "",
            ".",
            &text.to_uppercase(),
            &text.replace('.', ""),
            &format!("{text}0"),
            &format!("{}-{}", Uuid::from_u128(7), Uuid::from_u128(1)),
        ] {
            assert_eq!(LoginChallenge::parse(bad), None, "{bad}");
        }
    }
}
