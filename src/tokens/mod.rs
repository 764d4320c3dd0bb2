//! Sessions and the tokens that carry them: password login, refresh-token
//! rotation with reuse detection (RFC 9700 §4.14), revocation.
//!
//! A login opens a session (a refresh-token family) with an absolute
//! lifetime. Each refresh consumes the presented token and issues the next
//! one in one transaction; presenting a consumed token again ends the whole
//! session, so a stolen and a legitimate copy cannot both live on.

pub mod discovery;
pub mod routes;

use std::net::IpAddr;
use std::time::Duration;

use http::Method;
use serde::Serialize;

use crate::auth::AuthState;
use crate::auth::audit::{self, Event, RequestContext};
use crate::auth::factor::{self, Check};
use crate::auth::hashing::Verified;
use crate::auth::jwt::Grant;
use crate::auth::notices;
use crate::auth::{backoff, refresh};
use crate::domain::User;
use crate::error::ApiError;
use crate::storage::email_tokens::Purpose;
use crate::storage::{
    self, email_tokens, mfa, refresh_tokens, sessions, sessions::EndReason, users,
};

/// The RFC 6749 §5.1 token response. Its `Debug` hides the tokens.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(value_type = TokenType)]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub scope: Option<String>,
}

/// `bearer` (the document's constant for `TokenResponse.token_type`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    Bearer,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Why a grant failed. Every variant but `Api` is `invalid_grant` to the
/// client; the variants exist for the audit trail.
#[derive(Debug)]
pub enum GrantError {
    InvalidCredentials,
    InvalidRefreshToken,
    /// The password was right and the account has a second factor: the
    /// client goes on with this `mfa_token` and a code.
    MfaRequired(String),
    /// The `mfa_token` is unknown, spent, expired or dead, or the code is
    /// wrong.
    InvalidMfa,
    /// The password was right but the address is unverified and
    /// `auth.require_verified_email` is on.
    Unverified,
    Throttled(Duration),
    Api(ApiError),
}

impl GrantError {
    /// The `outcome` label of a failed login step (`/metrics`).
    fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidCredentials => "failure",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::MfaRequired(_) => "mfa_required",
            Self::InvalidMfa => "mfa_failure",
            Self::Unverified => "unverified",
            Self::Throttled(_) => "throttled",
            Self::Api(_) => "error",
        }
    }
}

/// Counts a password or second-factor login step by its outcome.
pub fn count_login<T>(result: &Result<T, GrantError>) {
    let outcome = match result {
        Ok(_) => "success",
        Err(e) => e.outcome(),
    };
    metrics::counter!(crate::telemetry::prom::LOGINS, "outcome" => outcome).increment(1);
}

impl From<ApiError> for GrantError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<sqlx::Error> for GrantError {
    fn from(e: sqlx::Error) -> Self {
        Self::Api(e.into())
    }
}

/// Opens a session for `user` (from where `ctx` says, authenticated by
/// `amr`) and returns its first tokens.
pub async fn start_session(
    state: &AuthState,
    ctx: &RequestContext,
    user: &User,
    amr: &[&str],
) -> Result<TokenResponse, ApiError> {
    let auth = &state.settings.auth;
    let amr_text = amr.join(",");
    let now = storage::now_ms();
    let session_expires = now + storage::ms(auth.session_lifetime);
    let origin = sessions::Origin {
        ip: ctx.ip.as_deref(),
        user_agent: ctx.user_agent.as_deref(),
        amr: &amr_text,
    };
    let session = sessions::create(state.db.pool(), &user.id, now, session_expires, origin).await?;
    let token = new_refresh_token()?;
    let expires = (now + storage::ms(auth.refresh_token_ttl)).min(session_expires);
    refresh_tokens::insert(
        state.db.pool(),
        &refresh::hash(&token),
        &session,
        now,
        expires,
    )
    .await?;
    respond(state, user, &session, token, &amr_text).await
}

fn new_refresh_token() -> Result<String, ApiError> {
    refresh::generate().map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))
}

async fn respond(
    state: &AuthState,
    user: &User,
    session: &str,
    refresh_token: String,
    amr: &str,
) -> Result<TokenResponse, ApiError> {
    let amr: Vec<String> = amr
        .split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    // A role that must have a second factor, without one (now: a factor
    // removed since the login counts): tokens good for enrolling only.
    let enrol_only = state.settings.auth.mfa_required_roles.contains(&user.role)
        && !storage::mfa::has_active_factor(state.db.pool(), &user.id).await?;
    let grant = Grant { amr, enrol_only };
    let access_token = state
        .tokens
        .issue(&user.id, session, user.role, storage::now_ms(), &grant)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(TokenResponse {
        access_token,
        token_type: "bearer",
        expires_in: state.tokens.ttl_secs(),
        refresh_token,
        scope: None,
    })
}

