//! Configuration: read once at start into typed sections built from the adapters' own
//! config types, every refused value a start-up error naming its variable. Nothing reads
//! the environment after this.
//!
//! # How it is read
//! [`Settings`] declares every variable once, with clap's derive: its name (`env`), its
//! default (from the adapter's or the application's `Default` wherever one exists), its
//! meaning (the doc comment, which `server serve --help` shows) and its parser. Each
//! section turns its part into the type its adapter takes and checks what spans several
//! variables; a rule an adapter owns (secret lengths and strength, repeated keys, one kind
//! of token never passing for the other, the leeway bound, Vonage's credential pairs and
//! URL) is checked by the adapter, and the section maps its error to the variable.
//!
//! Values come from a lookup: the process environment, then `./.env` for what the
//! environment lacks (read, never loaded into the process environment); or a map, in
//! tests. [`bind`] makes each looked-up value its argument's default and stops clap from
//! reading the process environment itself, so the lookup is the only source and a flag
//! of `server serve` the only thing above it. A blank value counts as unset.
//!
//! # Layout
//! - `vars`: the variable names ([`vars::ALL`]); `values`: the parsers; `error`:
//!   [`ConfigError`].
//! - One section each: `service` ([`Environment`], [`LogFormat`]), `http`
//!   ([`HttpSettings`]), `store` ([`StoreSettings`]: the Redis [`Deployment`]), `tokens`
//!   ([`TokenSettings`]) with `keys`, `limits`, `sms`, `notify`
//!   ([`NotificationSettings`]), `oauth` ([`OAuthSettings`]).
//!
//! [`Deployment`]: adapter_redis::Deployment

use std::collections::HashMap;

use application::ports::ThrottleLimits;
use application::{Limits, SmsPolicy};
use clap::{ArgMatches, Args, Command, FromArgMatches};

mod error;
mod http;
mod keys;
mod limits;
mod notify;
mod oauth;
mod service;
mod sms;
mod store;
mod tokens;
mod values;
pub mod vars;

pub use error::ConfigError;
use error::err;
pub use http::{HttpSettings, MAX_HTTP_CONNECTIONS, MIN_HTTP_TIMEOUT};
pub use limits::{MAX_LOGIN_LIMIT, MAX_LOGIN_WINDOW, MAX_SESSIONS_CAP, MAX_TODOS_CAP};
pub use notify::NotificationSettings;
pub use oauth::{DEFAULT_PUBLIC_URL, NewSecret, OAuthSettings, new_secret as oauth_secret};
pub use service::{Environment, LogFormat};
pub use sms::MAX_SMS_CAP;
pub use store::StoreSettings;
pub use tokens::TokenSettings;
pub use vars::*;

/// Every variable, as `server serve` takes it (from the environment, `.env`, or a flag).
#[derive(Args, Clone, Debug)]
pub struct Settings {
    #[command(flatten, next_help_heading = "Service")]
    service: service::ServiceArgs,
    #[command(flatten, next_help_heading = "HTTP and connections")]
    http: http::HttpArgs,
    #[command(flatten, next_help_heading = "Store")]
    store: store::StoreArgs,
    #[command(flatten, next_help_heading = "Tokens and sessions")]
    tokens: tokens::TokenArgs,
    #[command(flatten, next_help_heading = "Limits")]
    limits: limits::LimitArgs,
    #[command(flatten, next_help_heading = "SMS and phone codes")]
    sms: sms::SmsArgs,
    #[command(flatten, next_help_heading = "SMS delivery")]
    notify: notify::NotifyArgs,
    #[command(flatten, next_help_heading = "OAuth 2.0")]
    oauth: oauth::OAuthArgs,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub environment: Environment,
    pub log_format: LogFormat,
    pub http: HttpSettings,
    pub store: StoreSettings,
    pub tokens: TokenSettings,
    /// Failed logins allowed per (username, client) and per client, per window.
    pub login_throttle: ThrottleLimits,
    /// What one user or one client may hold or do (sessions, todos, creations,
    /// registrations).
    pub limits: Limits,
    /// SMS caps, the country allow-list and phone codes.
    pub sms: SmsPolicy,
    pub notifications: NotificationSettings,
    pub oauth: OAuthSettings,
}

impl Settings {
    /// The typed sections.
    ///
    /// # Errors
    /// The first variable refused, named.
    pub fn build(self) -> Result<Config, ConfigError> {
        let environment = self.service.app_env;
        let http = self.http.build()?;
        let tokens = self.tokens.build(environment)?;
        let notifications = self.notify.build()?;
        let sms = self.sms.build()?;
        let store = self.store.build()?;
        let (login_throttle, limits) = self.limits.build()?;
        let oauth = self.oauth.build()?;
        Ok(Config {
            environment,
            log_format: self.service.log_format,
            http,
            store,
            tokens,
            login_throttle,
            limits,
            sms,
            notifications,
            oauth,
        })
    }

    /// The arguments as a command of their own, `--help` and all.
    pub fn command() -> Command {
        Self::augment_args(Command::new("server"))
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
        Self::from_lookup(env_and_dotenv()?)
    }

    /// Reads configuration through `lookup`, so tests need not touch the process
    /// environment (which `set_var` makes racy).
    ///
    /// # Errors
    /// The first variable with a bad value, named.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let matches = bind(Settings::command(), &lookup)
            .try_get_matches_from(["server"])
            .map_err(|e| from_clap(&e))?;
        Self::from_matches(&matches)
    }

    /// The configuration in `matches` of a command [`bind`] made.
    ///
    /// # Errors
    /// The first variable with a bad value, named.
    pub fn from_matches(matches: &ArgMatches) -> Result<Self, ConfigError> {
        Settings::from_arg_matches(matches)
            .map_err(|e| from_clap(&e))?
            .build()
    }
}

/// A lookup of the process environment, then of `./.env` for what the environment lacks.
///
/// # Errors
/// `.env` exists but cannot be read or parsed.
pub fn env_and_dotenv() -> Result<impl Fn(&str) -> Option<String>, ConfigError> {
    let mut file = HashMap::new();
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
    Ok(move |key: &str| std::env::var(key).ok().or_else(|| file.get(key).cloned()))
}

/// `command` (made of [`Settings`]) with `lookup` as the only source of values: each
/// variable's non-blank value becomes its argument's default, and clap no longer reads
/// the process environment. Flags on the command line still win.
pub fn bind(command: Command, lookup: &dyn Fn(&str) -> Option<String>) -> Command {
    command.mut_args(|arg| {
        let value = arg
            .get_env()
            .and_then(|name| name.to_str())
            .and_then(lookup)
            .filter(|value| !value.trim().is_empty());
        let arg = arg.env(None::<&str>);
        match value {
            Some(value) => arg.default_value(value),
            None => arg,
        }
    })
}

/// A clap error about a value, as the variable it is about: clap names the argument
/// (`--access-ttl <DURATION>`); our parsers say what they expected.
pub fn from_clap(error: &clap::Error) -> ConfigError {
    use clap::error::{ContextKind, ContextValue};
    let argument = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(argument)) => argument.as_str(),
        _ => "",
    };
    let mut command = Settings::command();
    command.build();
    let variable = command
        .get_arguments()
        .find(|arg| arg.to_string() == argument)
        .and_then(|arg| arg.get_env())
        .and_then(|name| vars::ALL.iter().copied().find(|v| name == *v))
        .unwrap_or("configuration");
    let message = match std::error::Error::source(error) {
        Some(source) => source.to_string(),
        None => error.kind().to_string(),
    };
    err(variable, message)
}

#[cfg(test)]
mod tests;
