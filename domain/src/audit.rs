//! The audit trail: what happened to the security of an account, for its owner to see.

use crate::{SessionId, Timestamp};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditKind {
    LoginSucceeded,
    /// A wrong password for the account.
    LoginFailed,
    /// A login refused unchecked: too many failures.
    LoginThrottled,
    Refreshed,
    /// A spent refresh token presented again: its session was revoked as stolen.
    ReuseDetected,
    LoggedOut,
    /// One session ended by another (`DELETE /sessions/{id}`).
    SessionRevoked,
    PasswordChanged,
    PasswordReset,
    PhoneVerified,
    /// The password was right and the account has a second factor: a challenge was
    /// issued, which the login must complete with a code.
    MfaChallenged,
    /// A second factor (TOTP) was confirmed and is required at login from now on.
    MfaEnabled,
    /// The second factor was removed (confirmed with a fresh code).
    MfaDisabled,
    /// A wrong or reused second-factor code, after a right password.
    MfaFailed,
    /// The recovery codes were replaced by new ones (confirmed with a fresh code): the
    /// earlier ones stopped working.
    RecoveryCodesRenewed,
}

impl AuditKind {
    pub const ALL: [AuditKind; 15] = [
        AuditKind::LoginSucceeded,
        AuditKind::LoginFailed,
        AuditKind::LoginThrottled,
        AuditKind::Refreshed,
        AuditKind::ReuseDetected,
        AuditKind::LoggedOut,
        AuditKind::SessionRevoked,
        AuditKind::PasswordChanged,
        AuditKind::PasswordReset,
        AuditKind::PhoneVerified,
        AuditKind::MfaChallenged,
        AuditKind::MfaEnabled,
        AuditKind::MfaDisabled,
        AuditKind::MfaFailed,
        AuditKind::RecoveryCodesRenewed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AuditKind::LoginSucceeded => "login_succeeded",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::LoginThrottled => "login_throttled",
            AuditKind::Refreshed => "refreshed",
            AuditKind::ReuseDetected => "reuse_detected",
            AuditKind::LoggedOut => "logged_out",
            AuditKind::SessionRevoked => "session_revoked",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::PasswordReset => "password_reset",
            AuditKind::PhoneVerified => "phone_verified",
            AuditKind::MfaChallenged => "mfa_challenged",
            AuditKind::MfaEnabled => "mfa_enabled",
            AuditKind::MfaDisabled => "mfa_disabled",
            AuditKind::MfaFailed => "mfa_failed",
            AuditKind::RecoveryCodesRenewed => "recovery_codes_renewed",
        }
    }

    /// The inverse of [`AuditKind::as_str`].
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    /// Events anyone who knows the username can cause (failed and throttled logins): kept
    /// within a budget per account, so that they cannot push the owner's own events out
    /// of the bounded trail.
    pub const fn is_noise(self) -> bool {
        matches!(self, AuditKind::LoginFailed | AuditKind::LoginThrottled)
    }
}

/// One entry of an account's trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub at: Timestamp,
    /// The session the event happened in or to, when there is one.
    pub session_id: Option<SessionId>,
    /// The client's address (the TCP peer, or what a trusted proxy reported).
    pub client: Option<String>,
    /// As the client sent it, cleaned (see `Session::clean_user_agent`).
    pub user_agent: Option<String>,
    /// What else is worth knowing (`scope=others ended=2`), never a secret.
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::parse("nothing"), None);
    }
}
