//! Most tests use the cheapest parameters Argon2 allows; one checks the real defaults.
//! The overload tests hold permits with blocking work gated on a channel, so what they
//! observe does not depend on how fast this machine hashes.

use std::sync::atomic::AtomicUsize;
use std::sync::mpsc;
use std::time::Duration;

use super::*;

fn cheap_params() -> Params {
    Params::new(Params::MIN_M_COST, 1, 1, None).expect("valid params")
}

fn cheap(limits: Argon2Limits) -> Argon2Hasher {
    Argon2Hasher::with_config(cheap_params(), limits).expect("builds")
}

fn cheap_default_limits() -> Argon2Hasher {
    Argon2Hasher::with_params(cheap_params()).expect("builds")
}

fn pw(raw: &str) -> PasswordInput {
    PasswordInput::new(raw).expect("valid input")
}

/// Polls `condition` until it holds; fails the test after 10 s.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Starts blocking work that holds one permit until the returned sender is used (or dropped).
async fn hold_permit(
    hasher: &Argon2Hasher,
) -> (
    mpsc::Sender<()>,
    tokio::task::JoinHandle<Result<(), HashError>>,
) {
    let (release, gate) = mpsc::channel::<()>();
    let before = hasher.inner.permits.available_permits();
    let h = hasher.clone();
    let task = tokio::spawn(async move {
        h.run(None, move |_, _| {
            let _ = gate.recv();
            Ok(())
        })
        .await
    });
    wait_until("the holder has its permit", || {
        hasher.inner.permits.available_permits() < before
    })
    .await;
    (release, task)
}

async fn refused_at_once<T: fmt::Debug>(call: impl Future<Output = Result<T, HashError>>) {
    let outcome = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .expect("an overloaded hasher answers at once instead of waiting");
    assert!(matches!(outcome, Err(HashError::Overloaded)), "{outcome:?}");
}

// --- hashing and verifying --------------------------------------------------------------

#[tokio::test]
async fn a_hash_verifies_its_password_only() {
    let hasher = cheap_default_limits();
    let hash = hasher
        .hash(&pw("correct horse battery"))
        .await
        .expect("hashes");
    assert!(
        hasher
            .verify(&pw("correct horse battery"), Some(hash.clone()))
            .await
            .expect("verifies")
    );
    assert!(
        !hasher
            .verify(&pw("correct horse battery!"), Some(hash.clone()))
            .await
            .expect("verifies")
    );
    assert!(
        !hasher
            .verify(&pw("Correct horse battery"), Some(hash))
            .await
            .expect("verifies")
    );
}

#[tokio::test]
async fn an_unknown_user_is_false_after_the_same_work() {
    let hasher = cheap_default_limits();
    assert!(
        !hasher
            .verify(&pw("whatever"), None)
            .await
            .expect("verifies")
    );
    // The dummy is a real hash with the hasher's own parameters, so verifying against it
    // costs what a real check costs.
    let real = hasher.hash(&pw("x")).await.expect("hashes");
    let prefix = |phc: &str| phc.rsplitn(3, '$').last().map(str::to_owned);
    assert_eq!(prefix(&hasher.inner.dummy_hash), prefix(real.as_str()));
    assert!(password_hash::PasswordHash::new(&hasher.inner.dummy_hash).is_ok());
}

#[tokio::test]
async fn the_same_password_hashes_differently_each_time() {
    let hasher = cheap_default_limits();
    let a = hasher.hash(&pw("same password")).await.expect("hashes");
    let b = hasher.hash(&pw("same password")).await.expect("hashes");
    assert_ne!(a, b, "random salt");
    let salt = |h: &PasswordHash| {
        password_hash::PasswordHash::new(h.as_str())
            .expect("phc")
            .salt
            .map(|s| s.to_string())
    };
    assert_ne!(salt(&a), salt(&b));
    assert!(
        hasher
            .verify(&pw("same password"), Some(a))
            .await
            .expect("verifies")
    );
    assert!(
        hasher
            .verify(&pw("same password"), Some(b))
            .await
            .expect("verifies")
    );
}

