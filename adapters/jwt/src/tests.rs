//! Attacks on the codec. Forged tokens are built by hand (base64url + HMAC) so that
//! nothing in `jsonwebtoken` can "helpfully" normalise them; `forged_valid_tokens_verify`
//! shows the forging helper itself is right, so each rejection below is meaningful.

use std::time::Duration;

use application::ports::{TokenCodec, TokenError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{AccessClaims, AuthMethods, RefreshClaims, Timestamp};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

use super::*;
use crate::keys::hmac_key_id;
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
        client: None,
        amr: AuthMethods::Password,
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
        client: None,
        amr: AuthMethods::Password,
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
fn the_oauth_client_travels_in_both_kinds_and_a_client_less_token_names_none() {
    let codec = codec();
    let client = domain::ClientId::parse("web~app").expect("a client id");
    let access = AccessClaims {
        client: Some(client),
        ..access_claims(NOW + 900)
    };
    let token = codec.issue_access(&access).expect("signs");
    assert_eq!(
        codec.verify_access(&token, now()).expect("verifies"),
        access
    );
    let refresh = RefreshClaims {
        client: Some(client),
        ..refresh_claims(NOW + 900)
    };
    let token = codec.issue_refresh(&refresh).expect("signs");
    assert_eq!(
        codec.verify_refresh(&token, now()).expect("verifies"),
        refresh
    );
    // Without a client the claim is absent, not null (RFC 9068 names it only when known).
    let token = codec
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    let payload = token.split('.').nth(1).expect("a payload");
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json");
    assert!(payload.get("client_id").is_none(), "{payload}");
}

#[test]
fn a_signed_token_with_a_malformed_client_id_is_invalid() {
    let codec = codec();
    for bad in [json!("a b"), json!(""), json!(42), json!("x".repeat(65))] {
        let token = forge(
            &access_header(&codec),
            &with(payload(), "client_id", bad.clone()),
            "HS256",
            ACCESS_SECRET,
        );
        assert_invalid_access(&codec, &token);
    }
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
        Some(JwtConfigError::SecretTooShort {
            which: "access",
            slot: KeySlot::Signing
        })
    );
    assert_eq!(
        JwtCodec::new(config(ACCESS_SECRET, short)).err(),
        Some(JwtConfigError::SecretTooShort {
            which: "refresh",
            slot: KeySlot::Signing
        })
    );
    assert_eq!(
        JwtCodec::new(config(ACCESS_SECRET, ACCESS_SECRET)).err(),
        Some(JwtConfigError::SameSecret {
            refresh: KeySlot::Signing
        })
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

// --- several keys: rotation -----------------------------------------------------------

const NEW_ACCESS_SECRET: &[u8] = b"access-secret-NEW-0123456789abcdefghijklmn";
const NEW_REFRESH_SECRET: &[u8] = b"refresh-secret-NEW-0123456789abcdefghijklmn";

fn secret(bytes: &[u8]) -> SecretSlice<u8> {
    SecretSlice::from(bytes.to_vec())
}

/// The configuration after a rotation: new signing secrets, the old ones kept for
/// verification.
fn rotated_config() -> JwtConfig {
    let mut config = config(NEW_ACCESS_SECRET, NEW_REFRESH_SECRET);
    config.access_previous = vec![AccessVerificationKey::Hs256(secret(ACCESS_SECRET))];
    config.refresh_secrets_previous = vec![secret(REFRESH_SECRET)];
    config
}

#[test]
fn tokens_signed_before_a_rotation_verify_with_the_previous_keys() {
    let old = codec();
    let access = old.issue_access(&access_claims(NOW + 900)).expect("signs");
    let refresh = old
        .issue_refresh(&refresh_claims(NOW + 900))
        .expect("signs");

    let rotated = JwtCodec::new(rotated_config()).expect("valid");
    assert_eq!(
        rotated
            .verify_access(&access, now())
            .expect("old access token"),
        access_claims(NOW + 900)
    );
    assert_eq!(
        rotated
            .verify_refresh(&refresh, now())
            .expect("old refresh token"),
        refresh_claims(NOW + 900)
    );

    // Once the old keys are removed, their tokens are unknown.
    let after = JwtCodec::new(config(NEW_ACCESS_SECRET, NEW_REFRESH_SECRET)).expect("valid");
    assert_invalid_access(&after, &access);
    assert_invalid_refresh(&after, &refresh);
}

#[test]
fn previous_keys_verify_but_never_sign() {
    let rotated = JwtCodec::new(rotated_config()).expect("valid");
    let access = rotated
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    let refresh = rotated
        .issue_refresh(&refresh_claims(NOW + 900))
        .expect("signs");
    let new_access_kid = hmac_key_id(NEW_ACCESS_SECRET);
    let new_refresh_kid = hmac_key_id(NEW_REFRESH_SECRET);
    assert_eq!(rotated.access_key_id(), new_access_kid);
    assert_eq!(rotated.refresh_key_id(), new_refresh_kid);
    let header = jsonwebtoken::decode_header(&access).expect("header");
    assert_eq!(header.kid.as_deref(), Some(new_access_kid.as_str()));
    let header = jsonwebtoken::decode_header(&refresh).expect("header");
    assert_eq!(header.kid.as_deref(), Some(new_refresh_kid.as_str()));
    assert_eq!(
        rotated.access_key_ids(),
        vec![new_access_kid.as_str(), codec().access_key_id()]
    );
    assert_eq!(
        rotated.refresh_key_ids(),
        vec![new_refresh_kid.as_str(), codec().refresh_key_id()]
    );

    // A codec that only knows the old keys refuses what the rotated one signs.
    assert_invalid_access(&codec(), &access);
    assert_invalid_refresh(&codec(), &refresh);
}

#[test]
fn the_kid_selects_the_key_and_a_wrong_pairing_fails() {
    let rotated = JwtCodec::new(rotated_config()).expect("valid");
    let old_kid = hmac_key_id(ACCESS_SECRET);
    let new_kid = hmac_key_id(NEW_ACCESS_SECRET);
    let header = |kid: &str| json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid });
    // Right key for its kid: accepted, whichever of the two.
    assert!(
        rotated
            .verify_access(
                &forge(&header(&old_kid), &payload(), "HS256", ACCESS_SECRET),
                now()
            )
            .is_ok()
    );
    assert!(
        rotated
            .verify_access(
                &forge(&header(&new_kid), &payload(), "HS256", NEW_ACCESS_SECRET),
                now()
            )
            .is_ok()
    );
    // A genuine signature under the other kid: refused (the kid is not a hint, it is
    // the key).
    assert_invalid_access(
        &rotated,
        &forge(&header(&new_kid), &payload(), "HS256", ACCESS_SECRET),
    );
    assert_invalid_access(
        &rotated,
        &forge(&header(&old_kid), &payload(), "HS256", NEW_ACCESS_SECRET),
    );
    // No kid, or one nobody holds.
    assert_invalid_access(
        &rotated,
        &forge(
            &without(header(&old_kid), "kid"),
            &payload(),
            "HS256",
            ACCESS_SECRET,
        ),
    );
    assert_invalid_access(
        &rotated,
        &forge(&header("AAAAAAAAAAA"), &payload(), "HS256", ACCESS_SECRET),
    );
}

