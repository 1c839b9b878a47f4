//! Local file helpers for scripts: copy, move, delete, exists, read/write/append text,
//! list with globs, make directories, file info and temp folders.
//!
//! Operations return `true`/`false` (the reason goes to the job log as a warning); readers
//! return the value or `null`; wrong argument types throw.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use globset::GlobBuilder;
use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Value};
use serde_json::json;

use super::libutil::{bytes_arg, report, report_nullable, set_global, to_js, uint8_array};
use super::prelude::LazyGlobals;
use crate::JobScope;

fn io_err(action: &str, path: &Path, e: std::io::Error) -> String {
    format!("cannot {action} {}: {e}", path.display())
}

/// Where a copy or move of `src` to `dst` lands: inside `dst` when it is a folder or ends
/// with `/` (a folder to be made).
fn target_path(src: &Path, dst: &Path) -> PathBuf {
    let into_folder = dst.is_dir() || dst.as_os_str().to_string_lossy().ends_with('/');
    if into_folder && let Some(name) = src.file_name() {
        return dst.join(name);
    }
    dst.to_path_buf()
}

fn ensure_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => {
            std::fs::create_dir_all(p).map_err(|e| io_err("create folder", p, e))
        }
        _ => Ok(()),
    }
}

/// Copy one file; `dst` may be a folder (the file keeps its name). Missing parents are made.
pub fn copy_file(src: &str, dst: &str) -> Result<(), String> {
    let src = Path::new(src);
    if !src.is_file() {
        return Err(format!(
            "{} is not a file (or does not exist)",
            src.display()
        ));
    }
    let target = target_path(src, Path::new(dst));
    ensure_parent(&target)?;
    std::fs::copy(src, &target)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", src.display(), target.display()))
}

/// Move (rename) a file or folder; across file systems a file is copied then deleted.
pub fn move_file(src: &str, dst: &str) -> Result<(), String> {
    let src = Path::new(src);
    if !src.exists() {
        return Err(format!("{} does not exist", src.display()));
    }
    let target = target_path(src, Path::new(dst));
    ensure_parent(&target)?;
    match std::fs::rename(src, &target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices && src.is_file() => {
            std::fs::copy(src, &target).map_err(|e| {
                format!("cannot copy {} to {}: {e}", src.display(), target.display())
            })?;
            std::fs::remove_file(src).map_err(|e| io_err("delete", src, e))
        }
        Err(e) => Err(format!(
            "cannot move {} to {}: {e}",
            src.display(),
            target.display()
        )),
    }
}

/// Delete one file (not a folder).
pub fn delete_file(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if p.is_dir() {
        return Err(format!(
            "{path} is a folder; use DelTree to delete a folder"
        ));
    }
    std::fs::remove_file(p).map_err(|e| io_err("delete", p, e))
}

/// Delete a folder and everything in it.
pub fn del_tree(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if !p.is_dir() {
        return Err(format!("{path} is not a folder (or does not exist)"));
    }
    std::fs::remove_dir_all(p).map_err(|e| io_err("delete", p, e))
}

/// Make a folder and any missing parents; Ok when it already exists.
pub fn make_dir(path: &str) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| io_err("create folder", Path::new(path), e))
}

/// Read a whole file as UTF-8 text.
pub fn read_text(path: &str) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| io_err("read", Path::new(path), e))?;
    String::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8 text; use ReadFileBytes"))
}

/// Write bytes to a file, replacing it or (with `append`) adding to its end.
pub fn write_bytes(path: &str, data: &[u8], append: bool) -> Result<(), String> {
    let p = Path::new(path);
    ensure_parent(p)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(p)
        .map_err(|e| io_err("open", p, e))?;
    file.write_all(data).map_err(|e| io_err("write", p, e))
}

