-- The inbox worker schedules waiting activities by sending host and actor, so that one slow server
-- holds up only its own activities: record the host, and find an actor's waiting rows by index.
ALTER TABLE inbox_activities ADD COLUMN host TEXT NOT NULL DEFAULT '';
UPDATE inbox_activities SET host = lower(substr(substr(actor_uri, instr(actor_uri, '://') + 3), 1,
    instr(substr(actor_uri, instr(actor_uri, '://') + 3) || '/', '/') - 1))
    WHERE processed_at IS NULL;
CREATE INDEX inbox_activities_pending_actor ON inbox_activities (actor_uri, id) WHERE processed_at IS NULL;
