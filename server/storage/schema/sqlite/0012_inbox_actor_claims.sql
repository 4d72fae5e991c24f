-- Several processes may apply inbound activities: each actor's activities are applied by one process
-- at a time (in arrival order), which holds the actor until `held_until` and renews while it works.
CREATE TABLE inbox_actor_claims (
    actor_uri TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    held_until REAL NOT NULL
);
