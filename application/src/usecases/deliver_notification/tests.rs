//! Tests of the outbox worker step.

use std::collections::VecDeque;

use domain::ids::Uuid;
use domain::{Notification, NotificationKind, PhoneCode, PhoneNumber, Sms};

use super::*;
use crate::ports::MockIdGenerator;
use crate::usecases::testkit::*;

const NOTIFICATION_ID: NotificationId = NotificationId::from_uuid(Uuid::from_u128(0x0005_0005));
const RECEIPT: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const LEASE: Duration = Duration::from_secs(30);

/// Gives up after three attempts; backoff 1s, 2s, 4s, ... capped at a minute.
fn small_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(60),
        lease: LEASE,
        dead_letter_retention: RETENTION,
        max_dead_letters: MAX_DEAD,
    }
}

const RETENTION: Duration = Duration::from_secs(3_600);
const MAX_DEAD: usize = 100;

/// Never gives up on retryable failures, so the backoff can be looked at for any attempt.
fn patient_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        max_attempts: u32::MAX,
        ..small_policy()
    }
}

fn sms() -> Sms {
    Sms {
        to: PhoneNumber::parse("+4915112345678").expect("valid"),
        text: "Dear alice, a todo was created from your account just now.".into(),
        secret: false,
    }
}

/// A notification of [`TODO_ID`] after `attempts` failed attempts, created `age_secs`
/// before [`NOW`] (negative: after it, as a skewed clock may have it).
fn notification(attempts: u32, age_secs: i64) -> Notification {
    Notification {
        id: NOTIFICATION_ID,
        user_id: USER_ID,
        kind: NotificationKind::TodoCreated { todo_id: TODO_ID },
        sms: sms(),
        attempts,
        created_at: Timestamp::from_unix_seconds(NOW.unix_seconds() - age_secs),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn retryable(reason: &str, retry_after: Option<Duration>) -> NotifyError {
    NotifyError::Retryable {
        reason: reason.into(),
        retry_after,
    }
}

/// An id generator that is asked exactly once, for the jitter, and answers `raw`.
fn jitter(raw: u128) -> MockIdGenerator {
    let mut ids = MockIdGenerator::new();
    ids.expect_new_uuid()
        .times(1)
        .return_const(Uuid::from_u128(raw));
    ids
}

fn worker(mocks: Mocks, policy: DeliveryPolicy) -> DeliverNotification {
    DeliverNotification::new(&mocks.into_ports(), policy)
}

/// `[sent, retried, dead_lettered, skipped]`.
fn counts(worker: &DeliverNotification) -> [u64; 4] {
    let stats = worker.stats();
    [
        stats.sent.load(Ordering::Relaxed),
        stats.retried.load(Ordering::Relaxed),
        stats.dead_lettered.load(Ordering::Relaxed),
        stats.skipped.load(Ordering::Relaxed),
    ]
}

/// The outbox hands out `n` once, claimed at [`NOW`] for [`LEASE`].
fn claims(mocks: &mut Mocks, n: Notification) {
    mocks
        .outbox
        .expect_claim()
        .withf(|now, lease| *now == NOW && *lease == LEASE)
        .times(1)
        .return_once(move |_, _| Ok(Some(n)));
}

fn todo_exists(mocks: &mut Mocks) {
    mocks
        .todos
        .expect_get()
        .withf(|user, id| *user == USER_ID && *id == TODO_ID)
        .times(1)
        .returning(|_, _| Ok(Some(todo("buy milk", false))));
}

fn todo_missing(mocks: &mut Mocks) {
    mocks
        .todos
        .expect_get()
        .withf(|user, id| *user == USER_ID && *id == TODO_ID)
        .times(1)
        .returning(|_, _| Ok(None));
}

/// The notifier is asked exactly once, with the notification's SMS, and answers `result`.
fn sends(mocks: &mut Mocks, result: Result<String, NotifyError>) {
    mocks
        .notifier
        .expect_send()
        .withf(|sent| *sent == sms())
        .times(1)
        .return_once(move |_| result);
}

/// After a dead letter, the outbox is trimmed once: letters older than the retention
/// go, and all but the newest `MAX_DEAD`.
fn trims(mocks: &mut Mocks) {
    mocks
        .outbox
        .expect_trim_dead_letters()
        .withf(|before, most| {
            *before == Timestamp::from_unix_seconds(NOW.unix_seconds() - 3_600) && *most == MAX_DEAD
        })
        .times(1)
        .returning(|_, _| Ok(0));
}

/// Only `retry` may change the outbox.
fn expect_no_other_outcome_than_retry(mocks: &mut Mocks) {
    mocks.outbox.expect_complete().never();
    mocks.outbox.expect_dead_letter().never();
}

/// Records the one `retry` call.
fn capture_retry(mocks: &mut Mocks) -> Captured<(Notification, Timestamp)> {
    let retried = Captured::new();
    let record = retried.clone();
    mocks
        .outbox
        .expect_retry()
        .times(1)
        .returning(move |n, due_at| {
            record.set(&(n.clone(), due_at));
            Ok(())
        });
    retried
}

/// Runs one step in which the send fails retryably after `attempts_before` earlier
/// attempts, with `raw_jitter` as the random id. Returns the scheduled due time after
/// checking everything else about the retry.
async fn due_after_retryable_failure(
    policy: DeliveryPolicy,
    attempts_before: u32,
    raw_jitter: u128,
    retry_after: Option<Duration>,
) -> Timestamp {
    let mut mocks = Mocks::new();
    mocks.ids = jitter(raw_jitter);
    claims(&mut mocks, notification(attempts_before, 10));
    todo_exists(&mut mocks);
    sends(
        &mut mocks,
        Err(retryable("503 Service Unavailable", retry_after)),
    );
    let retried = capture_retry(&mut mocks);
    expect_no_other_outcome_than_retry(&mut mocks);
    let worker = worker(mocks, policy);

    let outcome = worker.run_once().await.expect("retry scheduled");

    let (stored, due_at) = retried.get();
    assert_eq!(stored, notification(attempts_before + 1, 10));
    assert_eq!(
        outcome,
        DeliveryOutcome::Retrying {
            notification_id: NOTIFICATION_ID,
            attempts: attempts_before + 1,
            due_at,
        }
    );
    assert_eq!(counts(&worker), [0, 1, 0, 0]);
    due_at
}

#[tokio::test]
async fn nothing_due_is_idle_and_touches_nothing_else() {
    let mut mocks = Mocks::new();
    mocks
        .outbox
        .expect_claim()
        .withf(|now, lease| *now == NOW && *lease == LEASE)
        .times(1)
        .returning(|_, _| Ok(None));
    mocks.notifier.expect_send().never();
    mocks.todos.expect_get().never();
    mocks.ids = no_ids();
    let worker = worker(mocks, small_policy());

    let outcome = worker.run_once().await.expect("idle");

    assert_eq!(outcome, DeliveryOutcome::Idle);
    assert_eq!(counts(&worker), [0, 0, 0, 0]);
}

#[tokio::test]
async fn claims_with_the_policys_lease() {
    let mut mocks = Mocks::new();
    mocks
        .outbox
        .expect_claim()
        .withf(|now, lease| *now == NOW && *lease == secs(45))
        .times(1)
        .returning(|_, _| Ok(None));
    let policy = DeliveryPolicy {
        lease: secs(45),
        ..DeliveryPolicy::default()
    };

    let outcome = worker(mocks, policy).run_once().await.expect("idle");
    assert_eq!(outcome, DeliveryOutcome::Idle);
}

#[tokio::test]
async fn delivered_sms_is_completed_with_the_receipt() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    let mut order = mockall::Sequence::new();
    mocks
        .outbox
        .expect_claim()
        .withf(|now, lease| *now == NOW && *lease == LEASE)
        .times(1)
        .in_sequence(&mut order)
        .return_once(|_, _| Ok(Some(notification(0, 3))));
    mocks
        .todos
        .expect_get()
        .withf(|user, id| *user == USER_ID && *id == TODO_ID)
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(Some(todo("buy milk", false))));
    mocks
        .notifier
        .expect_send()
        .withf(|sent| *sent == sms())
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(RECEIPT.into()));
    mocks
        .outbox
        .expect_complete()
        .withf(|id, receipt| *id == NOTIFICATION_ID && receipt == RECEIPT)
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));
    mocks.outbox.expect_retry().never();
    mocks.outbox.expect_dead_letter().never();
    let worker = worker(mocks, small_policy());

    let outcome = worker.run_once().await.expect("sent");

    assert_eq!(
        outcome,
        DeliveryOutcome::Sent {
            notification_id: NOTIFICATION_ID,
            receipt: RECEIPT.into(),
        }
    );
    assert_eq!(counts(&worker), [1, 0, 0, 0]);
}

