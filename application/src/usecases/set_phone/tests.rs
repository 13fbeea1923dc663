//! Tests of [`SetPhone`], over mocks of the ports it uses (see `testkit`).

use std::time::Duration;

use domain::CountryCode;

use super::*;
use crate::ports::{CodeDigest, MockCodeHasher, SmsCaps};
use crate::usecases::sms::{SmsKind, SmsOutcome, SmsPolicy, SmsStats};
use crate::usecases::testkit::*;

const PHONE: &str = "+4915112345678";
const DIGEST: CodeDigest = CodeDigest([7; 32]);

fn phone() -> PhoneNumber {
    PhoneNumber::parse(PHONE).expect("valid")
}

fn policy() -> SmsPolicy {
    SmsPolicy {
        caps: SmsCaps {
            user_hourly: 3,
            user_daily: 9,
            number_hourly: 4,
            number_daily: 12,
        },
        allowed_countries: vec![CountryCode::parse("+49").expect("valid")],
        code_ttl: Duration::from_secs(600),
        code_max_attempts: 5,
        code_cooldown: Duration::from_secs(60),
    }
}

fn set_phone(mocks: Mocks) -> (SetPhone, Arc<SmsStats>) {
    let stats = Arc::new(SmsStats::default());
    let ports = mocks.into_ports();
    let gate = SmsGate::new(&ports, policy(), Arc::clone(&stats));
    (SetPhone::new(&ports, gate), stats)
}

fn request(phone: &str) -> SetPhoneRequest {
    SetPhoneRequest {
        phone: phone.into(),
    }
}

/// The hasher is asked once, for the sample user, the number and the code `000001`
/// (the first sequential id).
fn hashes(mocks: &mut Mocks) {
    let mut hasher = MockCodeHasher::new();
    hasher
        .expect_digest()
        .withf(|user, to, code| *user == USER_ID && *to == phone() && code.expose() == "000001")
        .times(1)
        .return_const(DIGEST);
    mocks.code_hasher = hasher;
}

fn admits(mocks: &mut Mocks, seq: &mut mockall::Sequence, answer: SmsAdmission) {
    mocks
        .sms_quota
        .expect_admit()
        .withf(|user, to, caps, cooldown| {
            *user == USER_ID
                && *to == phone()
                && *caps == policy().caps
                && *cooldown == Some(Duration::from_secs(60))
        })
        .times(1)
        .in_sequence(seq)
        .returning(move |_, _, _, _| Ok(answer));
}

fn pending() -> PendingCode {
    PendingCode {
        user_id: USER_ID,
        phone: phone(),
        digest: DIGEST,
        expires_at: NOW.plus(Duration::from_secs(600)),
        max_attempts: 5,
    }
}

fn expect_nothing_changed(mocks: &mut Mocks) {
    mocks.phone_codes.expect_start().never();
    mocks.outbox.expect_enqueue().never();
    mocks.sms_quota.expect_give_back().never();
}

#[tokio::test]
async fn admits_then_stores_the_digest_then_queues_the_code() {
    let mut mocks = Mocks::new();
    let mut order = mockall::Sequence::new();
    hashes(&mut mocks);
    admits(&mut mocks, &mut order, SmsAdmission::Admitted);
    mocks
        .phone_codes
        .expect_start()
        .withf(|code| *code == pending())
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(true));
    let queued = Captured::new();
    let record = queued.clone();
    mocks
        .outbox
        .expect_enqueue()
        .times(1)
        .in_sequence(&mut order)
        .returning(move |n| {
            record.set(n);
            Ok(())
        });
    mocks.sms_quota.expect_give_back().never();
    let (use_case, stats) = set_phone(mocks);

    let sent = use_case
        .execute(principal(), request(PHONE))
        .await
        .expect("code sent");

    assert_eq!(
        sent,
        CodeSent {
            phone: phone(),
            expires_in: Duration::from_secs(600),
            resend_after: Duration::from_secs(60),
        }
    );
    let code = PhoneCode::parse("000001").expect("valid");
    assert_eq!(
        queued.get(),
        Notification {
            id: NotificationId::from_uuid(seq(2)),
            user_id: USER_ID,
            kind: NotificationKind::PhoneCode {
                expires_at: NOW.plus(Duration::from_secs(600)),
            },
            sms: Sms::phone_code(&code, phone(), Duration::from_secs(600)),
            attempts: 0,
            created_at: NOW,
        }
    );
    assert!(queued.get().sms.secret, "the code is marked secret");
    assert_eq!(stats.get(SmsKind::PhoneCode, SmsOutcome::Queued), 1);
}

