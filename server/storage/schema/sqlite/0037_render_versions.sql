-- Versions for the rendering caches (server/services/loaders.py): every change to a status or an
-- account row advances its `version`, and so does every change to what a rendered status shows from
-- another table (its poll's tallies, its emoji reactions, its attachments, the names of the accounts
-- it mentions). A process keeps renderings keyed by (id, version) and learns from one query per page
-- whether each is current; nothing has to be told to forget, so every process sharing the database
-- stays coherent without a message. Triggers, not the storage functions, advance the versions, so no
-- writer (today's or tomorrow's) can forget to.
ALTER TABLE statuses ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER statuses_version AFTER UPDATE ON statuses FOR EACH ROW WHEN new.version = old.version
BEGIN
    UPDATE statuses SET version = old.version + 1 WHERE id = new.id;
END;

CREATE TRIGGER accounts_version AFTER UPDATE ON accounts FOR EACH ROW WHEN new.version = old.version
BEGIN
    UPDATE accounts SET version = old.version + 1 WHERE id = new.id;
END;

-- The mentions of a status show the mentioned accounts' username, acct and url.
CREATE TRIGGER accounts_renamed AFTER UPDATE OF username, domain, url ON accounts FOR EACH ROW
WHEN new.username IS NOT old.username OR new.domain IS NOT old.domain OR new.url IS NOT old.url
BEGIN
    UPDATE statuses SET version = version + 1 WHERE id IN (SELECT status_id FROM mentions WHERE account_id = new.id);
END;

CREATE TRIGGER polls_version AFTER UPDATE ON polls FOR EACH ROW
BEGIN
    UPDATE statuses SET version = version + 1 WHERE id = new.status_id;
END;

CREATE TRIGGER status_reactions_added AFTER INSERT ON status_reactions FOR EACH ROW
BEGIN
    UPDATE statuses SET version = version + 1 WHERE id = new.status_id;
END;

CREATE TRIGGER status_reactions_removed AFTER DELETE ON status_reactions FOR EACH ROW
BEGIN
    UPDATE statuses SET version = version + 1 WHERE id = old.status_id;
END;

CREATE TRIGGER media_version AFTER UPDATE ON media_attachments FOR EACH ROW
WHEN new.status_id IS NOT NULL OR old.status_id IS NOT NULL
BEGIN
    UPDATE statuses SET version = version + 1 WHERE id IN (new.status_id, old.status_id);
END;
