-- The organisation's boundary: domain rules with per-partner policy, the boundary log, local-only posts.

CREATE TABLE domain_rules (
    id INTEGER PRIMARY KEY,
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
-- changed; only retention pruning removes rows, and only old ones.
CREATE TABLE boundary_log (
    id INTEGER PRIMARY KEY,
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
CREATE TRIGGER boundary_log_append_only BEFORE UPDATE ON boundary_log
BEGIN
    SELECT RAISE(ABORT, 'the boundary log is append-only');
END;
CREATE TRIGGER boundary_log_keep_recent BEFORE DELETE ON boundary_log
WHEN old.at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')
BEGIN
    SELECT RAISE(ABORT, 'boundary log rows younger than a day cannot be deleted');
END;

ALTER TABLE statuses ADD COLUMN local_only INTEGER NOT NULL DEFAULT 0;
