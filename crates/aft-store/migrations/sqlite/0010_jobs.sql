-- The durable job queue, job logs, transfer records and cluster nodes (the service issue).
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    url TEXT NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    stopped_at TEXT
);

CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    script_id TEXT,
    script_name TEXT,
    file_path TEXT,
    source TEXT NOT NULL,
    params TEXT NOT NULL,
    origin TEXT NOT NULL,
    api_key_id TEXT,
    retry_safe INTEGER NOT NULL DEFAULT 0,
    pinned_node TEXT,
    node_id TEXT,
    lease_until TEXT,
    halt_requested INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX jobs_status_seq ON jobs (status, seq);
CREATE INDEX jobs_created_at ON jobs (created_at);

CREATE TABLE job_logs (
    job_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    at TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (job_id, line)
);

CREATE TABLE job_transfers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    hash TEXT,
    millis INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX job_transfers_job ON job_transfers (job_id, id);
