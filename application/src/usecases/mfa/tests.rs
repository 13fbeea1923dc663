//! Tests of the second factor's use cases, over mocks of the ports (see `testkit`): what
//! is counted against the limit and when it is forgiven, that nothing is checked once the
//! limit is reached, and what a login with a second factor does and does not open.

use domain::AuditKind;
use mockall::predicate::eq;

use super::*;
use crate::policy::Limits;
use crate::ports::{
    Admission, CodeDigest, MockRateLimiter, MockSecondFactors, ProofCheck, SealedSecret, TotpFactor,
};
use crate::usecases::testkit::*;
use crate::usecases::{Caller, MFA_CHALLENGE_TTL, Origin};

const STEP: u64 = 56_666_666;
const SEALED: &str = "v1:sealed";

fn sealed() -> SealedSecret {
    SealedSecret(SEALED.into())
}

fn enabled() -> TotpFactor {
    TotpFactor {
        sealed: sealed(),
        enabled: true,
        last_step: Some(STEP - 1),
        recovery_codes_left: 10,
    }
}

fn origin() -> Origin {
    Origin {
        client: "203.0.113.9".parse().expect("ip"),
        user_agent: Some("app/1".into()),
    }
}

fn caller() -> Caller {
    Caller {
        principal: principal(),
        user: user(),
    }
}

fn challenge() -> LoginChallenge {
    LoginChallenge::new(USER_ID, seq(99))
}

fn request(code: &str) -> CompleteLoginRequest {
    CompleteLoginRequest {
        challenge: challenge().to_string(),
        code: code.into(),
        origin: origin(),
    }
}

/// A limiter that admits, and expects `forgiven` forgivenesses.
fn limiter(forgiven: usize) -> MockRateLimiter {
    let mut limiter = MockRateLimiter::new();
    limiter
        .expect_hit()
        .with(
            eq(RateKey::MfaCodes(USER_ID)),
            eq(Limits::default().mfa_codes_per_user),
        )
        .times(1)
        .returning(|_, _| Ok(Admission::Admitted));
    limiter
        .expect_forgive()
        .with(eq(RateKey::MfaCodes(USER_ID)))
        .times(forgiven)
        .returning(|_| Ok(()));
    limiter
}

/// Second factors with an enabled factor and a live challenge.
fn factors_with_challenge() -> MockSecondFactors {
    let mut factors = MockSecondFactors::new();
    factors.expect_totp().returning(|_| Ok(Some(enabled())));
    factors.expect_challenge().returning(|user, digest, _| {
        Ok(Some(crate::ports::MfaChallenge {
            user_id: user,
            digest: *digest,
            expires_at: NOW.plus(MFA_CHALLENGE_TTL),
            user_agent: Some("app/1".into()),
        }))
    });
    factors
}

fn hashing(mocks: &mut Mocks) {
    mocks
        .code_hasher
        .expect_secret_digest()
        .returning(|_, _, _| CodeDigest([7; 32]));
}

/// What the code hasher of these tests makes of a recovery code: its first 16 bytes.
fn digest_of(code: &str) -> CodeDigest {
    let mut digest = [0; 32];
    digest[..16].copy_from_slice(&code.as_bytes()[..16]);
    CodeDigest(digest)
}

/// A hasher that expects the ten recovery codes of a new set, each hashed once.
fn hashing_ten_recovery_codes(mocks: &mut Mocks) {
    mocks
        .code_hasher
        .expect_secret_digest()
        .withf(|user, kind, _| *user == USER_ID && *kind == SecretKind::RecoveryCode)
        .times(RECOVERY_CODES)
        .returning(|_, _, code| digest_of(code));
}

fn complete_login(mocks: Mocks) -> CompleteLogin {
    let ports = mocks.into_ports();
    CompleteLogin::new(&ports, policy(), Limits::default(), audit(&ports))
}

#[tokio::test]
async fn a_refused_code_is_not_checked_at_all() {
    let mut mocks = Mocks::new();
    hashing(&mut mocks);
    mocks.second_factors = factors_with_challenge();
    mocks.rate_limiter.expect_hit().times(1).returning(|_, _| {
        Ok(Admission::Refused {
            retry_after: std::time::Duration::from_secs(60),
        })
    });
    mocks.rate_limiter.expect_forgive().never();
    mocks.totp.expect_verify().never();
    mocks.sessions.expect_create().never();

    let refused = complete_login(mocks).execute(request("123456")).await;

    assert!(
        matches!(refused, Err(MfaError::Throttled { retry_after }) if retry_after.as_secs() == 60)
    );
}

