//! Tests of [`RequestPasswordReset`] and [`ResetPassword`], over mocks of the ports.

use domain::{PasswordHash, PhoneNumber, Timestamp};
use mockall::predicate::eq;

use super::*;
use crate::ports::{CodeDigest, MockCodeHasher, PendingCode, SmsCaps};
use crate::usecases::sms::{SmsOutcome, SmsPolicy, SmsStats};
use crate::usecases::testkit::*;

const PHONE: &str = "+4915112345678";
const DIGEST: CodeDigest = CodeDigest([7; 32]);
const CLIENT: &str = "192.0.2.44";
const NEW: &str = "a freshly chosen passphrase";
const NEW_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$reset$reset";

fn phone() -> PhoneNumber {
    PhoneNumber::parse(PHONE).expect("valid")
}

fn per_client() -> WindowLimit {
    WindowLimit {
        max: 3,
        window: Duration::from_secs(3600),
    }
}

fn codes_per_user() -> WindowLimit {
    WindowLimit {
        max: 2,
        window: Duration::from_secs(24 * 3600),
    }
}

/// The account's reset-code limit answers `answer`.
fn code_limit(mocks: &mut Mocks, answer: Admission) {
    mocks
        .rate_limiter
        .expect_hit()
        .with(eq(RateKey::ResetCodes(USER_ID)), eq(codes_per_user()))
        .times(1)
        .returning(move |_, _| Ok(answer));
}

fn verified() -> User {
    User {
        phone: Some(phone()),
        phone_verified: true,
        ..user()
    }
}

fn policy() -> SmsPolicy {
    SmsPolicy {
        caps: SmsCaps {
            user_hourly: 3,
            user_daily: 9,
            number_hourly: 4,
            number_daily: 12,
        },
        code_ttl: Duration::from_secs(600),
        code_max_attempts: 5,
        code_cooldown: Duration::from_secs(60),
        ..SmsPolicy::default()
    }
}

fn requester(mocks: Mocks) -> (RequestPasswordReset, Arc<SmsStats>) {
    let stats = Arc::new(SmsStats::default());
    let ports = mocks.into_ports();
    let gate = SmsGate::new(&ports, policy(), Arc::clone(&stats));
    (
        RequestPasswordReset::new(&ports, per_client(), codes_per_user(), gate),
        stats,
    )
}

fn resetter(mocks: Mocks) -> ResetPassword {
    let ports = mocks.into_ports();
    ResetPassword::new(&ports, per_client(), audit(&ports))
}

fn finds(mocks: &mut Mocks, found: Option<User>) {
    mocks
        .users
        .expect_find_by_username()
        .withf(|name| name.as_str() == "alice")
        .times(1)
        .returning(move |_| Ok(found.clone()));
}

/// The code hasher digests `code` texted to the sample user's number.
fn digests(mocks: &mut Mocks, code: &'static str) {
    let mut hasher = MockCodeHasher::new();
    hasher
        .expect_digest()
        .withf(move |user, to, c| *user == USER_ID && *to == phone() && c.expose() == code)
        .times(1)
        .return_const(DIGEST);
    mocks.code_hasher = hasher;
}

fn rate(mocks: &mut Mocks, answer: Admission) {
    mocks
        .rate_limiter
        .expect_hit()
        .with(
            eq(RateKey::PasswordReset(ClientAddress::from_ip(
                CLIENT.parse().expect("ip"),
            ))),
            eq(per_client()),
        )
        .times(1)
        .returning(move |_, _| Ok(answer));
}

