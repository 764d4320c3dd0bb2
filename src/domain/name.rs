//! Display names: 1 to 100 characters, no control characters.

use std::fmt;

/// A valid display name (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let trimmed = input.trim();
        let count = trimmed.chars().count();
        if !(1..=100).contains(&count) {
            return Err("must be 1 to 100 characters");
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unicode_name_is_accepted_and_counted_in_characters() {
        assert!(Name::parse("Ada Lovelace").is_ok());
        assert!(Name::parse(&"é".repeat(100)).is_ok());
        assert!(Name::parse(&"é".repeat(101)).is_err());
    }

    #[test]
    fn an_empty_name_or_one_with_control_characters_is_rejected() {
        for bad in ["", "   ", "Ada\u{0}", "Ada\nLovelace", "\u{1b}[31mred"] {
            assert!(Name::parse(bad).is_err(), "{bad:?}");
        }
    }
}
