-- Whether an API key may run .syncjs files from the script folders (POST /v1/jobs filePath).
-- Off for every existing key: file runs must be granted explicitly.
ALTER TABLE api_keys ADD COLUMN file_runs INTEGER NOT NULL DEFAULT 0;
