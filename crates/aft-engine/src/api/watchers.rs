//! `FsWatcher` (spec §4, AFT! v4 form): watch local folders and call a script callback for
//! each change, on the script's own thread, one call at a time.
//!
//! How it works: notify (inotify on Linux) feeds a worker thread per watcher. The worker
//! keeps what it knows of each file (size, mtime), applies the filters and the quiet period
//! (`DelayBySeconds`), rescans the folders periodically (and when notify reports its queue
//! overflowed) to catch what the kernel dropped, and posts events to the job's pump
//! ([`crate::HaltFlag::post`]). `Sleep` and `WaitForHaltSignal` take them and call the
//! script's callback. A watcher is node-local: it sees the folder of the machine the job
//! runs on.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use globset::{Glob, GlobSet, GlobSetBuilder};
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use rquickjs::object::Property;
use rquickjs::{Ctx, Exception, Function, Object};

use super::prelude::LazyGlobals;
use crate::HaltFlag;
use crate::host::{JobEvent, JobScope};

mod remote;

/// A file was created (or moved into a watched folder).
pub const EVT_CREATE: &str = "EVT_CREATE";
/// A file's content changed.
pub const EVT_WRITE: &str = "EVT_WRITE";
/// A file was deleted.
pub const EVT_REMOVE: &str = "EVT_REMOVE";
/// A file was renamed or moved away (the event names its old path).
pub const EVT_RENAME: &str = "EVT_RENAME";
/// A file's permissions or other metadata changed.
pub const EVT_CHMOD: &str = "EVT_CHMOD";

/// How often the worker looks at files waiting out their quiet period.
const TICK: Duration = Duration::from_millis(50);

/// Watcher ids are unique in the process, so a stale event can never reach another watcher.
pub(crate) static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What the script asked for in `Start`.
#[derive(serde::Deserialize)]
struct StartConfig {
    dirs: Vec<DirConfig>,
    include: Vec<String>,
    exclude: Vec<String>,
    delay: f64,
    rescan: f64,
}

#[derive(serde::Deserialize)]
struct DirConfig {
    path: String,
    recursive: bool,
}

/// A running watcher of either kind; dropping it stops it.
enum Running {
    Fs(#[allow(dead_code)] RunningWatcher),
    Remote(#[allow(dead_code)] remote::RunningRemote),
}

/// The global holding the running script's name, which keys what a `RemoteWatcher`
/// remembers.
const SCRIPT_NAME_GLOBAL: &str = "__aftScriptName";

/// Tell the watchers which script runs (the engine calls this once per job).
pub fn set_script_name(ctx: &Ctx<'_>, name: &str) -> rquickjs::Result<()> {
    ctx.globals().set(SCRIPT_NAME_GLOBAL, name)
}

/// Define the `EVT_*` constants now, and `FsWatcher` and `RemoteWatcher` on first use.
pub(crate) fn register<'js>(
    ctx: &Ctx<'js>,
    scope: &JobScope,
    lazy: &mut LazyGlobals<'js>,
) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    for name in [EVT_CREATE, EVT_WRITE, EVT_REMOVE, EVT_RENAME, EVT_CHMOD] {
        globals.prop(name, Property::from(name).enumerable())?;
    }
    let scope = scope.clone();
    lazy.add(["FsWatcher", "RemoteWatcher"], move |ctx: &Ctx<'js>| {
        define(ctx, &scope)
    });
    Ok(())
}

