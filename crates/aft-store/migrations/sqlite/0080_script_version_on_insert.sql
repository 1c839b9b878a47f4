-- A job's script version is now set by the INSERT that queues it (a subquery on
-- script_versions), so queuing a job is one write; the trigger of 0065 that updated the row
-- just inserted goes.
DROP TRIGGER IF EXISTS jobs_script_version;
