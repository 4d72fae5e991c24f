-- The rendering caches learn which statuses and accounts changed from the invalidation feed (see
-- schema/sqlite/0039_render_invalidations.sql for why).
--
-- Reading the feed in order: identity values are taken when a row is inserted, not when its
-- transaction commits, so a row with a smaller id can become visible after one with a larger id, and
-- a reader that only asked for ids above the last it saw would miss it. Each row therefore carries the
-- id of the transaction that wrote it; a reader asks for every row whose transaction id is at least the
-- oldest transaction that was still running when it last read (its snapshot's xmin), and skips the
-- rows it has already seen (server/storage/invalidations.py).
ALTER TABLE invalidations ADD COLUMN xid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX invalidations_xid ON invalidations (xid);

CREATE FUNCTION render_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO invalidations (kind, key, created_at)
        VALUES (TG_ARGV[0], old.id::text, extract(epoch FROM clock_timestamp()));
    ELSE
        INSERT INTO invalidations (kind, key, created_at)
        VALUES (TG_ARGV[0], new.id::text, extract(epoch FROM clock_timestamp()));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER statuses_render_changed AFTER UPDATE ON statuses FOR EACH ROW
    WHEN (new.version <> old.version) EXECUTE FUNCTION render_changed('status');
CREATE TRIGGER statuses_render_removed AFTER DELETE ON statuses FOR EACH ROW EXECUTE FUNCTION render_changed('status');
CREATE TRIGGER accounts_render_changed AFTER UPDATE ON accounts FOR EACH ROW
    WHEN (new.version <> old.version) EXECUTE FUNCTION render_changed('account');
CREATE TRIGGER accounts_render_removed AFTER DELETE ON accounts FOR EACH ROW EXECUTE FUNCTION render_changed('account');
