//! Several stateless replicas on one Redis: a token issued by one is accepted, refreshed
//! and revoked through the others, and a revocation is seen by all at once.

use reqwest::StatusCode;

use crate::helpers::*;
use crate::redis::start_redis;

/// The session cache's default `SESSION_CACHE_STALENESS`: the longest another replica's
/// write may go unseen by a replica's cache.
const CACHE_BOUND: std::time::Duration = std::time::Duration::from_millis(50);

#[tokio::test]
async fn replicas_share_sessions_through_redis() {
    let redis = start_redis().await;
    // Replicas share their signing keys (as they would share a secret in production).
    let access = "replica-access-secret-0123456789abcdef";
    let refresh = "replica-refresh-secret-0123456789abcdef";
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(
            spawn_app_with(&[
                ("REDIS_URL", &redis.url),
                ("ACCESS_SECRET", access),
                ("REFRESH_SECRET", refresh),
            ])
            .await,
        );
    }
    let [a, b, c] = &replicas[..] else {
        unreachable!("three replicas")
    };

    let issued = a.new_user("roaming").await;
    for replica in [a, b, c] {
        assert_eq!(replica.me(&issued.access).await.status(), StatusCode::OK);
    }
    // Refreshed through B; the new pair works on C and A, the spent token fails on C.
    let rotated = tokens(b.refresh(&issued.refresh).await).await;
    assert_eq!(c.me(&rotated.access).await.status(), StatusCode::OK);
    assert_eq!(
        a.create_todo(&rotated.access, "from A").await.status(),
        StatusCode::CREATED
    );
    // Logged out through C: every replica refuses both tokens of the session, C at once,
    // the others by the time their session cache's bound has passed (a push usually gets
    // there well before; `cache.rs` tests both).
    assert_eq!(c.logout(&rotated.access).await.status(), StatusCode::OK);
    tokio::time::sleep(CACHE_BOUND).await;
    for replica in [a, b, c] {
        assert_unauthorized(replica.me(&rotated.access).await, Some("invalid_token")).await;
    }
    assert_unauthorized(a.refresh(&rotated.refresh).await, Some("invalid_token")).await;

    // A replay of a spent refresh token on one replica (theft) ends the session everywhere.
    let second = b.login_ok("roaming", "a fine long passphrase").await;
    let next = tokens(a.refresh(&second.refresh).await).await;
    assert_eq!(
        c.refresh(&second.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    tokio::time::sleep(CACHE_BOUND).await;
    for replica in [a, b, c] {
        assert_eq!(
            replica.me(&next.access).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}
