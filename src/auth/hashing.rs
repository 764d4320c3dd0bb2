//! Password hashing: Argon2id with explicit parameters, bcrypt hashes
//! (`$2a$`, `$2b$`, `$2y$`, as passlib stores them) verified and flagged
//! for an upgrade, all on a bounded pool off the async workers.
//!
//! At most `hash_concurrency` hashes run at once; at most `hash_queue` more
//! wait. Past that the caller gets 503 at once, so a login flood can
//! neither starve other requests nor grow memory.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{
    Output, ParamsString, PasswordHash, PasswordVerifier as _, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

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

/// The hashing pool: `concurrency` threads of its own, each with one
/// Argon2 memory block it reuses for every hash (19 MiB with the default
/// parameters), fed through a queue of `queue` jobs.
///
/// Why not `spawn_blocking`: Argon2 allocates its memory anew for every
/// hash. Freed on whichever of Tokio's blocking threads ran it, glibc keeps
/// each thread's 19 MiB in that thread's arena (its mmap threshold rises
/// to the size of the first block freed), so a login storm left a dozen
/// idle blocking threads holding hundreds of MiB. A fixed set of threads
/// that allocate once bounds the memory to `concurrency` blocks.
pub struct Hasher {
    params: Params,
    jobs: flume::Sender<Job>,
    /// Jobs running or waiting: at most `concurrency + queue`.
    admitted: Arc<tokio::sync::Semaphore>,
    /// Threads, and threads plus queue places (the semaphore's size).
    workers: usize,
    capacity: usize,
    dummy: Arc<str>,
}

type Job = Box<dyn FnOnce(&mut Workspace) + Send>;

/// A worker's Argon2 memory, grown to the largest parameters it met.
#[derive(Default)]
struct Workspace {
    blocks: Vec<argon2::Block>,
}

impl Workspace {
    fn blocks(&mut self, params: &Params) -> &mut [argon2::Block] {
        let count = params.block_count();
        if self.blocks.len() < count {
            self.blocks.resize(count, argon2::Block::default());
        }
        &mut self.blocks[..count]
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// Starts the pool and makes the dummy hash that unknown users are
    /// checked against (computed once, with the same parameters as real
    /// hashes).
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
        let dummy = hash_with(&params, &hex::encode(random), &mut Workspace::default())?;
        let admitted = concurrency.max(1) + queue;
        // Never full: admission is decided by the semaphore.
        let (jobs, queued) = flume::bounded::<Job>(admitted);
        for n in 0..concurrency.max(1) {
            let queued = queued.clone();
            std::thread::Builder::new()
                .name(format!("palisade-hash-{n}"))
                .spawn(move || {
                    let mut workspace = Workspace::default();
                    loop {
                        match queued.recv() {
                            Ok(job) => job(&mut workspace),
                            // The pool is gone: the thread ends.
                            Err(flume::RecvError::Disconnected) => return,
                        }
                    }
                })
                .map_err(|e| anyhow::anyhow!("cannot start a hashing thread: {e}"))?;
        }
        Ok(Self {
            params,
            jobs,
            admitted: Arc::new(tokio::sync::Semaphore::new(admitted)),
            workers: concurrency.max(1),
            capacity: admitted,
            dummy: dummy.into(),
        })
    }

    /// Jobs on the pool now: (running, waiting), from the admission count
    /// (a job holds its place from admission to completion).
    pub fn load(&self) -> (usize, usize) {
        let in_flight = self
            .capacity
            .saturating_sub(self.admitted.available_permits());
        let running = in_flight.min(self.workers);
        (running, in_flight - running)
    }

