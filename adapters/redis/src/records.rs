//! What is stored as JSON, and how it reads back: the records of users, todos,
//! notifications and dead letters. Private to this adapter. Where an older version wrote a
//! record differently, its type says how such a record reads today.
//!
//! A session is a hash, not a record: its fields are read where its scripts answer
//! (`sessions`).

use std::time::Duration;

use application::ports::{DeadLetter, StoreError};
use domain::{
    Notification, NotificationId, NotificationKind, PasswordHash, PhoneNumber, Sms, Timestamp,
    Todo, TodoId, TodoTitle, User, UserId, Username,
};
use serde::{Deserialize, Serialize};

use crate::errors::corrupt;

/// Seconds since the Unix epoch, for the scripts that prune what expired (session ids,
/// login challenges).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A duration in whole milliseconds, as Redis takes it (`PX`, script arguments).
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A record as the JSON stored.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Unexpected(e.into()))
}

/// Stored user record. Private to this adapter.
#[derive(Serialize, Deserialize)]
pub(crate) struct UserRecord {
    id: UserId,
    username: String,
    password_hash: String,
    pub(crate) phone: Option<String>,
    /// Absent in records written before phones were verified: they read as unverified.
    #[serde(default)]
    pub(crate) phone_verified: bool,
    created_at: i64,
    /// Absent in records written before passwords could be changed, and until one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password_changed_at: Option<i64>,
}

impl UserRecord {
    pub(crate) fn from_user(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.to_string(),
            password_hash: user.password_hash.as_str().to_owned(),
            phone: user.phone.as_ref().map(|p| p.as_str().to_owned()),
            phone_verified: user.phone_verified,
            created_at: user.created_at.unix_seconds(),
            password_changed_at: user.password_changed_at.map(Timestamp::unix_seconds),
        }
    }

    fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: self.id,
            username: Username::parse(&self.username).map_err(corrupt)?,
            password_hash: PasswordHash::new(self.password_hash),
            phone: self
                .phone
                .as_deref()
                .map(PhoneNumber::parse)
                .transpose()
                .map_err(corrupt)?,
            phone_verified: self.phone_verified,
            created_at: Timestamp::from_unix_seconds(self.created_at),
            password_changed_at: self.password_changed_at.map(Timestamp::from_unix_seconds),
        })
    }
}

pub(crate) fn parse_user(raw: &str) -> Result<User, StoreError> {
    serde_json::from_str::<UserRecord>(raw)
        .map_err(corrupt)?
        .into_user()
}

/// Stored todo record (after the `<seq>|` prefix). Private to this adapter.
#[derive(Serialize, Deserialize)]
pub(crate) struct TodoRecord {
    id: TodoId,
    title: String,
    completed: bool,
    created_at: i64,
    updated_at: i64,
}

impl TodoRecord {
    pub(crate) fn from_todo(todo: &Todo) -> Self {
        Self {
            id: todo.id,
            title: todo.title.as_str().to_owned(),
            completed: todo.completed,
            created_at: todo.created_at.unix_seconds(),
            updated_at: todo.updated_at.unix_seconds(),
        }
    }

    fn into_todo(self, user_id: UserId) -> Result<Todo, StoreError> {
        Ok(Todo {
            id: self.id,
            user_id,
            // `restore`: a title stored before today's input rules stays readable.
            title: TodoTitle::restore(&self.title).map_err(corrupt)?,
            completed: self.completed,
            created_at: Timestamp::from_unix_seconds(self.created_at),
            updated_at: Timestamp::from_unix_seconds(self.updated_at),
        })
    }
}

/// A todo from its record JSON (no sequence prefix).
pub(crate) fn parse_record(json: &str, user: UserId) -> Result<Todo, StoreError> {
    serde_json::from_str::<TodoRecord>(json)
        .map_err(corrupt)?
        .into_todo(user)
}

/// Splits `<seq>|<JSON>` into its insertion number and todo.
pub(crate) fn parse_todo(raw: &str, user: UserId) -> Result<(u64, Todo), StoreError> {
    let (seq, json) = raw
        .split_once('|')
        .ok_or_else(|| corrupt("todo record without sequence"))?;
    let seq = seq.parse().map_err(corrupt)?;
    Ok((seq, parse_record(json, user)?))
}

/// Stored notification. Private to this adapter. Records written before notifications had
/// kinds hold a `todo_id` and no `code_expires_at`: they read as todo notifications.
#[derive(Serialize, Deserialize)]
pub(crate) struct NotificationRecord {
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
    pub(crate) fn from_notification(n: &Notification) -> Self {
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

    pub(crate) fn into_notification(self) -> Result<Notification, StoreError> {
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

/// Stored dead letter: the notification as it was last tried, and why it failed.
#[derive(Serialize, Deserialize)]
pub(crate) struct DeadLetterRecord {
    notification: NotificationRecord,
    error: String,
    failed_at: i64,
}

impl DeadLetterRecord {
    pub(crate) fn from_dead_letter(dead: &DeadLetter) -> Self {
        Self {
            notification: NotificationRecord::from_notification(&dead.notification),
            error: dead.error.clone(),
            failed_at: dead.failed_at.unix_seconds(),
        }
    }

    pub(crate) fn into_dead_letter(self) -> Result<DeadLetter, StoreError> {
        Ok(DeadLetter {
            notification: self.notification.into_notification()?,
            error: self.error,
            failed_at: Timestamp::from_unix_seconds(self.failed_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use domain::ids::Uuid;

    use super::*;

    /// Titles are read back under the rules they were written with: one stored before
    /// bidi controls were refused on input must not turn the whole list into a 500.
    #[test]
    fn a_title_stored_under_older_rules_reads_back() {
        let title = "invoice \u{202E}fdp.exe";
        assert!(TodoTitle::parse(title).is_err(), "refused as input today");
        let record = TodoRecord {
            id: TodoId::from_uuid(Uuid::from_u128(1)),
            title: title.to_owned(),
            completed: false,
            created_at: 0,
            updated_at: 0,
        };
        let todo = record
            .into_todo(UserId::from_uuid(Uuid::from_u128(2)))
            .expect("readable");
        assert_eq!(todo.title.as_str(), title);
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
