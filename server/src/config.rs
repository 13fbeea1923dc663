//! Configuration: read once from the environment at start, typed, every bad value a
//! start-up error naming its variable. Nothing reads the environment after this.

use std::net::SocketAddr;
use std::time::Duration;

use adapter_jwt::{AccessSigningKey, AccessVerificationKey, Ed25519PrivateKey, Ed25519PublicKey};
use application::ports::{SmsCaps, ThrottleLimits, WindowLimit};
use application::{Limits, SmsPolicy};
use domain::CountryCode;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::serve::ConnectionLimits;

pub const BIND_ADDR: &str = "BIND_ADDR";
pub const REDIS_URL: &str = "REDIS_URL";
pub const REDIS_CLUSTER_URLS: &str = "REDIS_CLUSTER_URLS";
pub const REDIS_SENTINEL_URLS: &str = "REDIS_SENTINEL_URLS";
pub const REDIS_SENTINEL_MASTER: &str = "REDIS_SENTINEL_MASTER";
pub const REDIS_COMMAND_TIMEOUT: &str = "REDIS_COMMAND_TIMEOUT";
pub const ACCESS_SECRET: &str = "ACCESS_SECRET";
pub const REFRESH_SECRET: &str = "REFRESH_SECRET";
pub const ACCESS_SECRETS_PREVIOUS: &str = "ACCESS_SECRETS_PREVIOUS";
pub const REFRESH_SECRETS_PREVIOUS: &str = "REFRESH_SECRETS_PREVIOUS";
pub const ACCESS_SIGNING: &str = "ACCESS_SIGNING";
pub const ACCESS_ED25519_KEY: &str = "ACCESS_ED25519_KEY";
pub const ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS: &str = "ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS";
pub const ACCESS_TTL: &str = "ACCESS_TTL";
pub const REFRESH_TTL: &str = "REFRESH_TTL";
pub const JWT_ISSUER: &str = "JWT_ISSUER";
pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
pub const JWT_LEEWAY: &str = "JWT_LEEWAY";
pub const REFRESH_REUSE_GRACE: &str = "REFRESH_REUSE_GRACE";
pub const SESSION_MAX_LIFETIME: &str = "SESSION_MAX_LIFETIME";
pub const MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
pub const APP_ENV: &str = "APP_ENV";
pub const VONAGE_API_KEY: &str = "VONAGE_API_KEY";
pub const VONAGE_API_SECRET: &str = "VONAGE_API_SECRET";
pub const VONAGE_FROM: &str = "VONAGE_FROM";
pub const VONAGE_BASE_URL: &str = "VONAGE_BASE_URL";
pub const NOTIFY_MAX_ATTEMPTS: &str = "NOTIFY_MAX_ATTEMPTS";
pub const LOG_FORMAT: &str = "LOG_FORMAT";
pub const SHUTDOWN_GRACE: &str = "SHUTDOWN_GRACE";
pub const LOGIN_PAIR_LIMIT: &str = "LOGIN_PAIR_LIMIT";
pub const LOGIN_PAIR_WINDOW: &str = "LOGIN_PAIR_WINDOW";
pub const LOGIN_CLIENT_LIMIT: &str = "LOGIN_CLIENT_LIMIT";
pub const LOGIN_CLIENT_WINDOW: &str = "LOGIN_CLIENT_WINDOW";
pub const TRUSTED_PROXIES: &str = "TRUSTED_PROXIES";
pub const MAX_SESSIONS_PER_USER: &str = "MAX_SESSIONS_PER_USER";
pub const MAX_TODOS_PER_USER: &str = "MAX_TODOS_PER_USER";
pub const TODO_CREATE_LIMIT: &str = "TODO_CREATE_LIMIT";
pub const TODO_CREATE_WINDOW: &str = "TODO_CREATE_WINDOW";
pub const REGISTER_CLIENT_LIMIT: &str = "REGISTER_CLIENT_LIMIT";
pub const REGISTER_CLIENT_WINDOW: &str = "REGISTER_CLIENT_WINDOW";
pub const HTTP_HEADER_TIMEOUT: &str = "HTTP_HEADER_TIMEOUT";
pub const HTTP_BODY_TIMEOUT: &str = "HTTP_BODY_TIMEOUT";
pub const HTTP_IDLE_TIMEOUT: &str = "HTTP_IDLE_TIMEOUT";
pub const HTTP_SEND_TIMEOUT: &str = "HTTP_SEND_TIMEOUT";
pub const HTTP_MAX_CONNECTIONS: &str = "HTTP_MAX_CONNECTIONS";
pub const SMS_USER_HOURLY_CAP: &str = "SMS_USER_HOURLY_CAP";
pub const SMS_USER_DAILY_CAP: &str = "SMS_USER_DAILY_CAP";
pub const SMS_NUMBER_HOURLY_CAP: &str = "SMS_NUMBER_HOURLY_CAP";
pub const SMS_NUMBER_DAILY_CAP: &str = "SMS_NUMBER_DAILY_CAP";
pub const SMS_ALLOWED_COUNTRIES: &str = "SMS_ALLOWED_COUNTRIES";
pub const PHONE_CODE_TTL: &str = "PHONE_CODE_TTL";
pub const PHONE_CODE_MAX_ATTEMPTS: &str = "PHONE_CODE_MAX_ATTEMPTS";
pub const PHONE_CODE_COOLDOWN: &str = "PHONE_CODE_COOLDOWN";
pub const NOTIFY_CONCURRENCY: &str = "NOTIFY_CONCURRENCY";
pub const NOTIFY_MAX_BACKOFF: &str = "NOTIFY_MAX_BACKOFF";
pub const NOTIFY_DEAD_LETTER_RETENTION: &str = "NOTIFY_DEAD_LETTER_RETENTION";
pub const NOTIFY_DEAD_LETTER_MAX: &str = "NOTIFY_DEAD_LETTER_MAX";

