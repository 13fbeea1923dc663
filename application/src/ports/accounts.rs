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
    /// with a new password hash) and ends every session of the user but `keep` (all of
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
