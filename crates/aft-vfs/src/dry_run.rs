//! Dry runs: a [`Vfs`] decorator that records every change instead of making it.
//!
//! [`DryRun::wrap`] puts any backend behind a [`DryRunVfs`]: reads, stats and listings reach
//! the real backend, while every write, rename, delete, mkdir and mtime change becomes an
//! [`Effect`] in the run's [`Plan`]. So that a script behaves as it would for real, each
//! backend gets an *overlay* of what the run changed: a file written in a dry run is then
//! listed and stat'ed with its size (its content is not kept: reading it back fails), a
//! deleted file is gone from listings, a made folder exists, a renamed file is found under
//! its new name. Overlays are keyed by the backend's label (`describe()`), so every client
//! of one server in one run shares what the run did to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWrite;

use crate::transfer::{Outcome, TransferOutcome};
use crate::{
    Capabilities, Entry, EntryStream, HashAlgo, Vfs, VfsError, VfsReader, VfsResult, VfsWriter,
    WriteMode, file_name, normalize, parent,
};

/// What one planned effect does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A local file would be uploaded to a remote.
    Upload,
    /// A remote file would be downloaded to local disk.
    Download,
    /// A file would be copied between two remotes, or between two local paths.
    Copy,
    /// A file would be written outside a transfer (`WriteTextFile`, ...).
    Write,
    /// A transfer would leave the target alone by its overwrite policy.
    Skip,
    /// A transfer would fail (for a reason found without writing: the source is missing...).
    Fail,
    /// A file, or a folder and everything in it, would be deleted.
    Delete,
    /// A file or folder would be renamed or moved.
    Rename,
    /// A folder (and its missing parents) would be made.
    Mkdir,
    /// An existing file's modification time would be changed.
    Touch,
}

/// One change the run would have made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Effect {
    /// What would happen.
    pub action: Action,
    /// The path it would happen to, with its backend (`sftp://u@h:22/in/a.csv`).
    pub target: String,
    /// Where the data or the old name comes from (transfers, renames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Bytes that would be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The target exists and would be replaced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overwrite: bool,
    /// The target is a folder (a folder delete takes everything in it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub folder: bool,
    /// Why a transfer is skipped or would fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The modification time the target would get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<DateTime<Utc>>,
}

impl Effect {
    fn new(action: Action, target: String) -> Self {
        Self {
            action,
            target,
            source: None,
            bytes: None,
            overwrite: false,
            folder: false,
            reason: None,
            mtime: None,
        }
    }
}

/// A call a dry run did not make at all (`RunProgram`, `SendMail`, `HttpCli.Post`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedCall {
    /// The script call (`RunProgram`, `SendMail`, `HttpCli.POST`, `FsWatcher.Start`).
    pub call: String,
    /// What it would have done (the command, the recipients, the URL, ...).
    pub detail: String,
}

/// Counts of a plan's effects, for a one-line summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    /// Files that would be uploaded.
    pub uploaded: u64,
    /// Files that would be downloaded.
    pub downloaded: u64,
    /// Files that would be copied (remote to remote, local to local).
    pub copied: u64,
    /// Files that would be written outside transfers.
    pub written: u64,
    /// Of the files above, those that would replace an existing file.
    pub overwritten: u64,
    /// Transfers skipped by policy.
    pub skipped: u64,
    /// Transfers that would fail.
    pub failed: u64,
    /// Files and folders that would be deleted.
    pub deleted: u64,
    /// Files and folders that would be renamed or moved.
    pub renamed: u64,
    /// Folders that would be made.
    pub made: u64,
    /// Modification times that would change on existing files.
    pub touched: u64,
    /// Bytes that would be written.
    pub bytes: u64,
    /// Calls not made.
    pub calls_skipped: u64,
}

/// What a dry run would have done: its effects in the order they were met, and the calls
/// it did not make.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Changes to files and folders, in order.
    pub effects: Vec<Effect>,
    /// Calls skipped because they act outside the file systems.
    pub skipped_calls: Vec<SkippedCall>,
    /// Counts of the above.
    pub summary: PlanSummary,
}

