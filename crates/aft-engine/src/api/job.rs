//! The job context every script sees (spec §4): `Param`, `Log`, `console.*`, `Sleep`,
//! `Exit`, `HaltSignalReceived`, `WaitForHaltSignal`, `GetSecret`, and [ours] `SetResult`.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use rquickjs::function::{Opt, Rest};
use rquickjs::object::Accessor;
use rquickjs::{Coerced, Ctx, Exception, Function, Object, Value};

use crate::host::{JobEvent, JobScope, LogLevel, Wakeup};
use crate::runtime::JobControl;

/// Longest single `Sleep` (about 31 years); longer values are clamped, not an error.
const MAX_SLEEP_MS: f64 = 1e12;

/// Define the job-context globals for one job.
pub(crate) fn register(
    ctx: &Ctx<'_>,
    scope: &JobScope,
    params: &BTreeMap<String, String>,
    control: Rc<JobControl>,
) -> rquickjs::Result<()> {
    let globals = ctx.globals();

    let params = params.clone();
    globals.set(
        "Param",
        Function::new(ctx.clone(), move |name: Opt<Coerced<String>>| {
            name.0
                .and_then(|n| params.get(&n.0).cloned())
                .unwrap_or_default()
        })?
        .with_name("Param")?,
    )?;

    let secrets = scope.clone();
    globals.set(
        "GetSecret",
        Function::new(ctx.clone(), move |name: Opt<Coerced<String>>| {
            name.0
                .and_then(|n| secrets.host.secret(&n.0))
                .unwrap_or_default()
        })?
        .with_name("GetSecret")?,
    )?;

    globals.set("Log", log_function(ctx, scope, LogLevel::Info, "Log")?)?;
    let console = Object::new(ctx.clone())?;
    for (name, level) in [
        ("log", LogLevel::Info),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("warn", LogLevel::Warn),
        ("error", LogLevel::Error),
    ] {
        console.set(name, log_function(ctx, scope, level, name)?)?;
    }
    globals.set("console", console)?;

    let sleep_control = control.clone();
    globals.set(
        "Sleep",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'_>, ms: Opt<Coerced<f64>>| -> rquickjs::Result<()> {
                let ms = ms.0.map(|c| c.0).unwrap_or(0.0);
                if ms.is_nan() || ms <= 0.0 {
                    return Ok(());
                }
                let mut wait = Duration::from_secs_f64(ms.min(MAX_SLEEP_MS) / 1000.0);
                if let Some(left) = sleep_control.remaining() {
                    wait = wait.min(left);
                }
                wait_pumping(&ctx, &sleep_control, Some(wait))?;
                stop_if_out_of_time(&ctx, &sleep_control)
            },
        )?
        .with_name("Sleep")?,
    )?;

    let wait_control = control.clone();
    globals.set(
        "WaitForHaltSignal",
        Function::new(ctx.clone(), move |ctx: Ctx<'_>| -> rquickjs::Result<()> {
            wait_pumping(&ctx, &wait_control, wait_control.remaining())?;
            stop_if_out_of_time(&ctx, &wait_control)
        })?
        .with_name("WaitForHaltSignal")?,
    )?;

    let halt = control.halt.clone();
    globals.prop(
        "HaltSignalReceived",
        Accessor::new_get(move || halt.is_raised()).enumerable(),
    )?;

    let result_scope = scope.clone();
    globals.set(
        "SetResult",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'_>, value: Opt<Value<'_>>| -> rquickjs::Result<()> {
                let text = match value.0 {
                    None => String::new(),
                    Some(v) if v.is_undefined() || v.is_null() => String::new(),
                    Some(v) if v.is_string() => v.get::<String>()?,
                    Some(v) => v
                        .ctx()
                        .clone()
                        .json_stringify(v)?
                        .map(|s| s.to_string())
                        .transpose()?
                        .unwrap_or_default(),
                };
                result_scope
                    .host
                    .set_result(&text)
                    .map_err(|e| Exception::throw_message(&ctx, &format!("SetResult: {e}")))
            },
        )?
        .with_name("SetResult")?,
    )?;

    let exit_control = control;
    globals.set(
        "Exit",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'_>, code: Opt<Value<'_>>| -> rquickjs::Result<()> {
                let code = match code.0 {
                    None => 0,
                    Some(v) if v.is_undefined() || v.is_null() => 0,
                    Some(v) => {
                        let n = v.get::<Coerced<f64>>()?.0;
                        if n.is_finite() { n as i32 } else { 1 }
                    }
                };
                exit_control.exit_code.set(Some(code));
                Err(throw_uncatchable(&ctx, &format!("Exit({code}) called")))
            },
        )?
        .with_name("Exit")?,
    )?;
    Ok(())
}

