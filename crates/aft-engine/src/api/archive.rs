//! Archives for scripts: `Zip`/`Unzip` (deflate, optional AES-256 password) and
//! `TarGz`/`UnTarGz`, readable and writable by Info-ZIP's `zip`/`unzip` and GNU `tar`.
//!
//! Sources are stored as `zip -r` and `tar -czf` store them: a file by its name, a folder
//! by its name and everything under it. Extraction refuses entries that would land outside
//! the target folder ("zip slip").

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use chrono::{Datelike, Local, Timelike};
use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Value};
use zip::write::SimpleFileOptions;
use zip::{AesMode, CompressionMethod, ZipArchive, ZipWriter};

use super::libutil::{
    opt_f64, opt_str, options, report, secret_value, set_global, string_list, throw,
};
use crate::JobScope;

/// How to write a zip.
#[derive(Debug, Clone, Default)]
pub struct ZipSettings {
    /// AES-256 password for every entry; `None` for no encryption.
    pub password: Option<String>,
    /// Deflate level 0-9; `None` for the default (6).
    pub level: Option<i64>,
}

fn io_at(action: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("cannot {action} {}: {e}", path.display())
}

fn zip_time(path: &Path) -> Option<zip::DateTime> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let t: chrono::DateTime<Local> = modified.into();
    zip::DateTime::from_date_and_time(
        u16::try_from(t.year()).ok()?,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
    )
    .ok()
}

fn unix_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// The name a source is stored under: its last component (a folder keeps its name).
fn stored_name(src: &Path) -> Result<String, String> {
    src.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{} has no file name to store it under", src.display()))
}

/// Every file and folder under `root`, depth first, as (path on disk, name in the archive).
fn walk(root: &Path, name: &str, out: &mut Vec<(PathBuf, String, bool)>) -> Result<(), String> {
    if root.is_dir() {
        out.push((root.to_path_buf(), format!("{name}/"), true));
        let mut entries: Vec<_> = std::fs::read_dir(root)
            .map_err(|e| io_at("list", root, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| io_at("list", root, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let child = entry.path();
            let child_name = format!("{name}/{}", entry.file_name().to_string_lossy());
            walk(&child, &child_name, out)?;
        }
        Ok(())
    } else if root.is_file() {
        out.push((root.to_path_buf(), name.to_string(), false));
        Ok(())
    } else {
        Err(format!(
            "{} does not exist (or is not a file or folder)",
            root.display()
        ))
    }
}

/// Write `zip_path` holding `sources` (files and folders).
pub fn zip_create(
    sources: &[String],
    zip_path: &str,
    settings: &ZipSettings,
) -> Result<(), String> {
    if sources.is_empty() {
        return Err("nothing to zip: give a file, a folder or an array of them".into());
    }
    let mut items = Vec::new();
    for src in sources {
        let src = Path::new(src);
        walk(src, &stored_name(src)?, &mut items)?;
    }
    let out = Path::new(zip_path);
    let file = File::create(out).map_err(|e| io_at("create", out, e))?;
    let mut writer = ZipWriter::new(BufWriter::new(file));
    let result = (|| {
        for (path, name, is_dir) in &items {
            let mut opts = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .compression_level(settings.level)
                .large_file(
                    std::fs::metadata(path)
                        .map(|m| m.len() >= u32::MAX as u64)
                        .unwrap_or(false),
                );
            if let Some(t) = zip_time(path) {
                opts = opts.last_modified_time(t);
            }
            if let Some(m) = unix_mode(path) {
                opts = opts.unix_permissions(m);
            }
            if let Some(pw) = &settings.password
                && !is_dir
            {
                opts = opts.with_aes_encryption(AesMode::Aes256, pw);
            }
            if *is_dir {
                writer
                    .add_directory(name.as_str(), opts)
                    .map_err(|e| io_at("add folder to", out, e))?;
            } else {
                writer
                    .start_file(name.as_str(), opts)
                    .map_err(|e| io_at("add file to", out, e))?;
                let mut input = File::open(path).map_err(|e| io_at("read", path, e))?;
                std::io::copy(&mut input, &mut writer).map_err(|e| io_at("compress", path, e))?;
            }
        }
        writer.finish().map_err(|e| io_at("finish", out, e))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

fn zip_error(zip_path: &Path, entry: &str, e: zip::result::ZipError) -> String {
    use zip::result::ZipError;
    match e {
        ZipError::InvalidPassword => format!("{}: wrong password for {entry}", zip_path.display()),
        ZipError::UnsupportedArchive(m) if m.to_ascii_lowercase().contains("password") => format!(
            "{}: {entry} is password protected; pass {{Password: ...}} or {{PasswordFromSecret: ...}}",
            zip_path.display()
        ),
        other => format!("{}: {entry}: {other}", zip_path.display()),
    }
}

/// Extract every entry of `zip_path` into `dest` (made if missing).
pub fn unzip(zip_path: &str, dest: &str, password: Option<&str>) -> Result<usize, String> {
    let zp = Path::new(zip_path);
    let file = File::open(zp).map_err(|e| io_at("open", zp, e))?;
    let mut archive = ZipArchive::new(BufReader::new(file))
        .map_err(|e| format!("{zip_path} is not a readable zip file: {e}"))?;
    let dest = Path::new(dest);
    std::fs::create_dir_all(dest).map_err(|e| io_at("create folder", dest, e))?;
    let mut written = 0;
    for i in 0..archive.len() {
        let mut entry = match password {
            Some(pw) => archive.by_index_decrypt(i, pw.as_bytes()),
            None => archive.by_index(i),
        }
        .map_err(|e| zip_error(zp, &format!("entry #{i}"), e))?;
        let raw_name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("entry #{i}"));
        let rel = entry.enclosed_name().ok_or_else(|| {
            format!(
                "{zip_path}: entry \"{raw_name}\" would be written outside {}; refused",
                dest.display()
            )
        })?;
        let target = dest.join(rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| io_at("create folder", &target, e))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_at("create folder", parent, e))?;
        }
        let mut out = File::create(&target).map_err(|e| io_at("create", &target, e))?;
        if let Err(e) = std::io::copy(&mut entry, &mut out) {
            drop(out);
            let _ = std::fs::remove_file(&target);
            let hint = if password.is_some() {
                " (wrong password or a damaged archive)"
            } else {
                " (the archive is damaged)"
            };
            return Err(format!("{zip_path}: cannot extract {raw_name}: {e}{hint}"));
        }
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            let _ =
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o777));
        }
        written += 1;
    }
    Ok(written)
}

