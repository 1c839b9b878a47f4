-- Settings, stored scripts and encrypted secrets (the foundation issue).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Stored SyncJS scripts. `name_key` is the lower-cased name: names are unique
-- case-insensitively, as `aft start -n NAME` matches them.
CREATE TABLE scripts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL,
    retry_safe INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Secrets, encrypted with XChaCha20-Poly1305 under a key kept outside the database.
-- `sealed` is base64(nonce || ciphertext); `key_id` names the key that sealed it, so a
-- wrong key is reported as such instead of as corruption. Names are case-sensitive.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
