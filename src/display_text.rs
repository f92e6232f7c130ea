//! Text a person reads on the approval device (a memo, a label): it must look exactly like what is
//! stored, approved and executed.
//!
//! [`DisplayText`] refuses every code point that renders as nothing, or changes how its neighbours
//! render: controls (`Cc`: tabs, line breaks, escapes), format characters (`Cf`: bidirectional
//! controls such as U+202E and U+2066–U+2069, zero-width spaces and joiners, the byte-order mark, the
//! soft hyphen …), line and paragraph separators (`Zl`, `Zp`), private-use and unassigned code points
//! (`Co`, `Cn`: no device can be relied on to show them), and the invisible fillers listed in
//! [`INVISIBLE_FILLERS`]. The categories come from `unicode-properties`, never from a table of our own.
//!
//! Equivalent text must also be the same bytes, because an approval is compared with the transfer as
//! exact strings. So the client side [normalises](DisplayText::normalize) what it is given to NFC
//! before it binds it into an approval, and the server side (the provider, the bank)
//! [refuses](DisplayText::exact) text that is not already NFC rather than normalising it: what the
//! token carries, what the bank is asked and what the ledger stores are then the same string.
//!
//! Errors name the offending code point and its position, never the text itself.
//!
//! Shared vocabulary: both the client side (`mcp`) and the server side (`devstack`) use it.

use std::fmt;

use unicode_normalization::{UnicodeNormalization, is_nfc};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Assigned characters outside the refused categories that still render as blank space or nothing:
/// the Hangul fillers, the braille blank, the combining grapheme joiner, the Khmer inherent vowels and
/// the Mongolian variation selectors. (Emoji and CJK variation selectors stay allowed.)
pub const INVISIBLE_FILLERS: &[char] = &[
    '\u{034F}', '\u{115F}', '\u{1160}', '\u{17B4}', '\u{17B5}', '\u{180B}', '\u{180C}', '\u{180D}', '\u{180F}',
    '\u{2800}', '\u{3164}', '\u{FFA0}',
];

/// Text fit to be shown to the account holder: no invisible or reordering code points, and NFC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayText(String);

/// Why text cannot be shown as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DisplayTextError {
    #[error("holds {code_point} ({kind}) at character {position}")]
    Refused { code_point: CodePoint, kind: Refusal, position: usize },
    #[error("is {length} characters long; at most {max} are allowed")]
    TooLong { length: usize, max: usize },
    #[error("is not in Unicode normalization form C (NFC)")]
    NotNfc,
}

/// A code point, written the way the Unicode standard names it: `U+202E`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodePoint(pub char);

impl fmt::Display for CodePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U+{:04X}", u32::from(self.0))
    }
}

/// What kind of code point was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a control character")]
    Control,
    #[error("a bidirectional control, which reorders the text around it")]
    Bidi,
    #[error("an invisible format character")]
    Format,
    #[error("a line or paragraph separator")]
    Separator,
    #[error("a private-use or unassigned code point")]
    NotACharacter,
    #[error("an invisible filler")]
    Filler,
}

impl DisplayText {
    /// The client side: checks `text` and binds its NFC form. At most `max_chars` characters, both
    /// as given and once normalised.
    pub fn normalize(text: &str, max_chars: usize) -> Result<Self, DisplayTextError> {
        check(text, max_chars)?;
        let normalized: String = text.nfc().collect();
        check_length(&normalized, max_chars)?;
        Ok(Self(normalized))
    }

    /// The server side: checks `text`, which must already be NFC, and keeps it byte for byte.
    pub fn exact(text: &str, max_chars: usize) -> Result<Self, DisplayTextError> {
        check(text, max_chars)?;
        if !is_nfc(text) {
            return Err(DisplayTextError::NotNfc);
        }
        Ok(Self(text.to_owned()))
    }