/// Define `FsWatcher` and `RemoteWatcher`: the natives and the prelude over them, which
/// also defines the dispatcher the job's event loop calls.
fn define(ctx: &Ctx<'_>, scope: &JobScope) -> rquickjs::Result<()> {
    // Watchers of this job; dropping the map (with the context) stops any left running.
    let running: Rc<RefCell<HashMap<u64, Running>>> = Rc::default();
    let native = Object::new(ctx.clone())?;
    let start_running = running.clone();
    let halt = scope.halt.clone();
    native.set(
        "start",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'_>, config: String| -> rquickjs::Result<f64> {
                let config: StartConfig = serde_json::from_str(&config).map_err(|e| {
                    Exception::throw_type(&ctx, &format!("FsWatcher.Start: bad settings: {e}"))
                })?;
                let watcher = RunningWatcher::start(config, halt.clone())
                    .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))?;
                let id = watcher.id;
                start_running.borrow_mut().insert(id, Running::Fs(watcher));
                Ok(id as f64)
            },
        )?,
    )?;
    let remote_running = running.clone();
    let remote_scope = scope.clone();
    native.set(
        "startRemote",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'_>, config: String| -> rquickjs::Result<f64> {
                let config: remote::RemoteConfig = serde_json::from_str(&config).map_err(|e| {
                    Exception::throw_type(&ctx, &format!("RemoteWatcher.Start: bad settings: {e}"))
                })?;
                let script: Option<String> = ctx.globals().get(SCRIPT_NAME_GLOBAL)?;
                let script = script.unwrap_or_default();
                let watcher = remote::RunningRemote::start(config, &script, &remote_scope)
                    .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))?;
                let id = watcher.id;
                remote_running
                    .borrow_mut()
                    .insert(id, Running::Remote(watcher));
                Ok(id as f64)
            },
        )?,
    )?;
    let ack_scope = scope.clone();
    native.set(
        "ack",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'_>, ack: String| -> rquickjs::Result<()> {
                remote::acknowledge(&ack_scope, &ack)
                    .map_err(|e| Exception::throw_message(&ctx, &e))
            },
        )?,
    )?;
    let stop_running = running;
    native.set(
        "stop",
        Function::new(ctx.clone(), move |id: f64| {
            let watcher = stop_running.borrow_mut().remove(&(id as u64));
            drop(watcher);
        })?,
    )?;
    let install: Function = super::prelude::WATCHERS.eval(ctx)?;
    install.call::<_, ()>((native,))
}

/// Why a watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// `Start` was called before any `WatchDir`.
    #[error("FsWatcher.Start: no folder to watch; call WatchDir(path, recursive) first")]
    NoFolder,
    /// A watched folder does not exist or is not a folder.
    #[error("FsWatcher.WatchDir: {path} is not a folder this job can read: {reason}")]
    BadFolder {
        /// The folder as given.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// A filter is not a valid glob.
    #[error("FsWatcher.{which}: {pattern:?} is not a valid glob pattern: {reason}")]
    BadGlob {
        /// `InclusionFilter` or `ExclusionFilter`.
        which: &'static str,
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The system refused to watch (inotify limits, for example).
    #[error(
        "FsWatcher.Start: cannot watch {path}: {reason} (on Linux, raise fs.inotify.max_user_watches)"
    )]
    Notify {
        /// The folder.
        path: String,
        /// What notify said.
        reason: String,
    },
    /// The worker thread could not start.
    #[error("FsWatcher.Start: could not start the watcher thread: {0}")]
    Thread(String),
}

/// A started watcher; dropping it stops it and waits for its worker to end.
struct RunningWatcher {
    id: u64,
    halt: HaltFlag,
    stop: Arc<AtomicBool>,
    notify: Option<notify::RecommendedWatcher>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl RunningWatcher {
    fn start(config: StartConfig, halt: HaltFlag) -> Result<Self, WatchError> {
        if config.dirs.is_empty() {
            return Err(WatchError::NoFolder);
        }
        let filter = Filter::new(&config.include, &config.exclude)?;
        let mut roots = Vec::new();
        for dir in &config.dirs {
            let path = std::fs::canonicalize(&dir.path)
                .ok()
                .filter(|p| p.is_dir())
                .ok_or_else(|| WatchError::BadFolder {
                    path: dir.path.clone(),
                    reason: match std::fs::metadata(&dir.path) {
                        Ok(_) => "it is not a folder".into(),
                        Err(e) => e.to_string(),
                    },
                })?;
            roots.push(Root {
                path,
                recursive: dir.recursive,
            });
        }
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |res| {
            let _ = tx.send(res);
        })
        .map_err(|e| WatchError::Notify {
            path: config.dirs[0].path.clone(),
            reason: e.to_string(),
        })?;
        // Watch before the first scan, so nothing falls between the two.
        for root in &roots {
            let mode = if root.recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            watcher
                .watch(&root.path, mode)
                .map_err(|e| WatchError::Notify {
                    path: root.path.display().to_string(),
                    reason: e.to_string(),
                })?;
        }
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let sink_halt = halt.clone();
        let mut tracker = Tracker::new(
            roots,
            filter,
            secs(config.delay),
            Box::new(move |kind, path| {
                sink_halt.post(JobEvent {
                    target: id,
                    payload: event_payload(kind, path),
                })
            }),
        );
        tracker.prime();
        // RescanSeconds 0 (or less) turns the periodic rescan off.
        let rescan = (config.rescan > 0.0).then(|| secs(config.rescan));
        let stop = Arc::new(AtomicBool::new(false));
        let worker_stop = stop.clone();
        let worker = std::thread::Builder::new()
            .name("aft-fswatcher".into())
            .spawn(move || tracker.run(rx, rescan, &worker_stop))
            .map_err(|e| WatchError::Thread(e.to_string()))?;
        Ok(RunningWatcher {
            id,
            halt,
            stop,
            notify: Some(watcher),
            worker: Some(worker),
        })
    }
}

