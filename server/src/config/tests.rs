//! The configuration read from a lookup: defaults, every variable, and every refusal
//! naming its variable.

use std::collections::HashMap;
use std::time::Duration;

use adapter_jwt::{AccessSigningKey, AccessVerificationKey};
use adapter_redis::Deployment;
use application::ports::{SmsCaps, WindowLimit};
use domain::CountryCode;
use secrecy::ExposeSecret;

use super::*;
use crate::serve::ConnectionLimits;

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| env.get(k).cloned())
}

#[test]
fn defaults_are_a_working_development_server() {
    let config = load(&[]).expect("defaults load");
    assert_eq!(config.http.bind_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(config.tokens.policy.access_ttl, Duration::from_secs(900));
    assert_eq!(
        config.tokens.policy.refresh_ttl,
        Duration::from_secs(604_800)
    );
    assert_eq!(
        config.tokens.policy.reuse_grace,
        Duration::ZERO,
        "strict by default"
    );
    assert_eq!(
        config.tokens.policy.max_session_lifetime,
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(config.environment, Environment::Development);
    assert!(config.store.deployment.is_none(), "the embedded store");
    let AccessSigningKey::Hs256(access_secret) = &config.tokens.jwt.access_signing else {
        panic!("HS256 by default");
    };
    assert_eq!(access_secret.expose_secret().len(), 32);
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.http.shutdown_grace, Duration::from_secs(10));
    assert_eq!(config.login_throttle, ThrottleLimits::default());
    assert_eq!(config.login_throttle.pair.max, 5);
    assert_eq!(config.login_throttle.client.max, 100);
    assert_eq!(config.login_throttle.pair.window, Duration::from_secs(900));
    assert!(
        config.http.trusted_proxies.is_empty(),
        "no proxy trusted by default"
    );
    assert_ne!(
        access_secret.expose_secret(),
        config.tokens.jwt.refresh_secret.expose_secret()
    );
    assert!(config.tokens.jwt.access_previous.is_empty());
    assert!(config.tokens.jwt.refresh_secrets_previous.is_empty());
    assert_eq!(
        config.http.connections,
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            send_timeout: Duration::from_secs(30),
            max_connections: 4096,
        }
    );
    assert_eq!(config.sms, SmsPolicy::default());
    assert_eq!(config.notifications.concurrency, 4);
    assert_eq!(
        config.notifications.delivery.max_backoff,
        Duration::from_secs(300)
    );
    assert_eq!(
        config.notifications.delivery.dead_letter_retention,
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(config.notifications.delivery.max_dead_letters, 10_000);
}

#[test]
fn sms_limits_codes_and_the_worker_are_read() {
    let config = load(&[
        (SMS_USER_HOURLY_CAP, "3"),
        (SMS_USER_DAILY_CAP, "20"),
        (SMS_NUMBER_HOURLY_CAP, "2"),
        (SMS_NUMBER_DAILY_CAP, "2"),
        (SMS_ALLOWED_COUNTRIES, " +49, +43,,+1 "),
        (PHONE_CODE_TTL, "5m"),
        (PHONE_CODE_MAX_ATTEMPTS, "3"),
        (PHONE_CODE_COOLDOWN, "30s"),
        (NOTIFY_CONCURRENCY, "8"),
        (NOTIFY_MAX_BACKOFF, "1m"),
        (NOTIFY_DEAD_LETTER_RETENTION, "30d"),
        (NOTIFY_DEAD_LETTER_MAX, "500"),
    ])
    .expect("valid");
    assert_eq!(
        config.sms,
        SmsPolicy {
            caps: SmsCaps {
                user_hourly: 3,
                user_daily: 20,
                number_hourly: 2,
                number_daily: 2,
            },
            allowed_countries: ["+49", "+43", "+1"]
                .iter()
                .map(|c| CountryCode::parse(c).expect("valid"))
                .collect(),
            code_ttl: Duration::from_secs(300),
            code_max_attempts: 3,
            code_cooldown: Duration::from_secs(30),
        }
    );
    assert_eq!(config.notifications.concurrency, 8);
    assert_eq!(
        config.notifications.delivery.max_backoff,
        Duration::from_secs(60)
    );
    assert_eq!(
        config.notifications.delivery.dead_letter_retention,
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(config.notifications.delivery.max_dead_letters, 500);
}

#[test]
fn bad_values_name_their_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[(BIND_ADDR, "nope")], BIND_ADDR),
        (&[(ACCESS_TTL, "soon")], ACCESS_TTL),
        (&[(ACCESS_TTL, "1h"), (REFRESH_TTL, "10m")], REFRESH_TTL),
        (&[(APP_ENV, "staging")], APP_ENV),
        (&[(APP_ENV, "production")], ACCESS_SECRET),
        (&[(ACCESS_SECRET, "short")], ACCESS_SECRET),
        (
            &[
                (ACCESS_SECRET, &"a".repeat(32)),
                (REFRESH_SECRET, &"a".repeat(32)),
            ],
            REFRESH_SECRET,
        ),
        (&[(JWT_LEEWAY, "1h")], JWT_LEEWAY),
        (&[(MAX_BODY_BYTES, "10")], MAX_BODY_BYTES),
        (&[(VONAGE_API_KEY, "k")], VONAGE_API_SECRET),
        (&[(VONAGE_API_SECRET, "s")], VONAGE_API_KEY),
        (
            &[(VONAGE_API_KEY, "k"), (VONAGE_API_SECRET, "s")],
            VONAGE_FROM,
        ),
        (
            &[
                (VONAGE_API_KEY, "k"),
                (VONAGE_API_SECRET, "s"),
                (VONAGE_FROM, "x"),
                (VONAGE_BASE_URL, "ftp://x"),
            ],
            VONAGE_BASE_URL,
        ),
        (&[(NOTIFY_MAX_ATTEMPTS, "0")], NOTIFY_MAX_ATTEMPTS),
        (&[(MAX_TODOS_PER_USER, "0")], MAX_TODOS_PER_USER),
        (&[(MAX_TODOS_PER_USER, "many")], MAX_TODOS_PER_USER),
        (&[(MAX_SESSIONS_PER_USER, "1000001")], MAX_SESSIONS_PER_USER),
        (&[(TODO_CREATE_LIMIT, "-1")], TODO_CREATE_LIMIT),
        (&[(TODO_CREATE_WINDOW, "25h")], TODO_CREATE_WINDOW),
        (&[(REGISTER_CLIENT_LIMIT, "0")], REGISTER_CLIENT_LIMIT),
        (&[(REGISTER_CLIENT_WINDOW, "0s")], REGISTER_CLIENT_WINDOW),
        (&[(REDIS_COMMAND_TIMEOUT, "10ms")], REDIS_COMMAND_TIMEOUT),
        (&[(REDIS_COMMAND_TIMEOUT, "1m")], REDIS_COMMAND_TIMEOUT),
        (&[(SESSION_CACHE_STALENESS, "2ms")], SESSION_CACHE_STALENESS),
        (&[(SESSION_CACHE_STALENESS, "2s")], SESSION_CACHE_STALENESS),
        (
            &[(SESSION_CACHE_STALENESS, "soon")],
            SESSION_CACHE_STALENESS,
        ),
        (&[(SESSION_CACHE_CAPACITY, "99")], SESSION_CACHE_CAPACITY),
        (
            &[(SESSION_CACHE_CAPACITY, "1000001")],
            SESSION_CACHE_CAPACITY,
        ),
        (&[(SMS_USER_HOURLY_CAP, "0")], SMS_USER_HOURLY_CAP),
        (&[(SMS_USER_DAILY_CAP, "100001")], SMS_USER_DAILY_CAP),
        (&[(SMS_USER_DAILY_CAP, "5")], SMS_USER_DAILY_CAP),
        (&[(SMS_NUMBER_HOURLY_CAP, "many")], SMS_NUMBER_HOURLY_CAP),
        (
            &[(SMS_NUMBER_HOURLY_CAP, "20"), (SMS_NUMBER_DAILY_CAP, "19")],
            SMS_NUMBER_DAILY_CAP,
        ),
        (&[(SMS_ALLOWED_COUNTRIES, "49")], SMS_ALLOWED_COUNTRIES),
        (&[(SMS_ALLOWED_COUNTRIES, "+49,+0")], SMS_ALLOWED_COUNTRIES),
        (&[(SMS_ALLOWED_COUNTRIES, "+1234")], SMS_ALLOWED_COUNTRIES),
        (&[(PHONE_CODE_TTL, "0s")], PHONE_CODE_TTL),
        (&[(PHONE_CODE_TTL, "2h")], PHONE_CODE_TTL),
        (&[(PHONE_CODE_MAX_ATTEMPTS, "0")], PHONE_CODE_MAX_ATTEMPTS),
        (&[(PHONE_CODE_MAX_ATTEMPTS, "11")], PHONE_CODE_MAX_ATTEMPTS),
        (&[(PHONE_CODE_COOLDOWN, "0s")], PHONE_CODE_COOLDOWN),
        (&[(PHONE_CODE_COOLDOWN, "soon")], PHONE_CODE_COOLDOWN),
        (&[(NOTIFY_CONCURRENCY, "0")], NOTIFY_CONCURRENCY),
        (&[(NOTIFY_CONCURRENCY, "65")], NOTIFY_CONCURRENCY),
        (&[(NOTIFY_MAX_BACKOFF, "0s")], NOTIFY_MAX_BACKOFF),
        (&[(NOTIFY_MAX_BACKOFF, "2h")], NOTIFY_MAX_BACKOFF),
        (
            &[(NOTIFY_DEAD_LETTER_RETENTION, "400d")],
            NOTIFY_DEAD_LETTER_RETENTION,
        ),
        (&[(NOTIFY_DEAD_LETTER_MAX, "0")], NOTIFY_DEAD_LETTER_MAX),
        (
            &[
                (REDIS_URL, "redis://a:6379"),
                (REDIS_CLUSTER_URLS, "redis://b:6379"),
            ],
            REDIS_CLUSTER_URLS,
        ),
        (&[(REDIS_CLUSTER_URLS, "b:6379")], REDIS_CLUSTER_URLS),
        (&[(REDIS_CLUSTER_URLS, " , ")], REDIS_CLUSTER_URLS),
        (
            &[(REDIS_SENTINEL_URLS, "redis://s:26379")],
            REDIS_SENTINEL_MASTER,
        ),
        (&[(REDIS_SENTINEL_MASTER, "mymaster")], REDIS_SENTINEL_URLS),
        (
            &[
                (REDIS_URL, "redis://a:6379"),
                (REDIS_SENTINEL_URLS, "redis://s:26379"),
                (REDIS_SENTINEL_MASTER, "mymaster"),
            ],
            REDIS_SENTINEL_URLS,
        ),
        (
            &[
                (REDIS_SENTINEL_URLS, "s:26379"),
                (REDIS_SENTINEL_MASTER, "mymaster"),
            ],
            REDIS_SENTINEL_URLS,
        ),
        (&[(LOG_FORMAT, "xml")], LOG_FORMAT),
        (&[(SHUTDOWN_GRACE, "soon")], SHUTDOWN_GRACE),
        (&[(SHUTDOWN_GRACE, "1h")], SHUTDOWN_GRACE),
        (&[(LOGIN_PAIR_LIMIT, "0")], LOGIN_PAIR_LIMIT),
        (&[(LOGIN_PAIR_LIMIT, "five")], LOGIN_PAIR_LIMIT),
        (&[(LOGIN_CLIENT_LIMIT, "2000000")], LOGIN_CLIENT_LIMIT),
        (&[(LOGIN_CLIENT_LIMIT, "3")], LOGIN_CLIENT_LIMIT),
        (&[(LOGIN_PAIR_WINDOW, "0s")], LOGIN_PAIR_WINDOW),
        (&[(LOGIN_CLIENT_WINDOW, "2d")], LOGIN_CLIENT_WINDOW),
        (&[(LOGIN_CLIENT_WINDOW, "soon")], LOGIN_CLIENT_WINDOW),
        (&[(TRUSTED_PROXIES, "10.0.0.0/33")], TRUSTED_PROXIES),
        (
            &[(TRUSTED_PROXIES, "10.0.0.1, proxy.local")],
            TRUSTED_PROXIES,
        ),
        (&[(REFRESH_REUSE_GRACE, "5m")], REFRESH_REUSE_GRACE),
        (&[(HTTP_HEADER_TIMEOUT, "soon")], HTTP_HEADER_TIMEOUT),
        (&[(HTTP_HEADER_TIMEOUT, "0s")], HTTP_HEADER_TIMEOUT),
        (&[(HTTP_HEADER_TIMEOUT, "99ms")], HTTP_HEADER_TIMEOUT),
        (&[(HTTP_HEADER_TIMEOUT, "301s")], HTTP_HEADER_TIMEOUT),
        (&[(HTTP_BODY_TIMEOUT, "0s")], HTTP_BODY_TIMEOUT),
        (&[(HTTP_BODY_TIMEOUT, "11m")], HTTP_BODY_TIMEOUT),
        (&[(HTTP_IDLE_TIMEOUT, "50ms")], HTTP_IDLE_TIMEOUT),
        (&[(HTTP_IDLE_TIMEOUT, "2h")], HTTP_IDLE_TIMEOUT),
        (&[(HTTP_SEND_TIMEOUT, "0s")], HTTP_SEND_TIMEOUT),
        (&[(HTTP_SEND_TIMEOUT, "1h")], HTTP_SEND_TIMEOUT),
        (&[(HTTP_MAX_CONNECTIONS, "0")], HTTP_MAX_CONNECTIONS),
        (&[(HTTP_MAX_CONNECTIONS, "-1")], HTTP_MAX_CONNECTIONS),
        (&[(HTTP_MAX_CONNECTIONS, "many")], HTTP_MAX_CONNECTIONS),
        (&[(HTTP_MAX_CONNECTIONS, "1000001")], HTTP_MAX_CONNECTIONS),
        (
            &[(SESSION_MAX_LIFETIME, "1s"), (ACCESS_TTL, "1m")],
            SESSION_MAX_LIFETIME,
        ),
        (
            &[(ACCESS_SECRETS_PREVIOUS, "short")],
            ACCESS_SECRETS_PREVIOUS,
        ),
        (
            &[(ACCESS_SECRETS_PREVIOUS, &format!("{},", "p".repeat(32)))],
            ACCESS_SECRETS_PREVIOUS,
        ),
        (
            &[(ACCESS_SECRETS_PREVIOUS, &format!("{0},{0}", "p".repeat(32)))],
            ACCESS_SECRETS_PREVIOUS,
        ),
        (
            &[
                (ACCESS_SECRET, &"a".repeat(32)),
                (ACCESS_SECRETS_PREVIOUS, &"a".repeat(32)),
            ],
            ACCESS_SECRETS_PREVIOUS,
        ),
        (
            &[(REFRESH_SECRETS_PREVIOUS, "short")],
            REFRESH_SECRETS_PREVIOUS,
        ),
        (
            &[
                (REFRESH_SECRET, &"r".repeat(32)),
                (REFRESH_SECRETS_PREVIOUS, &"r".repeat(32)),
            ],
            REFRESH_SECRETS_PREVIOUS,
        ),
        (
            &[
                (ACCESS_SECRETS_PREVIOUS, &"x".repeat(32)),
                (REFRESH_SECRET, &"x".repeat(32)),
            ],
            REFRESH_SECRET,
        ),
        (
            &[
                (ACCESS_SECRET, &"a".repeat(32)),
                (REFRESH_SECRETS_PREVIOUS, &"a".repeat(32)),
            ],
            REFRESH_SECRETS_PREVIOUS,
        ),
        (
            &[
                (ACCESS_SECRETS_PREVIOUS, &"x".repeat(32)),
                (REFRESH_SECRETS_PREVIOUS, &"x".repeat(32)),
            ],
            REFRESH_SECRETS_PREVIOUS,
        ),
        (
            &[(
                REFRESH_SECRETS_PREVIOUS,
                &(0..11)
                    .map(|i| format!("{i:02}{}", "r".repeat(32)))
                    .collect::<Vec<_>>()
                    .join(","),
            )],
            REFRESH_SECRETS_PREVIOUS,
        ),
        (&[(ACCESS_SIGNING, "rs256")], ACCESS_SIGNING),
        (
            &[(ACCESS_ED25519_KEY, TEST_ED25519_PEM)],
            ACCESS_ED25519_KEY,
        ),
        (
            &[(ACCESS_SIGNING, "eddsa"), (ACCESS_ED25519_KEY, "not a key")],
            ACCESS_ED25519_KEY,
        ),
        (
            &[
                (ACCESS_SIGNING, "eddsa"),
                (ACCESS_ED25519_KEY, "/nonexistent/ed25519.pem"),
            ],
            ACCESS_ED25519_KEY,
        ),
        (
            &[(ACCESS_SIGNING, "eddsa"), (ACCESS_SECRET, &"a".repeat(32))],
            ACCESS_SECRET,
        ),
        (
            &[
                (APP_ENV, "production"),
                (ACCESS_SIGNING, "eddsa"),
                (REFRESH_SECRET, &"r".repeat(32)),
            ],
            ACCESS_ED25519_KEY,
        ),
        (
            &[(ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS, "AAAA")],
            ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS,
        ),
        (
            &[
                (ACCESS_SIGNING, "eddsa"),
                (ACCESS_ED25519_KEY, TEST_ED25519_PEM),
                (ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS, TEST_ED25519_X),
            ],
            ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS,
        ),
    ];
    for (pairs, variable) in cases {
        let error = load(pairs).expect_err("must be refused");
        assert_eq!(error.variable, *variable, "{pairs:?}");
        assert!(error.to_string().starts_with(variable));
    }
}