#[tokio::test]
async fn a_wrong_code_stays_counted_and_is_in_the_trail() {
    let mut mocks = Mocks::new();
    hashing(&mut mocks);
    mocks.second_factors = factors_with_challenge();
    mocks.second_factors.expect_spend().never();
    mocks.rate_limiter = limiter(0);
    mocks
        .totp
        .expect_verify()
        .withf(|sealed, code, now| sealed.0 == SEALED && code == "123456" && *now == NOW)
        .times(1)
        .returning(|_, _, _| Ok(None));
    mocks.sessions.expect_create().never();
    let ports = mocks.into_ports();
    let (audit, stats) = counted_audit(&ports);
    let use_case = CompleteLogin::new(&ports, policy(), Limits::default(), audit);

    let wrong = use_case.execute(request("123456")).await;

    assert!(matches!(wrong, Err(MfaError::WrongCode)));
    assert_eq!(recorded_kinds(&stats), vec![AuditKind::MfaFailed]);
}

#[tokio::test]
async fn a_right_code_is_forgiven_spends_the_challenge_and_opens_a_session_with_otp() {
    let mut mocks = Mocks::new();
    hashing(&mut mocks);
    mocks.second_factors = factors_with_challenge();
    mocks
        .second_factors
        .expect_spend()
        .withf(|user, sealed, proof, spend| {
            *user == USER_ID
                && sealed.0 == SEALED
                && *proof == Proof::Step(STEP)
                && matches!(spend, Spend::Challenge { digest, now, reseal: None }
                    if *digest == CodeDigest([7; 32]) && *now == NOW)
        })
        .times(1)
        .returning(|_, _, _, _| {
            Ok(ProofCheck::Accepted {
                recovery_codes_left: 10,
            })
        });
    mocks.rate_limiter = limiter(1);
    mocks
        .totp
        .expect_verify()
        .returning(|_, _, _| Ok(Some(STEP)));
    mocks.totp.expect_reseal().returning(|_| Ok(None));
    mocks.tokens.expect_issue_access().returning(|claims| {
        assert_eq!(claims.amr, domain::AuthMethods::PasswordAndOtp);
        Ok("a".into())
    });
    mocks.tokens.expect_issue_refresh().returning(|claims| {
        assert_eq!(claims.amr, domain::AuthMethods::PasswordAndOtp);
        Ok("r".into())
    });
    mocks
        .sessions
        .expect_create()
        .withf(|session, _| {
            session.amr == domain::AuthMethods::PasswordAndOtp
                && session.user_agent.as_deref() == Some("app/1")
        })
        .times(1)
        .returning(|_, _| Ok(Some(0)));

    let logged_in = complete_login(mocks)
        .execute(request(" 123456 "))
        .await
        .expect("logged in");

    assert_eq!(logged_in.pair.access_token, "a");
}

#[tokio::test]
async fn a_used_code_is_refused_and_opens_nothing() {
    let mut mocks = Mocks::new();
    hashing(&mut mocks);
    mocks.second_factors = factors_with_challenge();
    mocks
        .second_factors
        .expect_spend()
        .returning(|_, _, _, _| Ok(ProofCheck::Reused));
    mocks.rate_limiter = limiter(0);
    mocks
        .totp
        .expect_verify()
        .returning(|_, _, _| Ok(Some(STEP)));
    mocks.totp.expect_reseal().returning(|_| Ok(None));
    mocks.sessions.expect_create().never();

    let reused = complete_login(mocks).execute(request("123456")).await;

    assert!(matches!(reused, Err(MfaError::WrongCode)));
}

