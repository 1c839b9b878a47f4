//! Running one job: a QuickJS runtime on its own thread, with a memory limit, an optional
//! deadline, and a halt that no script can catch.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rquickjs::allocator::{Allocator, RustAllocator};
use rquickjs::context::EvalOptions;
use rquickjs::{Context, Ctx, Runtime, Value};

use crate::host::{HaltFlag, JobScope, LogLevel};
use crate::masking::SecretMask;
use crate::script_error::ScriptError;

/// Setting that holds the per-job memory limit in MiB.
pub const SETTING_MEMORY_LIMIT_MB: &str = "job-memory-limit-mb";
/// Setting that holds the per-job wall-clock limit in seconds (0 or absent: none).
pub const SETTING_TIMEOUT_SECONDS: &str = "job-timeout-seconds";

/// How long a halted script may go on after a halt (to see `HaltSignalReceived`, or return
/// from `WaitForHaltSignal()` and clean up) before it is stopped.
pub const HALT_GRACE: Duration = Duration::from_millis(50);

/// Native stack of a job thread; QuickJS gets most of it for deep recursion.
const JOB_THREAD_STACK: usize = 16 * 1024 * 1024;
/// QuickJS's own stack limit, kept well below the thread's so it throws before overflowing.
const JS_MAX_STACK: usize = 8 * 1024 * 1024;

/// One script to run.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The script's file name, shown in errors and stack traces (`nightly.syncjs`).
    pub name: String,
    /// The JavaScript source.
    pub source: String,
    /// Parameters the script reads with `Param(name)`.
    pub params: BTreeMap<String, String>,
}

/// Resource limits of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most memory the job's JavaScript heap may use.
    pub memory_bytes: usize,
    /// Longest the job may run; `None` for no limit.
    pub timeout: Option<Duration>,
}

impl Limits {
    /// The default memory limit: 256 MiB.
    pub const DEFAULT_MEMORY_BYTES: usize = 256 * 1024 * 1024;

    /// Limits from settings (`job-memory-limit-mb`, `job-timeout-seconds`) looked up with
    /// `setting`; absent settings keep the defaults, `job-timeout-seconds` 0 means none.
    pub fn from_settings(setting: impl Fn(&str) -> Option<String>) -> Result<Limits, LimitsError> {
        let mut limits = Limits::default();
        if let Some(raw) = setting(SETTING_MEMORY_LIMIT_MB) {
            let mb: usize = raw
                .trim()
                .parse()
                .ok()
                .filter(|mb| *mb >= 1)
                .ok_or_else(|| LimitsError {
                    setting: SETTING_MEMORY_LIMIT_MB,
                    value: raw.clone(),
                    expected: "a whole number of MiB, at least 1",
                })?;
            limits.memory_bytes = mb.saturating_mul(1024 * 1024);
        }
        if let Some(raw) = setting(SETTING_TIMEOUT_SECONDS) {
            let secs: f64 = raw
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| LimitsError {
                    setting: SETTING_TIMEOUT_SECONDS,
                    value: raw.clone(),
                    expected: "a number of seconds, 0 for no limit",
                })?;
            limits.timeout = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
        }
        Ok(limits)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            timeout: None,
        }
    }
}

/// A limit setting whose value cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "setting {setting} is {value:?}: expected {expected} (fix it with 'aft settings set {setting} VALUE')"
)]
pub struct LimitsError {
    /// The setting's key.
    pub setting: &'static str,
    /// Its stored value.
    pub value: String,
    /// What it should look like.
    pub expected: &'static str,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The script ran to its end, or called `Exit()` / `Exit(0)`.
    Succeeded,
    /// The script called `Exit(code)` with a non-zero code.
    Exited {
        /// The code given to `Exit`.
        code: i32,
    },
    /// The script threw (or did not compile) and nothing caught it.
    Threw(ScriptError),
    /// The job was asked to halt and stopped.
    Halted,
    /// The job ran longer than its time limit.
    TimedOut {
        /// The limit it exceeded.
        limit: Duration,
    },
    /// The job's JavaScript heap outgrew its memory limit.
    OutOfMemory {
        /// The limit it exceeded, in bytes.
        limit_bytes: usize,
    },
    /// The engine itself failed (could not start a thread or a runtime, or a host call
    /// panicked); not the script's fault.
    EngineFailed {
        /// What failed.
        message: String,
    },
}

