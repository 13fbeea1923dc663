//! Users and the values that make them up.

use std::fmt;

use crate::{PhoneNumber, Timestamp, UserId};

/// A registered user. The password is only ever held as its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub password_hash: PasswordHash,
    pub phone: Option<PhoneNumber>,
    /// Whether the user proved they hold `phone` with a code texted to it. SMS go only to
    /// a verified number; a new number starts unverified.
    pub phone_verified: bool,
    pub created_at: Timestamp,
    /// When the password was last changed or reset; `None` if never since registration.
    pub password_changed_at: Option<Timestamp>,
}

/// A login name: 3 to 64 characters of ASCII letters, digits, `_`, `.` and `-`,
/// folded to lower case so that `Alice` and `alice` cannot be two different people.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username must be between {min} and {max} characters long", min = Username::MIN_LEN, max = Username::MAX_LEN)]
    Length,
    #[error("username may contain only letters, digits, '_', '.' and '-'")]
    Charset,
}

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&raw.len()) {
            return Err(UsernameError::Length);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(UsernameError::Charset);
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a log line may say about a username as a client typed it: the parsed, case-folded
/// [`Username`] (whose charset cannot forge a log line or carry markup), or
/// `invalid(len=N)` for anything that is not one. Never the raw text: a rejected name may
/// hold a newline that forges a line, or be a password typed into the name field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedUsername(Result<Username, usize>);

impl LoggedUsername {
    pub fn of(raw: &str) -> Self {
        Self(Username::parse(raw).map_err(|_| raw.chars().count()))
    }
}

impl fmt::Display for LoggedUsername {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Ok(username) => fmt::Display::fmt(username, f),
            Err(chars) => write!(f, "invalid(len={chars})"),
        }
    }
}

/// A password as typed by a user, for checking against a hash. Any non-empty string up to
/// [`PasswordInput::MAX_LEN`] bytes is accepted here: policy applies when a password is
/// *chosen* ([`NewPassword`]), never when one is checked, so the checks cannot leak which
/// accounts predate a policy change. `Debug` never shows the value.
///
/// The value is held in Unicode NFKC (NIST SP 800-63B §3.1.1.2: normalize before hashing),
/// and both registration and login go through here, so a password typed with composed
/// or decomposed accents, full-width letters or a no-break space verifies the same on
/// every keyboard. ASCII is unchanged by NFKC: only hashes made before this rule from a
/// password whose NFKC form differs no longer verify.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordInput(String);

impl PasswordInput {
    /// Bound on what a client may make the hasher chew on, in bytes, before and after
    /// normalization (NFKC can lengthen a string; a policy password is at most
    /// 4 x [`NewPassword::MAX_CHARS`] bytes, far below).
    pub const MAX_LEN: usize = 1024;

    pub fn new(raw: impl Into<String>) -> Result<Self, PasswordError> {
        let raw = raw.into();
        // Bounded before normalizing, so the work of normalizing is bounded too.
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(PasswordError::Length);
        }
        let normalized = match crate::text::nfkc(&raw) {
            std::borrow::Cow::Borrowed(_) => raw,
            std::borrow::Cow::Owned(normalized) => normalized,
        };
        if normalized.len() > Self::MAX_LEN {
            return Err(PasswordError::Length);
        }
        Ok(Self(normalized))
    }

    /// The secret itself (in NFKC), for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordInput([REDACTED])")
    }
}

/// A password a user is choosing, which has passed the policy (NIST SP 800-63B §3.1.1.2):
/// after NFKC normalization, 8 to 128 characters counted in code points, at least one
/// of them visible (a letter, digit, punctuation mark or symbol: eight spaces or eight
/// zero-width spaces are not a password anyone can type back), and not one of the most
/// common passwords. Every other printable character and space is allowed.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(PasswordInput);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be between {min} and {max} characters long", min = NewPassword::MIN_CHARS, max = NewPassword::MAX_CHARS)]
    Length,
    #[error(
        "password must contain at least one visible character (a letter, digit, punctuation mark or symbol), not only spaces or invisible characters"
    )]
    Blank,
    #[error("password is too common; choose another")]
    TooCommon,
}

