//! Dry runs on the script side: [`DryRunHost`] marks a job as a dry run, and [`register`]
//! (called last, only for dry runs) replaces what the VFS recorder cannot see.
//!
//! The transfer clients wrap their backends in the job's [`DryRun`] themselves. Here the
//! local file calls that change something (`CopyFile`, `MoveFile`, `DelFile`, `DelTree`,
//! `MakeDir`, `WriteTextFile`, `AppendTextFile`, `WriteFileBytes`) go through the same
//! recorder over the local disk, `FileExists`/`DirExists` see its overlay, and calls that
//! act outside the file systems (`RunProgram`, `SendMail`, `HttpCli` other than a plain
//! `GET`, watcher starts, archive and OpenPGP files) are not made: each is listed in the
//! plan and answers as if it had worked, so the rest of the script is planned as on a good
//! day.

use std::path::Path;
use std::sync::Arc;

use aft_vfs::dry_run::DryRun;
use aft_vfs::local::LocalFs;
use aft_vfs::{Vfs, VfsError, WriteMode, file_name, join, normalize, parent};
use rquickjs::{Ctx, Function};
use tokio::io::AsyncWriteExt;

use super::libutil::{report, set_global};
use crate::{JobHost, JobScope, SeenEntry, TransferRecord};

/// A job host for a dry run: everything is asked of `inner`, except that transfers are not
/// recorded as done (they are in the plan) and watcher state is not saved.
pub struct DryRunHost {
    inner: Arc<dyn JobHost>,
    run: Arc<DryRun>,
}

impl DryRunHost {
    /// `inner` for a dry run recording into `run`.
    pub fn new(inner: Arc<dyn JobHost>, run: Arc<DryRun>) -> Self {
        Self { inner, run }
    }
}

impl JobHost for DryRunHost {
    fn secret(&self, name: &str) -> Option<String> {
        let value = self.inner.secret(name);
        if let Some(v) = &value {
            // The plan is stored and shown: it masks what job logs mask.
            self.run.hide(v);
        }
        value
    }

    fn vfs_entry(&self, name: &str) -> Result<serde_json::Value, String> {
        self.inner.vfs_entry(name)
    }

    fn setting(&self, key: &str) -> Option<String> {
        self.inner.setting(key)
    }

    fn record_transfers(&self, _records: Vec<TransferRecord>) {}

    fn watch_state_load(&self, key: &str) -> Result<Vec<SeenEntry>, String> {
        self.inner.watch_state_load(key)
    }

    fn watch_state_save(
        &self,
        _key: &str,
        _changed: &[SeenEntry],
        _removed: &[String],
    ) -> Result<(), String> {
        Ok(())
    }

    fn set_result(&self, value: &str) -> Result<(), String> {
        self.inner.set_result(value)
    }

    fn dry_run(&self) -> Option<Arc<DryRun>> {
        Some(self.run.clone())
    }
}

/// A local path made absolute (relative paths are taken from the current folder).
fn absolute(path: &str) -> String {
    let p = Path::new(path);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    normalize(&abs.to_string_lossy())
}

/// The local disk behind the job's recorder, with the job's runtime to block on.
struct Local {
    fs: Arc<dyn Vfs>,
    scope: JobScope,
}

