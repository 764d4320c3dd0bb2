//! The second factor's mechanism: TOTP (RFC 6238: SHA-1, 6 digits, 30 s
//! steps, 160-bit secrets) with replay refusal, recovery codes, and the
//! keys that protect both at rest.
//!
//! At rest a database dump alone yields no working factor: a TOTP secret
//! is sealed with XChaCha20-Poly1305 under a key derived (HKDF-SHA-256)
//! from the MFA key, with the user's id as associated data (a sealed
//! secret copied onto another account does not open); a recovery code is
//! kept as HMAC-SHA-256 under a second derived key. The MFA key is never
//! the token-signing secret (see `settings::AuthSettings::mfa_key`).

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use crate::settings::SigningSecret;

/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Bytes of a TOTP secret (160 bits, RFC 4226 §4's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Recovery codes per set.
pub const RECOVERY_CODES: usize = 10;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// The keys derived from the MFA key. `Debug` shows nothing of them.
pub struct MfaKeys {
    seal: XChaCha20Poly1305,
    digest: [u8; 32],
    /// Seals the private halves of the token-signing key set.
    signing: XChaCha20Poly1305,
}

impl std::fmt::Debug for MfaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaKeys(<redacted>)")
    }
}

/// A sealed secret that did not open: another key, another user, or a
/// changed row.
#[derive(Debug, thiserror::Error)]
#[error("the stored second factor cannot be opened with this server's MFA key")]
pub struct Unsealable;

impl MfaKeys {
    /// Derives the sealing and digest keys from `key` (HKDF-SHA-256, RFC
    /// 5869, one `info` per use).
    pub fn derive(key: &SigningSecret) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"palisade mfa"), key.expose());
        let mut seal = [0u8; 32];
        let mut digest = [0u8; 32];
        let mut signing = [0u8; 32];
        // 32 bytes is far below HKDF-SHA-256's 8160-byte limit: this
        // cannot fail, and a zero key would only make every factor
        // unusable, never readable.
        let _ = hk.expand(b"totp secret sealing v1", &mut seal);
        let _ = hk.expand(b"recovery code digest v1", &mut digest);
        let _ = hk.expand(b"signing key sealing v1", &mut signing);
        Self {
            seal: XChaCha20Poly1305::new(&seal.into()),
            digest,
            signing: XChaCha20Poly1305::new(&signing.into()),
        }
    }

    /// Seals the private key of signing key `kid` (its own derived key, the
    /// `kid` as associated data).
    pub fn seal_signing_key(&self, kid: &str, der: &[u8]) -> Result<String, getrandom::Error> {
        seal_with(&self.signing, kid, der)
    }

    /// Opens what [`seal_signing_key`](Self::seal_signing_key) made.
    pub fn open_signing_key(&self, kid: &str, sealed: &str) -> Result<Vec<u8>, Unsealable> {
        open_with(&self.signing, kid, sealed)
    }

    /// Seals `secret` for `user_id`: base64 of a random 192-bit nonce and
    /// the ciphertext.
    pub fn seal(&self, user_id: &str, secret: &[u8]) -> Result<String, getrandom::Error> {
        seal_with(&self.seal, user_id, secret)
    }

    /// Opens what [`seal`](Self::seal) made for `user_id`.
    pub fn open(&self, user_id: &str, sealed: &str) -> Result<Vec<u8>, Unsealable> {
        open_with(&self.seal, user_id, sealed)
    }

    /// The stored form of a recovery code of `user_id` (already
    /// normalised by [`normalize_recovery_code`]).
    pub fn code_digest(&self, user_id: &str, code: &str) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.digest) else {
            return String::new();
        };
        mac.update(user_id.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Base64 of a random 192-bit nonce and the ciphertext of `secret` under
/// `cipher`, bound to `aad`.
fn seal_with(
    cipher: &XChaCha20Poly1305,
    aad: &str,
    secret: &[u8],
) -> Result<String, getrandom::Error> {
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce)?;
    let payload = Payload {
        msg: secret,
        aad: aad.as_bytes(),
    };
    // Encryption fails only for messages past 256 GiB.
    let ciphertext = cipher
        .encrypt(&XNonce::from(nonce), payload)
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ciphertext);
    Ok(B64.encode(out))
}

/// Opens what [`seal_with`] made with the same cipher and `aad`.
fn open_with(cipher: &XChaCha20Poly1305, aad: &str, sealed: &str) -> Result<Vec<u8>, Unsealable> {
    let bytes = B64.decode(sealed).map_err(|_| Unsealable)?;
    if bytes.len() < 24 + 16 {
        return Err(Unsealable);
    }
    let (nonce, ciphertext) = bytes.split_at(24);
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| Unsealable)?;
    let payload = Payload {
        msg: ciphertext,
        aad: aad.as_bytes(),
    };
    cipher
        .decrypt(&XNonce::from(nonce), payload)
        .map_err(|_| Unsealable)
}

/// A new random TOTP secret.
pub fn new_secret() -> Result<Vec<u8>, getrandom::Error> {
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret)?;
    Ok(secret)
}

fn totp(secret: &[u8], issuer: Option<String>, account: String) -> TOTP {
    // `new_unchecked`: the secret is ours (160 bits) and the labels are
    // checked by `otpauth_uri`; `new` would only repeat those checks.
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECS,
        secret.to_vec(),
        issuer,
        account,
    )
}

