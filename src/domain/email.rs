//! Email addresses, checked by the `email_address` crate (RFC 5322 address
//! syntax), trimmed, with the domain lower-cased; domains that mix scripts
//! are refused.
//!
//! **The uniqueness key.** Two addresses that differ only by Unicode
//! compatibility forms or case (fullwidth letters, `ß` and `ss`, the `ﬁ`
//! ligature, `K` and the Kelvin sign) must not make two accounts. The key
//! is the local part under NFKC, full case folding, then NFKC again (Unicode's
//! `NFKC_Casefold` in effect: [`fold`]), and the domain in its one IDNA form
//! (UTS #46 mapping to Unicode, so `xn--bcher-kva.example` and
//! `Bücher.example` are one domain). The address is stored as given, in
//! NFC (RFC 6532 §3.1) with its domain lower-cased.
//!
//! **Mixed scripts.** A domain label that mixes scripts beyond UTS #39's
//! "highly restrictive" level (Latin with Cyrillic or Greek, say: the stuff
//! of look-alike domains) is refused; Latin with Han and Kana, Hangul or
//! Bopomofo is allowed, as are single-script labels in any script.
//!
//! Dotted and dotless i: case folding keeps `ı` (U+0131) apart from `i` and
//! folds `İ` (U+0130) to `i̇` (`i` with a combining dot), as Unicode's
//! default (non-Turkic) folding does; they are different letters, and a
//! Turkic folding would merge `I` with `ı` instead of `i` for everyone else.

use std::fmt;

use email_address::{EmailAddress, Options};
use unicode_normalization::UnicodeNormalization;
use unicode_security::{RestrictionLevel, RestrictionLevelDetection};

/// A syntactically valid email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    text: String,
    key: String,
}

/// `NFKC(casefold(NFKC(text)))`: the form compared for uniqueness and
/// searched by.
pub fn fold(text: &str) -> String {
    let compatible: String = text.nfkc().collect();
    let folded = icu_casemap::CaseMapper::new().fold_string(&compatible);
    folded.nfkc().collect()
}

/// The key a login name is looked up by: an email address's uniqueness
/// key, or the folded name (usernames are ASCII, so this is their key).
pub fn login_key(name: &str) -> String {
    let name = name.trim();
    match Email::parse(name) {
        Ok(email) => email.key,
        Err(_) => fold(name),
    }
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        // NFC first (RFC 6532 §3.1): a letter typed as base + combining
        // mark is the same text as the precomposed letter.
        let composed: String = input.trim().nfc().collect();
        let trimmed = composed.as_str();
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
        let (unicode_domain, valid) = idna::domain_to_unicode(&domain);
        if valid.is_err() {
            return Err("has a domain that is not a valid (internationalised) domain name");
        }
        if unicode_domain
            .split('.')
            .any(|label| !label.check_restriction_level(RestrictionLevel::HighlyRestrictive))
        {
            return Err("has a domain that mixes scripts, as look-alike domains do");
        }
        let local = parsed.local_part();
        Ok(Self {
            key: format!("{}@{unicode_domain}", fold(local)),
            text: format!("{local}@{domain}"),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        self.text.rsplit_once('@').map_or("", |(local, _)| local)
    }

    /// The uniqueness key (see the module's documentation).
    pub fn key(&self) -> String {
        self.key.clone()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
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
    fn compatibility_forms_and_case_give_one_key() {
        let key = |s: &str| Email::parse(s).unwrap().key();
        // Fullwidth letters, the ﬁ ligature, ß against ss, the Kelvin sign,
        // a precomposed letter against its decomposed form.
        assert_eq!(key("ＡＤＡ@example.org"), key("ada@example.org"));
        assert_eq!(key("ﬁnn@example.org"), key("FINN@example.org"));
        assert_eq!(key("straße@example.org"), key("STRASSE@example.org"));
        assert_eq!(key("\u{212A}im@example.org"), key("kim@example.org"));
        assert_eq!(key("jose\u{301}@example.org"), key("JOSÉ@example.org"));
        // Greek final sigma folds with sigma.
        assert_eq!(key("ΟΔΥΣΣΕΥΣ@example.org"), key("οδυσσευς@example.org"));
        // One domain, whether written in Unicode, capitals or punycode.
        assert_eq!(key("a@Bücher.example"), key("a@xn--bcher-kva.example"));
        // The address itself is kept as given (NFC, domain lower-cased).
        assert_eq!(
            Email::parse("Straße@Example.ORG").unwrap().as_str(),
            "Straße@example.org"
        );
    }

    #[test]
    fn dotted_and_dotless_i_fold_as_unicode_says() {
        let key = |s: &str| Email::parse(s).unwrap().key();
        // İ folds to i + combining dot.
        assert_eq!(key("\u{130}da@example.org"), "i\u{307}da@example.org");
        // Dotless ı is its own letter, as is i.
        assert_ne!(key("\u{131}da@example.org"), key("ida@example.org"));
        assert_eq!(key("IDA@example.org"), key("ida@example.org"));
    }

    #[test]
    fn a_domain_mixing_scripts_is_refused() {
        // Latin "paypal" with a Cyrillic "а", as Unicode and as punycode.
        let punycode = idna::domain_to_ascii("p\u{430}ypal.com").unwrap();
        assert!(punycode.starts_with("xn--"), "{punycode}");
        for bad in ["a@p\u{430}ypal.com".to_owned(), format!("a@{punycode}")] {
            assert_eq!(
                Email::parse(&bad).unwrap_err(),
                "has a domain that mixes scripts, as look-alike domains do",
                "{bad}"
            );
        }
        // One script per label is fine, whichever script; so is Japanese.
        for good in [
            "a@пример.рф",
            "a@пример.com",
            "a@例え.jp",
            "a@日本語とカタカナ.jp",
            "a@bücher.example",
        ] {
            assert!(Email::parse(good).is_ok(), "{good} refused");
        }
    }

    #[test]
    fn login_keys_match_the_stored_keys() {
        let email = Email::parse("Straße@Example.org").unwrap();
        assert_eq!(login_key("  STRASSE@example.ORG "), email.key());
        assert_eq!(login_key("Ada_1815"), "ada_1815");
    }

    #[test]
    fn an_overlong_address_is_rejected() {
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