/// The global a host module that posts [`crate::JobEvent`]s defines to receive them on the
/// job's thread: called as `f(target, payload)`.
pub(crate) const DISPATCH_GLOBAL: &str = "__aftDispatchEvent";

thread_local! {
    /// Set while a callback runs, so a `Sleep` inside it does not start a second one.
    static PUMPING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Wait up to `timeout` (forever when `None`) or for the halt, running queued event
/// callbacks (watchers) one at a time meanwhile. A callback's throw ends the wait with it,
/// so it fails the job like any throw.
fn wait_pumping(
    ctx: &Ctx<'_>,
    control: &JobControl,
    timeout: Option<Duration>,
) -> rquickjs::Result<()> {
    if PUMPING.get() {
        control.halt.wait(timeout);
        return Ok(());
    }
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        if left == Some(Duration::ZERO) {
            return Ok(());
        }
        match control.halt.wait_event(left) {
            Wakeup::Halted | Wakeup::TimedOut => return Ok(()),
            Wakeup::Event(event) => dispatch_event(ctx, event)?,
        }
    }
}

/// Hand one event to the script's dispatcher, if a module defined one.
fn dispatch_event(ctx: &Ctx<'_>, event: JobEvent) -> rquickjs::Result<()> {
    let dispatcher: Option<Function> = ctx.globals().get(DISPATCH_GLOBAL)?;
    let Some(dispatcher) = dispatcher else {
        return Ok(());
    };
    let payload = ctx.json_parse(event.payload.to_string())?;
    PUMPING.set(true);
    let result = dispatcher.call::<_, ()>((event.target as f64, payload));
    PUMPING.set(false);
    result
}

/// A `Log`-like function writing its arguments, space-separated, at `level`.
fn log_function<'js>(
    ctx: &Ctx<'js>,
    scope: &JobScope,
    level: LogLevel,
    name: &str,
) -> rquickjs::Result<Function<'js>> {
    let scope = scope.clone();
    Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
        let line = args
            .0
            .into_iter()
            .map(|v| display_value(&ctx, v))
            .collect::<Vec<_>>()
            .join(" ");
        scope.log(level, &line);
    })?
    .with_name(name)
}

/// Throw the uncatchable "interrupted" error if the job's time is up (a host call that
/// returned early because of the deadline must not let the script go on).
fn stop_if_out_of_time(ctx: &Ctx<'_>, control: &JobControl) -> rquickjs::Result<()> {
    if control.deadline_passed() {
        return Err(throw_uncatchable(
            ctx,
            "interrupted: the job's time limit was reached",
        ));
    }
    Ok(())
}

/// Throw an error that no `try/catch` or `finally` in the script can intercept: it unwinds
/// straight to the engine, which then decides the outcome (exit, halt, time-out).
///
/// Host modules calling back into the script (watcher callbacks) must pass an
/// `Err(rquickjs::Error::Exception)` from such a call straight back to their caller.
pub fn throw_uncatchable(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    let exception = match Exception::from_message(ctx.clone(), message) {
        Ok(e) => e,
        Err(e) => return e,
    };
    // SAFETY: the value is a live Error object of this context; the call only sets a flag
    // on it.
    unsafe {
        rquickjs::qjs::JS_SetUncatchableError(
            ctx.as_raw().as_ptr(),
            exception.as_object().as_value().as_raw(),
        );
    }
    exception.throw()
}

/// A value as `Log` prints it: strings as they are, errors as `Name: message`, objects and
/// arrays as JSON, anything else as `String(value)`.
pub fn display_value<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    if let Some(s) = value.as_string() {
        return s.to_string().unwrap_or_default();
    }
    if value.is_undefined() {
        return "undefined".into();
    }
    if let Some(obj) = value.as_object() {
        if obj.is_error() {
            let name: String = obj.get("name").unwrap_or_else(|_| "Error".into());
            let message: String = obj.get("message").unwrap_or_default();
            return if message.is_empty() {
                name
            } else {
                format!("{name}: {message}")
            };
        }
        if !value.is_function() {
            match ctx.json_stringify(value.clone()) {
                Ok(Some(s)) => return s.to_string().unwrap_or_default(),
                Ok(None) => {}
                // A cycle or a throwing toJSON: clear it and fall back to String(value).
                Err(_) => {
                    let _ = ctx.catch();
                }
            }
        }
    }
    match value.get::<Coerced<String>>() {
        Ok(s) => s.0,
        Err(_) => {
            let _ = ctx.catch();
            "[value]".into()
        }
    }
}
