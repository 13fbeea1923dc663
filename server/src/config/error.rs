//! [`ConfigError`]: a refused value, named by its variable.

/// A variable whose value was refused, and why. Never quotes a secret.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

/// A [`ConfigError`] for `variable`.
pub(crate) fn err(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}
