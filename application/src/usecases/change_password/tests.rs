use std::time::Duration;

use domain::{PasswordHash, Timestamp};
use mockall::predicate::eq;

use super::*;
use crate::ports::{Admission, Settlement, ThrottleLimits};
use crate::usecases::testkit::*;

const NEW: &str = "an entirely new passphrase";
const NEW_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$new$new";
const CLIENT: &str = "203.0.113.9";

fn request(current: &str, new: &str) -> ChangePasswordRequest {
    ChangePasswordRequest {
        current_password: current.into(),
        new_password: new.into(),
        client: CLIENT.parse().expect("ip"),
        user_agent: None,
    }
}

fn change(mocks: Mocks) -> ChangePassword {
    let ports = mocks.into_ports();
    ChangePassword::new(&ports, ThrottleLimits::default(), audit(&ports))
}

fn expect_user(mocks: &mut Mocks, user: User) {
    mocks
        .users
        .expect_find_by_id()
        .with(eq(USER_ID))
        .times(1)
        .returning(move |_| Ok(Some(user.clone())));
}

/// The throttle admits once, and expects the attempt settled as `settlement`.
fn expect_throttle(mocks: &mut Mocks, settlement: Settlement) {
    mocks
        .throttle
        .expect_admit()
        .withf(|a, _| {
            a.username.as_ref().map(domain::Username::as_str) == Some("alice")
                && a.client.to_string() == CLIENT
        })
        .times(1)
        .returning(|_, _| Ok(Admission::Admitted));
    mocks
        .throttle
        .expect_settle()
        .withf(move |_, _, s| *s == settlement)
        .times(1)
        .returning(|_, _, _| Ok(()));
}

fn expect_verify(mocks: &mut Mocks, password: &'static str, ok: bool) {
    mocks
        .hasher
        .expect_verify()
        .withf(move |p, h| p.expose() == password && h.is_some())
        .times(1)
        .returning(move |_, _| Ok(ok));
}

fn expect_hash(mocks: &mut Mocks) {
    mocks
        .hasher
        .expect_hash()
        .withf(|p| p.expose() == NEW)
        .times(1)
        .returning(|_| Ok(PasswordHash::new(NEW_HASH)));
}

fn changed_user() -> User {
    User {
        password_hash: PasswordHash::new(NEW_HASH),
        password_changed_at: Some(NOW),
        ..user()
    }
}

#[tokio::test]
async fn sets_the_new_password_and_ends_every_other_session() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, user());
    expect_throttle(&mut mocks, Settlement::Succeeded);
    expect_verify(&mut mocks, PASSWORD, true);
    expect_hash(&mut mocks);
    mocks
        .accounts
        .expect_set_password()
        .withf(|read, updated, keep| {
            *read == user() && *updated == changed_user() && *keep == Some(SESSION_ID)
        })
        .times(1)
        .returning(|_, _, _| Ok(AccountWrite::Done(2)));

    let ended = change(mocks)
        .execute(principal(), request(PASSWORD, NEW))
        .await
        .expect("changed");

    assert_eq!(ended, 2);
}

