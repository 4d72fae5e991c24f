-- Lists (with a materialised list feed), filters (v2, v1 maps onto keywords), markers, followed tags.

CREATE TABLE lists (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    replies_policy TEXT NOT NULL DEFAULT 'list',
    exclusive INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX lists_account ON lists (account_id, id);

CREATE TABLE list_accounts (
    id INTEGER PRIMARY KEY,
    list_id INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX list_accounts_unique ON list_accounts (list_id, account_id);
CREATE INDEX list_accounts_account ON list_accounts (account_id, list_id);

-- Like home_feed: one row per (list, status), written by the fan-out, so reading a list is one index walk.
CREATE TABLE list_feed (
    list_id INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    status_id INTEGER NOT NULL,
    PRIMARY KEY (list_id, status_id)
) WITHOUT ROWID;
CREATE INDEX list_feed_status ON list_feed (status_id);

-- Only followed accounts can be list members (as in Mastodon): an unfollow, or the unfollow a block
-- implies, takes the account out of the follower's lists and their feeds.
CREATE TRIGGER follows_leave_lists AFTER DELETE ON follows
BEGIN
    DELETE FROM list_feed WHERE list_id IN (SELECT id FROM lists WHERE account_id = OLD.account_id)
        AND status_id IN (SELECT id FROM statuses WHERE account_id = OLD.target_account_id);
    DELETE FROM list_accounts WHERE account_id = OLD.target_account_id
        AND list_id IN (SELECT id FROM lists WHERE account_id = OLD.account_id);
END;

CREATE TRIGGER statuses_deleted_leave_lists AFTER UPDATE OF deleted_at ON statuses
WHEN NEW.deleted_at IS NOT NULL
BEGIN
    DELETE FROM list_feed WHERE status_id = NEW.id;
END;

CREATE TABLE filters (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    context TEXT NOT NULL,            -- JSON array of contexts
    action TEXT NOT NULL DEFAULT 'warn',
    expires_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX filters_account ON filters (account_id, id);

CREATE TABLE filter_keywords (
    id INTEGER PRIMARY KEY,
    filter_id INTEGER NOT NULL REFERENCES filters (id) ON DELETE CASCADE,
    keyword TEXT NOT NULL,
    whole_word INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE INDEX filter_keywords_filter ON filter_keywords (filter_id, id);

CREATE TABLE filter_statuses (
    id INTEGER PRIMARY KEY,
    filter_id INTEGER NOT NULL REFERENCES filters (id) ON DELETE CASCADE,
    status_id INTEGER NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX filter_statuses_unique ON filter_statuses (filter_id, status_id);

CREATE TABLE markers (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    timeline TEXT NOT NULL,
    last_read_id INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account_id, timeline)
) WITHOUT ROWID;

CREATE TABLE tag_follows (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX tag_follows_unique ON tag_follows (account_id, tag_id);
CREATE INDEX tag_follows_tag ON tag_follows (tag_id, account_id);