impl Plan {
    /// The plan as text, one line per effect and skipped call, then a summary line: what
    /// `aft run --dry-run` prints and a dry-run job's log ends with.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.effects.is_empty() && self.skipped_calls.is_empty() {
            out.push("plan: nothing would change".to_string());
        }
        for e in &self.effects {
            let action = serde_json::to_value(e.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let mut line = match &e.source {
                Some(src) if e.action != Action::Skip && e.action != Action::Fail => {
                    format!("plan: {action:<8} {src} -> {}", e.target)
                }
                _ => format!("plan: {action:<8} {}", e.target),
            };
            let mut notes = Vec::new();
            if let Some(b) = e.bytes {
                notes.push(format!("{b} bytes"));
            }
            if e.overwrite {
                notes.push("overwrites".to_string());
            }
            if e.folder && e.action == Action::Delete {
                notes.push("folder, with everything in it".to_string());
            }
            if let Some(t) = e.mtime {
                notes.push(format!("time {}", t.to_rfc3339()));
            }
            if !notes.is_empty() {
                line.push_str(&format!(" ({})", notes.join(", ")));
            }
            if let Some(why) = &e.reason {
                line.push_str(&format!(": {why}"));
            }
            out.push(line);
        }
        for c in &self.skipped_calls {
            out.push(format!("plan: not run {}: {}", c.call, c.detail));
        }
        let s = &self.summary;
        out.push(format!(
            "plan summary: {} uploaded, {} downloaded, {} copied, {} written ({} overwriting, {} bytes), {} skipped by policy, {} failing, {} deleted, {} renamed, {} folders made, {} times set, {} calls not run",
            s.uploaded,
            s.downloaded,
            s.copied,
            s.written,
            s.overwritten,
            s.bytes,
            s.skipped,
            s.failed,
            s.deleted,
            s.renamed,
            s.made,
            s.touched,
            s.calls_skipped
        ));
        out
    }

    fn summarize(effects: Vec<Effect>, skipped_calls: Vec<SkippedCall>) -> Self {
        let mut s = PlanSummary {
            calls_skipped: skipped_calls.len() as u64,
            ..PlanSummary::default()
        };
        for e in &effects {
            let counter = match e.action {
                Action::Upload => &mut s.uploaded,
                Action::Download => &mut s.downloaded,
                Action::Copy => &mut s.copied,
                Action::Write => &mut s.written,
                Action::Skip => &mut s.skipped,
                Action::Fail => &mut s.failed,
                Action::Delete => &mut s.deleted,
                Action::Rename => &mut s.renamed,
                Action::Mkdir => &mut s.made,
                Action::Touch => &mut s.touched,
            };
            *counter += 1;
            if matches!(
                e.action,
                Action::Upload | Action::Download | Action::Copy | Action::Write
            ) {
                s.bytes += e.bytes.unwrap_or(0);
                s.overwritten += u64::from(e.overwrite);
            }
        }
        Self {
            effects,
            skipped_calls,
            summary: s,
        }
    }
}

/// A file the run wrote, as the overlay shows it.
#[derive(Debug, Clone)]
struct Written {
    entry: Entry,
    /// Its effect in the plan.
    effect: usize,
}

/// What one backend looks like after the run's recorded changes.
#[derive(Debug, Default)]
struct Overlay {
    /// Files written by the run, by path.
    files: HashMap<String, Written>,
    /// Folders made by the run that the backend does not have.
    dirs: BTreeSet<String>,
    /// Paths deleted by the run (a folder hides everything below it).
    removed: BTreeSet<String>,
    /// Renamed paths: new path -> the backend's real path.
    moved: BTreeMap<String, String>,
    /// Modification times set on real files.
    mtimes: HashMap<String, DateTime<Utc>>,
}

fn under(path: &str, dir: &str) -> bool {
    path == dir || dir == "/" || path.starts_with(&format!("{dir}/"))
}

impl Overlay {
    fn is_removed(&self, path: &str) -> bool {
        self.removed.iter().any(|r| under(path, r))
    }

