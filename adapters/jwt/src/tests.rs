//! Attacks on the codec. Forged tokens are built by hand (base64url + HMAC) so that
//! nothing in `jsonwebtoken` can "helpfully" normalise them; `forged_valid_tokens_verify`
//! shows the forging helper itself is right, so each rejection below is meaningful.

use super::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Sha384, Sha512};

const ACCESS_SECRET: &[u8] = b"access-secret-0123456789abcdefghijklmnop";
const REFRESH_SECRET: &[u8] = b"refresh-secret-0123456789abcdefghijklmnop";
const ISSUER: &str = "jwt-todo";
const AUDIENCE: &str = "jwt-todo-api";
const NOW: i64 = 1_700_000_000;
const USER: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";
const SESSION: &str = "2b2f3a0e-8d1c-4b7a-9a55-0c3f5e2d1a10";
const JTI: &str = "9f1d2c3b-4a5e-4f60-8a7b-6c5d4e3f2a1b";

fn config(access: &[u8], refresh: &[u8]) -> JwtConfig {
    JwtConfig::new(
        SecretSlice::from(access.to_vec()),
        SecretSlice::from(refresh.to_vec()),
        ISSUER,
        AUDIENCE,
    )
}

fn codec() -> JwtCodec {
    JwtCodec::new(config(ACCESS_SECRET, REFRESH_SECRET)).expect("valid config")
}

/// Both kinds signed with one secret: only `typ` (and nothing else) tells them apart.
fn same_secret_codec() -> JwtCodec {
    JwtCodec::build(config(ACCESS_SECRET, ACCESS_SECRET)).expect("valid config")
}

fn now() -> Timestamp {
    Timestamp::from_unix_seconds(NOW)
}

fn ts(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(seconds)
}

fn access_claims(expires_at: i64) -> AccessClaims {
    AccessClaims {
        user_id: USER.parse().expect("uuid"),
        session_id: SESSION.parse().expect("uuid"),
        token_id: JTI.parse().expect("uuid"),
        issued_at: now(),
        expires_at: ts(expires_at),
        auth_time: ts(NOW - 3600),
    }
}

