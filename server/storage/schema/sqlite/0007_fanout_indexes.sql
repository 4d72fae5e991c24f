-- Fan-out reads the few followers who asked to be notified of new posts without scanning all of them.
CREATE INDEX follows_notify ON follows (target_account_id) WHERE notify = 1;
