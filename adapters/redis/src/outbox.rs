//! The SMS outbox over Redis: every key under the hash tag `{outbox}`, so one master
//! holds the whole queue and enqueue, claim, complete, retry and dead-letter each stay one
//! atomic step.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `{outbox}:due` | sorted set | pending notification ids scored by when they are next due | never |
//! | `{outbox}:messages` | hash | notification id -> JSON (SMS, attempts) | removed when done |
//! | `{outbox}:dead` | hash | notification id -> JSON (notification, last error) | never |
//! | `{outbox}:sent:<id>` | string | the provider's receipt (`message_uuid`) | 7 days |

use std::sync::LazyLock;
use std::time::Duration;

use application::ports::{DeadLetter, Outbox, StoreError};
use async_trait::async_trait;
use domain::{Notification, NotificationId, PhoneNumber, Sms, Timestamp, TodoId, UserId};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use crate::{RedisStore, corrupt, json};

const DUE: &str = "{outbox}:due";
const MESSAGES: &str = "{outbox}:messages";
const DEAD: &str = "{outbox}:dead";
/// How long a delivery receipt is kept.
const RECEIPT_TTL_SECS: u64 = 7 * 24 * 3600;

/// KEYS: due, messages. ARGV: now, lease end. Leases the oldest due message.
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("outbox/claim.lua")));

/// Stored notification. Private to this adapter.
#[derive(Serialize, Deserialize)]
struct NotificationRecord {
    id: NotificationId,
    user_id: UserId,
    todo_id: TodoId,
    to: String,
    text: String,
    attempts: u32,
    created_at: i64,
}

impl NotificationRecord {
    fn from_notification(n: &Notification) -> Self {
        Self {
            id: n.id,
            user_id: n.user_id,
            todo_id: n.todo_id,
            to: n.sms.to.as_str().to_owned(),
            text: n.sms.text.clone(),
            attempts: n.attempts,
            created_at: n.created_at.unix_seconds(),
        }
    }

    fn into_notification(self) -> Result<Notification, StoreError> {
        Ok(Notification {
            id: self.id,
            user_id: self.user_id,
            todo_id: self.todo_id,
            sms: Sms {
                to: PhoneNumber::parse(&self.to).map_err(corrupt)?,
                text: self.text,
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
        self.run(|mut conn| async move {
            redis::pipe()
                .atomic()
                .hset(MESSAGES, &id, record)
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
                    .key(MESSAGES)
                    .arg(now.unix_seconds())
                    .arg(lease_end)
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
        self.run(|mut conn| async move {
            redis::pipe()
                .atomic()
                .zrem(DUE, &id)
                .ignore()
                .hdel(MESSAGES, &id)
                .ignore()
                .hset(DEAD, &id, record)
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
            MESSAGES.to_owned(),
            DEAD.to_owned(),
            format!("{{outbox}}:sent:{}", Uuid::from_u128(9)),
        ];
        for key in &outbox {
            assert_eq!(Slot::for_key(key), Slot::for_key(DUE), "{key}");
        }
    }
}
