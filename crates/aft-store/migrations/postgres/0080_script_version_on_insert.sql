-- A job's script version is now set by the INSERT that queues it (a subquery on
-- script_versions), so every way of queuing a job states it in one place; the trigger of
-- 0065 and its function go.
DROP TRIGGER IF EXISTS jobs_script_version ON jobs;
DROP FUNCTION IF EXISTS jobs_script_version();
