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
//! **Fair claims** (`outbox/claim.lua`): a message that falls due moves from `due` into
//! `ready` with a round one more than the later of the current round and its user's last
//! round, and a claim takes the lowest round. Round robin over users, in one script with
//! fixed, declared keys (no per-user key a script would have to discover): a user with a
//! thousand due messages holds rounds far ahead, and another user's message lands in the
//! next round. A claimed message goes back into `due`, scored by its lease end.

use std::sync::LazyLock;
use std::time::Duration;

use application::ports::{DeadLetter, Outbox, StoreError};
use async_trait::async_trait;
use domain::{
    Notification, NotificationId, NotificationKind, PhoneNumber, Sms, Timestamp, TodoId, UserId,
};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use crate::{RedisStore, corrupt, json};

const DUE: &str = "{outbox}:due";
const READY: &str = "{outbox}:ready";
const ROUNDS: &str = "{outbox}:rounds";
const ROUND: &str = "{outbox}:round";
const MESSAGES: &str = "{outbox}:messages";
const DEAD: &str = "{outbox}:dead";
const DEAD_AT: &str = "{outbox}:dead_at";
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

/// Stored notification. Private to this adapter. Records written before notifications had
/// kinds hold a `todo_id` and no `code_expires_at`: they read as todo notifications.
#[derive(Serialize, Deserialize)]
struct NotificationRecord {
    id: NotificationId,
    /// The user, read by the claim script to claim round robin over users.
    user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    todo_id: Option<TodoId>,
    /// A phone code's expiry (unix s): the record is a code SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code_expires_at: Option<i64>,
    to: String,
    text: String,
    #[serde(default)]
    secret: bool,
    attempts: u32,
    created_at: i64,
}

impl NotificationRecord {
    fn from_notification(n: &Notification) -> Self {
        let (todo_id, code_expires_at) = match n.kind {
            NotificationKind::TodoCreated { todo_id } => (Some(todo_id), None),
            NotificationKind::PhoneCode { expires_at } => (None, Some(expires_at.unix_seconds())),
        };
        Self {
            id: n.id,
            user_id: n.user_id,
            todo_id,
            code_expires_at,
            to: n.sms.to.as_str().to_owned(),
            text: n.sms.text.clone(),
            secret: n.sms.secret,
            attempts: n.attempts,
            created_at: n.created_at.unix_seconds(),
        }
    }