#[tokio::test]
async fn a_late_success_after_earlier_failures_is_still_sent() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(2, 30));
    todo_exists(&mut mocks);
    sends(&mut mocks, Ok(RECEIPT.into()));
    mocks
        .outbox
        .expect_complete()
        .withf(|id, receipt| *id == NOTIFICATION_ID && receipt == RECEIPT)
        .times(1)
        .returning(|_, _| Ok(()));
    let worker = worker(mocks, small_policy());

    let outcome = worker.run_once().await.expect("sent");

    assert!(
        matches!(outcome, DeliveryOutcome::Sent { .. }),
        "{outcome:?}"
    );
    assert_eq!(counts(&worker), [1, 0, 0, 0]);
}

#[tokio::test]
async fn first_retryable_failure_is_retried_after_the_base_backoff() {
    // base 1s: full delay 1s, half of it 500 ms fixed and up to 500 ms of jitter, then
    // at least a whole second. Whatever the jitter, that is exactly one second.
    for raw in [0, 1, 499, 500, u128::MAX] {
        let due_at = due_after_retryable_failure(small_policy(), 0, raw, None).await;
        assert_eq!(due_at, NOW.plus(secs(1)), "jitter {raw}");
    }
}

#[tokio::test]
async fn first_retry_lies_between_half_and_all_of_a_larger_base_backoff() {
    let policy = DeliveryPolicy {
        base_backoff: secs(10),
        ..small_policy()
    };
    // half = 5 s = 5000 ms of jitter range.
    for (raw, expected) in [
        (0, Some(5)),
        (1, Some(5)),
        (999, Some(5)),
        (1_000, Some(6)),
        (4_999, Some(9)),
        (5_000, Some(5)),
        (u128::MAX, None),
    ] {
        let due_at = due_after_retryable_failure(policy, 0, raw, None).await;
        assert!(
            due_at >= NOW.plus(secs(5)) && due_at <= NOW.plus(secs(10)),
            "jitter {raw}: {due_at:?}"
        );
        if let Some(expected) = expected {
            assert_eq!(due_at, NOW.plus(secs(expected)), "jitter {raw}");
        }
    }
}

