//! The JavaScript halves of the host API (`js/*.js`): wrappers and classes written in
//! JavaScript around the Rust functions each module defines.
//!
//! Every job evaluates them in its new context. Parsing them took about 0.5 ms of every
//! `aft run`, so the build script (`build.rs`) compiles them to QuickJS bytecode with the same
//! QuickJS, and a job reads that bytecode instead. Where the build could not compile them
//! (a cross build: bytecode is specific to the machine's byte order and word size), the job
//! parses the source as before. Both ways evaluate the same code under the same file name,
//! `eval_script`, which error stacks leave out (see `script_error.rs`).
//!
//! A job evaluates them only when its script first reads or writes a global one of them
//! defines ([`LazyGlobals`]): a script that makes no client, no `HttpCli`, no watcher (a
//! one-liner, most of a service's short jobs) skipped about a million instructions of
//! bytecode read, run and freed per job.

use std::cell::RefCell;
use std::rc::Rc;

use rquickjs::object::{Accessor, Property};
use rquickjs::{Ctx, FromJs, Value, qjs};

/// One prelude: its name (the file `js/NAME.js`), its source and its compiled bytecode
/// (empty when the build did not compile it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prelude {
    /// Named in the tests' messages.
    #[cfg_attr(not(test), expect(dead_code))]
    pub(crate) name: &'static str,
    source: &'static str,
    bytecode: &'static [u8],
}

macro_rules! prelude {
    ($name:literal) => {
        Prelude {
            name: $name,
            source: include_str!(concat!("js/", $name, ".js")),
            bytecode: include_bytes!(concat!(env!("OUT_DIR"), "/prelude-", $name, ".qbc")),
        }
    };
}

pub(crate) const CLIENTS: Prelude = prelude!("clients");
pub(crate) const DRY_RUN: Prelude = prelude!("dry_run");
pub(crate) const FILES: Prelude = prelude!("files");
pub(crate) const HTTP: Prelude = prelude!("http");
pub(crate) const TEXT: Prelude = prelude!("text");
pub(crate) const WATCHERS: Prelude = prelude!("watchers");

/// Every prelude, for the tests.
#[cfg(test)]
pub(crate) const ALL: [Prelude; 6] = [CLIENTS, DRY_RUN, FILES, HTTP, TEXT, WATCHERS];

#[cfg(test)]
thread_local! {
    /// Tests set this to evaluate the source even where bytecode was built, to compare.
    pub(crate) static FROM_SOURCE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Tests set this to define every prelude's globals at once, to compare.
    pub(crate) static DEFINE_NOW: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a test asked for every prelude's globals at once ([`DEFINE_NOW`]).
pub(crate) fn define_now_in_tests() -> bool {
    #[cfg(test)]
    return DEFINE_NOW.with(|f| f.get());
    #[cfg(not(test))]
    false
}

impl Prelude {
    /// Whether the build compiled this prelude to bytecode.
    pub(crate) fn has_bytecode(&self) -> bool {
        !self.bytecode.is_empty()
    }

    /// Evaluate the prelude in `ctx` (as `ctx.eval` would its source: a strict global
    /// script named `eval_script`) and return its completion value.
    pub(crate) fn eval<'js, T: FromJs<'js>>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<T> {
        #[cfg(test)]
        if FROM_SOURCE.with(|f| f.get()) {
            return ctx.eval(self.source);
        }
        if !self.has_bytecode() {
            return ctx.eval(self.source);
        }
        // SAFETY: the bytes are what JS_WriteObject wrote at build time for this same
        // QuickJS (build.rs, with the rquickjs-sys of this build), so JS_ReadObject may read
        // function bytecode from them. Both calls return an owned value (or an exception,
        // left pending on `ctx`); JS_EvalFunction takes ownership of the function it runs,
        // and `Value::from_raw` takes ownership of the result.
        let raw = unsafe {
            let ctx_ptr = ctx.as_raw().as_ptr();
            let function = qjs::JS_ReadObject(
                ctx_ptr,
                self.bytecode.as_ptr(),
                self.bytecode.len() as _,
                qjs::JS_READ_OBJ_BYTECODE as i32,
            );
            if qjs::JS_IsException(function) {
                return Err(rquickjs::Error::Exception);
            }
            qjs::JS_EvalFunction(ctx_ptr, function)
        };
        // SAFETY: `raw` is an owned value of this context (see above).
        if unsafe { qjs::JS_IsException(raw) } {
            return Err(rquickjs::Error::Exception);
        }
        // SAFETY: as above.
        let value = unsafe { Value::from_raw(ctx.clone(), raw) };
        T::from_js(ctx, value)
    }
}

/// What defines some globals of a job's context once it runs: the module's natives and
/// its prelude. It must hold no JavaScript value: a value held in Rust is out of the
/// collector's sight, and a cycle through one would outlive the context.
type Step<'js> = Box<dyn FnOnce(&Ctx<'js>) -> rquickjs::Result<()> + 'js>;

