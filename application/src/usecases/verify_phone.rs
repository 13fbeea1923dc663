//! VerifyPhone: the caller proves they hold their phone by sending back the code texted
//! to it (see [`SetPhone`](super::SetPhone)). From then on, todo SMS go to that number.
//!
//! The code is checked by its keyed digest in one atomic store step that also counts a
//! wrong attempt or, on a match, marks the number verified and spends the code; the store
//! compares digests in constant time. A code is good for its own number only, for a
//! limited time, a limited number of wrong attempts, and once.

use std::sync::Arc;

use domain::{AuditKind, PhoneCode, User};
use tracing::instrument;

use super::audit::{Audit, Origin};
use super::shared::{Caller, store_failures};
use crate::ports::Ports;
use crate::ports::{Clock, CodeCheck, CodeHasher, PhoneVerifications};

#[derive(Clone)]
pub struct VerifyPhoneRequest {
    pub code: String,
}

impl std::fmt::Debug for VerifyPhoneRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyPhoneRequest { code: [REDACTED] }")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyPhoneError {
    /// Not six digits; nothing was checked or counted.
    #[error("invalid code: {0}")]
    InvalidCode(#[source] domain::PhoneCodeError),
    /// Not the code; `attempts_left` more may be tried (0: ask for a new one).
    #[error("wrong code; {attempts_left} attempts left")]
    WrongCode { attempts_left: u32 },
    /// No live code for the caller's current number (see [`CodeCheck::NoCode`]).
    #[error("no code pending")]
    NoPendingCode,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("phone verification failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(VerifyPhoneError);

pub struct VerifyPhone {
    audit: Audit,
    codes: Arc<dyn PhoneVerifications>,
    hasher: Arc<dyn CodeHasher>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for VerifyPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyPhone").finish_non_exhaustive()
    }
}

impl VerifyPhone {
    pub(crate) fn new(ports: &Ports, audit: Audit) -> Self {
        Self {
            audit,
            codes: ports.phone_codes.clone(),
            hasher: ports.code_hasher.clone(),
            clock: ports.clock.clone(),
        }
    }

    /// Returns the caller's profile with the number verified.
    ///
    /// # Errors
    /// See [`VerifyPhoneError`].
    #[instrument(name = "verify_phone", skip_all, fields(user_id = %caller.principal.user_id))]
    pub async fn execute(
        &self,
        caller: &Caller,
        request: VerifyPhoneRequest,
        origin: Option<&Origin>,
    ) -> Result<User, VerifyPhoneError> {
        let code = PhoneCode::parse(&request.code).map_err(VerifyPhoneError::InvalidCode)?;
        // The digest binds the number the profile (read with the session check) holds
        // now; a code texted to any other number cannot match it.
        let Some(phone) = caller.user.phone.as_ref() else {
            return Err(VerifyPhoneError::NoPendingCode);
        };
        let user = caller.user.id;
        let digest = self.hasher.digest(user, phone, &code);
        match self.codes.confirm(user, &digest, self.clock.now()).await? {
            CodeCheck::Verified => {
                self.audit
                    .record(
                        user,
                        AuditKind::PhoneVerified,
                        Some(caller.principal.session_id),
                        origin,
                        None,
                    )
                    .await;
                Ok(User {
                    phone_verified: true,
                    ..caller.user.clone()
                })
            }
            CodeCheck::Wrong { attempts_left } => {
                tracing::info!(attempts_left, "wrong phone code");
                Err(VerifyPhoneError::WrongCode { attempts_left })
            }
            CodeCheck::NoCode => Err(VerifyPhoneError::NoPendingCode),
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::PhoneNumber;

    use super::*;
    use crate::ports::{CodeDigest, MockCodeHasher};
    use crate::usecases::testkit::*;

    const DIGEST: CodeDigest = CodeDigest([9; 32]);

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("+4915112345678").expect("valid")
    }

    fn caller_with_phone() -> Caller {
        let mut user = user();
        user.phone = Some(phone());
        Caller {
            principal: principal(),
            user,
        }
    }

    fn request(code: &str) -> VerifyPhoneRequest {
        VerifyPhoneRequest { code: code.into() }
    }

    fn hashes(mocks: &mut Mocks) {
        let mut hasher = MockCodeHasher::new();
        hasher
            .expect_digest()
            .withf(|user, to, code| *user == USER_ID && *to == phone() && code.expose() == "123456")
            .times(1)
            .return_const(DIGEST);
        mocks.code_hasher = hasher;
    }

    fn confirms(mocks: &mut Mocks, check: Result<CodeCheck, crate::ports::StoreError>) {
        mocks
            .phone_codes
            .expect_confirm()
            .withf(|user, digest, now| *user == USER_ID && *digest == DIGEST && *now == NOW)
            .times(1)
            .return_once(move |_, _, _| check);
    }

    fn verify(mocks: Mocks) -> VerifyPhone {
        let ports = mocks.into_ports();
        VerifyPhone::new(&ports, audit(&ports))
    }

    #[tokio::test]
    async fn the_right_code_verifies_the_number() {
        let mut mocks = Mocks::new();
        hashes(&mut mocks);
        confirms(&mut mocks, Ok(CodeCheck::Verified));

        let user = verify(mocks)
            .execute(&caller_with_phone(), request(" 123456 "), None)
            .await
            .expect("verified");

        assert!(user.phone_verified);
        assert_eq!(user.phone, Some(phone()));
        assert_eq!(user.id, USER_ID);
    }

    #[tokio::test]
    async fn a_wrong_code_says_how_many_tries_are_left() {
        for left in [4, 0] {
            let mut mocks = Mocks::new();
            hashes(&mut mocks);
            confirms(
                &mut mocks,
                Ok(CodeCheck::Wrong {
                    attempts_left: left,
                }),
            );

            let result = verify(mocks)
                .execute(&caller_with_phone(), request("123456"), None)
                .await;

            match result {
                Err(VerifyPhoneError::WrongCode { attempts_left }) => {
                    assert_eq!(attempts_left, left)
                }
                other => panic!("expected WrongCode, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn no_live_code_is_no_pending_code() {
        let mut mocks = Mocks::new();
        hashes(&mut mocks);
        confirms(&mut mocks, Ok(CodeCheck::NoCode));

        let result = verify(mocks)
            .execute(&caller_with_phone(), request("123456"), None)
            .await;

        assert!(
            matches!(result, Err(VerifyPhoneError::NoPendingCode)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_malformed_code_is_refused_without_asking_the_store_or_counting() {
        for bad in ["12345", "1234567", "abcdef", "", "12 34 56"] {
            let mut mocks = Mocks::new();
            mocks.phone_codes.expect_confirm().never();
            let mut hasher = MockCodeHasher::new();
            hasher.expect_digest().never();
            mocks.code_hasher = hasher;

            let result = verify(mocks)
                .execute(&caller_with_phone(), request(bad), None)
                .await;

            assert!(
                matches!(result, Err(VerifyPhoneError::InvalidCode(_))),
                "{bad:?}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_user_without_a_number_has_no_pending_code() {
        let mut mocks = Mocks::new();
        mocks.phone_codes.expect_confirm().never();
        let caller = Caller {
            principal: principal(),
            user: user(),
        };

        let result = verify(mocks)
            .execute(&caller, request("123456"), None)
            .await;

        assert!(
            matches!(result, Err(VerifyPhoneError::NoPendingCode)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_failures_fail_closed() {
        for (failure, unavailable_expected) in [(unavailable(), true), (unexpected(), false)] {
            let mut mocks = Mocks::new();
            hashes(&mut mocks);
            confirms(&mut mocks, Err(failure));

            let result = verify(mocks)
                .execute(&caller_with_phone(), request("123456"), None)
                .await;

            if unavailable_expected {
                assert!(
                    matches!(result, Err(VerifyPhoneError::Unavailable(_))),
                    "{result:?}"
                );
            } else {
                assert!(
                    matches!(result, Err(VerifyPhoneError::Unexpected(_))),
                    "{result:?}"
                );
            }
        }
    }

    #[test]
    fn the_request_never_prints_the_code() {
        assert!(!format!("{:?}", request("424242")).contains("4242"));
    }
}
