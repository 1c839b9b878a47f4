-- API keys, admin users and their sign-in sessions.

-- Only the SHA-256 of a key is stored; `prefix` (its first characters) lets a user tell
-- keys apart in a list. `allow_list` is the text form of the IP allow-list; `scripts` a
-- JSON array of script names the key may start, NULL for all.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    allow_list TEXT NOT NULL,
    scripts TEXT,
    expires_at TEXT,
    revoked_at TEXT,
    last_used_at TEXT,
    created_at TEXT NOT NULL
);

-- Admin users of the web UI; passwords as argon2id PHC strings.
CREATE TABLE admins (
    username TEXT NOT NULL,
    username_key TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Admin sessions; only the SHA-256 of the token is stored.
CREATE TABLE admin_sessions (
    token_hash TEXT PRIMARY KEY,
    username_key TEXT NOT NULL REFERENCES admins (username_key) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);
