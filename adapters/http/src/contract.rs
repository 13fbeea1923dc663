//! Each operation's error contract: the statuses it can answer besides success, and for
//! each the problem `type`s it carries.
//!
//! An operation's errors are an [`OpError`] of its own [`Errors`] table. The table is the
//! documentation (each status becomes a response of the operation in the spec, and the
//! operation's problem schema lists exactly its `type`s as an enum, so generated clients
//! get one precise error type per operation) and the check: a failure of a kind the
//! table does not list is a bug, logged and answered as a 500 (and a panic in debug
//! builds, so the tests catch it).

use std::marker::PhantomData;

use poem_openapi::ApiResponse;
use poem_openapi::registry::{
    MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};

use crate::problem::{Failure, Kind};

/// The statuses of a response with one of `kinds`, described for client authors.
#[derive(Debug)]
pub struct Documented {
    /// The problem types this status carries for the operation; all of one status.
    pub kinds: &'static [Kind],
    /// Shown in the spec; names each of `kinds` by its slug.
    pub description: &'static str,
}

impl Documented {
    pub fn status(&self) -> u16 {
        self.kinds.first().map_or(500, |k| k.status().as_u16())
    }
}

/// An operation's error contract.
pub trait Errors: Send + Sync + 'static {
    /// The name of the operation's problem schema.
    const SCHEMA: &'static str;
    /// One entry per error status, in ascending order.
    const RESPONSES: &'static [Documented];

    /// Whether the operation may answer a failure of `kind`.
    fn declares(kind: Kind) -> bool {
        Self::RESPONSES.iter().any(|r| r.kinds.contains(&kind))
    }

    /// Every kind the operation may answer, in the table's order.
    fn kinds() -> Vec<Kind> {
        Self::RESPONSES
            .iter()
            .flat_map(|r| r.kinds.iter().copied())
            .collect()
    }
}

/// A failure of the operation `S`, within its contract.
pub struct OpError<S> {
    failure: Failure,
    operation: PhantomData<fn() -> S>,
}

impl<S> std::fmt::Debug for OpError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OpError").field(&self.failure).finish()
    }
}

impl<S: Errors> OpError<S> {
    /// `failure` as the operation's answer; one of a kind the operation does not declare
    /// becomes a 500.
    pub(crate) fn new(failure: Failure) -> Self {
        let failure = if S::declares(failure.kind()) {
            failure
        } else {
            tracing::error!(
                operation = S::SCHEMA,
                kind = failure.kind().slug(),
                "a failure the operation's contract does not declare"
            );
            debug_assert!(
                false,
                "{} does not declare {:?}: add it to its contract",
                S::SCHEMA,
                failure.kind()
            );
            Failure::new(Kind::Internal)
        };
        Self {
            failure,
            operation: PhantomData,
        }
    }

    pub fn failure(&self) -> &Failure {
        &self.failure
    }
}

impl<S> From<OpError<S>> for poem::Error {
    fn from(err: OpError<S>) -> Self {
        err.failure.into()
    }
}

fn string(description: &'static str) -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema {
        description: Some(description),
        ..MetaSchema::new("string")
    }))
}

/// The headers a status carries, as the spec lists them.
fn headers_of(status: u16) -> Vec<MetaHeader> {
    let header = |name: &str, description: &str| MetaHeader {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        required: true,
        deprecated: false,
        schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
    };
    match status {
        401 => vec![header(
            "WWW-Authenticate",
            "The RFC 6750 challenge: `Bearer realm=\"jwt-todo\"`, with \
             `error=\"invalid_token\"` when a token was presented and refused.",
        )],
        408 => vec![header(
            "Connection",
            "`close`: send the request again on a new connection.",
        )],
        429 | 503 => vec![header(
            "Retry-After",
            "Seconds to wait before a retry may succeed.",
        )],
        _ => Vec::new(),
    }
}