#[tokio::test]
async fn the_default_sequential_ids_give_the_fixed_half() {
    // The usual fixture hands out seq(1): one millisecond of jitter, lost to whole seconds.
    let mut mocks = Mocks::new();
    claims(&mut mocks, notification(3, 10));
    todo_exists(&mut mocks);
    sends(&mut mocks, Err(retryable("timeout", None)));
    let retried = capture_retry(&mut mocks);
    expect_no_other_outcome_than_retry(&mut mocks);
    let policy = DeliveryPolicy {
        max_attempts: 8,
        ..small_policy()
    };

    let outcome = worker(mocks, policy).run_once().await.expect("retrying");

    assert_eq!(retried.get(), (notification(4, 10), NOW.plus(secs(4))));
    assert_eq!(
        outcome,
        DeliveryOutcome::Retrying {
            notification_id: NOTIFICATION_ID,
            attempts: 4,
            due_at: NOW.plus(secs(4)),
        }
    );
}

#[tokio::test]
async fn backoff_doubles_with_each_attempt() {
    // Fourth attempt with base 1 s: full delay 1 s * 2^3 = 8 s, of which 4 s fixed.
    let policy = DeliveryPolicy {
        max_attempts: 8,
        ..small_policy()
    };
    for (raw, expected) in [
        (0, Some(4)),
        (3_999, Some(7)),
        (4_000, Some(4)),
        (u128::MAX, None),
    ] {
        let due_at = due_after_retryable_failure(policy, 3, raw, None).await;
        assert!(
            due_at >= NOW.plus(secs(4)) && due_at <= NOW.plus(secs(8)),
            "jitter {raw}: {due_at:?}"
        );
        if let Some(expected) = expected {
            assert_eq!(due_at, NOW.plus(secs(expected)), "jitter {raw}");
        }
    }
}

#[tokio::test]
async fn backoff_over_the_default_policys_attempts() {
    // (earlier attempts, full delay in seconds) under the default policy.
    let policy = DeliveryPolicy::default();
    for (attempts_before, full) in [(0, 1), (1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 64)] {
        let least = (full / 2).max(1);
        let low = due_after_retryable_failure(policy, attempts_before, 0, None).await;
        assert_eq!(low, NOW.plus(secs(least)), "after {attempts_before}");
        for raw in [u128::from(full * 500 - 1), u128::from(u64::MAX), u128::MAX] {
            let due_at = due_after_retryable_failure(policy, attempts_before, raw, None).await;
            assert!(
                due_at >= NOW.plus(secs(least)) && due_at <= NOW.plus(secs(full)),
                "after {attempts_before}, jitter {raw}: {due_at:?}"
            );
        }
    }
}

