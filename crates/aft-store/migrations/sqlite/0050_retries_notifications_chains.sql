-- Retries, notifications and chains (issue 20). A job may be an attempt of an earlier one
-- (`retry_of` names the first attempt, `retry_attempt` counts from 1) or started by a chain
-- (`chained_from`); `not_before` holds a queued retry back until its delay has passed;
-- `result` is what the script set with SetResult. `settled` marks a finished job whose
-- follow-ups (retry, chains, notifications) are recorded: one node sets it, in the same
-- transaction as the follow-ups, so none is made twice or lost.
ALTER TABLE jobs ADD COLUMN retry_of TEXT;
ALTER TABLE jobs ADD COLUMN retry_attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN not_before TEXT;
ALTER TABLE jobs ADD COLUMN chained_from TEXT;
ALTER TABLE jobs ADD COLUMN result TEXT;
ALTER TABLE jobs ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET settled = 1;
CREATE INDEX jobs_unsettled ON jobs (seq) WHERE settled = 0;
CREATE INDEX jobs_retry_of ON jobs (retry_of);

-- A stored script's retry policy, notifications and chains, as JSON (NULL = none).
CREATE TABLE script_policies (
    script_id TEXT PRIMARY KEY,
    retry TEXT,
    notify TEXT,
    chain TEXT,
    updated_at TEXT NOT NULL
);

-- The last final outcome of each script, for "recovery" (first success after a failure).
CREATE TABLE script_outcomes (
    script_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    job_id TEXT NOT NULL,
    at TEXT NOT NULL
);

-- The notification outbox: pending → sending → delivered, or dead after its attempts.
CREATE TABLE notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    script_name TEXT,
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL,
    lease_until TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX notifications_due ON notifications (state, next_at);