/// RFC 8037 Appendix A's example key: PKCS#8 PEM, and its public JWK `x`.
const TEST_ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----";
const TEST_ED25519_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

#[test]
fn previous_secrets_are_read_in_order_and_never_printed() {
    let config = load(&[
        (ACCESS_SECRET, &"a".repeat(32)),
        (
            ACCESS_SECRETS_PREVIOUS,
            &format!(" {} , {} ", "b".repeat(32), "c".repeat(40)),
        ),
        (REFRESH_SECRET, &"r".repeat(32)),
        (REFRESH_SECRETS_PREVIOUS, &"s".repeat(33)),
    ])
    .expect("valid");
    let previous: Vec<Vec<u8>> = config
        .tokens
        .jwt
        .access_previous
        .iter()
        .map(|key| match key {
            AccessVerificationKey::Hs256(s) => s.expose_secret().to_vec(),
            AccessVerificationKey::Ed25519(_) => panic!("no Ed25519 keys given"),
        })
        .collect();
    assert_eq!(previous, vec![vec![b'b'; 32], vec![b'c'; 40]]);
    assert_eq!(config.tokens.jwt.refresh_secrets_previous.len(), 1);
    assert_eq!(
        config.tokens.jwt.refresh_secrets_previous[0].expose_secret(),
        "s".repeat(33).as_bytes()
    );
    let printed = format!("{config:?}");
    for secret in ["bbbb", "cccc", "ssss"] {
        assert!(!printed.contains(secret), "{printed}");
    }
    // Refusals name the entry, never echo it.
    let error = load(&[(ACCESS_SECRETS_PREVIOUS, "hunter2-but-short")]).expect_err("too short");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn eddsa_takes_a_pem_or_a_file_and_generates_a_key_in_development() {
    let inline = load(&[
        (ACCESS_SIGNING, "eddsa"),
        (ACCESS_ED25519_KEY, TEST_ED25519_PEM),
    ])
    .expect("inline PEM");
    let AccessSigningKey::Ed25519(key) = &inline.tokens.jwt.access_signing else {
        panic!("Ed25519 signing");
    };
    assert_eq!(key.public_key().jwk_x(), TEST_ED25519_X);

    let path =
        std::env::temp_dir().join(format!("jwt-todo-config-test-{}.pem", std::process::id()));
    std::fs::write(&path, TEST_ED25519_PEM).expect("temp file");
    let from_file = load(&[
        (ACCESS_SIGNING, "EdDSA"),
        (ACCESS_ED25519_KEY, path.to_str().expect("utf-8 path")),
        (
            ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS,
            "j0msGTUz86Ff350G3WDUelMvj_AHQ7Nkj1RCoBBZSFc",
        ),
        (ACCESS_SECRETS_PREVIOUS, &"h".repeat(32)),
    ]);
    let _ = std::fs::remove_file(&path);
    let from_file = from_file.expect("key file");
    let AccessSigningKey::Ed25519(key) = &from_file.tokens.jwt.access_signing else {
        panic!("Ed25519 signing");
    };
    assert_eq!(key.public_key().jwk_x(), TEST_ED25519_X);
    assert_eq!(
        from_file.tokens.jwt.access_previous.len(),
        2,
        "HS256 and Ed25519"
    );

    let generated = load(&[(ACCESS_SIGNING, "eddsa")]).expect("development");
    let AccessSigningKey::Ed25519(key) = &generated.tokens.jwt.access_signing else {
        panic!("Ed25519 signing");
    };
    assert_ne!(key.public_key().jwk_x(), TEST_ED25519_X);
    assert!(!format!("{inline:?}").contains("MC4CAQAw"));
}

#[test]
fn throttle_limits_and_trusted_proxies_are_read() {
    let config = load(&[
        (LOGIN_PAIR_LIMIT, "3"),
        (LOGIN_PAIR_WINDOW, "1m"),
        (LOGIN_CLIENT_LIMIT, "50"),
        (LOGIN_CLIENT_WINDOW, "1h"),
        (TRUSTED_PROXIES, " 10.1.2.3/8, 127.0.0.1 ,,fd00::/8"),
    ])
    .expect("valid");
    assert_eq!(
        config.login_throttle,
        ThrottleLimits {
            pair: WindowLimit {
                max: 3,
                window: Duration::from_secs(60)
            },
            client: WindowLimit {
                max: 50,
                window: Duration::from_secs(3600)
            },
        }
    );
    let nets: Vec<String> = config
        .http
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"]);
}

/// Made by `openssl rand -base64 32` and `-hex 32`: what production wants. Test
/// values only, never deployed.
const STRONG_ACCESS: &str = "Qy728bbAyHdIKr4UTtGtARXM7nFIBIL/76YLXo5x3vQ=";
const STRONG_REFRESH: &str = "e7ab06ede7152e2ffaaf64f8b71a4fa068dde1c65b9284df44155fa9ce9db29a";
const STRONG_PREVIOUS: &str = "f2zBhOkmQuJYcSGWNJP8oX2WoS7II8CA5xayXdbp2B0=";

#[test]
fn production_refuses_weak_secrets_naming_the_variable_and_development_does_not() {
    let weak = "a".repeat(32);
    let pattern = "jwt-secret/".repeat(3);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[(ACCESS_SECRET, &weak), (REFRESH_SECRET, STRONG_REFRESH)],
            ACCESS_SECRET,
        ),
        (
            &[(ACCESS_SECRET, STRONG_ACCESS), (REFRESH_SECRET, &pattern)],
            REFRESH_SECRET,
        ),
        (
            &[
                (ACCESS_SECRET, STRONG_ACCESS),
                (REFRESH_SECRET, STRONG_REFRESH),
                (
                    ACCESS_SECRETS_PREVIOUS,
                    &format!("{STRONG_PREVIOUS},{weak}"),
                ),
            ],
            ACCESS_SECRETS_PREVIOUS,
        ),
        (
            &[
                (ACCESS_SECRET, STRONG_ACCESS),
                (REFRESH_SECRET, STRONG_REFRESH),
                (REFRESH_SECRETS_PREVIOUS, "abcdefghijklmnopqrstuvwxyz012345"),
            ],
            REFRESH_SECRETS_PREVIOUS,
        ),
    ];
    for (pairs, variable) in cases {
        let mut production = pairs.to_vec();
        production.push((APP_ENV, "production"));
        let error = load(&production).expect_err("weak in production");
        assert_eq!(error.variable, *variable, "{pairs:?}");
        let message = error.to_string();
        assert!(
            message.contains("too weak for APP_ENV=production"),
            "{message}"
        );
        assert!(
            !message.contains("aaaa")
                && !message.contains("jwt-secret")
                && !message.contains("abcdef"),
            "the secret is never echoed: {message}"
        );
        // Development keeps accepting any secret of the minimum length.
        load(pairs).expect("development accepts it");
    }
    let error = load(&[
        (APP_ENV, "production"),
        (ACCESS_SECRET, STRONG_ACCESS),
        (REFRESH_SECRET, STRONG_REFRESH),
        (
            ACCESS_SECRETS_PREVIOUS,
            &format!("{STRONG_PREVIOUS},{weak}"),
        ),
    ])
    .expect_err("weak entry");
    assert!(error.message.starts_with("entry 2 "), "{error}");
}

