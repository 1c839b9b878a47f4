-- Indexes for a store of millions of jobs (the reliability issue's scale bench): listing
-- one script's or one API key's jobs newest first walks an index instead of the table, and
-- the retention purge finds the oldest finished jobs without a scan.
CREATE INDEX jobs_script_seq ON jobs (LOWER(script_name), seq);
CREATE INDEX jobs_api_key_seq ON jobs (api_key_id, seq);
CREATE INDEX jobs_finished_at ON jobs (finished_at);
