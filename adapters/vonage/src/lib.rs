//! SMS through the Vonage Messages API (v1), behind the application's `Notifier` port.
//!
//! `POST {base}/v1/messages` with `{"message_type":"text","channel":"sms","to","from","text"}`,
//! Basic auth with the API key and secret. Vonage answers 202 with a `message_uuid`;
//! errors are problem documents. The outcome is classified for the outbox worker:
//! 429, 5xx, timeouts and connection failures are worth retrying (429's `Retry-After` is
//! passed on); any other 4xx (bad credentials, invalid number) will never succeed and is
//! permanent.
//!
//! The API secret stays wrapped until the `Authorization` header is built and never
//! reaches a log; logs show phone numbers masked, and never the text of a code SMS.
//!
//! # Layout
//! - `config`: [`VonageConfig`] and its rules ([`VonageConfig::from_parts`],
//!   [`VonageConfigError`]): credentials in pairs, a sender, an http(s) base URL.
//! - here: [`VonageNotifier`] (the client and how its answers are classified),
//!   [`LogNotifier`] (SMS only logged) and [`mask`] (phone numbers in logs).

use std::time::Duration;

use application::ports::{Notifier, NotifyError};
use async_trait::async_trait;
use domain::Sms;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

mod config;
pub use config::{DEFAULT_BASE_URL, DEFAULT_TIMEOUT, VonageConfig, VonageConfigError};

/// The Vonage Messages API client. One `reqwest::Client` (a connection pool) for all sends.
pub struct VonageNotifier {
    client: reqwest::Client,
    endpoint: String,
    api_key: String,
    api_secret: SecretString,
    from: String,
}

impl std::fmt::Debug for VonageNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VonageNotifier")
            .field("endpoint", &self.endpoint)
            .field("api_key", &self.api_key)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct MessageRequest<'a> {
    message_type: &'static str,
    channel: &'static str,
    to: &'a str,
    from: &'a str,
    text: &'a str,
}

#[derive(Deserialize)]
struct MessageAccepted {
    message_uuid: String,
}

#[derive(Deserialize, Default)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
}

impl VonageNotifier {
    /// # Errors
    /// A bad base URL ([`VonageConfigError::BadBaseUrl`]), or the HTTP client cannot be
    /// built (no TLS roots).
    pub fn new(config: VonageConfig) -> anyhow::Result<Self> {
        let endpoint = format!("{}/v1/messages", config.checked_base()?);
        // reqwest is built without a default crypto provider; install ring once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(3)))
            .build()?;
        Ok(Self {
            client,
            endpoint,
            api_key: config.api_key,
            api_secret: config.api_secret,
            from: config.from,
        })
    }
}

#[async_trait]
impl Notifier for VonageNotifier {
    async fn send(&self, sms: &Sms) -> Result<String, NotifyError> {
        let body = MessageRequest {
            message_type: "text",
            channel: "sms",
            to: sms.to.digits(),
            from: &self.from,
            text: &sms.text,
        };
        let response = self
            .client
            .post(&self.endpoint)
            .basic_auth(&self.api_key, Some(self.api_secret.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| NotifyError::Retryable {
                reason: if e.is_timeout() {
                    "Vonage did not answer in time".to_owned()
                } else {
                    format!("cannot reach Vonage: {}", without_url(&e))
                },
                retry_after: None,
            })?;

        let status = response.status();
        if status.is_success() {
            // Accepted. A body we cannot read does not undo that: resending would text twice.
            let receipt = match response.json::<MessageAccepted>().await {
                Ok(accepted) => accepted.message_uuid,
                Err(_) => "accepted (no message_uuid)".to_owned(),
            };
            return Ok(receipt);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let problem: Problem = response.json().await.unwrap_or_default();
        let reason = describe(status, &problem);
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(NotifyError::Retryable {
                reason,
                retry_after,
            })
        } else {
            Err(NotifyError::Permanent { reason })
        }
    }
}

fn describe(status: StatusCode, problem: &Problem) -> String {
    let mut reason = format!("Vonage answered {status}");
    for part in [&problem.title, &problem.detail].into_iter().flatten() {
        reason.push_str(": ");
        reason.extend(part.chars().take(200));
    }
    reason
}

/// reqwest errors print the URL; ours holds no secret, but keep messages short anyway.
fn without_url(err: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    let mut last = err.to_string();
    while let Some(inner) = source {
        last = inner.to_string();
        source = inner.source();
    }
    last
}

/// For development and for deployments without Vonage credentials: logs that an SMS
/// would be sent (number masked) and reports success. The text of a secret SMS (a phone
/// code) is never logged: without Vonage, codes cannot be read anywhere, by design.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn send(&self, sms: &Sms) -> Result<String, NotifyError> {
        let text = if sms.secret {
            "[withheld: it holds a code]"
        } else {
            sms.text.as_str()
        };
        tracing::info!(to = %mask(sms.to.as_str()), text, "SMS not sent (no VONAGE_API_KEY); logged instead");
        Ok("logged".to_owned())
    }
}

/// `+4915112345678` -> `+49*******5678`: enough to tell numbers apart in a log.
pub fn mask(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 3 || i + 4 >= chars.len() {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
