//! The [`PasswordHasher`] port over Argon2id (`argon2` 0.5), and the [`CodeHasher`] port
//! for phone codes ([`code_digest`]): the two secrets users hand us that the store must
//! only ever hold as hashes.
//!
//! [`CodeHasher`]: application::ports::CodeHasher
//!
//! # Design
//!
//! - **Parameters.** By default Argon2id with m = 19 MiB, t = 2, p = 1: `Argon2::default()`,
//!   the OWASP minimum. About 35–40 ms of one core per hash. Hashes are PHC strings
//!   (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) with a fresh random salt each, and
//!   verification reads the parameters from the stored string, so raising them later keeps
//!   old hashes verifiable. [`Argon2Hasher::with_params`] exists so tests can use cheap ones.
//! - **Off the executor.** Every hash and verify runs in `tokio::task::spawn_blocking`: 40 ms
//!   on an async worker thread would stall every other request scheduled there.
//! - **Bounded concurrency.** A semaphore of `permits` (default: the number of CPUs) bounds
//!   how many Argon2 computations run at once, and with it the memory they use: each holds
//!   its 19 MiB block matrix, so the bound is `permits × 19 MiB`. The permit moves into the
//!   blocking task and is released only when the computation ends, even if the caller
//!   stopped waiting (a client that disconnects does not free a slot that is still in use).
//! - **Reused memory.** The block matrices are kept and reused (at most one per permit),
//!   not allocated and freed for every hash. With glibc's allocator, 19 MiB freed on
//!   changing threads is not given back but fragments the heap: under a login storm the
//!   process grew by hundreds of MiB. Kept matrices make the memory `permits × 19 MiB`,
//!   allocated on first use, and spare every hash the page faults of fresh memory. The
//!   output is the same PHC string the `argon2` crate's `PasswordHasher` makes, and
//!   verification the same computation and constant-time comparison as its
//!   `PasswordVerifier`.
//! - **Bounded queue.** Waiting for a permit is allowed for at most `max_queue` callers
//!   (default [`DEFAULT_MAX_QUEUE`]). Beyond that, [`HashError::Overloaded`] comes back at
//!   once: a login burst then gets fast "try again later" answers instead of an ever longer
//!   queue whose callers time out anyway, while memory stays bounded.
//! - **A share for choosing passwords.** [`PasswordHasher::hash`] (registration) first
//!   takes one of its own permits: half the permits (at least one), with a queue of a
//!   quarter of `max_queue` (at least one). So at most half the computations are ever
//!   registrations, and a registration flood gets fast [`HashError::Overloaded`] answers
//!   while the other half stays for [`PasswordHasher::verify`] (logins), which only ever
//!   waits behind other logins and that bounded share. With a single permit there is
//!   nothing to split, and registrations and logins share it.
//! - **No user enumeration by timing.** `verify(password, None)` (unknown user) checks the
//!   password against a dummy hash, computed once at construction with the same parameters
//!   for a random password, and answers `false`: the same work as a real check.
//! - **Errors.** A wrong password is `Ok(false)`; a stored hash that is not a valid Argon2
//!   PHC string is [`HashError::Unexpected`], since it means corrupt data, not a bad guess.
//!
//! # Layout
//! - [`Argon2Hasher`]: the port implementation; cheap to clone (shared state).
//! - [`Argon2Limits`]: permits and queue bound.
//! - [`Argon2SetupError`]: why construction failed.
//! - [`HmacCodeHasher`]: HMAC-SHA256 of phone codes under a key derived from a secret.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use application::ports::{HashError, PasswordHasher};
use std::sync::{Mutex, PoisonError};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{self, Output, ParamsString, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Version};
use async_trait::async_trait;
use domain::{PasswordHash, PasswordInput};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

pub mod code_digest;
pub use code_digest::HmacCodeHasher;
pub mod totp;
pub use totp::SealedTotpEngine;

/// Argon2 cost parameters (memory in KiB, iterations, lanes), re-exported so that callers
/// need no `argon2` dependency of their own.
pub use argon2::Params;

/// Default bound on callers waiting for a permit.
pub const DEFAULT_MAX_QUEUE: usize = 64;