fn refresh_claims(expires_at: i64) -> RefreshClaims {
    RefreshClaims {
        user_id: USER.parse().expect("uuid"),
        session_id: SESSION.parse().expect("uuid"),
        token_id: JTI.parse().expect("uuid"),
        issued_at: now(),
        expires_at: ts(expires_at),
        auth_time: ts(NOW - 3600),
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac = <M as Mac>::new_from_slice(key).expect("any key length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `base64url(header).base64url(payload).base64url(signature)`, the signature made with
/// `alg` ("HS256", "HS384", "HS512") or empty for anything else.
fn forge(header: &Value, payload: &Value, alg: &str, key: &[u8]) -> String {
    let message = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let signature = match alg {
        "HS256" => mac::<Hmac<Sha256>>(key, &message),
        "HS384" => mac::<Hmac<Sha384>>(key, &message),
        "HS512" => mac::<Hmac<Sha512>>(key, &message),
        _ => Vec::new(),
    };
    format!("{message}.{}", b64(signature))
}

fn access_header(codec: &JwtCodec) -> Value {
    json!({ "alg": "HS256", "typ": "at+jwt", "kid": codec.access_key_id() })
}

fn refresh_header(codec: &JwtCodec) -> Value {
    json!({ "alg": "HS256", "typ": "rt+jwt", "kid": codec.refresh_key_id() })
}

fn payload() -> Value {
    json!({
        "sub": USER, "sid": SESSION, "jti": JTI,
        "iat": NOW, "exp": NOW + 900,
        "iss": ISSUER, "aud": AUDIENCE, "auth_time": NOW - 3600,
    })
}

fn with(mut value: Value, key: &str, new: Value) -> Value {
    value[key] = new;
    value
}

fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().expect("object").remove(key);
    value
}

fn assert_invalid_access(codec: &JwtCodec, token: &str) {
    assert!(
        matches!(codec.verify_access(token, now()), Err(TokenError::Invalid)),
        "accepted or misclassified as access: {token}"
    );
}

fn assert_invalid_refresh(codec: &JwtCodec, token: &str) {
    assert!(
        matches!(codec.verify_refresh(token, now()), Err(TokenError::Invalid)),
        "accepted or misclassified as refresh: {token}"
    );
}

// --- what must work -----------------------------------------------------------------

#[test]
fn access_tokens_round_trip() {
    let codec = codec();
    let claims = access_claims(NOW + 900);
    let token = codec.issue_access(&claims).expect("signs");
    assert_eq!(
        codec.verify_access(&token, now()).expect("verifies"),
        claims
    );
}

#[test]
fn refresh_tokens_round_trip() {
    let codec = codec();
    let claims = refresh_claims(NOW + 7 * 86_400);
    let token = codec.issue_refresh(&claims).expect("signs");
    assert_eq!(
        codec.verify_refresh(&token, now()).expect("verifies"),
        claims
    );
}

#[test]
fn headers_carry_type_and_a_stable_key_id_that_hides_the_secret() {
    let codec = codec();
    let access = codec
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    let refresh = codec
        .issue_refresh(&refresh_claims(NOW + 900))
        .expect("signs");

    let header = jsonwebtoken::decode_header(&access).expect("header");
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), Some(codec.access_key_id()));
    let header = jsonwebtoken::decode_header(&refresh).expect("header");
    assert_eq!(header.typ.as_deref(), Some("rt+jwt"));
    assert_eq!(header.kid.as_deref(), Some(codec.refresh_key_id()));

    assert_eq!(codec.access_key_id().len(), 11, "8 bytes, base64url");
    assert_ne!(codec.access_key_id(), codec.refresh_key_id());
    assert_eq!(
        codec.access_key_id(),
        JwtCodec::new(config(
            ACCESS_SECRET,
            b"another-refresh-secret-0123456789abcdef"
        ))
        .expect("valid")
        .access_key_id(),
        "stable across instances"
    );
    let secret = String::from_utf8_lossy(ACCESS_SECRET);
    assert!(!codec.access_key_id().contains(secret.as_ref()));
    assert!(!access.contains(&b64(ACCESS_SECRET)));
}

#[test]
fn forged_valid_tokens_verify() {
    // The forging helper must produce what the codec accepts, or the attacks below would
    // pass for the wrong reason.
    let codec = codec();
    let access = forge(&access_header(&codec), &payload(), "HS256", ACCESS_SECRET);
    assert_eq!(
        codec.verify_access(&access, now()).expect("verifies"),
        access_claims(NOW + 900)
    );
    let refresh = forge(&refresh_header(&codec), &payload(), "HS256", REFRESH_SECRET);
    assert_eq!(
        codec.verify_refresh(&refresh, now()).expect("verifies"),
        refresh_claims(NOW + 900)
    );
}

#[test]
fn the_application_media_type_spelling_of_typ_is_accepted() {
    // RFC 9068 §4: "at+jwt" or "application/at+jwt"; media types compare case-insensitively.
    let codec = codec();
    for typ in ["application/at+jwt", "AT+JWT"] {
        let header = with(access_header(&codec), "typ", json!(typ));
        let token = forge(&header, &payload(), "HS256", ACCESS_SECRET);
        assert!(codec.verify_access(&token, now()).is_ok(), "{typ}");
    }
}

// --- one kind never passes for the other ----------------------------------------------

#[test]
fn refresh_tokens_are_not_access_tokens_and_the_reverse() {
    let codec = codec();
    let refresh = codec
        .issue_refresh(&refresh_claims(NOW + 900))
        .expect("signs");
    let access = codec
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    assert_invalid_access(&codec, &refresh);
    assert_invalid_refresh(&codec, &access);
}