#[test]
fn kinds_stay_apart_across_rotated_keys() {
    let old = codec();
    let rotated = JwtCodec::new(rotated_config()).expect("valid");
    // Old and new tokens of either kind never pass for the other kind.
    for codec in [&old, &rotated] {
        let access = codec
            .issue_access(&access_claims(NOW + 900))
            .expect("signs");
        let refresh = codec
            .issue_refresh(&refresh_claims(NOW + 900))
            .expect("signs");
        assert_invalid_access(&rotated, &refresh);
        assert_invalid_refresh(&rotated, &access);
    }
    // A refresh-typed token signed with a previous *access* secret under its kid, and the
    // reverse: each kid is looked up in its own kind's ring only.
    let forged_refresh = forge(
        &json!({ "alg": "HS256", "typ": "rt+jwt", "kid": hmac_key_id(ACCESS_SECRET) }),
        &payload(),
        "HS256",
        ACCESS_SECRET,
    );
    assert_invalid_refresh(&rotated, &forged_refresh);
    let forged_access = forge(
        &json!({ "alg": "HS256", "typ": "at+jwt", "kid": hmac_key_id(REFRESH_SECRET) }),
        &payload(),
        "HS256",
        REFRESH_SECRET,
    );
    assert_invalid_access(&rotated, &forged_access);
}