/// How much hashing may run and wait at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Limits {
    /// Argon2 computations running at once (each holds `m_cost` KiB of memory). At least 1.
    pub permits: usize,
    /// Callers allowed to wait for a permit; one more gets [`HashError::Overloaded`].
    /// Zero means: refuse whenever all permits are taken.
    pub max_queue: usize,
}

impl Default for Argon2Limits {
    /// One permit per available CPU (1 if that cannot be read), [`DEFAULT_MAX_QUEUE`] waiters.
    fn default() -> Self {
        Self {
            permits: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            max_queue: DEFAULT_MAX_QUEUE,
        }
    }
}

/// Why an [`Argon2Hasher`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Argon2SetupError {
    #[error("the password hasher needs at least one permit")]
    NoPermits,
    #[error("computing the dummy password hash failed")]
    DummyHash(#[source] password_hash::Error),
}

/// Argon2id password hashing, off the async executor and behind a bounded queue.
#[derive(Clone)]
pub struct Argon2Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    argon2: Argon2<'static>,
    /// The parameters `argon2` was built with (it offers no getter).
    params: Params,
    /// PHC string of a random password, hashed with `argon2`'s parameters; verified
    /// against when the user is unknown.
    dummy_hash: String,
    permits: Arc<Semaphore>,
    /// The share of `permits` that choosing a password (`hash`) may hold.
    choosing: Arc<Semaphore>,
    /// Callers of `hash` waiting for a `choosing` permit.
    choosing_waiting: AtomicUsize,
    /// Block matrices not in use; at most one per permit ever exists, since only a
    /// permit holder takes one (or makes one when none is free).
    memory: Mutex<Vec<Vec<Block>>>,
    /// Callers currently waiting for a permit (not those running).
    waiting: AtomicUsize,
    limits: Argon2Limits,
}

impl fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = &self.inner.params;
        f.debug_struct("Argon2Hasher")
            .field("algorithm", &"argon2id")
            .field("m_cost_kib", &params.m_cost())
            .field("t_cost", &params.t_cost())
            .field("p_cost", &params.p_cost())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Argon2Hasher {
    /// Argon2id with the default (OWASP minimum) parameters and default [`Argon2Limits`].
    /// Computes the dummy hash, so it takes one hash's time (about 40 ms); call it once at
    /// start-up.
    ///
    /// # Errors
    /// [`Argon2SetupError`] if the dummy hash cannot be computed.
    pub fn new() -> Result<Self, Argon2SetupError> {
        Self::with_config(Params::DEFAULT, Argon2Limits::default())
    }

    /// Argon2id with other parameters (cheap ones in tests) and default [`Argon2Limits`].
    ///
    /// # Errors
    /// As [`Argon2Hasher::new`].
    pub fn with_params(params: Params) -> Result<Self, Argon2SetupError> {
        Self::with_config(params, Argon2Limits::default())
    }

    /// Argon2id with the given parameters and limits.
    ///
    /// # Errors
    /// [`Argon2SetupError::NoPermits`] for `permits == 0`; otherwise as [`Argon2Hasher::new`].
    pub fn with_config(params: Params, limits: Argon2Limits) -> Result<Self, Argon2SetupError> {
        if limits.permits == 0 {
            return Err(Argon2SetupError::NoPermits);
        }
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());

        let mut random_password = [0u8; 32];
        OsRng.fill_bytes(&mut random_password);
        let mut memory = Vec::new();
        let dummy_hash = hash_phc(&argon2, &params, &random_password, &mut memory)
            .map_err(Argon2SetupError::DummyHash)?;

        let permits = limits.permits.min(Semaphore::MAX_PERMITS);
        Ok(Self {
            inner: Arc::new(Inner {
                argon2,
                params,
                dummy_hash,
                permits: Arc::new(Semaphore::new(permits)),
                choosing: Arc::new(Semaphore::new(choosing_share(permits))),
                choosing_waiting: AtomicUsize::new(0),
                memory: Mutex::new(vec![memory]),
                waiting: AtomicUsize::new(0),
                limits: Argon2Limits { permits, ..limits },
            }),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> Argon2Limits {
        self.inner.limits
    }

    /// Takes a permit at once if one is free, else waits for one if the queue has room,
    /// else refuses.
    async fn acquire(&self) -> Result<OwnedSemaphorePermit, HashError> {
        acquire_from(
            &self.inner.permits,
            &self.inner.waiting,
            self.inner.limits.max_queue,
        )
        .await
    }

    /// Runs `work` on the blocking pool under a permit, with a block matrix to compute in.
    /// `share`, if any, is held as long as the permit (until the computation ends).
    async fn run<T, F>(&self, share: Option<OwnedSemaphorePermit>, work: F) -> Result<T, HashError>
    where
        F: FnOnce(&Inner, &mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.acquire().await?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // Held until the computation ends, whether or not anyone still awaits it; the
            // permit is given back before the share (locals drop in reverse order), so a
            // registration taking the freed share never finds another's permit still held.
            let _share = share;
            let _permit = permit;
            yield_to_requests();
            let mut memory = inner.take_memory();
            let result = work(&inner, &mut memory);
            inner.put_memory(memory);
            result
        })
        .await
        .map_err(|e| {
            HashError::Unexpected(anyhow::Error::new(e).context("password hashing task failed"))
        })?
    }
}