impl<S: Errors> ApiResponse for OpError<S> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: S::RESPONSES
                .iter()
                .map(|r| MetaResponse {
                    description: r.description,
                    status: Some(r.status()),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/problem+json",
                        schema: MetaSchemaRef::Reference(S::SCHEMA.to_owned()),
                    }],
                    headers: headers_of(r.status()),
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<S, _>(S::SCHEMA.to_owned(), |_| {
            let kinds = MetaSchemaRef::Inline(Box::new(MetaSchema {
                description: Some(
                    "A URI identifying the kind of problem; stable, so clients may branch on \
                     it. Only the kinds this operation can answer.",
                ),
                enum_items: S::kinds()
                    .into_iter()
                    .map(|k| serde_json::Value::String(k.uri()))
                    .collect(),
                ..MetaSchema::new("string")
            }));
            MetaSchema {
                title: Some(S::SCHEMA.to_owned()),
                description: Some("An RFC 9457 problem document."),
                required: vec!["type", "title", "status"],
                properties: vec![
                    ("type", kinds),
                    (
                        "title",
                        string("Short, human-readable summary of the kind of problem."),
                    ),
                    (
                        "status",
                        MetaSchemaRef::Inline(Box::new(MetaSchema {
                            description: Some("The HTTP status code."),
                            ..MetaSchema::new_with_format("integer", "uint16")
                        })),
                    ),
                    ("detail", string("Explanation specific to this occurrence.")),
                    (
                        "field",
                        string("For validation problems: the request field at fault."),
                    ),
                ],
                ..MetaSchema::new("object")
            }
        });
    }
}

