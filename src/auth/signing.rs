//! The asymmetric signing key set (`auth.jwt_algorithm` = `EdDSA` or
//! `ES256`), shared by every instance through the database.
//!
//! - **Material.** Ed25519 (`ed25519-dalek`) or P-256 (`p256`) key pairs,
//!   made from the operating system's random source or read from a PEM
//!   file, kept as PKCS#8 and sealed (XChaCha20-Poly1305 under a key
//!   derived from the MFA key, the `kid` as associated data) in the
//!   `signing_keys` table. The `kid` is the key's RFC 7638 thumbprint.
//! - **Which key signs.** Every key has an `active_from`; the newest key
//!   whose time has come signs, so all instances switch at the same
//!   instant, whatever their clocks read last. `palisade keys rotate` adds
//!   a key that activates `auth.signing_key_publish_delay` later: it is in
//!   every instance's set and in the JWKS before it signs.
//! - **Which keys verify.** A key verifies from when it is added until
//!   every token it can have signed has expired: the next key's
//!   activation, plus the access-token lifetime, the leeway and one
//!   refresh interval (an instance may sign with a key up to one refresh
//!   after a `--now` rotation). Past that it leaves the JWKS and
//!   verification, and `palisade prune` deletes it.
//! - **Refresh.** Each instance re-reads the set every
//!   `auth.key_set_refresh`, and at most once a second when a token names
//!   a `kid` it does not know (so a flood of made-up `kid`s costs one read
//!   a second, not one per request).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::AnyPool;
use zeroize::Zeroizing;

use super::mfa::MfaKeys;
use crate::settings::{AuthSettings, JwtAlgorithm};
use crate::storage::signing_keys::{self, KeyRow};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long a gateway identity (`X-Palisade-Identity`) lives.
pub const IDENTITY_TTL: Duration = Duration::from_secs(60);

/// What a key set signs: access tokens (`auth.jwt_algorithm`), or the
/// identities the gateway sends its upstream (always Ed25519, whatever
/// access tokens use). Each purpose has keys of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Access,
    Identity,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Identity => "identity",
        }
    }
}

/// One key set: its purpose, algorithm, and the times that decide when
/// its keys sign and verify.
#[derive(Debug, Clone)]
pub struct KeySetSpec {
    pub purpose: Purpose,
    pub alg: JwtAlgorithm,
    /// How long a token signed by the set lives.
    token_ttl: Duration,
    leeway: Duration,
    refresh: Duration,
    publish_delay: Duration,
    key_file: Option<std::path::PathBuf>,
}

impl KeySetSpec {
    /// The access-token set of `auth.jwt_algorithm` (and its key file).
    pub fn access(auth: &AuthSettings) -> Self {
        Self::access_with(auth, auth.jwt_algorithm)
    }

    fn access_with(auth: &AuthSettings, alg: JwtAlgorithm) -> Self {
        Self {
            purpose: Purpose::Access,
            alg,
            token_ttl: auth.access_token_ttl,
            leeway: auth.leeway,
            refresh: auth.key_set_refresh,
            publish_delay: auth.signing_key_publish_delay,
            key_file: auth.jwt_private_key_file.clone(),
        }
    }

    /// The gateway's identity set: Ed25519, tokens of [`IDENTITY_TTL`].
    pub fn identity(auth: &AuthSettings) -> Self {
        Self {
            purpose: Purpose::Identity,
            alg: JwtAlgorithm::EdDsa,
            token_ttl: IDENTITY_TTL,
            leeway: auth.leeway,
            refresh: auth.key_set_refresh,
            publish_delay: auth.signing_key_publish_delay,
            key_file: None,
        }
    }
}

/// The shortest time between two reads of the key set caused by unknown
/// `kid`s.
const UNKNOWN_KID_RELOAD: i64 = 1_000;