impl Inner {
    /// A kept block matrix, or an empty one to grow (the first hashes after start).
    fn take_memory(&self) -> Vec<Block> {
        self.memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn put_memory(&self, memory: Vec<Block>) {
        self.memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(memory);
    }
}

/// Argon2 of `password` with `salt` under `argon2` (built with `params`), computed in
/// `memory`, which grows to the parameters' block count if it is smaller: exactly what
/// `argon2`'s `PasswordHasher::hash_password` computes, without allocating the matrix.
fn compute(
    argon2: &Argon2<'_>,
    params: &argon2::Params,
    password: &[u8],
    salt: Salt<'_>,
    memory: &mut Vec<Block>,
) -> password_hash::Result<Output> {
    let mut salt_buffer = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buffer)?;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    Output::init_with(output_len, |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])?)
    })
}

/// A new PHC string for `password`, with a fresh random salt: the same string as
/// `argon2.hash_password(password, &salt)`.
fn hash_phc(
    argon2: &Argon2<'_>,
    params: &argon2::Params,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> password_hash::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let output = compute(argon2, params, password, salt.as_salt(), memory)?;
    let phc = password_hash::PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a parsed PHC string under the algorithm, version and
/// parameters it records, comparing in constant time: `argon2`'s `PasswordVerifier`,
/// computed in `memory`. `Err(Error::Password)` is a wrong password.
fn verify_phc(
    password: &[u8],
    stored: &password_hash::PasswordHash<'_>,
    memory: &mut Vec<Block>,
) -> password_hash::Result<()> {
    let (Some(salt), Some(expected)) = (stored.salt, &stored.hash) else {
        return Err(password_hash::Error::Password);
    };
    let algorithm = Algorithm::try_from(stored.algorithm)?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(stored)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let computed = compute(&argon2, &params, password, salt, memory)?;
    // `Output`'s equality is constant-time.
    if &computed == expected {
        Ok(())
    } else {
        Err(password_hash::Error::Password)
    }
}

/// How much lower than the server's own threads a hashing thread runs (a nice value).
#[cfg(target_os = "linux")]
const HASHING_NICENESS: i32 = 19;

/// Lowers this thread's scheduling priority to [`HASHING_NICENESS`] (the lowest), once
/// per thread: under CPU contention the kernel's fair scheduler weighs a nice-19 thread
/// at 15 against 1024 for the executor threads (authenticated requests), so a login storm
/// takes the CPU that requests leave over instead of half of it; on an idle machine a
/// hash still gets a whole core. Measured with `bench/run.sh` (2 cores): the read p99
/// during a login storm went from 2.5x its idle value to 1.1x, logins alone unchanged. Linux nice values are per thread. The thread is one of tokio's blocking
/// pool and keeps the lower priority for whatever blocking work it runs later (in this
/// server: only hashing). Best effort: a failure is logged once per thread and hashing
/// goes on at normal priority.
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    {
        thread_local! {
            static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if LOWERED.with(std::cell::Cell::get) {
            return;
        }
        LOWERED.with(|lowered| lowered.set(true));
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), HASHING_NICENESS) {
            tracing::warn!(error = %e, "cannot lower the priority of a password hashing thread");
        }
    }
}

