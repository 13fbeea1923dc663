//! Unicode rules the value types share: normalization, and which characters a reader can
//! see. The tables are the Unicode Character Database as ICU4X compiles it in (pure data,
//! no I/O), so the rules follow Unicode's own properties instead of hand-listed ranges.
//!
//! - **Visible** means a letter, number, punctuation mark or symbol (general categories
//!   `L*`, `N*`, `P*`, `S*`) that is not `Default_Ignorable_Code_Point`. That leaves out
//!   whitespace, controls, format characters (zero-width space, bidi controls), combining
//!   marks on their own, and the few letters that render as nothing (the Hangul fillers,
//!   U+3164 and friends, are `Lo` but default-ignorable).
//! - **Bidi controls** are the `Bidi_Control` property: U+061C, U+200E, U+200F,
//!   U+202A..U+202E and U+2066..U+2069. They reorder the text around them, so what a
//!   reader sees is not what the string says ("Trojan Source", CVE-2021-42574).

use std::borrow::Cow;

use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::props::{
    BidiControl, DefaultIgnorableCodePoint, GeneralCategory, GeneralCategoryGroup,
};
use icu_properties::{CodePointMapData, CodePointSetData};

/// NFKC (UAX #15): one string for everything that reads the same, whatever the keyboard
/// or operating system sent (composed or decomposed accents, full-width forms, ligatures,
/// no-break spaces). Borrows when the text is already in NFKC, as ASCII always is.
pub(crate) fn nfkc(text: &str) -> Cow<'_, str> {
    ComposingNormalizerBorrowed::new_nfkc().normalize(text)
}