#[tokio::test]
async fn an_invalid_number_changes_nothing_and_costs_nothing() {
    for bad in ["4915112345678", "+49 151", "", "+0151123456"] {
        let mut mocks = Mocks::new();
        mocks.sms_quota.expect_admit().never();
        expect_nothing_changed(&mut mocks);
        mocks.ids = no_ids();

        let result = set_phone(mocks).0.execute(principal(), request(bad)).await;

        assert!(
            matches!(result, Err(SetPhoneError::InvalidPhone(_))),
            "{bad:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_number_outside_the_allow_list_is_refused_before_anything_is_counted() {
    let mut mocks = Mocks::new();
    mocks.sms_quota.expect_admit().never();
    expect_nothing_changed(&mut mocks);
    mocks.ids = no_ids();
    let (use_case, stats) = set_phone(mocks);

    let result = use_case.execute(principal(), request("+19005550123")).await;

    assert!(
        matches!(result, Err(SetPhoneError::CountryNotAllowed)),
        "{result:?}"
    );
    assert_eq!(stats.get(SmsKind::PhoneCode, SmsOutcome::Country), 1);
}

#[tokio::test]
async fn over_a_limit_nothing_changes_and_nothing_is_sent() {
    for (limit, outcome) in [
        (SmsLimit::Cooldown, SmsOutcome::Cooldown),
        (SmsLimit::User, SmsOutcome::UserCap),
        (SmsLimit::Number, SmsOutcome::NumberCap),
    ] {
        let mut mocks = Mocks::new();
        let mut order = mockall::Sequence::new();
        let retry_after = Duration::from_secs(42);
        admits(
            &mut mocks,
            &mut order,
            SmsAdmission::Refused { limit, retry_after },
        );
        expect_nothing_changed(&mut mocks);
        mocks.ids = no_ids();
        let (use_case, stats) = set_phone(mocks);

        let result = use_case.execute(principal(), request(PHONE)).await;

        match result {
            Err(SetPhoneError::TooManyRequests {
                limit: refused,
                retry_after: wait,
            }) => {
                assert_eq!((refused, wait), (limit, retry_after));
            }
            other => panic!("{limit:?}: expected TooManyRequests, got {other:?}"),
        }
        assert_eq!(stats.get(SmsKind::PhoneCode, outcome), 1, "{limit:?}");
        assert_eq!(stats.get(SmsKind::PhoneCode, SmsOutcome::Queued), 0);
    }
}

#[tokio::test]
async fn a_store_failure_before_the_code_is_stored_gives_the_counts_back() {
    let mut mocks = Mocks::new();
    let mut order = mockall::Sequence::new();
    hashes(&mut mocks);
    admits(&mut mocks, &mut order, SmsAdmission::Admitted);
    mocks
        .phone_codes
        .expect_start()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Err(unavailable()));
    mocks
        .sms_quota
        .expect_give_back()
        .withf(|user, to, cooldown| *user == USER_ID && *to == phone() && *cooldown)
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(()));
    mocks.outbox.expect_enqueue().never();

    let result = set_phone(mocks)
        .0
        .execute(principal(), request(PHONE))
        .await;

    assert!(
        matches!(result, Err(SetPhoneError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_deleted_user_gets_nothing_and_gives_the_counts_back() {
    let mut mocks = Mocks::new();
    let mut order = mockall::Sequence::new();
    hashes(&mut mocks);
    admits(&mut mocks, &mut order, SmsAdmission::Admitted);
    mocks
        .phone_codes
        .expect_start()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(false));
    mocks
        .sms_quota
        .expect_give_back()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Err(unavailable()));
    mocks.outbox.expect_enqueue().never();

    let result = set_phone(mocks)
        .0
        .execute(principal(), request(PHONE))
        .await;

    assert!(matches!(result, Err(SetPhoneError::UserGone)), "{result:?}");
}

#[tokio::test]
async fn a_failed_enqueue_keeps_the_counts_since_the_sms_may_be_queued_after_all() {
    let mut mocks = Mocks::new();
    let mut order = mockall::Sequence::new();
    hashes(&mut mocks);
    admits(&mut mocks, &mut order, SmsAdmission::Admitted);
    mocks
        .phone_codes
        .expect_start()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(true));
    mocks
        .outbox
        .expect_enqueue()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Err(unexpected()));
    mocks.sms_quota.expect_give_back().never();
    let (use_case, stats) = set_phone(mocks);

    let result = use_case.execute(principal(), request(PHONE)).await;

    assert!(
        matches!(result, Err(SetPhoneError::Unexpected(_))),
        "{result:?}"
    );
    assert_eq!(stats.get(SmsKind::PhoneCode, SmsOutcome::Queued), 0);
}

#[tokio::test]
async fn an_unavailable_quota_fails_closed() {
    let mut mocks = Mocks::new();
    mocks
        .sms_quota
        .expect_admit()
        .times(1)
        .returning(|_, _, _, _| Err(unavailable()));
    expect_nothing_changed(&mut mocks);
    mocks.ids = no_ids();

    let result = set_phone(mocks)
        .0
        .execute(principal(), request(PHONE))
        .await;

    assert!(
        matches!(result, Err(SetPhoneError::Unavailable(_))),
        "{result:?}"
    );
}
