//! Validated values ("parse, don't validate"): each `parse` is the only way to build one.

use crate::error::ApiError;

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Whether `c` shows nothing on its own: whitespace (`White_Space`), control characters (`Cc`),
/// format characters (`Cf`) and every `Default_Ignorable_Code_Point` (zero-width spaces and
/// joiners, word joiner, BOM, bidi controls, variation selectors, tag characters, the Hangul
/// fillers U+115F, U+1160, U+3164, U+FFA0), plus U+2800 BRAILLE PATTERN BLANK, which is drawn
/// as an empty cell. The `Cf` characters that are `Prepended_Concatenation_Mark` (e.g. U+0600
/// ARABIC NUMBER SIGN) are drawn and so count as visible. Properties come from ICU4X's
/// `icu_properties` (the Unicode Character Database, compiled in).
pub fn is_invisible(c: char) -> bool {
    use icu_properties::props::{
        DefaultIgnorableCodePoint, GeneralCategory, PrependedConcatenationMark,
    };
    use icu_properties::{CodePointMapData, CodePointSetData};
    c.is_whitespace()
        || c.is_control()
        || c == '\u{2800}'
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
        || (CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
            && !CodePointSetData::new::<PrependedConcatenationMark>().contains(c))
}

/// The bidirectional embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069),
/// which reorder the text around them: refused in display names.
pub fn is_bidi_override(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The rule for display names and search text: at most `max` characters as sent, no control
/// characters, at least one character that is not whitespace. Returns the text trimmed.
///
/// `patterns::SINGLE_LINE_TEXT` states the same rule for the OpenAPI document.
fn single_line_text<'a>(field: &str, raw: &'a str, max: usize) -> Result<&'a str, ApiError> {
    if char_len(raw) > max {
        return Err(ApiError::validation(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(ApiError::validation(
            field,
            "must not contain control characters",
        ));
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ApiError::validation(
            field,
            "must contain a character that is not whitespace",
        ));
    }
    Ok(trimmed)
}

/// The rule for display names: at most `max` characters as sent, no control characters and no
/// bidi overrides or isolates, at least one visible character (see [`is_invisible`]). Returns the
/// text trimmed. `patterns::DISPLAY_NAME` states the same rule.
fn display_text<'a>(field: &str, raw: &'a str, max: usize) -> Result<&'a str, ApiError> {
    let trimmed = single_line_text(field, raw, max)?;
    if trimmed.chars().any(is_bidi_override) {
        return Err(ApiError::validation(
            field,
            "must not contain bidirectional override or isolate controls (U+202A–U+202E, U+2066–U+2069)",
        ));
    }
    if trimmed.chars().all(is_invisible) {
        return Err(ApiError::validation(
            field,
            "must contain a visible character (not only spaces, zero-width or format characters)",
        ));
    }
    Ok(trimmed)
}

