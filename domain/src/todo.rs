//! Todos. A todo always belongs to exactly one user, and every access goes through that
//! user's id, which is how ownership is checked on every path.

use crate::{Timestamp, TodoId, UserId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Todo {
    pub id: TodoId,
    pub user_id: UserId,
    pub title: TodoTitle,
    pub completed: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// 1 to 200 characters, surrounding whitespace trimmed, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TodoTitle(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TodoTitleError {
    #[error("title must not be empty")]
    Empty,
    #[error("title must be at most {max} characters long", max = TodoTitle::MAX_CHARS)]
    TooLong,
    #[error("title must not contain control characters")]
    ControlCharacter,
}

impl TodoTitle {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, TodoTitleError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(TodoTitleError::Empty);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(TodoTitleError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(TodoTitleError::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(
            TodoTitle::parse("  buy milk ").map(|t| t.as_str().to_owned()),
            Ok("buy milk".into())
        );
        assert_eq!(TodoTitle::parse("   "), Err(TodoTitleError::Empty));
        assert!(TodoTitle::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            TodoTitle::parse(&"é".repeat(201)),
            Err(TodoTitleError::TooLong)
        );
        assert_eq!(
            TodoTitle::parse("a\u{7}b"),
            Err(TodoTitleError::ControlCharacter)
        );
    }
}
