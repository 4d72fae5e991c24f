-- crosstalk: outside a transaction
-- An account's statuses as a viewer may see them (its profile, with or without replies and boosts) can
-- be read from this index alone (an index-only scan where the table's pages are all-visible): it
-- carries every column the query tests.
-- Built beside the old index and swapped in, CONCURRENTLY: a plain CREATE INDEX holds every write to
-- statuses, and DROP INDEX every read, for as long as the build takes (minutes on a large instance),
-- while the processes of a rolling update still serve. Each step can run again: a build that failed
-- leaves an invalid index, dropped by the first step of the next attempt.
DROP INDEX CONCURRENTLY IF EXISTS statuses_account_covering;
CREATE INDEX CONCURRENTLY statuses_account_covering ON statuses (account_id, id)
    INCLUDE (deleted_at, visibility, reblog_of_id, in_reply_to_id, in_reply_to_account_id);
DROP INDEX CONCURRENTLY IF EXISTS statuses_account;
ALTER INDEX statuses_account_covering RENAME TO statuses_account;