#[test]
fn kinds_stay_apart_even_when_both_secrets_are_equal() {
    let codec = same_secret_codec();
    assert_eq!(
        codec.access_key_id(),
        codec.refresh_key_id(),
        "only typ differs"
    );
    let refresh = codec
        .issue_refresh(&refresh_claims(NOW + 900))
        .expect("signs");
    let access = codec
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    assert!(codec.verify_access(&access, now()).is_ok());
    assert!(codec.verify_refresh(&refresh, now()).is_ok());
    assert_invalid_access(&codec, &refresh);
    assert_invalid_refresh(&codec, &access);
}

#[test]
fn a_refresh_token_relabelled_as_access_fails_its_signature() {
    // Swap the refresh header for an access header, keep payload and signature.
    let codec = codec();
    let refresh = codec
        .issue_refresh(&refresh_claims(NOW + 900))
        .expect("signs");
    let mut parts = refresh.split('.');
    let (_, body, signature) = (parts.next(), parts.next(), parts.next());
    let relabelled = format!(
        "{}.{}.{}",
        b64(access_header(&codec).to_string()),
        body.expect("payload"),
        signature.expect("signature")
    );
    assert_invalid_access(&codec, &relabelled);
}

#[test]
fn typ_missing_generic_or_wrong_is_rejected() {
    let codec = codec();
    let no_typ = without(access_header(&codec), "typ");
    assert_invalid_access(&codec, &forge(&no_typ, &payload(), "HS256", ACCESS_SECRET));
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!("rt+jwt"),
        json!(""),
        json!("application/"),
        json!("at+jwt "),
        json!(null),
    ] {
        let header = with(access_header(&codec), "typ", typ.clone());
        assert_invalid_access(&codec, &forge(&header, &payload(), "HS256", ACCESS_SECRET));
    }
    let header = with(refresh_header(&codec), "typ", json!("at+jwt"));
    assert_invalid_refresh(&codec, &forge(&header, &payload(), "HS256", REFRESH_SECRET));
    let header = with(refresh_header(&codec), "typ", json!("JWT"));
    assert_invalid_refresh(&codec, &forge(&header, &payload(), "HS256", REFRESH_SECRET));
}

// --- algorithm and signature ----------------------------------------------------------

#[test]
fn alg_none_never_verifies() {
    let codec = codec();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = with(access_header(&codec), "alg", json!(alg));
        let unsigned = forge(&header, &payload(), "none", b"");
        assert!(unsigned.ends_with('.'), "{unsigned}");
        assert_invalid_access(&codec, &unsigned);
        // ... nor with a signature made with the right key attached.
        let signed = forge(&header, &payload(), "HS256", ACCESS_SECRET);
        assert_invalid_access(&codec, &signed);
    }
    let header = json!({ "alg": "none", "typ": "rt+jwt", "kid": codec.refresh_key_id() });
    assert_invalid_refresh(&codec, &forge(&header, &payload(), "none", b""));
}

#[test]
fn a_wrong_key_is_rejected() {
    let codec = codec();
    let forged = forge(
        &access_header(&codec),
        &payload(),
        "HS256",
        b"attacker-secret-0123456789abcdefghijkl",
    );
    assert_invalid_access(&codec, &forged);
    // The refresh key does not sign access tokens either.
    let forged = forge(&access_header(&codec), &payload(), "HS256", REFRESH_SECRET);
    assert_invalid_access(&codec, &forged);
    // Nor an empty key.
    let forged = forge(&access_header(&codec), &payload(), "HS256", b"");
    assert_invalid_access(&codec, &forged);
}

