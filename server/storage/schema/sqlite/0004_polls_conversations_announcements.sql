-- Polls, scheduled statuses, direct-message conversations, announcements, follow-suggestion
-- dismissals, per-user domain blocks and reports.

-- One poll per status. `tallies` caches the vote count of each option (JSON list of integers, same
-- order as `options`) so rendering a page of statuses never counts votes; remote polls (federation)
-- carry their own tallies and have no local vote rows behind them.
CREATE TABLE polls (
    id INTEGER PRIMARY KEY,
    status_id INTEGER NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    options TEXT NOT NULL,
    tallies TEXT NOT NULL,
    multiple INTEGER NOT NULL DEFAULT 0,
    hide_totals INTEGER NOT NULL DEFAULT 0,
    expires_at TEXT,
    votes_count INTEGER NOT NULL DEFAULT 0,
    voters_count INTEGER NOT NULL DEFAULT 0,
    ended_notified INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX polls_status ON polls (status_id);
-- The scheduler looks for polls that ended and whose voters have not been told yet.
CREATE INDEX polls_pending_end ON polls (expires_at) WHERE ended_notified = 0 AND expires_at IS NOT NULL;

CREATE TABLE poll_votes (
    id INTEGER PRIMARY KEY,
    poll_id INTEGER NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    choice INTEGER NOT NULL,
    uri TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX poll_votes_unique ON poll_votes (poll_id, account_id, choice);
CREATE INDEX poll_votes_account ON poll_votes (account_id, poll_id);

-- A status to be posted later. `params` is the JSON of the status as it was submitted.
CREATE TABLE scheduled_statuses (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    scheduled_at TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX scheduled_statuses_due ON scheduled_statuses (scheduled_at);
CREATE INDEX scheduled_statuses_account ON scheduled_statuses (account_id, id);

-- One row per local participant of a direct-message thread with a given set of other participants
-- (participant_ids: JSON list of the other accounts' ids, sorted). Its id is the Conversation id
-- the API shows; pages are ordered by last_status_id as Mastodon does.
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    thread_id INTEGER NOT NULL,
    participant_ids TEXT NOT NULL,
    last_status_id INTEGER NOT NULL,
    unread INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX conversations_unique ON conversations (account_id, thread_id, participant_ids);
CREATE INDEX conversations_account ON conversations (account_id, last_status_id);

CREATE TABLE conversation_statuses (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    status_id INTEGER NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    PRIMARY KEY (conversation_id, status_id)
) WITHOUT ROWID;
CREATE INDEX conversation_statuses_status ON conversation_statuses (status_id);

-- Instance-wide notices written by the admins (CLI). `text` is what the admin typed, `content` its HTML.
CREATE TABLE announcements (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    content TEXT NOT NULL,
    starts_at TEXT,
    ends_at TEXT,
    all_day INTEGER NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 1,
    published_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE announcement_mentions (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (announcement_id, account_id)
) WITHOUT ROWID;

CREATE TABLE announcement_reads (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (announcement_id, account_id)
) WITHOUT ROWID;

CREATE TABLE announcement_reactions (
    id INTEGER PRIMARY KEY,
    announcement_id INTEGER NOT NULL REFERENCES announcements (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX announcement_reactions_unique ON announcement_reactions (announcement_id, account_id, name);
CREATE INDEX announcement_reactions_announcement ON announcement_reactions (announcement_id, name);

-- Accounts a user asked not to be suggested again.
CREATE TABLE suggestion_dismissals (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, target_account_id)
) WITHOUT ROWID;

-- Domains a user hides (their own choice, unlike the instance-wide blocks moderators set).
CREATE TABLE account_domain_blocks (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX account_domain_blocks_unique ON account_domain_blocks (account_id, domain);
-- Hiding a blocked domain's accounts looks them up by domain.
CREATE INDEX IF NOT EXISTS accounts_domain ON accounts (domain);

-- Reports users file against accounts, kept for the moderators.
CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    category TEXT NOT NULL DEFAULT 'other',
    comment TEXT NOT NULL DEFAULT '',
    forward INTEGER NOT NULL DEFAULT 0,
    rule_ids TEXT NOT NULL DEFAULT '[]',
    uri TEXT,
    action_taken_at TEXT,
    action_taken_by_account_id INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    assigned_account_id INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX reports_target ON reports (target_account_id, id);
CREATE INDEX reports_open ON reports (id) WHERE action_taken_at IS NULL;
CREATE INDEX reports_uri ON reports (uri) WHERE uri IS NOT NULL;

CREATE TABLE report_statuses (
    report_id INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    status_id INTEGER NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    PRIMARY KEY (report_id, status_id)
) WITHOUT ROWID;

-- The report an `admin.report` notification is about.
CREATE TABLE report_notifications (
    notification_id INTEGER PRIMARY KEY REFERENCES notifications (id) ON DELETE CASCADE,
    report_id INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE
);
