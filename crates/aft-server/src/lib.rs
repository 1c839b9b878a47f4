//! `aft serve`: the HTTPS REST API and web UI, authentication, the job runner, the
//! scheduler and the watchers.
//!
//! [`serve`] runs a service until a shutdown signal; [`api::router`] is the REST API;
//! [`runner::Runner`] claims and runs jobs; [`discovery`] lets local CLI commands find the
//! running service.

pub mod api;
pub mod audit;
pub mod auth;
pub mod connections;
pub mod cors;
pub mod discovery;
pub mod dry_run;
pub mod error;
pub mod execute;
pub mod followups;
pub mod host;
pub mod job_log;
pub mod metrics;
pub mod refusals;
pub mod roles;
pub mod runner;
pub mod scheduler;
pub mod server;
pub mod state;
pub mod tls;
pub mod vfs_library;
pub mod watcher_jobs;
pub mod web_assets;

pub use error::{ApiError, ServeError};
pub use server::{ServeOptions, serve};
