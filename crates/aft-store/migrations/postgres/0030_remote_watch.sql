-- What each RemoteWatcher has seen, so a restart neither misses a file nor fires one twice.
-- `watch_key` is "<vfs name>|<watched folder>|<script or job name>".
CREATE TABLE remote_watch_seen (
    watch_key TEXT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    mtime TEXT,
    etag TEXT,
    PRIMARY KEY (watch_key, path)
);