#[tokio::test]
async fn backoff_is_capped_at_max_backoff() {
    // max 60 s: from the seventh attempt on the full delay is 60 s, 30 s of it fixed.
    for attempts_before in [6, 7, 18, 19, 20, 21, 22, 40, 1_000, u32::MAX - 2] {
        for (raw, expected) in [(0, Some(30)), (29_999, Some(59)), (u128::MAX, None)] {
            let due_at =
                due_after_retryable_failure(patient_policy(), attempts_before, raw, None).await;
            assert!(
                due_at >= NOW.plus(secs(30)) && due_at <= NOW.plus(secs(60)),
                "after {attempts_before}, jitter {raw}: {due_at:?}"
            );
            if let Some(expected) = expected {
                assert_eq!(
                    due_at,
                    NOW.plus(secs(expected)),
                    "after {attempts_before}, jitter {raw}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_huge_base_backoff_is_capped_too() {
    let policy = DeliveryPolicy {
        base_backoff: secs(3_600),
        ..patient_policy()
    };
    for attempts_before in [0, 5, 19, 20, 100] {
        let due_at = due_after_retryable_failure(policy, attempts_before, u128::MAX, None).await;
        assert!(
            due_at >= NOW.plus(secs(30)) && due_at <= NOW.plus(secs(60)),
            "after {attempts_before}: {due_at:?}"
        );
    }
}

#[tokio::test]
async fn a_zero_backoff_still_waits_a_second() {
    let policy = DeliveryPolicy {
        base_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        ..patient_policy()
    };
    for raw in [0, u128::MAX] {
        let due_at = due_after_retryable_failure(policy, 4, raw, None).await;
        assert_eq!(due_at, NOW.plus(secs(1)), "jitter {raw}");
    }
}

#[tokio::test]
async fn the_providers_retry_after_is_honoured_up_to_max_backoff() {
    // Longer than our backoff: the provider knows its rate limit better.
    let due_at = due_after_retryable_failure(small_policy(), 0, 0, Some(secs(45))).await;
    assert_eq!(due_at, NOW.plus(secs(45)));
    let due_at = due_after_retryable_failure(small_policy(), 0, 0, Some(secs(60))).await;
    assert_eq!(due_at, NOW.plus(secs(60)));
}

#[tokio::test]
async fn a_retry_after_beyond_max_backoff_is_capped_there() {
    // A hint of ten minutes, a day or centuries (broken or hostile) must not park the
    // message: max_backoff (60 s here) is the longest wait, whatever the provider says.
    for hint in [61, 600, 86_400, u64::MAX / 2, u64::MAX] {
        for raw in [0, u128::MAX] {
            let due_at =
                due_after_retryable_failure(small_policy(), 1, raw, Some(secs(hint))).await;
            assert_eq!(due_at, NOW.plus(secs(60)), "hint {hint}s, jitter {raw}");
        }
    }
}

#[tokio::test]
async fn a_short_retry_after_does_not_shorten_the_backoff() {
    let policy = DeliveryPolicy {
        max_attempts: 8,
        ..small_policy()
    };
    let due_at = due_after_retryable_failure(policy, 3, 0, Some(secs(1))).await;
    assert_eq!(due_at, NOW.plus(secs(4)));
    let due_at = due_after_retryable_failure(policy, 3, 0, Some(Duration::ZERO)).await;
    assert_eq!(due_at, NOW.plus(secs(4)));
}

#[tokio::test]
async fn retryable_failure_on_the_last_attempt_is_dead_lettered() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(2, 30));
    todo_exists(&mut mocks);
    sends(
        &mut mocks,
        Err(retryable("429 Too Many Requests", Some(secs(30)))),
    );
    let dead = Captured::new();
    let record = dead.clone();
    mocks
        .outbox
        .expect_dead_letter()
        .times(1)
        .returning(move |d| {
            record.set(d);
            Ok(())
        });
    mocks.outbox.expect_retry().never();
    mocks.outbox.expect_complete().never();
    trims(&mut mocks);
    let worker = worker(mocks, small_policy());

    let outcome = worker.run_once().await.expect("dead-lettered");

    assert_eq!(
        outcome,
        DeliveryOutcome::DeadLettered {
            notification_id: NOTIFICATION_ID,
            error: "429 Too Many Requests".into(),
        }
    );
    assert_eq!(
        dead.get(),
        DeadLetter {
            notification: notification(3, 30),
            error: "429 Too Many Requests".into(),
            failed_at: NOW,
        }
    );
    assert_eq!(counts(&worker), [0, 0, 1, 0]);
}

#[tokio::test]
async fn the_attempt_before_the_last_is_still_retried() {
    // max 3 attempts: the second failure (attempts 1 -> 2) is retried, the third is not.
    let due_at = due_after_retryable_failure(small_policy(), 1, 0, None).await;
    assert_eq!(due_at, NOW.plus(secs(1)));
}

#[tokio::test]
async fn attempts_already_past_the_maximum_are_dead_lettered() {
    // E.g. max_attempts lowered by a redeploy while messages were waiting.
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(7, 30));
    todo_exists(&mut mocks);
    sends(&mut mocks, Err(retryable("timeout", None)));
    mocks
        .outbox
        .expect_dead_letter()
        .withf(|d| {
            *d == DeadLetter {
                notification: notification(8, 30),
                error: "timeout".into(),
                failed_at: NOW,
            }
        })
        .times(1)
        .returning(|_| Ok(()));
    mocks.outbox.expect_retry().never();
    trims(&mut mocks);
    let worker = worker(mocks, small_policy());

    let outcome = worker.run_once().await.expect("dead-lettered");

    assert!(
        matches!(outcome, DeliveryOutcome::DeadLettered { .. }),
        "{outcome:?}"
    );
    assert_eq!(counts(&worker), [0, 0, 1, 0]);
}

#[tokio::test]
async fn permanent_failure_is_dead_lettered_on_the_first_attempt() {
    let reason = "400 Bad Request: invalid recipient";
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(0, 3));
    todo_exists(&mut mocks);
    sends(
        &mut mocks,
        Err(NotifyError::Permanent {
            reason: reason.into(),
        }),
    );
    mocks
        .outbox
        .expect_dead_letter()
        .withf(move |d| {
            *d == DeadLetter {
                notification: notification(1, 3),
                error: reason.into(),
                failed_at: NOW,
            }
        })
        .times(1)
        .returning(|_| Ok(()));
    mocks.outbox.expect_retry().never();
    mocks.outbox.expect_complete().never();
    // Generous retries change nothing for a permanent failure.
    mocks
        .outbox
        .expect_trim_dead_letters()
        .times(1)
        .returning(|_, _| Ok(0));
    let worker = worker(mocks, DeliveryPolicy::default());

    let outcome = worker.run_once().await.expect("dead-lettered");

    assert_eq!(
        outcome,
        DeliveryOutcome::DeadLettered {
            notification_id: NOTIFICATION_ID,
            error: reason.into(),
        }
    );
    assert_eq!(counts(&worker), [0, 0, 1, 0]);
}