#[tokio::test]
async fn a_challenge_is_refused_unchecked_when_unknown_or_its_factor_went() {
    // Malformed: nothing asked of the store.
    let mocks = Mocks::new();
    let malformed = complete_login(mocks)
        .execute(CompleteLoginRequest {
            challenge: "not-a-challenge".into(),
            code: "123456".into(),
            origin: origin(),
        })
        .await;
    assert!(matches!(malformed, Err(MfaError::InvalidChallenge)));

    // Unknown (expired, spent): not counted, nothing checked.
    let mut mocks = Mocks::new();
    hashing(&mut mocks);
    mocks
        .second_factors
        .expect_challenge()
        .returning(|_, _, _| Ok(None));
    mocks.rate_limiter.expect_hit().never();
    mocks.totp.expect_verify().never();
    let unknown = complete_login(mocks).execute(request("123456")).await;
    assert!(matches!(unknown, Err(MfaError::InvalidChallenge)));

    // The factor was disabled since the password was checked: log in again.
    let mut mocks = Mocks::new();
    hashing(&mut mocks);
    let mut factors = MockSecondFactors::new();
    factors.expect_totp().returning(|_| Ok(None));
    factors.expect_challenge().returning(|user, digest, _| {
        Ok(Some(crate::ports::MfaChallenge {
            user_id: user,
            digest: *digest,
            expires_at: NOW.plus(MFA_CHALLENGE_TTL),
            user_agent: None,
        }))
    });
    mocks.second_factors = factors;
    mocks.totp.expect_verify().never();
    let gone = complete_login(mocks).execute(request("123456")).await;
    assert!(matches!(gone, Err(MfaError::InvalidChallenge)));
}

#[tokio::test]
async fn confirming_hands_out_ten_distinct_recovery_codes_stored_as_digests() {
    let mut mocks = Mocks::new();
    let mut factors = MockSecondFactors::new();
    factors.expect_totp().returning(|_| {
        Ok(Some(TotpFactor {
            enabled: false,
            last_step: None,
            recovery_codes_left: 0,
            sealed: sealed(),
        }))
    });
    factors
        .expect_enable()
        .withf(|user, sealed, step, digests| {
            *user == USER_ID && sealed.0 == SEALED && *step == STEP && digests.len() == 10
        })
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    mocks.second_factors = factors;
    mocks.rate_limiter = limiter(1);
    mocks
        .totp
        .expect_verify()
        .returning(|_, _, _| Ok(Some(STEP)));
    hashing_ten_recovery_codes(&mut mocks);
    let ports = mocks.into_ports();
    let (audit, stats) = counted_audit(&ports);
    let use_case = ConfirmTotp::new(&ports, Limits::default(), audit);

    let codes = use_case
        .execute(&caller(), "123456", Some(&origin()))
        .await
        .expect("confirmed");

    let mut distinct: Vec<String> = codes.0.iter().map(RecoveryCode::display).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), RECOVERY_CODES);
    assert_eq!(recorded_kinds(&stats), vec![AuditKind::MfaEnabled]);
    assert!(!format!("{codes:?}").contains(&distinct[0]));
}

#[tokio::test]
async fn confirming_takes_a_totp_code_only_and_counts_nothing_for_a_malformed_one() {
    let mut mocks = Mocks::new();
    mocks.rate_limiter.expect_hit().never();
    let ports = mocks.into_ports();
    let use_case = ConfirmTotp::new(&ports, Limits::default(), audit(&ports));
    for code in ["12345", "abcd-efgh-ijkm-npqr", ""] {
        let refused = use_case.execute(&caller(), code, None).await;
        assert!(matches!(refused, Err(MfaError::InvalidCode(_))), "{code}");
    }
}