#[test]
fn per_user_and_per_client_limits_are_read() {
    let defaults = load(&[]).expect("valid");
    assert_eq!(defaults.limits, Limits::default());
    assert_eq!(
        defaults.store.redis.command_timeout,
        Duration::from_millis(500)
    );
    let config = load(&[
        (MAX_TODOS_PER_USER, "25"),
        (MAX_SESSIONS_PER_USER, "4"),
        (TODO_CREATE_LIMIT, "9"),
        (TODO_CREATE_WINDOW, "30s"),
        (REGISTER_CLIENT_LIMIT, "2"),
        (REGISTER_CLIENT_WINDOW, "10m"),
        (REDIS_COMMAND_TIMEOUT, "250ms"),
    ])
    .expect("valid");
    assert_eq!(
        config.limits,
        Limits {
            max_sessions_per_user: 4,
            max_todos_per_user: 25,
            todo_creations: WindowLimit {
                max: 9,
                window: Duration::from_secs(30)
            },
            registrations_per_client: WindowLimit {
                max: 2,
                window: Duration::from_secs(600)
            },
            password_resets_per_client: Limits::default().password_resets_per_client,
            password_reset_codes_per_user: Limits::default().password_reset_codes_per_user,
            mfa_codes_per_user: Limits::default().mfa_codes_per_user,
            idempotency_ttl: Limits::default().idempotency_ttl,
            audit: Limits::default().audit,
        }
    );
    assert_eq!(
        config.store.redis.command_timeout,
        Duration::from_millis(250)
    );
}

