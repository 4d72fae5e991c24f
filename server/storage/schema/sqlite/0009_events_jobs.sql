-- The transactional outbox: domain events written in the same transaction as the change they
-- describe, dispatched after the commit to idempotent subscribers (server/jobs/outbox.py).
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,                  -- the typed event as JSON
    created_at REAL NOT NULL,
    claimed_by TEXT,                        -- the process dispatching it
    claimed_until REAL NOT NULL DEFAULT 0,  -- after this, any process may take it over
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    dispatched_at REAL                      -- NULL until every subscriber has handled it
);
CREATE INDEX events_pending ON events (id) WHERE dispatched_at IS NULL;
CREATE INDEX events_dispatched ON events (dispatched_at) WHERE dispatched_at IS NOT NULL;

-- Periodic jobs that must run once cluster-wide: a lease per job, held until `held_until`.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    held_until REAL NOT NULL,
    last_run_at REAL
);

-- Node numbers for ids (server/ids.py): each live process holds one, renewed while it runs.
CREATE TABLE id_nodes (
    node INTEGER PRIMARY KEY,
    holder TEXT NOT NULL,
    held_until REAL NOT NULL
);

-- Subscribers are idempotent: what one writes for an event carries the event's id, and a second run
-- of the same event finds it there.
ALTER TABLE notifications ADD COLUMN event_id INTEGER;
CREATE UNIQUE INDEX notifications_event ON notifications (event_id, account_id) WHERE event_id IS NOT NULL;
-- Activities queued for delivery on behalf of an event (all of one activity's variants are queued in one
-- transaction, which first claims its row here).
CREATE TABLE event_activities (
    event_id INTEGER NOT NULL,
    activity_id TEXT NOT NULL,
    PRIMARY KEY (event_id, activity_id)
) WITHOUT ROWID;