/// Largest value of an SMS cap.
pub const MAX_SMS_CAP: u32 = 100_000;

/// Largest failure count a throttle window may allow.
pub const MAX_LOGIN_LIMIT: u32 = 1_000_000;
/// Longest throttle window.
pub const MAX_LOGIN_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Most sessions `MAX_SESSIONS_PER_USER` may allow. Listing a page and revoking all of a
/// user's sessions read all of them, so the cap bounds that work too: a high cap is for
/// load tests and service accounts, and costs those operations.
pub const MAX_SESSIONS_CAP: u32 = 1_000_000;
/// Most todos `MAX_TODOS_PER_USER` may allow.
pub const MAX_TODOS_CAP: u32 = 10_000_000;
/// Shortest connection deadline: below it a healthy client on a slow network is cut.
pub const MIN_HTTP_TIMEOUT: Duration = Duration::from_millis(100);
/// Most connections `HTTP_MAX_CONNECTIONS` may allow (the file limit clamps it further).
pub const MAX_HTTP_CONNECTIONS: usize = 1_000_000;

/// Shortest secret accepted (RFC 7518 §3.2: an HS256 key has at least 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;
/// Most previous keys per list: a rotation needs one or two.
pub const MAX_PREVIOUS_KEYS: usize = adapter_jwt::MAX_PREVIOUS_KEYS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    /// Random secrets when none are given, and the seed's sample user.
    Development,
    /// Secrets required; no sample user.
    Production,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub bind_addr: SocketAddr,
    /// A single Redis. `None` (and no cluster): the embedded in-memory store.
    pub redis_url: Option<SecretString>,
    /// Longest any one Redis call may take before the request fails with 503.
    pub redis_command_timeout: Duration,
    /// Seed nodes of a Redis Cluster (the rest are discovered); exclusive with
    /// `redis_url`.
    pub redis_cluster_urls: Option<Vec<SecretString>>,
    /// A Redis watched by Sentinel; exclusive with the two above.
    pub redis_sentinel: Option<SentinelSettings>,
    /// Signs access tokens: an HMAC secret (`ACCESS_SIGNING=hs256`, the default) or an
    /// Ed25519 key (`eddsa`).
    pub access_signing: AccessSigningKey,
    /// Verify access tokens only: `ACCESS_SECRETS_PREVIOUS`, then
    /// `ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS`.
    pub access_previous: Vec<AccessVerificationKey>,
    pub refresh_secret: SecretSlice<u8>,
    /// Verify refresh tokens only: `REFRESH_SECRETS_PREVIOUS`.
    pub refresh_secrets_previous: Vec<SecretSlice<u8>>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub jwt_leeway: Duration,
    /// `0s`: strict refresh rotation; otherwise the window in which a replay of the
    /// previous refresh token gets the pair already issued.
    pub refresh_reuse_grace: Duration,
    /// Absolute cap on a session, counted from its login, whatever the refreshes.
    pub session_max_lifetime: Duration,
    pub max_body_bytes: usize,
    pub environment: Environment,
    /// `None`: SMS are only logged.
    pub vonage: Option<VonageSettings>,
    /// Delivery attempts before an SMS is dead-lettered.
    pub notify_max_attempts: u32,
    /// SMS delivered at once by this replica's worker.
    pub notify_concurrency: usize,
    /// Longest wait before a retry, whatever a provider's `Retry-After` says.
    pub notify_max_backoff: Duration,
    /// How long dead letters are kept, and how many at most.
    pub notify_dead_letter_retention: Duration,
    pub notify_dead_letter_max: usize,
    /// SMS caps, the country allow-list and phone codes.
    pub sms: SmsPolicy,
    pub log_format: LogFormat,
    /// After SIGTERM/SIGINT: how long in-flight requests (and the SMS in hand) get to finish.
    pub shutdown_grace: Duration,
    /// Failed logins allowed per (username, client) and per client, per window.
    pub login_throttle: ThrottleLimits,
    /// What one user or one client may hold or do (sessions, todos, creations,
    /// registrations).
    pub limits: Limits,
    /// Proxies whose `X-Forwarded-For` names the client; empty: the TCP peer is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Read deadlines, the idle and send bounds, and the cap on open connections.
    pub connections: ConnectionLimits,
}

/// The sentinels to ask and the name of the master they watch.
#[derive(Clone, Debug)]
pub struct SentinelSettings {
    pub urls: Vec<SecretString>,
    pub master: String,
}