#[test]
fn connection_limits_are_read_at_their_bounds() {
    let config = load(&[
        (HTTP_HEADER_TIMEOUT, "100ms"),
        (HTTP_BODY_TIMEOUT, "10m"),
        (HTTP_IDLE_TIMEOUT, "1h"),
        (HTTP_SEND_TIMEOUT, " 2s "),
        (HTTP_MAX_CONNECTIONS, "1"),
    ])
    .expect("valid");
    assert_eq!(
        config.http.connections,
        ConnectionLimits {
            header_timeout: Duration::from_millis(100),
            body_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(3600),
            send_timeout: Duration::from_secs(2),
            max_connections: 1,
        }
    );
    let config = load(&[
        (HTTP_HEADER_TIMEOUT, "5m"),
        (HTTP_MAX_CONNECTIONS, &MAX_HTTP_CONNECTIONS.to_string()),
    ])
    .expect("valid");
    assert_eq!(
        config.http.connections.header_timeout,
        Duration::from_secs(300)
    );
    assert_eq!(
        config.http.connections.max_connections,
        MAX_HTTP_CONNECTIONS
    );
    let error = load(&[(HTTP_BODY_TIMEOUT, "0s")]).expect_err("0s is refused");
    assert_eq!(
        error.to_string(),
        "HTTP_BODY_TIMEOUT: must be between 100ms and 10m"
    );
}

