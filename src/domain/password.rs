//! Passwords and the policy that admits them (NIST SP 800-63B, ASVS 5.0):
//! 12 to 128 characters counted as Unicode code points after NFKC; not one
//! of the 10,000 most common passwords; a zxcvbn score of at least 3; not
//! containing the username or the email's local part. Composition rules
//! (upper, lower, digit, symbol) are available but off by default, because
//! both standards advise against them: they push users to predictable
//! patterns (`Password1!`) without adding strength.

use std::collections::HashSet;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

/// The shipped list of common passwords.
const COMMON: &str = include_str!("../../assets/common-passwords.txt");

/// A password that passed the policy, NFKC-normalized. Never printed.
#[derive(Clone)]
pub struct Password(SecretString);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// The normalized text, for the hasher only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// The normalized form every password is hashed and verified in, so that
/// the same password typed on two keyboards hashes alike.
pub fn normalize(input: &str) -> String {
    input.nfkc().collect()
}

/// Who the password belongs to, for the "contains" checks.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub name: &'a str,
}

/// The password rules in force.
pub struct PasswordPolicy {
    common: HashSet<&'static str>,
    composition_rules: bool,
}

impl fmt::Debug for PasswordPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordPolicy")
            .field("common", &self.common.len())
            .field("composition_rules", &self.composition_rules)
            .finish()
    }
}

impl PasswordPolicy {
    pub fn new(composition_rules: bool) -> Self {
        let common = COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        Self {
            common,
            composition_rules,
        }
    }

    /// How many common passwords are refused.
    pub fn common_count(&self) -> usize {
        self.common.len()
    }

    /// Checks `input` for `owner`; the error says which rule failed and
    /// never repeats the password.
    pub fn check(&self, input: &str, owner: Owner<'_>) -> Result<Password, &'static str> {
        let normalized = normalize(input);
        let length = normalized.chars().count();
        if length < 12 {
            return Err("must be at least 12 characters");
        }
        if length > 128 {
            return Err("must be at most 128 characters");
        }
        let lower = normalized.to_lowercase();
        if self.common.contains(lower.as_str()) {
            return Err("is one of the most common passwords");
        }
        let local = owner.email.rsplit_once('@').map_or(owner.email, |(l, _)| l);
        for part in [owner.username, local] {
            if part.chars().count() >= 3 && lower.contains(&part.to_lowercase()) {
                return Err("must not contain your username or email address");
            }
        }
        if self.composition_rules {
            let has = |f: fn(char) -> bool| normalized.chars().any(f);
            if !(has(char::is_uppercase)
                && has(char::is_lowercase)
                && has(|c| c.is_ascii_digit())
                && has(|c| "!@#$%^&*".contains(c)))
            {
                return Err(
                    "must contain an upper-case letter, a lower-case letter, a digit and one of !@#$%^&*",
                );
            }
        }
        let inputs = [owner.username, owner.email, owner.name, local];
        let score = u8::from(zxcvbn::zxcvbn(&normalized, &inputs).score());
        if score < 3 {
            return Err("is too easy to guess; use a longer passphrase of unrelated words");
        }
        Ok(Password(SecretString::from(normalized)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Owner<'static> = Owner {
        username: "ada_l",
        email: "ada.lovelace@example.org",
        name: "Ada Lovelace",
    };

    fn policy() -> PasswordPolicy {
        PasswordPolicy::new(false)
    }

    #[test]
    fn the_list_ships_at_least_ten_thousand_passwords() {
        assert!(policy().common_count() >= 10_000);
    }

    #[test]
    fn a_long_unrelated_passphrase_is_accepted() {
        assert!(
            policy()
                .check("correct horse battery staple", OWNER)
                .is_ok()
        );
    }

    #[test]
    fn short_and_overlong_passwords_are_rejected() {
        assert_eq!(
            policy().check("Tr0ub4dor&3", OWNER).err(),
            Some("must be at least 12 characters")
        );
        assert!(policy().check(&"x1y2z3".repeat(22), OWNER).is_err());
    }

    #[test]
    fn length_is_counted_in_code_points_after_nfkc() {
        // Twelve full-width letters are twelve code points, and NFKC folds
        // them to ASCII, so they are as weak as their ASCII form.
        let fullwidth = "ｑｗｅｒｔｙｕｉｏｐａｓ";
        assert_eq!(fullwidth.chars().count(), 12);
        assert_eq!(normalize(fullwidth), "qwertyuiopas");
        // Eleven 4-byte characters are too short despite 44 bytes.
        assert_eq!(
            policy().check(&"🦀".repeat(11), OWNER).err(),
            Some("must be at least 12 characters")
        );
    }

    #[test]
    fn a_common_password_is_rejected_whatever_its_case() {
        // "baseball1234" is not on the list but "1qaz2wsx3edc" (12) is.
        assert_eq!(
            policy().check("1QAZ2WSX3EDC", OWNER).err(),
            Some("is one of the most common passwords")
        );
    }

    #[test]
    fn a_password_containing_the_username_or_email_local_part_is_rejected() {
        let err = Some("must not contain your username or email address");
        assert_eq!(policy().check("zebra-ADA_L-mountain-42", OWNER).err(), err);
        assert_eq!(
            policy().check("x ada.lovelace quantum harp", OWNER).err(),
            err
        );
    }

    #[test]
    fn a_guessable_password_is_rejected_by_zxcvbn() {
        assert!(policy().check("aaaaaaaaaaaaaaaa", OWNER).is_err());
        assert!(policy().check("password12345678", OWNER).is_err());
    }

    #[test]
    fn composition_rules_apply_only_when_switched_on() {
        let strict = PasswordPolicy::new(true);
        assert!(strict.check("correct horse battery staple", OWNER).is_err());
        assert!(
            strict
                .check("Correct horse battery staple 9!", OWNER)
                .is_ok()
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let p = policy()
            .check("correct horse battery staple", OWNER)
            .unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}
