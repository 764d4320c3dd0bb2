-- Gateway mode (issue 13): the identities Palisade sends an upstream
-- application are signed with Ed25519 keys of their own, kept in the same
-- table as the access-token keys and told apart by purpose.
ALTER TABLE signing_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'access';
DROP INDEX signing_keys_alg_active_from;
CREATE INDEX signing_keys_purpose_alg_active_from ON signing_keys (purpose, alg, active_from);
