-- The transactional outbox: domain events written in the same transaction as the change they
-- describe, dispatched after the commit to idempotent subscribers (server/jobs/outbox.py).
CREATE TABLE events (
    id BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    dispatched_at DOUBLE PRECISION
);
CREATE INDEX events_pending ON events (id) WHERE dispatched_at IS NULL;
CREATE INDEX events_dispatched ON events (dispatched_at) WHERE dispatched_at IS NOT NULL;

-- Periodic jobs that must run once cluster-wide: a lease per job, held until `held_until`.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    held_until DOUBLE PRECISION NOT NULL,
    last_run_at DOUBLE PRECISION
);

-- Node numbers for ids (server/ids.py): each live process holds one, renewed while it runs.
CREATE TABLE id_nodes (
    node INTEGER PRIMARY KEY,
    holder TEXT NOT NULL,
    held_until DOUBLE PRECISION NOT NULL
);

-- Subscribers are idempotent: notifications carry the event's id, and each activity an event queues
-- is claimed once per event.
ALTER TABLE notifications ADD COLUMN event_id BIGINT;
CREATE UNIQUE INDEX notifications_event ON notifications (event_id, account_id) WHERE event_id IS NOT NULL;
CREATE TABLE event_activities (
    event_id BIGINT NOT NULL,
    activity_id TEXT NOT NULL,
    PRIMARY KEY (event_id, activity_id)
);
