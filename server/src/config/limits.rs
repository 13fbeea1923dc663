//! What one client or one user may do: failed logins, registrations, sessions, todos and
//! todo creations, each counted in the store so that every replica shares the count.

use std::time::Duration;

use application::Limits;
use application::ports::{ThrottleLimits, WindowLimit};
use clap::Args;

use super::error::{ConfigError, err};
use super::values::{Span, count, span_in};
use super::vars::{
    AUDIT_MAX_EVENTS, AUDIT_RETENTION, LOGIN_CLIENT_LIMIT, LOGIN_CLIENT_WINDOW, LOGIN_PAIR_LIMIT,
    LOGIN_PAIR_WINDOW, MAX_SESSIONS_PER_USER, MAX_TODOS_PER_USER, MFA_CODE_LIMIT, MFA_CODE_WINDOW,
    PASSWORD_RESET_CLIENT_LIMIT, PASSWORD_RESET_CLIENT_WINDOW, PASSWORD_RESET_USER_LIMIT,
    PASSWORD_RESET_USER_WINDOW, REGISTER_CLIENT_LIMIT, REGISTER_CLIENT_WINDOW, TODO_CREATE_LIMIT,
    TODO_CREATE_WINDOW,
};

/// Largest count a window may allow.
pub const MAX_LOGIN_LIMIT: u32 = 1_000_000;
/// Longest window.
pub const MAX_LOGIN_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Most sessions `MAX_SESSIONS_PER_USER` may allow. Listing a page and revoking all of a
/// user's sessions read all of them, so the cap bounds that work too: a high cap is for
/// load tests and service accounts, and costs those operations.
pub const MAX_SESSIONS_CAP: u32 = 1_000_000;
/// Most todos `MAX_TODOS_PER_USER` may allow.
pub const MAX_TODOS_CAP: u32 = 10_000_000;

const LIMIT: u64 = MAX_LOGIN_LIMIT as u64;

/// How long an audit trail keeps its events: 1 second to 10 years.
fn audit_span(raw: &str) -> Result<Span, String> {
    span_in(
        Duration::from_secs(1),
        Duration::from_secs(3650 * 24 * 3600),
        "1s and 3650d",
    )(raw)
}

/// A window's length: 1s to 24h.
fn window(raw: &str) -> Result<Span, String> {
    span_in(Duration::from_secs(1), MAX_LOGIN_WINDOW, "1s and 24h")(raw)
}

