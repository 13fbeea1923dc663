//! One module per use case. Each has a request (plain data, validated inside the use
//! case so every entry point gets the same rules), a response, an error enum and an
//! `execute` method.
//!
//! Tests are unit tests over mocks of the ports (shared fixtures in `testkit`): beside the
//! code while they are small (`#[cfg(test)] mod tests { .. }`), in a sibling
//! `<use_case>/tests.rs` once they outgrow it (`login/tests.rs`, ...).

mod audit;
mod authenticate;
mod change_password;
mod create_todo;
mod delete_account;
mod delete_todo;
mod deliver_notification;
mod get_todo;
mod introspect;
mod list_sessions;
mod list_todos;
mod login;
mod logout;
mod mfa;
mod password_check;
mod readiness;
mod refresh;
mod register;
mod reset_password;
mod revoke_session;
mod revoke_token;
mod set_phone;
mod shared;
mod sms;
#[cfg(test)]
pub(crate) mod testkit;
mod update_todo;
mod verify_phone;

pub(crate) use audit::Audit;
pub use audit::{AuditStats, ListEvents, ListEventsError, Origin};
pub use authenticate::{AuthError, Authenticate};
pub use change_password::{
    ChangePassword, ChangePasswordError, ChangePasswordRequest,
    RETRY_WINDOW as PASSWORD_CHANGE_RETRY_WINDOW,
};
pub use create_todo::{CreateTodo, CreateTodoError, CreateTodoRequest, Created};
pub use delete_account::{DeleteAccount, DeleteAccountError, DeleteAccountRequest};
pub use delete_todo::{DeleteTodo, DeleteTodoError};
pub use deliver_notification::{
    DeliverNotification, DeliveryError, DeliveryOutcome, DeliveryPolicy, DeliveryStats,
};
pub use get_todo::{GetTodo, GetTodoError};
pub use introspect::{Introspect, IntrospectError, Introspection, LiveToken, TokenKind};
pub use list_sessions::{ListSessions, ListSessionsError, SessionView};
pub use list_todos::{ListTodos, ListTodosError};
pub use login::{
    LoggedIn, Login, LoginError, LoginOutcome, LoginRequest, MFA_CHALLENGE_TTL,
    SecondFactorRequired,
};
pub use logout::{Logout, LogoutCredential, LogoutError, LogoutScope};
pub use mfa::{
    CompleteLogin, CompleteLoginRequest, ConfirmTotp, DisableTotp, ENROLMENT_TTL, EnrolTotp,
    MfaError, MfaStatus, RECOVERY_CODES, RecoveryCodes, RenewRecoveryCodes, SecondFactorState,
    TotpEnrolment,
};
pub use readiness::{Readiness, ReadinessError};
pub use refresh::{Refresh, RefreshError};
pub use register::{Register, RegisterError, RegisterRequest, Registered};
pub use reset_password::{
    InFlight, MAX_RESETS_IN_FLIGHT, RequestPasswordReset, ResetPassword, ResetPasswordError,
    ResetPasswordRequest, ResetRequestError, ResetRequested,
};
pub use revoke_session::{RevokeSession, RevokeSessionError};
pub use revoke_token::{RevokeToken, RevokeTokenError, Revoked};
pub use set_phone::{CodeSent, SetPhone, SetPhoneError, SetPhoneRequest};
pub use shared::{Caller, Field, Principal};
pub(crate) use sms::SmsGate;
pub use sms::{SmsKind, SmsOutcome, SmsPolicy, SmsStats};
pub use update_todo::{UpdateTodo, UpdateTodoError, UpdateTodoRequest};
pub use verify_phone::{VerifyPhone, VerifyPhoneError, VerifyPhoneRequest};
