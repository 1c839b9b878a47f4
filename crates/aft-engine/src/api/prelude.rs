//! The JavaScript halves of the host API (`js/*.js`): wrappers and classes written in
//! JavaScript around the Rust functions each module defines.
//!
//! Every job evaluates them in its new context. Parsing them took about 0.5 ms of every
//! `aft run`, so the build script (`build.rs`) compiles them to QuickJS bytecode with the same
//! QuickJS, and a job reads that bytecode instead. Where the build could not compile them
//! (a cross build: bytecode is specific to the machine's byte order and word size), the job
//! parses the source as before. Both ways evaluate the same code under the same file name,
//! `eval_script`, which error stacks leave out (see `script_error.rs`).

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aft_vfs::dry_run::DryRun;
    use rquickjs::{Context, Runtime};

    use super::{ALL, FROM_SOURCE, Prelude};
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

    /// Every global a job's API defines (with the dry-run prelude), described by a script,
    /// with the preludes read from bytecode or parsed from source.
    fn describe_globals(from_source: bool) -> String {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let log = LogCollector::new();
        let scope = JobScope {
            host: Arc::new(DryRunHost::new(Arc::new(MemoryHost::new()), DryRun::new())),
            log: log.sink(),
            halt: HaltFlag::new(),
            tokio: tokio.handle().clone(),
        };
        FROM_SOURCE.with(|f| f.set(from_source));
        let rt = Runtime::new().unwrap();
        let context = Context::full(&rt).unwrap();
        let text = context.with(|ctx| {
            crate::api::register_all(&ctx, &scope).unwrap();
            ctx.eval::<String, _>(DESCRIBE).unwrap()
        });
        FROM_SOURCE.with(|f| f.set(false));
        text
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