/// Passwords that lead every leaked-password list; refusing them stops the bulk of
/// credential-stuffing successes at almost no cost. Compared case-insensitively.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password!",
    "passw0rd",
    "p@ssw0rd",
    "12345678",
    "123456789",
    "1234567890",
    "12345678910",
    "87654321",
    "11111111",
    "00000000",
    "qwertyui",
    "qwertyuiop",
    "qwerty123",
    "qwerty12",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "zaq12wsx",
    "asdfghjk",
    "asdfghjkl",
    "zxcvbnm1",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "welcome123",
    "letmein1",
    "trustno1",
    "superman",
    "starwars",
    "dragon12",
    "monkey12",
    "master12",
    "whatever",
    "abcd1234",
    "abc12345",
    "a1b2c3d4",
    "admin123",
    "administrator",
    "changeme",
    "changeme1",
    "computer",
    "internet",
    "michelle",
    "jennifer",
    "corvette",
    "mercedes",
    "charlie1",
    "shadow12",
    "football1",
    "baseball1",
    "jordan23",
    "liverpool",
    "chelsea1",
    "arsenal1",
    "qazwsxedc",
    "1234qwer",
    "qwer1234",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "aa123456",
    "123123123",
    "12341234",
    "11223344",
    "secret123",
    "test1234",
    "testtest",
    "guest123",
    "default1",
    "hello123",
];

impl NewPassword {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: impl Into<String>) -> Result<Self, PasswordError> {
        // Normalized first, so the rules below judge what will be hashed.
        let input = PasswordInput::new(raw)?;
        let password = input.expose();
        let chars = password.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) {
            return Err(PasswordError::Length);
        }
        if !password.chars().any(crate::text::is_visible) {
            return Err(PasswordError::Blank);
        }
        let lowered = password.to_lowercase();
        if COMMON_PASSWORDS.contains(&lowered.as_str()) {
            return Err(PasswordError::TooCommon);
        }
        Ok(Self(input))
    }

    pub fn as_input(&self) -> &PasswordInput {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([REDACTED])")
    }
}

