//! Is an HMAC secret strong enough to sign tokens in production?
//!
//! Length alone ([`MIN_SECRET_LEN`](crate::MIN_SECRET_LEN) bytes) lets through
//! `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`, which anyone forges tokens with. Nothing can prove
//! that a secret was drawn at random, but the obviously weak ones look alike, and
//! [`check_hmac_secret`] refuses them, judging the secret's bytes as configured (the text
//! itself, not what it might decode to):
//!
//! 1. **Too few distinct bytes**: fewer than [`MIN_DISTINCT_BYTES`]. A generator's
//!    alphabet has 16 (hex) to 256 (raw) symbols; 32 hex characters from `openssl rand
//!    -hex 16` hold 10 or more different ones in practice.
//! 2. **A repeated pattern**: for some period `p` up to half the length, at least
//!    [`PATTERN_SHARE`] of the bytes equal the byte `p` before them (`secretsecret...12`,
//!    `password-password-...`). Random text matches at a shift by chance only (1 in 16
//!    for hex, 1 in 64 for base64).
//! 3. **A sequence**: the same test on the steps between neighbouring bytes
//!    (`abcdefgh...`, `aabbccdd...`, `0246...`), which have no repeated bytes but are
//!    just as guessable.
//! 4. **A low Shannon estimate**: the bytes' empirical entropy (from their frequencies)
//!    times their count, under [`MIN_ESTIMATED_BITS`]. The estimate is crude (it cannot
//!    see a dictionary word, and it reads short random strings low), so the floor sits
//!    well under what a random secret scores: `openssl rand -hex 32` scores about 240
//!    bits, `-base64 32` about 215, `-hex 16` about 115.
//!
//! A secret from `openssl rand -base64 32` (or `-hex 32`, or more) passes all four; the
//! unit tests check thousands of such secrets drawn at random.

/// Fewest different byte values a production secret may use.
pub const MIN_DISTINCT_BYTES: usize = 8;
/// Least Shannon estimate, in bits, of a production secret.
pub const MIN_ESTIMATED_BITS: f64 = 80.0;
/// Share of positions that must repeat at one period for a secret to count as a
/// repeated pattern (or, over its steps, a sequence).
pub const PATTERN_SHARE: f64 = 2.0 / 3.0;

/// Why a secret is too weak. The messages describe the secret, never quote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakSecret {
    #[error(
        "uses only {distinct} different characters (at least {MIN_DISTINCT_BYTES}); generate one with `openssl rand -base64 48`"
    )]
    FewDistinctBytes { distinct: usize },
    #[error(
        "repeats a pattern of {period} characters; generate one with `openssl rand -base64 48`"
    )]
    RepeatedPattern { period: usize },
    #[error(
        "is a sequence (its characters step by a repeating amount); generate one with `openssl rand -base64 48`"
    )]
    Sequence,
    #[error(
        "is too predictable (about {bits} bits estimated, at least {MIN_ESTIMATED_BITS} needed); generate one with `openssl rand -base64 48`"
    )]
    LowEntropy { bits: u32 },
}

/// Checks an HMAC secret against the rules in the module docs. Meant for production:
/// development and tests use any secret of the minimum length.
///
/// # Errors
/// The first rule the secret breaks, as a [`WeakSecret`].
pub fn check_hmac_secret(secret: &[u8]) -> Result<(), WeakSecret> {
    let mut counts = [0usize; 256];
    for &b in secret {
        counts[usize::from(b)] += 1;
    }
    let distinct = counts.iter().filter(|&&c| c > 0).count();
    if distinct < MIN_DISTINCT_BYTES {
        return Err(WeakSecret::FewDistinctBytes { distinct });
    }
    if let Some(period) = repeating_period(secret) {
        return Err(WeakSecret::RepeatedPattern { period });
    }
    let steps: Vec<u8> = secret.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    if repeating_period(&steps).is_some() {
        return Err(WeakSecret::Sequence);
    }
    let bits = shannon_bits(&counts, secret.len());
    if bits < MIN_ESTIMATED_BITS {
        // Truncated on purpose: the message shows whole bits.
        return Err(WeakSecret::LowEntropy { bits: bits as u32 });
    }
    Ok(())
}

