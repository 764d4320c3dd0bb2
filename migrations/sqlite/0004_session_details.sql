-- What GET /sessions shows of each session: where and with what it was
-- opened, how it was authenticated, and when it was last used (written at
-- most once a minute per session, and at each refresh).
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE sessions ADD COLUMN last_used_at INTEGER;
UPDATE sessions SET last_used_at = created_at;
