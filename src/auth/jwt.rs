//! Access tokens: JWTs with `typ: at+jwt` (RFC 9068), signed HS256 with
//! the signing secret, or EdDSA / ES256 with the shared key set
//! ([`super::signing`]).
//!
//! Verification pins the configured algorithm (the token's own `alg` is
//! never trusted, so `none`, and HS256 keyed with a published public key,
//! fail), requires `typ`, refuses key-selection headers Palisade never
//! issues (`jku`, `jwk`, `x5u`, `x5c`, `crit`; and `kid` with HS256),
//! takes the key only by a `kid` of the server's own set (asymmetric), and
//! checks `iss`, `aud`, `exp` and `nbf` with a small leeway.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::signing::SigningKeys;
use crate::domain::Role;
use crate::settings::{AuthSettings, SigningSecret};

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    /// `iat` to the millisecond: compared with the user's last password
    /// change, which a whole-second `iat` cannot order within its second.
    pub iat_ms: u64,
    /// The session (refresh-token family) the token belongs to.
    pub sid: String,
    pub role: Role,
    /// How the session was authenticated (RFC 8176: `pwd`, `otp`, and
    /// `rc` for a recovery code).
    #[serde(default)]
    pub amr: Vec<String>,
    /// Set when the user's role must have a second factor and has none:
    /// the token is good only for enrolling one (and `/profile`, logout).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa_enrol: bool,
}

/// What a token says beyond who and which session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    pub amr: Vec<String>,
    pub enrol_only: bool,
}

