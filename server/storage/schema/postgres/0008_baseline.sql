-- PostgreSQL baseline: the same tables, columns and rules as SQLite's migrations 0001-0008.
-- Ids are BIGINT; timestamps stay RFC 3339 text in UTC (compared as strings, as on SQLite); flags stay
-- integers 0/1; REAL becomes DOUBLE PRECISION and BLOB BYTEA.

-- Profile fields, scheduled-status parameters and the like are JSON held as text; read them leniently,
-- as SQLite's json_valid() guard does: anything that is not a JSON array reads as an empty one.
CREATE FUNCTION crosstalk_json_array(doc TEXT, key TEXT DEFAULT NULL) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    parsed JSONB;
BEGIN
    BEGIN
        parsed := doc::jsonb;
    EXCEPTION WHEN others THEN
        RETURN '[]'::jsonb;
    END;
    IF key IS NOT NULL THEN
        parsed := CASE WHEN jsonb_typeof(parsed) = 'object' THEN parsed -> key END;
    END IF;
    RETURN CASE WHEN jsonb_typeof(parsed) = 'array' THEN parsed ELSE '[]'::jsonb END;
END;
$$;

CREATE TABLE accounts (
    id BIGINT PRIMARY KEY,
    username TEXT NOT NULL,
    domain TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    note_source TEXT NOT NULL DEFAULT '',
    fields TEXT NOT NULL DEFAULT '[]',
    locked INTEGER NOT NULL DEFAULT 0,
    bot INTEGER NOT NULL DEFAULT 0,
    discoverable INTEGER NOT NULL DEFAULT 1,
    avatar_url TEXT NOT NULL DEFAULT '',
    header_url TEXT NOT NULL DEFAULT '',
    uri TEXT NOT NULL,
    url TEXT NOT NULL,
    inbox_url TEXT NOT NULL DEFAULT '',
    shared_inbox_url TEXT NOT NULL DEFAULT '',
    outbox_url TEXT NOT NULL DEFAULT '',
    followers_url TEXT NOT NULL DEFAULT '',
    following_url TEXT NOT NULL DEFAULT '',
    featured_url TEXT NOT NULL DEFAULT '',
    public_key_pem TEXT NOT NULL DEFAULT '',
    private_key_pem TEXT NOT NULL DEFAULT '',
    key_id TEXT NOT NULL DEFAULT '',
    actor_type TEXT NOT NULL DEFAULT 'Person',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    fetched_at TEXT,
    last_status_at TEXT,
    statuses_count INTEGER NOT NULL DEFAULT 0,
    followers_count INTEGER NOT NULL DEFAULT 0,
    following_count INTEGER NOT NULL DEFAULT 0,
    suspended INTEGER NOT NULL DEFAULT 0,
    deleted_at TEXT,
    moved_to_uri TEXT
);
CREATE UNIQUE INDEX accounts_username_domain ON accounts (lower(username), domain);
CREATE UNIQUE INDEX accounts_uri ON accounts (uri);
CREATE INDEX accounts_domain ON accounts (domain);
CREATE INDEX accounts_key_id ON accounts (key_id) WHERE domain != '';

