-- Full-text search over statuses: an FTS5 index of source_text (what the author typed, or the text of
-- a remote post's HTML) and spoiler_text, with statuses as its external content (rowid = status id), so
-- the text is not stored twice. Every statuses row is indexed (boosts have no text; deleted posts are
-- filtered out by the query's join), so the triggers below and FTS5's 'rebuild' agree exactly, whoever
-- writes (the API, the inbox, bulk loads). Queries read it newest-first (rowid DESC) so a LIMIT stops early.
CREATE VIRTUAL TABLE status_search USING fts5(source_text, spoiler_text, content = 'statuses', content_rowid = 'id',
                                              tokenize = 'unicode61 remove_diacritics 2');

CREATE TRIGGER status_search_insert AFTER INSERT ON statuses
BEGIN
    INSERT INTO status_search (rowid, source_text, spoiler_text) VALUES (new.id, new.source_text, new.spoiler_text);
END;

CREATE TRIGGER status_search_update AFTER UPDATE OF source_text, spoiler_text ON statuses
BEGIN
    INSERT INTO status_search (status_search, rowid, source_text, spoiler_text)
        VALUES ('delete', old.id, old.source_text, old.spoiler_text);
    INSERT INTO status_search (rowid, source_text, spoiler_text) VALUES (new.id, new.source_text, new.spoiler_text);
END;

CREATE TRIGGER status_search_delete AFTER DELETE ON statuses
BEGIN
    INSERT INTO status_search (status_search, rowid, source_text, spoiler_text)
        VALUES ('delete', old.id, old.source_text, old.spoiler_text);
END;

-- Statuses written before this migration.
INSERT INTO status_search (status_search) VALUES ('rebuild');

-- The clean-up worker looks for uploads never attached to a status, oldest first.
CREATE INDEX media_unattached ON media_attachments (created_at) WHERE status_id IS NULL;