#[tokio::test]
async fn a_request_is_admitted_by_the_per_client_limit_alone() {
    let mut mocks = Mocks::new();
    rate(&mut mocks, Admission::Admitted);
    let (request, _) = requester(mocks);
    let slot = request
        .admit(CLIENT.parse().expect("ip"))
        .await
        .expect("admitted");
    drop(slot);

    let mut mocks = Mocks::new();
    rate(
        &mut mocks,
        Admission::Refused {
            retry_after: Duration::from_secs(30),
        },
    );
    mocks.users.expect_find_by_username().never();
    let (request, _) = requester(mocks);
    let refused = request.admit(CLIENT.parse().expect("ip")).await;
    assert!(
        matches!(refused, Err(ResetRequestError::Throttled { retry_after }) if retry_after == Duration::from_secs(30)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn requests_in_flight_are_bounded_and_their_places_given_back() {
    let mut mocks = Mocks::new();
    mocks
        .rate_limiter
        .expect_hit()
        .returning(|_, _| Ok(Admission::Admitted));
    let (request, _) = requester(mocks);
    let client: IpAddr = CLIENT.parse().expect("ip");
    let mut held = Vec::new();
    for _ in 0..MAX_RESETS_IN_FLIGHT {
        held.push(request.admit(client).await.expect("a place"));
    }
    let full = request.admit(client).await;
    assert!(matches!(full, Err(ResetRequestError::Busy)), "{full:?}");
    held.pop();
    request
        .admit(client)
        .await
        .expect("a place given back is free again");
}

#[tokio::test]
async fn a_code_goes_to_the_verified_number_and_only_its_digest_is_stored() {
    let mut mocks = Mocks::new();
    finds(&mut mocks, Some(verified()));
    code_limit(&mut mocks, Admission::Admitted);
    mocks
        .sms_quota
        .expect_admit()
        .withf(|user, to, _, cooldown| {
            *user == USER_ID && *to == phone() && *cooldown == Some(Duration::from_secs(60))
        })
        .times(1)
        .returning(|_, _, _, _| Ok(SmsAdmission::Admitted));
    digests(&mut mocks, "000001");
    mocks
        .resets
        .expect_start_reset()
        .with(eq(PendingCode {
            user_id: USER_ID,
            phone: phone(),
            digest: DIGEST,
            expires_at: NOW.plus(Duration::from_secs(600)),
            max_attempts: 5,
        }))
        .times(1)
        .returning(|_| Ok(true));
    mocks
        .outbox
        .expect_enqueue()
        .withf(|n| {
            n.user_id == USER_ID
                && n.sms.to == phone()
                && n.sms.secret
                && n.sms.text.contains("password reset code is 000001")
                && matches!(n.kind, NotificationKind::PhoneCode { expires_at } if expires_at == NOW.plus(Duration::from_secs(600)))
        })
        .times(1)
        .returning(|_| Ok(()));
    let (request, stats) = requester(mocks);

    assert_eq!(
        request.execute("Alice").await.expect("texted"),
        ResetRequested::Texted
    );
    assert_eq!(stats.get(SmsKind::PasswordReset, SmsOutcome::Queued), 1);
}

#[tokio::test]
async fn nobody_and_an_unverified_number_get_nothing() {
    let mut mocks = Mocks::new();
    finds(&mut mocks, None);
    mocks.sms_quota.expect_admit().never();
    mocks.outbox.expect_enqueue().never();
    let (request, _) = requester(mocks);
    assert_eq!(
        request.execute("alice").await.expect("done"),
        ResetRequested::NoSuchUser
    );
    let (request, _) = requester(Mocks::new());
    assert_eq!(
        request.execute("not a name!").await.expect("done"),
        ResetRequested::NoSuchUser
    );

    let mut mocks = Mocks::new();
    finds(
        &mut mocks,
        Some(User {
            phone_verified: false,
            ..verified()
        }),
    );
    mocks.sms_quota.expect_admit().never();
    let (request, stats) = requester(mocks);
    assert_eq!(
        request.execute("alice").await.expect("done"),
        ResetRequested::NoVerifiedPhone
    );
    assert_eq!(stats.get(SmsKind::PasswordReset, SmsOutcome::Unverified), 1);
}

#[tokio::test]
async fn the_sms_caps_and_cooldown_hold_for_reset_codes() {
    let mut mocks = Mocks::new();
    finds(&mut mocks, Some(verified()));
    code_limit(&mut mocks, Admission::Admitted);
    mocks
        .sms_quota
        .expect_admit()
        .times(1)
        .returning(|_, _, _, _| {
            Ok(SmsAdmission::Refused {
                limit: SmsLimit::Cooldown,
                retry_after: Duration::from_secs(59),
            })
        });
    mocks.resets.expect_start_reset().never();
    mocks.outbox.expect_enqueue().never();
    let (request, stats) = requester(mocks);

    assert_eq!(
        request.execute("alice").await.expect("done"),
        ResetRequested::OverSmsLimit(SmsLimit::Cooldown)
    );
    assert_eq!(stats.get(SmsKind::PasswordReset, SmsOutcome::Cooldown), 1);
}

#[tokio::test]
async fn whoever_asks_gets_only_a_few_codes_sent_to_an_account() {
    let mut mocks = Mocks::new();
    finds(&mut mocks, Some(verified()));
    code_limit(
        &mut mocks,
        Admission::Refused {
            retry_after: Duration::from_secs(3600),
        },
    );
    // The account's SMS budget is not touched: its todo SMS still go out.
    mocks.sms_quota.expect_admit().never();
    mocks.resets.expect_start_reset().never();
    mocks.outbox.expect_enqueue().never();
    let (request, _) = requester(mocks);

    assert_eq!(
        request.execute("alice").await.expect("done"),
        ResetRequested::OverCodeLimit
    );
}

fn reset_request(username: &str, code: &str, new: &str) -> ResetPasswordRequest {
    ResetPasswordRequest {
        username: username.into(),
        code: code.into(),
        new_password: new.into(),
        client: CLIENT.parse().expect("ip"),
        user_agent: None,
    }
}

fn hashes_new(mocks: &mut Mocks) {
    mocks
        .hasher
        .expect_hash()
        .withf(|p| p.expose() == NEW)
        .times(1)
        .returning(|_| Ok(PasswordHash::new(NEW_HASH)));
}

fn reset_user() -> User {
    User {
        password_hash: PasswordHash::new(NEW_HASH),
        password_changed_at: Some(NOW),
        ..verified()
    }
}

#[tokio::test]
async fn a_right_code_sets_the_password_and_ends_every_session() {
    let mut mocks = Mocks::new();
    rate(&mut mocks, Admission::Admitted);
    hashes_new(&mut mocks);
    finds(&mut mocks, Some(verified()));
    digests(&mut mocks, "123456");
    mocks
        .resets
        .expect_finish_reset()
        .withf(|read, digest, updated, now| {
            *read == verified() && *digest == DIGEST && *updated == reset_user() && *now == NOW
        })
        .times(1)
        .returning(|_, _, _, _| Ok(ResetCheck::Reset { ended: 3 }));

    let ended = resetter(mocks)
        .execute(reset_request("alice", "123456", NEW))
        .await
        .expect("reset");

    assert_eq!(ended, 3);
}

#[tokio::test]
async fn an_unknown_name_costs_the_same_hash_and_gets_the_same_answer() {
    for found in [None, Some(user())] {
        let mut mocks = Mocks::new();
        rate(&mut mocks, Admission::Admitted);
        hashes_new(&mut mocks);
        finds(&mut mocks, found);
        mocks.resets.expect_finish_reset().never();

        let result = resetter(mocks)
            .execute(reset_request("alice", "123456", NEW))
            .await;

        assert!(
            matches!(result, Err(ResetPasswordError::WrongCode)),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn a_wrong_or_dead_code_is_one_answer() {
    for check in [ResetCheck::Wrong { attempts_left: 2 }, ResetCheck::NoCode] {
        let mut mocks = Mocks::new();
        rate(&mut mocks, Admission::Admitted);
        hashes_new(&mut mocks);
        finds(&mut mocks, Some(verified()));
        digests(&mut mocks, "654321");
        mocks
            .resets
            .expect_finish_reset()
            .times(1)
            .returning(move |_, _, _, _| Ok(check));

        let result = resetter(mocks)
            .execute(reset_request("alice", "654321", NEW))
            .await;

        assert!(
            matches!(result, Err(ResetPasswordError::WrongCode)),
            "{check:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_refused_before_any_work() {
    let result = resetter(Mocks::new())
        .execute(reset_request("alice", "123456", "password123"))
        .await;
    assert!(
        matches!(result, Err(ResetPasswordError::InvalidNewPassword(_))),
        "{result:?}"
    );
    let result = resetter(Mocks::new())
        .execute(reset_request("alice", "12345", NEW))
        .await;
    assert!(
        matches!(result, Err(ResetPasswordError::InvalidCode(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_throttled_client_is_refused_unhashed() {
    let mut mocks = Mocks::new();
    rate(
        &mut mocks,
        Admission::Refused {
            retry_after: Duration::from_secs(5),
        },
    );
    mocks.hasher.expect_hash().never();

    let result = resetter(mocks)
        .execute(reset_request("alice", "123456", NEW))
        .await;

    assert!(
        matches!(result, Err(ResetPasswordError::Throttled { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_record_changed_in_between_is_read_again_with_the_same_hash() {
    let mut mocks = Mocks::new();
    rate(&mut mocks, Admission::Admitted);
    hashes_new(&mut mocks);
    let mut order = mockall::Sequence::new();
    let first = verified();
    let second = User {
        created_at: Timestamp::from_unix_seconds(1_600_000_001),
        ..verified()
    };
    for found in [first, second.clone()] {
        mocks
            .users
            .expect_find_by_username()
            .times(1)
            .in_sequence(&mut order)
            .returning(move |_| Ok(Some(found.clone())));
    }
    let mut hasher = MockCodeHasher::new();
    hasher.expect_digest().times(2).return_const(DIGEST);
    mocks.code_hasher = hasher;
    mocks
        .resets
        .expect_finish_reset()
        .times(1)
        .returning(|_, _, _, _| Ok(ResetCheck::Changed));
    mocks
        .resets
        .expect_finish_reset()
        .withf(move |read, _, updated, _| {
            *read == second && updated.password_hash.as_str() == NEW_HASH
        })
        .times(1)
        .returning(|_, _, _, _| Ok(ResetCheck::Reset { ended: 0 }));

    resetter(mocks)
        .execute(reset_request("alice", "123456", NEW))
        .await
        .expect("reset on the second read");
}

#[test]
fn the_request_never_prints_the_code_or_the_password() {
    let printed = format!(
        "{:?}",
        reset_request("alice", "987654", "my secret passphrase")
    );
    assert!(
        !printed.contains("987654") && !printed.contains("secret"),
        "{printed}"
    );
}