/// The shortest period at which at least [`PATTERN_SHARE`] of `bytes` repeat.
fn repeating_period(bytes: &[u8]) -> Option<usize> {
    (1..=bytes.len() / 2).find(|&period| {
        let compared = bytes.len() - period;
        let same = bytes
            .iter()
            .zip(&bytes[period..])
            .filter(|(a, b)| a == b)
            .count();
        // Integer form of same / compared >= 2/3.
        same * 3 >= compared * 2
    })
}

/// Empirical entropy of the byte frequencies, times the length: the bits a source with
/// those frequencies would need for this many bytes.
fn shannon_bits(counts: &[usize; 256], len: usize) -> f64 {
    if len == 0 {
        return 0.0;
    }
    let len = len as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2() * len
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use rand::{RngCore, SeedableRng};

    use super::*;

    #[test]
    fn the_obviously_weak_are_refused_for_the_right_reason() {
        let cases: &[(&[u8], WeakSecret)] = &[
            (
                b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                WeakSecret::FewDistinctBytes { distinct: 1 },
            ),
            (
                b"abababababababababababababababab",
                WeakSecret::FewDistinctBytes { distinct: 2 },
            ),
            (
                b"0123456789abcdef0123456789abcdef",
                WeakSecret::RepeatedPattern { period: 16 },
            ),
            (
                b"password-password-password-pass",
                WeakSecret::RepeatedPattern { period: 9 },
            ),
            (
                b"MyCompanySecret!MyCompanySecret!",
                WeakSecret::RepeatedPattern { period: 16 },
            ),
            // Near-periodic: the tail does not save it.
            (
                b"jwt-secret/jwt-secret/jwt-secret/2024",
                WeakSecret::RepeatedPattern { period: 11 },
            ),
            (b"abcdefghijklmnopqrstuvwxyz012345", WeakSecret::Sequence),
            (b"aabbccddeeffgghhiijjkkllmmnnoopp", WeakSecret::Sequence),
            (b"acegikmoqsuwy02468:<>@BDFHJLNPRT", WeakSecret::Sequence),
            // One byte most of the time, at no fixed period.
            (
                b"azbzzczzdzzzezfzzgzzzhzzizzzzzjz",
                WeakSecret::LowEntropy { bits: 61 },
            ),
        ];
        for (secret, reason) in cases {
            assert_eq!(
                check_hmac_secret(secret).as_ref().err(),
                Some(reason),
                "{}",
                String::from_utf8_lossy(secret)
            );
        }
    }

    #[test]
    fn messages_never_quote_the_secret() {
        let secret = b"hunter2-hunter2-hunter2-hunter2-";
        let message = check_hmac_secret(secret).expect_err("weak").to_string();
        assert!(!message.contains("hunter"), "{message}");
    }

    /// What operators paste: `openssl rand -hex N` / `-base64 N`, and raw random bytes.
    /// Thousands of each, from a fixed seed so the test is repeatable.
    #[test]
    fn random_secrets_as_openssl_makes_them_pass() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EC2E7);
        let mut random = |n: usize| {
            let mut bytes = vec![0u8; n];
            rng.fill_bytes(&mut bytes);
            bytes
        };
        for _ in 0..2000 {
            let encodings: [(&str, Vec<u8>); 6] = [
                ("hex 32", hex(&random(32)).into_bytes()),
                ("base64 32", STANDARD.encode(random(32)).into_bytes()),
                ("base64 48", STANDARD.encode(random(48)).into_bytes()),
                ("hex 16", hex(&random(16)).into_bytes()),
                ("base64 24", STANDARD.encode(random(24)).into_bytes()),
                ("raw 32", random(32)),
            ];
            for (what, secret) in encodings {
                assert_eq!(
                    check_hmac_secret(&secret),
                    Ok(()),
                    "openssl rand -{what}: {}",
                    String::from_utf8_lossy(&secret)
                );
            }
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_estimate_is_bits_per_byte_times_length() {
        let mut counts = [0usize; 256];
        // 32 bytes, 16 values twice each: 4 bits per byte.
        for b in 0..16u8 {
            counts[usize::from(b)] = 2;
        }
        assert!((shannon_bits(&counts, 32) - 128.0).abs() < 1e-9);
        assert_eq!(shannon_bits(&[0; 256], 0), 0.0);
    }
}
