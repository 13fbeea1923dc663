//! [`IdempotencyStore`] in process: registrations' idempotency keys, kept until they expire.

use std::time::Duration;

use application::ports::{IdempotencyRecord, IdempotencyStore, StoreError};
use async_trait::async_trait;
use domain::IdempotencyKey;

use crate::{MemoryStore, Remembered};

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim_registration(
        &self,
        key: &IdempotencyKey,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<IdempotencyRecord, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let kept = state
            .registration_keys
            .entry(key.clone())
            .and_modify(|kept| {
                if kept.expires_at.has_passed(now) {
                    *kept = Remembered {
                        value: record.clone(),
                        expires_at: now.plus(ttl),
                    };
                }
            })
            .or_insert_with(|| Remembered {
                value: record.clone(),
                expires_at: now.plus(ttl),
            });
        Ok(kept.value.clone())
    }
}