#[test]
fn other_algorithms_are_rejected_even_with_the_right_key() {
    let codec = codec();
    for alg in ["HS384", "HS512"] {
        let header = with(access_header(&codec), "alg", json!(alg));
        assert_invalid_access(&codec, &forge(&header, &payload(), alg, ACCESS_SECRET));
        let header = with(refresh_header(&codec), "alg", json!(alg));
        assert_invalid_refresh(&codec, &forge(&header, &payload(), alg, REFRESH_SECRET));
    }
    // Asymmetric algorithm names with an HMAC signature (algorithm confusion).
    for alg in ["RS256", "ES256", "EdDSA", "PS256"] {
        let header = with(access_header(&codec), "alg", json!(alg));
        assert_invalid_access(&codec, &forge(&header, &payload(), "HS256", ACCESS_SECRET));
    }
}

#[test]
fn a_tampered_payload_is_rejected() {
    let codec = codec();
    let token = codec
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    let mut parts: Vec<&str> = token.split('.').collect();
    let other_user = with(
        payload(),
        "sub",
        json!("11111111-2222-4333-8444-555555555555"),
    );
    let tampered_body = b64(other_user.to_string());
    parts[1] = &tampered_body;
    assert_invalid_access(&codec, &parts.join("."));

    // A longer expiry, same signature.
    let extended = b64(with(payload(), "exp", json!(NOW + 999_999)).to_string());
    parts[1] = &extended;
    assert_invalid_access(&codec, &parts.join("."));

    // The signature itself altered, or dropped.
    let token = codec
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    let (message, signature) = token.rsplit_once('.').expect("three parts");
    let mut flipped = signature.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    assert_invalid_access(&codec, &format!("{message}.{flipped}"));
    assert_invalid_access(&codec, &format!("{message}."));
    assert_invalid_access(&codec, message);
}

#[test]
fn unknown_or_missing_key_ids_and_critical_headers_are_rejected() {
    let codec = codec();
    let header = without(access_header(&codec), "kid");
    assert_invalid_access(&codec, &forge(&header, &payload(), "HS256", ACCESS_SECRET));
    let header = with(access_header(&codec), "kid", json!("AAAAAAAAAAA"));
    assert_invalid_access(&codec, &forge(&header, &payload(), "HS256", ACCESS_SECRET));
    let header = with(access_header(&codec), "crit", json!(["exp"]));
    assert_invalid_access(&codec, &forge(&header, &payload(), "HS256", ACCESS_SECRET));
}

// --- claims ---------------------------------------------------------------------------

#[test]
fn wrong_issuer_or_audience_is_rejected() {
    let codec = codec();
    let sign = |p: Value| forge(&access_header(&codec), &p, "HS256", ACCESS_SECRET);
    assert_invalid_access(&codec, &sign(with(payload(), "iss", json!("evil"))));
    assert_invalid_access(&codec, &sign(with(payload(), "iss", json!([ISSUER]))));
    assert_invalid_access(&codec, &sign(with(payload(), "aud", json!("other-api"))));
    assert_invalid_access(&codec, &sign(with(payload(), "aud", json!(["other-api"]))));
    // A list that contains us is still not the single audience we issue.
    assert_invalid_access(
        &codec,
        &sign(with(payload(), "aud", json!([AUDIENCE, "other-api"]))),
    );

    // A codec for another audience (another service sharing the secret) refuses ours.
    let mut other = config(ACCESS_SECRET, REFRESH_SECRET);
    other.audience = "billing-api".into();
    let other = JwtCodec::new(other).expect("valid");
    let ours = codec
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    assert_invalid_access(&other, &ours);
}

#[test]
fn every_claim_is_required() {
    let codec = codec();
    for claim in ["sub", "sid", "jti", "iat", "exp", "iss", "aud", "auth_time"] {
        let token = forge(
            &access_header(&codec),
            &without(payload(), claim),
            "HS256",
            ACCESS_SECRET,
        );
        assert_invalid_access(&codec, &token);
    }
}

