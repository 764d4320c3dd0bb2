//! Email addresses, checked by the `email_address` crate (RFC 5322 address
//! syntax), trimmed, with the domain lower-cased.

use std::fmt;

use email_address::{EmailAddress, Options};

/// A syntactically valid email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let trimmed = input.trim();
        if trimmed.len() > 254 {
            return Err("must be at most 254 characters");
        }
        let options = Options::default()
            .without_display_text()
            .without_domain_literal();
        let parsed = EmailAddress::parse_with_options(trimmed, options)
            .map_err(|_| "is not a valid email address")?;
        let domain = parsed.domain().to_ascii_lowercase();
        if !domain.contains('.') {
            return Err("must have a domain with a dot");
        }
        Ok(Self(format!("{}@{domain}", parsed.local_part())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(local, _)| local)
    }

    /// The uniqueness key: the whole address lower-cased.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_address_is_accepted_trimmed_with_its_domain_lower_cased() {
        let email = Email::parse("  Ada.Lovelace@Example.ORG ").unwrap();
        assert_eq!(email.as_str(), "Ada.Lovelace@example.org");
        assert_eq!(email.key(), "ada.lovelace@example.org");
        assert_eq!(email.local_part(), "Ada.Lovelace");
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for bad in [
            "",
            "plain",
            "@example.org",
            "a@",
            "a@@example.org",
            "a b@example.org",
            "Ada <ada@example.org>",
            "a@localhost",
            "a@[127.0.0.1]",
            "a@example..org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_overlong_address_is_rejected() {
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
