//! Compiles the host API's JavaScript preludes (`src/api/js/*.js`) to QuickJS bytecode, so a
//! job reads them instead of parsing 14 KB of JavaScript at every start (see
//! `src/api/prelude.rs`). The bytecode comes from the same QuickJS as the engine's (the
//! rquickjs-sys of this build, which Cargo.lock holds at one version), as a strict global
//! script named `eval_script`, as `ctx.eval` would parse the source.
//!
//! Bytecode follows the machine's byte order and word size: in a cross build the files are
//! left empty and the engine parses the sources at run time, as before.

use std::ffi::{CStr, CString};
use std::path::Path;

use rquickjs_sys as qjs;

/// The preludes, by file name under `src/api/js/`; `src/api/prelude.rs` names the same.
const PRELUDES: [&str; 6] = ["clients", "dry_run", "files", "http", "text", "watchers"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let native = var("TARGET") == var("HOST");
    println!("cargo:rustc-check-cfg=cfg(aft_prelude_bytecode)");
    if native {
        println!("cargo:rustc-cfg=aft_prelude_bytecode");
    }
    for name in PRELUDES {
        let path = format!("src/api/js/{name}.js");
        println!("cargo:rerun-if-changed={path}");
        let source =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let bytecode = if native {
            compile(name, &source)
        } else {
            Vec::new()
        };
        let target = Path::new(&out).join(format!("prelude-{name}.qbc"));
        std::fs::write(&target, bytecode)
            .unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
    }
}

/// The bytecode of `source` compiled (not run) as a strict global script `eval_script`.
fn compile(name: &str, source: &str) -> Vec<u8> {
    let source = CString::new(source).expect("a prelude has no NUL byte");
    let flags =
        qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_STRICT | qjs::JS_EVAL_FLAG_COMPILE_ONLY;
    // SAFETY: a runtime and context of our own, used on this thread only and freed at the
    // end; `source` is NUL-terminated and its length excludes the NUL, as JS_Eval needs;
    // every value is freed once, and the buffer JS_WriteObject returns is copied, then freed
    // with the context's allocator that allocated it.
    unsafe {
        let rt = qjs::JS_NewRuntime();
        assert!(!rt.is_null(), "JS_NewRuntime failed");
        let ctx = qjs::JS_NewContext(rt);
        assert!(!ctx.is_null(), "JS_NewContext failed");
        let function = qjs::JS_Eval(
            ctx,
            source.as_ptr(),
            source.as_bytes().len() as _,
            c"eval_script".as_ptr(),
            flags as i32,
        );
        if qjs::JS_IsException(function) {
            let error = qjs::JS_GetException(ctx);
            let text = qjs::JS_ToCString(ctx, error);
            let message = if text.is_null() {
                "(no message)".to_string()
            } else {
                CStr::from_ptr(text).to_string_lossy().into_owned()
            };
            panic!("src/api/js/{name}.js does not compile: {message}");
        }
        let mut size: qjs::size_t = 0;
        let buffer =
            qjs::JS_WriteObject(ctx, &mut size, function, qjs::JS_WRITE_OBJ_BYTECODE as i32);
        assert!(!buffer.is_null(), "JS_WriteObject failed for {name}");
        let bytes = std::slice::from_raw_parts(buffer, size as usize).to_vec();
        qjs::js_free(ctx, buffer as *mut _);
        qjs::JS_FreeValue(ctx, function);
        qjs::JS_FreeContext(ctx);
        qjs::JS_FreeRuntime(rt);
        bytes
    }
}