impl Outcome {
    /// The job's exit code: 0 on success, the `Exit(code)` code, 1 for any other failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Succeeded => 0,
            Outcome::Exited { code } => *code,
            _ => 1,
        }
    }

    /// Whether the job succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Succeeded)
    }

    /// The job status this outcome gives: `succeeded`, `failed` or `halted`.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Halted => "halted",
            _ => "failed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Succeeded => write!(f, "succeeded"),
            Outcome::Exited { code } => write!(f, "failed: the script called Exit({code})"),
            Outcome::Threw(e) => write!(f, "failed: {e}"),
            Outcome::Halted => write!(f, "halted: the job was asked to stop"),
            Outcome::TimedOut { limit } => write!(
                f,
                "failed: job exceeded its time limit of {} (setting {SETTING_TIMEOUT_SECONDS})",
                human_duration(*limit)
            ),
            Outcome::OutOfMemory { limit_bytes } => write!(
                f,
                "failed: job exceeded its memory limit of {} (setting {SETTING_MEMORY_LIMIT_MB})",
                human_bytes(*limit_bytes)
            ),
            Outcome::EngineFailed { message } => write!(f, "failed: engine error: {message}"),
        }
    }
}

fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{secs:.3} s")
    }
}

fn human_bytes(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Shared between the interrupt handler and the job-context functions of one job.
pub(crate) struct JobControl {
    /// The job's halt signal.
    pub(crate) halt: HaltFlag,
    /// When the job must end, if it has a time limit.
    pub(crate) deadline: Option<Instant>,
    /// Set (by the watchdog or the interrupt handler) once the deadline has passed.
    pub(crate) timed_out: Arc<AtomicBool>,
    /// When the interrupt handler first saw the halt flag.
    halt_seen: Cell<Option<Instant>>,
    /// The code given to `Exit`, once called.
    pub(crate) exit_code: Cell<Option<i32>>,
    /// Set by the allocator when the script asked for more than its memory limit.
    memory_exceeded: Arc<AtomicBool>,
    /// Promise rejections nothing has handled yet, by promise address: the job fails with
    /// the first one if any are left at the end.
    unhandled_rejections: RefCell<Vec<(usize, ScriptError)>>,
}

impl JobControl {
    /// Whether the deadline has passed (and record it if so).
    pub(crate) fn deadline_passed(&self) -> bool {
        if self.timed_out.load(Ordering::SeqCst) {
            return true;
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => {
                self.timed_out.store(true, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }

    /// Time left before the deadline (`None` when there is no deadline).
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The interrupt handler's decision: stop now?
    fn should_interrupt(&self) -> bool {
        // Past the memory limit the job has failed, even if the script caught the error.
        if self.deadline_passed() || self.memory_exceeded.load(Ordering::Relaxed) {
            return true;
        }
        if self.halt.is_raised() {
            let seen = self.halt_seen.get().unwrap_or_else(|| {
                let now = Instant::now();
                self.halt_seen.set(Some(now));
                now
            });
            return seen.elapsed() >= HALT_GRACE;
        }
        false
    }
}

/// Run `spec` to completion on a new thread and return how it ended; blocks the caller.
///
/// Failures (the error and its stack, a halt, a limit) are written to the job's log before
/// this returns, so every host shows them the same way. Secret values the job read
/// through `scope.host` are masked in every line it logs.
pub fn run_job(spec: JobSpec, scope: JobScope, limits: Limits) -> Outcome {
    let mask = SecretMask::default();
    let scope = JobScope {
        host: mask.wrap_host(scope.host),
        log: mask.wrap_log(scope.log),
        halt: scope.halt,
        tokio: scope.tokio,
    };
    let log_scope = scope.clone();
    let timed_out = Arc::new(AtomicBool::new(false));
    let deadline = limits.timeout.map(|t| Instant::now() + t);

    // The watchdog raises the halt flag at the deadline so host calls blocked on I/O or in
    // Sleep give up; the interrupt handler then stops the script at once.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    if let Some(timeout) = limits.timeout {
        let halt = scope.halt.clone();
        let timed_out = timed_out.clone();
        let spawned = std::thread::Builder::new()
            .name("aft-job-watchdog".into())
            .spawn(move || {
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    done_rx.recv_timeout(timeout)
                {
                    timed_out.store(true, Ordering::SeqCst);
                    halt.raise();
                }
            });
        if let Err(e) = spawned {
            return finish(
                &log_scope,
                Outcome::EngineFailed {
                    message: format!("could not start the job's watchdog thread: {e}"),
                },
            );
        }
    }

    let thread_timed_out = timed_out.clone();
    let handle = std::thread::Builder::new()
        .name("aft-job".into())
        .stack_size(JOB_THREAD_STACK)
        .spawn(move || run_on_this_thread(spec, scope, limits, deadline, thread_timed_out));
    let outcome = match handle {
        Err(e) => Outcome::EngineFailed {
            message: format!("could not start the job thread: {e}"),
        },
        Ok(handle) => match handle.join() {
            Ok(outcome) => outcome,
            Err(panic) => Outcome::EngineFailed {
                message: format!("a host function panicked: {}", panic_text(&panic)),
            },
        },
    };
    drop(done_tx);
    // The outcome goes into job records and API answers: no secret may ride along.
    let outcome = match outcome {
        Outcome::Threw(mut e) => {
            e.message = mask.apply(&e.message);
            e.stack = mask.apply(&e.stack);
            Outcome::Threw(e)
        }
        Outcome::EngineFailed { message } => Outcome::EngineFailed {
            message: mask.apply(&message),
        },
        other => other,
    };
    finish(&log_scope, outcome)
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Log a failed outcome (with the stack for a throw) and hand it back.
fn finish(scope: &JobScope, outcome: Outcome) -> Outcome {
    match &outcome {
        Outcome::Succeeded => {}
        Outcome::Halted => scope.log(LogLevel::Warn, &outcome.to_string()),
        Outcome::Threw(e) => scope.log(LogLevel::Error, &e.to_log_text()),
        Outcome::Exited { code } => scope.log(
            LogLevel::Error,
            &format!("the script called Exit({code}): the job failed"),
        ),
        other => scope.log(
            LogLevel::Error,
            other.to_string().trim_start_matches("failed: "),
        ),
    }
    outcome
}

fn run_on_this_thread(
    spec: JobSpec,
    scope: JobScope,
    limits: Limits,
    deadline: Option<Instant>,
    timed_out: Arc<AtomicBool>,
) -> Outcome {
    let engine_failed = |what: &str, e: rquickjs::Error| Outcome::EngineFailed {
        message: format!("{what}: {e}"),
    };
    let memory_exceeded = Arc::new(AtomicBool::new(false));
    let allocator = LimitedAllocator::new(limits.memory_bytes, memory_exceeded.clone());
    let rt = match Runtime::new_with_alloc(allocator) {
        Ok(rt) => rt,
        Err(e) => return engine_failed("could not create a JavaScript runtime", e),
    };
    rt.set_max_stack_size(JS_MAX_STACK);
    let control = Rc::new(JobControl {
        halt: scope.halt.clone(),
        deadline,
        timed_out,
        halt_seen: Cell::new(None),
        exit_code: Cell::new(None),
        memory_exceeded,
        unhandled_rejections: RefCell::new(Vec::new()),
    });
    let handler_control = control.clone();
    rt.set_interrupt_handler(Some(Box::new(move || handler_control.should_interrupt())));
    let tracker_control = control.clone();
    let file = spec.name.clone();
    rt.set_host_promise_rejection_tracker(Some(Box::new(
        move |ctx: Ctx<'_>, promise: Value<'_>, reason: Value<'_>, is_handled: bool| {
            // SAFETY: reads the object pointer out of a live value; only used as a key.
            let key = unsafe { rquickjs::qjs::JS_VALUE_GET_PTR(promise.as_raw()) } as usize;
            if is_handled {
                let mut list = tracker_control.unhandled_rejections.borrow_mut();
                list.retain(|(k, _)| *k != key);
            } else {
                // Described before borrowing: reading the error may run script getters.
                let error = ScriptError::from_caught(&ctx, &file, reason);
                let mut list = tracker_control.unhandled_rejections.borrow_mut();
                list.push((key, error));
            }
        },
    )));
    let context = match Context::full(&rt) {
        Ok(c) => c,
        Err(e) => {
            if control.memory_exceeded.load(Ordering::SeqCst) {
                return Outcome::OutOfMemory {
                    limit_bytes: limits.memory_bytes,
                };
            }
            return engine_failed("could not create a JavaScript context", e);
        }
    };
    let outcome = context.with(|ctx| {
        let registered = crate::api::job::register(&ctx, &scope, &spec.params, control.clone())
            .and_then(|()| crate::api::register_all(&ctx, &scope))
            .and_then(|()| crate::api::watchers::set_script_name(&ctx, &spec.name));
        if let Err(e) = registered {
            let (message, _) = caught_text(&ctx, e);
            return Outcome::EngineFailed {
                message: format!("could not set up the script's globals: {message}"),
            };
        }
        let result = ctx
            .eval_with_options::<(), _>(spec.source.as_bytes(), eval_options(&spec.name))
            .and_then(|()| drain_pending_jobs(&ctx, &control));
        match result {
            Ok(()) => classify_end(&control, None, &limits),
            Err(e) => {
                let thrown = thrown_value(&ctx, e);
                classify_end(&control, Some((&ctx, &spec.name, thrown)), &limits)
            }
        }
    });
    drop(context);
    outcome
}

/// Run promise jobs (async functions, `.then`) queued by the script until none are left,
/// or until the job is over (exit, time-out, memory; a halt stops them through the
/// interrupt handler).
fn drain_pending_jobs(ctx: &Ctx<'_>, control: &JobControl) -> rquickjs::Result<()> {
    loop {
        if control.exit_code.get().is_some()
            || control.timed_out.load(Ordering::SeqCst)
            || control.memory_exceeded.load(Ordering::SeqCst)
        {
            return Ok(());
        }
        let mut job_ctx = std::mem::MaybeUninit::<*mut rquickjs::qjs::JSContext>::uninit();
        // SAFETY: the runtime of this context is alive and used on this thread only; on
        // failure QuickJS leaves the exception pending on the job's context, which is this
        // one (a job has a single context), where `ctx.catch()` picks it up.
        let ran = unsafe {
            let rt = rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
            rquickjs::qjs::JS_ExecutePendingJob(rt, job_ctx.as_mut_ptr())
        };
        match ran {
            0 => return Ok(()),
            r if r < 0 => return Err(rquickjs::Error::Exception),
            _ => {}
        }
    }
}

/// Options for evaluating a job: a sloppy-mode global script, as AFT! runs them, named by
/// the script's file name so stack traces carry it.
fn eval_options(name: &str) -> EvalOptions {
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = false;
    options.filename = Some(name.to_string());
    options
}

/// The value a failed evaluation threw, or a description of a non-JS error.
enum Thrown<'js> {
    Value(Value<'js>),
    Rust(String),
}

fn thrown_value<'js>(ctx: &Ctx<'js>, e: rquickjs::Error) -> Thrown<'js> {
    match e {
        rquickjs::Error::Exception => Thrown::Value(ctx.catch()),
        other => Thrown::Rust(other.to_string()),
    }
}

fn caught_text(ctx: &Ctx<'_>, e: rquickjs::Error) -> (String, String) {
    match thrown_value(ctx, e) {
        Thrown::Value(v) => crate::script_error::describe_exception(ctx, &v),
        Thrown::Rust(s) => (s, String::new()),
    }
}

/// Decide the outcome from what the job's control saw and what (if anything) was thrown.
/// Exit, time-out and halt win over the error they cause (QuickJS's uncatchable
/// "interrupted"); an "out of memory" error is the memory limit.
fn classify_end<'js>(
    control: &JobControl,
    thrown: Option<(&Ctx<'js>, &str, Thrown<'js>)>,
    limits: &Limits,
) -> Outcome {
    if control.timed_out.load(Ordering::SeqCst) {
        return Outcome::TimedOut {
            limit: limits.timeout.unwrap_or_default(),
        };
    }
    if control.memory_exceeded.load(Ordering::SeqCst) {
        return Outcome::OutOfMemory {
            limit_bytes: limits.memory_bytes,
        };
    }
    if control.halt.is_raised() {
        return Outcome::Halted;
    }
    if let Some(code) = control.exit_code.get() {
        return if code == 0 {
            Outcome::Succeeded
        } else {
            Outcome::Exited { code }
        };
    }
    let Some((ctx, file, thrown)) = thrown else {
        return match control.unhandled_rejections.borrow_mut().drain(..).next() {
            Some((_, mut error)) => {
                error.message = format!("unhandled promise rejection: {}", error.message);
                Outcome::Threw(error)
            }
            None => Outcome::Succeeded,
        };
    };
    match thrown {
        Thrown::Rust(message) => {
            if message.contains("out of memory") || message.contains("Allocation") {
                Outcome::OutOfMemory {
                    limit_bytes: limits.memory_bytes,
                }
            } else {
                Outcome::EngineFailed { message }
            }
        }
        Thrown::Value(value) => {
            let error = ScriptError::from_caught(ctx, file, value);
            if error.message.contains("out of memory") {
                Outcome::OutOfMemory {
                    limit_bytes: limits.memory_bytes,
                }
            } else {
                Outcome::Threw(error)
            }
        }
    }
}

