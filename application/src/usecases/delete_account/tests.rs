use mockall::predicate::eq;

use super::*;
use crate::ports::{Admission, Settlement, ThrottleLimits};
use crate::usecases::testkit::*;

const CLIENT: &str = "198.51.100.4";

fn request(password: &str) -> DeleteAccountRequest {
    DeleteAccountRequest {
        password: password.into(),
        client: CLIENT.parse().expect("ip"),
    }
}

fn delete(mocks: Mocks) -> DeleteAccount {
    DeleteAccount::new(&mocks.into_ports(), ThrottleLimits::default())
}

fn expect_user(mocks: &mut Mocks, user: Option<User>) {
    mocks
        .users
        .expect_find_by_id()
        .with(eq(USER_ID))
        .times(1)
        .returning(move |_| Ok(user.clone()));
}

fn expect_throttle(mocks: &mut Mocks, settlement: Settlement) {
    mocks
        .throttle
        .expect_admit()
        .times(1)
        .returning(|_, _| Ok(Admission::Admitted));
    mocks
        .throttle
        .expect_settle()
        .withf(move |a, _, s| *s == settlement && a.client.to_string() == CLIENT)
        .times(1)
        .returning(|_, _, _| Ok(()));
}

fn expect_verify(mocks: &mut Mocks, ok: bool) {
    mocks
        .hasher
        .expect_verify()
        .withf(|p, h| p.expose() == PASSWORD && h.is_some())
        .times(1)
        .returning(move |_, _| Ok(ok));
}

#[tokio::test]
async fn deletes_the_account_once_the_password_checks() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    expect_throttle(&mut mocks, Settlement::Succeeded);
    expect_verify(&mut mocks, true);
    mocks
        .accounts
        .expect_delete_account()
        .withf(|read| *read == user())
        .times(1)
        .returning(|_| Ok(AccountWrite::Done(())));

    delete(mocks)
        .execute(principal(), request(PASSWORD))
        .await
        .expect("deleted");
}

#[tokio::test]
async fn a_wrong_password_deletes_nothing_and_is_counted() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    expect_throttle(&mut mocks, Settlement::Failed);
    expect_verify(&mut mocks, false);
    mocks.accounts.expect_delete_account().never();

    let result = delete(mocks).execute(principal(), request(PASSWORD)).await;

    assert!(
        matches!(result, Err(DeleteAccountError::WrongPassword)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_throttled_caller_is_refused_unhashed() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    mocks.throttle.expect_admit().times(1).returning(|_, _| {
        Ok(Admission::Refused {
            retry_after: std::time::Duration::from_secs(9),
        })
    });
    mocks.hasher.expect_verify().never();
    mocks.accounts.expect_delete_account().never();

    let result = delete(mocks).execute(principal(), request(PASSWORD)).await;

    assert!(
        matches!(result, Err(DeleteAccountError::Throttled { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_record_changed_in_between_is_read_again_without_a_second_hash() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
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
    expect_verify(&mut mocks, true);
    let mut order = mockall::Sequence::new();
    mocks
        .accounts
        .expect_delete_account()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(AccountWrite::Changed));
    mocks
        .accounts
        .expect_delete_account()
        .withf(move |read| *read == with_phone)
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(AccountWrite::Done(())));

    delete(mocks)
        .execute(principal(), request(PASSWORD))
        .await
        .expect("deleted on the second read");
}

#[tokio::test]
async fn a_password_changed_in_between_is_checked_again() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    let changed = User {
        password_hash: domain::PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$x$x"),
        ..user()
    };
    mocks
        .users
        .expect_find_by_id()
        .times(1)
        .returning(move |_| Ok(Some(changed.clone())));
    expect_throttle(&mut mocks, Settlement::Failed);
    let mut order = mockall::Sequence::new();
    mocks
        .hasher
        .expect_verify()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(true));
    mocks
        .hasher
        .expect_verify()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(false));
    mocks
        .accounts
        .expect_delete_account()
        .times(1)
        .returning(|_| Ok(AccountWrite::Changed));

    let result = delete(mocks).execute(principal(), request(PASSWORD)).await;

    assert!(
        matches!(result, Err(DeleteAccountError::WrongPassword)),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_account_deleted_meanwhile_is_deleted() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    expect_throttle(&mut mocks, Settlement::Succeeded);
    expect_verify(&mut mocks, true);
    mocks
        .accounts
        .expect_delete_account()
        .times(1)
        .returning(|_| Ok(AccountWrite::Gone));

    delete(mocks)
        .execute(principal(), request(PASSWORD))
        .await
        .expect("what was asked is done");
}

#[tokio::test]
async fn a_store_failure_is_unavailable_and_not_counted() {
    let mut mocks = Mocks::new();
    expect_user(&mut mocks, Some(user()));
    expect_throttle(&mut mocks, Settlement::Unjudged);
    expect_verify(&mut mocks, true);
    mocks
        .accounts
        .expect_delete_account()
        .times(1)
        .returning(|_| Err(unavailable()));

    let result = delete(mocks).execute(principal(), request(PASSWORD)).await;

    assert!(
        matches!(result, Err(DeleteAccountError::Unavailable(_))),
        "{result:?}"
    );
}