/// The globals the preludes define, set up on first use. Until a script reads or writes one
/// of them, each is an accessor on `globalThis`; the first read runs every module's step
/// (natives and prelude, in the order they were added) and answers with what it defined.
/// Writing one, or declaring a function of that name, makes it the script's own, and it
/// stays so when the preludes run later, as it would have had they run first. A script
/// that lists the globals before using any sees these as accessors; that is the one
/// difference.
#[derive(Default)]
pub(crate) struct LazyGlobals<'js> {
    steps: Vec<Step<'js>>,
    names: Vec<String>,
}

/// What is left to define, shared by the accessors of one context.
struct Pending<'js> {
    stage: RefCell<Stage<'js>>,
    names: Vec<String>,
}

/// How far the steps of one context got.
enum Stage<'js> {
    /// None has run yet.
    Waiting(Vec<Step<'js>>),
    /// All ran.
    Done,
    /// One threw (a job halted while a prelude ran, memory ran out): the script saw that
    /// error, and every later use of a name left undefined throws [`FAILED`].
    Failed,
}

/// What a use of a prelude's global throws once a step has failed. Without it, a script
/// that caught the first error would meet a `ReferenceError` for a name it spelt right.
const FAILED: &str = "the host API could not be set up in this job (see its first error)";

/// What `globalThis` has under a name the preludes define.
enum Own {
    /// The accessor [`LazyGlobals`] put there.
    Accessor,
    /// A value the script put there.
    Value,
    /// Nothing: the script deleted it.
    Nothing,
}

impl<'js> LazyGlobals<'js> {
    /// `step` defines the globals `names` (and may delete the natives it used).
    pub(crate) fn add<S: Into<String>>(
        &mut self,
        names: impl IntoIterator<Item = S>,
        step: impl FnOnce(&Ctx<'js>) -> rquickjs::Result<()> + 'js,
    ) {
        self.names.extend(names.into_iter().map(Into::into));
        self.steps.push(Box::new(step));
    }

    /// Run every step now.
    pub(crate) fn define_now(self, ctx: &Ctx<'js>) -> rquickjs::Result<()> {
        self.steps.into_iter().try_for_each(|step| step(ctx))
    }

    /// Put an accessor on `globalThis` for each name; the first read runs every step.
    pub(crate) fn define_on_first_use(self, ctx: &Ctx<'js>) -> rquickjs::Result<()> {
        let pending = Rc::new(Pending {
            stage: RefCell::new(Stage::Waiting(self.steps)),
            names: self.names,
        });
        for name in &pending.names {
            pending.put_accessor(ctx, name)?;
        }
        Ok(())
    }
}

impl<'js> Pending<'js> {
    /// Put the accessor for `name` on `globalThis`: a read runs the steps, a write makes
    /// the name the script's own.
    fn put_accessor(self: &Rc<Self>, ctx: &Ctx<'js>, name: &str) -> rquickjs::Result<()> {
        let (get_name, set_name) = (name.to_string(), name.to_string());
        let pending = self.clone();
        let get = move |ctx: Ctx<'js>| -> rquickjs::Result<Value<'js>> {
            pending.run(&ctx)?;
            ctx.globals().get(get_name.as_str())
        };
        let set = move |ctx: Ctx<'js>, value: Value<'js>| -> rquickjs::Result<()> {
            ctx.globals().prop(
                set_name.as_str(),
                Property::from(value).writable().enumerable().configurable(),
            )
        };
        ctx.globals()
            .prop(name, Accessor::new(get, set).enumerable().configurable())
    }

