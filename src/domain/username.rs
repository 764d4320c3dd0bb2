//! Usernames: 3 to 50 of `[A-Za-z0-9_]`, as the seed requires.

use std::fmt;

/// A valid username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        if !(3..=50).contains(&input.len()) {
            return Err("must be 3 to 50 characters");
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err("may contain only letters, digits and underscores");
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_of_letters_digits_and_underscores_is_accepted() {
        assert_eq!(Username::parse("Ada_1815").unwrap().key(), "ada_1815");
    }

    #[test]
    fn a_username_with_a_quote_or_a_space_or_unicode_is_rejected() {
        for bad in [
            "ada'--",
            "ad a",
            "adä",
            "a;b",
            "ab",
            &"a".repeat(51),
            "ada\n",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }
}
