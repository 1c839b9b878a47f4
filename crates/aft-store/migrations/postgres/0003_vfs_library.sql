-- The VFS Library: named connection definitions used by scripts (`GetVFS(name)`) and
-- watchers. `settings` is a JSON object of SyncJS client fields; credentials in it are
-- only references to secrets (`PassFromSecret`, ...), never clear text.
CREATE TABLE vfs_entries (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
