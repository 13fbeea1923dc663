//! Property tests (a fuzz target that runs under `cargo test`/nextest on stable): random
//! and mutated tokens never panic the codec and never verify, unless the mutation left the
//! token unchanged. Case counts are kept small enough for CI (well under a second);
//! `PROPTEST_CASES=N` runs N cases per property instead.

use application::ports::{TokenCodec, TokenError};
use domain::ids::Uuid;
use domain::{AccessClaims, AuthMethods, SessionId, Timestamp, TokenId, UserId};
use proptest::prelude::*;
use secrecy::SecretSlice;

use super::*;

const ACCESS_SECRET: &[u8] = b"access-secret-0123456789abcdefghijklmnop";
const REFRESH_SECRET: &[u8] = b"refresh-secret-0123456789abcdefghijklmnop";
const NOW: i64 = 1_700_000_000;

fn codec() -> JwtCodec {
    JwtCodec::new(JwtConfig::new(
        SecretSlice::from(ACCESS_SECRET.to_vec()),
        SecretSlice::from(REFRESH_SECRET.to_vec()),
        "jwt-todo",
        "jwt-todo-api",
    ))
    .expect("valid config")
}

/// Cases per property: 256, or `PROPTEST_CASES`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

fn now() -> Timestamp {
    Timestamp::from_unix_seconds(NOW)
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn access_claims() -> impl Strategy<Value = AccessClaims> {
    (
        uuid(),
        uuid(),
        uuid(),
        1..100_000i64,
        -100_000..0i64,
        any::<bool>(),
    )
        .prop_map(|(user, session, jti, ttl, age, otp)| AccessClaims {
            user_id: UserId::from_uuid(user),
            session_id: SessionId::from_uuid(session),
            token_id: TokenId::from_uuid(jti),
            issued_at: Timestamp::from_unix_seconds(NOW),
            expires_at: Timestamp::from_unix_seconds(NOW + ttl),
            auth_time: Timestamp::from_unix_seconds(NOW + age),
            client: None,
            amr: if otp {
                AuthMethods::PasswordAndOtp
            } else {
                AuthMethods::Password
            },
        })
}

/// One edit of a token's text.
#[derive(Clone, Debug)]
enum Mutation {
    /// Replace the byte at (index mod length) with this character.
    Replace(usize, char),
    Insert(usize, char),
    Delete(usize),
    /// Cut the token at (index mod length).
    Truncate(usize),
    /// Swap two of the three dot-separated segments.
    SwapSegments(usize, usize),
}

/// Characters a token is made of, plus a few that are not.
fn token_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
                .chars()
                .collect::<Vec<_>>()
        ),
        1 => prop::sample::select(vec!['=', '+', '/', ' ', '\0', 'é', '\u{202e}']),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), token_char()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        2 => (any::<usize>(), token_char()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        2 => any::<usize>().prop_map(Mutation::Delete),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (0..3usize, 0..3usize).prop_map(|(a, b)| Mutation::SwapSegments(a, b)),
    ]
}

fn apply(token: &str, mutation: &Mutation) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *mutation {
        // An earlier truncation may have left nothing to replace or delete.
        Mutation::Replace(_, _) | Mutation::Delete(_) if chars.is_empty() => {}
        Mutation::Replace(i, c) => {
            let i = at(i, chars.len());
            chars[i] = c;
        }
        Mutation::Insert(i, c) => {
            let i = at(i, chars.len() + 1);
            chars.insert(i, c);
        }
        Mutation::Delete(i) => {
            let i = at(i, chars.len());
            chars.remove(i);
        }
        Mutation::Truncate(i) => chars.truncate(at(i, chars.len())),
        Mutation::SwapSegments(a, b) => {
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            if a < parts.len() && b < parts.len() {
                parts.swap(a, b);
            }
            return parts.join(".");
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Whatever the input, verification answers (no panic), and never with success.
    #[test]
    fn arbitrary_text_never_verifies(text in ".{0,600}") {
        let codec = codec();
        prop_assert!(codec.verify_access(&text, now()).is_err());
        prop_assert!(codec.verify_refresh(&text, now()).is_err());
    }

    /// Three base64url-looking segments are parsed further than random text: still never
    /// accepted.
    #[test]
    fn token_shaped_noise_never_verifies(
        segments in prop::collection::vec("[A-Za-z0-9_-]{0,120}", 1..5)
    ) {
        let codec = codec();
        let text = segments.join(".");
        prop_assert!(matches!(codec.verify_access(&text, now()), Err(TokenError::Invalid)));
        prop_assert!(matches!(codec.verify_refresh(&text, now()), Err(TokenError::Invalid)));
    }

    /// A genuine token verifies to its claims; any edit of it that changes the text makes
    /// it invalid, and neither kind ever verifies as the other.
    #[test]
    fn mutated_tokens_never_verify_unless_unchanged(
        claims in access_claims(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let codec = codec();
        let token = codec.issue_access(&claims).expect("signs");
        prop_assert_eq!(codec.verify_access(&token, now()).expect("genuine"), claims);
        prop_assert!(codec.verify_refresh(&token, now()).is_err());

        let mutated = mutations.iter().fold(token.clone(), |t, m| apply(&t, m));
        let verdict = codec.verify_access(&mutated, now());
        if mutated == token {
            prop_assert_eq!(verdict.expect("unchanged"), claims);
        } else {
            prop_assert!(
                matches!(verdict, Err(TokenError::Invalid)),
                "mutated token verified: {} -> {:?}", mutated, verdict
            );
        }
        prop_assert!(codec.verify_refresh(&mutated, now()).is_err());
    }
}
