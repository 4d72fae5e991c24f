-- Admin review of trends (Mastodon's admin trends API): a rejected tag, post or link is not shown as
-- trending; approving it again shows it. Items: a tag id, a status id, or a link's id (from its URL).
CREATE TABLE trend_reviews (
    kind TEXT NOT NULL, -- tag | status | link
    item TEXT NOT NULL,
    state TEXT NOT NULL, -- approved | rejected
    reviewer_id BIGINT,
    reviewed_at TEXT NOT NULL,
    PRIMARY KEY (kind, item)
);
