//! Tokens and sessions: the keys (see `keys`), the claims every token carries, how long
//! tokens and sessions live, and the refresh-reuse grace.

use std::time::Duration;

use adapter_jwt::{DEFAULT_LEEWAY, JwtConfig};
use application::TokenPolicy;
use clap::Args;

use super::error::{ConfigError, err};
use super::keys::KeyArgs;
use super::service::Environment;
use super::values::{Span, span, span_where};
use super::vars::{
    ACCESS_TTL, JWT_AUDIENCE, JWT_ISSUER, JWT_LEEWAY, REFRESH_REUSE_GRACE, REFRESH_TTL,
    SESSION_MAX_LIFETIME,
};

/// `iss` and `aud` when unset.
pub const DEFAULT_ISSUER_AND_AUDIENCE: &str = "jwt-todo";

/// How tokens are signed and checked, and how long they and their sessions live.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub jwt: JwtConfig,
    pub policy: TokenPolicy,
}

#[derive(Args, Clone, Debug)]
pub struct TokenArgs {
    #[command(flatten)]
    pub keys: KeyArgs,

    /// Lifetime of an access token (at least 1s).
    #[arg(long, env = ACCESS_TTL, value_name = "DURATION",
        default_value_t = Span(TokenPolicy::default().access_ttl),
        value_parser = span_where(|d| d >= Duration::from_secs(1), "must be at least 1s"))]
    pub access_ttl: Span,

    /// Lifetime of a refresh token, renewed by each refresh (not shorter than ACCESS_TTL).
    #[arg(long, env = REFRESH_TTL, value_name = "DURATION",
        default_value_t = Span(TokenPolicy::default().refresh_ttl), value_parser = span)]
    pub refresh_ttl: Span,

    /// Absolute cap on a session from its login, whatever the refreshes (not shorter than
    /// ACCESS_TTL).
    #[arg(long, env = SESSION_MAX_LIFETIME, value_name = "DURATION",
        default_value_t = Span(TokenPolicy::default().max_session_lifetime), value_parser = span)]
    pub session_max_lifetime: Span,

    /// Window (at most 60s) in which a replay of the refresh token spent by the last
    /// rotation gets the pair already issued instead of revoking the session; 0s: strict.
    #[arg(long, env = REFRESH_REUSE_GRACE, value_name = "DURATION",
        default_value_t = Span(TokenPolicy::default().reuse_grace),
        value_parser = span_where(|d| d <= Duration::from_secs(60),
            "must be at most 60s: a longer window lets a stolen token ride along"))]
    pub refresh_reuse_grace: Span,

    /// The `iss` claim issued and required (at most 256 characters).
    #[arg(long, env = JWT_ISSUER, value_name = "ISSUER", default_value = DEFAULT_ISSUER_AND_AUDIENCE)]
    pub jwt_issuer: String,

    /// The `aud` claim issued and required (at most 256 characters).
    #[arg(long, env = JWT_AUDIENCE, value_name = "AUDIENCE", default_value = DEFAULT_ISSUER_AND_AUDIENCE)]
    pub jwt_audience: String,

    /// Clock-skew allowance on `exp` (at most 5m).
    #[arg(long, env = JWT_LEEWAY, value_name = "DURATION",
        default_value_t = Span(DEFAULT_LEEWAY), value_parser = span)]
    pub jwt_leeway: Span,
}

impl TokenArgs {
    /// Reads the keys and checks the whole through
    /// [`JwtConfig::check`](adapter_jwt::JwtConfig::check) (and, in production,
    /// [`JwtConfig::check_strength`](adapter_jwt::JwtConfig::check_strength)), naming the
    /// variable of whatever is refused.
    ///
    /// # Errors
    /// A lifetime shorter than `ACCESS_TTL`, or a key or claim the adapter refuses.
    pub fn build(self, environment: Environment) -> Result<TokenSettings, ConfigError> {
        let policy = TokenPolicy {
            access_ttl: self.access_ttl.0,
            refresh_ttl: self.refresh_ttl.0,
            max_session_lifetime: self.session_max_lifetime.0,
            reuse_grace: self.refresh_reuse_grace.0,
        };
        if policy.refresh_ttl < policy.access_ttl {
            return Err(err(REFRESH_TTL, "must not be shorter than ACCESS_TTL"));
        }
        if policy.max_session_lifetime < policy.access_ttl {
            return Err(err(
                SESSION_MAX_LIFETIME,
                "must not be shorter than ACCESS_TTL",
            ));
        }
        let (jwt, origin) = self.keys.read(
            environment,
            self.jwt_issuer,
            self.jwt_audience,
            self.jwt_leeway.0,
        )?;
        jwt.check().map_err(|e| origin.blame(e))?;
        if environment == Environment::Production {
            jwt.check_strength().map_err(|e| origin.blame(e))?;
        }
        Ok(TokenSettings { jwt, policy })
    }
}
