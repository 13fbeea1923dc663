//! Token keys: `kid`s, rotation without logging anyone out, Ed25519 access tokens and the
//! JWKS that lets other services verify them with no shared secret.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::redis::start_redis;

const JWKS: &str = "/.well-known/jwks.json";

const OLD_ACCESS: &str = "old-access-secret-0123456789abcdefghijkl";
const OLD_REFRESH: &str = "old-refresh-secret-0123456789abcdefghijk";
const NEW_ACCESS: &str = "new-access-secret-0123456789abcdefghijkl";
const NEW_REFRESH: &str = "new-refresh-secret-0123456789abcdefghijk";

impl TestApp {
    async fn jwks(&self) -> reqwest::Response {
        self.client
            .get(self.url(JWKS))
            .send()
            .await
            .expect("request sent")
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT header")
        .kid
        .expect("every token names its key")
}

/// The JWKS as another service would fetch it: status, caching, body.
async fn fetch_jwks(app: &TestApp) -> JwkSet {
    let response = app.jwks().await;
    assert_eq!(response.status(), StatusCode::OK);
    let cache = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(cache, "public, max-age=300", "the JWKS is cacheable");
    response.json().await.expect("a JWK set")
}

#[tokio::test]
async fn with_hs256_the_jwks_is_empty_and_every_token_names_its_key() {
    let app = spawn_app_with(&[
        ("ACCESS_SECRET", OLD_ACCESS),
        ("REFRESH_SECRET", OLD_REFRESH),
    ])
    .await;
    let raw: Value = app.jwks().await.json().await.expect("json");
    assert_eq!(
        raw,
        serde_json::json!({ "keys": [] }),
        "secrets are never published"
    );
    assert!(fetch_jwks(&app).await.keys.is_empty());

    let tokens = app.login_user().await;
    let access = kid_of(&tokens.access);
    let refresh = kid_of(&tokens.refresh);
    assert_eq!(access.len(), 11, "a truncated hash, not the key");
    assert_ne!(access, refresh);
    for token in [&tokens.access, &tokens.refresh] {
        let header = jsonwebtoken::decode_header(token).expect("header");
        assert_eq!(header.alg, Algorithm::HS256);
        assert!(!token.contains(OLD_ACCESS) && !token.contains(OLD_REFRESH));
    }
    // The kid is a function of the key alone: another server with the same secrets
    // names the same keys.
    let twin = spawn_app_with(&[
        ("ACCESS_SECRET", OLD_ACCESS),
        ("REFRESH_SECRET", OLD_REFRESH),
    ])
    .await;
    let again = twin.login_user().await;
    assert_eq!(kid_of(&again.access), access);
    assert_eq!(kid_of(&again.refresh), refresh);

    // Other responses still forbid caching.
    let me = app.me(&tokens.access).await;
    assert_eq!(me.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn an_access_token_verifies_with_the_published_jwks_alone() {
    let app = spawn_app_with(&[("ACCESS_SIGNING", "eddsa")]).await;
    let jwks = fetch_jwks(&app).await;
    assert_eq!(
        jwks.keys.len(),
        1,
        "development generates one key per start"
    );
    let raw: Value = app.jwks().await.json().await.expect("json");
    let key = &raw["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "EdDSA");
    assert!(key.get("d").is_none(), "never the private key: {key}");

    let tokens = app.login_user().await;
    let header = jsonwebtoken::decode_header(&tokens.access).expect("header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));

    // Only the JWKS and jsonwebtoken: no server code, no secret.
    let jwk = jwks
        .find(&kid_of(&tokens.access))
        .expect("the token's kid is published");
    let key = DecodingKey::from_jwk(jwk).expect("a usable public key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["jwt-todo"]);
    validation.set_audience(&["jwt-todo"]);
    let verified =
        jsonwebtoken::decode::<Value>(&tokens.access, &key, &validation).expect("verifies");
    assert_eq!(verified.claims["sid"], tokens.body["session_id"]);

    // The refresh token stays an HMAC token that nobody else can verify.
    assert!(jsonwebtoken::decode::<Value>(&tokens.refresh, &key, &validation).is_err());
    assert_eq!(
        jsonwebtoken::decode_header(&tokens.refresh)
            .expect("header")
            .alg,
        Algorithm::HS256
    );
    assert_eq!(app.me(&tokens.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_hs256_forgery_keyed_with_the_public_key_is_refused() {
    // RFC 8725 §2.1: a verifier that lets the token's `alg` pick the algorithm would
    // check an HS256 token against the public key as an HMAC secret.
    let app = spawn_app_with(&[("ACCESS_SIGNING", "eddsa")]).await;
    let jwks = fetch_jwks(&app).await;
    let tokens = app.login_user().await;
    // The genuine token works, so the forgeries below fail for their signature alone.
    assert_eq!(app.me(&tokens.access).await.status(), StatusCode::OK);

    let claims: Value = jsonwebtoken::dangerous::insecure_decode(&tokens.access)
        .expect("payload")
        .claims;
    let kid = kid_of(&tokens.access);
    let raw: Value = serde_json::to_value(&jwks).expect("json");
    let x = raw["keys"][0]["x"].as_str().expect("x").to_owned();
    let x_bytes = base64_url_decode(&x);
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid);
    for secret in [x_bytes.as_slice(), x.as_bytes()] {
        let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
            .expect("forged");
        assert_unauthorized(app.me(&forged).await, Some("invalid_token")).await;
    }
}

/// Base64url without padding, as JWK members are written.
fn base64_url_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes() {
        let value = ALPHABET.iter().position(|&c| c == byte).expect("base64url") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

#[tokio::test]
async fn a_secret_rotation_keeps_sessions_until_the_old_key_is_removed() {
    // Sessions must outlive the restarts, so the store is a real Redis.
    let redis = start_redis().await;
    let url = redis.url.as_str();

    // Before: the old secrets.
    let before = spawn_app_with(&[
        ("REDIS_URL", url),
        ("ACCESS_SECRET", OLD_ACCESS),
        ("REFRESH_SECRET", OLD_REFRESH),
    ])
    .await;
    let first = before.login_user().await;
    let second = before.login_user().await;
    drop(before);

    // Restarted with new signing secrets, the old ones kept for verification.
    let rotated = spawn_app_with(&[
        ("REDIS_URL", url),
        ("ACCESS_SECRET", NEW_ACCESS),
        ("REFRESH_SECRET", NEW_REFRESH),
        ("ACCESS_SECRETS_PREVIOUS", OLD_ACCESS),
        ("REFRESH_SECRETS_PREVIOUS", OLD_REFRESH),
    ])
    .await;
    assert_eq!(rotated.me(&first.access).await.status(), StatusCode::OK);
    let response = rotated.refresh(&first.refresh).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let renewed = tokens(response).await;
    assert_ne!(
        kid_of(&renewed.access),
        kid_of(&first.access),
        "signed with the new key"
    );
    assert_ne!(kid_of(&renewed.refresh), kid_of(&first.refresh));
    assert_eq!(rotated.me(&renewed.access).await.status(), StatusCode::OK);
    // The old refresh token is spent, as after any rotation: its replay ends the session.
    assert_eq!(
        rotated.refresh(&first.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let third = rotated.login_user().await;
    drop(rotated);

    // The old secrets removed: what they signed is refused, what the new ones signed works.
    let after = spawn_app_with(&[
        ("REDIS_URL", url),
        ("ACCESS_SECRET", NEW_ACCESS),
        ("REFRESH_SECRET", NEW_REFRESH),
    ])
    .await;
    assert_unauthorized(after.me(&second.access).await, Some("invalid_token")).await;
    assert_unauthorized(after.refresh(&second.refresh).await, Some("invalid_token")).await;
    assert_eq!(after.me(&third.access).await.status(), StatusCode::OK);
    assert_eq!(
        after.refresh(&third.refresh).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn an_ed25519_key_from_a_file_signs_and_a_switch_from_hs256_keeps_sessions() {
    let redis = start_redis().await;
    let url = redis.url.as_str();
    let path =
        std::env::temp_dir().join(format!("jwt-todo-keys-test-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&path, RFC8037_PRIVATE_PEM).expect("key file");
    let path_text = path.to_str().expect("utf-8 path").to_owned();

    let hs256 = spawn_app_with(&[
        ("REDIS_URL", url),
        ("ACCESS_SECRET", OLD_ACCESS),
        ("REFRESH_SECRET", OLD_REFRESH),
    ])
    .await;
    let issued_under_hs256 = hs256.login_user().await;
    drop(hs256);

    // Switch to Ed25519; the HMAC secret verifies the access tokens it signed until they
    // expire.
    let eddsa = spawn_app_with(&[
        ("REDIS_URL", url),
        ("ACCESS_SIGNING", "eddsa"),
        ("ACCESS_ED25519_KEY", &path_text),
        ("ACCESS_SECRETS_PREVIOUS", OLD_ACCESS),
        ("REFRESH_SECRET", OLD_REFRESH),
    ])
    .await;
    let _ = std::fs::remove_file(&path);
    let jwks = fetch_jwks(&eddsa).await;
    assert_eq!(
        jwks.keys.len(),
        1,
        "only the public key; never the HMAC secret"
    );
    assert_eq!(
        jwks.keys[0].common.key_id.as_deref(),
        Some(RFC8037_THUMBPRINT)
    );
    assert_eq!(
        eddsa.me(&issued_under_hs256.access).await.status(),
        StatusCode::OK
    );
    let renewed = eddsa.refresh(&issued_under_hs256.refresh).await;
    assert_eq!(renewed.status(), StatusCode::CREATED);
    let renewed = tokens(renewed).await;
    assert_eq!(kid_of(&renewed.access), RFC8037_THUMBPRINT);
    assert_eq!(eddsa.me(&renewed.access).await.status(), StatusCode::OK);
}

/// RFC 8037 Appendix A.1's example key, and its thumbprint from A.3.
const RFC8037_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----
";
const RFC8037_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
