-- Schedules, their slots, and watcher jobs (the triggers issue).
-- `name_key` is the lower-cased name: names are unique case-insensitively.
-- `last_slot` is the newest slot any node decided: the cursor every node resumes from.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    script_name TEXT NOT NULL,
    cron TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    params TEXT NOT NULL,
    overlap TEXT NOT NULL,
    misfire TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    last_slot TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- One row per slot: the node whose INSERT wins the primary key decides it (and queues its
-- job in the same transaction), so a slot is decided once across restarts and nodes.
CREATE TABLE schedule_slots (
    schedule_id TEXT NOT NULL,
    slot_time TEXT NOT NULL,
    status TEXT NOT NULL,
    job_id TEXT,
    node_id TEXT NOT NULL,
    detail TEXT,
    decided_at TEXT NOT NULL,
    PRIMARY KEY (schedule_id, slot_time)
);
CREATE INDEX schedule_slots_status ON schedule_slots (schedule_id, status, slot_time);

-- Where a job came from: the schedule or watcher that queued it.
ALTER TABLE jobs ADD COLUMN schedule_id TEXT;
ALTER TABLE jobs ADD COLUMN watcher_id TEXT;
CREATE INDEX jobs_schedule ON jobs (schedule_id, status);
CREATE INDEX jobs_watcher ON jobs (watcher_id, status);

-- Watcher jobs: scripts that run as long as the service runs. `current_job_id` is the job
-- that runs it now; changing it is a compare-and-swap, so one node starts each run.
CREATE TABLE watcher_jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    script_name TEXT NOT NULL,
    params TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    current_job_id TEXT,
    failures BIGINT NOT NULL DEFAULT 0,
    next_start_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
