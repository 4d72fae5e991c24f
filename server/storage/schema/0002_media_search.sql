-- Full-text search over statuses: the plain text of the content and the content warning, one row per
-- original (non-boost) status that is not deleted, rowid = status id. server/storage/search.py keeps it
-- in step with the statuses table; the planner reads it newest-first (rowid DESC) so a LIMIT stops early.
CREATE VIRTUAL TABLE status_search USING fts5(text, spoiler, tokenize = 'unicode61 remove_diacritics 2');

-- Statuses written before this migration: local ones carry their plain source text.
INSERT INTO status_search (rowid, text, spoiler)
    SELECT id, CASE WHEN source_text != '' THEN source_text ELSE content END, spoiler_text FROM statuses
    WHERE deleted_at IS NULL AND reblog_of_id IS NULL;

-- The clean-up worker looks for uploads never attached to a status, oldest first.
CREATE INDEX media_unattached ON media_attachments (created_at) WHERE status_id IS NULL;