#[test]
fn malformed_claim_values_are_rejected() {
    let codec = codec();
    let sign = |p: Value| forge(&access_header(&codec), &p, "HS256", ACCESS_SECRET);
    for (claim, value) in [
        ("sub", json!("alice")),
        ("sub", json!("")),
        ("sub", json!(42)),
        ("sub", json!("67E55044-10B1-426F-9247-BB680E5FE0C8")),
        ("sub", json!("{67e55044-10b1-426f-9247-bb680e5fe0c8}")),
        ("sub", json!("67e5504410b1426f9247bb680e5fe0c8")),
        (
            "sub",
            json!("urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8"),
        ),
        ("sid", json!("not-a-session")),
        ("jti", json!("x")),
        ("exp", json!("1700000900")),
        ("exp", json!(-1)),
        ("exp", json!(1.7e9)),
        ("iat", json!("now")),
        ("iat", json!(NOW + 1000)), // issued after it expires
    ] {
        assert_invalid_access(&codec, &sign(with(payload(), claim, value.clone())));
    }
}

// --- expiry ---------------------------------------------------------------------------

#[test]
fn expiry_is_checked_against_the_given_clock_with_leeway() {
    let codec = codec();
    let exp = NOW + 900;
    let token = codec.issue_access(&access_claims(exp)).expect("signs");
    let leeway = i64::try_from(DEFAULT_LEEWAY.as_secs()).expect("small");

    assert!(codec.verify_access(&token, ts(exp - 1)).is_ok());
    assert!(
        codec.verify_access(&token, ts(exp)).is_ok(),
        "within leeway"
    );
    assert!(
        codec.verify_access(&token, ts(exp + leeway - 1)).is_ok(),
        "within leeway"
    );
    assert!(matches!(
        codec.verify_access(&token, ts(exp + leeway)),
        Err(TokenError::Expired)
    ));
    assert!(matches!(
        codec.verify_access(&token, ts(exp + 86_400)),
        Err(TokenError::Expired)
    ));

    let refresh = codec.issue_refresh(&refresh_claims(exp)).expect("signs");
    assert!(codec.verify_refresh(&refresh, ts(exp + leeway - 1)).is_ok());
    assert!(matches!(
        codec.verify_refresh(&refresh, ts(exp + leeway)),
        Err(TokenError::Expired)
    ));
}

#[test]
fn a_zero_leeway_expires_at_exp() {
    let mut config = config(ACCESS_SECRET, REFRESH_SECRET);
    config.leeway = Duration::ZERO;
    let codec = JwtCodec::new(config).expect("valid");
    let token = codec
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    assert!(codec.verify_access(&token, ts(NOW + 899)).is_ok());
    assert!(matches!(
        codec.verify_access(&token, ts(NOW + 900)),
        Err(TokenError::Expired)
    ));
}

#[test]
fn only_genuine_tokens_are_called_expired() {
    // An expired forgery, or an expired token of the other kind, is Invalid, not Expired.
    let codec = codec();
    let late = ts(NOW + 100_000);
    let forged = forge(
        &access_header(&codec),
        &payload(),
        "HS256",
        b"attacker-secret-0123456789abcdefghijkl",
    );
    assert!(matches!(
        codec.verify_access(&forged, late),
        Err(TokenError::Invalid)
    ));
    let refresh = codec
        .issue_refresh(&refresh_claims(NOW + 900))
        .expect("signs");
    assert!(matches!(
        codec.verify_access(&refresh, late),
        Err(TokenError::Invalid)
    ));
    let wrong_aud = forge(
        &access_header(&codec),
        &with(payload(), "aud", json!("x")),
        "HS256",
        ACCESS_SECRET,
    );
    assert!(matches!(
        codec.verify_access(&wrong_aud, late),
        Err(TokenError::Invalid)
    ));
}

// --- garbage --------------------------------------------------------------------------

