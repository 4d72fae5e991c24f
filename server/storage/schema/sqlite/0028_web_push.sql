-- Web Push (RFC 8030/8291/8292): the instance's VAPID key, one subscription per access token, and the
-- durable queue of pushes (one per notification and subscription).

-- The VAPID key pair, made once per instance. Raw base64url: the 32-byte private scalar and the
-- 65-byte uncompressed public point that apps receive as `server_key`.
CREATE TABLE vapid_keys (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE push_subscriptions (
    id INTEGER PRIMARY KEY,
    token_id INTEGER NOT NULL UNIQUE REFERENCES tokens (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL,
    key_p256dh TEXT NOT NULL, -- base64url, 65-byte uncompressed P-256 point
    key_auth TEXT NOT NULL, -- base64url, 16 bytes
    standard INTEGER NOT NULL DEFAULT 0, -- 1: RFC 8291 aes128gcm; 0: the older aesgcm draft
    alerts TEXT NOT NULL DEFAULT '{}', -- JSON object: notification type -> true/false
    policy TEXT NOT NULL DEFAULT 'all', -- all | followed | follower | none
    sealed_token TEXT NOT NULL, -- the access token, sealed (AES-GCM): pushes carry it, as Mastodon's do
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX push_subscriptions_account ON push_subscriptions (account_id);

-- Written in the transaction that makes the notification; claimed by moving next_attempt_at (a process
-- that dies mid-attempt leaves the row to fall due again); deleted once delivered or given up.
CREATE TABLE push_deliveries (
    notification_id INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    subscription_id INTEGER NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    PRIMARY KEY (notification_id, subscription_id)
);
CREATE INDEX push_deliveries_due ON push_deliveries (next_attempt_at);
CREATE INDEX push_deliveries_subscription ON push_deliveries (subscription_id);
