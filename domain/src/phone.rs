//! Proving a phone number: the one-time code texted to it, and the countries SMS may go to.

use std::fmt;

/// A one-time code texted to a phone to prove the user holds it: six decimal digits.
/// `Debug` never shows it: only the SMS and the user ever see the digits.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("code must be the 6 digits from the SMS")]
pub struct PhoneCodeError;

impl PhoneCode {
    pub const DIGITS: usize = 6;

    /// A code as the user typed it; surrounding whitespace (a paste) is forgiven.
    pub fn parse(raw: &str) -> Result<Self, PhoneCodeError> {
        let raw = raw.trim();
        if raw.len() == Self::DIGITS && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(PhoneCodeError)
        }
    }

    /// A fresh code from random bits, e.g. a random (v4) UUID. Its low 62 bits are
    /// uniformly random, so the remainder modulo 10^6 is uniform up to a bias of about
    /// 10^6 / 2^62: no guess is measurably better than another.
    pub fn from_random(random: u128) -> Self {
        Self(format!("{:06}", random % 1_000_000))
    }

    /// The digits, for the SMS and the keyed hash only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhoneCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneCode([REDACTED])")
    }
}

/// An E.164 country calling code such as `+49` or `+1`: one entry of the SMS country
/// allow-list. Country codes are a prefix code (no code begins another), so a number
/// belongs to a country exactly when its digits start with the code's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CountryCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("country code must be '+' then 1 to 3 digits, not starting with 0, e.g. +49")]
pub struct CountryCodeError;

impl CountryCode {
    pub fn parse(raw: &str) -> Result<Self, CountryCodeError> {
        let digits = raw.trim().strip_prefix('+').ok_or(CountryCodeError)?;
        let valid = (1..=3).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if valid {
            Ok(Self(digits.to_owned()))
        } else {
            Err(CountryCodeError)
        }
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

/// A phone number in E.164: `+`, a country code that does not start with 0, at most 15
/// digits in all (ITU-T E.164), e.g. `+4915112345678`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("phone number must be in E.164 format: '+' then 8 to 15 digits, e.g. +4915112345678")]
pub struct PhoneNumberError;

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, PhoneNumberError> {
        let digits = raw.strip_prefix('+').ok_or(PhoneNumberError)?;
        let valid = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(PhoneNumberError)
        }
    }

    /// `+4915112345678`
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `4915112345678`: the form SMS APIs such as Vonage's want.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl PhoneNumber {
    /// Whether this number is in the country `code` stands for.
    pub fn is_in(&self, code: &CountryCode) -> bool {
        self.digits().starts_with(&code.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_never_print() {
        assert_eq!(
            PhoneCode::parse(" 012345\n").map(|c| c.expose().to_owned()),
            Ok("012345".into())
        );
        for bad in ["12345", "1234567", "12345a", "１２３４５６", "", "12 345"] {
            assert_eq!(PhoneCode::parse(bad), Err(PhoneCodeError), "{bad:?}");
        }
        let code = PhoneCode::parse("424242").expect("valid");
        assert!(!format!("{code:?}").contains("4242"));
    }

    #[test]
    fn random_codes_keep_their_leading_zeros_and_cover_the_range() {
        assert_eq!(PhoneCode::from_random(7).expose(), "000007");
        assert_eq!(PhoneCode::from_random(999_999).expose(), "999999");
        assert_eq!(PhoneCode::from_random(1_000_000).expose(), "000000");
        assert_eq!(PhoneCode::from_random(u128::MAX).expose().len(), 6);
        for raw in [0, 1, 123_456_789, u128::from(u64::MAX), u128::MAX - 1] {
            let code = PhoneCode::from_random(raw);
            assert_eq!(PhoneCode::parse(code.expose()), Ok(code));
        }
    }

    #[test]
    fn country_codes_match_numbers_by_prefix() {
        let germany = CountryCode::parse("+49").expect("valid");
        let nanp = CountryCode::parse(" +1 ").expect("valid");
        assert_eq!(germany.to_string(), "+49");
        let berlin = PhoneNumber::parse("+4930123456").expect("valid");
        let new_york = PhoneNumber::parse("+12125550123").expect("valid");
        let austria = PhoneNumber::parse("+4312345678").expect("valid");
        assert!(berlin.is_in(&germany));
        assert!(!berlin.is_in(&nanp));
        assert!(new_york.is_in(&nanp));
        assert!(!austria.is_in(&germany), "+43 is not +49");
        for bad in ["49", "+", "+0", "+049", "+1234", "+4a", ""] {
            assert_eq!(CountryCode::parse(bad), Err(CountryCodeError), "{bad:?}");
        }
    }

    #[test]
    fn phone_numbers_are_e164() {
        let phone = PhoneNumber::parse("+4915112345678").expect("valid");
        assert_eq!(phone.digits(), "4915112345678");
        for bad in [
            "4915112345678",
            "+0151123456",
            "+12",
            "+1234567890123456",
            "+49 151 123",
            "+49151abc45",
            "",
        ] {
            assert_eq!(PhoneNumber::parse(bad), Err(PhoneNumberError), "{bad}");
        }
    }
}