/// The files under `dir` whose path relative to `dir` matches `pattern` (`*.csv` for the
/// folder itself, `**/*.csv` for every level), as full paths in sorted order.
pub fn find_files(dir: &str, pattern: &str) -> Result<Vec<String>, String> {
    let glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("bad glob pattern \"{pattern}\": {e}"))?
        .compile_matcher();
    let root = Path::new(dir);
    if !root.is_dir() {
        return Err(format!("{dir} is not a folder (or does not exist)"));
    }
    let recursive = pattern.contains("**") || pattern.contains('/');
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| io_err("list", &current, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err("list", &current, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| io_err("stat", &path, e))?;
            if kind.is_dir() {
                if recursive {
                    stack.push(path);
                }
                continue;
            }
            let rel = path.strip_prefix(root).unwrap_or(&path);
            if glob.is_match(rel) {
                out.push(path.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A file's metadata as `{Name, Path, Size, ModTime (ms since the epoch), IsDir}`.
pub fn file_info(path: &str) -> Result<serde_json::Value, String> {
    let p = Path::new(path);
    let meta = std::fs::metadata(p).map_err(|e| io_err("stat", p, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0);
    Ok(json!({
        "Name": p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        "Path": path,
        "Size": meta.len(),
        "ModTime": mtime,
        "IsDir": meta.is_dir(),
    }))
}

/// Define the local file functions (`FileInfo` on first use).
pub(crate) fn register<'js>(
    ctx: &Ctx<'js>,
    scope: &JobScope,
    lazy: &mut LazyGlobals<'js>,
) -> rquickjs::Result<()> {
    macro_rules! bool_fn {
        ($name:literal, |$($arg:ident),*| $body:expr) => {{
            let s = scope.clone();
            set_global(
                ctx,
                $name,
                Function::new(ctx.clone(), move |$($arg: String),*| {
                    report(&s, $name, $body, false)
                })?,
            )?;
        }};
    }
    bool_fn!("CopyFile", |src, dst| copy_file(&src, &dst).map(|_| true));
    bool_fn!("MoveFile", |src, dst| move_file(&src, &dst).map(|_| true));
    bool_fn!("DelFile", |path| delete_file(&path).map(|_| true));
    bool_fn!("DelTree", |path| del_tree(&path).map(|_| true));
    bool_fn!("MakeDir", |path| make_dir(&path).map(|_| true));
    bool_fn!("WriteTextFile", |path, text| write_bytes(
        &path,
        text.as_bytes(),
        false
    )
    .map(|_| true));
    bool_fn!("AppendTextFile", |path, text| write_bytes(
        &path,
        text.as_bytes(),
        true
    )
    .map(|_| true));

    set_global(
        ctx,
        "FileExists",
        Function::new(ctx.clone(), |path: String| Path::new(&path).is_file())?,
    )?;
    set_global(
        ctx,
        "DirExists",
        Function::new(ctx.clone(), |path: String| Path::new(&path).is_dir())?,
    )?;

    let s = scope.clone();
    set_global(
        ctx,
        "ReadTextFile",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, path: String| {
            report_nullable(&ctx, &s, "ReadTextFile", read_text(&path))
        })?,
    )?;
    let s = scope.clone();
    set_global(
        ctx,
        "ReadFileBytes",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, path: String| match std::fs::read(&path) {
                Ok(bytes) => uint8_array(&ctx, bytes),
                Err(e) => report_nullable::<bool, _>(
                    &ctx,
                    &s,
                    "ReadFileBytes",
                    Err(io_err("read", Path::new(&path), e)),
                ),
            },
        )?,
    )?;
    let s = scope.clone();
    set_global(
        ctx,
        "WriteFileBytes",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, path: String, data: Value<'js>| {
                let bytes = bytes_arg(&ctx, "WriteFileBytes", data)?;
                rquickjs::Result::Ok(report(
                    &s,
                    "WriteFileBytes",
                    write_bytes(&path, &bytes, false).map(|_| true),
                    false,
                ))
            },
        )?,
    )?;
    let s = scope.clone();
    set_global(
        ctx,
        "FindFiles",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, dir: String, pattern: Opt<String>| {
                let pattern = pattern.0.unwrap_or_else(|| "*".to_string());
                let found = report(&s, "FindFiles", find_files(&dir, &pattern), Vec::new());
                to_js(&ctx, &json!(found))
            },
        )?,
    )?;
    let s = scope.clone();
    lazy.add(["FileInfo"], move |ctx: &Ctx<'js>| define_file_info(ctx, s));
    // Temp folders live as long as the job's runtime: dropping the runtime drops this list,
    // and each `TempDir` deletes its folder.
    let temps: Rc<RefCell<Vec<tempfile::TempDir>>> = Rc::default();
    let s = scope.clone();
    set_global(
        ctx,
        "MakeTempDir",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>| {
            let made = tempfile::Builder::new()
                .prefix("aft-job-")
                .tempdir()
                .map_err(|e| {
                    format!(
                        "cannot create a temp folder in {}: {e}",
                        std::env::temp_dir().display()
                    )
                });
            match made {
                Ok(dir) => {
                    let path = dir.path().to_string_lossy().into_owned();
                    temps.borrow_mut().push(dir);
                    rquickjs::IntoJs::into_js(path, &ctx)
                }
                Err(e) => report_nullable::<bool, _>(&ctx, &s, "MakeTempDir", Err(e)),
            }
        })?,
    )?;
    Ok(())
}

