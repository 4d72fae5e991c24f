-- A version for what a viewer's own state adds to every page they read (server/services/viewers.py):
-- the accounts hidden from them (their blocks and mutes, blocks of them, their blocked domains), their
-- filters, and their flags on statuses (favourited, boosted, bookmarked, pinned, reacted). Triggers
-- advance `users.viewer_version` on every change to any of it, in the transaction of the change, so
-- a process keeps a viewer's state in memory and learns from the version read with each page whether
-- it is current, as the rendering caches do with statuses' versions (0037).
ALTER TABLE users ADD COLUMN viewer_version INTEGER NOT NULL DEFAULT 0;

-- Hiding a blocked domain's accounts: a new account on the domain is hidden from the blockers at once
-- (local accounts have the domain '').
CREATE INDEX account_domain_blocks_domain ON account_domain_blocks (domain);

CREATE TRIGGER favourites_viewer_added AFTER INSERT ON favourites FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = new.account_id;
END;
CREATE TRIGGER favourites_viewer_removed AFTER DELETE ON favourites FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = old.account_id;
END;

CREATE TRIGGER bookmarks_viewer_added AFTER INSERT ON bookmarks FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = new.account_id;
END;
CREATE TRIGGER bookmarks_viewer_removed AFTER DELETE ON bookmarks FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = old.account_id;
END;

CREATE TRIGGER pins_viewer_added AFTER INSERT ON pins FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = new.account_id;
END;
CREATE TRIGGER pins_viewer_removed AFTER DELETE ON pins FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = old.account_id;
END;

CREATE TRIGGER status_reactions_viewer_added AFTER INSERT ON status_reactions FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = new.account_id;
END;
CREATE TRIGGER status_reactions_viewer_removed AFTER DELETE ON status_reactions FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = old.account_id;
END;

-- A boost is a status of the booster's.
CREATE TRIGGER reblogs_viewer_added AFTER INSERT ON statuses FOR EACH ROW WHEN new.reblog_of_id IS NOT NULL
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = new.account_id;
END;
CREATE TRIGGER reblogs_viewer_changed AFTER UPDATE OF deleted_at ON statuses FOR EACH ROW
WHEN new.reblog_of_id IS NOT NULL AND new.deleted_at IS NOT old.deleted_at
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = new.account_id;
END;
CREATE TRIGGER reblogs_viewer_removed AFTER DELETE ON statuses FOR EACH ROW WHEN old.reblog_of_id IS NOT NULL
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = old.account_id;
END;

-- A block hides each side from the other.
CREATE TRIGGER blocks_viewer_added AFTER INSERT ON blocks FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id IN (new.account_id, new.target_account_id);
END;
CREATE TRIGGER blocks_viewer_removed AFTER DELETE ON blocks FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id IN (old.account_id, old.target_account_id);
END;

CREATE TRIGGER mutes_viewer_added AFTER INSERT ON mutes FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = new.account_id;
END;
CREATE TRIGGER mutes_viewer_changed AFTER UPDATE ON mutes FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id IN (new.account_id, old.account_id);
END;
CREATE TRIGGER mutes_viewer_removed AFTER DELETE ON mutes FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = old.account_id;
END;

CREATE TRIGGER account_domain_blocks_viewer_added AFTER INSERT ON account_domain_blocks FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = new.account_id;
END;
CREATE TRIGGER account_domain_blocks_viewer_removed AFTER DELETE ON account_domain_blocks FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = old.account_id;
END;
CREATE TRIGGER accounts_on_blocked_domain AFTER INSERT ON accounts FOR EACH ROW WHEN new.domain <> ''
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1
    WHERE account_id IN (SELECT account_id FROM account_domain_blocks WHERE domain = new.domain);
END;
CREATE TRIGGER accounts_moved_domain AFTER UPDATE OF domain ON accounts FOR EACH ROW
WHEN new.domain IS NOT old.domain
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1
    WHERE account_id IN (SELECT account_id FROM account_domain_blocks WHERE domain IN (new.domain, old.domain));
END;

CREATE TRIGGER filters_viewer_added AFTER INSERT ON filters FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = new.account_id;
END;
CREATE TRIGGER filters_viewer_changed AFTER UPDATE ON filters FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id IN (new.account_id, old.account_id);
END;
CREATE TRIGGER filters_viewer_removed AFTER DELETE ON filters FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1 WHERE account_id = old.account_id;
END;

CREATE TRIGGER filter_keywords_viewer_added AFTER INSERT ON filter_keywords FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1
    WHERE account_id = (SELECT account_id FROM filters WHERE id = new.filter_id);
END;
CREATE TRIGGER filter_keywords_viewer_changed AFTER UPDATE ON filter_keywords FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1
    WHERE account_id IN (SELECT account_id FROM filters WHERE id IN (new.filter_id, old.filter_id));
END;
CREATE TRIGGER filter_keywords_viewer_removed AFTER DELETE ON filter_keywords FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1
    WHERE account_id = (SELECT account_id FROM filters WHERE id = old.filter_id);
END;

CREATE TRIGGER filter_statuses_viewer_added AFTER INSERT ON filter_statuses FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1
    WHERE account_id = (SELECT account_id FROM filters WHERE id = new.filter_id);
END;
CREATE TRIGGER filter_statuses_viewer_removed AFTER DELETE ON filter_statuses FOR EACH ROW
BEGIN
    UPDATE users SET viewer_version = viewer_version + 1
    WHERE account_id = (SELECT account_id FROM filters WHERE id = old.filter_id);
END;