/// QuickJS's allocations with a ceiling: an allocation that would take the job past its
/// limit fails (QuickJS then throws "out of memory") and marks the limit as exceeded, so the
/// outcome is known for sure even when the error itself could not be built or was caught.
struct LimitedAllocator {
    inner: RustAllocator,
    used: usize,
    limit: usize,
    exceeded: Arc<AtomicBool>,
}

impl LimitedAllocator {
    fn new(limit: usize, exceeded: Arc<AtomicBool>) -> Self {
        LimitedAllocator {
            inner: RustAllocator,
            used: 0,
            limit,
            exceeded,
        }
    }

    /// Whether `more` bytes still fit; marks the limit as exceeded when not.
    fn fits(&mut self, more: usize) -> bool {
        if self.used.saturating_add(more) > self.limit {
            self.exceeded.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }
}

// SAFETY: every call is forwarded to RustAllocator, which upholds the contract; this type
// only counts the sizes it reports and refuses requests over the limit with null.
unsafe impl Allocator for LimitedAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.fits(size) {
            return std::ptr::null_mut();
        }
        let ptr = self.inner.alloc(size);
        if !ptr.is_null() {
            // SAFETY: `ptr` was just returned by RustAllocator.
            self.used += unsafe { RustAllocator::usable_size(ptr) };
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        if !self.fits(total) {
            return std::ptr::null_mut();
        }
        let ptr = self.inner.calloc(count, size);
        if !ptr.is_null() {
            // SAFETY: `ptr` was just returned by RustAllocator.
            self.used += unsafe { RustAllocator::usable_size(ptr) };
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        // SAFETY: QuickJS only frees pointers this allocator returned.
        unsafe {
            self.used = self.used.saturating_sub(RustAllocator::usable_size(ptr));
            self.inner.dealloc(ptr);
        }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        // SAFETY: `ptr` came from this allocator (QuickJS's contract).
        let old = unsafe { RustAllocator::usable_size(ptr) };
        if new_size == 0 {
            // SAFETY: as above; realloc to 0 frees, as libc's does.
            unsafe { self.dealloc(ptr) };
            return std::ptr::null_mut();
        }
        if new_size > old && !self.fits(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above; a null result leaves the old block valid and counted.
        unsafe {
            let moved = self.inner.realloc(ptr, new_size);
            if !moved.is_null() {
                self.used = self.used - old + RustAllocator::usable_size(moved);
            }
            moved
        }
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: forwarded; same contract.
        unsafe { RustAllocator::usable_size(ptr) }
    }
}

/// Check that `source` compiles as a SyncJS script, without running any of it.
pub fn check_syntax(name: &str, source: &str) -> Result<(), ScriptError> {
    let engine_error = |message: String| ScriptError {
        message,
        file: name.to_string(),
        line: 0,
        column: 0,
        stack: String::new(),
    };
    let rt = Runtime::new().map_err(|e| engine_error(format!("engine error: {e}")))?;
    let context = Context::full(&rt).map_err(|e| engine_error(format!("engine error: {e}")))?;
    context.with(|ctx| {
        let source = std::ffi::CString::new(source).map_err(|e| ScriptError {
            message: "SyntaxError: the script contains a NUL byte".to_string(),
            ..engine_error(e.to_string())
        })?;
        let file = std::ffi::CString::new(name.replace('\0', ""))
            .map_err(|e| engine_error(e.to_string()))?;
        let flags =
            (rquickjs::qjs::JS_EVAL_TYPE_GLOBAL | rquickjs::qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32;
        // SAFETY: `source` is NUL-terminated and `len` excludes the NUL, as JS_Eval needs;
        // the returned value is owned and handed to `Value`, which frees it.
        let compiled = unsafe {
            let raw = rquickjs::qjs::JS_Eval(
                ctx.as_raw().as_ptr(),
                source.as_ptr(),
                source.as_bytes().len() as _,
                file.as_ptr(),
                flags,
            );
            let is_exception = rquickjs::qjs::JS_IsException(raw);
            let value = Value::from_raw(ctx.clone(), raw);
            if is_exception { None } else { Some(value) }
        };
        match compiled {
            Some(_) => Ok(()),
            None => Err(ScriptError::from_caught(&ctx, name, ctx.catch())),
        }
    })
}
