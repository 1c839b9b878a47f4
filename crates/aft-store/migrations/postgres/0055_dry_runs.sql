-- Dry runs (docs/dry-run.md): which jobs are dry runs, and the plan each one ended with
-- (JSON, NULL until the run ends). Rows go with their job when job history is purged.
CREATE TABLE job_dry_runs (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    plan TEXT
);