/// A password hash in PHC string format (`$argon2id$v=19$...`), as the hasher produced it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_bounded_folded_and_restricted() {
        assert_eq!(
            Username::parse("Alice_1.b-c").map(|u| u.to_string()),
            Ok("alice_1.b-c".into())
        );
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(65)), Err(UsernameError::Length));
        assert_eq!(Username::parse("al ice"), Err(UsernameError::Charset));
        assert_eq!(Username::parse("ålice"), Err(UsernameError::Charset));
        assert_eq!(Username::parse("al\u{0}ce"), Err(UsernameError::Charset));
    }

    #[test]
    fn logged_usernames_are_folded_or_a_placeholder() {
        assert_eq!(LoggedUsername::of("Alice.B").to_string(), "alice.b");
        assert_eq!(
            LoggedUsername::of("mallory\nINFO admin logged in").to_string(),
            "invalid(len=28)"
        );
        assert_eq!(
            LoggedUsername::of("hunter2 is my password").to_string(),
            "invalid(len=22)"
        );
        assert_eq!(LoggedUsername::of("ålice").to_string(), "invalid(len=5)");
        assert_eq!(LoggedUsername::of("").to_string(), "invalid(len=0)");
    }

    #[test]
    fn new_passwords_need_a_visible_character_after_normalization() {
        for invisible in [
            "\u{200B}".repeat(8),
            "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}\u{00AD}\u{200E}\u{202E}".to_owned(),
            "\u{3164}".repeat(8),
            "\u{00A0}".repeat(8),
            "\u{3000}".repeat(8),
            " \t\n\r \u{0}\u{7}\u{1B}".to_owned(),
            "\u{0301}".repeat(8),
        ] {
            assert_eq!(
                NewPassword::parse(invisible.clone()).err(),
                Some(PasswordError::Blank),
                "{invisible:?}"
            );
        }
        // One visible character among invisible ones is a (weak but typeable) password;
        // spaces inside a passphrase are fine.
        assert!(NewPassword::parse(format!("x{}", "\u{200B}".repeat(7))).is_ok());
        assert!(NewPassword::parse("  two words  ").is_ok());
    }

    #[test]
    fn passwords_are_nfkc_normalized_before_policy_and_hashing() {
        // Composed and decomposed spellings, and full-width forms, are one password.
        let composed = PasswordInput::new("crème brûlée").expect("valid");
        let decomposed = PasswordInput::new("cre\u{300}me bru\u{302}le\u{301}e").expect("valid");
        assert_eq!(composed, decomposed);
        assert_eq!(decomposed.expose(), "crème brûlée");
        assert_eq!(
            PasswordInput::new("ｈｕｎｔｅｒ２")
                .expect("valid")
                .expose(),
            "hunter2"
        );
        let chosen = NewPassword::parse("cre\u{300}me bru\u{302}le\u{301}e").expect("valid");
        assert_eq!(chosen.as_input(), &composed);
        // Full-width "password" is "password".
        assert_eq!(
            NewPassword::parse("ｐａｓｓｗｏｒｄ").err(),
            Some(PasswordError::TooCommon)
        );
        // Length is counted in code points after normalization: seven letters plus a
        // combining accent are 8 code points typed, 7 once composed.
        assert_eq!(
            NewPassword::parse("abcdefe\u{301}").err(),
            Some(PasswordError::Length)
        );
        // ASCII is left exactly as typed.
        assert_eq!(
            PasswordInput::new("Tr0ub4dor&3 ").expect("valid").expose(),
            "Tr0ub4dor&3 "
        );
    }

    #[test]
    fn password_inputs_stay_bounded_after_normalization() {
        // U+FDFA is 3 bytes and becomes 18 characters (33 bytes) under NFKC.
        let expands = "\u{FDFA}".repeat(100);
        assert!(expands.len() <= PasswordInput::MAX_LEN);
        assert_eq!(
            PasswordInput::new(expands).err(),
            Some(PasswordError::Length)
        );
        assert!(PasswordInput::new("\u{FDFA}".repeat(10)).is_ok());
    }

    #[test]
    fn new_passwords_follow_the_policy() {
        assert!(NewPassword::parse("correct horse battery").is_ok());
        assert_eq!(
            NewPassword::parse("short").err(),
            Some(PasswordError::Length)
        );
        assert_eq!(
            NewPassword::parse("x".repeat(129)).err(),
            Some(PasswordError::Length)
        );
        assert_eq!(
            NewPassword::parse("         ").err(),
            Some(PasswordError::Blank)
        );
        assert_eq!(
            NewPassword::parse("PassWord123").err(),
            Some(PasswordError::TooCommon)
        );
        // Counted in characters, not bytes: eight umlauts are eight characters.
        assert!(NewPassword::parse("ääääääää").is_ok());
    }

    #[test]
    fn password_inputs_accept_anything_bounded_and_never_print() {
        assert!(PasswordInput::new("password").is_ok());
        assert_eq!(PasswordInput::new("").err(), Some(PasswordError::Length));
        assert_eq!(
            PasswordInput::new("x".repeat(1025)).err(),
            Some(PasswordError::Length)
        );
        let input = PasswordInput::new("hunter2").expect("valid");
        assert!(!format!("{input:?}").contains("hunter2"));
        let new = NewPassword::parse("hunter2hunter2").expect("valid");
        assert!(!format!("{new:?}").contains("hunter2"));
        assert!(!format!("{:?}", PasswordHash::new("$argon2id$secret")).contains("secret"));
    }
}