CREATE TABLE users (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    approved INTEGER NOT NULL DEFAULT 1,
    disabled INTEGER NOT NULL DEFAULT 0,
    locale TEXT NOT NULL DEFAULT 'en',
    default_visibility TEXT NOT NULL DEFAULT 'public',
    default_sensitive INTEGER NOT NULL DEFAULT 0,
    default_language TEXT,
    created_at TEXT NOT NULL,
    last_sign_in_at TEXT
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE apps (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    website TEXT,
    client_id TEXT NOT NULL UNIQUE,
    client_secret_hash TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,
    app_id BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    code_challenge TEXT,
    code_challenge_method TEXT,
    expires_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE tokens (
    id BIGINT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    refresh_hash TEXT UNIQUE,
    app_id BIGINT REFERENCES apps (id) ON DELETE CASCADE,
    account_id BIGINT REFERENCES accounts (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at DOUBLE PRECISION NOT NULL
);

-- Full-text search: words of what the author typed (or the text of a remote post's HTML) and of the
-- content warning, case and diacritics folded as SQLite's unicode61 tokenizer does, and split at every
-- ASCII punctuation mark (so "example.com" is two words, as there). The 'simple' configuration: no
-- stemming and no stop words, again as on SQLite.
CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE FUNCTION crosstalk_search_text(doc TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
SET search_path FROM CURRENT  -- finds unaccent where it was installed, whoever calls
AS $$
    SELECT regexp_replace(lower(unaccent('unaccent'::regdictionary, doc)), '[!-/:-@\[-`{-~[:space:]]+', ' ', 'g')
$$;

CREATE FUNCTION crosstalk_search_document(source_text TEXT, spoiler_text TEXT) RETURNS TSVECTOR
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsvector('simple'::regconfig, coalesce(crosstalk_search_text(source_text), ''))
        || to_tsvector('simple'::regconfig, coalesce(crosstalk_search_text(spoiler_text), ''))
$$;

CREATE TABLE statuses (
    id BIGINT PRIMARY KEY,
    uri TEXT NOT NULL,
    url TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    local INTEGER NOT NULL,
    in_reply_to_id BIGINT,
    in_reply_to_account_id BIGINT,
    reblog_of_id BIGINT,
    thread_id BIGINT,
    content TEXT NOT NULL DEFAULT '',
    source_text TEXT NOT NULL DEFAULT '',
    spoiler_text TEXT NOT NULL DEFAULT '',
    visibility TEXT NOT NULL,
    sensitive INTEGER NOT NULL DEFAULT 0,
    language TEXT,
    app_id BIGINT,
    created_at TEXT NOT NULL,
    edited_at TEXT,
    deleted_at TEXT,
    replies_count INTEGER NOT NULL DEFAULT 0,
    reblogs_count INTEGER NOT NULL DEFAULT 0,
    favourites_count INTEGER NOT NULL DEFAULT 0,
    local_only INTEGER NOT NULL DEFAULT 0,
    -- Kept by PostgreSQL itself on every insert and update, whoever writes.
    search_document TSVECTOR GENERATED ALWAYS AS (crosstalk_search_document(source_text, spoiler_text)) STORED
);
CREATE UNIQUE INDEX statuses_uri ON statuses (uri);
CREATE INDEX statuses_account ON statuses (account_id, id);
CREATE INDEX statuses_reply ON statuses (in_reply_to_id) WHERE in_reply_to_id IS NOT NULL;
CREATE INDEX statuses_thread ON statuses (thread_id, id);
CREATE UNIQUE INDEX statuses_one_reblog ON statuses (account_id, reblog_of_id)
    WHERE reblog_of_id IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX statuses_reblog_of ON statuses (reblog_of_id) WHERE reblog_of_id IS NOT NULL;
CREATE INDEX statuses_public ON statuses (id)
    WHERE visibility = 'public' AND reblog_of_id IS NULL AND deleted_at IS NULL;
CREATE INDEX statuses_remote_public ON statuses (id) WHERE local = 0 AND visibility = 'public' AND deleted_at IS NULL;
CREATE INDEX statuses_search ON statuses USING gin (search_document);

CREATE TABLE status_edits (
    id BIGINT PRIMARY KEY,
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    spoiler_text TEXT NOT NULL,
    sensitive INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX status_edits_status ON status_edits (status_id, id);

CREATE TABLE mentions (
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (status_id, account_id)
);
CREATE INDEX mentions_account ON mentions (account_id, status_id);

CREATE TABLE tags (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE UNIQUE INDEX tags_name ON tags (lower(name));
-- Prefix look-ups compare by code point (dialect.binary_collation), whatever the database's locale.
CREATE INDEX tags_name_binary ON tags ((lower(name)) COLLATE "C");

CREATE TABLE status_tags (
    tag_id BIGINT NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    PRIMARY KEY (tag_id, status_id)
);
CREATE INDEX status_tags_status ON status_tags (status_id);

CREATE TABLE favourites (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    uri TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX favourites_unique ON favourites (account_id, status_id);
CREATE INDEX favourites_status ON favourites (status_id);

CREATE TABLE bookmarks (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX bookmarks_unique ON bookmarks (account_id, status_id);

CREATE TABLE pins (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX pins_unique ON pins (account_id, status_id);

CREATE TABLE follows (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    show_reblogs INTEGER NOT NULL DEFAULT 1,
    notify INTEGER NOT NULL DEFAULT 0,
    uri TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX follows_unique ON follows (account_id, target_account_id);
CREATE INDEX follows_target ON follows (target_account_id, account_id);
CREATE INDEX follows_notify ON follows (target_account_id) WHERE notify = 1;

CREATE TABLE follow_requests (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    show_reblogs INTEGER NOT NULL DEFAULT 1,
    notify INTEGER NOT NULL DEFAULT 0,
    uri TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX follow_requests_unique ON follow_requests (account_id, target_account_id);
CREATE INDEX follow_requests_target ON follow_requests (target_account_id, id);

CREATE TABLE blocks (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    uri TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX blocks_unique ON blocks (account_id, target_account_id);
CREATE INDEX blocks_target ON blocks (target_account_id);

CREATE TABLE mutes (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    notifications INTEGER NOT NULL DEFAULT 1,
    expires_at TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX mutes_unique ON mutes (account_id, target_account_id);

CREATE TABLE notifications (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    from_account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    status_id BIGINT REFERENCES statuses (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE INDEX notifications_account ON notifications (account_id, id);

-- The materialised home feed: one row per (reader, status), filled off the request path.
CREATE TABLE home_feed (
    account_id BIGINT NOT NULL,
    status_id BIGINT NOT NULL,
    PRIMARY KEY (account_id, status_id)
);
CREATE INDEX home_feed_status ON home_feed (status_id);

CREATE TABLE idempotency_keys (
    account_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    status_id BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, key)
);

CREATE TABLE media_attachments (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status_id BIGINT REFERENCES statuses (id) ON DELETE SET NULL,
    type TEXT NOT NULL DEFAULT 'image',
    mime_type TEXT NOT NULL DEFAULT '',
    file_path TEXT NOT NULL DEFAULT '',
    preview_path TEXT NOT NULL DEFAULT '',
    remote_url TEXT,
    description TEXT,
    focus_x DOUBLE PRECISION NOT NULL DEFAULT 0,
    focus_y DOUBLE PRECISION NOT NULL DEFAULT 0,
    blurhash TEXT,
    meta TEXT NOT NULL DEFAULT '{}',
    size BIGINT NOT NULL DEFAULT 0,
    position INTEGER NOT NULL DEFAULT 0,
    processing INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX media_status ON media_attachments (status_id, position) WHERE status_id IS NOT NULL;
CREATE INDEX media_account ON media_attachments (account_id, id);
CREATE INDEX media_unattached ON media_attachments (created_at) WHERE status_id IS NULL;

-- Lists (with a materialised list feed), filters, markers, followed tags.
CREATE TABLE lists (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    replies_policy TEXT NOT NULL DEFAULT 'list',
    exclusive INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX lists_account ON lists (account_id, id);

CREATE TABLE list_accounts (
    id BIGINT PRIMARY KEY,
    list_id BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX list_accounts_unique ON list_accounts (list_id, account_id);
CREATE INDEX list_accounts_account ON list_accounts (account_id, list_id);

CREATE TABLE list_feed (
    list_id BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    status_id BIGINT NOT NULL,
    PRIMARY KEY (list_id, status_id)
);
CREATE INDEX list_feed_status ON list_feed (status_id);

-- Only followed accounts can be list members (as in Mastodon): an unfollow, or the unfollow a block
-- implies, takes the account out of the follower's lists and their feeds.
CREATE FUNCTION follows_leave_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM list_feed WHERE list_id IN (SELECT id FROM lists WHERE account_id = OLD.account_id)
        AND status_id IN (SELECT id FROM statuses WHERE account_id = OLD.target_account_id);
    DELETE FROM list_accounts WHERE account_id = OLD.target_account_id
        AND list_id IN (SELECT id FROM lists WHERE account_id = OLD.account_id);
    RETURN OLD;
END;
$$;
CREATE TRIGGER follows_leave_lists AFTER DELETE ON follows FOR EACH ROW EXECUTE FUNCTION follows_leave_lists();

CREATE FUNCTION statuses_deleted_leave_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM list_feed WHERE status_id = NEW.id;
    RETURN NEW;
END;
$$;
CREATE TRIGGER statuses_deleted_leave_lists AFTER UPDATE OF deleted_at ON statuses
    FOR EACH ROW WHEN (NEW.deleted_at IS NOT NULL) EXECUTE FUNCTION statuses_deleted_leave_lists();

CREATE TABLE filters (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    context TEXT NOT NULL,            -- JSON array of contexts
    action TEXT NOT NULL DEFAULT 'warn',
    expires_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX filters_account ON filters (account_id, id);

CREATE TABLE filter_keywords (
    id BIGINT PRIMARY KEY,
    filter_id BIGINT NOT NULL REFERENCES filters (id) ON DELETE CASCADE,
    keyword TEXT NOT NULL,
    whole_word INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE INDEX filter_keywords_filter ON filter_keywords (filter_id, id);

CREATE TABLE filter_statuses (
    id BIGINT PRIMARY KEY,
    filter_id BIGINT NOT NULL REFERENCES filters (id) ON DELETE CASCADE,
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX filter_statuses_unique ON filter_statuses (filter_id, status_id);

CREATE TABLE markers (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    timeline TEXT NOT NULL,
    last_read_id BIGINT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account_id, timeline)
);

CREATE TABLE tag_follows (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    tag_id BIGINT NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX tag_follows_unique ON tag_follows (account_id, tag_id);
CREATE INDEX tag_follows_tag ON tag_follows (tag_id, account_id);

-- Polls, scheduled statuses, direct-message conversations, announcements, follow-suggestion
-- dismissals, per-user domain blocks and reports.
CREATE TABLE polls (
    id BIGINT PRIMARY KEY,
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    options TEXT NOT NULL,
    tallies TEXT NOT NULL,
    multiple INTEGER NOT NULL DEFAULT 0,
    hide_totals INTEGER NOT NULL DEFAULT 0,
    expires_at TEXT,
    votes_count INTEGER NOT NULL DEFAULT 0,
    voters_count INTEGER NOT NULL DEFAULT 0,
    ended_notified INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX polls_status ON polls (status_id);
CREATE INDEX polls_pending_end ON polls (expires_at) WHERE ended_notified = 0 AND expires_at IS NOT NULL;

CREATE TABLE poll_votes (
    id BIGINT PRIMARY KEY,
    poll_id BIGINT NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    choice INTEGER NOT NULL,
    uri TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX poll_votes_unique ON poll_votes (poll_id, account_id, choice);
CREATE INDEX poll_votes_account ON poll_votes (account_id, poll_id);

CREATE TABLE scheduled_statuses (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    scheduled_at TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX scheduled_statuses_due ON scheduled_statuses (scheduled_at);
CREATE INDEX scheduled_statuses_account ON scheduled_statuses (account_id, id);

CREATE TABLE conversations (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    thread_id BIGINT NOT NULL,
    participant_ids TEXT NOT NULL,
    last_status_id BIGINT NOT NULL,
    unread INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX conversations_unique ON conversations (account_id, thread_id, participant_ids);
CREATE INDEX conversations_account ON conversations (account_id, last_status_id);

CREATE TABLE conversation_statuses (
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    PRIMARY KEY (conversation_id, status_id)
);
CREATE INDEX conversation_statuses_status ON conversation_statuses (status_id);

CREATE TABLE announcements (
    id BIGINT PRIMARY KEY,
    text TEXT NOT NULL,
    content TEXT NOT NULL,
    starts_at TEXT,
    ends_at TEXT,
    all_day INTEGER NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 1,
    published_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE announcement_mentions (
    announcement_id BIGINT NOT NULL REFERENCES announcements (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (announcement_id, account_id)
);

CREATE TABLE announcement_reads (
    announcement_id BIGINT NOT NULL REFERENCES announcements (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (announcement_id, account_id)
);

CREATE TABLE announcement_reactions (
    id BIGINT PRIMARY KEY,
    announcement_id BIGINT NOT NULL REFERENCES announcements (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX announcement_reactions_unique ON announcement_reactions (announcement_id, account_id, name);
CREATE INDEX announcement_reactions_announcement ON announcement_reactions (announcement_id, name);

CREATE TABLE suggestion_dismissals (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, target_account_id)
);

CREATE TABLE account_domain_blocks (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX account_domain_blocks_unique ON account_domain_blocks (account_id, domain);

CREATE TABLE reports (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    category TEXT NOT NULL DEFAULT 'other',
    comment TEXT NOT NULL DEFAULT '',
    forward INTEGER NOT NULL DEFAULT 0,
    rule_ids TEXT NOT NULL DEFAULT '[]',
    uri TEXT,
    action_taken_at TEXT,
    action_taken_by_account_id BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    assigned_account_id BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX reports_target ON reports (target_account_id, id);
CREATE INDEX reports_open ON reports (id) WHERE action_taken_at IS NULL;
CREATE INDEX reports_uri ON reports (uri) WHERE uri IS NOT NULL;

CREATE TABLE report_statuses (
    report_id BIGINT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    PRIMARY KEY (report_id, status_id)
);

CREATE TABLE report_notifications (
    notification_id BIGINT PRIMARY KEY REFERENCES notifications (id) ON DELETE CASCADE,
    report_id BIGINT NOT NULL REFERENCES reports (id) ON DELETE CASCADE
);

-- Federation: the inbox log, the durable delivery queue, per-host state, tombstones, reactions.
CREATE TABLE inbox_activities (
    id BIGINT PRIMARY KEY,
    activity_id TEXT NOT NULL,
    actor_uri TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL,
    processed_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE UNIQUE INDEX inbox_activities_activity ON inbox_activities (activity_id);
CREATE INDEX inbox_activities_pending ON inbox_activities (id) WHERE processed_at IS NULL;

CREATE TABLE outbox_activities (
    id BIGINT PRIMARY KEY,
    activity_id TEXT NOT NULL,
    sender_id BIGINT NOT NULL,
    body BYTEA NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE deliveries (
    id BIGINT PRIMARY KEY,
    outbox_id BIGINT NOT NULL REFERENCES outbox_activities (id) ON DELETE CASCADE,
    inbox_url TEXT NOT NULL,
    host TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', -- pending | done | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_host ON deliveries (host, state);

CREATE TABLE federation_hosts (
    host TEXT PRIMARY KEY,
    signature_format TEXT,
    failure_days TEXT NOT NULL DEFAULT '[]',
    unavailable INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    circuit_open_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_success_at TEXT,
    last_seen_at TEXT
);

CREATE TABLE tombstones (
    uri TEXT PRIMARY KEY,
    actor_uri TEXT,
    deleted_at TEXT NOT NULL
);

CREATE TABLE status_reactions (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    uri TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX status_reactions_unique ON status_reactions (account_id, status_id, name);

CREATE TABLE account_moves (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_uri TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- The organisation's boundary: domain rules with per-partner policy, and the boundary log.
CREATE TABLE domain_rules (
    id BIGINT PRIMARY KEY,
    domain TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('allow', 'block')),
    severity TEXT NOT NULL DEFAULT 'suspend' CHECK (severity IN ('suspend', 'limit', 'noop')),
    reject_media INTEGER NOT NULL DEFAULT 0,
    reject_reports INTEGER NOT NULL DEFAULT 0,
    include_subdomains INTEGER NOT NULL DEFAULT 1,
    private_comment TEXT NOT NULL DEFAULT '',
    public_comment TEXT NOT NULL DEFAULT '',
    followers_only INTEGER NOT NULL DEFAULT 0,
    no_direct INTEGER NOT NULL DEFAULT 0,
    text_only INTEGER NOT NULL DEFAULT 0,
    max_visibility_in TEXT CHECK (max_visibility_in IN ('public', 'unlisted', 'private', 'direct')),
    publish_policy INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX domain_rules_unique ON domain_rules (domain, kind);

-- Append-only record of everything that crossed (or tried to cross) the boundary. Rows are never
-- changed; only retention pruning removes rows, and only those older than a day. The database
-- itself enforces this (as SQLite's triggers do), whoever connects.
CREATE TABLE boundary_log (
    id BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    event TEXT NOT NULL,
    domain TEXT NOT NULL,
    actor TEXT,
    activity_type TEXT,
    outcome TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX boundary_log_domain ON boundary_log (domain, id);

CREATE FUNCTION boundary_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the boundary log is append-only' USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER boundary_log_append_only BEFORE UPDATE ON boundary_log
    FOR EACH ROW EXECUTE FUNCTION boundary_log_append_only();
CREATE TRIGGER boundary_log_no_truncate BEFORE TRUNCATE ON boundary_log
    FOR EACH STATEMENT EXECUTE FUNCTION boundary_log_append_only();

CREATE FUNCTION boundary_log_keep_recent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.at > to_char(now() AT TIME ZONE 'UTC' - interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') THEN
        RAISE EXCEPTION 'boundary log rows younger than a day cannot be deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER boundary_log_keep_recent BEFORE DELETE ON boundary_log
    FOR EACH ROW EXECUTE FUNCTION boundary_log_keep_recent();
