//! The identity the upstream receives: plain `X-Palisade-*` headers, and
//! `X-Palisade-Identity`, a 60-second Ed25519 JWT of the same facts that
//! an upstream reachable by others verifies against
//! `/.well-known/jwks.json` instead of trusting headers.
//!
//! The token's header has `typ: palisade-identity+jwt` and the `kid` of a
//! key of the identity set (never an access-token key: an access token
//! can never pass for an identity, nor the reverse, RFC 8725 §3.11). Its
//! claims bind it to this upstream (`aud`) and to this request's method
//! and path (`htm`, `htu`, as in DPoP, RFC 9449), so a copied identity is
//! good for nothing else, and only for 60 seconds.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

use super::caller::Caller;
use crate::auth::jwt::TokenError;
use crate::auth::signing::{IDENTITY_TTL, SigningKeys};

/// The `typ` of an identity token.
pub const TYP: &str = "palisade-identity+jwt";

pub static USER_ID: HeaderName = HeaderName::from_static("x-palisade-user-id");
pub static USERNAME: HeaderName = HeaderName::from_static("x-palisade-username");
pub static ROLE: HeaderName = HeaderName::from_static("x-palisade-role");
pub static SESSION_ID: HeaderName = HeaderName::from_static("x-palisade-session-id");
pub static AUTH_METHOD: HeaderName = HeaderName::from_static("x-palisade-auth-method");
pub static IDENTITY: HeaderName = HeaderName::from_static("x-palisade-identity");

/// Every header whose name starts with this is Palisade's: a client's
/// are removed before anything is added.
pub const PREFIX: &str = "x-palisade-";

#[derive(Debug, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    username: &'a str,
    role: &'a str,
    sid: &'a str,
    amr: &'a [String],
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    htm: &'a str,
    htu: &'a str,
}

/// Signs identities for one upstream.
#[derive(Debug)]
pub struct Identities {
    keys: Arc<SigningKeys>,
    issuer: String,
    audience: String,
}

impl Identities {
    pub fn new(keys: Arc<SigningKeys>, issuer: String, audience: String) -> Self {
        Self {
            keys,
            issuer,
            audience,
        }
    }

    /// Removes every `X-Palisade-*` header, then adds the identity of
    /// `caller` for a request of `method` to `path`. `Err` only when no
    /// identity key can sign (the request must not go on without it).
    pub fn stamp(
        &self,
        headers: &mut HeaderMap,
        caller: Option<&Caller>,
        method: &str,
        path: &str,
    ) -> Result<(), TokenError> {
        super::headers::remove_prefixed(headers, PREFIX);
        let Some(caller) = caller else {
            return Ok(());
        };
        let token = self.sign(caller, method, path)?;
        let user = &caller.user;
        for (name, value) in [
            (&USER_ID, user.id.as_str()),
            (&USERNAME, user.username.as_str()),
            (&ROLE, user.role.as_str()),
            (&SESSION_ID, caller.session_id.as_str()),
            (&AUTH_METHOD, caller.auth_method()),
            (&IDENTITY, token.as_str()),
        ] {
            // Usernames are ASCII word characters and ids are UUIDs: every
            // value is a valid header value.
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name.clone(), value);
            }
        }
        Ok(())
    }

    fn sign(&self, caller: &Caller, method: &str, path: &str) -> Result<String, TokenError> {
        let now_ms = crate::storage::now_ms();
        let signer = self.keys.signer(now_ms).ok_or(TokenError::NoSigningKey)?;
        let now = u64::try_from(now_ms / 1000).unwrap_or(0);
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: &caller.user.id,
            username: &caller.user.username,
            role: caller.user.role.as_str(),
            sid: &caller.session_id,
            amr: &caller.amr,
            iat: now,
            nbf: now,
            exp: now + IDENTITY_TTL.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
            htm: method,
            htu: path,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TYP.to_owned());
        header.kid = Some(signer.kid);
        Ok(jsonwebtoken::encode(&header, &claims, &signer.key)?)
    }
}