/// A comma-separated list of `redis://` / `rediss://` URLs in `variable`.
fn redis_url_list(variable: &'static str, raw: &str) -> Result<Vec<SecretString>, ConfigError> {
    let urls = raw
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            let host = u
                .strip_prefix("redis://")
                .or_else(|| u.strip_prefix("rediss://"))
                .map(|rest| rest.rsplit('@').next().unwrap_or_default())
                .filter(|host| !host.is_empty());
            match host {
                Some(_) => Ok(SecretString::from(u.to_owned())),
                None => Err(err(
                    variable,
                    "expected a comma-separated list of redis://host:port URLs",
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err(err(variable, "names no node"));
    }
    Ok(urls)
}

/// Vonage Messages API credentials and endpoint.
#[derive(Clone, Debug)]
pub struct VonageSettings {
    pub api_key: String,
    pub api_secret: SecretString,
    pub from: String,
    pub base_url: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn err(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// The first variable with a bad value, named.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the process environment, then `./.env` for what the environment lacks. The
    /// file is read, never loaded into the process environment.
    ///
    /// # Errors
    /// The first variable with a bad value, named, or an unreadable `.env`.
    pub fn from_env_and_dotenv() -> Result<Self, ConfigError> {
        let mut file = std::collections::HashMap::new();
        match dotenvy::from_filename_iter(".env") {
            Ok(entries) => {
                for entry in entries {
                    let (key, value) = entry.map_err(|e| err(".env", e.to_string()))?;
                    file.insert(key, value);
                }
            }
            Err(e) if e.not_found() => {}
            Err(e) => return Err(err(".env", e.to_string())),
        }
        Self::from_lookup(|key| std::env::var(key).ok().or_else(|| file.get(key).cloned()))
    }

    /// Reads configuration through `lookup`, so tests need not touch the process
    /// environment (which `set_var` makes racy).
    ///
    /// # Errors
    /// The first variable with a bad value, named.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());

        let environment = match get(APP_ENV).as_deref().map(str::trim) {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => {
                return Err(err(
                    APP_ENV,
                    format!("expected 'development' or 'production', got '{other}'"),
                ));
            }
        };
        let bind_addr = match get(BIND_ADDR) {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(raw) => raw.trim().parse().map_err(|_| {
                err(
                    BIND_ADDR,
                    format!("expected an address such as 127.0.0.1:8080, got '{raw}'"),
                )
            })?,
        };
        let duration = |key: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match get(key) {
                None => Ok(default),
                Some(raw) => humantime::parse_duration(raw.trim())
                    .map_err(|e| err(key, format!("expected a duration such as 15m or 7d: {e}"))),
            }
        };
        let access_ttl = duration(ACCESS_TTL, Duration::from_secs(15 * 60))?;
        let refresh_ttl = duration(REFRESH_TTL, Duration::from_secs(7 * 24 * 3600))?;
        let jwt_leeway = duration(JWT_LEEWAY, Duration::from_secs(30))?;
        if access_ttl < Duration::from_secs(1) {
            return Err(err(ACCESS_TTL, "must be at least 1s"));
        }
        if refresh_ttl < access_ttl {
            return Err(err(REFRESH_TTL, "must not be shorter than ACCESS_TTL"));
        }
        let refresh_reuse_grace = duration(REFRESH_REUSE_GRACE, Duration::ZERO)?;
        if refresh_reuse_grace > Duration::from_secs(60) {
            return Err(err(
                REFRESH_REUSE_GRACE,
                "must be at most 60s: a longer window lets a stolen token ride along",
            ));
        }
        let session_max_lifetime =
            duration(SESSION_MAX_LIFETIME, Duration::from_secs(30 * 24 * 3600))?;
        if session_max_lifetime < access_ttl {
            return Err(err(
                SESSION_MAX_LIFETIME,
                "must not be shorter than ACCESS_TTL",
            ));
        }
        if jwt_leeway > Duration::from_secs(300) {
            return Err(err(
                JWT_LEEWAY,
                "must be at most 5m: more is a longer lifetime, not clock skew",
            ));
        }
        let max_body_bytes = match get(MAX_BODY_BYTES) {
            None => 16 * 1024,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (256..=1024 * 1024).contains(n))
                .ok_or_else(|| {
                    err(
                        MAX_BODY_BYTES,
                        "expected a byte count between 256 and 1048576",
                    )
                })?,
        };

        let secret = |key: &'static str| -> Result<SecretSlice<u8>, ConfigError> {
            match (get(key), environment) {
                (Some(raw), _) if raw.len() < MIN_SECRET_BYTES => Err(err(
                    key,
                    format!("must be at least {MIN_SECRET_BYTES} bytes"),
                )),
                (Some(raw), _) => {
                    strong_in_production(key, None, raw.as_bytes(), environment)?;
                    Ok(SecretSlice::from(raw.into_bytes()))
                }
                (None, Environment::Development) => Ok(random_secret()),
                (None, Environment::Production) => {
                    Err(err(key, "is required when APP_ENV=production"))
                }
            }
        };
        let signing = match get(ACCESS_SIGNING).map(|v| v.trim().to_ascii_lowercase()) {
            None => Signing::Hs256,
            Some(v) if v == "hs256" => Signing::Hs256,
            Some(v) if v == "eddsa" => Signing::EdDsa,
            Some(other) => {
                return Err(err(
                    ACCESS_SIGNING,
                    format!("expected 'hs256' or 'eddsa', got '{other}'"),
                ));
            }
        };
        let access_signing = match signing {
            Signing::Hs256 => {
                if get(ACCESS_ED25519_KEY).is_some() {
                    return Err(err(
                        ACCESS_ED25519_KEY,
                        "is only used with ACCESS_SIGNING=eddsa",
                    ));
                }
                AccessSigningKey::Hs256(secret(ACCESS_SECRET)?)
            }
            Signing::EdDsa => {
                if get(ACCESS_SECRET).is_some() {
                    return Err(err(
                        ACCESS_SECRET,
                        "is not used with ACCESS_SIGNING=eddsa; to keep the access tokens it \
                         signed valid until they expire, move it to ACCESS_SECRETS_PREVIOUS",
                    ));
                }
                AccessSigningKey::Ed25519(Box::new(match (get(ACCESS_ED25519_KEY), environment) {
                    (Some(raw), _) => ed25519_private_key(&raw)?,
                    (None, Environment::Development) => Ed25519PrivateKey::generate(),
                    (None, Environment::Production) => {
                        return Err(err(
                            ACCESS_ED25519_KEY,
                            "is required when APP_ENV=production and ACCESS_SIGNING=eddsa",
                        ));
                    }
                }))
            }
        };
        let refresh_secret = secret(REFRESH_SECRET)?;
        let access_secrets_previous =
            secret_list(ACCESS_SECRETS_PREVIOUS, get(ACCESS_SECRETS_PREVIOUS))?;
        let refresh_secrets_previous =
            secret_list(REFRESH_SECRETS_PREVIOUS, get(REFRESH_SECRETS_PREVIOUS))?;
        let ed25519_previous = ed25519_public_keys(get(ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS))?;
        // A key that only verifies forges as well as one that signs: same rule.
        for (key, list) in [
            (ACCESS_SECRETS_PREVIOUS, &access_secrets_previous),
            (REFRESH_SECRETS_PREVIOUS, &refresh_secrets_previous),
        ] {
            for (i, secret) in list.iter().enumerate() {
                strong_in_production(key, Some(i + 1), secret.expose_secret(), environment)?;
            }
        }

        // Each list must not repeat its current key, and no secret may serve both kinds:
        // one kind of token must never verify as the other.
        let access_current = match &access_signing {
            AccessSigningKey::Hs256(secret) => Some(secret.expose_secret()),
            AccessSigningKey::Ed25519(_) => None,
        };
        if access_secrets_previous
            .iter()
            .any(|s| Some(s.expose_secret()) == access_current)
        {
            return Err(err(
                ACCESS_SECRETS_PREVIOUS,
                "lists the current ACCESS_SECRET",
            ));
        }
        if refresh_secrets_previous
            .iter()
            .any(|s| s.expose_secret() == refresh_secret.expose_secret())
        {
            return Err(err(
                REFRESH_SECRETS_PREVIOUS,
                "lists the current REFRESH_SECRET",
            ));
        }
        if let AccessSigningKey::Ed25519(key) = &access_signing
            && ed25519_previous.contains(&key.public_key())
        {
            return Err(err(
                ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS,
                "lists the public key of the current ACCESS_ED25519_KEY",
            ));
        }
        let access_secrets: Vec<&[u8]> = access_current
            .into_iter()
            .chain(
                access_secrets_previous
                    .iter()
                    .map(ExposeSecret::expose_secret),
            )
            .collect();
        if access_secrets.contains(&refresh_secret.expose_secret()) {
            return Err(err(
                REFRESH_SECRET,
                "must differ from ACCESS_SECRET and ACCESS_SECRETS_PREVIOUS, so one kind of \
                 token can never pass for the other",
            ));
        }
        if refresh_secrets_previous
            .iter()
            .any(|s| access_secrets.contains(&s.expose_secret()))
        {
            return Err(err(
                REFRESH_SECRETS_PREVIOUS,
                "must not list ACCESS_SECRET or an ACCESS_SECRETS_PREVIOUS entry, so one kind \
                 of token can never pass for the other",
            ));
        }
        let access_previous = access_secrets_previous
            .into_iter()
            .map(AccessVerificationKey::Hs256)
            .chain(
                ed25519_previous
                    .into_iter()
                    .map(AccessVerificationKey::Ed25519),
            )
            .collect();

        let text = |key: &'static str| -> Result<String, ConfigError> {
            let value = get(key).unwrap_or_else(|| "jwt-todo".to_owned());
            if value.len() > 256 {
                return Err(err(key, "must be at most 256 characters"));
            }
            Ok(value)
        };

        let vonage = match (get(VONAGE_API_KEY), get(VONAGE_API_SECRET)) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(err(
                    VONAGE_API_SECRET,
                    "is required when VONAGE_API_KEY is set",
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    VONAGE_API_KEY,
                    "is required when VONAGE_API_SECRET is set",
                ));
            }
            (Some(api_key), Some(secret)) => {
                let base_url =
                    get(VONAGE_BASE_URL).unwrap_or_else(|| "https://api.nexmo.com".to_owned());
                if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
                    return Err(err(VONAGE_BASE_URL, "must be an http(s) URL"));
                }
                Some(VonageSettings {
                    api_key: api_key.trim().to_owned(),
                    api_secret: SecretString::from(secret),
                    from: get(VONAGE_FROM).ok_or_else(|| {
                        err(VONAGE_FROM, "is required when VONAGE_API_KEY is set")
                    })?,
                    base_url,
                })
            }
        };
        let redis_url = get(REDIS_URL);
        let redis_cluster_urls = match get(REDIS_CLUSTER_URLS) {
            None => None,
            Some(_) if redis_url.is_some() => {
                return Err(err(
                    REDIS_CLUSTER_URLS,
                    "set either REDIS_URL (one Redis) or REDIS_CLUSTER_URLS (a cluster), not both",
                ));
            }
            Some(raw) => Some(redis_url_list(REDIS_CLUSTER_URLS, &raw)?),
        };
        let redis_sentinel = match (get(REDIS_SENTINEL_URLS), get(REDIS_SENTINEL_MASTER)) {
            (None, None) => None,
            (Some(_), _) | (_, Some(_)) if redis_url.is_some() || redis_cluster_urls.is_some() => {
                return Err(err(
                    REDIS_SENTINEL_URLS,
                    "set one of REDIS_URL, REDIS_CLUSTER_URLS or REDIS_SENTINEL_URLS, not several",
                ));
            }
            (Some(_), None) => {
                return Err(err(
                    REDIS_SENTINEL_MASTER,
                    "is required with REDIS_SENTINEL_URLS (the master name the sentinels watch)",
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    REDIS_SENTINEL_URLS,
                    "is required with REDIS_SENTINEL_MASTER",
                ));
            }
            (Some(raw), Some(master)) => Some(SentinelSettings {
                urls: redis_url_list(REDIS_SENTINEL_URLS, &raw)?,
                master: master.trim().to_owned(),
            }),
        };
        let notify_max_attempts = match get(NOTIFY_MAX_ATTEMPTS) {
            None => 8,
            Some(raw) => raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=50).contains(n))
                .ok_or_else(|| err(NOTIFY_MAX_ATTEMPTS, "expected a number from 1 to 50"))?,
        };

        // SMS: caps, country allow-list, phone codes (README, "SMS and phone numbers").
        let sms_defaults = SmsPolicy::default();
        let cap = |key: &'static str, default: u32| -> Result<u32, ConfigError> {
            match get(key) {
                None => Ok(default),
                Some(raw) => raw
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_SMS_CAP).contains(n))
                    .ok_or_else(|| err(key, format!("expected a number from 1 to {MAX_SMS_CAP}"))),
            }
        };
        let caps = SmsCaps {
            user_hourly: cap(SMS_USER_HOURLY_CAP, sms_defaults.caps.user_hourly)?,
            user_daily: cap(SMS_USER_DAILY_CAP, sms_defaults.caps.user_daily)?,
            number_hourly: cap(SMS_NUMBER_HOURLY_CAP, sms_defaults.caps.number_hourly)?,
            number_daily: cap(SMS_NUMBER_DAILY_CAP, sms_defaults.caps.number_daily)?,
        };
        if caps.user_daily < caps.user_hourly {
            return Err(err(
                SMS_USER_DAILY_CAP,
                "must not be smaller than SMS_USER_HOURLY_CAP",
            ));
        }
        if caps.number_daily < caps.number_hourly {
            return Err(err(
                SMS_NUMBER_DAILY_CAP,
                "must not be smaller than SMS_NUMBER_HOURLY_CAP",
            ));
        }
        let allowed_countries = match get(SMS_ALLOWED_COUNTRIES) {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(|entry| {
                    CountryCode::parse(entry)
                        .map_err(|e| err(SMS_ALLOWED_COUNTRIES, format!("'{entry}': {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let bounded = |key: &'static str,
                       default: Duration,
                       min: Duration,
                       max: Duration,
                       bounds: &str|
         -> Result<Duration, ConfigError> {
            let value = duration(key, default)?;
            if !(min..=max).contains(&value) {
                return Err(err(key, format!("must be between {bounds}")));
            }
            Ok(value)
        };
        let code_max_attempts = match get(PHONE_CODE_MAX_ATTEMPTS) {
            None => sms_defaults.code_max_attempts,
            Some(raw) => raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=10).contains(n))
                .ok_or_else(|| err(PHONE_CODE_MAX_ATTEMPTS, "expected a number from 1 to 10"))?,
        };
        let sms = SmsPolicy {
            caps,
            allowed_countries,
            code_ttl: bounded(
                PHONE_CODE_TTL,
                sms_defaults.code_ttl,
                Duration::from_secs(1),
                Duration::from_secs(3600),
                "1s and 1h",
            )?,
            code_max_attempts,
            code_cooldown: bounded(
                PHONE_CODE_COOLDOWN,
                sms_defaults.code_cooldown,
                Duration::from_secs(1),
                Duration::from_secs(3600),
                "1s and 1h",
            )?,
        };
        let notify_concurrency = match get(NOTIFY_CONCURRENCY) {
            None => 4,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| err(NOTIFY_CONCURRENCY, "expected a number from 1 to 64"))?,
        };
        let notify_max_backoff = bounded(
            NOTIFY_MAX_BACKOFF,
            Duration::from_secs(300),
            Duration::from_secs(1),
            Duration::from_secs(3600),
            "1s and 1h",
        )?;
        let notify_dead_letter_retention = bounded(
            NOTIFY_DEAD_LETTER_RETENTION,
            Duration::from_secs(7 * 24 * 3600),
            Duration::from_secs(1),
            Duration::from_secs(365 * 24 * 3600),
            "1s and 365d",
        )?;
        let notify_dead_letter_max = match get(NOTIFY_DEAD_LETTER_MAX) {
            None => 10_000,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| {
                    err(
                        NOTIFY_DEAD_LETTER_MAX,
                        "expected a number from 1 to 1000000",
                    )
                })?,
        };

        let log_format = match get(LOG_FORMAT).as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(
                    LOG_FORMAT,
                    format!("expected 'text' or 'json', got '{other}'"),
                ));
            }
        };
        let redis_command_timeout = duration(REDIS_COMMAND_TIMEOUT, Duration::from_millis(500))?;
        if !(Duration::from_millis(50)..=Duration::from_secs(10)).contains(&redis_command_timeout) {
            return Err(err(REDIS_COMMAND_TIMEOUT, "must be between 50ms and 10s"));
        }
        let shutdown_grace = duration(SHUTDOWN_GRACE, Duration::from_secs(10))?;
        if shutdown_grace > Duration::from_secs(300) {
            return Err(err(SHUTDOWN_GRACE, "must be at most 5m"));
        }
        let defaults = ThrottleLimits::default();
        let limit = |key: &'static str, default: u32| -> Result<u32, ConfigError> {
            match get(key) {
                None => Ok(default),
                Some(raw) => raw
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LOGIN_LIMIT).contains(n))
                    .ok_or_else(|| {
                        err(
                            key,
                            format!("expected a number from 1 to {MAX_LOGIN_LIMIT}"),
                        )
                    }),
            }
        };
        let window = |key: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            let window = duration(key, default)?;
            if !(Duration::from_secs(1)..=MAX_LOGIN_WINDOW).contains(&window) {
                return Err(err(key, "must be between 1s and 24h"));
            }
            Ok(window)
        };
        let login_throttle = ThrottleLimits {
            pair: WindowLimit {
                max: limit(LOGIN_PAIR_LIMIT, defaults.pair.max)?,
                window: window(LOGIN_PAIR_WINDOW, defaults.pair.window)?,
            },
            client: WindowLimit {
                max: limit(LOGIN_CLIENT_LIMIT, defaults.client.max)?,
                window: window(LOGIN_CLIENT_WINDOW, defaults.client.window)?,
            },
        };
        if login_throttle.client.max < login_throttle.pair.max {
            return Err(err(
                LOGIN_CLIENT_LIMIT,
                "must not be smaller than LOGIN_PAIR_LIMIT (a client's failures include each of its pairs')",
            ));
        }
        let default_limits = Limits::default();
        let count = |key: &'static str, default: u32, max: u32| -> Result<u32, ConfigError> {
            match get(key) {
                None => Ok(default),
                Some(raw) => raw
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| err(key, format!("expected a number from 1 to {max}"))),
            }
        };
        let limits = Limits {
            max_sessions_per_user: count(
                MAX_SESSIONS_PER_USER,
                default_limits.max_sessions_per_user,
                MAX_SESSIONS_CAP,
            )?,
            max_todos_per_user: count(
                MAX_TODOS_PER_USER,
                default_limits.max_todos_per_user,
                MAX_TODOS_CAP,
            )?,
            todo_creations: WindowLimit {
                max: count(
                    TODO_CREATE_LIMIT,
                    default_limits.todo_creations.max,
                    MAX_LOGIN_LIMIT,
                )?,
                window: window(TODO_CREATE_WINDOW, default_limits.todo_creations.window)?,
            },
            registrations_per_client: WindowLimit {
                max: count(
                    REGISTER_CLIENT_LIMIT,
                    default_limits.registrations_per_client.max,
                    MAX_LOGIN_LIMIT,
                )?,
                window: window(
                    REGISTER_CLIENT_WINDOW,
                    default_limits.registrations_per_client.window,
                )?,
            },
            idempotency_ttl: default_limits.idempotency_ttl,
        };
        let trusted_proxies = match get(TRUSTED_PROXIES) {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(|entry| {
                    entry
                        .parse::<IpNet>()
                        .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map(|net| net.trunc())
                        .map_err(|_| {
                            err(
                                TRUSTED_PROXIES,
                                format!(
                                    "expected a comma-separated list of addresses or CIDR networks (10.0.0.0/8, ::1), got '{entry}'"
                                ),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };

        let connection_timeout = |key: &'static str,
                                  default: Duration,
                                  max: Duration|
         -> Result<Duration, ConfigError> {
            let timeout = duration(key, default)?;
            if !(MIN_HTTP_TIMEOUT..=max).contains(&timeout) {
                return Err(err(
                    key,
                    format!(
                        "must be between {} and {}",
                        humantime::format_duration(MIN_HTTP_TIMEOUT),
                        humantime::format_duration(max)
                    ),
                ));
            }
            Ok(timeout)
        };
        let connection_defaults = ConnectionLimits::default();
        let connections = ConnectionLimits {
            header_timeout: connection_timeout(
                HTTP_HEADER_TIMEOUT,
                connection_defaults.header_timeout,
                Duration::from_secs(300),
            )?,
            body_timeout: connection_timeout(
                HTTP_BODY_TIMEOUT,
                connection_defaults.body_timeout,
                Duration::from_secs(600),
            )?,
            idle_timeout: connection_timeout(
                HTTP_IDLE_TIMEOUT,
                connection_defaults.idle_timeout,
                Duration::from_secs(3600),
            )?,
            send_timeout: connection_timeout(
                HTTP_SEND_TIMEOUT,
                connection_defaults.send_timeout,
                Duration::from_secs(600),
            )?,
            max_connections: match get(HTTP_MAX_CONNECTIONS) {
                None => connection_defaults.max_connections,
                Some(raw) => raw
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_HTTP_CONNECTIONS).contains(n))
                    .ok_or_else(|| {
                        err(
                            HTTP_MAX_CONNECTIONS,
                            format!("expected a number from 1 to {MAX_HTTP_CONNECTIONS}"),
                        )
                    })?,
            },
        };

        Ok(Self {
            log_format,
            shutdown_grace,
            connections,
            bind_addr,
            vonage,
            login_throttle,
            limits,
            trusted_proxies,
            notify_max_attempts,
            notify_concurrency,
            notify_max_backoff,
            notify_dead_letter_retention,
            notify_dead_letter_max,
            sms,
            redis_url: redis_url.map(SecretString::from),
            redis_command_timeout,
            redis_cluster_urls,
            redis_sentinel,
            access_signing,
            access_previous,
            refresh_secret,
            refresh_secrets_previous,
            access_ttl,
            refresh_ttl,
            jwt_issuer: text(JWT_ISSUER)?,
            jwt_audience: text(JWT_AUDIENCE)?,
            jwt_leeway,
            refresh_reuse_grace,
            session_max_lifetime,
            max_body_bytes,
            environment,
        })
    }
}

/// How access tokens are signed (`ACCESS_SIGNING`).
#[derive(Clone, Copy)]
enum Signing {
    Hs256,
    EdDsa,
}

/// A comma-separated list of HMAC secrets, each at least [`MIN_SECRET_BYTES`] long, no
/// repeats. (A secret containing a comma cannot be listed: generate secrets without one.)
fn secret_list(
    key: &'static str,
    raw: Option<String>,
) -> Result<Vec<SecretSlice<u8>>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let entries: Vec<&str> = raw.split(',').map(str::trim).collect();
    if entries.len() > MAX_PREVIOUS_KEYS {
        return Err(err(
            key,
            format!("lists more than {MAX_PREVIOUS_KEYS} secrets"),
        ));
    }
    for (i, entry) in entries.iter().enumerate() {
        if entry.len() < MIN_SECRET_BYTES {
            // Never echo the entry: it is (part of) a secret.
            return Err(err(
                key,
                format!("entry {} must be at least {MIN_SECRET_BYTES} bytes", i + 1),
            ));
        }
        if entries[..i].contains(entry) {
            return Err(err(key, format!("entry {} repeats an earlier one", i + 1)));
        }
    }
    Ok(entries
        .into_iter()
        .map(|entry| SecretSlice::from(entry.as_bytes().to_vec()))
        .collect())
}

