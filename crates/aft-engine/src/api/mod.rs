//! The host API a script sees, one module per area. Each module has
//! `pub fn register(ctx: &rquickjs::Ctx<'_>, scope: &JobScope) -> rquickjs::Result<()>`
//! which [`register_all`] calls for every job. The job context (`Param`, `Log`, `Sleep`,
//! `Exit`, ...) lives in [`job`] and is set up by the runtime itself, since it needs the
//! job's parameters and control state.
//!
//! Conventions for modules: a host call blocks the job thread (use
//! `scope.tokio.block_on(..)` for async work) and gives up when `scope.halt` is raised; a
//! call into a script callback that returns `Err(rquickjs::Error::Exception)` is passed
//! straight back (it may be the uncatchable halt, time-out or `Exit`).

use rquickjs::Ctx;

use crate::host::JobScope;

pub mod archive;
pub mod clients;
pub mod dry_run;
pub mod files;
pub mod hash;
pub mod http;
pub mod job;
mod libutil;
pub mod mail;
pub mod pgp;
mod prelude;
pub mod process;
pub mod text;
pub mod watchers;

/// Define every host API module's globals in a job's context.
pub fn register_all(ctx: &Ctx<'_>, scope: &JobScope) -> rquickjs::Result<()> {
    clients::register(ctx, scope)?;
    http::register(ctx, scope)?;
    mail::register(ctx, scope)?;
    archive::register(ctx, scope)?;
    pgp::register(ctx, scope)?;
    hash::register(ctx, scope)?;
    files::register(ctx, scope)?;
    process::register(ctx, scope)?;
    text::register(ctx, scope)?;
    watchers::register(ctx, scope)?;
    if let Some(run) = scope.host.dry_run() {
        dry_run::register(ctx, scope, run)?;
    }
    Ok(())
}
