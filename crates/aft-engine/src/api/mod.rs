//! The host API a script sees, one module per area. Each module has a `register` function
//! which [`register_all`] calls for every job (those with a JavaScript prelude hand it what
//! to define on first use). The job context (`Param`, `Log`, `Sleep`,
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

/// Define every host API module's globals in a job's context. The globals the JavaScript
/// preludes define come on the script's first use of one ([`prelude::LazyGlobals`]), except
/// in a dry run, whose own module wraps some of them at once.
pub fn register_all(ctx: &Ctx<'_>, scope: &JobScope) -> rquickjs::Result<()> {
    let mut lazy = prelude::LazyGlobals::default();
    clients::register(ctx, scope, &mut lazy)?;
    http::register(scope, &mut lazy);
    mail::register(ctx, scope)?;
    archive::register(ctx, scope)?;
    pgp::register(ctx, scope)?;
    hash::register(ctx, scope)?;
    files::register(ctx, scope, &mut lazy)?;
    process::register(ctx, scope)?;
    text::register(ctx, &mut lazy)?;
    watchers::register(ctx, scope, &mut lazy)?;
    match scope.host.dry_run() {
        Some(run) => {
            lazy.define_now(ctx)?;
            dry_run::register(ctx, scope, run)
        }
        None if prelude::define_now_in_tests() => lazy.define_now(ctx),
        None => lazy.define_on_first_use(ctx),
    }
}