#[test]
fn production_takes_given_secrets_and_never_prints_them() {
    let config = load(&[
        (APP_ENV, "production"),
        (ACCESS_SECRET, STRONG_ACCESS),
        (REFRESH_SECRET, STRONG_REFRESH),
        (ACCESS_SECRETS_PREVIOUS, STRONG_PREVIOUS),
        (ACCESS_TTL, "5m"),
        (REDIS_URL, "redis://:hunter2@localhost:6379"),
        (VONAGE_API_KEY, "key"),
        (VONAGE_API_SECRET, "vonage-secret-value"),
        (VONAGE_FROM, "jwt-todo"),
    ])
    .expect("valid");
    assert_eq!(config.environment, Environment::Production);
    assert_eq!(config.tokens.policy.access_ttl, Duration::from_secs(300));
    let printed = format!("{config:?}");
    assert!(
        !printed.contains(&STRONG_ACCESS[..12])
            && !printed.contains(&STRONG_REFRESH[..12])
            && !printed.contains(&STRONG_PREVIOUS[..12])
            && !printed.contains("hunter2"),
        "{printed}"
    );
}

#[test]
fn a_cluster_is_a_list_of_seed_nodes_and_never_printed() {
    let config = load(&[(
        REDIS_CLUSTER_URLS,
        "redis://:hunter2@10.0.0.1:6379, redis://10.0.0.2:6379,",
    )])
    .expect("valid");
    let Some(Deployment::Cluster(urls)) = &config.store.deployment else {
        panic!("cluster mode");
    };
    assert_eq!(urls.len(), 2);
    assert_eq!(urls[1].expose(), "redis://10.0.0.2:6379");
    assert!(!format!("{config:?}").contains("hunter2"));

    let sentinel = load(&[
        (REDIS_SENTINEL_URLS, "redis://:hunter2@10.0.0.5:26379"),
        (REDIS_SENTINEL_MASTER, " mymaster "),
    ])
    .expect("valid");
    let Some(Deployment::Sentinel { sentinels, master }) = &sentinel.store.deployment else {
        panic!("sentinel mode");
    };
    assert_eq!(master, "mymaster");
    assert_eq!(sentinels.len(), 1);
    assert!(!format!("{sentinel:?}").contains("hunter2"));
}

