//! The service as a whole: development or production, and how it logs.

use std::fmt;

use clap::Args;

use super::values::one_of;
use super::vars::{APP_ENV, LOG_FORMAT};

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

const ENVIRONMENTS: &[(&str, Environment)] = &[
    ("development", Environment::Development),
    ("dev", Environment::Development),
    ("production", Environment::Production),
    ("prod", Environment::Production),
];

const LOG_FORMATS: &[(&str, LogFormat)] = &[("text", LogFormat::Text), ("json", LogFormat::Json)];

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Environment::Development => "development",
            Environment::Production => "production",
        })
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

#[derive(Args, Clone, Debug)]
pub struct ServiceArgs {
    /// `development` (random secrets when none are given, the seed's sample user) or
    /// `production` (secrets required, no sample user).
    #[arg(
        long,
        env = APP_ENV,
        value_name = "ENV",
        default_value_t = Environment::Development,
        value_parser = one_of(ENVIRONMENTS, false, "'development' or 'production'"),
    )]
    pub app_env: Environment,

    /// Log lines: `text` (human-readable) or `json` (one object per line). The filter is
    /// `RUST_LOG` (default `info,poem=warn`), read from the environment only.
    #[arg(
        long,
        env = LOG_FORMAT,
        value_name = "FORMAT",
        default_value_t = LogFormat::Text,
        value_parser = one_of(LOG_FORMATS, false, "'text' or 'json'"),
    )]
    pub log_format: LogFormat,
}
