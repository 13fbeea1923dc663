//! Notifications: the SMS a user receives, when a todo is created from their account and
//! when they ask for a code to prove their phone number.
//!
//! A notification is recorded in an outbox in the same store as the data it announces and
//! delivered by a background worker, so a request is acknowledged whatever happens to the
//! SMS, and the SMS is delivered at least once or recorded as failed.

use std::fmt;
use std::time::Duration;

use crate::{NotificationId, PhoneCode, PhoneNumber, Timestamp, TodoId, UserId, Username};

/// One text message.
#[derive(Clone, PartialEq, Eq)]
pub struct Sms {
    pub to: PhoneNumber,
    pub text: String,
    /// The text holds a secret (a verification code): it goes to the provider and to no
    /// log, and `Debug` hides it.
    pub secret: bool,
}

impl Sms {
    /// The seed tutorial's message, word for word.
    pub fn todo_created(username: &Username, to: PhoneNumber) -> Self {
        Self {
            to,
            text: format!("Dear {username}, a todo was created from your account just now."),
            secret: false,
        }
    }

    /// The code that proves `to` is the user's, valid for `ttl` (said in whole minutes,
    /// rounded up).
    pub fn phone_code(code: &PhoneCode, to: PhoneNumber, ttl: Duration) -> Self {
        let minutes = ttl.as_secs().div_ceil(60).max(1);
        Self {
            to,
            text: format!(
                "Your jwt-todo verification code is {}. It expires in {minutes} min.",
                code.expose()
            ),
            secret: true,
        }
    }
}

impl Sms {
    /// The code that lets the holder of `to` choose a new password, valid for `ttl`.
    pub fn password_reset_code(code: &PhoneCode, to: PhoneNumber, ttl: Duration) -> Self {
        let minutes = ttl.as_secs().div_ceil(60).max(1);
        Self {
            to,
            text: format!(
                "Your jwt-todo password reset code is {}. It expires in {minutes} min. \
                 If you did not ask for it, ignore this message.",
                code.expose()
            ),
            secret: true,
        }
    }
}

impl fmt::Debug for Sms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: &dyn fmt::Debug = if self.secret {
            &"[REDACTED]"
        } else {
            &self.text
        };
        f.debug_struct("Sms")
            .field("to", &self.to)
            .field("text", text)
            .field("secret", &self.secret)
            .finish()
    }
}

/// What a notification announces, which decides when it is no longer worth sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationKind {
    /// A todo was created; delivery is skipped if the todo never came to be.
    TodoCreated { todo_id: TodoId },
    /// A code proving the user's phone; delivery is skipped once the code has expired.
    PhoneCode { expires_at: Timestamp },
}

/// An outbox entry: an SMS to deliver, and what became of earlier attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub id: NotificationId,
    pub user_id: UserId,
    pub kind: NotificationKind,
    pub sms: Sms,
    /// Delivery attempts made so far.
    pub attempts: u32,
    pub created_at: Timestamp,
}

impl Notification {
    /// The todo this announces, for a todo notification.
    pub fn todo_id(&self) -> Option<TodoId> {
        match self.kind {
            NotificationKind::TodoCreated { todo_id } => Some(todo_id),
            NotificationKind::PhoneCode { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("+4915112345678").expect("valid")
    }

    #[test]
    fn the_message_is_the_seeds() {
        let sms = Sms::todo_created(&Username::parse("victor").expect("valid"), phone());
        assert_eq!(
            sms.text,
            "Dear victor, a todo was created from your account just now."
        );
        assert!(!sms.secret);
        assert!(format!("{sms:?}").contains("Dear victor"));
    }

    #[test]
    fn a_code_message_holds_the_code_and_never_prints_it() {
        let code = PhoneCode::parse("042424").expect("valid");
        let sms = Sms::phone_code(&code, phone(), Duration::from_secs(600));
        assert_eq!(
            sms.text,
            "Your jwt-todo verification code is 042424. It expires in 10 min."
        );
        assert!(sms.secret);
        let notification = Notification {
            id: NotificationId::from_uuid(crate::ids::Uuid::from_u128(1)),
            user_id: UserId::from_uuid(crate::ids::Uuid::from_u128(2)),
            kind: NotificationKind::PhoneCode {
                expires_at: Timestamp::from_unix_seconds(600),
            },
            sms,
            attempts: 0,
            created_at: Timestamp::from_unix_seconds(0),
        };
        let printed = format!("{notification:?}");
        assert!(!printed.contains("042424"), "{printed}");
        assert_eq!(notification.todo_id(), None);
        // Minutes are rounded up, never shown as zero.
        let short = Sms::phone_code(&code, phone(), Duration::from_secs(61));
        assert!(short.text.ends_with("in 2 min."), "{}", short.text);
        let tiny = Sms::phone_code(&code, phone(), Duration::from_secs(1));
        assert!(tiny.text.ends_with("in 1 min."), "{}", tiny.text);
    }
}
