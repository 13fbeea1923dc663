//! Idempotency keys: what a client's key was first used for.

use async_trait::async_trait;
use std::time::Duration;

use domain::IdempotencyKey;
use domain::ids::Uuid;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

use super::store::StoreError;

/// An idempotency key and the request it was first used for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentWrite {
    pub key: IdempotencyKey,
    /// The request in canonical form (equal exactly when the requests mean the same).
    pub fingerprint: String,
    /// How long the key and its first answer are remembered.
    pub ttl: Duration,
}

/// A client's idempotency key for a registration, and what it was first used for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The first request, in canonical form.
    pub fingerprint: String,
    /// The id the first request chose for what it creates.
    pub resource: Uuid,
}

/// Idempotency keys of registrations, which span more than one store slot and so cannot
/// be decided in the same atomic step as the write (todos can: see
/// [`TodoRepository::insert`](super::TodoRepository::insert)). A key is claimed before the
/// write, naming the id the write will use; a retry finds the claim and finishes or replays
/// the same write.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Records `record` under `key` unless the key is already taken, atomically, and
    /// returns the record the key holds now (this one, or the one an earlier request
    /// stored). Kept for `ttl`.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the claim may or may not exist (a retry settles
    /// it).
    async fn claim_registration(
        &self,
        key: &IdempotencyKey,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<IdempotencyRecord, StoreError>;
}