/// A character a reader sees: a letter, number, punctuation mark or symbol that is not
/// default-ignorable.
pub(crate) fn is_visible(c: char) -> bool {
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    let shown = GeneralCategoryGroup::Letter.contains(category)
        || GeneralCategoryGroup::Number.contains(category)
        || GeneralCategoryGroup::Punctuation.contains(category)
        || GeneralCategoryGroup::Symbol.contains(category);
    shown && !CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// One of the characters that override or embed text direction (`Bidi_Control`).
pub(crate) fn is_bidi_control(c: char) -> bool {
    CodePointSetData::new::<BidiControl>().contains(c)
}

/// A character that is there without being seen and that ordinary text does not need:
/// a format character (`Cf`: zero-width space, word joiner, soft hyphen, BOM, invisible
/// operators, tags ...) or any other default-ignorable code point (Hangul fillers,
/// Khmer inherent vowels ...).
///
/// Allowed, because real text needs them and they cannot hide anything on their own:
/// U+200D ZERO WIDTH JOINER (emoji sequences such as 👩‍💻, and Indic scripts), U+200C
/// ZERO WIDTH NON-JOINER (Persian and Indic orthography), the variation selectors
/// U+FE00..U+FE0F and U+E0100..U+E01EF (emoji vs. text presentation, CJK variants) and
/// the Mongolian free variation selectors U+180B..U+180D, U+180F. Tag characters
/// (U+E0020..U+E007F) are judged by the caller, which knows the sequence they are in.
pub(crate) fn is_invisible_format(c: char) -> bool {
    if matches!(
        c,
        '\u{200C}'
            | '\u{200D}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{E0100}'..='\u{E01EF}'
            | '\u{180B}'..='\u{180D}'
            | '\u{180F}'
    ) {
        return false;
    }
    CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// Emoji tag sequences (UTS #51 §2.8): U+1F3F4 WAVING BLACK FLAG, then tag characters
/// naming a region subdivision, then U+E007F CANCEL TAG. This is how the flags of
/// England, Scotland and Wales are written (`🏴` + `gbeng` in tags + cancel). Anywhere
/// else, tag characters are invisible ASCII: text a reader cannot see but a program (or
/// a language model) reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum TagSequence {
    /// Not in a tag sequence.
    #[default]
    Outside,
    /// Just after U+1F3F4: a tag sequence may start.
    AfterFlag,
    /// Inside one, after this many tag characters.
    Spec(usize),
}

/// What a tag sequence may hold: a subdivision id such as `gbeng` or `usca` (CLDR: two
/// region letters and one to four letters or digits).
const TAG_SPEC: std::ops::RangeInclusive<usize> = 3..=6;

impl TagSequence {
    /// Feeds the next character. `Ok(true)`: it belongs to a well-formed tag sequence
    /// (and needs no other check); `Ok(false)`: an ordinary character, for the caller to
    /// judge; `Err(())`: a tag character out of place, or a sequence cut short.
    pub(crate) fn next(&mut self, c: char) -> Result<bool, ()> {
        let is_spec = matches!(c, '\u{E0030}'..='\u{E0039}' | '\u{E0061}'..='\u{E007A}');
        match (*self, c) {
            (Self::AfterFlag, _) if is_spec => {
                *self = Self::Spec(1);
                Ok(true)
            }
            (Self::Spec(n), _) if is_spec && n < *TAG_SPEC.end() => {
                *self = Self::Spec(n + 1);
                Ok(true)
            }
            (Self::Spec(n), '\u{E007F}') if TAG_SPEC.contains(&n) => {
                *self = Self::Outside;
                Ok(true)
            }
            (Self::Spec(_), _) => Err(()),
            (_, '\u{E0000}'..='\u{E007F}') => Err(()),
            (_, '\u{1F3F4}') => {
                *self = Self::AfterFlag;
                Ok(false)
            }
            _ => {
                *self = Self::Outside;
                Ok(false)
            }
        }
    }

    /// At the end of the text: a sequence still open was cut short.
    pub(crate) fn finish(self) -> Result<(), ()> {
        match self {
            Self::Spec(_) => Err(()),
            Self::Outside | Self::AfterFlag => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfkc_folds_compatibility_forms_and_borrows_ascii() {
        assert_eq!(nfkc("ｐａｓｓｗｏｒｄ"), "password");
        assert_eq!(nfkc("a\u{0308}"), "ä", "decomposed becomes composed");
        assert_eq!(nfkc("\u{FB01}x"), "fix", "ligature");
        assert_eq!(nfkc("a\u{00A0}b"), "a b", "no-break space");
        assert!(matches!(nfkc("plain ascii"), Cow::Borrowed(_)));
    }

    #[test]
    fn visible_means_letters_numbers_punctuation_and_symbols() {
        for c in ['a', 'Ä', '中', 'ب', '7', '٣', '!', '€', '😀'] {
            assert!(is_visible(c), "{c:?}");
        }
        for c in [
            ' ',
            '\t',
            '\u{A0}',
            '\u{3000}',
            '\u{0}',
            '\u{7F}',
            '\u{200B}',
            '\u{200D}',
            '\u{FEFF}',
            '\u{2060}',
            '\u{202E}',
            '\u{0301}',
            '\u{3164}',
            '\u{115F}',
            '\u{FFA0}',
            '\u{E0041}',
        ] {
            assert!(!is_visible(c), "{c:?}");
        }
    }

    #[test]
    fn bidi_controls_are_exactly_the_unicode_property() {
        let expected: Vec<char> = ['\u{061C}', '\u{200E}', '\u{200F}']
            .into_iter()
            .chain('\u{202A}'..='\u{202E}')
            .chain('\u{2066}'..='\u{2069}')
            .collect();
        let found: Vec<char> = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|c| is_bidi_control(*c))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn invisible_format_spares_joiners_and_variation_selectors() {
        for c in [
            '\u{200B}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{2062}',
            '\u{3164}',
            '\u{17B4}',
            '\u{202E}',
            '\u{E0001}',
        ] {
            assert!(is_invisible_format(c), "{c:?}");
        }
        for c in [
            '\u{200C}',
            '\u{200D}',
            '\u{FE0F}',
            '\u{E0100}',
            'a',
            ' ',
            '😀',
        ] {
            assert!(!is_invisible_format(c), "{c:?}");
        }
    }

    fn tags(text: &str) -> Result<usize, ()> {
        let mut state = TagSequence::default();
        let mut in_sequence = 0;
        for c in text.chars() {
            in_sequence += usize::from(state.next(c)?);
        }
        state.finish()?;
        Ok(in_sequence)
    }

    #[test]
    fn tag_characters_only_inside_a_subdivision_flag() {
        let england = "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}";
        assert_eq!(tags(england), Ok(6));
        assert_eq!(tags(&format!("go {england} go")), Ok(6));
        assert_eq!(tags("🏴 plain black flag"), Ok(0));
        // Hidden ASCII ("hi") without a flag, after other text, or too long to be a
        // subdivision; a sequence never closed; an upper-case tag letter.
        for bad in [
            "x\u{E0068}\u{E0069}",
            "🏴a\u{E0067}\u{E0062}\u{E0065}\u{E007F}",
            "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E0067}\u{E0067}\u{E007F}",
            "🏴\u{E0067}\u{E0062}\u{E0065}",
            "🏴\u{E0067}\u{E0062}\u{E007F}",
            "🏴\u{E0047}\u{E0042}\u{E0045}\u{E007F}",
            "\u{E007F}",
        ] {
            assert_eq!(tags(bad), Err(()), "{bad:?}");
        }
    }
}