/// The resource-owner password grant (and `POST /auth/login`).
#[tracing::instrument(skip_all)]
pub async fn password_login(
    state: &AuthState,
    ctx: &RequestContext,
    route: (&Method, &str),
    ip: Option<IpAddr>,
    username: &str,
    password: &str,
) -> Result<TokenResponse, GrantError> {
    let account = crate::domain::email::login_key(username);
    let checks = state
        .limiter
        .check_account(route.0, route.1, ip, &account)
        .await
        .map_err(|e| {
            // The store's own words stay in the log, under the request id.
            tracing::error!(error = %e, "rate limiter unavailable");
            ApiError::Unavailable("Rate limiting is unavailable; try again shortly".into())
        })?;
    if let Some((_, refused)) = checks.iter().find(|(_, d)| !d.allowed) {
        return Err(GrantError::Throttled(refused.reset));
    }
    // The back-off is keyed by the account the name resolves to (so its
    // username and email share one budget), or by the name when none does,
    // and the attempt is reserved before the password is checked.
    let found = users::find_by_login(state.db.pool(), &account).await?;
    let backoff_key = match &found {
        Some((user, _)) => backoff::account_key(&user.id),
        None => backoff::name_key(&account),
    };
    if let Err(wait) = state.throttle.attempt(&backoff_key).await {
        return Err(GrantError::Throttled(wait));
    }
    let verified = state
        .hasher
        .verify(
            password.to_owned(),
            found.as_ref().map(|(_, hash)| hash.expose().to_owned()),
        )
        .await?;
    let (user, stored) = found.unzip();
    let failure = match (&user, verified) {
        (None, _) => Some("unknown_user"),
        (Some(_), Verified::No) => Some("bad_password"),
        (Some(u), Verified::Yes { .. }) if u.disabled => Some("disabled"),
        _ => None,
    };
    let user = match (user, failure) {
        (Some(user), None) => user,
        (user, reason) => {
            audit::record(
                &state.db,
                Event::LoginFailure,
                ctx,
                user.as_ref().map(|u| u.id.as_str()),
                reason,
            )
            .await?;
            return Err(GrantError::InvalidCredentials);
        }
    };
    if verified == (Verified::Yes { upgrade: true }) {
        let new_hash = state
            .hasher
            .hash(crate::domain::password::normalize(password))
            .await?;
        if let Some(stored) = &stored {
            users::upgrade_hash(state.db.pool(), &user.id, stored, &new_hash).await?;
        }
        tracing::info!("password hash upgraded to the current Argon2id parameters");
    }
    if state.settings.auth.require_verified_email && !user.email_verified {
        unverified_login(state, ctx, &user).await?;
        return Err(GrantError::Unverified);
    }
    if mfa::has_active_factor(state.db.pool(), &user.id).await? {
        // The attempt stays reserved in the back-off until a code is
        // right: knowing the password buys no fresh code guesses.
        let token = refresh::generate_prefixed(MFA_TOKEN_PREFIX)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
        let now = storage::now_ms();
        let expires = now + storage::ms(MFA_TOKEN_TTL);
        mfa::open_challenge(
            state.db.pool(),
            &refresh::hash(&token),
            &user.id,
            now,
            expires,
        )
        .await?;
        audit::record(&state.db, Event::MfaChallenge, ctx, Some(&user.id), None).await?;
        return Err(GrantError::MfaRequired(token));
    }
    state.throttle.success(&backoff_key).await;
    audit::record(&state.db, Event::LoginSuccess, ctx, Some(&user.id), None).await?;
    let tokens = start_session(state, ctx, &user, &["pwd"]).await?;
    notices::after_login(state, &user, ctx).await;
    Ok(tokens)
}

/// Prefix of `mfa_token`s.
pub const MFA_TOKEN_PREFIX: &str = "pal_mfa_";
/// How long an `mfa_token` lives.
pub const MFA_TOKEN_TTL: Duration = Duration::from_secs(300);
/// Wrong codes an `mfa_token` survives.
pub const MFA_TOKEN_MAX_FAILURES: i64 = 5;

/// A right password for an unverified account while verification is
/// required: recorded, and a new verification mail at most once an hour.
async fn unverified_login(
    state: &AuthState,
    ctx: &RequestContext,
    user: &User,
) -> Result<(), ApiError> {
    audit::record(
        &state.db,
        Event::LoginFailure,
        ctx,
        Some(&user.id),
        Some("email_unverified"),
    )
    .await?;
    let last = email_tokens::last_issued(state.db.pool(), &user.id, Purpose::Verify).await?;
    let hour_ago = storage::now_ms() - 3_600_000;
    if last.is_none_or(|at| at < hour_ago) {
        notices::send_token(state, user, Purpose::Verify).await?;
    }
    Ok(())
}

