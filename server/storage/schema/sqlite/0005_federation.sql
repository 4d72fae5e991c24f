-- Federation: the inbox log, the durable delivery queue, per-host state, tombstones, reactions.

-- Every accepted inbound activity, persisted before we answer 202 and processed afterwards.
CREATE TABLE inbox_activities (
    id INTEGER PRIMARY KEY,
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

-- One row per outbound activity; deliveries point at it so the body is stored once.
CREATE TABLE outbox_activities (
    id INTEGER PRIMARY KEY,
    activity_id TEXT NOT NULL,
    sender_id INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL REFERENCES outbox_activities (id) ON DELETE CASCADE,
    inbox_url TEXT NOT NULL,
    host TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', -- pending | done | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_host ON deliveries (host, state);

CREATE TABLE federation_hosts (
    host TEXT PRIMARY KEY,
    signature_format TEXT,
    failure_days TEXT NOT NULL DEFAULT '[]',
    unavailable INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    circuit_open_until REAL NOT NULL DEFAULT 0,
    last_success_at TEXT,
    last_seen_at TEXT
);

-- Deleted objects: a Tombstone blocks re-creation and answers fetches with 410.
CREATE TABLE tombstones (
    uri TEXT PRIMARY KEY,
    actor_uri TEXT,
    deleted_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE status_reactions (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status_id INTEGER NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    uri TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX status_reactions_unique ON status_reactions (account_id, status_id, name);

CREATE TABLE account_moves (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_uri TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX statuses_remote_public ON statuses (id) WHERE local = 0 AND visibility = 'public' AND deleted_at IS NULL;
