-- Script versions: every save that changes a script's body keeps the body as a new version
-- (numbered from 1 per script); a restore saves an old body as a new version.
CREATE TABLE script_versions (
    script_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (script_id, version)
);
-- Scripts stored before versions existed start at version 1.
INSERT INTO script_versions (script_id, version, body, description, created_at)
    SELECT id, 1, body, description, updated_at FROM scripts;

-- The version a job ran: the newest version whose body is the job's source, set when the
-- job is queued. A trigger, so every way of queuing a job (API, CLI, schedule, watcher,
-- retry, chain) records it.
ALTER TABLE jobs ADD COLUMN script_version BIGINT;
CREATE FUNCTION jobs_script_version() RETURNS trigger AS $$
BEGIN
    IF NEW.script_id IS NOT NULL THEN
        NEW.script_version := (
            SELECT MAX(version) FROM script_versions
            WHERE script_id = NEW.script_id AND body = NEW.source
        );
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER jobs_script_version BEFORE INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_script_version();
