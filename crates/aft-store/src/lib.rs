//! aft's state: one [`Store`] API over SQLite (the embedded default) and PostgreSQL.
//!
//! Both dialects go through sqlx's `Any` driver, so every query is written once. The few
//! places where the dialects really differ (claiming a job with `FOR UPDATE SKIP LOCKED`)
//! branch on [`Dialect`]. Conventions that keep one code path: booleans are INTEGER 0/1,
//! timestamps are RFC 3339 UTC TEXT (which sorts correctly as text), ids are TEXT (UUIDv7),
//! and placeholders are `$1, $2, ...` first used in ascending order (SQLite binds `$N`
//! positionally by first appearance).
//!
//! Nothing here caches: the CLI writes the database directly and a running service must
//! see each change at once, so read settings, scripts and keys when they are needed.

mod db;
mod error;
mod sqlite_busy;
mod util;

// Foundation, auth and VFS Library (migrations 0001-0003).
mod admins;
mod apikeys;
mod backup;
mod scripts;
mod secrets;
mod settings;
mod vfs_library;

// Job queue, nodes, logs, transfer records (migrations 0010).
mod enqueue;
mod jobs;
mod logs;
mod nodes;
mod params;
mod transfers;

// Schedules and watchers (migrations 0020).
mod schedules;
pub mod tz;
mod watcher_jobs;

// What remote watchers have seen (migration 0030).
mod remote_watch;

// The audit trail and admin roles (migration 0060).
mod audit;
mod roles;

// Retries, notifications and chains (migration 0050).
mod followups;

// Dry-run jobs and their plans (migration 0055).
mod dry_runs;

// What uses what, refused deletes, script versions (migration 0065).
mod integrity;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

pub use admins::{Admin, AdminSession, MIN_PASSWORD_CHARS};
pub use apikeys::{API_KEY_PREFIX, ApiKey, ApiKeyAllowList, ApiKeyCheck, NewApiKey};
pub use audit::{
    AuditCut, AuditEntry, AuditFilter, AuditKind, AuditProblem, AuditRecord, AuditVerification,
    GENESIS_HASH, LocalAuditLock, PRUNED_ACTION, change_verb, snapshot_changes,
};
pub use db::{
    Dialect, LEFT_WAL_FOLD_BYTES, SQLITE_CACHE_KIB, SQLITE_WAL_KEEP_BYTES, Store, create_data_dir,
    leave_wal_on_close, now_text,
};
pub use error::StoreError;
pub use followups::{NewNotification, Notification, NotificationState, Settlement, StoredPolicy};
pub use integrity::{DeleteOutcome, UsedBy, literal_call_args};
pub use jobs::{Job, JobEnd, JobFilter, JobStatus, NewJob, time_after, time_before};
pub use logs::LogLine;
pub use nodes::Node;
pub use params::{JobParams, ParamsError};
pub use remote_watch::RemoteSeen;
pub use roles::{AdminAccount, Role};
pub use schedules::{
    CronTimes, MAX_SLOTS_PER_PASS, MisfirePolicy, NewSchedule, OverlapPolicy,
    SCHEDULE_MISFIRE_GRACE, Schedule, ScheduleSlot, ScheduleUpdate, SlotStatus, SlotTiming,
};
pub use scripts::{NewScript, Script, ScriptUpdate, ScriptVersion};
pub use secrets::{Secret, SecretInfo, SecretsKey};
pub use settings::{
    SETTINGS, SettingDef, SettingKind, SettingValue, Settings, SmtpTls, normalize_setting,
    setting_def,
};
pub use transfers::{NewTransfer, Transfer};
pub use vfs_library::{VfsEntry, validate_vfs_settings};
pub use watcher_jobs::{
    NewWatcherJob, WATCHER_MAX_BACKOFF, WATCHER_STABLE_AFTER, WatcherJob, watcher_backoff,
};

/// Result type of every store operation.
pub type StoreResult<T> = Result<T, StoreError>;
