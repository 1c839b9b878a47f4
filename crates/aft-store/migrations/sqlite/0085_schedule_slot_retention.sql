-- Decided schedule slots are purged with the job history they belong to (retention): an
-- every-second schedule decides 86,400 slots a day, which were kept for good. The purge
-- finds the oldest decided slots through this index instead of scanning the table.
CREATE INDEX schedule_slots_decided_at ON schedule_slots (decided_at);
