-- Enterprise identity: roles, links to identity providers, SCIM provisioning, moderation state and
-- the audit log.

-- A user's role; `admin` stays in step with it (role = 'admin') for the code that reads the flag.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator', 'admin'));
UPDATE users SET role = 'admin' WHERE admin = 1;

-- An account's link to an OpenID provider: (issuer, subject) names the person there for good.
CREATE TABLE identities (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    email TEXT,
    created_at TEXT NOT NULL,
    last_login_at TEXT
);
CREATE UNIQUE INDEX identities_subject ON identities (issuer, subject);
CREATE INDEX identities_account ON identities (account_id);

-- A sign-in in progress at the provider: `state` (hashed) finds it, and it is used once.
CREATE TABLE oidc_logins (
    state_hash TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    return_to TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);

-- A first sign-in waiting for the person to choose a username (username_mode = ask).
CREATE TABLE oidc_signups (
    id_hash TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    claims TEXT NOT NULL,
    return_to TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);

-- Web sessions started through the provider end there too (RP-initiated logout).
ALTER TABLE web_sessions ADD COLUMN identity_id BIGINT;

-- Moderation state of any account (local or remote), as Mastodon's admin API reports it.
CREATE TABLE account_moderation (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    silenced_at TEXT,
    sensitized_at TEXT,
    suspended_at TEXT,
    suspension_origin TEXT  -- admin | scim | sso | remote
);

-- Posts hidden while their author is suspended (accounts.suspended_posts = hide), shown again on
-- reactivation.
CREATE TABLE suspension_hidden (
    status_id BIGINT PRIMARY KEY REFERENCES statuses (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL
);
CREATE INDEX suspension_hidden_account ON suspension_hidden (account_id);

-- SCIM: bearer tokens of provisioning clients (hashed), users and groups.
CREATE TABLE scim_tokens (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);

CREATE TABLE scim_users (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    user_name TEXT NOT NULL,
    external_id TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    given_name TEXT,
    family_name TEXT,
    department TEXT,
    title TEXT,
    manager_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (lower(user_name));
CREATE INDEX scim_users_external_id ON scim_users (external_id);

CREATE TABLE scim_groups (
    id BIGINT PRIMARY KEY,
    display_name TEXT NOT NULL,
    external_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (lower(display_name));

CREATE TABLE scim_group_members (
    group_id BIGINT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, account_id)
);
CREATE INDEX scim_group_members_account ON scim_group_members (account_id);

-- Append-only record of every admin and security event, written in the transaction of the action it
-- records. Rows are never changed; retention pruning removes only rows older than a day.
CREATE TABLE audit_log (
    id BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    actor_id BIGINT,          -- the account that acted, if any
    actor TEXT NOT NULL,       -- who acted, for people: a username, scim:<token name>, cli, system
    action TEXT NOT NULL,      -- e.g. login.success, account.suspend, scim.user.create
    target_type TEXT,
    target_id TEXT,
    target TEXT,               -- a human-readable name of the target
    address TEXT,              -- the client's IP address, when the action came over HTTP
    outcome TEXT NOT NULL DEFAULT 'ok',
    detail TEXT NOT NULL DEFAULT '{}'  -- JSON; never a secret, password or token
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE FUNCTION audit_log_keep_recent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF old.at > to_char((now() AT TIME ZONE 'UTC') - interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') THEN
        RAISE EXCEPTION 'audit log rows younger than a day cannot be deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN old;
END;
$$;
CREATE TRIGGER audit_log_keep_recent BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_keep_recent();