    /// Why `c` may not be shown, if it may not.
    pub fn refusal(c: char) -> Option<Refusal> {
        if INVISIBLE_FILLERS.contains(&c) {
            return Some(Refusal::Filler);
        }
        match c.general_category() {
            GeneralCategory::Control => Some(Refusal::Control),
            GeneralCategory::Format if is_bidi_control(c) => Some(Refusal::Bidi),
            GeneralCategory::Format => Some(Refusal::Format),
            GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => Some(Refusal::Separator),
            GeneralCategory::PrivateUse | GeneralCategory::Unassigned | GeneralCategory::Surrogate => {
                Some(Refusal::NotACharacter)
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for DisplayText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The explicit directional marks, embeddings, overrides and isolates (Unicode Bidirectional
/// Algorithm, UAX #9 §2), all of them format characters.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn check(text: &str, max_chars: usize) -> Result<(), DisplayTextError> {
    check_length(text, max_chars)?;
    for (index, c) in text.chars().enumerate() {
        if let Some(kind) = DisplayText::refusal(c) {
            return Err(DisplayTextError::Refused { code_point: CodePoint(c), kind, position: index + 1 });
        }
    }
    Ok(())
}

fn check_length(text: &str, max: usize) -> Result<(), DisplayTextError> {
    let length = text.chars().count();
    if length > max {
        return Err(DisplayTextError::TooLong { length, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> (String, Refusal, usize) {
        match DisplayText::normalize(text, 140) {
            Err(DisplayTextError::Refused { code_point, kind, position }) => (code_point.to_string(), kind, position),
            other => panic!("{text:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn ordinary_text_in_any_script_is_shown_as_it_is() {
        for text in ["Dinner", "Miete März", "家賃 5月", "Ужин, 2 чел.", "إيجار", "👍 thanks ❤️", "a\u{00A0}b", ""]
        {
            assert_eq!(DisplayText::normalize(text, 140).unwrap().as_str(), text);
            assert_eq!(DisplayText::exact(text, 140).unwrap().as_str(), text);
        }
    }

    #[test]
    fn reordering_and_invisible_code_points_are_named_with_their_position() {
        assert_eq!(refused("abc\u{202E}def"), ("U+202E".into(), Refusal::Bidi, 4));
        for c in ['\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}', '\u{061C}'] {
            assert_eq!(refused(&format!("x{c}")).1, Refusal::Bidi, "{}", CodePoint(c));
        }
        for c in ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{180E}', '\u{E0041}'] {
            assert_eq!(refused(&format!("x{c}")).1, Refusal::Format, "{}", CodePoint(c));
        }
        for c in ['\n', '\r', '\t', '\u{0}', '\u{1B}', '\u{7F}', '\u{85}'] {
            assert_eq!(refused(&format!("x{c}")).1, Refusal::Control, "{}", CodePoint(c));
        }
        assert_eq!(refused("a\u{2028}b").1, Refusal::Separator);
        assert_eq!(refused("a\u{2029}b").1, Refusal::Separator);
        assert_eq!(refused("a\u{E000}b").1, Refusal::NotACharacter);
        assert_eq!(refused("a\u{FFFF}b").1, Refusal::NotACharacter);
        for &c in INVISIBLE_FILLERS {
            assert_eq!(refused(&format!("x{c}")).1, Refusal::Filler, "{}", CodePoint(c));
        }
    }

    #[test]
    fn the_error_names_the_code_point_but_never_repeats_the_text() {
        let secret_looking = format!("{}\u{202E}", "y".repeat(50));
        let message = DisplayText::normalize(&secret_looking, 140).unwrap_err().to_string();
        assert_eq!(
            message,
            "holds U+202E (a bidirectional control, which reorders the text around it) at character 51"
        );
        let message = DisplayText::normalize(&"y".repeat(141), 140).unwrap_err().to_string();
        assert_eq!(message, "is 141 characters long; at most 140 are allowed");
    }

    #[test]
    fn the_client_binds_nfc_and_the_server_refuses_anything_else() {
        let decomposed = "Cafe\u{0301}";
        assert_eq!(DisplayText::normalize(decomposed, 140).unwrap().as_str(), "Caf\u{00E9}");
        assert_eq!(DisplayText::exact(decomposed, 140), Err(DisplayTextError::NotNfc));
        assert_eq!(DisplayText::exact("Caf\u{00E9}", 140).unwrap().as_str(), "Caf\u{00E9}");
    }

    #[test]
    fn the_limit_holds_before_and_after_normalising() {
        // U+0958 is a composition exclusion: its NFC form is two code points.
        let grows = "\u{0958}".repeat(80);
        assert_eq!(grows.nfc().count(), 160);
        assert_eq!(DisplayText::normalize(&grows, 140), Err(DisplayTextError::TooLong { length: 160, max: 140 }));
        assert_eq!(
            DisplayText::normalize(&"e\u{0301}".repeat(71), 140),
            Err(DisplayTextError::TooLong { length: 142, max: 140 })
        );
    }
}
