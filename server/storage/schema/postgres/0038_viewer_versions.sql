-- A version for what a viewer's own state adds to every page they read (see
-- schema/sqlite/0038_viewer_versions.sql for what it covers and why).
ALTER TABLE users ADD COLUMN viewer_version BIGINT NOT NULL DEFAULT 0;

CREATE INDEX account_domain_blocks_domain ON account_domain_blocks (domain);

-- The row's account_id is the viewer (the old and the new one, where an update changes it).
CREATE FUNCTION viewer_version_of_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = new.account_id;
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND old.account_id IS DISTINCT FROM new.account_id) THEN
        UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = old.account_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER favourites_viewer AFTER INSERT OR DELETE ON favourites
    FOR EACH ROW EXECUTE FUNCTION viewer_version_of_row();
CREATE TRIGGER bookmarks_viewer AFTER INSERT OR DELETE ON bookmarks
    FOR EACH ROW EXECUTE FUNCTION viewer_version_of_row();
CREATE TRIGGER pins_viewer AFTER INSERT OR DELETE ON pins
    FOR EACH ROW EXECUTE FUNCTION viewer_version_of_row();
CREATE TRIGGER status_reactions_viewer AFTER INSERT OR DELETE ON status_reactions
    FOR EACH ROW EXECUTE FUNCTION viewer_version_of_row();
CREATE TRIGGER mutes_viewer AFTER INSERT OR UPDATE OR DELETE ON mutes
    FOR EACH ROW EXECUTE FUNCTION viewer_version_of_row();
CREATE TRIGGER account_domain_blocks_viewer AFTER INSERT OR DELETE ON account_domain_blocks
    FOR EACH ROW EXECUTE FUNCTION viewer_version_of_row();
CREATE TRIGGER filters_viewer AFTER INSERT OR UPDATE OR DELETE ON filters
    FOR EACH ROW EXECUTE FUNCTION viewer_version_of_row();

-- A boost is a status of the booster's.
CREATE TRIGGER reblogs_viewer_added AFTER INSERT ON statuses FOR EACH ROW
    WHEN (new.reblog_of_id IS NOT NULL) EXECUTE FUNCTION viewer_version_of_row();
CREATE TRIGGER reblogs_viewer_changed AFTER UPDATE OF deleted_at ON statuses FOR EACH ROW
    WHEN (new.reblog_of_id IS NOT NULL AND new.deleted_at IS DISTINCT FROM old.deleted_at)
    EXECUTE FUNCTION viewer_version_of_row();
CREATE TRIGGER reblogs_viewer_removed AFTER DELETE ON statuses FOR EACH ROW
    WHEN (old.reblog_of_id IS NOT NULL) EXECUTE FUNCTION viewer_version_of_row();

-- A block hides each side from the other.
CREATE FUNCTION viewer_version_of_block() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id IN (old.account_id, old.target_account_id);
    ELSE
        UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id IN (new.account_id, new.target_account_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER blocks_viewer AFTER INSERT OR DELETE ON blocks FOR EACH ROW EXECUTE FUNCTION viewer_version_of_block();

-- A new account on a domain someone blocked is hidden from them at once.
CREATE FUNCTION viewer_version_of_domain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1
    WHERE account_id IN (SELECT account_id FROM account_domain_blocks
                         WHERE domain = new.domain OR (TG_OP = 'UPDATE' AND domain = old.domain));
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_on_blocked_domain AFTER INSERT ON accounts FOR EACH ROW
    WHEN (new.domain <> '') EXECUTE FUNCTION viewer_version_of_domain();
CREATE TRIGGER accounts_moved_domain AFTER UPDATE OF domain ON accounts FOR EACH ROW
    WHEN (new.domain IS DISTINCT FROM old.domain) EXECUTE FUNCTION viewer_version_of_domain();

-- A filter's keywords and statuses belong to the filter's owner.
CREATE FUNCTION viewer_version_of_filter_part() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        UPDATE users SET viewer_version = viewer_version + 1
        WHERE account_id = (SELECT account_id FROM filters WHERE id = new.filter_id);
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND old.filter_id IS DISTINCT FROM new.filter_id) THEN
        UPDATE users SET viewer_version = viewer_version + 1
        WHERE account_id = (SELECT account_id FROM filters WHERE id = old.filter_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER filter_keywords_viewer AFTER INSERT OR UPDATE OR DELETE ON filter_keywords
    FOR EACH ROW EXECUTE FUNCTION viewer_version_of_filter_part();
CREATE TRIGGER filter_statuses_viewer AFTER INSERT OR DELETE ON filter_statuses
    FOR EACH ROW EXECUTE FUNCTION viewer_version_of_filter_part();
