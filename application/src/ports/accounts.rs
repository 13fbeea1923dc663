//! Whole-account steps: a new password (ending sessions with it) and deleting an account.

use async_trait::async_trait;

use domain::{SessionId, User};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

use super::store::StoreError;

/// The result of an [`AccountStore`] step, which acts only on the user record as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountWrite<T> {
    /// Done; with what the step reports.
    Done(T),
    /// The stored record is no longer the one read (a phone change, another password
    /// change in between): nothing was done. Read it again and decide again.
    Changed,
    /// The user does not exist (any more): nothing was done.
    Gone,
}

/// Steps that change a whole account at once, each atomic in the store.
///
/// Both act on a user record *as read* (compare and set): a step whose record changed in
/// between does nothing and says so, so a decision taken on the record (the password was
/// checked against its hash) is never applied to a different one.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// In one atomic step: replaces the user record `read` by `updated` (the same user
    /// with a new password hash), drops the user's pending login challenges (they were
    /// issued on the old password) and ends every session of the user but `keep` (all of
    /// them with `None`). Returns how many sessions ended.
    ///
    /// A lost reply may have done it all: the caller's retry then finds the record
    /// changed ([`AccountWrite::Changed`]), and reads it again.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn set_password(
        &self,
        read: &User,
        updated: &User,
        keep: Option<SessionId>,
    ) -> Result<AccountWrite<u64>, StoreError>;

    /// Deletes the account `read`: the user record, its todos, sessions, pending codes,
    /// per-user counters and idempotency records, then frees its username. Every token of
    /// the account fails at once on every replica (its sessions are gone).
    ///
    /// A lost reply may have done it: a retry then finds the user gone
    /// ([`AccountWrite::Gone`]). A process that dies after the data went and before the
    /// name was freed leaves the name held by nobody's id; registration takes such a name
    /// over.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn delete_account(&self, read: &User) -> Result<AccountWrite<()>, StoreError>;
}

/// What [`PasswordResets::finish_reset`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetCheck {
    /// The code matched: the password is the new one, the code is spent and every
    /// session of the user ended (this many). Also the answer, changing nothing
    /// (`ended: 0`), to the code that was spent presented again while it is unexpired: the
    /// retry of a reset whose reply was lost.
    Reset { ended: u64 },
    /// The code did not match; counted. `attempts_left` more may be tried (0: it is dead).
    Wrong { attempts_left: u32 },
    /// No live code: none asked for, expired, spent, replaced, or too many wrong tries.
    NoCode,
    /// The code matched but the user record is no longer the one read: nothing was done
    /// (not even counted). Read it again and decide again.
    Changed,
}

/// Password resets: one pending code per user, texted to their verified number and kept
/// only as its keyed digest ([`super::CodeDigest`]).
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait PasswordResets: Send + Sync {
    /// Makes `code` the user's one pending reset code, replacing any earlier one (nothing
    /// piles up). `false`, storing nothing, when the user does not exist.
    ///
    /// # Errors
    /// [`StoreError`] on store failure (the code may be stored; asking again replaces it).
    async fn start_reset(&self, code: &super::PendingCode) -> Result<bool, StoreError>;

    /// In one atomic step: checks `digest` against the user's pending reset code at
    /// `now`, and on a match replaces the user record `read` by `updated` (the new
    /// password), spends the code, and ends **every** session and pending login challenge
    /// of the user.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the reset may have happened, and a retry with the
    /// same code answers [`ResetCheck::Reset`] again without doing it twice.
    async fn finish_reset(
        &self,
        read: &User,
        digest: &super::CodeDigest,
        updated: &User,
        now: domain::Timestamp,
    ) -> Result<ResetCheck, StoreError>;
}
