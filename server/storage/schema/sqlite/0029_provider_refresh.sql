-- The identity provider's refresh token of an SSO link, sealed (AES-GCM under a key derived from the
-- OIDC client secret, which is not in the database): a Crosstalk token refresh uses it to ask the
-- provider for the person's groups again, so a demotion or removal takes effect without a new sign-in.
CREATE TABLE identity_refresh_tokens (
    identity_id INTEGER PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
    sealed TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
