-- Follow suggestions list the most followed local accounts: this index lets a page stop after the
-- accounts it lists instead of sorting every local account (55 ms at 10,000 of them).
CREATE INDEX accounts_domain_followed ON accounts (domain, followers_count DESC, id);
