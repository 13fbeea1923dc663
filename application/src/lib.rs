//! jwt-todo's use cases, over ports.
//!
//! # Layout
//! - [`ports`]: the traits the use cases need (stores, token codec, hasher, clock, ids),
//!   each documenting its failures; one module per concern (`ports/*.rs`), all re-exported
//!   from `ports`; mockall mocks behind the `mocks` feature.
//! - [`usecases`]: one module per operation, each with its request, response, error enum
//!   and an `execute` method. No use case knows about HTTP; each returns its own error and
//!   the HTTP adapter maps them to statuses in one place.
//! - [`policy`]: the operator's rules: token lifetimes ([`TokenPolicy`]) and what one user
//!   or client may hold or do ([`Limits`]).
//! - [`clients`]: the registered OAuth 2.0 clients and how one authenticates.
//! - [`Services`]: every use case, built once from the ports, the [`TokenPolicy`], the
//!   login [`ThrottleLimits`], the per-user and per-client [`Limits`] and the
//!   [`SmsPolicy`], for the inbound adapter to hold.

use std::sync::Arc;

pub mod clients;
pub mod policy;
pub mod ports;
pub mod usecases;

pub use policy::{DEFAULT_PAGE_SIZE, Limits, MAX_PAGE_SIZE, TokenPolicy};
pub use ports::Ports;
pub use usecases::{Caller, Principal, SmsPolicy};

use ports::ThrottleLimits;
use usecases::{
    Audit, AuditStats, Authenticate, ChangePassword, CompleteLogin, ConfirmTotp, CreateTodo,
    DeleteAccount, DeleteTodo, DisableTotp, EnrolTotp, GetTodo, Introspect, ListEvents,
    ListSessions, ListTodos, Login, Logout, MfaStatus, Readiness, Refresh, Register,
    RenewRecoveryCodes, RequestPasswordReset, ResetPassword, RevokeSession, RevokeToken, SetPhone,
    SmsGate, SmsStats, UpdateTodo, VerifyPhone,
};

/// Every use case, ready to execute.
#[derive(Debug)]
pub struct Services {
    pub register: Register,
    pub login: Login,
    pub refresh: Refresh,
    pub logout: Logout,
    pub authenticate: Authenticate,
    pub create_todo: CreateTodo,
    pub list_todos: ListTodos,
    pub get_todo: GetTodo,
    pub update_todo: UpdateTodo,
    pub delete_todo: DeleteTodo,
    pub list_sessions: ListSessions,
    pub revoke_session: RevokeSession,
    /// RFC 7662 introspection, for resource servers.
    pub introspect: Introspect,
    /// RFC 7009 revocation, for OAuth clients.
    pub revoke_token: RevokeToken,
    pub readiness: Readiness,
    pub set_phone: SetPhone,
    pub verify_phone: VerifyPhone,
    pub change_password: ChangePassword,
    pub delete_account: DeleteAccount,
    pub enrol_totp: EnrolTotp,
    pub confirm_totp: ConfirmTotp,
    pub disable_totp: DisableTotp,
    pub renew_recovery_codes: RenewRecoveryCodes,
    pub mfa_status: MfaStatus,
    pub complete_login: CompleteLogin,
    pub request_password_reset: RequestPasswordReset,
    pub reset_password: ResetPassword,
    /// The caller's own audit trail.
    pub list_events: ListEvents,
    /// What became of the audit events, for the metrics.
    pub audit_stats: Arc<AuditStats>,
    /// What the SMS gate decided, for the metrics.
    pub sms_stats: Arc<SmsStats>,
}

impl Services {
    pub fn new(
        ports: &Ports,
        policy: TokenPolicy,
        throttle: ThrottleLimits,
        limits: Limits,
        sms: SmsPolicy,
    ) -> Self {
        let sms_stats = Arc::new(SmsStats::default());
        let sms = SmsGate::new(ports, sms, Arc::clone(&sms_stats));
        let audit_stats = Arc::new(AuditStats::default());
        let audit = Audit::new(ports, limits.audit, Arc::clone(&audit_stats));
        Self {
            register: Register::new(ports, limits, Arc::clone(&sms.policy)),
            login: Login::new(ports, policy, throttle, limits, audit.clone()),
            enrol_totp: EnrolTotp::new(ports),
            confirm_totp: ConfirmTotp::new(ports, limits, audit.clone()),
            disable_totp: DisableTotp::new(ports, limits, audit.clone()),
            renew_recovery_codes: RenewRecoveryCodes::new(ports, limits, audit.clone()),
            mfa_status: MfaStatus::new(ports),
            complete_login: CompleteLogin::new(ports, policy, limits, audit.clone()),
            refresh: Refresh::new(ports, policy, audit.clone()),
            logout: Logout::new(ports, policy, audit.clone()),
            authenticate: Authenticate::new(ports),
            create_todo: CreateTodo::new(ports, limits, sms.clone()),
            list_todos: ListTodos::new(ports),
            get_todo: GetTodo::new(ports),
            update_todo: UpdateTodo::new(ports),
            delete_todo: DeleteTodo::new(ports),
            list_sessions: ListSessions::new(ports),
            revoke_session: RevokeSession::new(ports, audit.clone()),
            introspect: Introspect::new(ports),
            revoke_token: RevokeToken::new(ports, policy, audit.clone()),
            readiness: Readiness::new(ports),
            request_password_reset: RequestPasswordReset::new(
                ports,
                limits.password_resets_per_client,
                limits.password_reset_codes_per_user,
                sms.clone(),
            ),
            reset_password: ResetPassword::new(
                ports,
                limits.password_resets_per_client,
                audit.clone(),
            ),
            list_events: ListEvents::new(ports, limits.audit),
            audit_stats,
            set_phone: SetPhone::new(ports, sms),
            verify_phone: VerifyPhone::new(ports, audit.clone()),
            change_password: ChangePassword::new(ports, throttle, audit),
            delete_account: DeleteAccount::new(ports, throttle),
            sms_stats,
        }
    }
}
