-- Who started each job, in words: "admin alice", "API key ci", "schedule nightly",
-- "watcher inbox", "aft cp", ... (issue 17). NULL for jobs queued before this column.
ALTER TABLE jobs ADD COLUMN started_by TEXT;
