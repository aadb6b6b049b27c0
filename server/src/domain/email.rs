//! Email addresses: parsed once, compared without regard to case.

use super::AuthError;

/// A syntactically plausible email address, kept exactly as the user typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// RFC 5321 caps an address at 254 octets; counted here in characters, as
/// the OpenAPI schema's maxLength counts them (an ASCII address is the same).
pub const MAX_LEN: usize = 254;

/// The same rules as `Email::parse`, as a JSON Schema pattern for the
/// OpenAPI document: one `@`, no spaces or control characters, a domain of
/// non-empty dot-separated labels.
pub const PATTERN: &str = r"^[^@\s\x00-\x1f\x7f-\x9f\ufeff]+@[^@\s\x00-\x1f\x7f-\x9f\ufeff.]+(\.[^@\s\x00-\x1f\x7f-\x9f\ufeff.]+)*$";

impl Email {
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let invalid = |why: &str| Err(AuthError::Validation(format!("email: {why}")));
        if raw.is_empty() {
            return invalid("must not be empty");
        }
        if raw.chars().count() > MAX_LEN {
            return invalid("must be at most 254 characters long");
        }
        // U+FEFF counts as a space in ECMAScript's \s, so in the schema's pattern too.
        if raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\u{feff}')
        {
            return invalid("must not contain spaces or control characters");
        }
        let Some((local, domain)) = raw.rsplit_once('@') else {
            return invalid("must contain an @");
        };
        // Quoted local parts may hold an @ in theory; no mail system a user
        // would register with accepts them, so exactly one @ it is.
        if local.contains('@') {
            return invalid("must contain exactly one @");
        }
        if local.is_empty() || domain.is_empty() {
            return invalid("needs text before and after the @");
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return invalid("has a malformed domain");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key under which accounts are unique: `A@x.test` and `a@x.test` are one.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_unicode_addresses() {
        for ok in [
            "a@x.test",
            "first.last+tag@example.com",
            "jörg@bücher.example",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_addresses_without_both_parts() {
        for bad in [
            "",
            "plain",
            "@x.test",
            "a@",
            "a b@x.test",
            "a@x..test",
            "a@.x",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_length_limit_counts_characters_as_the_schema_does() {
        assert!(Email::parse(&format!("{}@x.test", "a".repeat(250))).is_err());
        // 143 characters, 273 bytes: within the limit.
        assert!(Email::parse(&format!("{}@example.test", "é".repeat(130))).is_ok());
    }

    #[test]
    fn normalization_ignores_case() {
        assert_eq!(
            Email::parse("A.B@X.Test").unwrap().normalized(),
            Email::parse("a.b@x.test").unwrap().normalized()
        );
    }
}
