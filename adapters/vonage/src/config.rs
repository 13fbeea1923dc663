//! [`VonageConfig`] and its rules: credentials come in pairs, a key needs a sender, and
//! the base URL is an http(s) URL. The server reads the values and names the variable of
//! a [`VonageConfigError`]; the rules live here alone.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

/// Vonage's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.nexmo.com";
/// Bound on one whole request to Vonage, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct VonageConfig {
    pub api_key: String,
    pub api_secret: SecretString,
    /// Sender: a number bought from Vonage, or an alphanumeric sender id where allowed.
    pub from: String,
    /// `https://api.nexmo.com`; tests point it at a local fake.
    pub base_url: String,
    /// Bound on one whole request, connection included.
    pub timeout: Duration,
}

/// Why a Vonage configuration was refused. Never quotes the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VonageConfigError {
    /// An API key without its secret.
    MissingSecret,
    /// An API secret without its key.
    MissingKey,
    /// Credentials without a sender.
    MissingFrom,
    /// The base URL is not an absolute http(s) URL.
    BadBaseUrl,
}

impl fmt::Display for VonageConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingSecret => "an API key needs its API secret",
            Self::MissingKey => "an API secret needs its API key",
            Self::MissingFrom => "a sender (from) is required with the credentials",
            Self::BadBaseUrl => "the base URL must be an http(s) URL",
        })
    }
}

impl std::error::Error for VonageConfigError {}

impl VonageConfig {
    /// The configuration a deployment gives, each part optional: no credentials at all is
    /// `None` (SMS are only logged); otherwise key and secret both, a sender, and a base
    /// URL ([`DEFAULT_BASE_URL`] when unset). The key is trimmed; the timeout is
    /// [`DEFAULT_TIMEOUT`].
    ///
    /// # Errors
    /// The first missing part (secret, key), then a bad base URL, then a missing sender.
    pub fn from_parts(
        api_key: Option<String>,
        api_secret: Option<SecretString>,
        from: Option<String>,
        base_url: Option<String>,
    ) -> Result<Option<Self>, VonageConfigError> {
        let (api_key, api_secret) = match (api_key, api_secret) {
            (None, None) => return Ok(None),
            (Some(_), None) => return Err(VonageConfigError::MissingSecret),
            (None, Some(_)) => return Err(VonageConfigError::MissingKey),
            (Some(key), Some(secret)) => (key.trim().to_owned(), secret),
        };
        let base_url = base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        check_base_url(&base_url)?;
        let config = Self {
            api_key,
            api_secret,
            from: from.ok_or(VonageConfigError::MissingFrom)?,
            base_url,
            timeout: DEFAULT_TIMEOUT,
        };
        Ok(Some(config))
    }

    /// The base URL without a trailing slash, once checked.
    ///
    /// # Errors
    /// [`VonageConfigError::BadBaseUrl`].
    pub(crate) fn checked_base(&self) -> Result<&str, VonageConfigError> {
        check_base_url(&self.base_url)?;
        Ok(self.base_url.trim_end_matches('/'))
    }
}

/// An absolute `http://` or `https://` URL that parses.
fn check_base_url(base_url: &str) -> Result<(), VonageConfigError> {
    let url = reqwest::Url::parse(base_url).map_err(|_| VonageConfigError::BadBaseUrl)?;
    if matches!(url.scheme(), "http" | "https") && url.has_host() {
        Ok(())
    } else {
        Err(VonageConfigError::BadBaseUrl)
    }
}