#[test]
fn rotated_configurations_that_would_mix_kinds_or_repeat_keys_are_refused() {
    // A previous access secret that is a refresh secret (current or previous), and the
    // reverse.
    let mut c = rotated_config();
    c.access_previous
        .push(AccessVerificationKey::Hs256(secret(NEW_REFRESH_SECRET)));
    assert_eq!(
        JwtCodec::new(c).err(),
        Some(JwtConfigError::SameSecret {
            refresh: KeySlot::Signing
        })
    );
    let mut c = rotated_config();
    c.refresh_secrets_previous.push(secret(NEW_ACCESS_SECRET));
    assert_eq!(
        JwtCodec::new(c).err(),
        Some(JwtConfigError::SameSecret {
            refresh: KeySlot::Previous(1)
        })
    );
    let mut c = rotated_config();
    c.refresh_secrets_previous.push(secret(ACCESS_SECRET));
    assert_eq!(
        JwtCodec::new(c).err(),
        Some(JwtConfigError::SameSecret {
            refresh: KeySlot::Previous(1)
        })
    );

    // The same key twice in one ring.
    let mut c = rotated_config();
    c.access_previous
        .push(AccessVerificationKey::Hs256(secret(NEW_ACCESS_SECRET)));
    assert_eq!(
        JwtCodec::new(c).err(),
        Some(JwtConfigError::DuplicateKey {
            which: "access",
            slot: KeySlot::Previous(1),
            earlier: KeySlot::Signing
        })
    );
    let mut c = rotated_config();
    c.refresh_secrets_previous.push(secret(REFRESH_SECRET));
    assert_eq!(
        JwtCodec::new(c).err(),
        Some(JwtConfigError::DuplicateKey {
            which: "refresh",
            slot: KeySlot::Previous(1),
            earlier: KeySlot::Previous(0)
        })
    );

    // Short previous secrets, and too many.
    let mut c = rotated_config();
    c.access_previous
        .push(AccessVerificationKey::Hs256(secret(b"short")));
    assert_eq!(
        JwtCodec::new(c).err(),
        Some(JwtConfigError::SecretTooShort {
            which: "access",
            slot: KeySlot::Previous(1)
        })
    );
    let mut c = rotated_config();
    c.refresh_secrets_previous.push(secret(b"short"));
    assert_eq!(
        JwtCodec::new(c).err(),
        Some(JwtConfigError::SecretTooShort {
            which: "refresh",
            slot: KeySlot::Previous(1)
        })
    );
    let mut c = config(NEW_ACCESS_SECRET, NEW_REFRESH_SECRET);
    c.refresh_secrets_previous = (0..=MAX_PREVIOUS_KEYS)
        .map(|i| secret(format!("refresh-previous-{i:02}-0123456789abcdefghij").as_bytes()))
        .collect();
    assert_eq!(
        JwtCodec::new(c).err(),
        Some(JwtConfigError::TooManyPreviousKeys { which: "refresh" })
    );
}

#[test]
fn debug_output_of_a_rotated_codec_shows_key_ids_only() {
    let config = rotated_config();
    let codec = JwtCodec::new(config.clone()).expect("valid");
    for printed in [format!("{config:?}"), format!("{codec:?}")] {
        for secret in [
            ACCESS_SECRET,
            REFRESH_SECRET,
            NEW_ACCESS_SECRET,
            NEW_REFRESH_SECRET,
        ] {
            assert!(
                !printed.contains(String::from_utf8_lossy(secret).as_ref()),
                "{printed}"
            );
            assert!(!printed.contains(&b64(secret)), "{printed}");
        }
    }
    let printed = format!("{codec:?}");
    assert!(printed.contains(&hmac_key_id(ACCESS_SECRET)), "{printed}");
    assert!(printed.contains(&hmac_key_id(REFRESH_SECRET)), "{printed}");
}

// --- Ed25519 access tokens ------------------------------------------------------------

/// RFC 8037 Appendix A.1's example key, as PKCS#8 PEM (`openssl pkey` prints the same).
const RFC8037_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----
";
/// Its public key as SPKI PEM, and as JWK `x` (RFC 8037 A.2).
const RFC8037_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
-----END PUBLIC KEY-----
";
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
/// Its RFC 7638 thumbprint, given in RFC 8037 A.3.
const RFC8037_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