    fn into_notification(self) -> Result<Notification, StoreError> {
        let kind = match (self.code_expires_at, self.todo_id) {
            (Some(expires_at), _) => NotificationKind::PhoneCode {
                expires_at: Timestamp::from_unix_seconds(expires_at),
            },
            (None, Some(todo_id)) => NotificationKind::TodoCreated { todo_id },
            (None, None) => return Err(corrupt("notification record of no kind")),
        };
        Ok(Notification {
            id: self.id,
            user_id: self.user_id,
            kind,
            sms: Sms {
                to: PhoneNumber::parse(&self.to).map_err(corrupt)?,
                text: self.text,
                secret: self.secret,
            },
            attempts: self.attempts,
            created_at: Timestamp::from_unix_seconds(self.created_at),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct DeadLetterRecord {
    notification: NotificationRecord,
    error: String,
    failed_at: i64,
}

#[async_trait]
impl Outbox for RedisStore {
    async fn enqueue(&self, notification: &Notification) -> Result<(), StoreError> {
        let record = json(&NotificationRecord::from_notification(notification))?;
        let id = notification.id.to_string();
        let due = notification.created_at.unix_seconds();
        // Enqueueing an id again replaces it (a retried request), never duplicates it.
        self.run(|mut conn| async move {
            redis::pipe()
                .atomic()
                .hset(MESSAGES, &id, record)
                .ignore()
                .zrem(READY, &id)
                .ignore()
                .zadd(DUE, &id, due)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await
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
                    .key(DUE)
                    .key(READY)
                    .key(MESSAGES)
                    .key(ROUNDS)
                    .key(ROUND)
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
        let (id, receipt) = (id.to_string(), receipt.to_owned());
        let receipt_key = format!("{{outbox}}:sent:{id}");
        self.run(|mut conn| async move {
            redis::pipe()
                .atomic()
                .zrem(DUE, &id)
                .ignore()
                .zrem(READY, &id)
                .ignore()
                .hdel(MESSAGES, &id)
                .ignore()
                .set_ex(receipt_key, receipt, RECEIPT_TTL_SECS)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    async fn retry(
        &self,
        notification: &Notification,
        due_at: Timestamp,
    ) -> Result<(), StoreError> {
        let record = json(&NotificationRecord::from_notification(notification))?;
        let id = notification.id.to_string();
        self.run(|mut conn| async move {
            redis::pipe()
                .atomic()
                .hset(MESSAGES, &id, record)
                .ignore()
                .zrem(READY, &id)
                .ignore()
                .zadd(DUE, &id, due_at.unix_seconds())
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    async fn dead_letter(&self, dead: &DeadLetter) -> Result<(), StoreError> {
        let record = json(&DeadLetterRecord {
            notification: NotificationRecord::from_notification(&dead.notification),
            error: dead.error.clone(),
            failed_at: dead.failed_at.unix_seconds(),
        })?;
        let id = dead.notification.id.to_string();
        let failed_at = dead.failed_at.unix_seconds();
        self.run(|mut conn| async move {
            redis::pipe()
                .atomic()
                .zrem(DUE, &id)
                .ignore()
                .zrem(READY, &id)
                .ignore()
                .hdel(MESSAGES, &id)
                .ignore()
                .hset(DEAD, &id, record)
                .ignore()
                .zadd(DEAD_AT, &id, failed_at)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let raw: Vec<String> = self
            .run(|mut conn| async move { conn.hvals(DEAD).await })
            .await?;
        let mut dead = raw
            .iter()
            .map(|r| {
                let record: DeadLetterRecord = serde_json::from_str(r).map_err(corrupt)?;
                Ok(DeadLetter {
                    notification: record.notification.into_notification()?,
                    error: record.error,
                    failed_at: Timestamp::from_unix_seconds(record.failed_at),
                })
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
                    .key(DEAD)
                    .key(DEAD_AT)
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

#[cfg(test)]
mod key_tests {
    use domain::ids::Uuid;
    use redis::cluster_routing::Slot;

    use super::*;

    /// Redis Cluster runs a script or a MULTI/EXEC only when all its keys share a slot.
    #[test]
    fn every_outbox_key_shares_one_slot() {
        let outbox = [
            DUE.to_owned(),
            READY.to_owned(),
            ROUNDS.to_owned(),
            ROUND.to_owned(),
            MESSAGES.to_owned(),
            DEAD.to_owned(),
            DEAD_AT.to_owned(),
            format!("{{outbox}}:sent:{}", Uuid::from_u128(9)),
        ];
        for key in &outbox {
            assert_eq!(Slot::for_key(key), Slot::for_key(DUE), "{key}");
        }
    }

    #[test]
    fn records_without_a_kind_read_as_todo_notifications() {
        // As written before notifications had kinds.
        let old = r#"{"id":"00000000-0000-4000-8000-000000000001","user_id":"00000000-0000-4000-8000-000000000002","todo_id":"00000000-0000-4000-8000-000000000003","to":"+4915112345678","text":"Dear alice, a todo was created from your account just now.","attempts":2,"created_at":1700000000}"#;
        let record: NotificationRecord = serde_json::from_str(old).expect("old record");
        let notification = record.into_notification().expect("valid");
        assert_eq!(
            notification.todo_id().map(|t| t.to_string()).as_deref(),
            Some("00000000-0000-4000-8000-000000000003")
        );
        assert!(!notification.sms.secret);
        assert_eq!(notification.attempts, 2);
    }
}