#[test]
fn garbage_is_invalid() {
    let codec = codec();
    let huge = "a".repeat(MAX_TOKEN_LEN + 1);
    let padded = format!(
        "{}{}",
        codec
            .issue_access(&access_claims(NOW + 900))
            .expect("signs"),
        "A".repeat(MAX_TOKEN_LEN)
    );
    for token in [
        "",
        " ",
        ".",
        "..",
        "...",
        "a.b.c",
        "not a token",
        "Bearer abc",
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJhbGciOiJIUzI1NiJ9..",
        "%%%.%%%.%%%",
        "ünïcødé.tøkën.ßig",
        "\0\0\0",
        huge.as_str(),
        padded.as_str(),
    ] {
        assert_invalid_access(&codec, token);
        assert_invalid_refresh(&codec, token);
    }
    // Headers that are not JSON objects, or JSON with the wrong shapes.
    let body = b64(payload().to_string());
    for header in ["null", "[]", "\"HS256\"", "{", "{\"alg\":42}"] {
        let token = format!("{}.{body}.{}", b64(header), b64([0u8; 32]));
        assert_invalid_access(&codec, &token);
    }
}

#[test]
fn a_large_but_bounded_token_is_still_parsed_and_checked() {
    // Just under the limit, with an extra claim we do not know: parsed, checked, accepted.
    let codec = codec();
    let padding = "x".repeat(MAX_TOKEN_LEN / 2);
    let token = forge(
        &access_header(&codec),
        &with(payload(), "pad", json!(padding)),
        "HS256",
        ACCESS_SECRET,
    );
    assert!(token.len() < MAX_TOKEN_LEN);
    assert!(
        codec.verify_access(&token, now()).is_ok(),
        "extra claims are ignored"
    );
}

// --- configuration --------------------------------------------------------------------

#[test]
fn weak_or_inconsistent_configuration_is_refused() {
    let short = b"too-short";
    assert_eq!(
        JwtCodec::new(config(short, REFRESH_SECRET)).err(),
        Some(JwtConfigError::SecretTooShort { which: "access" })
    );
    assert_eq!(
        JwtCodec::new(config(ACCESS_SECRET, short)).err(),
        Some(JwtConfigError::SecretTooShort { which: "refresh" })
    );
    assert_eq!(
        JwtCodec::new(config(ACCESS_SECRET, ACCESS_SECRET)).err(),
        Some(JwtConfigError::SameSecret)
    );
    let mut c = config(ACCESS_SECRET, REFRESH_SECRET);
    c.issuer = String::new();
    assert_eq!(JwtCodec::new(c).err(), Some(JwtConfigError::EmptyIssuer));
    let mut c = config(ACCESS_SECRET, REFRESH_SECRET);
    c.audience = String::new();
    assert_eq!(JwtCodec::new(c).err(), Some(JwtConfigError::EmptyAudience));
    let mut c = config(ACCESS_SECRET, REFRESH_SECRET);
    c.leeway = Duration::from_secs(3600);
    assert_eq!(JwtCodec::new(c).err(), Some(JwtConfigError::LeewayTooLarge));
}

#[test]
fn debug_output_never_shows_secrets() {
    let config = config(ACCESS_SECRET, REFRESH_SECRET);
    let codec = JwtCodec::new(config.clone()).expect("valid");
    for printed in [
        format!("{config:?}"),
        format!("{codec:?}"),
        format!("{codec:#?}"),
    ] {
        for secret in [ACCESS_SECRET, REFRESH_SECRET] {
            assert!(
                !printed.contains(String::from_utf8_lossy(secret).as_ref()),
                "{printed}"
            );
            assert!(!printed.contains(&b64(secret)), "{printed}");
            // Nor as a list of bytes.
            assert!(
                !printed.contains(&format!("{:?}", &secret[..4])[1..10]),
                "{printed}"
            );
        }
    }
    assert!(format!("{codec:?}").contains(codec.access_key_id()));
}

#[test]
fn a_login_after_issue_is_refused() {
    // `auth_time` is when the session's login happened; a token cannot predate it.
    let codec = codec();
    let token = forge(
        &access_header(&codec),
        &with(payload(), "auth_time", json!(NOW + 1)),
        "HS256",
        ACCESS_SECRET,
    );
    assert_invalid_access(&codec, &token);
}