/// The MFA grant: an `mfa_token` from a right password, and a TOTP or
/// recovery code.
#[tracing::instrument(skip_all)]
pub async fn mfa_login(
    state: &AuthState,
    ctx: &RequestContext,
    mfa_token: &str,
    otp: &str,
) -> Result<TokenResponse, GrantError> {
    if !refresh::looks_prefixed(MFA_TOKEN_PREFIX, mfa_token) || otp.len() > 64 {
        return Err(GrantError::InvalidMfa);
    }
    let hash = refresh::hash(mfa_token);
    let pool = state.db.pool();
    let now = storage::now_ms();
    let Some(user_id) = mfa::live_challenge(pool, &hash, now, MFA_TOKEN_MAX_FAILURES).await? else {
        return Err(GrantError::InvalidMfa);
    };
    let proof = match factor::check(state, ctx, &user_id, otp).await? {
        Check::Right(proof) => proof,
        Check::Wrong => {
            mfa::fail_challenge(pool, &hash).await?;
            return Err(GrantError::InvalidMfa);
        }
        Check::Throttled(wait) => return Err(GrantError::Throttled(wait)),
    };
    if !mfa::spend_challenge(pool, &hash, storage::now_ms(), MFA_TOKEN_MAX_FAILURES).await? {
        return Err(GrantError::InvalidMfa);
    }
    let Some(user) = users::find_by_id(pool, &user_id)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Err(GrantError::InvalidMfa);
    };
    audit::record(
        &state.db,
        Event::LoginSuccess,
        ctx,
        Some(&user.id),
        Some(proof.amr()),
    )
    .await?;
    let tokens = start_session(state, ctx, &user, &["pwd", proof.amr()]).await?;
    notices::after_login(state, &user, ctx).await;
    Ok(tokens)
}

/// The refresh-token grant: rotate, or detect reuse.
#[tracing::instrument(skip_all)]
pub async fn refresh_grant(
    state: &AuthState,
    ctx: &RequestContext,
    token: &str,
) -> Result<TokenResponse, GrantError> {
    if !refresh::looks_valid(token) {
        return Err(GrantError::InvalidRefreshToken);
    }
    let hash = refresh::hash(token);
    let now = storage::now_ms();
    let mut tx = state.db.pool().begin().await?;
    let Some(session) = refresh_tokens::consume(&mut *tx, &hash, now).await? else {
        tx.rollback().await?;
        return Err(reuse_or_invalid(state, ctx, &hash, now).await);
    };
    let Some((user, session_expires, amr)) =
        sessions::open_session(&mut *tx, &session, now).await?
    else {
        tx.rollback().await?;
        return Err(GrantError::InvalidRefreshToken);
    };
    if user.disabled {
        tx.rollback().await?;
        return Err(GrantError::InvalidRefreshToken);
    }
    let next = new_refresh_token()?;
    let expires = (now + storage::ms(state.settings.auth.refresh_token_ttl)).min(session_expires);
    refresh_tokens::insert(&mut *tx, &refresh::hash(&next), &session, now, expires).await?;
    sessions::touch(&mut *tx, &session, now, now).await?;
    tx.commit().await?;
    audit::record(&state.db, Event::Refresh, ctx, Some(&user.id), None).await?;
    Ok(respond(state, &user, &session, next, &amr).await?)
}

/// A token that could not be consumed: unknown, expired, or already used.
/// Used outside the grace interval means two parties hold the family: end
/// it.
async fn reuse_or_invalid(
    state: &AuthState,
    ctx: &RequestContext,
    hash: &str,
    now: i64,
) -> GrantError {
    let found = match refresh_tokens::lookup(state.db.pool(), hash).await {
        Ok(found) => found,
        Err(e) => return e.into(),
    };
    let Some((session, Some(used_at))) = found else {
        return GrantError::InvalidRefreshToken;
    };
    let grace = storage::ms(state.settings.auth.refresh_reuse_grace);
    if grace > 0 && now - used_at <= grace {
        return GrantError::InvalidRefreshToken;
    }
    let ended = match sessions::end(state.db.pool(), &session, EndReason::ReuseDetected, now).await
    {
        Ok(ended) => ended,
        Err(e) => return e.into(),
    };
    if let Some(owner) = &ended {
        state.sessions.invalidate(owner).await;
    }
    let owner = sessions::owner(state.db.pool(), &session)
        .await
        .ok()
        .flatten();
    tracing::warn!(
        ended = ended.is_some(),
        "refresh token reuse detected: session ended"
    );
    metrics::counter!(crate::telemetry::prom::REFRESH_REUSE).increment(1);
    if let Err(e) = audit::record(
        &state.db,
        Event::RefreshReuse,
        ctx,
        owner.as_deref(),
        Some("session ended"),
    )
    .await
    {
        return e.into();
    }
    GrantError::InvalidRefreshToken
}

/// Ends the session a refresh or access token belongs to (RFC 7009). Any
/// other input is silently ignored, as the RFC requires.
pub async fn revoke(state: &AuthState, ctx: &RequestContext, token: &str) -> Result<(), ApiError> {
    let now = storage::now_ms();
    let session = if refresh::looks_valid(token) {
        refresh_tokens::lookup(state.db.pool(), &refresh::hash(token))
            .await?
            .map(|(s, _)| s)
    } else {
        state.tokens.verify_fresh(token).await.ok().map(|c| c.sid)
    };
    if let Some(session) = session
        && let Some(owner) =
            sessions::end(state.db.pool(), &session, EndReason::Revoked, now).await?
    {
        state.sessions.invalidate(&owner).await;
        audit::record(&state.db, Event::Revoke, ctx, Some(&owner), None).await?;
    }
    Ok(())
}
