-- What a local group does with a post from someone who is not a member: refuse it (as before) or hold
-- it for its moderators, who approve it (then it is shared as a member's post is) or reject it.
ALTER TABLE local_groups ADD COLUMN non_member_posts TEXT NOT NULL DEFAULT 'refuse';

CREATE TABLE group_held_posts (
    group_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    author_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    top_level INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    PRIMARY KEY (group_id, status_id)
);