/// In production, refuses an HMAC secret that looks made by hand rather than drawn at
/// random (one character repeated, a pattern, a sequence: see `adapter_jwt`'s
/// `check_hmac_secret`); anyone who guesses it forges tokens. Development accepts any
/// secret of the minimum length, as the tests' fixed secrets are. Names the variable (and
/// the list entry), never the secret.
fn strong_in_production(
    key: &'static str,
    entry: Option<usize>,
    secret: &[u8],
    environment: Environment,
) -> Result<(), ConfigError> {
    if environment == Environment::Development {
        return Ok(());
    }
    adapter_jwt::check_hmac_secret(secret).map_err(|weakness| {
        let what = match entry {
            Some(n) => format!("entry {n}"),
            None => "the secret".to_owned(),
        };
        err(
            key,
            format!("{what} is too weak for APP_ENV=production: it {weakness}"),
        )
    })
}

/// `ACCESS_ED25519_KEY`: the PKCS#8 PEM itself (it starts with `-----BEGIN`), or the path
/// of a file holding it.
fn ed25519_private_key(raw: &str) -> Result<Ed25519PrivateKey, ConfigError> {
    let trimmed = raw.trim();
    let pem = if trimmed.starts_with("-----BEGIN") {
        SecretString::from(trimmed)
    } else {
        let text = std::fs::read_to_string(trimmed).map_err(|e| {
            err(
                ACCESS_ED25519_KEY,
                format!("cannot read the key file '{trimmed}': {e}"),
            )
        })?;
        SecretString::from(text)
    };
    Ed25519PrivateKey::from_pkcs8_pem(pem.expose_secret()).map_err(|_| {
        err(
            ACCESS_ED25519_KEY,
            "expected an Ed25519 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----), \
             or the path of a file holding one, as `openssl genpkey -algorithm ed25519` writes",
        )
    })
}