#[tokio::test]
async fn a_login_of_an_account_with_a_factor_answers_a_challenge_and_opens_nothing() {
    let mut mocks = Mocks::new();
    mocks
        .users
        .expect_find_by_username()
        .returning(|_| Ok(Some(user())));
    mocks.hasher.expect_verify().returning(|_, _| Ok(true));
    let mut throttle = crate::ports::MockLoginThrottle::new();
    throttle
        .expect_admit()
        .returning(|_, _| Ok(Admission::Admitted));
    throttle
        .expect_settle()
        .withf(|_, _, settlement| *settlement == crate::ports::Settlement::Succeeded)
        .times(1)
        .returning(|_, _, _| Ok(()));
    mocks.throttle = throttle;
    let mut factors = MockSecondFactors::new();
    factors.expect_totp().returning(|_| Ok(Some(enabled())));
    factors
        .expect_open_challenge()
        .withf(|c| {
            c.user_id == USER_ID
                && c.digest == CodeDigest([7; 32])
                && c.expires_at == NOW.plus(MFA_CHALLENGE_TTL)
        })
        .times(1)
        .returning(|_| Ok(true));
    mocks.second_factors = factors;
    hashing(&mut mocks);
    mocks.sessions.expect_create().never();
    mocks.tokens.expect_issue_access().never();
    let ports = mocks.into_ports();
    let (audit, stats) = counted_audit(&ports);
    let login = crate::usecases::Login::new(
        &ports,
        policy(),
        crate::ports::ThrottleLimits::default(),
        Limits::default(),
        audit,
    );

    let outcome = login
        .execute(crate::usecases::LoginRequest {
            username: "alice".into(),
            password: PASSWORD.into(),
            user_agent: None,
            client: "203.0.113.9".parse().expect("ip"),
            oauth_client: None,
        })
        .await
        .expect("password accepted");

    let crate::usecases::LoginOutcome::SecondFactor(required) = outcome else {
        panic!("tokens without the second factor");
    };
    assert_eq!(required.challenge.user_id, USER_ID);
    assert_eq!(required.expires_at, NOW.plus(MFA_CHALLENGE_TTL));
    assert_eq!(recorded_kinds(&stats), vec![AuditKind::MfaChallenged]);
}

#[tokio::test]
async fn renewing_stores_the_digests_of_the_codes_it_answers_and_is_forgiven() {
    let stored = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut mocks = Mocks::new();
    let mut factors = MockSecondFactors::new();
    factors.expect_totp().returning(|_| Ok(Some(enabled())));
    let kept = std::sync::Arc::clone(&stored);
    factors
        .expect_spend()
        .withf(|user, sealed, proof, _| {
            *user == USER_ID && sealed.0 == SEALED && *proof == Proof::Step(STEP)
        })
        .times(1)
        .returning(move |_, _, _, spend| {
            let Spend::Renew(digests) = spend else {
                panic!("spent on {spend:?}");
            };
            kept.lock().expect("lock").clone_from(digests);
            Ok(ProofCheck::Accepted {
                recovery_codes_left: 10,
            })
        });
    mocks.second_factors = factors;
    mocks.rate_limiter = limiter(1);
    mocks
        .totp
        .expect_verify()
        .withf(|sealed, code, now| sealed.0 == SEALED && code == "123456" && *now == NOW)
        .returning(|_, _, _| Ok(Some(STEP)));
    hashing_ten_recovery_codes(&mut mocks);
    let ports = mocks.into_ports();
    let (audit, stats) = counted_audit(&ports);
    let use_case = RenewRecoveryCodes::new(&ports, Limits::default(), audit);

    let codes = use_case
        .execute(&caller(), "123456", Some(&origin()))
        .await
        .expect("renewed");

    let answered: Vec<CodeDigest> = codes.0.iter().map(|c| digest_of(c.expose())).collect();
    assert_eq!(answered.len(), RECOVERY_CODES);
    assert_eq!(*stored.lock().expect("lock"), answered);
    assert_eq!(
        recorded_kinds(&stats),
        vec![AuditKind::RecoveryCodesRenewed]
    );
}

#[tokio::test]
async fn a_wrong_code_renews_nothing_and_stays_counted() {
    let mut mocks = Mocks::new();
    mocks
        .code_hasher
        .expect_secret_digest()
        .returning(|_, _, code| digest_of(code));
    let mut factors = MockSecondFactors::new();
    factors.expect_totp().returning(|_| Ok(Some(enabled())));
    factors.expect_spend().never();
    mocks.second_factors = factors;
    mocks.rate_limiter = limiter(0);
    mocks.totp.expect_verify().returning(|_, _, _| Ok(None));
    let ports = mocks.into_ports();
    let (audit, stats) = counted_audit(&ports);
    let use_case = RenewRecoveryCodes::new(&ports, Limits::default(), audit);

    let wrong = use_case.execute(&caller(), "123456", None).await;

    assert!(matches!(wrong, Err(MfaError::WrongCode)), "{wrong:?}");
    assert_eq!(recorded_kinds(&stats), vec![AuditKind::MfaFailed]);
}
