-- Each actor's inbound activities are applied by one process at a time, which holds the actor until
-- `held_until` and renews while it works.
CREATE TABLE inbox_actor_claims (
    actor_uri TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    held_until DOUBLE PRECISION NOT NULL
);
