//! [`AuditLog`] over Redis: each account's trail is a stream under its hash tag
//! (`{u:<uid>}:events`), appended and trimmed (by count and by age) in one script, with
//! its noise budget (`{u:<uid>}:audit_noise`) counted in the same step. Entry ids are
//! Redis's (milliseconds and a sequence), so the trail is in the order Redis took the
//! events; the cursor of a page is the id of its last entry.

use std::sync::LazyLock;
use std::time::Duration;

use application::ports::{AuditCursor, AuditLog, AuditRetention, Page, StoreError};
use async_trait::async_trait;
use domain::{AuditEvent, AuditKind, SessionId, Timestamp, UserId};
use redis::Script;

use crate::RedisStore;
use crate::errors::corrupt;
use crate::keys::{audit_noise_key, events_key};
use crate::records::millis;

static APPEND: LazyLock<Script> = lua!(guarded: "lua/audit_prelude.lua", "lua/audit_append.lua");

/// The arguments `append_event` (`lua/audit_prelude.lua`) takes for `event`.
pub(crate) fn append_args(event: &AuditEvent, retention: AuditRetention) -> Vec<String> {
    vec![
        if event.kind.is_noise() { "1" } else { "0" }.to_owned(),
        retention.noise.max.to_string(),
        millis(retention.noise.window).max(1).to_string(),
        retention.max_events.max(1).to_string(),
        cutoff_ms(event.at, retention.max_age).to_string(),
        millis(retention.max_age).max(1).to_string(),
        "kind".into(),
        event.kind.as_str().into(),
        "at".into(),
        event.at.unix_seconds().to_string(),
        "session".into(),
        event.session_id.map(|s| s.to_string()).unwrap_or_default(),
        "client".into(),
        event.client.clone().unwrap_or_default(),
        "user_agent".into(),
        event.user_agent.clone().unwrap_or_default(),
        "detail".into(),
        event.detail.clone().unwrap_or_default(),
    ]
}

/// The first entry id `max_age` keeps at `now`, in milliseconds.
fn cutoff_ms(now: Timestamp, max_age: Duration) -> u64 {
    let now_ms = u64::try_from(now.unix_seconds())
        .unwrap_or(0)
        .saturating_mul(1000);
    now_ms.saturating_sub(millis(max_age))
}

/// An entry's fields as Redis answers them (`[name, value, name, value, ...]`).
struct Fields(Vec<String>);

impl Fields {
    /// The value of `name`, `None` when absent or empty.
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .chunks_exact(2)
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].clone())
            .filter(|value| !value.is_empty())
    }
}

#[async_trait]
impl AuditLog for RedisStore {
    async fn append(
        &self,
        user: UserId,
        event: &AuditEvent,
        retention: AuditRetention,
    ) -> Result<bool, StoreError> {
        let args = append_args(event, retention);
        let (stream, noise) = (events_key(user), audit_noise_key(user));
        let stored: i64 = self
            .run(|mut conn| {
                let (stream, noise, args) = (stream.clone(), noise.clone(), args.clone());
                async move {
                    APPEND
                        .key(stream)
                        .key(noise)
                        .arg(&args[..])
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(stored == 1)
    }

    async fn events(
        &self,
        user: UserId,
        before: Option<AuditCursor>,
        limit: usize,
        max_age: Duration,
        now: Timestamp,
    ) -> Result<Page<AuditEvent, AuditCursor>, StoreError> {
        let end = before.map_or_else(|| "+".to_owned(), |c| format!("({}", c.0));
        let start = cutoff_ms(now, max_age).to_string();
        let key = events_key(user);
        let reply: Vec<(String, Vec<String>)> = self
            .run(|mut conn| {
                let (key, end, start) = (key.clone(), end.clone(), start.clone());
                async move {
                    redis::cmd("XREVRANGE")
                        .arg(key)
                        .arg(end)
                        .arg(start)
                        .arg("COUNT")
                        .arg(limit + 1)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        let oldest = now.minus(max_age);
        let mut entries = Vec::with_capacity(reply.len());
        for (id, fields) in reply {
            let fields = Fields(fields);
            let kind = fields.get("kind").unwrap_or_default();
            let kind = AuditKind::parse(&kind)
                .ok_or_else(|| corrupt(format!("unknown audit event kind {kind:?}")))?;
            let at: i64 = fields
                .get("at")
                .unwrap_or_default()
                .parse()
                .map_err(corrupt)?;
            let session_id = fields
                .get("session")
                .map(|s| s.parse::<SessionId>())
                .transpose()
                .map_err(corrupt)?;
            let event = AuditEvent {
                kind,
                at: Timestamp::from_unix_seconds(at),
                session_id,
                client: fields.get("client"),
                user_agent: fields.get("user_agent"),
                detail: fields.get("detail"),
            };
            // Entry ids are Redis's clock, `at` is the server's: both hold the cutoff.
            if event.at >= oldest {
                entries.push((AuditCursor(id), event));
            }
        }
        Ok(Page::from_one_more(entries, limit))
    }
}
