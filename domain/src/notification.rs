//! Notifications: the SMS a user receives when a todo is created from their account.
//!
//! A notification is recorded in an outbox in the same store as the todo and delivered
//! by a background worker, so the todo is acknowledged whatever happens to the SMS, and
//! the SMS is delivered at least once or recorded as failed.

use crate::{NotificationId, PhoneNumber, Timestamp, TodoId, UserId, Username};

/// One text message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sms {
    pub to: PhoneNumber,
    pub text: String,
}

impl Sms {
    /// The seed tutorial's message, word for word.
    pub fn todo_created(username: &Username, to: PhoneNumber) -> Self {
        Self {
            to,
            text: format!("Dear {username}, a todo was created from your account just now."),
        }
    }
}

/// An outbox entry: an SMS to deliver, and what became of earlier attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub id: NotificationId,
    pub user_id: UserId,
    /// The todo whose creation this announces; delivery is skipped if it never came to be.
    pub todo_id: TodoId,
    pub sms: Sms,
    /// Delivery attempts made so far.
    pub attempts: u32,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_the_seeds() {
        let sms = Sms::todo_created(
            &Username::parse("victor").expect("valid"),
            PhoneNumber::parse("+4915112345678").expect("valid"),
        );
        assert_eq!(
            sms.text,
            "Dear victor, a todo was created from your account just now."
        );
    }
}
