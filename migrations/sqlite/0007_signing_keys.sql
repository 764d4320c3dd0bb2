-- The key set of asymmetric token signing (issue 11): every instance reads
-- it, so a rotation made by one process (`palisade keys rotate`) reaches
-- all. A key signs from active_from until the next key's active_from, and
-- stays published (JWKS) until every token it signed has expired. The
-- private key is PKCS#8 sealed under a key derived from the MFA key, so a
-- dump of this table alone signs nothing.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    alg         TEXT NOT NULL,
    public_jwk  TEXT NOT NULL,
    private_key TEXT NOT NULL,
    source      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    active_from INTEGER NOT NULL
);
CREATE INDEX signing_keys_alg_active_from ON signing_keys (alg, active_from);