#[derive(Args, Clone, Debug)]
pub struct LimitArgs {
    /// Failed logins allowed for one username from one client address per window (1 to
    /// 1000000).
    #[arg(long, env = LOGIN_PAIR_LIMIT, value_name = "N",
        default_value_t = ThrottleLimits::default().pair.max, value_parser = count::<u32, 1, LIMIT>)]
    pub login_pair_limit: u32,

    /// The window LOGIN_PAIR_LIMIT counts in (1s to 24h).
    #[arg(long, env = LOGIN_PAIR_WINDOW, value_name = "DURATION",
        default_value_t = Span(ThrottleLimits::default().pair.window), value_parser = window)]
    pub login_pair_window: Span,

    /// Failed logins allowed from one client address whatever the usernames, per window;
    /// not below LOGIN_PAIR_LIMIT (1 to 1000000).
    #[arg(long, env = LOGIN_CLIENT_LIMIT, value_name = "N",
        default_value_t = ThrottleLimits::default().client.max, value_parser = count::<u32, 1, LIMIT>)]
    pub login_client_limit: u32,

    /// The window LOGIN_CLIENT_LIMIT counts in (1s to 24h).
    #[arg(long, env = LOGIN_CLIENT_WINDOW, value_name = "DURATION",
        default_value_t = Span(ThrottleLimits::default().client.window), value_parser = window)]
    pub login_client_window: Span,

    /// Registration attempts allowed from one client address per window (1 to 1000000).
    #[arg(long, env = REGISTER_CLIENT_LIMIT, value_name = "N",
        default_value_t = Limits::default().registrations_per_client.max,
        value_parser = count::<u32, 1, LIMIT>)]
    pub register_client_limit: u32,

    /// The window REGISTER_CLIENT_LIMIT counts in (1s to 24h).
    #[arg(long, env = REGISTER_CLIENT_WINDOW, value_name = "DURATION",
        default_value_t = Span(Limits::default().registrations_per_client.window),
        value_parser = window)]
    pub register_client_window: Span,

    /// Password-reset requests and confirmations allowed from one client address per window
    /// (1 to 1000000).
    #[arg(long, env = PASSWORD_RESET_CLIENT_LIMIT, value_name = "N",
        default_value_t = Limits::default().password_resets_per_client.max,
        value_parser = count::<u32, 1, LIMIT>)]
    pub password_reset_client_limit: u32,

    /// The window PASSWORD_RESET_CLIENT_LIMIT counts in (1s to 24h).
    #[arg(long, env = PASSWORD_RESET_CLIENT_WINDOW, value_name = "DURATION",
        default_value_t = Span(Limits::default().password_resets_per_client.window),
        value_parser = window)]
    pub password_reset_client_window: Span,

    /// Password-reset codes texted to one account per window, whoever asks (1 to 1000000).
    #[arg(long, env = PASSWORD_RESET_USER_LIMIT, value_name = "N",
        default_value_t = Limits::default().password_reset_codes_per_user.max,
        value_parser = count::<u32, 1, LIMIT>)]
    pub password_reset_user_limit: u32,

    /// The window PASSWORD_RESET_USER_LIMIT counts in (1s to 24h).
    #[arg(long, env = PASSWORD_RESET_USER_WINDOW, value_name = "DURATION",
        default_value_t = Span(Limits::default().password_reset_codes_per_user.window),
        value_parser = window)]
    pub password_reset_user_window: Span,

    /// Second-factor codes tried for one account per window: logins, confirmations and
    /// disabling, whoever tries (1 to 1000000).
    #[arg(long, env = MFA_CODE_LIMIT, value_name = "N",
        default_value_t = Limits::default().mfa_codes_per_user.max,
        value_parser = count::<u32, 1, LIMIT>)]
    pub mfa_code_limit: u32,

    /// The window MFA_CODE_LIMIT counts in (1s to 24h).
    #[arg(long, env = MFA_CODE_WINDOW, value_name = "DURATION",
        default_value_t = Span(Limits::default().mfa_codes_per_user.window),
        value_parser = window)]
    pub mfa_code_window: Span,

    /// How long each account's audit trail keeps its events (1s to 3650d).
    #[arg(long, env = AUDIT_RETENTION, value_name = "DURATION",
        default_value_t = Span(Limits::default().audit.max_age), value_parser = audit_span)]
    pub audit_retention: Span,

    /// The most events one account's audit trail keeps; the oldest go first (1 to 100000).
    #[arg(long, env = AUDIT_MAX_EVENTS, value_name = "N",
        default_value_t = Limits::default().audit.max_events,
        value_parser = count::<u32, 1, 100_000>)]
    pub audit_max_events: u32,

    /// Sessions one user may hold; a login beyond it ends the oldest (1 to 1000000;
    /// listing and revoking all of a user's sessions read them all, so keep it small).
    #[arg(long, env = MAX_SESSIONS_PER_USER, value_name = "N",
        default_value_t = Limits::default().max_sessions_per_user,
        value_parser = count::<u32, 1, { MAX_SESSIONS_CAP as u64 }>)]
    pub max_sessions_per_user: u32,

    /// Todos one user may hold (1 to 10000000).
    #[arg(long, env = MAX_TODOS_PER_USER, value_name = "N",
        default_value_t = Limits::default().max_todos_per_user,
        value_parser = count::<u32, 1, { MAX_TODOS_CAP as u64 }>)]
    pub max_todos_per_user: u32,

    /// Todo creations allowed per user per window (1 to 1000000).
    #[arg(long, env = TODO_CREATE_LIMIT, value_name = "N",
        default_value_t = Limits::default().todo_creations.max, value_parser = count::<u32, 1, LIMIT>)]
    pub todo_create_limit: u32,

    /// The window TODO_CREATE_LIMIT counts in (1s to 24h).
    #[arg(long, env = TODO_CREATE_WINDOW, value_name = "DURATION",
        default_value_t = Span(Limits::default().todo_creations.window), value_parser = window)]
    pub todo_create_window: Span,
}

impl LimitArgs {
    /// The login throttle's limits, and the per-user and per-client limits.
    ///
    /// # Errors
    /// `LOGIN_CLIENT_LIMIT` below `LOGIN_PAIR_LIMIT`.
    pub fn build(self) -> Result<(ThrottleLimits, Limits), ConfigError> {
        let throttle = ThrottleLimits {
            pair: WindowLimit {
                max: self.login_pair_limit,
                window: self.login_pair_window.0,
            },
            client: WindowLimit {
                max: self.login_client_limit,
                window: self.login_client_window.0,
            },
        };
        if throttle.client.max < throttle.pair.max {
            return Err(err(
                LOGIN_CLIENT_LIMIT,
                "must not be smaller than LOGIN_PAIR_LIMIT (a client's failures include each of its pairs')",
            ));
        }
        let limits = Limits {
            max_sessions_per_user: self.max_sessions_per_user,
            max_todos_per_user: self.max_todos_per_user,
            todo_creations: WindowLimit {
                max: self.todo_create_limit,
                window: self.todo_create_window.0,
            },
            registrations_per_client: WindowLimit {
                max: self.register_client_limit,
                window: self.register_client_window.0,
            },
            password_resets_per_client: WindowLimit {
                max: self.password_reset_client_limit,
                window: self.password_reset_client_window.0,
            },
            password_reset_codes_per_user: WindowLimit {
                max: self.password_reset_user_limit,
                window: self.password_reset_user_window.0,
            },
            mfa_codes_per_user: WindowLimit {
                max: self.mfa_code_limit,
                window: self.mfa_code_window.0,
            },
            idempotency_ttl: Limits::default().idempotency_ttl,
            audit: application::ports::AuditRetention {
                max_age: self.audit_retention.0,
                max_events: self.audit_max_events,
                ..Limits::default().audit
            },
        };
        Ok((throttle, limits))
    }
}