/// A key pair: its PKCS#8 private key and its public JWK members.
pub struct KeyMaterial {
    alg: JwtAlgorithm,
    pkcs8: Zeroizing<Vec<u8>>,
    /// The public members (`kty`, `crv`, `x`, and `y` for EC).
    public: Value,
    kid: String,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl KeyMaterial {
    /// A new random key pair for `alg` (`EdDSA` or `ES256`).
    pub fn generate(alg: JwtAlgorithm) -> anyhow::Result<Self> {
        match alg {
            JwtAlgorithm::EdDsa => {
                let mut seed = Zeroizing::new([0u8; 32]);
                getrandom::fill(seed.as_mut()).context("no random numbers")?;
                Self::ed25519(&ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            JwtAlgorithm::Es256 => loop {
                let mut bytes = Zeroizing::new([0u8; 32]);
                getrandom::fill(bytes.as_mut()).context("no random numbers")?;
                // A scalar at or past the group order (chance ~2^-32) is
                // drawn again.
                if let Ok(secret) = p256::SecretKey::from_slice(bytes.as_ref()) {
                    return Self::p256(&secret);
                }
            },
            JwtAlgorithm::Hs256 => anyhow::bail!("HS256 has no key pair"),
        }
    }

    /// The key pair in a PEM file: PKCS#8 (`BEGIN PRIVATE KEY`), or SEC1
    /// (`BEGIN EC PRIVATE KEY`) for ES256. Errors never show key bytes.
    pub fn from_pem(alg: JwtAlgorithm, pem: &str) -> anyhow::Result<Self> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        match alg {
            JwtAlgorithm::EdDsa => {
                let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                    .map_err(|_| anyhow::anyhow!("not a PKCS#8 Ed25519 private key in PEM"))?;
                Self::ed25519(&key)
            }
            JwtAlgorithm::Es256 => {
                let key = p256::SecretKey::from_pkcs8_pem(pem)
                    .or_else(|_| p256::SecretKey::from_sec1_pem(pem))
                    .map_err(|_| {
                        anyhow::anyhow!("not a PKCS#8 or SEC1 P-256 private key in PEM")
                    })?;
                Self::p256(&key)
            }
            JwtAlgorithm::Hs256 => anyhow::bail!("HS256 has no key pair"),
        }
    }

    /// The key pair of a stored PKCS#8 private key.
    fn from_pkcs8(alg: JwtAlgorithm, der: &[u8]) -> anyhow::Result<Self> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        match alg {
            JwtAlgorithm::EdDsa => Self::ed25519(
                &ed25519_dalek::SigningKey::from_pkcs8_der(der)
                    .map_err(|_| anyhow::anyhow!("not an Ed25519 private key"))?,
            ),
            JwtAlgorithm::Es256 => Self::p256(
                &p256::SecretKey::from_pkcs8_der(der)
                    .map_err(|_| anyhow::anyhow!("not a P-256 private key"))?,
            ),
            JwtAlgorithm::Hs256 => anyhow::bail!("HS256 has no key pair"),
        }
    }

    fn ed25519(key: &ed25519_dalek::SigningKey) -> anyhow::Result<Self> {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let der = key
            .to_pkcs8_der()
            .map_err(|_| anyhow::anyhow!("cannot encode the Ed25519 key"))?;
        let x = B64URL.encode(key.verifying_key().as_bytes());
        // RFC 8037 §2: an Ed25519 public key is an OKP JWK.
        Ok(Self::new(
            JwtAlgorithm::EdDsa,
            der.as_bytes(),
            json!({"crv": "Ed25519", "kty": "OKP", "x": x}),
        ))
    }

    fn p256(key: &p256::SecretKey) -> anyhow::Result<Self> {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        use p256::pkcs8::EncodePrivateKey as _;
        let der = key
            .to_pkcs8_der()
            .map_err(|_| anyhow::anyhow!("cannot encode the P-256 key"))?;
        let point = key.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            anyhow::bail!("the P-256 public key is the identity");
        };
        // RFC 7518 §6.2.1: coordinates as 32-byte big-endian, base64url.
        Ok(Self::new(
            JwtAlgorithm::Es256,
            der.as_bytes(),
            json!({"crv": "P-256", "kty": "EC", "x": B64URL.encode(x), "y": B64URL.encode(y)}),
        ))
    }