/// A place in the wait queue, given back on drop.
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    fn take(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn semaphore_closed() -> HashError {
    HashError::Unexpected(anyhow::anyhow!("password hasher semaphore closed"))
}

/// How many of `permits` choosing passwords may hold: half, at least one.
fn choosing_share(permits: usize) -> usize {
    (permits / 2).max(1)
}

/// Takes a permit of `semaphore` at once if one is free, else waits for one if fewer than
/// `max_queue` callers wait (counted in `waiting`), else refuses.
async fn acquire_from(
    semaphore: &Arc<Semaphore>,
    waiting: &AtomicUsize,
    max_queue: usize,
) -> Result<OwnedSemaphorePermit, HashError> {
    match Arc::clone(semaphore).try_acquire_owned() {
        Ok(permit) => return Ok(permit),
        Err(TryAcquireError::NoPermits) => {}
        Err(TryAcquireError::Closed) => return Err(semaphore_closed()),
    }
    let Some(_place) = QueuePlace::take(waiting, max_queue) else {
        tracing::debug!("password hasher overloaded; refusing");
        return Err(HashError::Overloaded);
    };
    // Dropping this future (caller cancelled) drops `_place`, leaving the queue.
    Arc::clone(semaphore)
        .acquire_owned()
        .await
        .map_err(|_| semaphore_closed())
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &PasswordInput) -> Result<PasswordHash, HashError> {
        // The share of choosing a password first: held until the hash is done, so no more
        // than that share of the permits ever goes to registrations.
        let share = match Arc::clone(&self.inner.choosing).try_acquire_owned() {
            Ok(share) => share,
            Err(TryAcquireError::Closed) => return Err(semaphore_closed()),
            Err(TryAcquireError::NoPermits) => {
                // Waiting for the share is waiting for the hasher: it takes a place in
                // the hasher's queue as well as in the share's own, shorter one.
                let Some(_place) =
                    QueuePlace::take(&self.inner.waiting, self.inner.limits.max_queue)
                else {
                    tracing::debug!("password hasher overloaded; refusing a registration");
                    return Err(HashError::Overloaded);
                };
                acquire_from(
                    &self.inner.choosing,
                    &self.inner.choosing_waiting,
                    (self.inner.limits.max_queue / 4).max(1),
                )
                .await?
            }
        };
        let password = password.clone();
        self.run(Some(share), move |inner, memory| {
            hash_phc(
                &inner.argon2,
                &inner.params,
                password.expose().as_bytes(),
                memory,
            )
            .map(PasswordHash::new)
            .map_err(|e| HashError::Unexpected(anyhow::Error::new(e).context("hashing a password")))
        })
        .await
    }

    async fn verify(
        &self,
        password: &PasswordInput,
        hash: Option<PasswordHash>,
    ) -> Result<bool, HashError> {
        let password = password.clone();
        self.run(None, move |inner, memory| {
            let (stored, known_user) = match &hash {
                Some(hash) => (hash.as_str(), true),
                None => (inner.dummy_hash.as_str(), false),
            };
            let parsed = password_hash::PasswordHash::new(stored).map_err(|e| {
                HashError::Unexpected(
                    anyhow::Error::new(e).context("stored password hash is malformed"),
                )
            })?;
            // A PHC string may legally omit salt and output, and `verify_password` would
            // then answer "wrong password". A stored hash without them is corrupt data.
            if parsed.salt.is_none() || parsed.hash.is_none() {
                return Err(HashError::Unexpected(anyhow::anyhow!(
                    "stored password hash has no salt or no output"
                )));
            }
            // Uses the algorithm and parameters recorded in `stored`; compares in constant time.
            match verify_phc(password.expose().as_bytes(), &parsed, memory) {
                Ok(()) => Ok(known_user),
                Err(password_hash::Error::Password) => Ok(false),
                Err(e) => Err(HashError::Unexpected(
                    anyhow::Error::new(e).context("verifying a password"),
                )),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests;
