//! SMS delivery: Vonage (or SMS only logged), and the worker that empties the outbox.

use std::time::Duration;

use adapter_vonage::{DEFAULT_BASE_URL, VonageConfig, VonageConfigError};
use application::usecases::DeliveryPolicy;
use clap::Args;
use secrecy::SecretString;

use super::error::{ConfigError, err};
use super::values::{Span, count, secret, span_in};
use super::vars::{
    NOTIFY_CONCURRENCY, NOTIFY_DEAD_LETTER_MAX, NOTIFY_DEAD_LETTER_RETENTION, NOTIFY_MAX_ATTEMPTS,
    NOTIFY_MAX_BACKOFF, VONAGE_API_KEY, VONAGE_API_SECRET, VONAGE_BASE_URL, VONAGE_FROM,
};

/// How SMS leave the service.
#[derive(Clone, Debug)]
pub struct NotificationSettings {
    /// `None`: SMS are only logged.
    pub vonage: Option<VonageConfig>,
    /// Attempts, backoff and dead letters.
    pub delivery: DeliveryPolicy,
    /// SMS delivered at once by this replica's worker.
    pub concurrency: usize,
}

#[derive(Args, Clone, Debug)]
pub struct NotifyArgs {
    /// Vonage API key (Basic auth); unset: SMS are only logged. Needs VONAGE_API_SECRET.
    #[arg(long, env = VONAGE_API_KEY, value_name = "KEY")]
    pub vonage_api_key: Option<String>,

    /// Vonage API secret. Needs VONAGE_API_KEY.
    #[arg(long, env = VONAGE_API_SECRET, value_name = "SECRET", value_parser = secret, hide_env_values = true)]
    pub vonage_api_secret: Option<SecretString>,

    /// Sender number or id (required with VONAGE_API_KEY).
    #[arg(long, env = VONAGE_FROM, value_name = "FROM")]
    pub vonage_from: Option<String>,

    /// Messages API base URL.
    #[arg(long, env = VONAGE_BASE_URL, value_name = "URL", default_value = DEFAULT_BASE_URL)]
    pub vonage_base_url: String,

    /// Delivery attempts before an SMS is dead-lettered (1 to 50).
    #[arg(long, env = NOTIFY_MAX_ATTEMPTS, value_name = "N",
        default_value_t = DeliveryPolicy::default().max_attempts, value_parser = count::<u32, 1, 50>)]
    pub notify_max_attempts: u32,

    /// SMS one replica delivers at once (1 to 64).
    #[arg(long, env = NOTIFY_CONCURRENCY, value_name = "N",
        default_value_t = 4, value_parser = count::<usize, 1, 64>)]
    pub notify_concurrency: usize,

    /// Longest wait before retrying an SMS, whatever the provider's `Retry-After` (1s to
    /// 1h).
    #[arg(long, env = NOTIFY_MAX_BACKOFF, value_name = "DURATION",
        default_value_t = Span(DeliveryPolicy::default().max_backoff),
        value_parser = span_in(Duration::from_secs(1), Duration::from_secs(3600), "1s and 1h"))]
    pub notify_max_backoff: Span,

    /// How long dead letters are kept (1s to 365d).
    #[arg(long, env = NOTIFY_DEAD_LETTER_RETENTION, value_name = "DURATION",
        default_value_t = Span(DeliveryPolicy::default().dead_letter_retention),
        value_parser = span_in(Duration::from_secs(1), Duration::from_secs(365 * 24 * 3600), "1s and 365d"))]
    pub notify_dead_letter_retention: Span,

    /// How many dead letters are kept at most (1 to 1000000).
    #[arg(long, env = NOTIFY_DEAD_LETTER_MAX, value_name = "N",
        default_value_t = DeliveryPolicy::default().max_dead_letters,
        value_parser = count::<usize, 1, 1_000_000>)]
    pub notify_dead_letter_max: usize,
}

impl NotifyArgs {
    /// # Errors
    /// Vonage credentials without their pair or a sender, or a bad base URL.
    pub fn build(self) -> Result<NotificationSettings, ConfigError> {
        let vonage = VonageConfig::from_parts(
            self.vonage_api_key,
            self.vonage_api_secret,
            self.vonage_from,
            Some(self.vonage_base_url),
        )
        .map_err(|e| match e {
            VonageConfigError::MissingSecret => {
                err(VONAGE_API_SECRET, "is required when VONAGE_API_KEY is set")
            }
            VonageConfigError::MissingKey => {
                err(VONAGE_API_KEY, "is required when VONAGE_API_SECRET is set")
            }
            VonageConfigError::MissingFrom => {
                err(VONAGE_FROM, "is required when VONAGE_API_KEY is set")
            }
            VonageConfigError::BadBaseUrl => err(VONAGE_BASE_URL, "must be an http(s) URL"),
        })?;
        Ok(NotificationSettings {
            vonage,
            delivery: DeliveryPolicy {
                max_attempts: self.notify_max_attempts,
                max_backoff: self.notify_max_backoff.0,
                dead_letter_retention: self.notify_dead_letter_retention.0,
                max_dead_letters: self.notify_dead_letter_max,
                ..DeliveryPolicy::default()
            },
            concurrency: self.notify_concurrency,
        })
    }
}