/// 400 on an operation with parameters.
const BAD_PARAMETER: Documented = Documented {
    kinds: &[Kind::InvalidParameter],
    description: "A path, query or header parameter is malformed (`invalid-parameter`); \
                  `field` or `detail` names it.",
};
/// 401 on an operation that takes an access token.
const UNAUTHENTICATED: Documented = Documented {
    kinds: &[Kind::MissingToken, Kind::InvalidToken],
    description: "No access token (`missing-token`), or one that is invalid, expired or \
                  revoked, or whose user is gone (`invalid-token`). Log in or refresh.",
};
/// 401 on an operation that spends or ends a refresh token.
const DEAD_REFRESH: Documented = Documented {
    kinds: &[Kind::InvalidToken],
    description: "The refresh token is invalid, expired, spent or its session ended \
                  (`invalid-token`); presenting a spent one ends its session. Log in again.",
};
/// 403 on an operation cookie mode authenticates.
const CSRF: Documented = Documented {
    kinds: &[Kind::InvalidCsrfToken],
    description: "Cookie mode: the `X-CSRF-Token` header is missing or does not match the \
                  session (`invalid-csrf-token`); nothing was done.",
};
/// 403 on an operation confirmed with the caller's password.
const WRONG_PASSWORD: Documented = Documented {
    kinds: &[Kind::WrongPassword],
    description: "The password given to confirm is wrong (`wrong-password`); nothing changed, \
                  and it counts as a failed login.",
};
/// 429 on an operation confirmed with the caller's password.
const PASSWORD_THROTTLED: Documented = Documented {
    kinds: &[Kind::TooManyLogins],
    description: "Too many failed password checks for this account from this client, or \
                  from this client for any account (`too-many-logins`, counted with failed \
                  logins): refused without checking the password. `Retry-After` gives the \
                  seconds until the window frees.",
};
/// 429 on the password-reset operations.
const RESETS_THROTTLED: Documented = Documented {
    kinds: &[Kind::TooManyPasswordResets],
    description: "Too many password-reset requests and confirmations from this client \
                  address (`too-many-password-resets`): refused without any work. \
                  `Retry-After` gives the seconds until the window frees.",
};
/// 429 on an operation that checks a second-factor code.
const MFA_THROTTLED: Documented = Documented {
    kinds: &[Kind::TooManyCodes],
    description: "Too many second-factor codes were tried for this account in the current \
                  window, by anyone (`too-many-codes`): refused without checking the code. \
                  `Retry-After` gives the seconds until the window frees.",
};
/// 404 on an operation on the caller's enabled second factor.
const NO_FACTOR: Documented = Documented {
    kinds: &[Kind::NotFound],
    description: "The caller has no second factor enabled (`not-found`).",
};
/// 422 on an operation that takes a fresh code of the caller's factor.
const FRESH_CODE_BODY: Documented = Documented {
    kinds: &[Kind::InvalidBody, Kind::InvalidField, Kind::WrongCode],
    description: "The body is not JSON of the expected shape (`invalid-body`), the code is \
                  neither 6 digits nor a recovery code (`invalid-field`), or it is wrong or \
                  was used already (`wrong-code`); nothing changed.",
};
/// 404 on an operation on one of the caller's resources.
const NOT_FOUND: Documented = Documented {
    kinds: &[Kind::NotFound],
    description: "No such resource for this caller (`not-found`); another user's is \
                  reported the same way.",
};
/// 408 on an operation with a body.
const BODY_TIMEOUT: Documented = Documented {
    kinds: &[Kind::RequestTimeout],
    description: "The request body did not arrive within the server's deadline \
                  (`request-timeout`); the connection is closed: send the request again on a \
                  new one.",
};
/// 413 on an operation with a body.
const TOO_LARGE: Documented = Documented {
    kinds: &[Kind::PayloadTooLarge],
    description: "The request body is larger than the server accepts (`payload-too-large`).",
};
/// 415 on an operation with a body.
const NOT_JSON: Documented = Documented {
    kinds: &[Kind::UnsupportedMediaType],
    description: "The request body is not `application/json` (`unsupported-media-type`).",
};
/// 415 on an operation that also takes a form.
const NOT_JSON_OR_FORM: Documented = Documented {
    kinds: &[Kind::UnsupportedMediaType],
    description: "The request body is neither `application/json` nor \
                  `application/x-www-form-urlencoded` (`unsupported-media-type`).",
};
/// 422 on an operation that takes JSON or a form.
const FORM_BODY: Documented = Documented {
    kinds: &[Kind::InvalidBody],
    description: "The body is not JSON or a form of the expected shape (`invalid-body`).",
};
/// 422 on an operation that takes a refresh token in the body or the cookie.
const REFRESH_BODY: Documented = Documented {
    kinds: &[Kind::InvalidBody],
    description: "The body is not JSON (or a form) of the expected shape, or neither it nor \
                  the cookie carries a refresh token (a form must carry it) (`invalid-body`).",
};
/// 500 on every operation that does work.
const INTERNAL: Documented = Documented {
    kinds: &[Kind::Internal],
    description: "An unexpected failure (`internal`); the cause is logged, never sent.",
};
/// 503 on every operation that uses the store.
const UNAVAILABLE: Documented = Documented {
    kinds: &[Kind::Unavailable],
    description: "The store cannot serve now or the server is saturated (`unavailable`); \
                  nothing was done that the client was told about. Retry after `Retry-After`.",
};

/// Declares operations and their error tables.
macro_rules! operations {
    ($(
        $(#[$doc:meta])*
        $op:ident = $schema:literal [$($response:expr),* $(,)?];
    )*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $op;

        impl Errors for $op {
            const SCHEMA: &'static str = $schema;
            const RESPONSES: &'static [Documented] = &[$($response),*];
        }
    )*};
}

