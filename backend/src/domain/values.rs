//! Validated values ("parse, don't validate"): each `parse` is the only way to build one.

use crate::error::ApiError;

fn char_len(s: &str) -> usize {
    s.chars().count()
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

/// 8–128 characters.
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
        Ok(Password(raw.to_owned()))
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

/// 1–64 characters after trimming, no control characters.
#[derive(Debug, Clone)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let trimmed = raw.trim();
        let len = char_len(trimmed);
        if len == 0 || len > Self::MAX {
            return Err(ApiError::validation(
                "display_name",
                format!("must be 1–{} characters long after trimming", Self::MAX),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "display_name",
                "must not contain control characters",
            ));
        }
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

/// 1–4,000 characters after trimming. The trimmed text is what is stored.
#[derive(Debug, Clone)]
pub struct MessageBody(String);

impl MessageBody {
    pub const MAX: usize = 4000;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let trimmed = raw.trim();
        let len = char_len(trimmed);
        if len == 0 {
            return Err(ApiError::validation("body", "must not be empty"));
        }
        if len > Self::MAX {
            return Err(ApiError::validation(
                "body",
                format!("must be at most {} characters", Self::MAX),
            ));
        }
        Ok(MessageBody(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
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

/// A case-insensitive substring to search for, as a ready LIKE pattern.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pattern: String,
}

impl SearchQuery {
    pub const MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let trimmed = raw.trim();
        let len = char_len(trimmed);
        if len == 0 || len > Self::MAX {
            return Err(ApiError::validation(
                "q",
                format!("must be 1–{} characters long", Self::MAX),
            ));
        }
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
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(128)).is_ok());
        assert!(Password::parse(&"é".repeat(129)).is_err());
    }

    #[test]
    fn bodies_are_trimmed() {
        assert!(MessageBody::parse("   ").is_err());
        assert_eq!(MessageBody::parse("  hi \n").unwrap().into_string(), "hi");
        assert!(MessageBody::parse(&"x".repeat(4000)).is_ok());
        assert!(MessageBody::parse(&"x".repeat(4001)).is_err());
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