/// `ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS`: comma-separated, each an SPKI PEM public key or
/// the base64url `x` of its JWK.
fn ed25519_public_keys(raw: Option<String>) -> Result<Vec<Ed25519PublicKey>, ConfigError> {
    let key = ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS;
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let entries: Vec<&str> = raw.split(',').map(str::trim).collect();
    if entries.len() > MAX_PREVIOUS_KEYS {
        return Err(err(
            key,
            format!("lists more than {MAX_PREVIOUS_KEYS} keys"),
        ));
    }
    let mut keys: Vec<Ed25519PublicKey> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let public = Ed25519PublicKey::parse(entry).map_err(|_| {
            err(
                key,
                format!(
                    "entry {} is neither an Ed25519 SPKI PEM public key nor a JWK 'x' value",
                    i + 1
                ),
            )
        })?;
        if keys.contains(&public) {
            return Err(err(key, format!("entry {} repeats an earlier one", i + 1)));
        }
        keys.push(public);
    }
    Ok(keys)
}

/// 32 random bytes from the OS CSPRNG: tokens of a development server die with it.
fn random_secret() -> SecretSlice<u8> {
    use rand::RngCore;
    let mut bytes = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretSlice::from(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

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
        assert_eq!(config.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.access_ttl, Duration::from_secs(900));
        assert_eq!(config.refresh_ttl, Duration::from_secs(604_800));
        assert_eq!(
            config.refresh_reuse_grace,
            Duration::ZERO,
            "strict by default"
        );
        assert_eq!(
            config.session_max_lifetime,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(config.environment, Environment::Development);
        assert!(config.redis_url.is_none());
        assert!(config.redis_cluster_urls.is_none());
        assert!(config.redis_sentinel.is_none());
        let AccessSigningKey::Hs256(access_secret) = &config.access_signing else {
            panic!("HS256 by default");
        };
        assert_eq!(access_secret.expose_secret().len(), 32);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.shutdown_grace, Duration::from_secs(10));
        assert_eq!(config.login_throttle, ThrottleLimits::default());
        assert_eq!(config.login_throttle.pair.max, 5);
        assert_eq!(config.login_throttle.client.max, 100);
        assert_eq!(config.login_throttle.pair.window, Duration::from_secs(900));
        assert!(
            config.trusted_proxies.is_empty(),
            "no proxy trusted by default"
        );
        assert_ne!(
            access_secret.expose_secret(),
            config.refresh_secret.expose_secret()
        );
        assert!(config.access_previous.is_empty());
        assert!(config.refresh_secrets_previous.is_empty());
        assert_eq!(
            config.connections,
            ConnectionLimits {
                header_timeout: Duration::from_secs(10),
                body_timeout: Duration::from_secs(30),
                idle_timeout: Duration::from_secs(75),
                send_timeout: Duration::from_secs(30),
                max_connections: 4096,
            }
        );
        assert_eq!(config.sms, SmsPolicy::default());
        assert_eq!(config.notify_concurrency, 4);
        assert_eq!(config.notify_max_backoff, Duration::from_secs(300));
        assert_eq!(
            config.notify_dead_letter_retention,
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(config.notify_dead_letter_max, 10_000);
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
        assert_eq!(config.notify_concurrency, 8);
        assert_eq!(config.notify_max_backoff, Duration::from_secs(60));
        assert_eq!(
            config.notify_dead_letter_retention,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(config.notify_dead_letter_max, 500);
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
            .access_previous
            .iter()
            .map(|key| match key {
                AccessVerificationKey::Hs256(s) => s.expose_secret().to_vec(),
                AccessVerificationKey::Ed25519(_) => panic!("no Ed25519 keys given"),
            })
            .collect();
        assert_eq!(previous, vec![vec![b'b'; 32], vec![b'c'; 40]]);
        assert_eq!(config.refresh_secrets_previous.len(), 1);
        assert_eq!(
            config.refresh_secrets_previous[0].expose_secret(),
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
        let AccessSigningKey::Ed25519(key) = &inline.access_signing else {
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
        let AccessSigningKey::Ed25519(key) = &from_file.access_signing else {
            panic!("Ed25519 signing");
        };
        assert_eq!(key.public_key().jwk_x(), TEST_ED25519_X);
        assert_eq!(from_file.access_previous.len(), 2, "HS256 and Ed25519");

        let generated = load(&[(ACCESS_SIGNING, "eddsa")]).expect("development");
        let AccessSigningKey::Ed25519(key) = &generated.access_signing else {
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
        assert_eq!(defaults.redis_command_timeout, Duration::from_millis(500));
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
                idempotency_ttl: Limits::default().idempotency_ttl,
            }
        );
        assert_eq!(config.redis_command_timeout, Duration::from_millis(250));
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
            config.connections,
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
        assert_eq!(config.connections.header_timeout, Duration::from_secs(300));
        assert_eq!(config.connections.max_connections, MAX_HTTP_CONNECTIONS);
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
        assert_eq!(config.access_ttl, Duration::from_secs(300));
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
        let urls = config.redis_cluster_urls.as_ref().expect("cluster mode");
        assert_eq!(urls.len(), 2);
        assert_eq!(urls[1].expose_secret(), "redis://10.0.0.2:6379");
        assert!(config.redis_url.is_none());
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(config.redis_sentinel.is_none());

        let sentinel = load(&[
            (REDIS_SENTINEL_URLS, "redis://:hunter2@10.0.0.5:26379"),
            (REDIS_SENTINEL_MASTER, " mymaster "),
        ])
        .expect("valid");
        let settings = sentinel.redis_sentinel.as_ref().expect("sentinel mode");
        assert_eq!(settings.master, "mymaster");
        assert_eq!(settings.urls.len(), 1);
        assert!(!format!("{sentinel:?}").contains("hunter2"));
    }
}