operations! {
    /// `POST /login`.
    Login = "LoginProblem" [
        BAD_PARAMETER,
        Documented {
            kinds: &[Kind::InvalidCredentials],
            description: "Unknown user or wrong password (`invalid-credentials`): one answer \
                          for both, in the same time.",
        },
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON_OR_FORM,
        FORM_BODY,
        Documented {
            kinds: &[Kind::TooManyLogins],
            description: "Too many failed logins for this username from this client, or from \
                          this client for any username (`too-many-logins`): refused without \
                          checking the password. `Retry-After` gives the seconds until the \
                          window frees.",
        },
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `POST /login/mfa`.
    CompleteLogin = "CompleteLoginProblem" [
        BAD_PARAMETER,
        Documented {
            kinds: &[Kind::InvalidChallenge],
            description: "The challenge is malformed, unknown, expired or used, or the \
                          account's second factor went meanwhile (`invalid-challenge`): log \
                          in again.",
        },
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON,
        Documented {
            kinds: &[Kind::InvalidBody, Kind::InvalidField, Kind::WrongCode],
            description: "The body is not JSON of the expected shape (`invalid-body`), the \
                          code is neither 6 digits nor a recovery code (`invalid-field`), or \
                          it is wrong or was used already (`wrong-code`); the challenge stays \
                          usable until it expires.",
        },
        MFA_THROTTLED,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `POST /token/refresh`.
    Refresh = "RefreshProblem" [
        BAD_PARAMETER,
        DEAD_REFRESH,
        CSRF,
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON_OR_FORM,
        REFRESH_BODY,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `POST /logout`.
    Logout = "LogoutProblem" [BAD_PARAMETER, UNAUTHENTICATED, INTERNAL, UNAVAILABLE];
    /// `POST /token/revoke`.
    Revoke = "RevokeProblem" [
        DEAD_REFRESH,
        CSRF,
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON_OR_FORM,
        REFRESH_BODY,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `POST /users`.
    Register = "RegisterProblem" [
        BAD_PARAMETER,
        BODY_TIMEOUT,
        Documented {
            kinds: &[Kind::UsernameTaken],
            description: "The username is registered already (`username-taken`); no \
                          password was hashed for it.",
        },
        TOO_LARGE,
        NOT_JSON,
        Documented {
            kinds: &[Kind::InvalidBody, Kind::InvalidField, Kind::IdempotencyKeyReused],
            description: "The body is not JSON of the expected shape (`invalid-body`), a \
                          value breaks a rule (`invalid-field`, `field` names it), or the \
                          `Idempotency-Key` was used for a different request \
                          (`idempotency-key-reused`).",
        },
        Documented {
            kinds: &[Kind::TooManyRegistrations],
            description: "Too many registrations from this client address \
                          (`too-many-registrations`): refused without any work. `Retry-After` \
                          gives the seconds until the window frees.",
        },
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `GET /me`.
    Me = "MeProblem" [UNAUTHENTICATED, INTERNAL, UNAVAILABLE];
    /// `POST /me/phone`.
    SetPhone = "SetPhoneProblem" [
        UNAUTHENTICATED,
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON,
        Documented {
            kinds: &[Kind::InvalidBody, Kind::InvalidField],
            description: "The body is not JSON of the expected shape (`invalid-body`), or the \
                          number is not an E.164 number of an allowed country \
                          (`invalid-field`).",
        },
        Documented {
            kinds: &[Kind::TooManySms],
            description: "A code was requested too recently, or the SMS caps of the caller or \
                          of the number are reached (`too-many-sms`): nothing changed and \
                          nothing was sent. `Retry-After` gives the seconds until a request \
                          can succeed.",
        },
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `POST /me/phone/verify`.
    VerifyPhone = "VerifyPhoneProblem" [
        UNAUTHENTICATED,
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON,
        Documented {
            kinds: &[
                Kind::InvalidBody,
                Kind::InvalidField,
                Kind::WrongCode,
                Kind::NoPendingCode,
            ],
            description: "The body is not JSON of the expected shape (`invalid-body`), the \
                          code is not 6 digits (`invalid-field`), the code is wrong \
                          (`wrong-code`, the detail says how many tries are left), or no code \
                          is pending (`no-pending-code`: request one).",
        },
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `POST /me/password`.
    ChangePassword = "ChangePasswordProblem" [
        UNAUTHENTICATED,
        WRONG_PASSWORD,
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON,
        Documented {
            kinds: &[Kind::InvalidBody, Kind::InvalidField],
            description: "The body is not JSON of the expected shape (`invalid-body`), or the \
                          new password breaks the password policy (`invalid-field`, `field` is \
                          `new_password`); nothing was checked or changed.",
        },
        PASSWORD_THROTTLED,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `DELETE /me`.
    DeleteAccount = "DeleteAccountProblem" [
        UNAUTHENTICATED,
        WRONG_PASSWORD,
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON,
        Documented {
            kinds: &[Kind::InvalidBody],
            description: "The body is not JSON of the expected shape (`invalid-body`).",
        },
        PASSWORD_THROTTLED,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `POST /me/mfa/totp`.
    EnrolTotp = "EnrolTotpProblem" [
        UNAUTHENTICATED,
        Documented {
            kinds: &[Kind::MfaEnabled],
            description: "A second factor is enabled already (`mfa-enabled`): disable it \
                          first; nothing changed.",
        },
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `POST /me/mfa/totp/confirm`.
    ConfirmTotp = "ConfirmTotpProblem" [
        UNAUTHENTICATED,
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON,
        Documented {
            kinds: &[
                Kind::InvalidBody,
                Kind::InvalidField,
                Kind::WrongCode,
                Kind::NoPendingCode,
            ],
            description: "The body is not JSON of the expected shape (`invalid-body`), the \
                          code is not 6 digits (`invalid-field`), the code is wrong \
                          (`wrong-code`), or no enrolment is pending (`no-pending-code`: \
                          start one).",
        },
        MFA_THROTTLED,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `DELETE /me/mfa/totp`.
    DisableTotp = "DisableTotpProblem" [
        UNAUTHENTICATED,
        NO_FACTOR,
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON,
        FRESH_CODE_BODY,
        MFA_THROTTLED,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `GET /me/mfa`.
    MfaStatus = "MfaStatusProblem" [UNAUTHENTICATED, INTERNAL, UNAVAILABLE];
    /// `POST /me/mfa/recovery-codes`.
    RenewRecoveryCodes = "RenewRecoveryCodesProblem" [
        UNAUTHENTICATED,
        NO_FACTOR,
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON,
        FRESH_CODE_BODY,
        MFA_THROTTLED,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `POST /password/reset`.
    RequestPasswordReset = "RequestPasswordResetProblem" [
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON,
        Documented {
            kinds: &[Kind::InvalidBody],
            description: "The body is not JSON of the expected shape (`invalid-body`).",
        },
        RESETS_THROTTLED,
        INTERNAL,
        Documented {
            kinds: &[Kind::Unavailable],
            description: "The store cannot count the request, or too many reset requests are \
                          being worked on (`unavailable`), whatever the username; nothing was \
                          sent. Retry after `Retry-After`.",
        },
    ];
    /// `POST /password/reset/confirm`.
    ResetPassword = "ResetPasswordProblem" [
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON,
        Documented {
            kinds: &[Kind::InvalidBody, Kind::InvalidField, Kind::WrongCode],
            description: "The body is not JSON of the expected shape (`invalid-body`), the new \
                          password breaks the policy or the code is not 6 digits \
                          (`invalid-field`), or the code does not reset this account's \
                          password (`wrong-code`: no such account, no code pending, an \
                          expired, spent or wrong one; one answer for all).",
        },
        RESETS_THROTTLED,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `POST /todo`.
    CreateTodo = "CreateTodoProblem" [
        BAD_PARAMETER,
        UNAUTHENTICATED,
        BODY_TIMEOUT,
        Documented {
            kinds: &[Kind::TodoQuotaExceeded],
            description: "The caller holds as many todos as a user may \
                          (`todo-quota-exceeded`); delete some to make room.",
        },
        TOO_LARGE,
        NOT_JSON,
        Documented {
            kinds: &[Kind::InvalidBody, Kind::InvalidField, Kind::IdempotencyKeyReused],
            description: "The body is not JSON of the expected shape (`invalid-body`), the \
                          title breaks a rule (`invalid-field`), or the `Idempotency-Key` was \
                          used for a different title (`idempotency-key-reused`).",
        },
        Documented {
            kinds: &[Kind::TooManyTodos],
            description: "Too many todos created by this user in the current minute \
                          (`too-many-todos`): nothing was created. `Retry-After` gives the \
                          seconds until the window frees.",
        },
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `GET /todo`.
    ListTodos = "ListTodosProblem" [BAD_PARAMETER, UNAUTHENTICATED, INTERNAL, UNAVAILABLE];
    /// `GET /todo/{id}` and `DELETE /todo/{id}`.
    TodoById = "TodoProblem" [
        BAD_PARAMETER,
        UNAUTHENTICATED,
        NOT_FOUND,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `PATCH /todo/{id}`.
    UpdateTodo = "UpdateTodoProblem" [
        BAD_PARAMETER,
        UNAUTHENTICATED,
        NOT_FOUND,
        BODY_TIMEOUT,
        TOO_LARGE,
        NOT_JSON,
        Documented {
            kinds: &[Kind::InvalidBody, Kind::InvalidField],
            description: "The body is not JSON of the expected shape (`invalid-body`), or the \
                          title breaks a rule (`invalid-field`).",
        },
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `GET /me/events`.
    ListEvents = "ListEventsProblem" [BAD_PARAMETER, UNAUTHENTICATED, INTERNAL, UNAVAILABLE];
    /// `GET /sessions`.
    ListSessions = "ListSessionsProblem" [
        BAD_PARAMETER,
        UNAUTHENTICATED,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `DELETE /sessions/{id}`.
    RevokeSession = "RevokeSessionProblem" [
        BAD_PARAMETER,
        UNAUTHENTICATED,
        NOT_FOUND,
        INTERNAL,
        UNAVAILABLE,
    ];
    /// `GET /readyz`.
    Readiness = "ReadinessProblem" [INTERNAL, UNAVAILABLE];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Vec<(&'static str, &'static [Documented])> {
        macro_rules! table {
            ($($op:ident),*) => { vec![$(($op::SCHEMA, $op::RESPONSES)),*] };
        }
        table!(
            Login,
            CompleteLogin,
            Refresh,
            Logout,
            Revoke,
            Register,
            Me,
            SetPhone,
            VerifyPhone,
            ChangePassword,
            DeleteAccount,
            EnrolTotp,
            ConfirmTotp,
            DisableTotp,
            RenewRecoveryCodes,
            MfaStatus,
            RequestPasswordReset,
            ResetPassword,
            CreateTodo,
            ListTodos,
            TodoById,
            UpdateTodo,
            ListEvents,
            ListSessions,
            RevokeSession,
            Readiness
        )
    }

    #[test]
    fn every_entry_is_one_status_ascending_and_names_its_kinds() {
        for (schema, responses) in tables() {
            let statuses: Vec<u16> = responses.iter().map(Documented::status).collect();
            let mut sorted = statuses.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(
                statuses, sorted,
                "{schema}: one entry per status, ascending"
            );
            for response in responses {
                assert!(
                    !response.kinds.is_empty(),
                    "{schema}: an entry without kinds"
                );
                for kind in response.kinds {
                    assert_eq!(
                        kind.status().as_u16(),
                        response.status(),
                        "{schema}: {kind:?} is not a {}",
                        response.status()
                    );
                    assert!(
                        response.description.contains(&format!("`{}`", kind.slug())),
                        "{schema}: the {} description does not name `{}`",
                        response.status(),
                        kind.slug()
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "does not declare")]
    fn an_undeclared_failure_is_a_bug() {
        let _ = OpError::<Me>::new(Failure::not_found("todo"));
    }
}