#[tokio::test]
async fn a_young_notification_without_its_todo_waits_for_it() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(0, 5));
    todo_missing(&mut mocks);
    mocks.notifier.expect_send().never();
    let retried = capture_retry(&mut mocks);
    expect_no_other_outcome_than_retry(&mut mocks);
    let worker = worker(mocks, small_policy());

    let outcome = worker.run_once().await.expect("waiting");

    assert_eq!(
        outcome,
        DeliveryOutcome::Waiting {
            notification_id: NOTIFICATION_ID
        }
    );
    // Waiting is not an attempt: the count is unchanged.
    assert_eq!(retried.get(), (notification(0, 5), NOW.plus(secs(2))));
    assert_eq!(counts(&worker), [0, 0, 0, 0]);
}

#[tokio::test]
async fn waiting_keeps_the_attempts_of_earlier_failures() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(2, 20));
    todo_missing(&mut mocks);
    mocks.notifier.expect_send().never();
    let retried = capture_retry(&mut mocks);
    expect_no_other_outcome_than_retry(&mut mocks);

    let outcome = worker(mocks, small_policy())
        .run_once()
        .await
        .expect("waiting");

    assert!(
        matches!(outcome, DeliveryOutcome::Waiting { .. }),
        "{outcome:?}"
    );
    assert_eq!(retried.get(), (notification(2, 20), NOW.plus(secs(2))));
}

#[tokio::test]
async fn an_old_notification_without_its_todo_is_skipped() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(0, 120));
    todo_missing(&mut mocks);
    mocks.notifier.expect_send().never();
    mocks
        .outbox
        .expect_complete()
        .withf(|id, receipt| *id == NOTIFICATION_ID && receipt.starts_with("skipped"))
        .times(1)
        .returning(|_, _| Ok(()));
    mocks.outbox.expect_retry().never();
    mocks.outbox.expect_dead_letter().never();
    let worker = worker(mocks, small_policy());

    let outcome = worker.run_once().await.expect("skipped");

    assert_eq!(
        outcome,
        DeliveryOutcome::Skipped {
            notification_id: NOTIFICATION_ID
        }
    );
    assert_eq!(counts(&worker), [0, 0, 0, 1]);
}