/// `.env.example` lists every variable the configuration reads and nothing else: with its
/// default where it has one, commented out (`# NAME=`) where it has none.
#[test]
fn env_example_lists_every_variable_with_its_default() {
    let mut listed = std::collections::BTreeMap::new();
    for line in include_str!("../../../.env.example").lines() {
        let (commented, entry) = match line.strip_prefix("# ") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let Some((name, value)) = entry.split_once('=') else {
            continue;
        };
        if !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            let previous = listed.insert(name.to_owned(), (!commented).then(|| value.to_owned()));
            assert!(previous.is_none(), "{name} is listed twice");
        }
    }
    let mut command = Settings::command();
    command.build();
    let read: std::collections::BTreeMap<String, Option<String>> = command
        .get_arguments()
        .filter_map(|arg| {
            let name = arg.get_env()?.to_str()?.to_owned();
            let default = arg
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned());
            Some((name, default))
        })
        .collect();
    for (name, default) in &read {
        let line = match default {
            Some(value) => format!("{name}={value}"),
            None => format!("# {name}="),
        };
        assert_eq!(
            listed.get(name),
            Some(default),
            ".env.example should say `{line}`"
        );
    }
    for name in listed.keys() {
        assert!(
            read.contains_key(name),
            ".env.example lists {name}, which nothing reads"
        );
    }
    // The names errors are reported under are the same set.
    let mut all: Vec<&str> = vars::ALL.to_vec();
    all.sort_unstable();
    assert_eq!(all, read.keys().map(String::as_str).collect::<Vec<_>>());
}
