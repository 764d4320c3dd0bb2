//! Opaque refresh tokens: 256 bits from the OS RNG, a recognizable prefix
//! (so a leaked one is easy to spot in code or logs and secret scanners can
//! match it), stored only as a SHA-256 hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Every refresh token starts with this.
pub const PREFIX: &str = "pal_rt_";

/// A new token, as given to the client once.
pub fn generate() -> Result<String, getrandom::Error> {
    generate_prefixed(PREFIX)
}

/// A new opaque token of the same strength and shape with another prefix
/// (`mfa_token`s, the tokens mailed for verification and reset).
pub fn generate_prefixed(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// What the database keeps: the hex SHA-256 of the token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Cheap shape check before any database work.
pub fn looks_valid(token: &str) -> bool {
    looks_prefixed(PREFIX, token)
}

/// Cheap shape check of a token made by [`generate_prefixed`].
pub fn looks_prefixed(prefix: &str, token: &str) -> bool {
    token.len() == prefix.len() + 43
        && token.starts_with(prefix)
        && token[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_distinct_and_well_formed() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(looks_valid(&a), "{a}");
        assert!(!looks_valid("pal_rt_short"));
        assert!(!looks_valid(&a.replace(PREFIX, "xxx_rt_")));
    }

    #[test]
    fn only_the_hash_is_kept_and_it_is_sha256_hex() {
        let h = hash("pal_rt_x");
        assert_eq!(h.len(), 64);
        assert_ne!(h, "pal_rt_x");
    }
}