    /// Run the steps, once: the accessors make way for what the preludes define, and what
    /// the script itself put under those names (or deleted) is kept so.
    fn run(self: &Rc<Self>, ctx: &Ctx<'js>) -> rquickjs::Result<()> {
        let steps = match self.stage.replace(Stage::Done) {
            Stage::Waiting(steps) => steps,
            Stage::Done => return Ok(()),
            Stage::Failed => {
                self.stage.replace(Stage::Failed);
                return Err(rquickjs::Exception::throw_message(ctx, FAILED));
            }
        };
        let globals = ctx.globals();
        let mut kept = Vec::new();
        let mut deleted = Vec::new();
        for name in &self.names {
            match own(ctx, name)? {
                Own::Accessor => globals.remove(name.as_str())?,
                Own::Value => kept.push((name, globals.get::<_, Value>(name.as_str())?)),
                Own::Nothing => deleted.push(name),
            }
        }
        for step in steps {
            if let Err(error) = step(ctx) {
                // The step's own error (still pending) goes to the script unchanged, so a
                // halt stays uncatchable; the names no step defined get their accessors
                // back, and those throw from now on.
                self.stage.replace(Stage::Failed);
                for name in &self.names {
                    if matches!(own(ctx, name)?, Own::Nothing) && !deleted.contains(&name) {
                        self.put_accessor(ctx, name)?;
                    }
                }
                return Err(error);
            }
        }
        // The preludes assign their globals, so what the script put there is assigned
        // back (a function it declared is no longer configurable, but still writable).
        for (name, value) in kept {
            globals.set(name.as_str(), value)?;
        }
        for name in deleted {
            globals.remove(name.as_str())?;
        }
        Ok(())
    }
}

/// What `globalThis` has under `name`, without running an accessor.
fn own(ctx: &Ctx<'_>, name: &str) -> rquickjs::Result<Own> {
    let globals = ctx.globals();
    let mut desc = qjs::JSPropertyDescriptor {
        flags: 0,
        value: qjs::JS_UNDEFINED,
        getter: qjs::JS_UNDEFINED,
        setter: qjs::JS_UNDEFINED,
    };
    // SAFETY: the global object is a live value of this context and the atom is made and
    // freed here; on success the descriptor's three values are ours, freed here too.
    let (found, flags) = unsafe {
        let ctx_ptr = ctx.as_raw().as_ptr();
        let atom = qjs::JS_NewAtomLen(ctx_ptr, name.as_ptr().cast(), name.len() as _);
        if atom == qjs::JS_ATOM_NULL {
            return Err(rquickjs::Error::Exception);
        }
        let found = qjs::JS_GetOwnProperty(ctx_ptr, &mut desc, globals.as_raw(), atom);
        qjs::JS_FreeAtom(ctx_ptr, atom);
        if found > 0 {
            qjs::JS_FreeValue(ctx_ptr, desc.value);
            qjs::JS_FreeValue(ctx_ptr, desc.getter);
            qjs::JS_FreeValue(ctx_ptr, desc.setter);
        }
        (found, desc.flags)
    };
    match found {
        0 => Ok(Own::Nothing),
        1.. if flags & qjs::JS_PROP_GETSET as i32 != 0 => Ok(Own::Accessor),
        1.. => Ok(Own::Value),
        _ => Err(rquickjs::Error::Exception),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aft_vfs::dry_run::DryRun;
    use rquickjs::{Context, Runtime};

    use super::{ALL, DEFINE_NOW, FAILED, FROM_SOURCE, LazyGlobals, Prelude};
    use crate::api::dry_run::DryRunHost;
    use crate::{HaltFlag, JobScope, LogCollector, MemoryHost};

    /// What a script can see of the globals: every name with its type, and for functions
    /// and objects their arity, text (a function's source) and own property names.
    const DESCRIBE: &str = r#"
        (function () {
            const names = (o) => Object.getOwnPropertyNames(o).sort().join(",");
            const out = [];
            for (const k of Object.getOwnPropertyNames(globalThis).sort()) {
                const v = globalThis[k];
                let d = typeof v;
                if (typeof v === "function") {
                    d += " " + v.length + " " + String(v) + " [" + names(v) + "]";
                    if (v.prototype) d += " prototype [" + names(v.prototype) + "]";
                } else if (v && typeof v === "object") {
                    d += " {" + names(v) + "}";
                } else {
                    d += " " + String(v);
                }
                out.push(k + ": " + d);
            }
            // A call that throws inside a prelude: its stack names the prelude's lines.
            try { new FsWatcher().WatchDir(""); } catch (e) { out.push(String(e.stack)); }
            try { new TextDecoder("latin1"); } catch (e) { out.push(String(e.stack)); }
            return out.join("\n");
        })()
    "#;

    /// Run `script` in a job's context on `host` and return its completion value as a
    /// string; the preludes read from source rather than bytecode with `from_source`, and
    /// (without a dry run) their globals defined at once rather than on first use with
    /// `define_now`.
    fn eval_with(
        host: Arc<dyn crate::JobHost>,
        script: &str,
        from_source: bool,
        define_now: bool,
    ) -> String {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let log = LogCollector::new();
        let scope = JobScope {
            host,
            log: log.sink(),
            halt: HaltFlag::new(),
            tokio: tokio.handle().clone(),
        };
        FROM_SOURCE.with(|f| f.set(from_source));
        DEFINE_NOW.with(|f| f.set(define_now));
        let rt = Runtime::new().unwrap();
        let context = Context::full(&rt).unwrap();
        let text = context.with(|ctx| {
            crate::api::register_all(&ctx, &scope).unwrap();
            match ctx.eval::<String, _>(script) {
                Ok(text) => text,
                Err(e) => panic!("{e}: {:?}", ctx.catch()),
            }
        });
        FROM_SOURCE.with(|f| f.set(false));
        DEFINE_NOW.with(|f| f.set(false));
        text
    }

    /// Every global a job's API defines (with the dry-run prelude), described by a script,
    /// with the preludes read from bytecode or parsed from source.
    fn describe_globals(from_source: bool) -> String {
        let dry_run = DryRunHost::new(Arc::new(MemoryHost::new()), DryRun::new());
        eval_with(Arc::new(dry_run), DESCRIBE, from_source, false)
    }

    #[test]
    fn preludes_from_bytecode_define_what_their_sources_define() {
        for prelude in ALL {
            assert_eq!(
                prelude.has_bytecode(),
                cfg!(aft_prelude_bytecode),
                "{}",
                prelude.name
            );
        }
        let from_bytecode = describe_globals(false);
        let from_source = describe_globals(true);
        assert!(
            from_bytecode.contains("HttpCli: function")
                && from_bytecode.contains("GetVFS: function")
                && from_bytecode.contains("TextEncoder: function")
                && from_bytecode.contains("at WatchDir (eval_script:"),
            "{from_bytecode}"
        );
        assert_eq!(from_bytecode, from_source);
    }

    /// `script` in a job's context (no dry run); see [`eval_with`].
    fn eval_in_job(script: &str, define_now: bool) -> String {
        eval_with(Arc::new(MemoryHost::new()), script, false, define_now)
    }

    /// The names of the globals, sorted, one per line.
    const NAMES: &str = "Object.getOwnPropertyNames(globalThis).sort().join('\\n')";

    #[test]
    fn globals_defined_on_first_use_are_those_the_preludes_define() {
        let lazy_before = eval_in_job(NAMES, false);
        let lazy_after = eval_in_job(&format!("void SftpClient; {NAMES}"), false);
        let at_once = eval_in_job(NAMES, true);
        let set = |text: &str| -> std::collections::BTreeSet<String> {
            text.lines().map(str::to_string).collect()
        };
        // Each name a prelude defines has its accessor, and no accessor is left without
        // one: only the dispatcher of watcher events, which no script calls, comes later.
        let missing: Vec<_> = set(&at_once)
            .difference(&set(&lazy_before))
            .cloned()
            .collect();
        let extra: Vec<_> = set(&lazy_before)
            .difference(&set(&at_once))
            .cloned()
            .collect();
        assert_eq!(
            missing,
            ["__aftDispatchEvent"],
            "defined by a prelude, with no accessor"
        );
        assert!(
            extra.is_empty(),
            "accessors for names no prelude defines: {extra:?}"
        );
        assert_eq!(lazy_after, at_once);
        // Described one by one (source text, arity, properties), they are the same too.
        let describe = format!("void SftpClient; {DESCRIBE}");
        assert_eq!(eval_in_job(&describe, false), eval_in_job(DESCRIBE, true));
    }

    #[test]
    fn a_script_that_uses_no_prelude_global_runs_none() {
        let seen = eval_in_job(
            "['GetVFS', 'SftpClient', 'HttpCli', 'FileInfo', 'FormatDate', 'FsWatcher']
                .map((n) => typeof Object.getOwnPropertyDescriptor(globalThis, n).get)
                .concat([typeof __aft_clients, typeof __aft_http_do, LIST_DIRS, EVT_WRITE])
                .join()",
            false,
        );
        assert_eq!(
            seen,
            "function,function,function,function,function,function,undefined,undefined,2,EVT_WRITE"
        );
    }

    #[test]
    fn a_script_keeps_its_own_globals_of_the_preludes_names() {
        let script = "function FileInfo() { return 'mine'; }
            var HttpCli = 7;
            delete globalThis.GetVFS;
            const made = new SftpClient();
            [FileInfo(), HttpCli, typeof GetVFS, typeof made.Connect, typeof HttpRes].join()";
        assert_eq!(
            eval_in_job(script, false),
            "mine,7,undefined,function,function"
        );
        assert_eq!(
            eval_in_job(script, true),
            "mine,7,undefined,function,function"
        );
        let misspelt = "try { Lgo('x'); 'no error' } catch (e) { e.name }";
        assert_eq!(eval_in_job(misspelt, false), "ReferenceError");
    }

    #[test]
    fn after_a_step_fails_every_name_it_left_undefined_throws_that_it_failed() {
        let rt = Runtime::new().unwrap();
        let context = Context::full(&rt).unwrap();
        let seen = context.with(|ctx| {
            let mut lazy = LazyGlobals::default();
            lazy.add(["First"], |ctx| ctx.globals().set("First", 1));
            lazy.add(["Broken", "AlsoBroken"], |ctx| {
                ctx.globals().set("Broken", 2)?;
                ctx.eval::<(), _>("throw new Error('boom')")
            });
            lazy.add(["Never"], |ctx| ctx.globals().set("Never", 3));
            lazy.define_on_first_use(&ctx).unwrap();
            let script = "const seen = [];
                for (const use of [() => AlsoBroken, () => AlsoBroken, () => Never, () => Broken + First]) {
                    try { seen.push(use()); } catch (e) { seen.push(e.name + ': ' + e.message); }
                }
                seen.join('\\n')";
            ctx.eval::<String, _>(script).unwrap()
        });
        assert_eq!(
            seen,
            format!("Error: boom\nError: {FAILED}\nError: {FAILED}\n3")
        );
    }

    /// The bytecode of `prelude` as this process's QuickJS compiles its source.
    fn compiled_here(prelude: &Prelude) -> Vec<u8> {
        let rt = Runtime::new().unwrap();
        let context = Context::full(&rt).unwrap();
        context.with(|ctx| {
            let source = std::ffi::CString::new(prelude.source).unwrap();
            let flags = rquickjs::qjs::JS_EVAL_TYPE_GLOBAL
                | rquickjs::qjs::JS_EVAL_FLAG_STRICT
                | rquickjs::qjs::JS_EVAL_FLAG_COMPILE_ONLY;
            // SAFETY: as in build.rs: NUL-terminated source, owned values freed once, the
            // written buffer copied and then freed by the context's allocator.
            unsafe {
                let ctx = ctx.as_raw().as_ptr();
                let function = rquickjs::qjs::JS_Eval(
                    ctx,
                    source.as_ptr(),
                    source.as_bytes().len() as _,
                    c"eval_script".as_ptr(),
                    flags as i32,
                );
                assert!(!rquickjs::qjs::JS_IsException(function), "{}", prelude.name);
                let mut size: rquickjs::qjs::size_t = 0;
                let buffer = rquickjs::qjs::JS_WriteObject(
                    ctx,
                    &mut size,
                    function,
                    rquickjs::qjs::JS_WRITE_OBJ_BYTECODE as i32,
                );
                assert!(!buffer.is_null());
                let bytes = std::slice::from_raw_parts(buffer, size as usize).to_vec();
                rquickjs::qjs::js_free(ctx, buffer as *mut _);
                rquickjs::qjs::JS_FreeValue(ctx, function);
                bytes
            }
        })
    }

    #[test]
    fn the_built_bytecode_is_what_the_engines_quickjs_compiles() {
        if !cfg!(aft_prelude_bytecode) {
            return;
        }
        for prelude in ALL {
            assert!(
                compiled_here(&prelude) == prelude.bytecode,
                "{}: the bytecode built by build.rs differs from what this QuickJS compiles",
                prelude.name
            );
        }
    }
}