#[tokio::test]
async fn a_new_password_that_breaks_the_policy_is_refused_before_any_work() {
    let mocks = Mocks::new();

    let result = change(mocks)
        .execute(principal(), request(PASSWORD, "short"))
        .await;

    assert!(
        matches!(result, Err(ChangePasswordError::InvalidNewPassword(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_wrong_current_password_is_a_counted_failure_and_changes_nothing() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, user());
    expect_throttle(&mut mocks, Settlement::Failed);
    // Never changed before: not a retry, so the new password is not even tried.
    expect_verify(&mut mocks, "not my password", false);
    mocks.hasher.expect_hash().never();
    mocks.accounts.expect_set_password().never();

    let result = change(mocks)
        .execute(principal(), request("not my password", NEW))
        .await;

    assert!(
        matches!(result, Err(ChangePasswordError::WrongPassword)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_throttled_caller_is_refused_without_hashing() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, user());
    mocks.throttle.expect_admit().times(1).returning(|_, _| {
        Ok(Admission::Refused {
            retry_after: Duration::from_secs(42),
        })
    });
    mocks.throttle.expect_settle().never();
    mocks.hasher.expect_verify().never();

    let result = change(mocks)
        .execute(principal(), request(PASSWORD, NEW))
        .await;

    assert!(
        matches!(result, Err(ChangePasswordError::Throttled { retry_after }) if retry_after == Duration::from_secs(42)),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_retry_of_a_change_whose_answer_was_lost_gets_the_same_answer() {
    let mut mocks = Mocks::new();
    // The first request changed it a minute ago; its answer never arrived.
    let already = User {
        password_changed_at: Some(Timestamp::from_unix_seconds(NOW.unix_seconds() - 60)),
        ..changed_user()
    };
    expect_user(&mut mocks, already);
    expect_throttle(&mut mocks, Settlement::Succeeded);
    expect_verify(&mut mocks, PASSWORD, false);
    expect_verify(&mut mocks, NEW, true);
    mocks.accounts.expect_set_password().never();

    let ended = change(mocks)
        .execute(principal(), request(PASSWORD, NEW))
        .await
        .expect("the same answer");

    assert_eq!(ended, 0, "the sessions ended the first time");
}

#[tokio::test]
async fn an_old_change_is_no_excuse_for_a_wrong_password() {
    let mut mocks = Mocks::new();
    let long_ago = User {
        password_changed_at: Some(Timestamp::from_unix_seconds(
            NOW.unix_seconds() - i64::try_from(RETRY_WINDOW.as_secs()).expect("small") - 1,
        )),
        ..user()
    };
    expect_user(&mut mocks, long_ago);
    expect_throttle(&mut mocks, Settlement::Failed);
    // One guess per attempt: the new password is not checked outside the window.
    expect_verify(&mut mocks, "a guess at it", false);

    let result = change(mocks)
        .execute(principal(), request("a guess at it", NEW))
        .await;

    assert!(
        matches!(result, Err(ChangePasswordError::WrongPassword)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_record_changed_in_between_is_read_again_and_the_same_hash_not_rechecked() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, user());
    let with_phone = User {
        phone: Some(domain::PhoneNumber::parse("+4915112345678").expect("valid")),
        ..user()
    };
    let reread = with_phone.clone();
    mocks
        .users
        .expect_find_by_id()
        .times(1)
        .returning(move |_| Ok(Some(reread.clone())));
    expect_throttle(&mut mocks, Settlement::Succeeded);
    expect_verify(&mut mocks, PASSWORD, true);
    expect_hash(&mut mocks);
    let mut order = mockall::Sequence::new();
    mocks
        .accounts
        .expect_set_password()
        .withf(|read, _, _| *read == user())
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(AccountWrite::Changed));
    mocks
        .accounts
        .expect_set_password()
        .withf(move |read, updated, _| *read == with_phone && updated.phone == with_phone.phone)
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(AccountWrite::Done(0)));

    change(mocks)
        .execute(principal(), request(PASSWORD, NEW))
        .await
        .expect("changed on the second read");
}

#[tokio::test]
async fn a_store_failure_is_unavailable_and_not_counted() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, user());
    expect_throttle(&mut mocks, Settlement::Unjudged);
    expect_verify(&mut mocks, PASSWORD, true);
    expect_hash(&mut mocks);
    mocks
        .accounts
        .expect_set_password()
        .times(1)
        .returning(|_, _, _| Err(unavailable()));

    let result = change(mocks)
        .execute(principal(), request(PASSWORD, NEW))
        .await;

    assert!(
        matches!(result, Err(ChangePasswordError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_deleted_caller_is_gone() {
    let mut mocks = Mocks::new();
    mocks
        .users
        .expect_find_by_id()
        .times(1)
        .returning(|_| Ok(None));
    mocks.throttle.expect_admit().never();

    let result = change(mocks)
        .execute(principal(), request(PASSWORD, NEW))
        .await;

    assert!(
        matches!(result, Err(ChangePasswordError::UserGone)),
        "{result:?}"
    );
}

#[test]
fn the_request_never_prints_a_password() {
    let printed = format!("{:?}", request("old secret one", "new secret two"));
    assert!(!printed.contains("secret"), "{printed}");
}
