//! Value parsers for the variables: each reads one value (surrounding white space
//! ignored) and says what it expected. clap calls them on the environment's values and on
//! the defaults alike, so a default must read back through its own parser: [`Span`]
//! displays as it parses.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

/// A duration as `humantime` reads it (`500ms`, `15m`, `7d`). Displayed in the largest
/// unit that divides it (`75s`, not `1m 15s`), which reads back the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        if nanos != 0 {
            if nanos % 1_000_000 == 0 {
                return write!(f, "{}ms", self.0.as_millis());
            }
            return write!(f, "{}", humantime::format_duration(self.0));
        }
        let (size, unit) = UNITS
            .into_iter()
            .find(|(size, _)| secs % size == 0)
            .unwrap_or((1, "s"));
        write!(f, "{}{unit}", secs / size)
    }
}

/// A [`Span`].
pub fn span(raw: &str) -> Result<Span, String> {
    humantime::parse_duration(raw.trim())
        .map(Span)
        .map_err(|e| format!("expected a duration such as 15m or 7d: {e}"))
}

/// A [`Span`] that passes `test`, else `refusal`.
pub fn span_where(
    test: impl Fn(Duration) -> bool + Clone + Send + Sync + 'static,
    refusal: &'static str,
) -> impl Fn(&str) -> Result<Span, String> + Clone + Send + Sync + 'static {
    move |raw| {
        let value = span(raw)?;
        if test(value.0) {
            Ok(value)
        } else {
            Err(refusal.to_owned())
        }
    }
}

/// A [`Span`] from `min` to `max`; `bounds` says them in words (`"1s and 1h"`).
pub fn span_in(
    min: Duration,
    max: Duration,
    bounds: &'static str,
) -> impl Fn(&str) -> Result<Span, String> + Clone + Send + Sync + 'static {
    move |raw| {
        let value = span(raw)?;
        if (min..=max).contains(&value.0) {
            Ok(value)
        } else {
            Err(format!("must be between {bounds}"))
        }
    }
}

/// A whole number from `MIN` to `MAX`.
pub fn count<T, const MIN: u64, const MAX: u64>(raw: &str) -> Result<T, String>
where
    T: FromStr + TryInto<u64> + Copy,
{
    raw.trim()
        .parse::<T>()
        .ok()
        .filter(|n| (*n).try_into().is_ok_and(|n: u64| (MIN..=MAX).contains(&n)))
        .ok_or_else(|| format!("expected a number from {MIN} to {MAX}"))
}

/// A secret, wrapped at once so that no `Debug` shows it. Taken as given (white space is
/// part of a secret).
pub fn secret(raw: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(raw))
}

/// One of the names in `choices` (case-insensitive if `fold_case`); `expected` lists them
/// for the refusal.
pub fn one_of<T: Copy + Send + Sync + 'static>(
    choices: &'static [(&'static str, T)],
    fold_case: bool,
    expected: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |raw| {
        let wanted = match fold_case {
            true => raw.trim().to_ascii_lowercase(),
            false => raw.trim().to_owned(),
        };
        choices
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, value)| *value)
            .ok_or_else(|| format!("expected {expected}, got '{wanted}'"))
    }
}

/// The entries of a comma-separated list, trimmed, empty ones skipped.
pub fn entries(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}
