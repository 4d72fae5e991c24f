-- Every signed inbox POST and signed fetch looks its signer up by key id: without this index that
-- was a scan of every account (about 3 ms per request at 10,000 accounts, growing with each remote
-- account we learn of). Only remote accounts are looked up this way.
CREATE INDEX accounts_key_id ON accounts (key_id) WHERE domain != '';
