-- The rendering caches (server/services/loaders.py) learn which statuses and accounts changed from the
-- invalidation feed (0010), which every process reads before it serves a page, instead of reading
-- every version of a page's rows with it (0037): a page costs one look at the feed's newest rows
-- rather than four row look-ups per status. Triggers write the rows, in the transaction of the
-- change, whoever the writer: a version that moves (0037's triggers move it with every change to what
-- a rendering shows) or a row that goes. The key is the id as text, like the feed's other keys.
CREATE TRIGGER statuses_render_changed AFTER UPDATE OF version ON statuses FOR EACH ROW
WHEN new.version <> old.version
BEGIN
    INSERT INTO invalidations (kind, key, created_at)
    VALUES ('status', CAST(new.id AS TEXT), (julianday('now') - 2440587.5) * 86400.0);
END;

CREATE TRIGGER statuses_render_removed AFTER DELETE ON statuses FOR EACH ROW
BEGIN
    INSERT INTO invalidations (kind, key, created_at)
    VALUES ('status', CAST(old.id AS TEXT), (julianday('now') - 2440587.5) * 86400.0);
END;

CREATE TRIGGER accounts_render_changed AFTER UPDATE OF version ON accounts FOR EACH ROW
WHEN new.version <> old.version
BEGIN
    INSERT INTO invalidations (kind, key, created_at)
    VALUES ('account', CAST(new.id AS TEXT), (julianday('now') - 2440587.5) * 86400.0);
END;

CREATE TRIGGER accounts_render_removed AFTER DELETE ON accounts FOR EACH ROW
BEGIN
    INSERT INTO invalidations (kind, key, created_at)
    VALUES ('account', CAST(old.id AS TEXT), (julianday('now') - 2440587.5) * 86400.0);
END;