impl Drop for RunningWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Dropping notify's watcher closes the channel, which also wakes the worker.
        drop(self.notify.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        // Nothing can be posted any more: drop what is still queued for this watcher.
        self.halt.discard_events(self.id);
    }
}

pub(crate) fn secs(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(1e9))
    } else {
        Duration::ZERO
    }
}

/// The `evt` object a callback gets: `{TimeStamp, Event, Object}`.
fn event_payload(kind: &str, path: &Path) -> serde_json::Value {
    serde_json::json!({
        "TimeStamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "Event": kind,
        "Object": path.to_string_lossy(),
    })
}

/// One watched folder.
#[derive(Debug, Clone)]
pub struct Root {
    /// The folder (canonical).
    pub path: PathBuf,
    /// Whether sub-folders are watched too.
    pub recursive: bool,
}

/// `InclusionFilter` and `ExclusionFilter`: a path passes when it matches an inclusion
/// pattern (or there are none) and no exclusion pattern. A pattern matches the file's name
/// or its path relative to the watched folder.
pub struct Filter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Filter {
    /// Build the filter; an invalid pattern is an error naming it.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter, WatchError> {
        Ok(Filter {
            include: glob_set(include, "InclusionFilter")?,
            exclude: glob_set(exclude, "ExclusionFilter")?,
        })
    }

    /// Whether `relative` (a path under a watched folder) passes.
    pub fn passes(&self, relative: &Path) -> bool {
        let name = relative.file_name().map(Path::new).unwrap_or(relative);
        let hit = |set: &GlobSet| set.is_match(name) || set.is_match(relative);
        self.include.as_ref().is_none_or(hit) && !self.exclude.as_ref().is_some_and(hit)
    }
}

fn glob_set(patterns: &[String], which: &'static str) -> Result<Option<GlobSet>, WatchError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|e| WatchError::BadGlob {
            which,
            pattern: pattern.clone(),
            reason: e.kind().to_string(),
        })?;
        builder.add(glob);
    }
    builder.build().map(Some).map_err(|e| WatchError::BadGlob {
        which,
        pattern: patterns.join(", "),
        reason: e.to_string(),
    })
}

/// What the watcher remembers of a file: when either changes, it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some(Stamp {
        size: if meta.is_dir() { 0 } else { meta.len() },
        mtime: meta.modified().ok(),
    })
}

/// A file waiting out its quiet period.
struct Pending {
    kind: &'static str,
    stamp: Option<Stamp>,
    since: Instant,
}