impl Local {
    fn block<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, VfsError>>,
    ) -> Result<T, String> {
        self.scope.tokio.block_on(fut).map_err(|e| e.to_string())
    }

    async fn is(&self, path: &str, dir: bool) -> Result<bool, VfsError> {
        match self.fs.stat(path).await {
            Ok(e) => Ok(e.is_dir == dir),
            Err(VfsError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Where a copy or move of `src` to `dst` lands: inside `dst` when it is a folder or
    /// ends with `/`, as `CopyFile` does for real.
    async fn target(&self, src: &str, dst: &str) -> Result<String, VfsError> {
        let d = absolute(dst);
        if dst.ends_with('/') || self.is(&d, true).await? {
            Ok(join(&d, &file_name(src)))
        } else {
            Ok(d)
        }
    }

    fn copy_file(&self, src: &str, dst: &str) -> Result<bool, String> {
        let src = absolute(src);
        self.block(async {
            if !self.is(&src, false).await? {
                return Err(VfsError::Other(format!(
                    "{src} is not a file (or does not exist)"
                )));
            }
            let target = self.target(&src, dst).await?;
            self.fs.mkdir_all(&parent(&target)).await?;
            let mut reader = self.fs.read(&src, 0, None).await?;
            let mut writer = self.fs.write(&target, WriteMode::Create).await?;
            let io = |e| VfsError::io(src.clone(), e);
            tokio::io::copy(&mut reader, &mut writer)
                .await
                .map_err(io)?;
            writer.shutdown().await.map_err(io)?;
            Ok(true)
        })
    }

    fn move_file(&self, src: &str, dst: &str) -> Result<bool, String> {
        let src = absolute(src);
        self.block(async {
            self.fs.stat(&src).await?;
            let target = self.target(&src, dst).await?;
            self.fs.mkdir_all(&parent(&target)).await?;
            self.fs.rename(&src, &target).await?;
            Ok(true)
        })
    }

    fn delete_file(&self, path: &str) -> Result<bool, String> {
        let p = absolute(path);
        self.block(async {
            if self.is(&p, true).await? {
                return Err(VfsError::Other(format!(
                    "{path} is a folder; use DelTree to delete a folder"
                )));
            }
            self.fs.remove_file(&p).await?;
            Ok(true)
        })
    }

    fn del_tree(&self, path: &str) -> Result<bool, String> {
        let p = absolute(path);
        self.block(async {
            if !self.is(&p, true).await? {
                return Err(VfsError::Other(format!(
                    "{path} is not a folder (or does not exist)"
                )));
            }
            self.fs.remove_all(&p).await?;
            Ok(true)
        })
    }

    fn make_dir(&self, path: &str) -> Result<bool, String> {
        let p = absolute(path);
        self.block(async {
            self.fs.mkdir_all(&p).await?;
            Ok(true)
        })
    }

    fn write(&self, path: &str, data: &[u8], append: bool) -> Result<bool, String> {
        let p = absolute(path);
        self.block(async {
            self.fs.mkdir_all(&parent(&p)).await?;
            let mode = match self.fs.stat(&p).await {
                Ok(e) if append && !e.is_dir => WriteMode::ResumeAt(e.size),
                _ => WriteMode::Create,
            };
            let mut writer = self.fs.write(&p, mode).await?;
            let io = |e| VfsError::io(p.clone(), e);
            writer.write_all(data).await.map_err(io)?;
            writer.shutdown().await.map_err(io)?;
            Ok(true)
        })
    }

    fn exists(&self, path: &str, dir: bool) -> bool {
        let p = absolute(path);
        self.block(self.is(&p, dir)).unwrap_or(false)
    }
}

/// Replace, for a dry run, the calls the VFS recorder cannot see. Call after every other
/// module has registered.
pub fn register<'js>(ctx: &Ctx<'js>, scope: &JobScope, run: Arc<DryRun>) -> rquickjs::Result<()> {
    let local = Arc::new(Local {
        fs: run.wrap(Arc::new(LocalFs::new("/"))),
        scope: scope.clone(),
    });
    macro_rules! bool_fn {
        ($name:literal, |$l:ident, $($arg:ident),*| $body:expr) => {{
            let (s, $l) = (scope.clone(), local.clone());
            set_global(
                ctx,
                $name,
                Function::new(ctx.clone(), move |$($arg: String),*| {
                    report(&s, $name, $body, false)
                })?,
            )?;
        }};
    }
    bool_fn!("CopyFile", |l, src, dst| l.copy_file(&src, &dst));
    bool_fn!("MoveFile", |l, src, dst| l.move_file(&src, &dst));
    bool_fn!("DelFile", |l, path| l.delete_file(&path));
    bool_fn!("DelTree", |l, path| l.del_tree(&path));
    bool_fn!("MakeDir", |l, path| l.make_dir(&path));
    bool_fn!("WriteTextFile", |l, path, text| l.write(
        &path,
        text.as_bytes(),
        false
    ));
    bool_fn!("AppendTextFile", |l, path, text| l.write(
        &path,
        text.as_bytes(),
        true
    ));
    let (s, l) = (scope.clone(), local.clone());
    set_global(
        ctx,
        "WriteFileBytes",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, path: String, data: rquickjs::Value<'js>| {
                let bytes = super::libutil::bytes_arg(&ctx, "WriteFileBytes", data)?;
                rquickjs::Result::Ok(report(
                    &s,
                    "WriteFileBytes",
                    l.write(&path, &bytes, false),
                    false,
                ))
            },
        )?,
    )?;
    let l = local.clone();
    set_global(
        ctx,
        "FileExists",
        Function::new(ctx.clone(), move |path: String| l.exists(&path, false))?,
    )?;
    let l = local;
    set_global(
        ctx,
        "DirExists",
        Function::new(ctx.clone(), move |path: String| l.exists(&path, true))?,
    )?;
    let r = run.clone();
    set_global(
        ctx,
        "__aft_dry_skip",
        Function::new(ctx.clone(), move |call: String, detail: String| {
            r.skip_call(&call, &detail);
        })?,
    )?;
    super::prelude::DRY_RUN.eval::<()>(ctx)
}
