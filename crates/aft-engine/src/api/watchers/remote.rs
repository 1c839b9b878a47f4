//! `RemoteWatcher("vfs name")`: poll a VFS Library entry's folders and call the script's
//! callback for each new, changed or removed file.
//!
//! A worker thread lists the folders every `PollSeconds`, compares what it finds with what
//! it remembers (path, size, mtime, etag) and posts events to the job's pump. What it
//! remembers lives in the host's store under "vfs name|folder|script name"
//! ([`crate::JobHost::watch_state_save`]); an event's entry is saved only after the
//! callback for it returned. So a clean restart fires nothing twice and misses nothing,
//! and a crash in between re-fires the events whose callbacks had not returned (at least
//! once across crashes, exactly once across clean restarts).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use aft_vfs::{Entry, Vfs};
use futures::TryStreamExt;

use super::{EVT_CREATE, EVT_REMOVE, EVT_WRITE, Filter, NEXT_ID, WatchError, secs};
use crate::HaltFlag;
use crate::host::{JobEvent, JobScope, LogLevel, LogSink, SeenEntry};

/// What the script asked for in `RemoteWatcher.Start`.
#[derive(serde::Deserialize)]
pub(crate) struct RemoteConfig {
    vfs: String,
    dirs: Vec<super::DirConfig>,
    include: Vec<String>,
    exclude: Vec<String>,
    delay: f64,
    poll: f64,
}

