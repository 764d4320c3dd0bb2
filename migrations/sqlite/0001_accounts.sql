-- Accounts, login sessions (refresh-token families), refresh tokens and
-- security events. Times are Unix milliseconds; ids are UUID v7 text.
-- The PostgreSQL migration of the same number has the same shape.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY NOT NULL,
    email               TEXT NOT NULL,
    email_key           TEXT NOT NULL UNIQUE,
    username            TEXT NOT NULL,
    username_key        TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    role                TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    disabled            INTEGER NOT NULL DEFAULT 0,
    password_changed_at INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    end_reason  TEXT
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

-- No foreign key: the audit trail outlives deleted accounts.
CREATE TABLE security_events (
    id          TEXT PRIMARY KEY NOT NULL,
    at          INTEGER NOT NULL,
    event       TEXT NOT NULL,
    user_id     TEXT,
    actor_id    TEXT,
    ip          TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    detail      TEXT
);
CREATE INDEX security_events_user_id ON security_events (user_id, at);
CREATE INDEX security_events_event ON security_events (event, at);
