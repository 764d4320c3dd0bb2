-- Account security (issue 10): email verification, TOTP factors and
-- recovery codes, MFA login challenges, one-time email tokens and the
-- devices a user has logged in from. Secrets and tokens are never stored
-- as given: TOTP secrets sealed (XChaCha20-Poly1305), recovery codes as
-- keyed digests (HMAC-SHA-256), tokens as SHA-256, devices as digests.

ALTER TABLE users ADD COLUMN email_verified BIGINT NOT NULL DEFAULT 0;

-- One factor per user; confirmed_at NULL while pending. last_step is the
-- highest RFC 6238 time step accepted, so a code is never accepted twice.
CREATE TABLE totp_factors (
    user_id       TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- The step between a right password and the second factor.
CREATE TABLE mfa_challenges (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    failures   BIGINT NOT NULL DEFAULT 0,
    used_at    BIGINT
);
CREATE INDEX mfa_challenges_user_id ON mfa_challenges (user_id);

-- Email verification and password reset tokens. stamp binds a token to
-- what it was issued against (the address for verification, a digest of
-- the password hash for reset), so it dies when that changes.
CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    stamp      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX email_tokens_user_id ON email_tokens (user_id, purpose);

-- Where a user has logged in from: a digest of the user agent and the
-- client's /24 (IPv4) or /56 (IPv6), for the new-device notice.
CREATE TABLE login_devices (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device       TEXT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, device)
);
