-- An account's statuses as a viewer may see them (its profile, with or without replies and boosts) can
-- be read from this index alone (an index-only scan where the table's pages are all-visible): it
-- carries every column the query tests.
DROP INDEX statuses_account;
CREATE INDEX statuses_account ON statuses (account_id, id)
    INCLUDE (deleted_at, visibility, reblog_of_id, in_reply_to_id, in_reply_to_account_id);
