-- The directory's "active" order (latest post first) read the newest status id of every listed account
-- through a subquery per account: 85 ms a page at 10,000 local accounts. The id of an account's latest
-- post is kept on its row instead (with its date, in the same transaction as the post), and an index
-- in that order lets a page stop after the accounts it lists.
ALTER TABLE accounts ADD COLUMN last_status_id BIGINT;
UPDATE accounts SET last_status_id = (SELECT max(s.id) FROM statuses s WHERE s.account_id = accounts.id);
CREATE INDEX accounts_last_status ON accounts (last_status_id DESC NULLS LAST, id DESC);
