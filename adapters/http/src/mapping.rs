//! The one place where use-case errors become problems: each use-case error variant has
//! exactly one [`Failure`], and with it the label it counts under in its operation's
//! outcome metric. Which failures an operation may answer is its contract
//! ([`crate::contract`]).

use application::ports::SmsLimit;
use application::usecases::{
    AuthError, ChangePasswordError, CreateTodoError, DeleteAccountError, DeleteTodoError, Field,
    GetTodoError, IntrospectError, ListEventsError, ListSessionsError, ListTodosError, LoginError,
    LogoutError, MfaError, ReadinessError, RefreshError, RegisterError, ResetPasswordError,
    ResetRequestError, RevokeSessionError, RevokeTokenError, SetPhoneError, UpdateTodoError,
    VerifyPhoneError,
};

use crate::problem::{Failure, Kind};

/// The answer to any dead refresh token, spent ones included: a thief learns nothing.
const DEAD_REFRESH_TOKEN: &str = "The refresh token is invalid or expired";

impl From<AuthError> for Failure {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidToken => Failure::invalid_token("The access token is invalid"),
            AuthError::Expired => Failure::invalid_token("The access token expired"),
            AuthError::Revoked => Failure::invalid_token("The session was logged out or revoked"),
            AuthError::UserGone => Failure::invalid_token("The user no longer exists"),
            AuthError::Unavailable(e) => Failure::unavailable(&e),
            AuthError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<LoginError> for Failure {
    fn from(err: LoginError) -> Self {
        match err {
            LoginError::Throttled { retry_after } => Failure::too_many(
                Kind::TooManyLogins,
                "Too many failed logins from this client",
                retry_after,
            )
            .outcome("throttled"),
            LoginError::InvalidCredentials => {
                Failure::invalid_credentials().outcome("invalid_credentials")
            }
            LoginError::Overloaded => {
                Failure::busy("Too many logins at once; retry shortly").outcome("overloaded")
            }
            LoginError::Unavailable(e) => Failure::unavailable(&e),
            LoginError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

/// A password re-entered to confirm a change was wrong.
fn wrong_password() -> Failure {
    Failure::new(Kind::WrongPassword)
        .detail("The password is wrong")
        .outcome("wrong_password")
}

/// Too many failed password checks: counted with the failed logins.
fn password_throttled(retry_after: std::time::Duration) -> Failure {
    Failure::too_many(
        Kind::TooManyLogins,
        "Too many failed password checks from this client",
        retry_after,
    )
    .outcome("throttled")
}

impl From<ChangePasswordError> for Failure {
    fn from(err: ChangePasswordError) -> Self {
        match err {
            ChangePasswordError::InvalidNewPassword(e) => {
                Failure::invalid_field(Field::NewPassword, e.to_string())
            }
            ChangePasswordError::WrongPassword => wrong_password(),
            ChangePasswordError::Throttled { retry_after } => password_throttled(retry_after),
            ChangePasswordError::Overloaded => {
                Failure::busy("Too many passwords checked at once; retry shortly")
                    .outcome("overloaded")
            }
            ChangePasswordError::UserGone => Failure::invalid_token("The user no longer exists"),
            ChangePasswordError::Unavailable(e) => Failure::unavailable(&e),
            ChangePasswordError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<DeleteAccountError> for Failure {
    fn from(err: DeleteAccountError) -> Self {
        match err {
            DeleteAccountError::WrongPassword => wrong_password(),
            DeleteAccountError::Throttled { retry_after } => password_throttled(retry_after),
            DeleteAccountError::Overloaded => {
                Failure::busy("Too many passwords checked at once; retry shortly")
                    .outcome("overloaded")
            }
            DeleteAccountError::UserGone => Failure::invalid_token("The user no longer exists"),
            DeleteAccountError::Unavailable(e) => Failure::unavailable(&e),
            DeleteAccountError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

/// Too many password resets from one client.
fn resets_throttled(retry_after: std::time::Duration) -> Failure {
    Failure::too_many(
        Kind::TooManyPasswordResets,
        "Too many password resets from this client",
        retry_after,
    )
    .outcome("throttled")
}

impl From<ResetRequestError> for Failure {
    fn from(err: ResetRequestError) -> Self {
        match err {
            ResetRequestError::Throttled { retry_after } => resets_throttled(retry_after),
            ResetRequestError::Busy => {
                Failure::busy("Too many password resets at once; retry shortly").outcome("busy")
            }
            ResetRequestError::Unavailable(e) => Failure::unavailable(&e),
            ResetRequestError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<ResetPasswordError> for Failure {
    fn from(err: ResetPasswordError) -> Self {
        match err {
            ResetPasswordError::InvalidNewPassword(e) => {
                Failure::invalid_field(Field::NewPassword, e.to_string())
            }
            ResetPasswordError::InvalidCode(e) => {
                Failure::invalid_field(Field::Code, e.to_string())
            }
            ResetPasswordError::WrongCode => Failure::new(Kind::WrongCode)
                .detail("The code is wrong or expired, or not this account's")
                .outcome("wrong_code"),
            ResetPasswordError::Throttled { retry_after } => resets_throttled(retry_after),
            ResetPasswordError::Overloaded => {
                Failure::busy("Too many passwords hashed at once; retry shortly")
                    .outcome("overloaded")
            }
            ResetPasswordError::Unavailable(e) => Failure::unavailable(&e),
            ResetPasswordError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<RefreshError> for Failure {
    fn from(err: RefreshError) -> Self {
        match err {
            RefreshError::InvalidToken => {
                Failure::invalid_token(DEAD_REFRESH_TOKEN).outcome("invalid")
            }
            RefreshError::Reused => Failure::invalid_token(DEAD_REFRESH_TOKEN).outcome("reused"),
            RefreshError::Unavailable(e) => Failure::unavailable(&e),
            RefreshError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<LogoutError> for Failure {
    fn from(err: LogoutError) -> Self {
        match err {
            LogoutError::InvalidToken => Failure::invalid_token(DEAD_REFRESH_TOKEN),
            LogoutError::Reused => Failure::invalid_token(DEAD_REFRESH_TOKEN).outcome("reused"),
            LogoutError::Unavailable(e) => Failure::unavailable(&e),
            LogoutError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<RegisterError> for Failure {
    fn from(err: RegisterError) -> Self {
        match err {
            RegisterError::Invalid { field, message } => Failure::invalid_field(field, message),
            RegisterError::UsernameTaken => Failure::new(Kind::UsernameTaken)
                .detail("This username is already registered")
                .at(Field::Username),
            RegisterError::KeyReused => Failure::key_reused(),
            RegisterError::Throttled { retry_after } => Failure::too_many(
                Kind::TooManyRegistrations,
                "Too many registrations from this client",
                retry_after,
            ),
            RegisterError::Overloaded => {
                Failure::busy("Too many registrations at once; retry shortly")
            }
            RegisterError::Unavailable(e) => Failure::unavailable(&e),
            RegisterError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

/// Listings, whose only own error is a page parameter out of range.
macro_rules! listing {
    ($($error:ident),* $(,)?) => {$(
        impl From<$error> for Failure {
            fn from(err: $error) -> Self {
                match err {
                    $error::Invalid { field, message } => {
                        Failure::bad_parameter(field.as_str(), message)
                    }
                    $error::Unavailable(e) => Failure::unavailable(&e),
                    $error::Unexpected(e) => Failure::internal(&e),
                }
            }
        }
    )*};
}

listing!(ListTodosError, ListSessionsError, ListEventsError);

impl From<IntrospectError> for Failure {
    fn from(err: IntrospectError) -> Self {
        match err {
            IntrospectError::Unavailable(e) => Failure::unavailable(&e),
            IntrospectError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<RevokeTokenError> for Failure {
    fn from(err: RevokeTokenError) -> Self {
        match err {
            // The OAuth endpoint answers this one itself (`unauthorized_client`); as a
            // problem it would be a refused parameter.
            RevokeTokenError::OtherClient => {
                Failure::bad_parameter("token", "The token was not issued to this client")
            }
            RevokeTokenError::Unavailable(e) => Failure::unavailable(&e),
            RevokeTokenError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

/// Use cases whose only own error is "not found", besides the two catch-alls.
macro_rules! not_found_or_store {
    ($($error:ident => $what:literal),* $(,)?) => {$(
        impl From<$error> for Failure {
            fn from(err: $error) -> Self {
                match err {
                    $error::NotFound => Failure::not_found($what),
                    $error::Unavailable(e) => Failure::unavailable(&e),
                    $error::Unexpected(e) => Failure::internal(&e),
                }
            }
        }
    )*};
}

not_found_or_store!(
    GetTodoError => "todo",
    DeleteTodoError => "todo",
    RevokeSessionError => "session",
);

impl From<ReadinessError> for Failure {
    fn from(err: ReadinessError) -> Self {
        match err {
            ReadinessError::Unavailable(e) => Failure::unavailable(&e),
            ReadinessError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<CreateTodoError> for Failure {
    fn from(err: CreateTodoError) -> Self {
        match err {
            CreateTodoError::InvalidTitle(e) => Failure::invalid_field(Field::Title, e.to_string()),
            CreateTodoError::QuotaExceeded { max } => Failure::new(Kind::TodoQuotaExceeded).detail(
                format!("A user may hold at most {max} todos; delete some to make room"),
            ),
            CreateTodoError::KeyReused => Failure::key_reused(),
            CreateTodoError::UserGone => Failure::invalid_token("The user no longer exists"),
            CreateTodoError::RateLimited { retry_after } => Failure::too_many(
                Kind::TooManyTodos,
                "Too many todos created in the last minute",
                retry_after,
            ),
            CreateTodoError::Unavailable(e) => Failure::unavailable(&e),
            CreateTodoError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<UpdateTodoError> for Failure {
    fn from(err: UpdateTodoError) -> Self {
        match err {
            UpdateTodoError::NotFound => Failure::not_found("todo"),
            UpdateTodoError::InvalidTitle(e) => Failure::invalid_field(Field::Title, e.to_string()),
            UpdateTodoError::Unavailable(e) => Failure::unavailable(&e),
            UpdateTodoError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<SetPhoneError> for Failure {
    fn from(err: SetPhoneError) -> Self {
        match err {
            SetPhoneError::TooManyRequests { limit, retry_after } => {
                let why = match limit {
                    SmsLimit::Cooldown => "A code was sent moments ago",
                    SmsLimit::User => "This account has reached its SMS limit",
                    SmsLimit::Number => "This number has reached its SMS limit",
                };
                Failure::too_many(Kind::TooManySms, why, retry_after)
            }
            SetPhoneError::InvalidPhone(e) => Failure::invalid_field(Field::Phone, e.to_string()),
            err @ SetPhoneError::CountryNotAllowed => {
                Failure::invalid_field(Field::Phone, err.to_string())
            }
            SetPhoneError::UserGone => Failure::invalid_token("The user no longer exists"),
            SetPhoneError::Unavailable(e) => Failure::unavailable(&e),
            SetPhoneError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<VerifyPhoneError> for Failure {
    fn from(err: VerifyPhoneError) -> Self {
        match err {
            VerifyPhoneError::InvalidCode(e) => Failure::invalid_field(Field::Code, e.to_string()),
            VerifyPhoneError::WrongCode { attempts_left: 0 } => Failure::new(Kind::WrongCode)
                .detail("The code is wrong, and that was its last try: request a new code")
                .at(Field::Code),
            VerifyPhoneError::WrongCode { attempts_left } => Failure::new(Kind::WrongCode)
                .detail(format!(
                    "The code is wrong; {attempts_left} more tries for this code"
                ))
                .at(Field::Code),
            VerifyPhoneError::NoPendingCode => Failure::new(Kind::NoPendingCode)
                .detail(
                    "No code is pending for this number (none was requested, or it expired, \
                     was used, was replaced, or had too many wrong tries): request one with \
                     POST /me/phone",
                )
                .at(Field::Code),
            VerifyPhoneError::Unavailable(e) => Failure::unavailable(&e),
            VerifyPhoneError::Unexpected(e) => Failure::internal(&e),
        }
    }
}

impl From<MfaError> for Failure {
    fn from(err: MfaError) -> Self {
        match err {
            MfaError::InvalidCode(why) => Failure::invalid_field(Field::Code, why),
            MfaError::WrongCode => Failure::new(Kind::WrongCode)
                .detail("The code is wrong, or was used already: wait for the next one")
                .at(Field::Code),
            MfaError::Throttled { retry_after } => Failure::too_many(
                Kind::TooManyCodes,
                "Too many codes were tried for this account",
                retry_after,
            ),
            MfaError::AlreadyEnabled => Failure::new(Kind::MfaEnabled)
                .detail("A second factor is enabled already: disable it first"),
            MfaError::NoPendingEnrolment => Failure::new(Kind::NoPendingCode)
                .detail(
                    "No enrolment is pending (none was started, it expired, or it was \
                     confirmed already): start one with POST /me/mfa/totp",
                )
                .at(Field::Code),
            MfaError::NotEnabled => Failure::not_found("second factor"),
            MfaError::InvalidChallenge => Failure::invalid_challenge(),
            MfaError::UserGone => Failure::invalid_token("The user no longer exists"),
            MfaError::Unavailable(e) => Failure::unavailable(&e),
            MfaError::Unexpected(e) => Failure::internal(&e),
        }
    }
}