#[tokio::test]
async fn the_orphan_grace_is_one_minute() {
    // (age in seconds, skipped?) Negative ages: created "after" now, by a skewed clock.
    for (age, skipped) in [
        (-30, false),
        (0, false),
        (1, false),
        (59, false),
        (60, true),
        (61, true),
        (86_400, true),
    ] {
        let mut mocks = Mocks::new();
        mocks.ids = no_ids();
        claims(&mut mocks, notification(0, age));
        todo_missing(&mut mocks);
        mocks.notifier.expect_send().never();
        mocks.outbox.expect_dead_letter().never();
        if skipped {
            mocks
                .outbox
                .expect_complete()
                .withf(|id, receipt| *id == NOTIFICATION_ID && receipt.starts_with("skipped"))
                .times(1)
                .returning(|_, _| Ok(()));
            mocks.outbox.expect_retry().never();
        } else {
            mocks
                .outbox
                .expect_retry()
                .withf(move |n, due_at| *n == notification(0, age) && *due_at == NOW.plus(secs(2)))
                .times(1)
                .returning(|_, _| Ok(()));
            mocks.outbox.expect_complete().never();
        }

        let outcome = worker(mocks, small_policy())
            .run_once()
            .await
            .expect("handled");

        let expected = if skipped {
            DeliveryOutcome::Skipped {
                notification_id: NOTIFICATION_ID,
            }
        } else {
            DeliveryOutcome::Waiting {
                notification_id: NOTIFICATION_ID,
            }
        };
        assert_eq!(outcome, expected, "age {age}");
    }
}

