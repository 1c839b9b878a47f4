-- Admin roles, two-factor sign-in and the hash-chained audit trail.

-- Every admin has a role: admin (everything), operator or viewer. Admins made before roles
-- existed keep full rights.
ALTER TABLE admins ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
-- TOTP: the shared secret sealed with the secrets key (NULL until enrolment), whether
-- sign-in asks for a code, and a JSON array of the SHA-256 of each unused recovery code.
ALTER TABLE admins ADD COLUMN totp_secret TEXT;
ALTER TABLE admins ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE admins ADD COLUMN recovery_codes TEXT;

-- One row per change, append-only. `hash` is the SHA-256 of the record's canonical form,
-- which includes `prev_hash`, the hash of the record before it.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    before_state TEXT,
    after_state TEXT,
    detail TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor);

-- The chain's one head row: every append updates it first, which serializes appends
-- (a row lock on PostgreSQL, the write lock on SQLite). Records up to `pruned_seq` were
-- removed by retention; `pruned_hash` is the hash of the last of them.
CREATE TABLE audit_chain (
    id INTEGER PRIMARY KEY,
    head_seq INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    pruned_seq INTEGER NOT NULL,
    pruned_hash TEXT NOT NULL
);
INSERT INTO audit_chain (id, head_seq, head_hash, pruned_seq, pruned_hash) VALUES
    (1, 0, '0000000000000000000000000000000000000000000000000000000000000000',
     0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Changes the service is making right now (kind and name; an empty name: not known yet),
-- so a CLI command comparing the store before and after itself does not take another
-- writer's change for its own. A row lives from before the change to its record.
CREATE TABLE audit_pending (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    created_at TEXT NOT NULL
);