    /// Hashes a (normalized) password with the current parameters.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let params = self.params.clone();
        self.run(move |ws| hash_with(&params, &password, ws).map_err(ApiError::Internal))
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
            .run(move |ws| verify_with(&params, &password, &hash, ws))
            .await?;
        Ok(if real { verified } else { Verified::No })
    }

    /// Queues `work` for a hashing thread: 503 at once when the queue is
    /// full. If the caller goes away, the work still runs (and its result
    /// is dropped), so the pool's bound holds.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Workspace) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| ApiError::Unavailable("The server is busy; try again shortly".into()))?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |ws| {
            let _ = done.send(work(ws));
            drop(admitted);
        });
        self.jobs
            .try_send(job)
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("the hashing pool stopped")))?;
        result
            .await
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("a hashing thread failed")))
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// Argon2id over the worker's own memory, as a PHC string (the same string
/// `PasswordHasher::hash_password` makes, without its allocation).
fn hash_with(params: &Params, password: &str, ws: &mut Workspace) -> anyhow::Result<String> {
    let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("argon2 hashing failed: {e}");
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| fail(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2(params)
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            ws.blocks(params),
        )
        .map_err(|e| fail(&e))?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` gives `parsed`'s Argon2id hash, over the worker's
/// memory; compared in constant time. Other Argon2 variants go through the
/// crate's own (allocating) verification.
fn argon2_matches(parsed: &PasswordHash<'_>, password: &[u8], ws: &mut Workspace) -> bool {
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return Argon2::default().verify_password(password, parsed).is_ok();
    }
    let Ok(params) = Params::try_from(parsed) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .unwrap_or(Version::V0x13);
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let blocks = ws.blocks(&params);
    let computed = Argon2::new(Algorithm::Argon2id, version, params.clone())
        .hash_password_into_with_memory(password, salt, out, blocks);
    computed.is_ok() && Output::new(out).is_ok_and(|o| o == expected)
}

/// Verifies against Argon2id or bcrypt. bcrypt sees the password as the
/// user typed it (passlib hashed it un-normalized); Argon2id sees the NFKC
/// form. Anything else never verifies.
fn verify_with(params: &Params, password: &str, stored: &str, ws: &mut Workspace) -> Verified {
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
    if stored.starts_with(PBKDF2_PREFIX) {
        // passlib's pbkdf2_sha256 (an imported application's): the raw
        // password, as passlib hashed it, or the normalized one.
        let normalized = crate::domain::password::normalize(password);
        let ok = pbkdf2_matches(password, stored)
            || (normalized != password && pbkdf2_matches(&normalized, stored));
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
    if !argon2_matches(&parsed, normalized.as_bytes(), ws) {
        // An imported Argon2 hash was made over the password as typed.
        if normalized != password && argon2_matches(&parsed, password.as_bytes(), ws) {
            return Verified::Yes { upgrade: true };
        }
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

/// The prefix of passlib's `pbkdf2_sha256` hashes.
const PBKDF2_PREFIX: &str = "$pbkdf2-sha256$";

/// Most PBKDF2 rounds an importable hash may ask for (passlib's default is
/// 29,000): a hash is verified at login, where its cost is paid.
pub const MAX_PBKDF2_ROUNDS: u32 = 1_000_000;

/// passlib's `$pbkdf2-sha256$ROUNDS$SALT$CHECKSUM`, salt and checksum in
/// its "adapted base64" (`.` for `+`, no padding): (rounds, salt, checksum).
fn parse_pbkdf2(stored: &str) -> Option<(u32, Vec<u8>, Vec<u8>)> {
    use base64::Engine;
    let rest = stored.strip_prefix(PBKDF2_PREFIX)?;
    let mut parts = rest.split('$');
    let (rounds, salt, checksum) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let rounds: u32 = rounds
        .parse()
        .ok()
        .filter(|r| (1..=MAX_PBKDF2_ROUNDS).contains(r))?;
    let ab64 = |s: &str| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(s.replace('.', "+"))
            .ok()
    };
    let (salt, checksum) = (ab64(salt)?, ab64(checksum)?);
    (!salt.is_empty() && (16..=64).contains(&checksum.len())).then_some((rounds, salt, checksum))
}

fn pbkdf2_matches(password: &str, stored: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some((rounds, salt, expected)) = parse_pbkdf2(stored) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, rounds, &mut out);
    out.ct_eq(&expected).into()
}

/// Why a stored hash from another application cannot be imported, if it
/// cannot: the formats that verify at login are bcrypt (`$2a$`, `$2b$`,
/// `$2y$`), Argon2 (`$argon2id$`, `$argon2i$`) and passlib's
/// `pbkdf2_sha256`, within costs a login can afford.
pub fn importable(stored: &str) -> Result<(), &'static str> {
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        let cost: u32 = stored
            .get(4..6)
            .and_then(|c| c.parse().ok())
            .ok_or("is not a bcrypt hash")?;
        return if stored.len() == 60 && (4..=16).contains(&cost) {
            Ok(())
        } else {
            Err("is not a bcrypt hash of cost 4 to 16")
        };
    }
    if stored.starts_with(PBKDF2_PREFIX) {
        return parse_pbkdf2(stored)
            .map(|_| ())
            .ok_or("is not a passlib pbkdf2_sha256 hash of at most 1,000,000 rounds");
    }
    let parsed =
        PasswordHash::new(stored).map_err(|_| "is not a bcrypt, Argon2 or pbkdf2_sha256 hash")?;
    if !matches!(parsed.algorithm.as_str(), "argon2id" | "argon2i") {
        return Err("is neither argon2id nor argon2i");
    }
    let params = Params::try_from(&parsed).map_err(|_| "has unreadable Argon2 parameters")?;
    if params.m_cost() > 262_144 || params.t_cost() > 20 || params.p_cost() > 16 {
        return Err("asks for more than 256 MiB, 20 passes or 16 lanes");
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("has no salt or no hash");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn light() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = hash_with(
            &light(),
            "correct horse battery staple",
            &mut Workspace::default(),
        )
        .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(
            verify_with(
                &light(),
                "correct horse battery staple",
                &hash,
                &mut Workspace::default()
            ),
            Verified::Yes { upgrade: false }
        );
        assert_eq!(
            verify_with(
                &light(),
                "correct horse battery stapl",
                &hash,
                &mut Workspace::default()
            ),
            Verified::No
        );
    }

    /// The PHC string made over the worker's memory is the crate's own: each
    /// verifies the other's hash.
    #[test]
    fn hashes_are_interchangeable_with_the_argon2_crates_own() {
        use argon2::password_hash::PasswordHasher as _;
        let ours = hash_with(
            &light(),
            "correct horse battery staple",
            &mut Workspace::default(),
        )
        .unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon2(&light())
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok()
        );
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2(&light())
            .hash_password(b"correct horse battery staple", &salt)
            .unwrap()
            .to_string();
        let mut ws = Workspace::default();
        assert_eq!(
            verify_with(&light(), "correct horse battery staple", &theirs, &mut ws),
            Verified::Yes { upgrade: false }
        );
        // One workspace serves parameters of any size.
        let bigger = Params::new(256, 1, 1, None).unwrap();
        let big = hash_with(&bigger, "another passphrase here", &mut ws).unwrap();
        assert_eq!(
            verify_with(&bigger, "another passphrase here", &big, &mut ws),
            Verified::Yes { upgrade: false }
        );
        assert_eq!(
            verify_with(&light(), "correct horse battery staple", &ours, &mut ws),
            Verified::Yes { upgrade: false }
        );
    }

    #[test]
    fn outdated_argon2_parameters_ask_for_an_upgrade() {
        let hash = hash_with(
            &light(),
            "correct horse battery staple",
            &mut Workspace::default(),
        )
        .unwrap();
        let stronger = Params::new(128, 2, 1, None).unwrap();
        assert_eq!(
            verify_with(
                &stronger,
                "correct horse battery staple",
                &hash,
                &mut Workspace::default()
            ),
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
            verify_with(
                &light(),
                "correct horse battery staple",
                &hash,
                &mut Workspace::default()
            ),
            Verified::Yes { upgrade: true }
        );
        for prefix in ["$2a$", "$2y$"] {
            let other = hash.replacen("$2b$", prefix, 1);
            assert_eq!(
                verify_with(
                    &light(),
                    "correct horse battery staple",
                    &other,
                    &mut Workspace::default()
                ),
                Verified::Yes { upgrade: true }
            );
        }
        assert_eq!(
            verify_with(
                &light(),
                "wrong horse battery staple",
                &hash,
                &mut Workspace::default()
            ),
            Verified::No
        );
    }

    #[test]
    fn garbage_never_verifies() {
        for stored in ["", "plain", "$1$abc$def", "$argon2id$v=19$broken"] {
            assert_eq!(
                verify_with(&light(), "x", stored, &mut Workspace::default()),
                Verified::No
            );
        }
    }

    #[test]
    fn only_hashes_a_login_can_afford_are_importable() {
        // passlib 1.7.4's pbkdf2_sha256 of "password" (29000 rounds), made
        // with `pbkdf2_sha256.using(salt=...).hash("password")`.
        let pbkdf2 = "$pbkdf2-sha256$29000$N2bsfa/1vnfuHeN8bw1BaA$TYM77M2y5nzDVsWjN4pgxlt0LRMbL8z3eAoERBc93N0";
        assert_eq!(importable(pbkdf2), Ok(()));
        assert!(pbkdf2_matches("password", pbkdf2));
        assert!(!pbkdf2_matches("Password", pbkdf2));
        let costly = pbkdf2.replace("$29000$", "$5000000$");
        assert!(importable(&costly).is_err());
        // The shape of a bcrypt hash (cost 4); its digits are not checked here.
        let bcrypt = "$2b$04$0P6sR3hRWLh.vkx4YGxUFOKaXv6wzYvs6oBp3R7WfXvUwSs7QbqT2";
        assert_eq!(importable(bcrypt), Ok(()));
        assert!(importable(&bcrypt.replace("$04$", "$31$")).is_err());
        let argon2d = "$argon2d$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(importable(argon2d).is_err());
        let greedy = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(importable(greedy).is_err());
        for junk in ["", "password", "$1$abc$def", "sha256$abc"] {
            assert!(importable(junk).is_err(), "{junk}");
        }
    }
}