/// Write a gzip-compressed tar of `sources` (files and folders).
pub fn targz_create(sources: &[String], out_path: &str) -> Result<(), String> {
    if sources.is_empty() {
        return Err("nothing to archive: give a file, a folder or an array of them".into());
    }
    let out = Path::new(out_path);
    let file = File::create(out).map_err(|e| io_at("create", out, e))?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let result = (|| {
        for src in sources {
            let src = Path::new(src);
            let name = stored_name(src)?;
            if src.is_dir() {
                tar.append_dir_all(&name, src)
                    .map_err(|e| io_at("archive", src, e))?;
            } else if src.is_file() {
                tar.append_path_with_name(src, &name)
                    .map_err(|e| io_at("archive", src, e))?;
            } else {
                return Err(format!(
                    "{} does not exist (or is not a file or folder)",
                    src.display()
                ));
            }
        }
        let gz = tar.into_inner().map_err(|e| io_at("finish", out, e))?;
        gz.finish().map_err(|e| io_at("finish", out, e))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

/// Extract a `.tar.gz` into `dest` (made if missing); entries escaping `dest` are refused.
pub fn targz_extract(path: &str, dest: &str) -> Result<(), String> {
    let p = Path::new(path);
    let file = File::open(p).map_err(|e| io_at("open", p, e))?;
    let dest_path = Path::new(dest);
    std::fs::create_dir_all(dest_path).map_err(|e| io_at("create folder", dest_path, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    archive.set_overwrite(true);
    let entries = archive
        .entries()
        .map_err(|e| format!("{path} is not a readable .tar.gz: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{path} is not a readable .tar.gz: {e}"))?;
        let name = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        // unpack_in refuses paths with `..` or absolute ones (returns false).
        let inside = entry
            .unpack_in(dest_path)
            .map_err(|e| format!("{path}: cannot extract {name}: {e}"))?;
        if !inside {
            return Err(format!(
                "{path}: entry \"{name}\" would be written outside {dest}; refused"
            ));
        }
    }
    Ok(())
}

fn zip_password<'js>(
    ctx: &Ctx<'js>,
    scope: &JobScope,
    func: &str,
    o: &serde_json::Map<String, serde_json::Value>,
) -> rquickjs::Result<Result<Option<String>, String>> {
    if let Some(pw) = opt_str(o, "Password") {
        if pw.is_empty() {
            return Err(throw(
                ctx,
                func,
                "Password is empty; leave it out for no password",
            ));
        }
        return Ok(Ok(Some(pw.to_string())));
    }
    if let Some(name) = opt_str(o, "PasswordFromSecret") {
        return Ok(secret_value(scope, name).map(Some));
    }
    Ok(Ok(None))
}

/// Register `Zip`, `Unzip`, `TarGz` and `UnTarGz`.
pub fn register<'js>(ctx: &Ctx<'js>, scope: &JobScope) -> rquickjs::Result<()> {
    let s = scope.clone();
    set_global(
        ctx,
        "Zip",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, sources: Value<'js>, zip_path: String, opts: Opt<Value<'js>>| {
                let sources = string_list(&ctx, "Zip", "source", Some(sources))?;
                let o = options(&ctx, "Zip", opts.0)?;
                let level = match opt_f64(&o, "Level") {
                    Some(l) if (0.0..=9.0).contains(&l) => Some(l as i64),
                    Some(_) => return Err(throw(&ctx, "Zip", "Level must be 0 to 9")),
                    None => None,
                };
                let result = zip_password(&ctx, &s, "Zip", &o)?.and_then(|password| {
                    zip_create(&sources, &zip_path, &ZipSettings { password, level })
                });
                rquickjs::Result::Ok(report(&s, "Zip", result.map(|_| true), false))
            },
        )?,
    )?;
    let s = scope.clone();
    set_global(
        ctx,
        "Unzip",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, zip_path: String, dest: String, opts: Opt<Value<'js>>| {
                let o = options(&ctx, "Unzip", opts.0)?;
                let result = zip_password(&ctx, &s, "Unzip", &o)?
                    .and_then(|password| unzip(&zip_path, &dest, password.as_deref()));
                rquickjs::Result::Ok(report(&s, "Unzip", result.map(|_| true), false))
            },
        )?,
    )?;
    let s = scope.clone();
    set_global(
        ctx,
        "TarGz",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, sources: Value<'js>, out: String| {
                let sources = string_list(&ctx, "TarGz", "source", Some(sources))?;
                rquickjs::Result::Ok(report(
                    &s,
                    "TarGz",
                    targz_create(&sources, &out).map(|_| true),
                    false,
                ))
            },
        )?,
    )?;
    let s = scope.clone();
    set_global(
        ctx,
        "UnTarGz",
        Function::new(ctx.clone(), move |path: String, dest: String| {
            report(
                &s,
                "UnTarGz",
                targz_extract(&path, &dest).map(|_| true),
                false,
            )
        })?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("in/sub")).unwrap();
        std::fs::write(d.path().join("in/a.txt"), "alpha").unwrap();
        std::fs::write(d.path().join("in/sub/b.bin"), vec![7u8; 100_000]).unwrap();
        d
    }

    fn s(p: &Path) -> String {
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn zip_round_trip_with_and_without_password() {
        let d = tree();
        for pw in [None, Some("s3cret")] {
            let z = d.path().join("out.zip");
            zip_create(
                &[s(&d.path().join("in"))],
                &s(&z),
                &ZipSettings {
                    password: pw.map(String::from),
                    level: None,
                },
            )
            .unwrap();
            let out = d.path().join(format!("x-{}", pw.is_some()));
            unzip(&s(&z), &s(&out), pw).unwrap();
            assert_eq!(
                std::fs::read_to_string(out.join("in/a.txt")).unwrap(),
                "alpha"
            );
            assert_eq!(
                std::fs::read(out.join("in/sub/b.bin")).unwrap(),
                vec![7u8; 100_000]
            );
        }
    }

    #[test]
    fn wrong_or_missing_password_and_corrupt_zip_fail_clearly() {
        let d = tree();
        let z = d.path().join("p.zip");
        zip_create(
            &[s(&d.path().join("in/a.txt"))],
            &s(&z),
            &ZipSettings {
                password: Some("right".into()),
                level: None,
            },
        )
        .unwrap();
        let err = unzip(&s(&z), &s(&d.path().join("o1")), Some("wrong")).unwrap_err();
        assert!(err.contains("wrong password"), "{err}");
        let err = unzip(&s(&z), &s(&d.path().join("o2")), None).unwrap_err();
        assert!(err.contains("password"), "{err}");
        let bad = d.path().join("bad.zip");
        std::fs::write(&bad, b"PK\x03\x04 this is not really a zip").unwrap();
        let err = unzip(&s(&bad), &s(&d.path().join("o3")), None).unwrap_err();
        assert!(err.contains("not a readable zip"), "{err}");
    }

    #[test]
    fn targz_round_trip() {
        let d = tree();
        let t = d.path().join("t.tar.gz");
        targz_create(&[s(&d.path().join("in"))], &s(&t)).unwrap();
        let out = d.path().join("untar");
        targz_extract(&s(&t), &s(&out)).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("in/a.txt")).unwrap(),
            "alpha"
        );
        assert_eq!(
            std::fs::read(out.join("in/sub/b.bin")).unwrap().len(),
            100_000
        );
        let err = targz_extract(&s(&d.path().join("in/a.txt")), &s(&out)).unwrap_err();
        assert!(err.contains("not a readable .tar.gz"), "{err}");
    }
}
