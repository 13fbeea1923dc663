//! The SMS outbox over Redis: every key under the hash tag `{outbox}`, so one master
//! holds the whole queue and enqueue, claim, complete, retry and dead-letter each stay one
//! atomic step.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `{outbox}:due` | sorted set | notification ids not due yet (or leased), scored by when they are next due | never |
//! | `{outbox}:ready` | sorted set | due notification ids, scored by their fair round | never |
//! | `{outbox}:rounds` | hash | user id -> the round of their last ready message | while they have one |
//! | `{outbox}:round` | string | the round of the last claimed message | never |
//! | `{outbox}:messages` | hash | notification id -> JSON (kind, SMS, attempts) | removed when done |
//! | `{outbox}:dead` | hash | notification id -> JSON (notification, last error) | trimmed: `NOTIFY_DEAD_LETTER_RETENTION`, `NOTIFY_DEAD_LETTER_MAX` |
//! | `{outbox}:dead_at` | sorted set | dead notification ids scored by when they failed, to trim by | with its letter |
//! | `{outbox}:sent:<id>` | string | the provider's receipt (`message_uuid`) | 7 days |
//!
//! The keys are named in `keys`, the records (`NotificationRecord`, `DeadLetterRecord`) in
//! `records`.
//!
//! **Fair claims** (`lua/outbox_claim.lua`): a message that falls due moves from `due` into
//! `ready` with a round one more than the later of the current round and its user's last
//! round, and a claim takes the lowest round. Round robin over users, in one script with
//! fixed, declared keys (no per-user key a script would have to discover): a user with a
//! thousand due messages holds rounds far ahead, and another user's message lands in the
//! next round. A claimed message goes back into `due`, scored by its lease end.

use std::sync::LazyLock;
use std::time::Duration;

use application::ports::{DeadLetter, Outbox, StoreError};
use async_trait::async_trait;
use domain::{Notification, NotificationId, Timestamp};
use redis::{AsyncCommands, Script};

use crate::RedisStore;
use crate::errors::corrupt;
use crate::keys::{
    OUTBOX_DEAD, OUTBOX_DEAD_AT, OUTBOX_DUE, OUTBOX_MESSAGES, OUTBOX_READY, OUTBOX_ROUND,
    OUTBOX_ROUNDS, outbox_receipt_key,
};
use crate::records::{DeadLetterRecord, NotificationRecord, json};

/// How long a delivery receipt is kept.
const RECEIPT_TTL_SECS: u64 = 7 * 24 * 3600;
/// Most messages one claim moves from `due` into `ready`, and most dead letters one trim
/// removes per rule: bounded work per script, whatever the backlog.
const BATCH: usize = 100;
const TRIM_BATCH: usize = 1000;

/// KEYS: due, ready, messages, rounds, round. ARGV: now, lease end, batch.
static CLAIM: LazyLock<Script> = lua!(guarded: "lua/outbox_claim.lua");
/// KEYS: dead, dead_at. ARGV: failed before, most kept, batch.
static TRIM: LazyLock<Script> = lua!(freeing: "lua/outbox_trim.lua");

#[async_trait]
impl Outbox for RedisStore {
    async fn enqueue(&self, notification: &Notification) -> Result<(), StoreError> {
        // Enqueueing an id again replaces it (a retried request), never duplicates it.
        self.schedule(notification, notification.created_at).await
    }

    async fn claim(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<Notification>, StoreError> {
        let script = &*CLAIM;
        let lease_end = now.plus(lease).unix_seconds();
        let body: Option<String> = self
            .run(|mut conn| async move {
                script
                    .key(OUTBOX_DUE)
                    .key(OUTBOX_READY)
                    .key(OUTBOX_MESSAGES)
                    .key(OUTBOX_ROUNDS)
                    .key(OUTBOX_ROUND)
                    .arg(now.unix_seconds())
                    .arg(lease_end)
                    .arg(BATCH)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        body.map(|b| {
            serde_json::from_str::<NotificationRecord>(&b)
                .map_err(corrupt)?
                .into_notification()
        })
        .transpose()
    }

    async fn complete(&self, id: NotificationId, receipt: &str) -> Result<(), StoreError> {
        let mut pipe = dequeue(&id.to_string());
        pipe.set_ex(outbox_receipt_key(id), receipt, RECEIPT_TTL_SECS)
            .ignore();
        self.run(|mut conn| async move { pipe.query_async::<()>(&mut conn).await })
            .await
    }

    async fn retry(
        &self,
        notification: &Notification,
        due_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.schedule(notification, due_at).await
    }

    async fn dead_letter(&self, dead: &DeadLetter) -> Result<(), StoreError> {
        let record = json(&DeadLetterRecord::from_dead_letter(dead))?;
        let id = dead.notification.id.to_string();
        let mut pipe = dequeue(&id);
        pipe.hset(OUTBOX_DEAD, &id, record)
            .ignore()
            .zadd(OUTBOX_DEAD_AT, &id, dead.failed_at.unix_seconds())
            .ignore();
        self.run(|mut conn| async move { pipe.query_async::<()>(&mut conn).await })
            .await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let raw: Vec<String> = self
            .run(|mut conn| async move { conn.hvals(OUTBOX_DEAD).await })
            .await?;
        let mut dead = raw
            .iter()
            .map(|r| {
                serde_json::from_str::<DeadLetterRecord>(r)
                    .map_err(corrupt)?
                    .into_dead_letter()
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        dead.sort_by_key(|d| (d.failed_at, d.notification.id));
        Ok(dead)
    }

    async fn trim_dead_letters(
        &self,
        failed_before: Timestamp,
        keep_at_most: usize,
    ) -> Result<u64, StoreError> {
        let script = &*TRIM;
        let removed: u64 = self
            .run(|mut conn| async move {
                script
                    .key(OUTBOX_DEAD)
                    .key(OUTBOX_DEAD_AT)
                    .arg(failed_before.unix_seconds())
                    .arg(keep_at_most)
                    .arg(TRIM_BATCH)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(removed)
    }
}

impl RedisStore {
    /// Stores `notification` (replacing any earlier record of it) and makes it due at
    /// `due`, in one MULTI/EXEC: out of `ready`, into `due`. Enqueueing and retrying alike.
    async fn schedule(
        &self,
        notification: &Notification,
        due: Timestamp,
    ) -> Result<(), StoreError> {
        let record = json(&NotificationRecord::from_notification(notification))?;
        let id = notification.id.to_string();
        let due = due.unix_seconds();
        self.run(|mut conn| async move {
            redis::pipe()
                .atomic()
                .hset(OUTBOX_MESSAGES, &id, record)
                .ignore()
                .zrem(OUTBOX_READY, &id)
                .ignore()
                .zadd(OUTBOX_DUE, &id, due)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }
}

/// A MULTI/EXEC that starts by taking message `id` out of the queue (its places in `due`
/// and `ready`, and its record): what completing and dead-lettering share, each adding
/// what the message leaves behind.
fn dequeue(id: &str) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic()
        .zrem(OUTBOX_DUE, id)
        .ignore()
        .zrem(OUTBOX_READY, id)
        .ignore()
        .hdel(OUTBOX_MESSAGES, id)
        .ignore();
    pipe
}
