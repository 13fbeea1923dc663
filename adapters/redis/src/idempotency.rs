//! [`IdempotencyStore`] over Redis: a registration's key is one hash (`fingerprint`,
//! `resource`) claimed with `HSETNX` and kept for its lifetime.

use std::sync::LazyLock;
use std::time::Duration;

use application::ports::{IdempotencyRecord, IdempotencyStore, StoreError};
use async_trait::async_trait;
use domain::IdempotencyKey;
use redis::Script;

use crate::RedisStore;
use crate::errors::corrupt;
use crate::keys::registration_idempotency_key;
use crate::records::millis;

static CLAIM: LazyLock<Script> = lua!(guarded: "lua/claim_key.lua");

#[async_trait]
impl IdempotencyStore for RedisStore {
    async fn claim_registration(
        &self,
        key: &IdempotencyKey,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<IdempotencyRecord, StoreError> {
        let redis_key = registration_idempotency_key(key);
        let (fingerprint, resource) = (record.fingerprint.clone(), record.resource.to_string());
        let (held_fingerprint, held_resource): (Option<String>, Option<String>) = self
            .run(|mut conn| async move {
                CLAIM
                    .key(redis_key)
                    .arg(fingerprint)
                    .arg(resource)
                    .arg(millis(ttl).max(1))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        match (held_fingerprint, held_resource) {
            (Some(fingerprint), Some(resource)) => Ok(IdempotencyRecord {
                fingerprint,
                resource: resource.parse().map_err(corrupt)?,
            }),
            _ => Err(corrupt("idempotency record without its fields")),
        }
    }
}