/// The base32 form of a secret, as authenticator apps take it by hand.
pub fn secret_base32(secret: &[u8]) -> String {
    totp(secret, None, String::new()).get_secret_base32()
}

/// The `otpauth://totp/...` URI (Google Authenticator key-URI format) for
/// `account` at `issuer`. A `:` is not allowed in either label; it is
/// replaced.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    let clean = |s: &str| s.replace(':', "_");
    totp(secret, Some(clean(issuer)), clean(account)).get_url()
}

/// The code of `secret` at time step `step`.
pub fn code_at_step(secret: &[u8], step: u64) -> String {
    totp(secret, None, String::new()).generate(step * STEP_SECS)
}

/// Whether `code` has the shape of a TOTP code (six ASCII digits).
pub fn looks_like_totp(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// The time step among now and ±1 step (RFC 6238 §5.2's skew) whose code
/// is `code`, compared in constant time; the latest if several match.
pub fn matching_step(secret: &[u8], code: &str, now_secs: u64) -> Option<u64> {
    if !looks_like_totp(code) {
        return None;
    }
    let now = now_secs / STEP_SECS;
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let expected = code_at_step(secret, step);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// Recovery-code alphabet: lower-case letters and digits without the ones
/// people confuse (0/o, 1/l/i).
const CODE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A fresh set of recovery codes, `xxxxx-xxxxx` (10 symbols of 31: 49
/// bits each; they are used against a limited, backed-off endpoint and
/// stored only as keyed digests).
pub fn new_recovery_codes() -> Result<Vec<String>, getrandom::Error> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    while codes.len() < RECOVERY_CODES {
        let mut code = String::with_capacity(11);
        let mut produced = 0;
        while produced < 10 {
            let mut byte = [0u8; 1];
            getrandom::fill(&mut byte)?;
            // Rejection sampling: no bias towards the first symbols.
            let n = usize::from(byte[0]);
            if n >= CODE_ALPHABET.len() * (256 / CODE_ALPHABET.len()) {
                continue;
            }
            if produced == 5 {
                code.push('-');
            }
            code.push(char::from(CODE_ALPHABET[n % CODE_ALPHABET.len()]));
            produced += 1;
        }
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    Ok(codes)
}

/// A recovery code as typed (any case, with or without the dash or
/// spaces) in its stored form, or `None` if it cannot be one.
pub fn normalize_recovery_code(code: &str) -> Option<String> {
    let symbols: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid = symbols.len() == 10 && symbols.bytes().all(|b| CODE_ALPHABET.contains(&b));
    valid.then(|| format!("{}-{}", &symbols[..5], &symbols[5..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (secret "12345678901234567890"), the
    /// 8-digit vectors cut to their last 6 digits (RFC 4226 §5.3's
    /// truncation is modulo 10^digits).
    #[test]
    fn codes_match_the_rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(
                code_at_step(secret, time / STEP_SECS),
                eight[2..],
                "T = {time}"
            );
        }
    }

    #[test]
    fn one_step_of_skew_either_way_is_accepted_and_two_are_not() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let step = now / STEP_SECS;
        for accepted in [step - 1, step, step + 1] {
            let code = code_at_step(secret, accepted);
            assert_eq!(matching_step(secret, &code, now), Some(accepted));
        }
        for refused in [step - 2, step + 2] {
            let code = code_at_step(secret, refused);
            assert_eq!(matching_step(secret, &code, now), None);
        }
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_for_its_user() {
        let key = SigningSecret::parse("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c").unwrap();
        let other =
            SigningSecret::parse("0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071").unwrap();
        let keys = MfaKeys::derive(&key);
        let secret = new_secret().unwrap();
        let sealed = keys.seal("user-a", &secret).unwrap();
        assert!(!sealed.contains(&secret_base32(&secret)));
        assert_eq!(keys.open("user-a", &sealed).unwrap(), secret);
        assert!(keys.open("user-b", &sealed).is_err());
        assert!(MfaKeys::derive(&other).open("user-a", &sealed).is_err());
        assert_ne!(
            sealed,
            keys.seal("user-a", &secret).unwrap(),
            "nonce reused"
        );
        assert!(!format!("{keys:?}").contains(|c: char| c.is_ascii_digit()));
    }

    #[test]
    fn recovery_codes_are_distinct_normalised_and_digested_per_user() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for code in &codes {
            assert_eq!(
                normalize_recovery_code(code).as_deref(),
                Some(code.as_str())
            );
            let typed = code.to_uppercase().replace('-', " ");
            assert_eq!(
                normalize_recovery_code(&typed).as_deref(),
                Some(code.as_str())
            );
        }
        assert_eq!(normalize_recovery_code("123456"), None);
        let key = SigningSecret::parse("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c").unwrap();
        let keys = MfaKeys::derive(&key);
        assert_ne!(
            keys.code_digest("a", &codes[0]),
            keys.code_digest("b", &codes[0])
        );
        assert_eq!(keys.code_digest("a", &codes[0]).len(), 64);
    }

    #[test]
    fn the_uri_names_issuer_account_and_secret() {
        let secret = b"12345678901234567890";
        let uri = otpauth_uri(secret, "palisade", "ada");
        assert_eq!(
            uri,
            "otpauth://totp/palisade:ada?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=palisade"
        );
    }
}
