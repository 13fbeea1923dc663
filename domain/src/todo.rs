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

/// 1 to 200 characters, surrounding whitespace trimmed, at least one of them visible,
/// and nothing that makes a title read differently from what it holds: no control
/// characters, no bidi controls (U+202E can show `exe.txt` for `txt.exe`), no invisible
/// format characters (zero-width spaces, tag characters hiding ASCII). Ordinary text of
/// any script works, emoji sequences included: U+200D ZERO WIDTH JOINER (👩‍💻), U+200C
/// ZERO WIDTH NON-JOINER (Persian), variation selectors and subdivision flags (🏴 of
/// England) are allowed.
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
    #[error(
        "title must not contain bidirectional control characters (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069): they make text display in a different order than it is written"
    )]
    BidiControl,
    #[error(
        "title must not contain invisible formatting characters such as U+200B ZERO WIDTH SPACE, U+2060 WORD JOINER or tag characters"
    )]
    InvisibleCharacter,
    #[error(
        "title must contain at least one visible character (a letter, digit, punctuation mark or symbol)"
    )]
    NothingVisible,
}

impl TodoTitle {
    pub const MAX_CHARS: usize = 200;

    /// A title from a client, under every rule above.
    ///
    /// # Errors
    /// The first rule the title breaks.
    pub fn parse(raw: &str) -> Result<Self, TodoTitleError> {
        let title = Self::restore(raw)?;
        let mut tags = crate::text::TagSequence::default();
        let mut visible = false;
        for c in title.0.chars() {
            let in_tag_sequence = tags
                .next(c)
                .map_err(|()| TodoTitleError::InvisibleCharacter)?;
            if in_tag_sequence {
                continue;
            }
            if crate::text::is_bidi_control(c) {
                return Err(TodoTitleError::BidiControl);
            }
            if crate::text::is_invisible_format(c) {
                return Err(TodoTitleError::InvisibleCharacter);
            }
            visible |= crate::text::is_visible(c);
        }
        tags.finish()
            .map_err(|()| TodoTitleError::InvisibleCharacter)?;
        if !visible {
            return Err(TodoTitleError::NothingVisible);
        }
        Ok(title)
    }

    /// A title read back from a store, under the rules it was written with before the
    /// invisible-character rules existed (non-empty, trimmed, bounded, no control
    /// characters): a todo stored earlier stays readable, while every title a client
    /// sends now goes through [`TodoTitle::parse`]. Never for input.
    ///
    /// # Errors
    /// [`TodoTitleError::Empty`], [`TodoTitleError::TooLong`] or
    /// [`TodoTitleError::ControlCharacter`].
    pub fn restore(stored: &str) -> Result<Self, TodoTitleError> {
        let trimmed = stored.trim();
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

    #[test]
    fn titles_refuse_bidi_controls() {
        for c in ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}']
            .into_iter()
            .chain(['\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'])
            .chain(['\u{200E}', '\u{200F}', '\u{061C}'])
        {
            let title = format!("invoice {c}fdp.exe");
            assert_eq!(
                TodoTitle::parse(&title),
                Err(TodoTitleError::BidiControl),
                "{title:?}"
            );
        }
    }

    #[test]
    fn titles_refuse_invisible_characters() {
        for title in [
            "pay\u{200B}pal",
            "a\u{2060}b",
            "\u{FEFF}bom",
            "soft\u{00AD}hyphen",
            "x\u{2062}y",
            "hangul\u{3164}filler",
            // ASCII smuggled in tag characters ("hi"), and a flag sequence left open.
            "buy milk\u{E0068}\u{E0069}",
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}",
        ] {
            assert_eq!(
                TodoTitle::parse(title),
                Err(TodoTitleError::InvisibleCharacter),
                "{title:?}"
            );
        }
        for title in ["\u{200D}", "\u{200D}\u{FE0F}\u{0301}", "\u{200C}"] {
            assert_eq!(
                TodoTitle::parse(title),
                Err(TodoTitleError::NothingVisible),
                "{title:?}"
            );
        }
    }

    #[test]
    fn titles_keep_ordinary_text_of_any_script_and_emoji() {
        for title in [
            "Buy milk",
            "Équipe: réunion à 10h",
            "買牛奶",
            "اشتري الحليب",
            "שלום עולם",
            "می\u{200C}خواهم",               // ZWNJ in Persian
            "code review 👩\u{200D}💻",      // ZWJ emoji sequence
            "family 👨\u{200D}👩\u{200D}👧", // ZWJ emoji sequence
            "❤\u{FE0F} and ✔\u{FE0E}",       // variation selectors
            "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} vs 🏴 ", // flag of England
            "🇩🇪 Berlin",
        ] {
            assert_eq!(
                TodoTitle::parse(title).map(|t| t.as_str().to_owned()),
                Ok(title.trim().to_owned()),
                "{title:?}"
            );
        }
    }

    #[test]
    fn stored_titles_stay_readable_under_the_older_rules() {
        let stored = "invoice \u{202E}fdp.exe";
        assert_eq!(TodoTitle::parse(stored), Err(TodoTitleError::BidiControl));
        assert_eq!(
            TodoTitle::restore(stored).map(|t| t.as_str().to_owned()),
            Ok(stored.to_owned())
        );
        assert_eq!(TodoTitle::restore(" "), Err(TodoTitleError::Empty));
        assert_eq!(
            TodoTitle::restore("a\nb"),
            Err(TodoTitleError::ControlCharacter)
        );
    }
}