fn rfc8037_key() -> Ed25519PrivateKey {
    Ed25519PrivateKey::from_pkcs8_pem(RFC8037_PRIVATE_PEM).expect("RFC 8037 key parses")
}

fn ed25519_config(key: Ed25519PrivateKey) -> JwtConfig {
    let mut config = config(ACCESS_SECRET, REFRESH_SECRET);
    config.access_signing = AccessSigningKey::Ed25519(Box::new(key));
    config
}

fn ed25519_codec() -> JwtCodec {
    JwtCodec::new(ed25519_config(rfc8037_key())).expect("valid")
}

#[test]
fn ed25519_keys_parse_and_their_kid_is_the_rfc7638_thumbprint() {
    let key = rfc8037_key();
    let public = key.public_key();
    assert_eq!(public.jwk_x(), RFC8037_X);
    assert_eq!(public.key_id(), RFC8037_THUMBPRINT);
    assert_eq!(
        Ed25519PublicKey::parse(RFC8037_PUBLIC_PEM).expect("pem"),
        public
    );
    assert_eq!(Ed25519PublicKey::parse(RFC8037_X).expect("x"), public);
    // A generated key round-trips through PEM.
    let generated = Ed25519PrivateKey::generate();
    let pem = generated.to_pkcs8_pem().expect("encodes");
    let again = Ed25519PrivateKey::from_pkcs8_pem(pem.expose_secret()).expect("parses");
    assert_eq!(again.public_key(), generated.public_key());
    assert_ne!(generated.public_key(), public, "fresh randomness");

    for bad in [
        "",
        "not a key",
        RFC8037_PUBLIC_PEM,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        assert_eq!(
            Ed25519PrivateKey::from_pkcs8_pem(bad).err(),
            Some(JwtConfigError::BadEd25519Key),
            "{bad}"
        );
    }
    for bad in ["", "AAAA", RFC8037_PRIVATE_PEM, &format!("{RFC8037_X}AA")] {
        assert_eq!(
            Ed25519PublicKey::parse(bad).err(),
            Some(JwtConfigError::BadEd25519Key),
            "{bad}"
        );
    }
}

#[test]
fn ed25519_access_tokens_round_trip_and_refresh_stays_hmac() {
    let codec = ed25519_codec();
    let claims = access_claims(NOW + 900);
    let token = codec.issue_access(&claims).expect("signs");
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), Some(RFC8037_THUMBPRINT));
    assert_eq!(codec.access_algorithm(), Algorithm::EdDSA);
    assert_eq!(
        codec.verify_access(&token, now()).expect("verifies"),
        claims
    );

    let refresh = codec
        .issue_refresh(&refresh_claims(NOW + 900))
        .expect("signs");
    let header = jsonwebtoken::decode_header(&refresh).expect("header");
    assert_eq!(header.alg, Algorithm::HS256);
    assert!(codec.verify_refresh(&refresh, now()).is_ok());
    assert_invalid_access(&codec, &refresh);
    assert_invalid_refresh(&codec, &token);
}

#[test]
fn the_jwks_verifies_access_tokens_on_its_own() {
    let codec = ed25519_codec();
    let token = codec
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    // As another service would: parse the published JSON, pick the key by kid, verify.
    let published = serde_json::to_value(codec.jwks()).expect("serialises");
    assert_eq!(
        published,
        json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": RFC8037_X,
            "kid": RFC8037_THUMBPRINT, "use": "sig", "alg": "EdDSA",
        }]})
    );
    let set: JwkSet = serde_json::from_value(published).expect("a JWK set");
    let kid = jsonwebtoken::decode_header(&token)
        .expect("header")
        .kid
        .expect("kid");
    let jwk = set.find(&kid).expect("the token's key is published");
    let key = DecodingKey::from_jwk(jwk).expect("usable key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("verifies");
    assert_eq!(data.claims["sub"], USER);

    // And never anything secret: with HS256 the set is empty.
    assert!(self::codec().jwks().keys.is_empty());
    let printed = serde_json::to_string(&codec.jwks()).expect("json");
    assert!(!printed.contains("\"d\""), "{printed}");
}