    fn new(alg: JwtAlgorithm, der: &[u8], public: Value) -> Self {
        let kid = thumbprint(&public);
        Self {
            alg,
            pkcs8: Zeroizing::new(der.to_vec()),
            public,
            kid,
        }
    }

    /// The key's id: its RFC 7638 thumbprint.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK as published: the key, `kid`, `alg`, `use`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.public.clone();
        if let Value::Object(members) = &mut jwk {
            members.insert("kid".into(), Value::String(self.kid.clone()));
            members.insert("alg".into(), Value::String(self.alg.as_str().into()));
            members.insert("use".into(), Value::String("sig".into()));
        }
        jwk
    }

    fn encoding_key(&self) -> EncodingKey {
        match self.alg {
            JwtAlgorithm::Es256 => EncodingKey::from_ec_der(&self.pkcs8),
            _ => EncodingKey::from_ed_der(&self.pkcs8),
        }
    }

    fn decoding_key(&self) -> anyhow::Result<DecodingKey> {
        let member = |name: &str| self.public[name].as_str().unwrap_or_default().to_owned();
        let key = match self.alg {
            JwtAlgorithm::Es256 => DecodingKey::from_ec_components(&member("x"), &member("y")),
            _ => DecodingKey::from_ed_components(&member("x")),
        };
        key.context("the public key does not decode")
    }

    /// The row that stores this key, sealed under `mfa`.
    pub fn to_row(
        &self,
        mfa: &MfaKeys,
        purpose: Purpose,
        source: &str,
        now: i64,
        active_from: i64,
    ) -> anyhow::Result<KeyRow> {
        Ok(KeyRow {
            kid: self.kid.clone(),
            purpose: purpose.as_str().to_owned(),
            alg: self.alg.as_str().to_owned(),
            public_jwk: self.public_jwk().to_string(),
            private_key: mfa
                .seal_signing_key(&self.kid, &self.pkcs8)
                .context("no random numbers")?,
            source: source.to_owned(),
            created_at: now,
            active_from,
        })
    }
}

/// RFC 7638: SHA-256 of the required members in lexicographic order,
/// without white space, base64url.
fn thumbprint(public: &Value) -> String {
    // serde_json's map is ordered by key (no `preserve_order`), and
    // `to_string` writes no white space: exactly RFC 7638's form.
    let canonical = public.to_string();
    B64URL.encode(Sha256::digest(canonical.as_bytes()))
}

/// One key of the loaded set.
struct Loaded {
    kid: String,
    active_from: i64,
    /// When it stops verifying ([`verifies_until`]); `None` while no
    /// newer key has taken over.
    until: Option<i64>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Value,
}

/// A key's state, as `palisade keys list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Pending,
    /// Signing.
    Current,
    /// Replaced; published until the tokens it signed have expired.
    Retired,
    /// Past that: verifies nothing, pruned.
    Expired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Current => "current",
            Self::Retired => "retired",
            Self::Expired => "expired",
        }
    }
}

/// How long a replaced key keeps verifying, in milliseconds.
fn grace_ms(spec: &KeySetSpec) -> i64 {
    let grace = spec.token_ttl + spec.leeway + spec.refresh;
    i64::try_from(grace.as_millis()).unwrap_or(i64::MAX)
}

/// When key `i` of `rows` (one algorithm, oldest activation first) stops
/// verifying: its successor's activation plus `grace` (`None`: no
/// successor yet).
fn verifies_until(rows: &[KeyRow], i: usize, grace: i64) -> Option<i64> {
    rows.get(i + 1)
        .map(|next| next.active_from.saturating_add(grace))
}

