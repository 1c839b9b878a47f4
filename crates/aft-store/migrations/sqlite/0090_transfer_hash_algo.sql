-- A transfer record names its digest: BLAKE3 by default now, SHA-256 on request
-- (`Options.RecordHash`). Every record before this column carries a SHA-256.
ALTER TABLE job_transfers ADD COLUMN hash_algo TEXT;
UPDATE job_transfers SET hash_algo = 'sha256' WHERE hash IS NOT NULL;