    /// The backend's real path for `path`, through renames.
    fn real(&self, path: &str) -> String {
        for (to, from) in self.moved.iter().rev() {
            if under(path, to) {
                return format!("{from}{}", &path[to.len()..]);
            }
        }
        path.to_string()
    }

    /// Whether a real entry listed or stat'ed at `path` is hidden by the run.
    fn hides(&self, path: &str) -> bool {
        self.files.contains_key(path) || (self.is_removed(path) && !self.moved_here(path))
    }

    fn moved_here(&self, path: &str) -> bool {
        self.moved.keys().any(|to| under(path, to))
    }

    fn has_virtual_below(&self, dir: &str) -> bool {
        let below = |p: &String| p != dir && under(p, dir);
        self.files.keys().any(below) || self.dirs.iter().any(below) || self.moved.keys().any(below)
    }

    fn forget_below(&mut self, path: &str) {
        self.files.retain(|p, _| !under(p, path));
        self.dirs.retain(|p| !under(p, path));
        self.moved.retain(|p, _| !under(p, path));
        self.mtimes.retain(|p, _| !under(p, path));
    }
}

#[derive(Debug, Default)]
struct State {
    /// Effects in order; `None` once cancelled (a temp file the run itself removed again).
    effects: Vec<Option<Effect>>,
    overlays: HashMap<String, Overlay>,
    skipped_calls: Vec<SkippedCall>,
    /// Secret values the job read: the plan shows `***` instead, as job logs do.
    hidden: Vec<String>,
}

/// One job's dry run: the recorder every wrapped backend reports to, and the plan.
#[derive(Debug, Default)]
pub struct DryRun {
    state: Mutex<State>,
}

/// `file:///` + `/tmp/a` is `file:////tmp/a` in transfer labels; plans say `file:///tmp/a`.
fn tidy(label: &str) -> String {
    match label.strip_prefix("file:////") {
        Some(rest) => format!("file:///{rest}"),
        None => label.to_string(),
    }
}

impl DryRun {
    /// A new, empty dry run.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// `vfs` behind this run's recorder. Wrapping a wrapped backend returns it as it is.
    pub fn wrap(self: &Arc<Self>, vfs: Arc<dyn Vfs>) -> Arc<dyn Vfs> {
        Arc::new(DryRunVfs {
            key: vfs.describe(),
            inner: vfs,
            run: self.clone(),
        })
    }

    /// Note a call the run did not make.
    pub fn skip_call(&self, call: &str, detail: &str) {
        self.lock().skipped_calls.push(SkippedCall {
            call: call.to_string(),
            detail: detail.to_string(),
        });
    }

    /// Note how one file's transfer ended: a copy names the write it made (upload,
    /// download or copy, by the two ends), a skip or a failure becomes its own effect.
    pub fn note_transfer(&self, o: &TransferOutcome) {
        let (source, target) = (tidy(&o.source), tidy(&o.target));
        let mut st = self.lock();
        match &o.outcome {
            Outcome::Ok => {
                let action = match (source.starts_with("file://"), target.starts_with("file://")) {
                    (true, false) => Action::Upload,
                    (false, true) => Action::Download,
                    _ => Action::Copy,
                };
                let found = st.effects.iter_mut().rev().flatten().find(|e| {
                    e.action == Action::Write && e.source.is_none() && e.target == target
                });
                match found {
                    Some(e) => {
                        e.action = action;
                        e.source = Some(source);
                    }
                    None => {
                        let mut e = Effect::new(action, target);
                        e.source = Some(source);
                        e.bytes = Some(o.bytes);
                        st.effects.push(Some(e));
                    }
                }
            }
            Outcome::Skipped(why) | Outcome::Failed(why) => {
                let action = if matches!(o.outcome, Outcome::Skipped(_)) {
                    Action::Skip
                } else {
                    Action::Fail
                };
                let mut e = Effect::new(action, target);
                e.source = Some(source);
                e.reason = Some(why.clone());
                st.effects.push(Some(e));
            }
        }
    }