#[tokio::test]
async fn claim_unavailable_is_unavailable() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    mocks
        .outbox
        .expect_claim()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    mocks.todos.expect_get().never();
    mocks.notifier.expect_send().never();

    let result = worker(mocks, small_policy()).run_once().await;

    assert!(
        matches!(result, Err(DeliveryError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn claim_failure_is_unexpected() {
    let mut mocks = Mocks::new();
    mocks
        .outbox
        .expect_claim()
        .times(1)
        .returning(|_, _| Err(unexpected()));
    mocks.notifier.expect_send().never();

    let result = worker(mocks, small_policy()).run_once().await;

    assert!(
        matches!(result, Err(DeliveryError::Unexpected(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn todo_lookup_unavailable_sends_nothing() {
    // The claim's lease runs out and the message is handled again later.
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(0, 3));
    mocks
        .todos
        .expect_get()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    mocks.notifier.expect_send().never();
    mocks.outbox.expect_retry().never();
    mocks.outbox.expect_complete().never();
    mocks.outbox.expect_dead_letter().never();

    let result = worker(mocks, small_policy()).run_once().await;

    assert!(
        matches!(result, Err(DeliveryError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn complete_failing_after_a_send_is_unavailable() {
    // The SMS went out but the outbox could not record it. Nothing can undo the SMS; the
    // claim's lease runs out and the message is delivered again: at least once, never
    // silently lost. Not counted as sent, since the outbox does not know it was.
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(0, 3));
    todo_exists(&mut mocks);
    sends(&mut mocks, Ok(RECEIPT.into()));
    mocks
        .outbox
        .expect_complete()
        .withf(|id, receipt| *id == NOTIFICATION_ID && receipt == RECEIPT)
        .times(1)
        .returning(|_, _| Err(unavailable()));
    mocks.outbox.expect_retry().never();
    mocks.outbox.expect_dead_letter().never();
    let worker = worker(mocks, small_policy());

    let result = worker.run_once().await;

    assert!(
        matches!(result, Err(DeliveryError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(counts(&worker), [0, 0, 0, 0]);
}

#[tokio::test]
async fn retry_failing_is_unavailable() {
    // The lease runs out and the message is claimed again (one attempt is not counted).
    let mut mocks = Mocks::new();
    claims(&mut mocks, notification(0, 3));
    todo_exists(&mut mocks);
    sends(&mut mocks, Err(retryable("502 Bad Gateway", None)));
    mocks
        .outbox
        .expect_retry()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    expect_no_other_outcome_than_retry(&mut mocks);
    let worker = worker(mocks, small_policy());

    let result = worker.run_once().await;

    assert!(
        matches!(result, Err(DeliveryError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(counts(&worker), [0, 0, 0, 0]);
}

#[tokio::test]
async fn dead_letter_failing_is_unavailable() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(0, 3));
    todo_exists(&mut mocks);
    sends(
        &mut mocks,
        Err(NotifyError::Permanent {
            reason: "401 Unauthorized".into(),
        }),
    );
    mocks
        .outbox
        .expect_dead_letter()
        .times(1)
        .returning(|_| Err(unavailable()));
    mocks.outbox.expect_retry().never();
    mocks.outbox.expect_complete().never();
    let worker = worker(mocks, small_policy());

    let result = worker.run_once().await;

    assert!(
        matches!(result, Err(DeliveryError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(counts(&worker), [0, 0, 0, 0]);
}

#[tokio::test]
async fn skip_failing_is_unexpected_when_the_store_says_so() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(0, 120));
    todo_missing(&mut mocks);
    mocks.notifier.expect_send().never();
    mocks
        .outbox
        .expect_complete()
        .times(1)
        .returning(|_, _| Err(unexpected()));
    let worker = worker(mocks, small_policy());

    let result = worker.run_once().await;

    assert!(
        matches!(result, Err(DeliveryError::Unexpected(_))),
        "{result:?}"
    );
    assert_eq!(counts(&worker), [0, 0, 0, 0]);
}

#[tokio::test]
async fn stats_add_up_over_many_steps() {
    let mut mocks = Mocks::new();
    let mut queue: VecDeque<Option<Notification>> = VecDeque::from([
        Some(notification(0, 10)),
        Some(notification(0, 10)),
        Some(notification(2, 10)),
        Some(notification(0, 300)),
        None,
    ]);
    mocks
        .outbox
        .expect_claim()
        .withf(|now, lease| *now == NOW && *lease == LEASE)
        .times(5)
        .returning(move |_, _| Ok(queue.pop_front().expect("queued")));
    let mut found = VecDeque::from([true, true, true, false]);
    mocks.todos.expect_get().times(4).returning(move |_, _| {
        let exists = found.pop_front().expect("queued");
        Ok(exists.then(|| todo("buy milk", false)))
    });
    let mut results = VecDeque::from([
        Ok(RECEIPT.to_owned()),
        Err(retryable("timeout", None)),
        Err(retryable("timeout", None)),
    ]);
    mocks
        .notifier
        .expect_send()
        .times(3)
        .returning(move |_| results.pop_front().expect("queued"));
    mocks
        .outbox
        .expect_complete()
        .times(2)
        .returning(|_, _| Ok(()));
    mocks
        .outbox
        .expect_retry()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .outbox
        .expect_dead_letter()
        .times(1)
        .returning(|_| Ok(()));
    trims(&mut mocks);
    let worker = worker(mocks, small_policy());

    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(worker.run_once().await.expect("handled"));
    }

    assert!(
        matches!(
            outcomes.as_slice(),
            [
                DeliveryOutcome::Sent { .. },
                DeliveryOutcome::Retrying { attempts: 1, .. },
                DeliveryOutcome::DeadLettered { .. },
                DeliveryOutcome::Skipped { .. },
                DeliveryOutcome::Idle,
            ]
        ),
        "{outcomes:?}"
    );
    assert_eq!(counts(&worker), [1, 1, 1, 1]);
}

const CODE_EXPIRES: Timestamp = Timestamp::from_unix_seconds(1_700_000_600);

fn code_sms() -> Sms {
    Sms::phone_code(
        &PhoneCode::parse("424242").expect("valid"),
        PhoneNumber::parse("+4915112345678").expect("valid"),
        secs(600),
    )
}

/// A phone-code notification created `age_secs` before [`NOW`], expiring at `expires_at`.
fn code_notification(attempts: u32, expires_at: Timestamp) -> Notification {
    Notification {
        kind: NotificationKind::PhoneCode { expires_at },
        sms: code_sms(),
        ..notification(attempts, 5)
    }
}

/// The code's user still exists.
fn user_exists(mocks: &mut Mocks) {
    mocks
        .users
        .expect_find_by_id()
        .returning(|_| Ok(Some(user())));
}

#[tokio::test]
async fn a_deleted_users_code_is_skipped_not_sent() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, code_notification(0, CODE_EXPIRES));
    mocks
        .users
        .expect_find_by_id()
        .times(1)
        .returning(|_| Ok(None));
    mocks.notifier.expect_send().never();
    mocks
        .outbox
        .expect_complete()
        .withf(|id, receipt| *id == NOTIFICATION_ID && receipt == "skipped: user deleted")
        .times(1)
        .returning(|_, _| Ok(()));
    let worker = worker(mocks, small_policy());

    let outcome = worker.run_once().await.expect("handled");

    assert!(
        matches!(outcome, DeliveryOutcome::Skipped { .. }),
        "{outcome:?}"
    );
    assert_eq!(counts(&worker), [0, 0, 0, 1]);
}

#[tokio::test]
async fn a_phone_code_is_sent_without_looking_for_a_todo() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, code_notification(0, CODE_EXPIRES));
    user_exists(&mut mocks);
    mocks.todos.expect_get().never();
    mocks
        .notifier
        .expect_send()
        .withf(|sent| *sent == code_sms())
        .times(1)
        .returning(|_| Ok(RECEIPT.into()));
    mocks
        .outbox
        .expect_complete()
        .withf(|id, receipt| *id == NOTIFICATION_ID && receipt == RECEIPT)
        .times(1)
        .returning(|_, _| Ok(()));
    let worker = worker(mocks, small_policy());

    let outcome = worker.run_once().await.expect("sent");

    assert!(
        matches!(outcome, DeliveryOutcome::Sent { .. }),
        "{outcome:?}"
    );
    assert_eq!(counts(&worker), [1, 0, 0, 0]);
}

#[tokio::test]
async fn an_expired_phone_code_is_skipped_not_sent() {
    // (expiry relative to now, skipped?) An expiry at `t` is expired at `t`.
    for (offset, skipped) in [(-3_600, true), (-1, true), (0, true), (1, false)] {
        let expires_at = Timestamp::from_unix_seconds(NOW.unix_seconds() + offset);
        let mut mocks = Mocks::new();
        mocks.ids = no_ids();
        claims(&mut mocks, code_notification(0, expires_at));
        user_exists(&mut mocks);
        mocks.todos.expect_get().never();
        if skipped {
            mocks.notifier.expect_send().never();
            mocks
                .outbox
                .expect_complete()
                .withf(|id, receipt| *id == NOTIFICATION_ID && receipt == "skipped: code expired")
                .times(1)
                .returning(|_, _| Ok(()));
        } else {
            sends_any(&mut mocks);
            mocks
                .outbox
                .expect_complete()
                .withf(|_, receipt| receipt == RECEIPT)
                .times(1)
                .returning(|_, _| Ok(()));
        }
        let worker = worker(mocks, small_policy());

        let outcome = worker.run_once().await.expect("handled");

        if skipped {
            assert_eq!(
                outcome,
                DeliveryOutcome::Skipped {
                    notification_id: NOTIFICATION_ID
                },
                "offset {offset}"
            );
            assert_eq!(counts(&worker), [0, 0, 0, 1]);
        } else {
            assert!(
                matches!(outcome, DeliveryOutcome::Sent { .. }),
                "{outcome:?}"
            );
        }
    }
}

fn sends_any(mocks: &mut Mocks) {
    mocks
        .notifier
        .expect_send()
        .times(1)
        .returning(|_| Ok(RECEIPT.into()));
}

#[tokio::test]
async fn a_dead_lettered_code_keeps_no_code() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, code_notification(0, CODE_EXPIRES));
    user_exists(&mut mocks);
    mocks.notifier.expect_send().times(1).returning(|_| {
        Err(NotifyError::Permanent {
            reason: "400 Bad Request: invalid recipient".into(),
        })
    });
    let dead = Captured::new();
    let record = dead.clone();
    mocks
        .outbox
        .expect_dead_letter()
        .times(1)
        .returning(move |d| {
            record.set(d);
            Ok(())
        });
    trims(&mut mocks);
    let worker = worker(mocks, small_policy());

    worker.run_once().await.expect("dead-lettered");

    let letter = dead.get();
    assert!(
        !letter.notification.sms.text.contains("424242"),
        "{letter:?}"
    );
    assert_eq!(letter.notification.sms.text, "[verification code withheld]");
    assert_eq!(letter.notification.attempts, 1);
    assert_eq!(letter.error, "400 Bad Request: invalid recipient");
}

#[tokio::test]
async fn a_failed_trim_after_a_dead_letter_does_not_fail_the_step() {
    // The letter is recorded; the next trim (the server runs them periodically) catches up.
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    claims(&mut mocks, notification(0, 3));
    todo_exists(&mut mocks);
    sends(
        &mut mocks,
        Err(NotifyError::Permanent {
            reason: "401".into(),
        }),
    );
    mocks
        .outbox
        .expect_dead_letter()
        .times(1)
        .returning(|_| Ok(()));
    mocks
        .outbox
        .expect_trim_dead_letters()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    let worker = worker(mocks, small_policy());

    let outcome = worker.run_once().await.expect("dead-lettered");

    assert!(
        matches!(outcome, DeliveryOutcome::DeadLettered { .. }),
        "{outcome:?}"
    );
    assert_eq!(counts(&worker), [0, 0, 1, 0]);
}

#[tokio::test]
async fn trimming_uses_the_retention_and_the_most_kept() {
    let mut mocks = Mocks::new();
    mocks.ids = no_ids();
    mocks
        .outbox
        .expect_trim_dead_letters()
        .withf(|before, most| {
            *before == Timestamp::from_unix_seconds(NOW.unix_seconds() - 7 * 86_400)
                && *most == 10_000
        })
        .times(1)
        .returning(|_, _| Ok(3));
    let worker = worker(mocks, DeliveryPolicy::default());

    assert_eq!(worker.trim_dead_letters().await.expect("trimmed"), 3);

    let mut mocks = Mocks::new();
    mocks
        .outbox
        .expect_trim_dead_letters()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    let result = worker_with(mocks).trim_dead_letters().await;
    assert!(
        matches!(result, Err(DeliveryError::Unavailable(_))),
        "{result:?}"
    );
}

fn worker_with(mocks: Mocks) -> DeliverNotification {
    worker(mocks, small_policy())
}
