-- Groups (FEP-1b12). A group is an account whose actor_type is 'Group'; membership is following it (a
-- locked group account takes follow requests, which its moderators answer). `local_groups` holds what
-- only a group hosted here has: its kind, how far it federates, rules, archive state.
CREATE TABLE local_groups (
    account_id INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL DEFAULT 'open', -- open | approval | members_only
    federation TEXT NOT NULL DEFAULT 'local', -- local (never federated) | partners (named domains) | open
    partners TEXT NOT NULL DEFAULT '[]', -- JSON array of partner domains (federation = 'partners')
    rules TEXT NOT NULL DEFAULT '',
    archived_at TEXT,
    created_at TEXT NOT NULL
);

-- Owners and moderators ("admin" in the Soapbox API) of local groups.
CREATE TABLE group_roles (
    group_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role TEXT NOT NULL, -- owner | admin
    created_at TEXT NOT NULL,
    PRIMARY KEY (group_id, account_id)
);
CREATE INDEX group_roles_account ON group_roles (account_id);

CREATE TABLE group_bans (
    group_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (group_id, account_id)
);

-- Posts in a group (local or remote group): its audience. `share_id` is the group's boost of a
-- top-level post; `activity` the Create as it arrived from a remote author (re-sent wrapped in
-- Announce by a local group, FEP-1b12).
CREATE TABLE group_posts (
    group_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status_id INTEGER NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    share_id INTEGER,
    top_level INTEGER NOT NULL DEFAULT 1,
    pinned INTEGER NOT NULL DEFAULT 0,
    removed_at TEXT,
    activity TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (group_id, status_id)
);
CREATE INDEX group_posts_status ON group_posts (status_id);
