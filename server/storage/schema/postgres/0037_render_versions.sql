-- Versions for the rendering caches (see schema/sqlite/0037_render_versions.sql for why).
ALTER TABLE statuses ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION next_row_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF new.version = old.version THEN
        new.version := old.version + 1;
    END IF;
    RETURN new;
END $$;
CREATE TRIGGER statuses_version BEFORE UPDATE ON statuses FOR EACH ROW EXECUTE FUNCTION next_row_version();
CREATE TRIGGER accounts_version BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION next_row_version();

-- The mentions of a status show the mentioned accounts' username, acct and url.
CREATE FUNCTION accounts_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE statuses SET version = version + 1 WHERE id IN (SELECT status_id FROM mentions WHERE account_id = new.id);
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_renamed AFTER UPDATE OF username, domain, url ON accounts FOR EACH ROW
    WHEN (new.username IS DISTINCT FROM old.username OR new.domain IS DISTINCT FROM old.domain
          OR new.url IS DISTINCT FROM old.url)
    EXECUTE FUNCTION accounts_renamed();

-- A poll's tallies, a status's emoji reactions and its attachments are part of its rendering.
CREATE FUNCTION status_version_of_part() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' AND new.status_id IS NOT NULL THEN
        UPDATE statuses SET version = version + 1 WHERE id = new.status_id;
    END IF;
    IF TG_OP <> 'INSERT' AND old.status_id IS NOT NULL
            AND (TG_OP = 'DELETE' OR old.status_id IS DISTINCT FROM new.status_id) THEN
        UPDATE statuses SET version = version + 1 WHERE id = old.status_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER polls_version AFTER UPDATE ON polls FOR EACH ROW EXECUTE FUNCTION status_version_of_part();
CREATE TRIGGER status_reactions_version AFTER INSERT OR DELETE ON status_reactions
    FOR EACH ROW EXECUTE FUNCTION status_version_of_part();
CREATE TRIGGER media_version AFTER UPDATE ON media_attachments FOR EACH ROW EXECUTE FUNCTION status_version_of_part();