#[test]
fn key_confusion_with_the_public_key_as_hmac_secret_is_refused() {
    // RFC 8725 §2.1: a verifier that lets the token's `alg` choose would check this HS256
    // token against the public key's bytes as an HMAC secret, and accept it.
    let codec = ed25519_codec();
    let public = rfc8037_key().public_key();
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": public.key_id() });
    let raw = URL_SAFE_NO_PAD.decode(RFC8037_X).expect("b64");
    for secret in [
        raw.as_slice(),
        RFC8037_X.as_bytes(),
        RFC8037_PUBLIC_PEM.as_bytes(),
    ] {
        assert_invalid_access(&codec, &forge(&header, &payload(), "HS256", secret));
    }
    // alg none (or EdDSA with no signature) under the Ed25519 kid: refused.
    for alg in ["none", "EdDSA"] {
        let header = with(header.clone(), "alg", json!(alg));
        assert_invalid_access(&codec, &forge(&header, &payload(), alg, b""));
    }
    // The genuine token with its payload changed: refused.
    let token = codec
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    let mut parts: Vec<&str> = token.split('.').collect();
    let tampered = b64(with(payload(), "sub", json!(SESSION)).to_string());
    parts[1] = &tampered;
    assert_invalid_access(&codec, &parts.join("."));
}

#[test]
fn ed25519_rotation_and_a_switch_from_hs256_keep_issued_tokens() {
    let hs_token = codec()
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    let old_key = rfc8037_key();
    let old_ed_token = ed25519_codec()
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");

    // A new Ed25519 key, with the old one's public key and the old HMAC secret accepted.
    let new_key = Ed25519PrivateKey::generate();
    let mut rotated = ed25519_config(new_key.clone());
    rotated.access_previous = vec![
        AccessVerificationKey::Ed25519(old_key.public_key()),
        AccessVerificationKey::Hs256(secret(ACCESS_SECRET)),
    ];
    let rotated = JwtCodec::new(rotated).expect("valid");
    assert!(rotated.verify_access(&old_ed_token, now()).is_ok());
    assert!(rotated.verify_access(&hs_token, now()).is_ok());
    let new_token = rotated
        .issue_access(&access_claims(NOW + 900))
        .expect("signs");
    assert_eq!(
        jsonwebtoken::decode_header(&new_token).expect("header").kid,
        Some(new_key.public_key().key_id())
    );
    // Both public keys are published, the signing key first; the HMAC secret is not.
    let kids: Vec<_> = rotated
        .jwks()
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().expect("kid"))
        .collect();
    assert_eq!(
        kids,
        vec![new_key.public_key().key_id(), RFC8037_THUMBPRINT.to_owned()]
    );

    // Without the previous keys, their tokens are refused.
    let after = JwtCodec::new(ed25519_config(new_key)).expect("valid");
    assert_invalid_access(&after, &old_ed_token);
    assert_invalid_access(&after, &hs_token);
    assert!(after.verify_access(&new_token, now()).is_ok());
}

#[test]
fn ed25519_private_keys_never_print() {
    let key = rfc8037_key();
    let config = ed25519_config(key.clone());
    let codec = JwtCodec::new(config.clone()).expect("valid");
    let private_b64 = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    for printed in [
        format!("{key:?}"),
        format!("{config:?}"),
        format!("{codec:?}"),
    ] {
        assert!(!printed.contains(private_b64), "{printed}");
        assert!(!printed.contains("MC4CAQAw"), "{printed}");
        assert!(!printed.contains("157, 97"), "{printed}"); // the first bytes of d
    }
    assert!(format!("{key:?}").contains(RFC8037_THUMBPRINT));
}

#[test]
fn production_strength_and_claim_lengths_are_checked_with_the_keys() {
    let weak = config(&[b'a'; 32], REFRESH_SECRET);
    weak.check().expect("long enough for development");
    JwtCodec::new(weak.clone()).expect("the codec does not judge strength");
    assert!(matches!(
        weak.check_strength(),
        Err(JwtConfigError::WeakSecret {
            which: "access",
            slot: KeySlot::Signing,
            ..
        })
    ));
    let mut c = config(ACCESS_SECRET, REFRESH_SECRET);
    c.issuer = "i".repeat(MAX_CLAIM_LEN + 1);
    assert_eq!(c.check(), Err(JwtConfigError::IssuerTooLong));
    let mut c = config(ACCESS_SECRET, REFRESH_SECRET);
    c.audience = "a".repeat(MAX_CLAIM_LEN);
    c.check().expect("at the bound");
}
