-- What processes sharing the database may hold in memory and must drop (revoked tokens, changed
-- domain rules): every process reads new rows every half second; a bus, when there is one, only
-- brings the news sooner.
CREATE TABLE invalidations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
