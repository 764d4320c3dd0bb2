//! Password hashing: Argon2id with explicit parameters, bcrypt hashes
//! (`$2a$`, `$2b$`, `$2y$`, as passlib stores them) verified and flagged
//! for an upgrade, all on a bounded pool off the async workers.
//!
//! At most `hash_concurrency` hashes run at once; at most `hash_queue` more
//! wait. Past that the caller gets 503 at once, so a login flood can
//! neither starve other requests nor grow memory.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::settings::Argon2Settings;

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    /// Yes, and the stored hash should be replaced by a current Argon2id.
    Yes {
        upgrade: bool,
    },
}

/// The hashing pool.
pub struct Hasher {
    params: Params,
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    dummy: Arc<str>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// Builds the pool and the dummy hash that unknown users are checked
    /// against (computed once, with the same parameters as real hashes).
    pub fn new(settings: Argon2Settings, concurrency: usize, queue: usize) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let mut random = [0u8; 24];
        getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let dummy = hash_with(&params, &hex::encode(random))?;
        Ok(Self {
            params,
            running: Arc::new(Semaphore::new(concurrency.max(1))),
            admitted: Arc::new(Semaphore::new(concurrency.max(1) + queue)),
            dummy: dummy.into(),
        })
    }

    /// Hashes a (normalized) password with the current parameters.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let params = self.params.clone();
        self.run(move || hash_with(&params, &password).map_err(ApiError::Internal))
            .await?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when
    /// there is no user, so both paths cost the same.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<Verified, ApiError> {
        let params = self.params.clone();
        let (hash, real) = match stored {
            Some(h) => (h, true),
            None => (self.dummy.to_string(), false),
        };
        let verified = self
            .run(move || verify_with(&params, &password, &hash))
            .await?;
        Ok(if real { verified } else { Verified::No })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| ApiError::Unavailable("The server is busy; try again shortly".into()))?;
        let running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        let result = tokio::task::spawn_blocking(move || {
            let out = work();
            drop(running);
            drop(admitted);
            out
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
        Ok(result)
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
}

/// Verifies against Argon2id or bcrypt. bcrypt sees the password as the
/// user typed it (passlib hashed it un-normalized); Argon2id sees the NFKC
/// form. Anything else never verifies.
fn verify_with(params: &Params, password: &str, stored: &str) -> Verified {
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        let raw = password;
        let normalized = crate::domain::password::normalize(password);
        let ok = bcrypt::verify(raw, stored).unwrap_or(false)
            || (normalized != raw && bcrypt::verify(&normalized, stored).unwrap_or(false));
        return if ok {
            Verified::Yes { upgrade: true }
        } else {
            Verified::No
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified::No;
    };
    let normalized = crate::domain::password::normalize(password);
    if argon2(params)
        .verify_password(normalized.as_bytes(), &parsed)
        .is_err()
    {
        return Verified::No;
    }
    let current = parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(Version::V0x13.into())
        && Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() == params.m_cost()
                && p.t_cost() == params.t_cost()
                && p.p_cost() == params.p_cost()
        });
    Verified::Yes { upgrade: !current }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn light() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = hash_with(&light(), "correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(
            verify_with(&light(), "correct horse battery staple", &hash),
            Verified::Yes { upgrade: false }
        );
        assert_eq!(
            verify_with(&light(), "correct horse battery stapl", &hash),
            Verified::No
        );
    }

    #[test]
    fn outdated_argon2_parameters_ask_for_an_upgrade() {
        let hash = hash_with(&light(), "correct horse battery staple").unwrap();
        let stronger = Params::new(128, 2, 1, None).unwrap();
        assert_eq!(
            verify_with(&stronger, "correct horse battery staple", &hash),
            Verified::Yes { upgrade: true }
        );
    }

    #[test]
    fn a_passlib_bcrypt_hash_verifies_and_asks_for_an_upgrade() {
        // passlib.hash.bcrypt.using(rounds=4).hash("correct horse battery staple")
        let hash = bcrypt::hash_with_result("correct horse battery staple", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        assert_eq!(
            verify_with(&light(), "correct horse battery staple", &hash),
            Verified::Yes { upgrade: true }
        );
        for prefix in ["$2a$", "$2y$"] {
            let other = hash.replacen("$2b$", prefix, 1);
            assert_eq!(
                verify_with(&light(), "correct horse battery staple", &other),
                Verified::Yes { upgrade: true }
            );
        }
        assert_eq!(
            verify_with(&light(), "wrong horse battery staple", &hash),
            Verified::No
        );
    }

    #[test]
    fn garbage_never_verifies() {
        for stored in ["", "plain", "$1$abc$def", "$argon2id$v=19$broken"] {
            assert_eq!(verify_with(&light(), "x", stored), Verified::No);
        }
    }
}
