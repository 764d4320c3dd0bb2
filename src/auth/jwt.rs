//! Access tokens: HS256 JWTs with `typ: at+jwt` (RFC 9068).
//!
//! Verification pins the algorithm (the token's own `alg` is never
//! trusted, so `none` and HS256/RS256 confusion fail), requires `typ`,
//! refuses key-selection headers Palisade never issues (`kid`, `jku`,
//! `jwk`, `x5u`, `x5c`, `crit`), and checks `iss`, `aud`, `exp` and `nbf`
//! with a small leeway.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

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
}

/// Signs and verifies access tokens.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
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
    pub fn new(secret: &SigningSecret, settings: &AuthSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway.as_secs();
        Self {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: settings.access_token_ttl,
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
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(TYP.to_owned());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
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
        if header.kid.is_some()
            || header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return Err(TokenError::Header("key-selection headers are not accepted"));
        }
        let claims =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?.claims;
        // `iat_ms` decides whether a token predates a password change: one
        // issued "in the future" would outlive the next change.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let latest = now_ms.saturating_add(self.validation.leeway.saturating_mul(1000));
        if claims.iat.saturating_mul(1000) > latest || claims.iat_ms > latest {
            return Err(TokenError::Claims("issued in the future"));
        }
        Ok(claims)
    }
}