/// Why a token was refused (logged, never sent).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed or unverifiable token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("token header refused: {0}")]
    Header(&'static str),
    #[error("token claims refused: {0}")]
    Claims(&'static str),
    #[error("the token names a key that is not in the key set")]
    UnknownKey,
    #[error("no signing key is active")]
    NoSigningKey,
}

/// The keys tokens are signed with.
enum Keys {
    Hmac {
        encoding: EncodingKey,
        decoding: DecodingKey,
    },
    Set(Arc<SigningKeys>),
}

/// How many verified asymmetric tokens an instance remembers.
const VERIFIED_CACHE: usize = 16_384;

/// A token whose signature was verified: its claims and its key.
struct Verified {
    kid: String,
    claims: Claims,
}

/// Signs and verifies access tokens.
pub struct AccessTokens {
    keys: Keys,
    /// EdDSA / ES256 only: tokens already verified, by the SHA-256 of their
    /// whole text, so a client's next request with the same token skips
    /// the signature (an ES256 verification costs far more than the rest
    /// of the request; see docs/benchmarks.md). Only tokens whose
    /// signature verified are kept; a hit still checks that the key is
    /// published and that `exp` and `nbf` hold now.
    verified: Option<quick_cache::sync::Cache<[u8; 32], Arc<Verified>>>,
    algorithm: Algorithm,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The media type RFC 9068 gives access tokens.
const TYP: &str = "at+jwt";

impl AccessTokens {
    /// HS256 with `secret`.
    pub fn new(secret: &SigningSecret, settings: &AuthSettings) -> Self {
        let keys = Keys::Hmac {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
        };
        Self::with(keys, Algorithm::HS256, settings)
    }

    /// EdDSA or ES256 with the shared key set.
    pub fn with_key_set(keys: Arc<SigningKeys>, settings: &AuthSettings) -> Self {
        let algorithm = match keys.alg() {
            crate::settings::JwtAlgorithm::Es256 => Algorithm::ES256,
            _ => Algorithm::EdDSA,
        };
        Self::with(Keys::Set(keys), algorithm, settings)
    }

    fn with(keys: Keys, algorithm: Algorithm, settings: &AuthSettings) -> Self {
        let verified =
            matches!(keys, Keys::Set(_)).then(|| quick_cache::sync::Cache::new(VERIFIED_CACHE));
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway.as_secs();
        Self {
            keys,
            verified,
            algorithm,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: settings.access_token_ttl,
        }
    }

    /// The key set, when tokens are signed asymmetrically.
    pub fn key_set(&self) -> Option<&Arc<SigningKeys>> {
        match &self.keys {
            Keys::Set(keys) => Some(keys),
            Keys::Hmac { .. } => None,
        }
    }

    /// Seconds an access token lives.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs()
    }

    /// Signs a token for `user_id` in `session_id`.
    pub fn issue(
        &self,
        user_id: &str,
        session_id: &str,
        role: Role,
        now_ms: i64,
        grant: &Grant,
    ) -> Result<String, TokenError> {
        let now_ms = u64::try_from(now_ms).unwrap_or(0);
        let now_secs = now_ms / 1000;
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            exp: now_secs + self.ttl.as_secs(),
            iat: now_secs,
            nbf: now_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            iat_ms: now_ms,
            sid: session_id.to_owned(),
            role,
            amr: grant.amr.clone(),
            mfa_enrol: grant.enrol_only,
        };
        let mut header = Header::new(self.algorithm);
        header.typ = Some(TYP.to_owned());
        match &self.keys {
            Keys::Hmac { encoding, .. } => Ok(jsonwebtoken::encode(&header, &claims, encoding)?),
            Keys::Set(keys) => {
                let signer = keys
                    .signer(i64::try_from(now_ms).unwrap_or(i64::MAX))
                    .ok_or(TokenError::NoSigningKey)?;
                header.kid = Some(signer.kid);
                Ok(jsonwebtoken::encode(&header, &claims, &signer.key)?)
            }
        }
    }

    /// [`verify`](Self::verify), and when the token names a key this
    /// instance does not know, once more after re-reading the key set (at
    /// most once a second): a key rotated in by another process is known
    /// here before this instance's next periodic read.
    pub async fn verify_fresh(&self, token: &str) -> Result<Claims, TokenError> {
        match self.verify(token) {
            Err(TokenError::UnknownKey) => match &self.keys {
                Keys::Set(keys) if keys.reload_for_unknown_kid().await => self.verify(token),
                _ => Err(TokenError::UnknownKey),
            },
            other => other,
        }
    }

    /// Verifies signature, header and claims. No I/O: the caller checks
    /// the session and the user.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(TokenError::Header("typ must be at+jwt"));
        }
        if header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return Err(TokenError::Header("key-selection headers are not accepted"));
        }
        if header.alg != self.algorithm {
            return Err(TokenError::Header("algorithm not accepted"));
        }
        let digest: Option<[u8; 32]> = self
            .verified
            .as_ref()
            .map(|_| <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).into());
        if let (Some(cache), Some(digest), Keys::Set(keys)) = (&self.verified, &digest, &self.keys)
            && let Some(hit) = cache.get(digest)
        {
            let now_ms = crate::storage::now_ms();
            let now = u64::try_from(now_ms / 1000).unwrap_or(0);
            let leeway = self.validation.leeway;
            if keys.verifier(&hit.kid, now_ms).is_none() {
                return Err(TokenError::UnknownKey);
            }
            if hit.claims.exp.saturating_add(leeway) < now {
                return Err(TokenError::Claims("expired"));
            }
            if hit.claims.nbf > now.saturating_add(leeway) {
                return Err(TokenError::Claims("not yet valid"));
            }
            return Ok(hit.claims.clone());
        }
        let decoding = match (&self.keys, header.kid.as_deref()) {
            (Keys::Hmac { decoding, .. }, None) => decoding.clone(),
            (Keys::Hmac { .. }, Some(_)) => {
                return Err(TokenError::Header("key-selection headers are not accepted"));
            }
            (Keys::Set(_), None) => return Err(TokenError::Header("kid is required")),
            (Keys::Set(keys), Some(kid)) => keys
                .verifier(kid, crate::storage::now_ms())
                .ok_or(TokenError::UnknownKey)?,
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &decoding, &self.validation)?.claims;
        // `iat_ms` decides whether a token predates a password change: one
        // issued "in the future" would outlive the next change.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let latest = now_ms.saturating_add(self.validation.leeway.saturating_mul(1000));
        if claims.iat.saturating_mul(1000) > latest || claims.iat_ms > latest {
            return Err(TokenError::Claims("issued in the future"));
        }
        if let (Some(cache), Some(digest), Some(kid)) = (&self.verified, digest, header.kid) {
            cache.insert(
                digest,
                Arc::new(Verified {
                    kid,
                    claims: claims.clone(),
                }),
            );
        }
        Ok(claims)
    }
}