#[tokio::test]
async fn default_parameters_are_the_owasp_minimum() {
    let hasher = Argon2Hasher::new().expect("builds");
    let hash = hasher
        .hash(&pw("correct horse battery"))
        .await
        .expect("hashes");
    assert!(
        hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        hash.as_str()
    );
    assert!(
        hasher
            .verify(&pw("correct horse battery"), Some(hash.clone()))
            .await
            .expect("verifies")
    );
    assert!(
        !hasher
            .verify(&pw("wrong"), Some(hash))
            .await
            .expect("verifies")
    );
    assert!(
        hasher
            .inner
            .dummy_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    assert!(hasher.limits().permits >= 1);
    assert_eq!(hasher.limits().max_queue, DEFAULT_MAX_QUEUE);
}

#[tokio::test]
async fn hashes_verify_under_the_parameters_they_were_made_with() {
    // Raising the cost later must not lock out existing users.
    let old = cheap_default_limits();
    let hash = old.hash(&pw("long-time user")).await.expect("hashes");
    let new =
        Argon2Hasher::with_params(Params::new(64, 2, 1, None).expect("valid")).expect("builds");
    assert!(
        new.verify(&pw("long-time user"), Some(hash))
            .await
            .expect("verifies")
    );
}

#[tokio::test]
async fn malformed_stored_hashes_are_unexpected() {
    let hasher = cheap_default_limits();
    for stored in [
        "",
        "not a hash",
        "$argon2id$",
        "$argon2id",
        "$argon2id$v=19$m=8,t=1,p=1",
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ",
        "$argon2id$v=19$m=8,t=1,p=1$",
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$!!!",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaA",
    ] {
        let outcome = hasher
            .verify(&pw("password"), Some(PasswordHash::new(stored)))
            .await;
        assert!(
            matches!(outcome, Err(HashError::Unexpected(_))),
            "{stored:?}: {outcome:?}"
        );
    }
}

#[test]
fn construction_checks_limits_and_debug_hides_the_dummy() {
    assert!(matches!(
        Argon2Hasher::with_config(
            cheap_params(),
            Argon2Limits {
                permits: 0,
                max_queue: 1
            }
        ),
        Err(Argon2SetupError::NoPermits)
    ));
    let hasher = cheap(Argon2Limits {
        permits: 3,
        max_queue: 5,
    });
    assert_eq!(
        hasher.limits(),
        Argon2Limits {
            permits: 3,
            max_queue: 5
        }
    );
    let printed = format!("{hasher:?}");
    assert!(
        printed.contains("argon2id") && printed.contains("permits: 3"),
        "{printed}"
    );
    assert!(!printed.contains("$argon2"), "{printed}");
}

// --- bounds -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_queue_a_busy_hasher_refuses_at_once() {
    let hasher = cheap(Argon2Limits {
        permits: 1,
        max_queue: 0,
    });
    let (release, holder) = hold_permit(&hasher).await;

    refused_at_once(hasher.hash(&pw("a"))).await;
    refused_at_once(hasher.verify(&pw("a"), None)).await;

    release.send(()).expect("holder waits");
    holder.await.expect("joins").expect("ran");
    // Free again: served.
    let hash = hasher.hash(&pw("a")).await.expect("hashes");
    assert!(hasher.verify(&pw("a"), Some(hash)).await.expect("verifies"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_beyond_permits_and_queue_are_refused_and_the_queued_one_is_served() {
    let hasher = cheap(Argon2Limits {
        permits: 1,
        max_queue: 1,
    });
    let (release, holder) = hold_permit(&hasher).await;

    let h = hasher.clone();
    let queued = tokio::spawn(async move { h.hash(&pw("queued")).await });
    wait_until("one caller is queued", || {
        hasher.inner.waiting.load(Ordering::Acquire) == 1
    })
    .await;

    refused_at_once(hasher.hash(&pw("third"))).await;
    refused_at_once(hasher.verify(&pw("third"), None)).await;
    assert_eq!(
        hasher.inner.waiting.load(Ordering::Acquire),
        1,
        "refusals take no place"
    );

    release.send(()).expect("holder waits");
    holder.await.expect("joins").expect("ran");
    let hash = queued
        .await
        .expect("joins")
        .expect("the queued call runs once a permit frees");
    assert!(
        hasher
            .verify(&pw("queued"), Some(hash))
            .await
            .expect("verifies")
    );
    assert_eq!(hasher.inner.waiting.load(Ordering::Acquire), 0);
    assert_eq!(hasher.inner.permits.available_permits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_waiter_leaves_the_queue() {
    let hasher = cheap(Argon2Limits {
        permits: 1,
        max_queue: 1,
    });
    let (release, holder) = hold_permit(&hasher).await;

    let h = hasher.clone();
    let queued = tokio::spawn(async move { h.hash(&pw("impatient")).await });
    wait_until("one caller is queued", || {
        hasher.inner.waiting.load(Ordering::Acquire) == 1
    })
    .await;
    queued.abort();
    assert!(queued.await.expect_err("aborted").is_cancelled());
    assert_eq!(hasher.inner.waiting.load(Ordering::Acquire), 0);

    // The place is free for the next caller.
    let h = hasher.clone();
    let next = tokio::spawn(async move { h.hash(&pw("next")).await });
    wait_until("the next caller is queued", || {
        hasher.inner.waiting.load(Ordering::Acquire) == 1
    })
    .await;
    release.send(()).expect("holder waits");
    holder.await.expect("joins").expect("ran");
    next.await.expect("joins").expect("hashes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_keeps_its_permit_until_the_work_ends() {
    // The memory bound holds even when clients give up: the computation still runs and
    // still counts against the permits.
    let hasher = cheap(Argon2Limits {
        permits: 1,
        max_queue: 0,
    });
    let (release, holder) = hold_permit(&hasher).await;
    holder.abort();
    let _ = holder.await;
    assert_eq!(
        hasher.inner.permits.available_permits(),
        0,
        "work still running"
    );
    refused_at_once(hasher.hash(&pw("a"))).await;

    release.send(()).expect("blocking work still waits");
    wait_until("the permit returns", || {
        hasher.inner.permits.available_permits() == 1
    })
    .await;
    assert!(hasher.hash(&pw("a")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_the_permits_run_at_once() {
    let hasher = cheap(Argon2Limits {
        permits: 2,
        max_queue: 16,
    });
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (h, running, peak) = (hasher.clone(), Arc::clone(&running), Arc::clone(&peak));
        tasks.push(tokio::spawn(async move {
            h.run(None, move |_, _| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
            .await
        }));
    }
    for task in tasks {
        task.await.expect("joins").expect("within the queue bound");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_real_hashes_beyond_the_bound_is_partly_refused() {
    // Through the public API only, with the real default cost: one permit, no queue,
    // eight simultaneous callers. The first takes ~40 ms; the others arrive meanwhile.
    let hasher = Argon2Hasher::with_config(
        Params::DEFAULT,
        Argon2Limits {
            permits: 1,
            max_queue: 0,
        },
    )
    .expect("builds");
    let start = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (h, start) = (hasher.clone(), Arc::clone(&start));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            h.hash(&pw(&format!("password {i}"))).await
        }));
    }
    let (mut served, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("joins") {
            Ok(_) => served += 1,
            Err(HashError::Overloaded) => refused += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert!(served >= 1, "served {served}, refused {refused}");
    assert!(refused >= 1, "served {served}, refused {refused}");
}

#[tokio::test]
async fn hashes_are_those_of_the_argon2_crate_both_ways() {
    use argon2::{PasswordHasher as _, PasswordVerifier as _};

    let hasher = cheap_default_limits();
    let crate_argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, cheap_params());

    // Ours, checked by the crate's verifier.
    let ours = hasher.hash(&pw("interop password")).await.expect("hashes");
    let parsed = password_hash::PasswordHash::new(ours.as_str()).expect("PHC string");
    assert!(
        crate_argon2
            .verify_password(b"interop password", &parsed)
            .is_ok()
    );
    assert!(crate_argon2.verify_password(b"other", &parsed).is_err());

    // The crate's, checked by ours, including under other parameters than ours.
    for params in [
        cheap_params(),
        Params::new(64, 3, 2, Some(24)).expect("valid"),
    ] {
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"interop password", &SaltString::generate(&mut OsRng))
            .expect("hashes")
            .to_string();
        assert!(
            hasher
                .verify(
                    &pw("interop password"),
                    Some(PasswordHash::new(theirs.clone()))
                )
                .await
                .expect("verifies")
        );
        assert!(
            !hasher
                .verify(&pw("other"), Some(PasswordHash::new(theirs)))
                .await
                .expect("verifies")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_matrices_are_kept_one_per_permit_at_most() {
    let hasher = cheap(Argon2Limits {
        permits: 2,
        max_queue: 64,
    });
    let calls = (0..16).map(|i| {
        let hasher = hasher.clone();
        async move { hasher.hash(&pw(&format!("password {i}"))).await }
    });
    for outcome in futures_join_all(calls).await {
        outcome.expect("hashes");
    }
    let kept = hasher.inner.memory.lock().expect("not poisoned");
    assert!(!kept.is_empty() && kept.len() <= 2, "{} kept", kept.len());
    assert!(kept.iter().all(|m| m.len() == cheap_params().block_count()));
}

/// Runs the futures concurrently (each on its own task) and collects their outputs.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}

#[cfg(target_os = "linux")]
#[test]
fn hashing_threads_run_at_a_lower_priority_once_lowered() {
    std::thread::spawn(|| {
        let me = Some(rustix::thread::gettid());
        let before = rustix::process::getpriority_process(me).expect("priority");
        yield_to_requests();
        let after = rustix::process::getpriority_process(me).expect("priority");
        // A thread already at or below the niceness (an unusual parent) is left there.
        assert_eq!(after, before.max(HASHING_NICENESS));
        yield_to_requests();
        assert_eq!(
            rustix::process::getpriority_process(me).expect("priority"),
            after,
            "lowered once, not again"
        );
    })
    .join()
    .expect("thread");
}

// --- the share of choosing passwords -----------------------------------------------------

/// Holds the registration share: a `hash` whose share permit is taken by hand, as a
/// running registration holds it.
fn take_choosing_share(hasher: &Argon2Hasher) -> Vec<OwnedSemaphorePermit> {
    let share = Arc::clone(&hasher.inner.choosing);
    (0..share.available_permits())
        .map(|_| Arc::clone(&share).try_acquire_owned().expect("free"))
        .collect()
}

#[test]
fn registrations_may_use_half_the_permits() {
    assert_eq!(choosing_share(1), 1, "nothing to split");
    assert_eq!(choosing_share(2), 1);
    assert_eq!(choosing_share(3), 1);
    assert_eq!(choosing_share(8), 4);
}

#[tokio::test]
async fn a_registration_flood_is_refused_while_logins_still_verify() {
    // Two permits: registrations get one. With their share in use and their small queue
    // full, a registration is refused at once, and a login is still served.
    let hasher = cheap(Argon2Limits {
        permits: 2,
        max_queue: 4,
    });
    let stored = hasher.hash(&pw("a fine passphrase")).await.expect("hashes");
    let _share = take_choosing_share(&hasher);
    // One registration waits in its queue (a quarter of four) ...
    let waiting = {
        let h = hasher.clone();
        tokio::spawn(async move { h.hash(&pw("queued")).await })
    };
    wait_until("the registration queues", || {
        hasher.inner.choosing_waiting.load(Ordering::Acquire) == 1
    })
    .await;
    // ... the next is refused without waiting ...
    refused_at_once(hasher.hash(&pw("flood"))).await;
    // ... while every permit of the hasher is free for logins.
    assert_eq!(hasher.inner.permits.available_permits(), 2);
    assert!(
        hasher
            .verify(&pw("a fine passphrase"), Some(stored))
            .await
            .expect("a login is served")
    );
    drop(_share);
    waiting
        .await
        .expect("joins")
        .expect("the queued registration runs once the share frees");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registrations_never_hold_more_than_their_share_of_permits() {
    // Eight registrations at once on four permits: never more than two hashing, so two
    // permits always stay free for logins. Real-cost hashes (~40 ms each), so the watcher
    // sees every hash in flight.
    let hasher = Argon2Hasher::with_config(
        Params::DEFAULT,
        Argon2Limits {
            permits: 4,
            max_queue: 64,
        },
    )
    .expect("builds");
    let least_free = Arc::new(AtomicUsize::new(usize::MAX));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let h = hasher.clone();
        tasks.push(tokio::spawn(async move {
            h.hash(&pw(&format!("registration {i}"))).await
        }));
    }
    let watcher = {
        let (h, least_free) = (hasher.clone(), Arc::clone(&least_free));
        tokio::spawn(async move {
            for _ in 0..400 {
                least_free.fetch_min(h.inner.permits.available_permits(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    for task in tasks {
        task.await.expect("joins").expect("hashed");
    }
    watcher.await.expect("joins");
    assert!(
        least_free.load(Ordering::SeqCst) < 4,
        "the watcher saw hashes running"
    );
    assert!(
        least_free.load(Ordering::SeqCst) >= 2,
        "at most half the permits went to registrations: {}",
        least_free.load(Ordering::SeqCst)
    );
}