/// The validation rules above as JSON Schema (ECMA-262) patterns, for the OpenAPI document.
/// Whitespace is Unicode `White_Space` (what `str::trim` removes), control characters are `Cc`
/// (`char::is_control`) and invisible characters are [`is_invisible`]'s, spelled out because
/// regex dialects disagree on `\s` and Unicode properties. Characters above U+FFFF appear as
/// themselves (JSON Schema reads patterns with ECMA-262's `u` flag: one code point each; so do
/// Python's `re` and Rust's `regex`). Tests check every pattern against the `char` predicates,
/// and sample strings against a regex engine and the validators.
pub mod patterns {
    /// Search text: no control characters, and at least one character that is neither
    /// whitespace nor control.
    pub const SINGLE_LINE_TEXT: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$";
    /// Display names: no control characters and no bidi overrides or isolates, and at least one
    /// visible character.
    pub const DISPLAY_NAME: &str = concat!(
        r"^[^\x00-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069]*[^\x00-\x20\x7F-\xA0\xAD\u034F\u061C\u115F\u1160\u1680\u17B4\u17B5\u180B-\u180F\u2000-\u200F\u2028-\u202F\u205F-\u206F\u2800\u3000\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF0-\uFFFB",
        // Above U+FFFF, the characters themselves.
        "\u{13430}-\u{1343F}\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}",
        r"][^\x00-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069]*$"
    );
    /// Message bodies: no control characters but tab, line feed and carriage return, and at
    /// least one visible character.
    pub const MESSAGE_TEXT: &str = concat!(
        r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\xAD\u034F\u061C\u115F\u1160\u1680\u17B4\u17B5\u180B-\u180F\u2000-\u200F\u2028-\u202F\u205F-\u206F\u2800\u3000\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF0-\uFFFB",
        // Above U+FFFF, the characters themselves.
        "\u{13430}-\u{1343F}\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}",
        r"][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    );
    /// Usernames.
    pub const USERNAME: &str = "^[A-Za-z0-9_.-]+$";
    /// `client_msg_id`: printable ASCII, no spaces.
    pub const CLIENT_MSG_ID: &str = "^[!-~]+$";
}

/// 3–32 characters of `[A-Za-z0-9_.-]`, unique case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let len = raw.len();
        if !(Self::MIN..=Self::MAX).contains(&len) {
            return Err(ApiError::validation(
                "username",
                format!("must be {}–{} characters long", Self::MIN, Self::MAX),
            ));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(ApiError::validation(
                "username",
                "may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        Ok(Username(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form that uniqueness and lookups use.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// 8–128 characters, not one of the 10,000 most common passwords. Every byte counts: the hasher
/// pre-hashes it, so nothing past bcrypt's 72 bytes is lost (see `auth::password`).
pub struct Password(String);

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let len = char_len(raw);
        if !(Self::MIN..=Self::MAX).contains(&len) {
            return Err(ApiError::validation(
                "password",
                format!("must be {}–{} characters long", Self::MIN, Self::MAX),
            ));
        }
        if Self::is_common(raw) {
            return Err(ApiError::validation(
                "password",
                "is one of the 10,000 most common passwords; choose another",
            ));
        }
        Ok(Password(raw.to_owned()))
    }

    /// Refuses a password equal to the account's username, in any case.
    pub fn refuse_username(&self, username: &str) -> Result<(), ApiError> {
        if self.0.to_lowercase() == username.to_lowercase() {
            return Err(ApiError::validation("password", "must not be the username"));
        }
        Ok(())
    }

    /// Whether `raw`, in lower case, is on the list of the 10,000 most common passwords
    /// (`backend/data/common-passwords.txt`; its origin is in `backend/data/README.md`).
    pub fn is_common(raw: &str) -> bool {
        static COMMON: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
            std::sync::LazyLock::new(|| {
                include_str!("../../data/common-passwords.txt")
                    .lines()
                    .filter(|l| !l.is_empty())
                    .collect()
            });
        COMMON.contains(raw.to_lowercase().as_str())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// 1–64 characters with at least one visible character (see [`is_invisible`]), no control
/// characters and no bidi overrides or isolates; stored trimmed. (The length counts the
/// characters as sent, so the limit is one JSON Schema can state.)
#[derive(Debug, Clone)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let trimmed = display_text("display_name", raw, Self::MAX)?;
        Ok(DisplayName(trimmed.to_owned()))
    }

    pub fn from_username(u: &Username) -> Self {
        DisplayName(u.as_str().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// At most 4,000 characters as sent, at least one of them visible (see [`is_invisible`]: not
/// only spaces, zero-width or format characters), and no control characters but tab, line feed
/// and carriage return. The trimmed text is what is stored.
#[derive(Debug, Clone)]
pub struct MessageBody(String);

impl MessageBody {
    pub const MAX: usize = 4000;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        if char_len(raw) > Self::MAX {
            return Err(ApiError::validation(
                "body",
                format!("must be at most {} characters", Self::MAX),
            ));
        }
        if raw
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err(ApiError::validation(
                "body",
                "must not contain control characters other than tab and line breaks",
            ));
        }
        let trimmed = raw.trim();
        if trimmed.chars().all(is_invisible) {
            return Err(ApiError::validation(
                "body",
                "must contain a visible character (not only spaces, zero-width or format characters)",
            ));
        }
        Ok(MessageBody(trimmed.to_owned()))
    }

    /// A body sent with `attachments`: the same rules, except that it may be empty (or only
    /// invisible characters, which count as empty) when the message carries attachments.
    pub fn parse_with(raw: &str, attachments: &UploadIds) -> Result<Self, ApiError> {
        if attachments.is_empty() {
            return Self::parse(raw);
        }
        match Self::parse(raw) {
            Ok(body) => Ok(body),
            Err(_) if char_len(raw) <= Self::MAX && raw.chars().all(is_invisible) => {
                Ok(MessageBody(String::new()))
            }
            Err(e) => Err(e),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// One emoji, as a reaction: exactly one grapheme cluster (extended, so skin tones, variation
/// selectors, keycaps, flags and ZWJ sequences such as 👩🏽‍💻 stay one), at most 64 bytes, that is
/// an emoji — it starts with an `Extended_Pictographic` or `Emoji_Presentation` character, is a
/// flag (two regional indicators) or a keycap (`0`–`9`, `#` or `*`, then U+20E3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Emoji(String);

impl Emoji {
    pub const MAX_BYTES: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        use icu_properties::props::{EmojiPresentation, ExtendedPictographic, RegionalIndicator};
        use icu_properties::CodePointSetData;
        use unicode_segmentation::UnicodeSegmentation;
        let refuse = || ApiError::validation("emoji", "must be exactly one emoji");
        if raw.is_empty() || raw.len() > Self::MAX_BYTES || raw.graphemes(true).count() != 1 {
            return Err(refuse());
        }
        let chars: Vec<char> = raw.chars().collect();
        let first = chars[0];
        let pictographic = CodePointSetData::new::<ExtendedPictographic>().contains(first)
            || CodePointSetData::new::<EmojiPresentation>().contains(first);
        let flag = chars.len() == 2
            && chars
                .iter()
                .all(|c| CodePointSetData::new::<RegionalIndicator>().contains(*c));
        let keycap = matches!(first, '0'..='9' | '#' | '*') && chars.last() == Some(&'\u{20E3}');
        // Text that is pictographic by property but never drawn as an emoji (©, ®, ‼ with no
        // variation selector) is refused: a reaction must look like one.
        let text_default = chars.len() == 1
            && !CodePointSetData::new::<EmojiPresentation>().contains(first)
            && (first as u32) < 0x2100;
        if (pictographic && !text_default) || flag || keycap {
            Ok(Emoji(raw.to_owned()))
        } else {
            Err(refuse())
        }
    }

    /// An emoji read back from a stored reaction: it was parsed when the reaction was added (a
    /// reaction must be taken back as it is stored, even if the rules changed since).
    pub fn stored(raw: String) -> Self {
        Emoji(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-chosen id (UUID recommended), 1–64 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub const MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        if raw.is_empty() || raw.len() > Self::MAX {
            return Err(ApiError::validation(
                "client_msg_id",
                format!("must be 1–{} characters long", Self::MAX),
            ));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::validation(
                "client_msg_id",
                "must be printable ASCII without spaces",
            ));
        }
        Ok(ClientMsgId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The uploads a message carries (`attachments` of a send): at most [`UploadIds::MAX`] distinct
/// upload ids, each of the shape the server gives them (32 lowercase hex digits), in the order
/// sent. Whose uploads they are is checked where the message is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadIds(Vec<String>);

impl UploadIds {
    pub const MAX: usize = 10;

    pub fn parse(raw: &[String]) -> Result<Self, ApiError> {
        let invalid = |why: String| ApiError::validation("attachments", why);
        if raw.len() > Self::MAX {
            return Err(invalid(format!(
                "at most {} attachments per message",
                Self::MAX
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for id in raw {
            let shaped = id.len() == 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !shaped {
                return Err(invalid(format!(
                    "{:?} is not one of your uploads",
                    clip(id)
                )));
            }
            if !seen.insert(id.as_str()) {
                return Err(invalid(format!("upload {id} is attached twice")));
            }
        }
        Ok(UploadIds(raw.to_vec()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// At most 40 characters of what a client sent, for an error message.
fn clip(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// A case-insensitive substring to search for, as a ready LIKE pattern.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pattern: String,
}

impl SearchQuery {
    pub const MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let trimmed = single_line_text("q", raw, Self::MAX)?;
        let mut pattern = String::with_capacity(trimmed.len() + 2);
        pattern.push('%');
        for c in trimmed.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        Ok(SearchQuery { pattern })
    }

    /// `%q%` with `%`, `_` and `\` escaped by `\`.
    pub fn like_pattern(&self) -> &str {
        &self.pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("élan").is_err());
        assert_eq!(Username::parse("Alice.B-1_x").unwrap().key(), "alice.b-1_x");
    }

    #[test]
    fn passwords_count_characters() {
        assert!(Password::parse("q7-wz!k").is_err());
        assert!(Password::parse("q7-wz!kx").is_ok());
        assert!(Password::parse(&"é".repeat(128)).is_ok());
        assert!(Password::parse(&"é".repeat(129)).is_err());
    }

    #[test]
    fn common_passwords_and_the_username_are_refused() {
        let common = include_str!("../../data/common-passwords.txt");
        assert_eq!(common.lines().count(), 10_000);
        for p in [
            "password",
            "12345678",
            "PassWord123",
            "iloveyou",
            "trustno1",
        ] {
            assert!(Password::parse(p).is_err(), "{p} is common");
        }
        assert!(Password::is_common("password"));
        assert!(!Password::is_common("amber-tortoise-42"));
        let p = Password::parse("Alice.Liddell").unwrap();
        assert!(p.refuse_username("alice.liddell").is_err());
        assert!(p.refuse_username("ALICE.LIDDELL").is_err());
        assert!(p.refuse_username("alice").is_ok());
    }

    #[test]
    fn bodies_are_trimmed() {
        assert!(MessageBody::parse("   ").is_err());
        assert_eq!(MessageBody::parse("  hi \n").unwrap().into_string(), "hi");
        assert!(MessageBody::parse(&"x".repeat(4000)).is_ok());
        assert!(MessageBody::parse(&"x".repeat(4001)).is_err());
    }

    #[test]
    fn bodies_allow_line_breaks_but_no_other_controls() {
        assert_eq!(
            MessageBody::parse("a\tb\r\nc").unwrap().into_string(),
            "a\tb\r\nc"
        );
        assert!(MessageBody::parse("a\u{0}b").is_err());
        assert!(MessageBody::parse("\u{1b}[2J").is_err());
        assert!(MessageBody::parse("\u{a0}\u{3000}").is_err());
        // The limit counts the characters as sent.
        assert!(MessageBody::parse(&format!(" {}", "x".repeat(4000))).is_err());
        assert!(MessageBody::parse(&"é".repeat(4000)).is_ok());
    }

    #[test]
    fn display_names() {
        assert_eq!(DisplayName::parse("  Alice  ").unwrap().as_str(), "Alice");
        assert!(DisplayName::parse("\u{a0}").is_err());
        assert!(DisplayName::parse("Al\nice").is_err());
        assert!(DisplayName::parse("Alice\n").is_err());
        assert!(DisplayName::parse(&"x".repeat(64)).is_ok());
        assert!(DisplayName::parse(&format!(" {}", "x".repeat(64))).is_err());
    }

    /// A regex character class (without brackets) of every `char` that `pred` holds for: `\xHH`
    /// and `\uHHHH` escapes in the Basic Multilingual Plane, the characters themselves above it.
    fn class(pred: impl Fn(char) -> bool) -> String {
        let esc = |c: u32| {
            if c <= 0xFF {
                format!("\\x{c:02X}")
            } else if c <= 0xFFFF {
                format!("\\u{c:04X}")
            } else {
                char::from_u32(c).map(String::from).unwrap_or_default()
            }
        };
        let mut out = String::new();
        let mut c = 0u32;
        while c <= 0x10FFFF {
            if !char::from_u32(c).is_some_and(&pred) {
                c += 1;
                continue;
            }
            let start = c;
            while char::from_u32(c + 1).is_some_and(&pred) {
                c += 1;
            }
            match c - start {
                0 => out.push_str(&esc(start)),
                1 => out.push_str(&(esc(start) + &esc(c))),
                _ => out.push_str(&format!("{}-{}", esc(start), esc(c))),
            }
            c += 1;
        }
        out
    }

    /// `^[^forbidden]*[^forbidden or not visible][^forbidden]*$`
    fn text_pattern(forbidden: &dyn Fn(char) -> bool, blank: &dyn Fn(char) -> bool) -> String {
        let c = class(forbidden);
        let visible = class(|x| forbidden(x) || blank(x));
        format!("^[^{c}]*[^{visible}][^{c}]*$")
    }

    fn message_control(c: char) -> bool {
        c.is_control() && !matches!(c, '\t' | '\n' | '\r')
    }

    fn name_forbidden(c: char) -> bool {
        c.is_control() || is_bidi_override(c)
    }

    #[test]
    fn patterns_state_the_char_rules() {
        let blank = |c: char| c.is_whitespace() || c.is_control();
        assert_eq!(
            patterns::SINGLE_LINE_TEXT,
            text_pattern(&char::is_control, &blank)
        );
        assert_eq!(
            patterns::DISPLAY_NAME,
            text_pattern(&name_forbidden, &is_invisible),
            "DISPLAY_NAME"
        );
        assert_eq!(
            patterns::MESSAGE_TEXT,
            text_pattern(&message_control, &is_invisible),
            "MESSAGE_TEXT"
        );
    }

    /// Strings to try both ways: visible text in many scripts, emoji sequences, and the
    /// invisible characters alone and mixed.
    fn samples() -> Vec<String> {
        let mut out: Vec<String> = [
            "hi",
            "  Alice  ",
            "\u{200B}",
            "\u{2060}\u{FEFF}",
            "   \u{200D}  ",
            "\u{3164}",
            "\u{2800}\u{2800}",
            "\u{115F}\u{1160}\u{FFA0}",
            "\u{E0041}\u{E0042}",
            "\u{1D173}\u{FE0F}",
            "\u{180E}\u{034F}",
            "\u{0600}",
            "a\u{202E}b",
            "\u{2067}שלום\u{2069}",
            "\u{200F}مرحبا",
            "👩‍👩‍👧‍👦",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "מה שלום? مرحبا بالعالم",
            "a\tb\nc",
            "\t\n",
            "x\u{0}y",
            "\u{1B}[2J",
            "\u{85}",
            "\u{3000}\u{A0}",
            "𝐀",
            "\u{1F600}\u{200B}",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // Every character up to U+FFFF, and a stride through the rest, alone and padded.
        for c in (0..=0xFFFFu32).chain((0x10000..=0x10FFFF).step_by(97)) {
            if let Some(c) = char::from_u32(c) {
                out.push(c.to_string());
                out.push(format!(" {c}\u{200B}"));
            }
        }
        out
    }

    /// A string matches the document's pattern exactly when the validator accepts it (the
    /// length limits aside), so a client that follows the document is never refused, and the
    /// fuzzer's non-matching strings are refused.
    #[test]
    fn patterns_agree_with_the_validators() {
        let name = regex::Regex::new(patterns::DISPLAY_NAME).unwrap();
        let body = regex::Regex::new(patterns::MESSAGE_TEXT).unwrap();
        for s in samples() {
            assert_eq!(
                name.is_match(&s),
                DisplayName::parse(&s).is_ok(),
                "display name {s:?} ({:X?})",
                s.chars().map(u32::from).collect::<Vec<_>>()
            );
            assert_eq!(
                body.is_match(&s),
                MessageBody::parse(&s).is_ok(),
                "body {s:?} ({:X?})",
                s.chars().map(u32::from).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn invisible_text_is_refused() {
        for s in [
            "\u{200B}",
            "\u{2060}\u{FEFF}",
            "  \u{200D} ",
            "\u{3164}",
            "\u{2800}",
            "\u{E0020}\u{E007F}",
            "\u{FE0F}",
            "\u{00AD}",
        ] {
            assert!(MessageBody::parse(s).is_err(), "body {s:?}");
            assert!(DisplayName::parse(s).is_err(), "name {s:?}");
        }
        for s in [
            "👩‍💻 ok",
            "👨‍👩‍👧",
            "🏳️‍🌈",
            "שלום עולם",
            "مرحبا",
            "\u{0600}",
            &"a".repeat(4000),
        ] {
            assert!(MessageBody::parse(s).is_ok(), "body {s:?}");
        }
        assert_eq!(
            MessageBody::parse("\u{200B}hi\u{200B}")
                .unwrap()
                .into_string(),
            "\u{200B}hi\u{200B}"
        );
    }

    #[test]
    fn display_names_refuse_bidi_overrides_and_isolates() {
        for s in [
            "evil\u{202E}gnp.exe",
            "\u{2067}admin",
            "a\u{202A}b",
            "x\u{2066}",
            "\u{2069}",
        ] {
            assert!(DisplayName::parse(s).is_err(), "{s:?}");
        }
        // Marks that only set a direction are fine, and so is right-to-left text.
        assert!(DisplayName::parse("\u{200F}דנה").is_ok());
        assert!(DisplayName::parse("سارة 🌙").is_ok());
        // Bodies may carry them (mixed-direction text needs them).
        assert!(MessageBody::parse("abc \u{2067}שלום\u{2069}").is_ok());
    }

    #[test]
    fn search_patterns_escape_wildcards() {
        assert_eq!(
            SearchQuery::parse("A_b%").unwrap().like_pattern(),
            "%a\\_b\\%%"
        );
        assert!(SearchQuery::parse(" ").is_err());
    }
}