    /// Keep `value` (a secret the job read) out of the plan.
    pub fn hide(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut st = self.lock();
        if !st.hidden.iter().any(|v| v == value) {
            st.hidden.push(value.to_string());
            // Longest first, so a secret that contains another is hidden whole.
            st.hidden.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// The plan so far, with every hidden value replaced by `***`.
    pub fn plan(&self) -> Plan {
        let st = self.lock();
        let mask = |text: &str| {
            st.hidden
                .iter()
                .fold(text.to_string(), |out, v| out.replace(v.as_str(), "***"))
        };
        let mask_opt = |text: &Option<String>| text.as_deref().map(mask);
        let effects = st
            .effects
            .iter()
            .flatten()
            .map(|e| Effect {
                target: mask(&e.target),
                source: mask_opt(&e.source),
                reason: mask_opt(&e.reason),
                ..e.clone()
            })
            .collect();
        let calls = st
            .skipped_calls
            .iter()
            .map(|c| SkippedCall {
                call: c.call.clone(),
                detail: mask(&c.detail),
            })
            .collect();
        Plan::summarize(effects, calls)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A backend whose changes are recorded in a [`DryRun`] instead of made.
pub struct DryRunVfs {
    inner: Arc<dyn Vfs>,
    /// The overlay's key: the backend's label.
    key: String,
    run: Arc<DryRun>,
}

impl DryRunVfs {
    fn label(&self, path: &str) -> String {
        tidy(&format!("{}{path}", self.key))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Overlay, &mut Vec<Option<Effect>>) -> T) -> T {
        let mut st = self.run.lock();
        let st = &mut *st;
        let overlay = st.overlays.entry(self.key.clone()).or_default();
        f(overlay, &mut st.effects)
    }

    fn not_found(&self, path: &str) -> VfsError {
        VfsError::NotFound(self.label(path))
    }

    fn dir_entry(path: &str) -> Entry {
        Entry {
            path: path.to_string(),
            name: file_name(path),
            size: 0,
            mtime: None,
            is_dir: true,
            etag: None,
        }
    }

    async fn exists_as(&self, path: &str) -> VfsResult<Option<Entry>> {
        match self.stat(path).await {
            Ok(e) => Ok(Some(e)),
            Err(VfsError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Where a planned `stat` goes.
enum Lookup {
    Found(Entry),
    Gone,
    Real { real: String, implied_dir: bool },
}

#[async_trait]
impl Vfs for DryRunVfs {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn connect(&self) -> VfsResult<()> {
        self.inner.connect().await
    }

    async fn stat(&self, path: &str) -> VfsResult<Entry> {
        let p = normalize(path);
        let lookup = self.with(|ov, _| {
            if let Some(w) = ov.files.get(&p) {
                return Lookup::Found(w.entry.clone());
            }
            if ov.dirs.contains(&p) {
                return Lookup::Found(Self::dir_entry(&p));
            }
            if ov.is_removed(&p) && !ov.moved_here(&p) {
                return Lookup::Gone;
            }
            Lookup::Real {
                real: ov.real(&p),
                implied_dir: ov.has_virtual_below(&p),
            }
        });
        let (real, implied_dir) = match lookup {
            Lookup::Found(e) => return Ok(e),
            Lookup::Gone => return Err(self.not_found(&p)),
            Lookup::Real { real, implied_dir } => (real, implied_dir),
        };
        match self.inner.stat(&real).await {
            Ok(mut e) => {
                e.path = p.clone();
                e.name = file_name(&p);
                if let Some(t) = self.with(|ov, _| ov.mtimes.get(&p).copied()) {
                    e.mtime = Some(t);
                }
                Ok(e)
            }
            Err(VfsError::NotFound(_)) if implied_dir => Ok(Self::dir_entry(&p)),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, dir: &str) -> VfsResult<EntryStream<'_>> {
        let p = normalize(dir);
        let (gone, virtual_dir, real) = self.with(|ov, _| {
            let virtual_dir = ov.dirs.contains(&p) || ov.has_virtual_below(&p);
            (
                ov.is_removed(&p) && !ov.moved_here(&p),
                virtual_dir,
                ov.real(&p),
            )
        });
        if gone && !virtual_dir {
            return Err(self.not_found(&p));
        }
        let real_listing = if gone {
            // A folder deleted and made again by the run holds only what the run put there.
            stream::empty().boxed()
        } else {
            match self.inner.list(&real).await {
                Ok(s) => s,
                Err(VfsError::NotFound(_)) if virtual_dir => stream::empty().boxed(),
                Err(e) => return Err(e),
            }
        };
        let run = self.run.clone();
        let key = self.key.clone();
        let base = p.clone();
        let real_base = real.clone();
        let shown = real_listing.filter_map(move |r| {
            let out = match r {
                Err(e) => Some(Err(e)),
                Ok(mut e) => {
                    if real_base != base {
                        e.path = format!("{base}{}", &e.path[real_base.len()..]).replace("//", "/");
                    }
                    let st = run.lock();
                    match st.overlays.get(&key) {
                        Some(ov) if ov.hides(&e.path) => None,
                        Some(ov) => {
                            if let Some(t) = ov.mtimes.get(&e.path) {
                                e.mtime = Some(*t);
                            }
                            Some(Ok(e))
                        }
                        None => Some(Ok(e)),
                    }
                }
            };
            futures::future::ready(out)
        });
        // What the run added directly inside `p`: files written, folders made, and the
        // new names of renamed entries (stat'ed through the overlay).
        let (files, dirs, moved): (Vec<Entry>, Vec<Entry>, Vec<String>) = self.with(|ov, _| {
            let child = |path: &str| path != p && parent(path) == p;
            (
                ov.files
                    .iter()
                    .filter(|(k, _)| child(k))
                    .map(|(_, w)| w.entry.clone())
                    .collect(),
                ov.dirs
                    .iter()
                    .filter(|d| child(d))
                    .map(|d| Self::dir_entry(d))
                    .collect(),
                ov.moved
                    .keys()
                    .filter(|k| child(k) && !ov.files.contains_key(*k) && !ov.is_removed(k))
                    .cloned()
                    .collect(),
            )
        });
        let added = stream::iter(files.into_iter().chain(dirs).map(Ok));
        let renamed = stream::iter(moved).then(move |to| async move { self.stat(&to).await });
        Ok(shown.chain(added).chain(renamed).boxed())
    }

    async fn read(&self, path: &str, offset: u64, len: Option<u64>) -> VfsResult<VfsReader> {
        let p = normalize(path);
        let real = self.with(|ov, _| {
            if ov.files.contains_key(&p) {
                return Err(VfsError::Other(format!(
                    "dry run: {} would be written by this run, and its content is not kept",
                    tidy(&format!("{}{p}", self.key))
                )));
            }
            if ov.is_removed(&p) && !ov.moved_here(&p) {
                return Err(VfsError::NotFound(tidy(&format!("{}{p}", self.key))));
            }
            Ok(ov.real(&p))
        })?;
        self.inner.read(&real, offset, len).await
    }

    async fn write(&self, path: &str, mode: WriteMode) -> VfsResult<VfsWriter> {
        let p = normalize(path);
        let existing = self.exists_as(&p).await?;
        if existing.as_ref().is_some_and(|e| e.is_dir) {
            return Err(VfsError::AlreadyExists(format!(
                "{} is a directory",
                self.label(&p)
            )));
        }
        let start = match mode {
            WriteMode::Create => 0,
            WriteMode::ResumeAt(n) => n,
        };
        Ok(Box::pin(RecordingWriter {
            run: self.run.clone(),
            key: self.key.clone(),
            label: self.label(&p),
            path: p,
            overwrite: existing.is_some(),
            bytes: start,
            done: false,
        }))
    }

    async fn mkdir_all(&self, path: &str) -> VfsResult<()> {
        let p = normalize(path);
        let mut missing = Vec::new();
        let mut at = p.clone();
        while at != "/" {
            match self.exists_as(&at).await? {
                Some(e) if e.is_dir => break,
                Some(_) => {
                    return Err(VfsError::AlreadyExists(format!(
                        "{} (a file, so it cannot become a directory)",
                        self.label(&at)
                    )));
                }
                None => missing.push(at.clone()),
            }
            at = parent(&at);
        }
        if missing.is_empty() {
            return Ok(());
        }
        // Object stores make an empty `folder/` marker where they can: an effect too.
        let target = self.label(&p);
        self.with(|ov, effects| {
            ov.dirs.extend(missing);
            effects.push(Some(Effect::new(Action::Mkdir, target)));
        });
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> VfsResult<()> {
        let (from, to) = (normalize(from), normalize(to));
        let entry = self.stat(&from).await?;
        let replaced = self.exists_as(&to).await?.is_some();
        let (from_label, to_label) = (self.label(&from), self.label(&to));
        self.with(|ov, effects| {
            ov.removed.remove(&to);
            if let Some(mut w) = ov.files.remove(&from) {
                // A file this run wrote (a temp name): the write lands at `to` instead.
                w.entry.path = to.clone();
                w.entry.name = file_name(&to);
                if let Some(Some(e)) = effects.get_mut(w.effect) {
                    e.target = to_label;
                    e.overwrite = replaced;
                }
                ov.files.insert(to, w);
                return;
            }
            if ov.dirs.contains(&from) {
                // A folder this run made: its planned content moves with it.
                let moved: Vec<String> = ov
                    .dirs
                    .iter()
                    .filter(|d| under(d, &from))
                    .cloned()
                    .collect();
                for d in moved {
                    ov.dirs.remove(&d);
                    ov.dirs.insert(format!("{to}{}", &d[from.len()..]));
                }
                let files: Vec<String> = ov
                    .files
                    .keys()
                    .filter(|f| under(f, &from))
                    .cloned()
                    .collect();
                for f in files {
                    if let Some(mut w) = ov.files.remove(&f) {
                        let new = format!("{to}{}", &f[from.len()..]);
                        w.entry.path = new.clone();
                        if let Some(Some(e)) = effects.get_mut(w.effect) {
                            e.target = format!("{}{}", &to_label, &f[from.len()..]);
                        }
                        ov.files.insert(new, w);
                    }
                }
            } else {
                let real = ov.real(&from);
                ov.moved.insert(to.clone(), real);
                ov.removed.insert(from.clone());
            }
            let mut e = Effect::new(Action::Rename, to_label);
            e.source = Some(from_label);
            e.folder = entry.is_dir;
            e.overwrite = replaced;
            effects.push(Some(e));
        });
        Ok(())
    }

    async fn remove_file(&self, path: &str) -> VfsResult<()> {
        let p = normalize(path);
        if self.stat(&p).await?.is_dir {
            return Err(VfsError::Other(format!(
                "{} is a directory, not a file",
                self.label(&p)
            )));
        }
        let target = self.label(&p);
        self.with(|ov, effects| {
            if let Some(w) = ov.files.remove(&p)
                && let Some(slot) = effects.get_mut(w.effect)
                && slot.as_ref().is_some_and(|e| !e.overwrite)
            {
                // Written and removed by the run itself (a temp file): nothing happens.
                *slot = None;
                return;
            }
            ov.moved.remove(&p);
            ov.mtimes.remove(&p);
            ov.removed.insert(p.clone());
            effects.push(Some(Effect::new(Action::Delete, target)));
        });
        Ok(())
    }

    async fn remove_dir(&self, path: &str) -> VfsResult<()> {
        let p = normalize(path);
        if !self.stat(&p).await?.is_dir {
            return Err(VfsError::Other(format!(
                "{} is not a directory",
                self.label(&p)
            )));
        }
        {
            let mut listing = self.list(&p).await?;
            if let Some(child) = futures::TryStreamExt::try_next(&mut listing).await? {
                return Err(VfsError::Other(format!(
                    "{} is not empty (it holds {})",
                    self.label(&p),
                    child.name
                )));
            }
        }
        self.record_folder_delete(&p);
        Ok(())
    }

    async fn remove_all(&self, path: &str) -> VfsResult<()> {
        let p = normalize(path);
        match self.exists_as(&p).await? {
            None => Ok(()),
            Some(e) if !e.is_dir => self.remove_file(&p).await,
            Some(_) => {
                self.record_folder_delete(&p);
                Ok(())
            }
        }
    }

    async fn set_mtime(&self, path: &str, mtime: DateTime<Utc>) -> VfsResult<()> {
        if !self.inner.capabilities().set_mtime {
            return Err(VfsError::Unsupported("setting modification times"));
        }
        let p = normalize(path);
        self.stat(&p).await?;
        let target = self.label(&p);
        self.with(|ov, effects| {
            if let Some(w) = ov.files.get_mut(&p) {
                // Part of the file's write: the time it would land with.
                w.entry.mtime = Some(mtime);
                if let Some(Some(e)) = effects.get_mut(w.effect) {
                    e.mtime = Some(mtime);
                }
                return;
            }
            ov.mtimes.insert(p.clone(), mtime);
            let mut e = Effect::new(Action::Touch, target);
            e.mtime = Some(mtime);
            effects.push(Some(e));
        });
        Ok(())
    }

    async fn checksum(&self, path: &str, algo: HashAlgo) -> VfsResult<Option<String>> {
        let p = normalize(path);
        let real = self.with(|ov, _| {
            if ov.files.contains_key(&p) {
                return Ok(None);
            }
            if ov.is_removed(&p) && !ov.moved_here(&p) {
                return Err(VfsError::NotFound(tidy(&format!("{}{p}", self.key))));
            }
            Ok(Some(ov.real(&p)))
        })?;
        match real {
            Some(real) => self.inner.checksum(&real, algo).await,
            None => Ok(None),
        }
    }

    async fn close(&self) -> VfsResult<()> {
        self.inner.close().await
    }
}

impl DryRunVfs {
    fn record_folder_delete(&self, p: &str) {
        let target = self.label(p);
        self.with(|ov, effects| {
            let only_planned = ov.dirs.contains(p);
            ov.forget_below(p);
            ov.removed.insert(p.to_string());
            if !only_planned {
                let mut e = Effect::new(Action::Delete, target);
                e.folder = true;
                effects.push(Some(e));
            }
        });
    }
}

/// Counts what a dry-run write is given; on `shutdown` the file is in the plan and the
/// overlay, with that size.
struct RecordingWriter {
    run: Arc<DryRun>,
    key: String,
    label: String,
    path: String,
    overwrite: bool,
    bytes: u64,
    done: bool,
}

impl AsyncWrite for RecordingWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.bytes += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        self.done = true;
        let mut st = self.run.lock();
        let st = &mut *st;
        let mut effect = Effect::new(Action::Write, self.label.clone());
        effect.bytes = Some(self.bytes);
        effect.overwrite = self.overwrite;
        let overlay = st.overlays.entry(self.key.clone()).or_default();
        // Writing the same path again replaces the earlier planned write.
        if let Some(old) = overlay.files.get(&self.path)
            && let Some(slot) = st.effects.get_mut(old.effect)
        {
            if let Some(e) = slot.as_ref() {
                effect.overwrite |= e.overwrite;
            }
            *slot = None;
        }
        st.effects.push(Some(effect));
        let index = st.effects.len() - 1;
        overlay.removed.remove(&self.path);
        overlay.moved.remove(&self.path);
        overlay.files.insert(
            self.path.clone(),
            Written {
                entry: Entry {
                    path: self.path.clone(),
                    name: file_name(&self.path),
                    size: self.bytes,
                    mtime: Some(Utc::now()),
                    is_dir: false,
                    etag: None,
                },
                effect: index,
            },
        );
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;
    use crate::local::LocalFs;

    fn names(entries: &[Entry]) -> Vec<String> {
        let mut v: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn changes_are_planned_and_seen_but_never_made() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("keep.txt"), b"keep").unwrap();
        std::fs::write(d.path().join("old.txt"), b"old!").unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/x.txt"), b"x").unwrap();
        let run = DryRun::new();
        let fs = run.wrap(Arc::new(LocalFs::new(d.path())));

        fs.mkdir_all("/new/deeper").await.unwrap();
        crate::write_all(fs.as_ref(), "/new/deeper/a.txt", b"hello")
            .await
            .unwrap();
        crate::write_all(fs.as_ref(), "/keep.txt", b"replaced")
            .await
            .unwrap();
        fs.remove_file("/old.txt").await.unwrap();
        fs.rename("/sub", "/moved").await.unwrap();

        // The run sees its own changes...
        assert_eq!(fs.stat("/new/deeper/a.txt").await.unwrap().size, 5);
        assert!(matches!(
            fs.stat("/old.txt").await,
            Err(VfsError::NotFound(_))
        ));
        let top: Vec<Entry> = fs.list("/").await.unwrap().try_collect().await.unwrap();
        assert_eq!(names(&top), ["keep.txt", "moved", "new"]);
        let moved: Vec<Entry> = fs
            .list("/moved")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(names(&moved), ["x.txt"]);
        assert_eq!(
            crate::read_all(fs.as_ref(), "/moved/x.txt").await.unwrap(),
            b"x"
        );
        assert!(fs.read("/new/deeper/a.txt", 0, None).await.is_err());

        // ...the disk does not.
        assert!(!d.path().join("new").exists());
        assert_eq!(std::fs::read(d.path().join("keep.txt")).unwrap(), b"keep");
        assert!(d.path().join("old.txt").exists());
        assert!(d.path().join("sub/x.txt").exists());

        let plan = run.plan();
        let actions: Vec<(Action, bool)> = plan
            .effects
            .iter()
            .map(|e| (e.action, e.overwrite))
            .collect();
        assert_eq!(
            actions,
            [
                (Action::Mkdir, false),
                (Action::Write, false),
                (Action::Write, true),
                (Action::Delete, false),
                (Action::Rename, false),
            ]
        );
        assert_eq!(plan.summary.bytes, 13);
        assert_eq!(plan.summary.overwritten, 1);
    }

    #[test]
    fn hidden_values_never_reach_the_plan() {
        let run = DryRun::new();
        run.skip_call("RunProgram", "/bin/deploy --token s3cr3t-t0ken");
        run.hide("s3cr3t-t0ken");
        let plan = run.plan();
        assert_eq!(plan.skipped_calls[0].detail, "/bin/deploy --token ***");
    }

    #[tokio::test]
    async fn a_temp_write_renamed_into_place_is_one_write() {
        let d = tempfile::tempdir().unwrap();
        let run = DryRun::new();
        let fs = run.wrap(Arc::new(LocalFs::new(d.path())));
        crate::write_all(fs.as_ref(), "/a.txt.aft-tmp-1", b"abc")
            .await
            .unwrap();
        fs.rename("/a.txt.aft-tmp-1", "/a.txt").await.unwrap();
        crate::write_all(fs.as_ref(), "/b.txt.aft-tmp-2", b"abc")
            .await
            .unwrap();
        fs.remove_file("/b.txt.aft-tmp-2").await.unwrap();
        let plan = run.plan();
        assert_eq!(plan.effects.len(), 1, "{plan:?}");
        assert!(plan.effects[0].target.ends_with("/a.txt"));
        let all: Vec<Entry> = fs.list("/").await.unwrap().try_collect().await.unwrap();
        assert_eq!(names(&all), ["a.txt"]);
    }

    #[tokio::test]
    async fn a_deleted_folder_hides_its_tree_and_deleting_a_missing_file_fails() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("t/u")).unwrap();
        std::fs::write(d.path().join("t/u/f"), b"f").unwrap();
        let run = DryRun::new();
        let fs = run.wrap(Arc::new(LocalFs::new(d.path())));
        assert!(fs.remove_dir("/t").await.is_err(), "not empty");
        fs.remove_all("/t").await.unwrap();
        assert!(matches!(
            fs.stat("/t/u/f").await,
            Err(VfsError::NotFound(_))
        ));
        assert!(matches!(
            fs.remove_file("/t/u/f").await,
            Err(VfsError::NotFound(_))
        ));
        assert!(d.path().join("t/u/f").exists());
        let plan = run.plan();
        assert_eq!(plan.effects.len(), 1);
        assert!(plan.effects[0].folder);
    }
}
