//! SyncJS: aft's JavaScript job runtime.
//!
//! Each job gets its own QuickJS runtime on its own thread (rquickjs runtimes are `!Send`).
//! The API a script sees is synchronous, as in Syncplify AFT!: a host call blocks the
//! script's thread while async Rust does the work on a shared tokio runtime. The engine
//! knows nothing of HTTP or of the database: whoever runs a job (the CLI, the service)
//! hands it a [`JobHost`] for secrets, VFS Library entries and records.
//!
//! Entry points: [`run_job`] runs a script to its [`Outcome`] under [`Limits`];
//! [`check_syntax`] compiles one without running it.

pub mod api;
mod host;
mod masking;
mod memory_host;
mod runtime;
mod script_error;

pub use host::{
    HaltFlag, JobEvent, JobHost, JobScope, LogLevel, LogSink, SeenEntry, TransferRecord, Wakeup,
};
pub use memory_host::{LogCollector, MemoryHost};
pub use runtime::{
    HALT_GRACE, JobSpec, Limits, LimitsError, Outcome, SETTING_MEMORY_LIMIT_MB,
    SETTING_TIMEOUT_SECONDS, check_syntax, run_job,
};
pub use script_error::ScriptError;