/// Why a remote watcher could not start or save its memory.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWatchError {
    /// The VFS Library entry is missing or unusable.
    #[error("RemoteWatcher.Start: VFS Library entry {name:?}: {reason}")]
    Entry {
        /// The entry's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A filter is invalid.
    #[error("RemoteWatcher: {0}")]
    Filter(#[from] WatchError),
    /// What the watcher remembers could not be read.
    #[error("RemoteWatcher.Start: cannot read what this watcher has seen: {0}")]
    State(String),
    /// The worker thread could not start.
    #[error("RemoteWatcher.Start: could not start the watcher thread: {0}")]
    Thread(String),
}

/// The hidden part of an event: what to save once the callback returned.
#[derive(serde::Serialize, serde::Deserialize)]
struct Ack {
    key: String,
    path: String,
    /// The file as seen (created or written); `None` when it was removed.
    seen: Option<SeenJson>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SeenJson {
    size: u64,
    mtime: Option<String>,
    etag: Option<String>,
}

/// Save what an event's callback has handled (called after the callback returned).
pub(crate) fn acknowledge(scope: &JobScope, ack: &str) -> Result<(), String> {
    let ack: Ack = serde_json::from_str(ack)
        .map_err(|e| format!("RemoteWatcher: bad acknowledgement: {e}"))?;
    let result = match ack.seen {
        Some(seen) => scope.host.watch_state_save(
            &ack.key,
            &[SeenEntry {
                path: ack.path,
                size: seen.size,
                mtime: seen.mtime,
                etag: seen.etag,
            }],
            &[],
        ),
        None => scope.host.watch_state_save(&ack.key, &[], &[ack.path]),
    };
    result.map_err(|e| format!("RemoteWatcher: {e}"))
}

/// A started remote watcher; dropping it stops it and waits for its worker to end.
pub(crate) struct RunningRemote {
    pub(crate) id: u64,
    halt: HaltFlag,
    stop: Option<mpsc::Sender<()>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl RunningRemote {
    pub(crate) fn start(
        config: RemoteConfig,
        script: &str,
        scope: &JobScope,
    ) -> Result<RunningRemote, RemoteWatchError> {
        let mut config = config;
        if config.dirs.is_empty() {
            // AFT!'s own examples call Start with no WatchDir: that watches the entry's
            // root (its BaseDir, or the bucket root), not recursively.
            config.dirs.push(super::DirConfig {
                path: "/".into(),
                recursive: false,
            });
        }
        let filter = Filter::new(&config.include, &config.exclude)?;
        let entry_err = |reason: String| RemoteWatchError::Entry {
            name: config.vfs.clone(),
            reason,
        };
        let mut fields = scope.host.vfs_entry(&config.vfs).map_err(entry_err)?;
        let kind = fields
            .as_object_mut()
            .and_then(|o| o.remove("type"))
            .and_then(|t| t.as_str().map(str::to_string))
            .ok_or_else(|| entry_err("it has no \"type\"".into()))?;
        let host = scope.host.clone();
        let lookup = move |name: &str| host.secret(name);
        let vfs = crate::api::clients::open_vfs(&kind, &fields, &lookup)
            .map_err(|e| entry_err(e.to_string()))?;
        let mut roots = Vec::new();
        for dir in &config.dirs {
            let path = aft_vfs::normalize(&dir.path);
            let key = format!("{}|{}|{}", config.vfs, path, script);
            let known = scope
                .host
                .watch_state_load(&key)
                .map_err(RemoteWatchError::State)?
                .into_iter()
                .map(|s| (s.path.clone(), s))
                .collect();
            roots.push(RemoteRoot {
                path,
                recursive: dir.recursive,
                key,
                known,
                pending: HashMap::new(),
            });
        }
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let mut poller = Poller {
            id,
            vfs,
            roots,
            filter,
            delay: secs(config.delay),
            halt: scope.halt.clone(),
            log: scope.log.clone(),
            failing: false,
        };
        let every = secs(config.poll).max(Duration::from_millis(100));
        let tokio = scope.tokio.clone();
        let worker = std::thread::Builder::new()
            .name("aft-remotewatcher".into())
            .spawn(move || {
                loop {
                    tokio.block_on(poller.poll(&stop_rx));
                    match stop_rx.recv_timeout(every) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                }
                let vfs = poller.vfs.clone();
                let _ = tokio.block_on(async move { vfs.close().await });
            })
            .map_err(|e| RemoteWatchError::Thread(e.to_string()))?;
        Ok(RunningRemote {
            id,
            halt: scope.halt.clone(),
            stop: Some(stop_tx),
            worker: Some(worker),
        })
    }
}

impl Drop for RunningRemote {
    fn drop(&mut self) {
        // Dropping the sender wakes the worker and tells it to end.
        drop(self.stop.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        // Nothing can be posted any more: drop what is still queued for this watcher.
        self.halt.discard_events(self.id);
    }
}

/// One watched remote folder and what the watcher knows of it.
struct RemoteRoot {
    path: String,
    recursive: bool,
    key: String,
    known: HashMap<String, SeenEntry>,
    /// Files new or changed, waiting to stay unchanged for `DelayBySeconds`.
    pending: HashMap<String, (SeenEntry, Instant)>,
}

/// The worker's state.
struct Poller {
    id: u64,
    vfs: Arc<dyn Vfs>,
    roots: Vec<RemoteRoot>,
    filter: Filter,
    delay: Duration,
    halt: HaltFlag,
    log: LogSink,
    /// Whether the last poll failed (so a lasting outage is logged once, not every poll).
    failing: bool,
}

fn seen_of(entry: &Entry) -> SeenEntry {
    SeenEntry {
        path: entry.path.clone(),
        size: entry.size,
        mtime: entry
            .mtime
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        etag: entry.etag.clone(),
    }
}

fn same_file(a: &SeenEntry, b: &SeenEntry) -> bool {
    a.size == b.size && a.mtime == b.mtime && a.etag == b.etag
}

impl Poller {
    /// List every folder once and post what changed.
    async fn poll(&mut self, stop: &mpsc::Receiver<()>) {
        for i in 0..self.roots.len() {
            if !matches!(stop.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                return;
            }
            match self.list(i, stop).await {
                Ok(Some(found)) => {
                    if self.failing {
                        self.failing = false;
                        (self.log)(
                            LogLevel::Info,
                            &format!("RemoteWatcher: {} answers again", self.vfs.describe()),
                        );
                    }
                    self.compare(i, found);
                }
                Ok(None) => return,
                Err(e) => {
                    if !self.failing {
                        self.failing = true;
                        (self.log)(
                            LogLevel::Warn,
                            &format!(
                                "RemoteWatcher: cannot list {} on {}: {e}; retrying every poll",
                                self.roots[i].path,
                                self.vfs.describe()
                            ),
                        );
                    }
                }
            }
        }
    }

    /// The files under root `i` that pass the filters; `None` when told to stop.
    async fn list(
        &self,
        i: usize,
        stop: &mpsc::Receiver<()>,
    ) -> Result<Option<HashMap<String, SeenEntry>>, aft_vfs::VfsError> {
        let root = &self.roots[i];
        let mut stream = if root.recursive {
            aft_vfs::walk(&*self.vfs, &root.path)
        } else {
            self.vfs.list(&root.path).await?
        };
        let mut found = HashMap::new();
        while let Some(entry) = stream.try_next().await? {
            if !matches!(stop.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                return Ok(None);
            }
            if entry.is_dir {
                continue;
            }
            let relative = entry
                .path
                .strip_prefix(root.path.as_str())
                .unwrap_or(&entry.path)
                .trim_start_matches('/');
            if relative.is_empty() || !self.filter.passes(std::path::Path::new(relative)) {
                continue;
            }
            found.insert(entry.path.clone(), seen_of(&entry));
        }
        Ok(Some(found))
    }

    /// Post the differences between a listing of root `i` and what is known.
    fn compare(&mut self, i: usize, found: HashMap<String, SeenEntry>) {
        let mut events: Vec<(&'static str, SeenEntry)> = Vec::new();
        let root = &mut self.roots[i];
        let mut removed: Vec<String> = root
            .known
            .keys()
            .filter(|p| !found.contains_key(*p))
            .cloned()
            .collect();
        removed.sort();
        root.pending.retain(|p, _| found.contains_key(p));
        let mut paths: Vec<&String> = found.keys().collect();
        paths.sort();
        for path in paths {
            let now = &found[path];
            let old = root.known.get(path);
            if old.is_some_and(|old| same_file(old, now)) {
                root.pending.remove(path);
                continue;
            }
            let kind = if old.is_some() { EVT_WRITE } else { EVT_CREATE };
            if !self.delay.is_zero() {
                // Fire only once the file looked the same for the whole quiet period.
                match root.pending.get(path) {
                    Some((seen, since)) if same_file(seen, now) => {
                        if since.elapsed() < self.delay {
                            continue;
                        }
                    }
                    _ => {
                        root.pending
                            .insert(path.clone(), (now.clone(), Instant::now()));
                        continue;
                    }
                }
                root.pending.remove(path);
            }
            root.known.insert(path.clone(), now.clone());
            events.push((kind, now.clone()));
        }
        for path in removed {
            if let Some(old) = root.known.remove(&path) {
                events.push((EVT_REMOVE, old));
            }
        }
        let key = root.key.clone();
        for (kind, seen) in events {
            let ack = Ack {
                key: key.clone(),
                path: seen.path.clone(),
                seen: (kind != EVT_REMOVE).then(|| SeenJson {
                    size: seen.size,
                    mtime: seen.mtime.clone(),
                    etag: seen.etag.clone(),
                }),
            };
            self.halt.post(JobEvent {
                target: self.id,
                payload: serde_json::json!({
                    "TimeStamp": chrono::Utc::now()
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "Event": kind,
                    "Object": seen.path,
                    "__ack": ack,
                }),
            });
        }
    }
}