/// The states of `rows` (one set, oldest activation first) at `now`,
/// with the time each stops verifying (`None`: not yet known).
pub fn states(rows: &[KeyRow], spec: &KeySetSpec, now: i64) -> Vec<(KeyState, Option<i64>)> {
    let grace = grace_ms(spec);
    let current = rows.iter().rposition(|r| r.active_from <= now);
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let until = verifies_until(rows, i, grace);
            let state = if row.active_from > now {
                KeyState::Pending
            } else if Some(i) == current {
                KeyState::Current
            } else if until.is_some_and(|until| until <= now) {
                KeyState::Expired
            } else {
                KeyState::Retired
            };
            (state, until)
        })
        .collect()
}

/// Why a key set could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("cannot read or write the signing key set: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "signing key {kid} cannot be opened with this server's MFA key (was auth.mfa_key changed?)"
    )]
    Unsealable { kid: String },
    #[error("signing key {kid}: {why}")]
    Bad { kid: String, why: String },
}

/// The key set of one purpose and algorithm, as an instance holds it:
/// re-read from the database from time to time.
pub struct SigningKeys {
    purpose: Purpose,
    alg: JwtAlgorithm,
    pool: AnyPool,
    mfa: Arc<MfaKeys>,
    grace: i64,
    keys: RwLock<Arc<Vec<Loaded>>>,
    last_read: AtomicI64,
    refresh: Duration,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("purpose", &self.purpose)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The key that signs now, with its `kid`.
pub struct Signer {
    pub kid: String,
    pub key: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Opens the key set of `spec`: adds the configured key file's key if
    /// it is not there yet (activating at once when the set has no usable
    /// key, else after the publish delay, like a rotation), or generates
    /// the first key when the set is empty, then reads it.
    pub async fn open(pool: AnyPool, mfa: Arc<MfaKeys>, spec: &KeySetSpec) -> anyhow::Result<Self> {
        let (alg, purpose) = (spec.alg, spec.purpose);
        anyhow::ensure!(alg.is_asymmetric(), "HS256 has no key set");
        let now = crate::storage::now_ms();
        let rows = signing_keys::list(&pool, purpose.as_str(), alg.as_str()).await?;
        let usable = states(&rows, spec, now)
            .iter()
            .any(|(state, _)| matches!(state, KeyState::Current | KeyState::Pending));
        if let Some(path) = &spec.key_file {
            let pem = Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
                format!("cannot read auth.jwt_private_key_file {}", path.display())
            })?);
            let key = KeyMaterial::from_pem(alg, &pem).with_context(|| {
                format!(
                    "auth.jwt_private_key_file {} for {}",
                    path.display(),
                    alg.as_str()
                )
            })?;
            if !signing_keys::exists(&pool, key.kid()).await? {
                let active_from = if usable {
                    now.saturating_add(crate::storage::ms(spec.publish_delay))
                } else {
                    now
                };
                signing_keys::insert(&pool, &key.to_row(&mfa, purpose, "file", now, active_from)?)
                    .await?;
                tracing::info!(
                    kid = key.kid(),
                    alg = alg.as_str(),
                    active_from,
                    "signing key from auth.jwt_private_key_file added to the key set"
                );
            }
        } else if !usable {
            let key = KeyMaterial::generate(alg)?;
            signing_keys::insert(&pool, &key.to_row(&mfa, purpose, "generated", now, now)?).await?;
            tracing::info!(
                kid = key.kid(),
                alg = alg.as_str(),
                purpose = purpose.as_str(),
                "generated the first signing key"
            );
        }
        let keys = Self {
            purpose,
            alg,
            pool,
            mfa,
            grace: grace_ms(spec),
            keys: RwLock::default(),
            last_read: AtomicI64::new(0),
            refresh: spec.refresh,
        };
        keys.reload().await?;
        Ok(keys)
    }

    /// Re-reads the set from the database.
    pub async fn reload(&self) -> Result<(), KeySetError> {
        self.last_read
            .store(crate::storage::now_ms(), Ordering::Relaxed);
        let rows = signing_keys::list(&self.pool, self.purpose.as_str(), self.alg.as_str()).await?;
        let mut loaded = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let der = Zeroizing::new(
                self.mfa
                    .open_signing_key(&row.kid, &row.private_key)
                    .map_err(|_| KeySetError::Unsealable {
                        kid: row.kid.clone(),
                    })?,
            );
            let bad = |e: anyhow::Error| KeySetError::Bad {
                kid: row.kid.clone(),
                why: e.to_string(),
            };
            let key = KeyMaterial::from_pkcs8(self.alg, &der).map_err(bad)?;
            if key.kid() != row.kid {
                return Err(KeySetError::Bad {
                    kid: row.kid.clone(),
                    why: "the stored key does not match its kid".into(),
                });
            }
            loaded.push(Loaded {
                kid: row.kid.clone(),
                active_from: row.active_from,
                until: verifies_until(&rows, i, self.grace),
                encoding: key.encoding_key(),
                decoding: key.decoding_key().map_err(bad)?,
                jwk: key.public_jwk(),
            });
        }
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(loaded);
        Ok(())
    }

    /// Re-reads the set unless it was read less than a second ago; whether
    /// it did.
    pub async fn reload_for_unknown_kid(&self) -> bool {
        let now = crate::storage::now_ms();
        let last = self.last_read.load(Ordering::Relaxed);
        if now.saturating_sub(last) < UNKNOWN_KID_RELOAD
            || self
                .last_read
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        match self.reload().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-read the signing key set");
                false
            }
        }
    }

    /// Re-reads the set every `auth.key_set_refresh`, for ever.
    pub async fn run_refresh(self: Arc<Self>) {
        let mut every = tokio::time::interval(self.refresh);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "cannot re-read the signing key set; keeping the keys read before");
            }
        }
    }

    fn snapshot(&self) -> Arc<Vec<Loaded>> {
        Arc::clone(
            &self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The algorithm of the set.
    pub fn alg(&self) -> JwtAlgorithm {
        self.alg
    }

    /// The key that signs at `now`: the newest whose activation has come.
    pub fn signer(&self, now: i64) -> Option<Signer> {
        let keys = self.snapshot();
        let key = keys.iter().rev().find(|k| k.active_from <= now)?;
        Some(Signer {
            kid: key.kid.clone(),
            key: key.encoding.clone(),
        })
    }

    /// The key that verifies a token naming `kid` at `now`, if it is in
    /// the set and not past its publication.
    pub fn verifier(&self, kid: &str, now: i64) -> Option<DecodingKey> {
        let keys = self.snapshot();
        let key = keys.iter().find(|k| k.kid == kid)?;
        self.published(key, now).then(|| key.decoding.clone())
    }

    fn published(&self, key: &Loaded, now: i64) -> bool {
        key.until.is_none_or(|until| now < until)
    }

    /// The JWKS: every key that may verify a live token at `now`.
    pub fn jwks(&self, now: i64) -> Vec<Value> {
        self.snapshot()
            .iter()
            .filter(|k| self.published(k, now))
            .map(|k| k.jwk.clone())
            .collect()
    }
}

/// `palisade keys rotate`: adds a new key to the set of `spec` that
/// signs after the publish delay (`now`: at once). Its row.
pub async fn rotate(
    pool: &AnyPool,
    mfa: &MfaKeys,
    spec: &KeySetSpec,
    at_once: bool,
) -> anyhow::Result<KeyRow> {
    let (alg, purpose) = (spec.alg, spec.purpose);
    anyhow::ensure!(
        alg.is_asymmetric(),
        "auth.jwt_algorithm is HS256, which signs with auth.jwt_secret: there is no key set to rotate"
    );
    let now = crate::storage::now_ms();
    let active_from = if at_once {
        now
    } else {
        now.saturating_add(crate::storage::ms(spec.publish_delay))
    };
    // A key activating at the same millisecond as the current one would
    // tie; one millisecond later it is strictly newer.
    let latest = signing_keys::list(pool, purpose.as_str(), alg.as_str())
        .await?
        .last()
        .map_or(i64::MIN, |r| r.active_from);
    let active_from = active_from.max(latest.saturating_add(1));
    let key = KeyMaterial::generate(alg)?;
    let row = key.to_row(mfa, purpose, "generated", now, active_from)?;
    signing_keys::insert(pool, &row).await?;
    Ok(row)
}

/// Deletes the keys of every set whose publication has ended; their
/// number.
pub async fn prune(pool: &AnyPool, auth: &AuthSettings, dry_run: bool) -> anyhow::Result<u64> {
    let now = crate::storage::now_ms();
    let mut expired = Vec::new();
    let sets = [
        KeySetSpec::access_with(auth, JwtAlgorithm::EdDsa),
        KeySetSpec::access_with(auth, JwtAlgorithm::Es256),
        KeySetSpec::identity(auth),
    ];
    for spec in &sets {
        let rows = signing_keys::list(pool, spec.purpose.as_str(), spec.alg.as_str()).await?;
        for (row, (state, _)) in rows.iter().zip(states(&rows, spec, now)) {
            if state == KeyState::Expired {
                expired.push(row.kid.clone());
            }
        }
    }
    if dry_run {
        return Ok(expired.len() as u64);
    }
    Ok(signing_keys::delete(pool, &expired).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1's example works on RSA; RFC 8037 §A.3 gives the
    /// thumbprint of its Ed25519 example key.
    #[test]
    fn the_kid_is_the_rfc_8037_thumbprint() {
        let public = json!({"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert_eq!(
            thumbprint(&public),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    /// RFC 8037 §A.1-A.2: the public key of the example private key.
    #[test]
    fn an_ed25519_pem_gives_the_rfc_8037_public_key() {
        // The RFC's private key d, as PKCS#8.
        let d = B64URL
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap();
        let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
        der.extend_from_slice(&d);
        let key = KeyMaterial::from_pkcs8(JwtAlgorithm::EdDsa, &der).unwrap();
        assert_eq!(
            key.public["x"],
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let jwk = key.public_jwk();
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        assert!(jwk.get("d").is_none(), "{jwk}");
    }

    #[test]
    fn generated_keys_round_trip_through_pkcs8_and_differ() {
        for alg in [JwtAlgorithm::EdDsa, JwtAlgorithm::Es256] {
            let a = KeyMaterial::generate(alg).unwrap();
            let b = KeyMaterial::generate(alg).unwrap();
            assert_ne!(a.kid(), b.kid());
            let again = KeyMaterial::from_pkcs8(alg, &a.pkcs8).unwrap();
            assert_eq!(again.kid(), a.kid());
            assert!(format!("{a:?}").contains(a.kid()));
            assert!(!format!("{a:?}").contains("pkcs8"));
        }
    }

    #[test]
    fn a_key_is_pending_then_current_then_retired_then_expired() {
        let settings =
            crate::settings::Settings::load(&crate::settings::Sources::default()).unwrap();
        let auth = &KeySetSpec::access(&settings.auth);
        let row = |kid: &str, active_from: i64| KeyRow {
            kid: kid.into(),
            purpose: "access".into(),
            alg: "EdDSA".into(),
            public_jwk: String::new(),
            private_key: String::new(),
            source: "generated".into(),
            created_at: 0,
            active_from,
        };
        let rows = vec![row("a", 0), row("b", 1_000)];
        let grace = grace_ms(auth);
        let at = |now| {
            states(&rows, auth, now)
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>()
        };
        assert_eq!(at(500), [KeyState::Current, KeyState::Pending]);
        assert_eq!(at(1_000), [KeyState::Retired, KeyState::Current]);
        assert_eq!(
            at(1_000 + grace - 1),
            [KeyState::Retired, KeyState::Current]
        );
        assert_eq!(at(1_000 + grace), [KeyState::Expired, KeyState::Current]);
    }
}