/// Define `FileInfo`: its native and the prelude over it.
fn define_file_info<'js>(ctx: &Ctx<'js>, scope: JobScope) -> rquickjs::Result<()> {
    set_global(
        ctx,
        "__aft_file_info",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, path: String| match file_info(&path) {
                Ok(v) => to_js(&ctx, &v),
                Err(e) => report_nullable::<bool, _>(&ctx, &scope, "FileInfo", Err(e)),
            },
        )?,
    )?;
    super::prelude::FILES.eval::<()>(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(dir: &tempfile::TempDir, rel: &str) -> String {
        dir.path().join(rel).to_string_lossy().into_owned()
    }

    #[test]
    fn copy_into_a_folder_keeps_the_name_and_makes_parents() {
        let d = tempfile::tempdir().unwrap();
        write_bytes(&p(&d, "a.txt"), b"hello", false).unwrap();
        make_dir(&p(&d, "out")).unwrap();
        copy_file(&p(&d, "a.txt"), &p(&d, "out")).unwrap();
        assert_eq!(read_text(&p(&d, "out/a.txt")).unwrap(), "hello");
        copy_file(&p(&d, "a.txt"), &p(&d, "deep/er/b.txt")).unwrap();
        assert_eq!(read_text(&p(&d, "deep/er/b.txt")).unwrap(), "hello");
        copy_file(&p(&d, "a.txt"), &format!("{}/", p(&d, "new/folder"))).unwrap();
        assert_eq!(read_text(&p(&d, "new/folder/a.txt")).unwrap(), "hello");
    }

    #[test]
    fn move_removes_the_source_and_append_adds_to_the_end() {
        let d = tempfile::tempdir().unwrap();
        write_bytes(&p(&d, "a.txt"), b"one\n", false).unwrap();
        write_bytes(&p(&d, "a.txt"), b"two\n", true).unwrap();
        move_file(&p(&d, "a.txt"), &p(&d, "b.txt")).unwrap();
        assert!(!Path::new(&p(&d, "a.txt")).exists());
        assert_eq!(read_text(&p(&d, "b.txt")).unwrap(), "one\ntwo\n");
    }

    #[test]
    fn find_files_matches_one_level_or_all_levels() {
        let d = tempfile::tempdir().unwrap();
        for f in ["a.csv", "b.txt", "sub/c.csv", "sub/deeper/d.csv"] {
            write_bytes(&p(&d, f), b"x", false).unwrap();
        }
        let top = find_files(d.path().to_str().unwrap(), "*.csv").unwrap();
        assert_eq!(top, vec![p(&d, "a.csv")]);
        let all = find_files(d.path().to_str().unwrap(), "**/*.csv").unwrap();
        assert_eq!(
            all,
            vec![
                p(&d, "a.csv"),
                p(&d, "sub/c.csv"),
                p(&d, "sub/deeper/d.csv")
            ]
        );
    }

    #[test]
    fn failures_name_the_path() {
        let err = read_text("/nonexistent/file.txt").unwrap_err();
        assert!(err.contains("/nonexistent/file.txt"), "{err}");
        let d = tempfile::tempdir().unwrap();
        let err = delete_file(d.path().to_str().unwrap()).unwrap_err();
        assert!(err.contains("DelTree"), "{err}");
    }
}