/// Where the tracker sends the events it decides on.
pub type EventSink = Box<dyn FnMut(&'static str, &Path) + Send>;

/// The worker's state: turns notify's raw events and rescans into script events.
pub struct Tracker {
    roots: Vec<Root>,
    filter: Filter,
    delay: Duration,
    known: HashMap<PathBuf, Stamp>,
    pending: HashMap<PathBuf, Pending>,
    sink: EventSink,
}

impl Tracker {
    /// A tracker that knows no file yet (call [`Tracker::prime`] to take the current state
    /// as known without events).
    pub fn new(roots: Vec<Root>, filter: Filter, delay: Duration, sink: EventSink) -> Tracker {
        Tracker {
            roots,
            filter,
            delay,
            known: HashMap::new(),
            pending: HashMap::new(),
            sink,
        }
    }

    /// Take what is in the folders now as known, without events.
    pub fn prime(&mut self) {
        self.known = self.scan();
    }

    fn run(
        mut self,
        rx: mpsc::Receiver<notify::Result<notify::Event>>,
        rescan: Option<Duration>,
        stop: &AtomicBool,
    ) {
        let mut next_rescan = rescan.map(|r| Instant::now() + r);
        while !stop.load(Ordering::SeqCst) {
            match rx.recv_timeout(TICK) {
                Ok(Ok(event)) => self.handle(event),
                // An error from the backend (a dropped queue, a lost watch): rescan.
                Ok(Err(_)) => self.rescan(),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            self.settle();
            if let (Some(at), Some(every)) = (next_rescan, rescan)
                && Instant::now() >= at
            {
                // Take what is queued first: a rescan must not report a file whose own
                // event is still on its way (it would then fire twice).
                while let Ok(res) = rx.try_recv() {
                    if let Ok(event) = res {
                        self.handle(event);
                    }
                }
                self.rescan();
                next_rescan = Some(Instant::now() + every);
            }
        }
    }

    /// The path relative to its watched folder, if it is under one and the filters let it
    /// through.
    fn watched(&self, path: &Path) -> bool {
        self.roots.iter().any(|root| {
            let Ok(relative) = path.strip_prefix(&root.path) else {
                return false;
            };
            if relative.as_os_str().is_empty() {
                return false;
            }
            if !root.recursive && relative.components().count() != 1 {
                return false;
            }
            self.filter.passes(relative)
        })
    }

    /// Apply one raw notify event.
    pub fn handle(&mut self, event: notify::Event) {
        if event.need_rescan() {
            self.rescan();
            return;
        }
        match event.kind {
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                for path in &event.paths {
                    self.created(path);
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                for path in &event.paths {
                    self.gone(path, EVT_RENAME);
                }
            }
            // inotify also sends From and To separately; those carry it.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {}
            EventKind::Modify(ModifyKind::Name(_)) => {
                for path in &event.paths {
                    if path.exists() {
                        self.created(path);
                    } else {
                        self.gone(path, EVT_RENAME);
                    }
                }
            }
            EventKind::Modify(ModifyKind::Metadata(_)) => {
                for path in &event.paths {
                    self.changed(path, EVT_CHMOD);
                }
            }
            EventKind::Modify(_) => {
                for path in &event.paths {
                    self.changed(path, EVT_WRITE);
                }
            }
            EventKind::Remove(_) => {
                for path in &event.paths {
                    self.gone(path, EVT_REMOVE);
                }
            }
            EventKind::Access(_) | EventKind::Any | EventKind::Other => {}
        }
    }

    fn created(&mut self, path: &Path) {
        if !self.watched(path) || self.known.contains_key(path) {
            return;
        }
        let Some(now) = stamp(path) else { return };
        self.known.insert(path.to_path_buf(), now);
        self.fire_or_wait(path, EVT_CREATE, Some(now));
    }

    fn changed(&mut self, path: &Path, kind: &'static str) {
        if !self.watched(path) {
            return;
        }
        let Some(now) = stamp(path) else { return };
        let first = self.known.insert(path.to_path_buf(), now).is_none();
        let kind = if first { EVT_CREATE } else { kind };
        self.fire_or_wait(path, kind, Some(now));
    }

    fn gone(&mut self, path: &Path, kind: &'static str) {
        let was_known = self.known.remove(path).is_some();
        let pending = self.pending.remove(path);
        // A file created and gone within its quiet period was never reported: stay quiet.
        if pending.is_some_and(|p| p.kind == EVT_CREATE) {
            return;
        }
        if was_known && self.watched(path) {
            (self.sink)(kind, path);
        }
        // A folder that went away takes what was under it.
        let under: Vec<PathBuf> = self
            .known
            .keys()
            .filter(|p| p.starts_with(path))
            .cloned()
            .collect();
        for p in under {
            self.known.remove(&p);
            self.pending.remove(&p);
        }
    }

    fn fire_or_wait(&mut self, path: &Path, kind: &'static str, now: Option<Stamp>) {
        if self.delay.is_zero() {
            (self.sink)(kind, path);
            return;
        }
        let entry = self.pending.entry(path.to_path_buf()).or_insert(Pending {
            kind,
            stamp: now,
            since: Instant::now(),
        });
        entry.stamp = now;
        entry.since = Instant::now();
    }

    /// Fire the files that have been stable for the quiet period; a file that changed since
    /// it was last seen waits again, even if no event said so (a writer notify missed).
    pub fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let due: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, p)| p.since.elapsed() >= self.delay)
            .map(|(path, _)| path.clone())
            .collect();
        for path in due {
            let now = stamp(&path);
            let Some(entry) = self.pending.get_mut(&path) else {
                continue;
            };
            if now.is_none() {
                self.pending.remove(&path);
                continue;
            }
            if now != entry.stamp {
                entry.stamp = now;
                entry.since = Instant::now();
                continue;
            }
            let kind = entry.kind;
            self.pending.remove(&path);
            if let Some(now) = now {
                self.known.insert(path.clone(), now);
            }
            (self.sink)(kind, &path);
        }
    }

    /// Compare the folders with what is known and report the differences (events the
    /// kernel dropped, or that happened while notify was not looking).
    pub fn rescan(&mut self) {
        let fresh = self.scan();
        let mut created: Vec<(PathBuf, Stamp)> = Vec::new();
        let mut written: Vec<(PathBuf, Stamp)> = Vec::new();
        for (path, now) in &fresh {
            match self.known.get(path) {
                None => created.push((path.clone(), *now)),
                Some(old) if old != now && !self.pending.contains_key(path) => {
                    written.push((path.clone(), *now))
                }
                Some(_) => {}
            }
        }
        let removed: Vec<PathBuf> = self
            .known
            .keys()
            .filter(|p| !fresh.contains_key(*p))
            .cloned()
            .collect();
        created.sort_by(|a, b| a.0.cmp(&b.0));
        written.sort_by(|a, b| a.0.cmp(&b.0));
        for path in removed {
            self.gone(&path, EVT_REMOVE);
        }
        for (path, now) in created {
            self.known.insert(path.clone(), now);
            self.fire_or_wait(&path, EVT_CREATE, Some(now));
        }
        for (path, now) in written {
            self.known.insert(path.clone(), now);
            self.fire_or_wait(&path, EVT_WRITE, Some(now));
        }
    }

    /// Every path under the watched folders that passes the filters, with its stamp.
    fn scan(&self) -> HashMap<PathBuf, Stamp> {
        let mut found = HashMap::new();
        for root in &self.roots {
            let mut stack = vec![root.path.clone()];
            while let Some(dir) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                    if is_dir && root.recursive {
                        stack.push(path.clone());
                    }
                    if self.watched(&path)
                        && let Some(s) = stamp(&path)
                    {
                        found.insert(path, s);
                    }
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// What a test sink saw, in order.
    type Seen = Arc<Mutex<Vec<(&'static str, PathBuf)>>>;

    fn collecting(dir: &Path, delay: Duration) -> (Tracker, Seen) {
        let seen: Seen = Arc::default();
        let sink_seen = seen.clone();
        let tracker = Tracker::new(
            vec![Root {
                path: dir.to_path_buf(),
                recursive: true,
            }],
            Filter::new(&[], &["*.tmp".into()]).unwrap(),
            delay,
            Box::new(move |kind, path| sink_seen.lock().unwrap().push((kind, path.to_path_buf()))),
        );
        (tracker, seen)
    }

    #[test]
    fn rescan_reports_changes_no_event_announced_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("old.txt"), b"1").unwrap();
        std::fs::write(root.join("gone.txt"), b"1").unwrap();
        let (mut tracker, seen) = collecting(&root, Duration::ZERO);
        tracker.prime();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/new.txt"), b"hello").unwrap();
        std::fs::write(root.join("skip.tmp"), b"x").unwrap();
        std::fs::write(root.join("old.txt"), b"longer").unwrap();
        std::fs::remove_file(root.join("gone.txt")).unwrap();
        tracker.rescan();
        tracker.rescan();
        let mut got = seen.lock().unwrap().clone();
        got.sort();
        assert_eq!(
            got,
            vec![
                (EVT_CREATE, root.join("sub")),
                (EVT_CREATE, root.join("sub/new.txt")),
                (EVT_REMOVE, root.join("gone.txt")),
                (EVT_WRITE, root.join("old.txt")),
            ]
        );
    }

    #[test]
    fn filter_matches_name_or_relative_path() {
        let f = Filter::new(&["*.csv".into(), "in/**".into()], &["secret*".into()]).unwrap();
        assert!(f.passes(Path::new("a.csv")));
        assert!(f.passes(Path::new("deep/a.csv")));
        assert!(f.passes(Path::new("in/x.bin")));
        assert!(!f.passes(Path::new("a.txt")));
        assert!(!f.passes(Path::new("secret.csv")));
        assert!(matches!(
            Filter::new(&["[".into()], &[]),
            Err(WatchError::BadGlob { .. })
        ));
    }
}
