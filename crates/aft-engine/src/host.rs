//! The contract between a running job and whoever runs it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Severity of a job log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Details useful when debugging a script.
    Debug,
    /// Normal progress (`Log`, `console.log`).
    Info,
    /// Something went wrong but the script goes on (a failed transfer that returned false).
    Warn,
    /// The job failed.
    Error,
}

/// Where a job's log lines go: the terminal for `aft run`, the store for the service.
pub type LogSink = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// One file a transfer moved (or failed to), for `GET /v1/jobs/{id}/transfers`.
#[derive(Debug, Clone, Serialize)]
pub struct TransferRecord {
    /// Where the file came from, as `backend:path`.
    pub source: String,
    /// Where it went.
    pub target: String,
    /// Bytes transferred.
    pub bytes: u64,
    /// The content's digest in hex, where it was computed.
    pub hash: Option<String>,
    /// Which digest `hash` is: `blake3` or `sha256` (`Options.RecordHash`).
    pub hash_algo: Option<&'static str>,
    /// Wall time in milliseconds.
    pub millis: u64,
    /// How many attempts it took.
    pub attempts: u32,
    /// `ok`, `skipped` or the error message.
    pub outcome: String,
}

impl From<&aft_vfs::transfer::TransferOutcome> for TransferRecord {
    fn from(o: &aft_vfs::transfer::TransferOutcome) -> Self {
        TransferRecord {
            source: o.source.clone(),
            target: o.target.clone(),
            bytes: o.bytes,
            hash: o.hash.as_ref().map(|d| d.hex.clone()),
            hash_algo: o.hash.as_ref().map(|d| d.algo.name()),
            millis: o.millis,
            attempts: o.attempts,
            outcome: match &o.outcome {
                aft_vfs::transfer::Outcome::Ok => "ok".to_string(),
                aft_vfs::transfer::Outcome::Skipped(_) => "skipped".to_string(),
                aft_vfs::transfer::Outcome::Failed(e) => e.clone(),
            },
        }
    }
}

/// What a job can ask of whoever runs it. Calls block the job's thread, so they may do I/O.
pub trait JobHost: Send + Sync + 'static {
    /// The value of the named secret (names are case-sensitive), `None` if there is none.
    fn secret(&self, name: &str) -> Option<String>;

    /// A VFS Library entry's definition as JSON (`{"type": "sftp", ...}`), with secret
    /// references still unresolved; `Err` says why it is not available.
    fn vfs_entry(&self, name: &str) -> Result<serde_json::Value, String>;

    /// A service setting (the SMTP server for `SendMail`, for example).
    fn setting(&self, key: &str) -> Option<String>;

    /// Record the files one client call's transfer handled, in order (one write for all of
    /// them where the host keeps them in a store).
    fn record_transfers(&self, records: Vec<TransferRecord>);

    /// Every file the remote watcher `key` ("vfs name|folder|script name") has seen.
    fn watch_state_load(&self, key: &str) -> Result<Vec<SeenEntry>, String>;

    /// Record `changed` files as seen and forget `removed` paths for watcher `key`.
    fn watch_state_save(
        &self,
        key: &str,
        changed: &[SeenEntry],
        removed: &[String],
    ) -> Result<(), String>;

    /// Keep what the script set with `SetResult` (handed to the scripts its job chains
    /// to as the `Result` parameter). A host without stored jobs has nowhere to keep it.
    fn set_result(&self, _value: &str) -> Result<(), String> {
        Ok(())
    }

    /// The job's dry run, when it is one: clients and file calls then go through its
    /// recorder, and calls acting outside the file systems are skipped (`DryRunHost`).
    fn dry_run(&self) -> Option<Arc<aft_vfs::dry_run::DryRun>> {
        None
    }
}

/// One remote file as a `RemoteWatcher` last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEntry {
    /// The remote path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time as text (RFC 3339), if the server gives one.
    pub mtime: Option<String>,
    /// Its entity tag, if the backend has one.
    pub etag: Option<String>,
}

/// The halt signal of one job: set once, seen by the interrupt handler, `Sleep`,
/// `WaitForHaltSignal` and `HaltSignalReceived`.
///
/// It also carries the job's event pump: host threads (file watchers) [`post`](Self::post)
/// events, and the job's thread takes them in `Sleep`/`WaitForHaltSignal` to call the
/// script's callbacks there. Events share the halt's lock and condvar, so one wait wakes
/// for either.
#[derive(Clone, Default)]
pub struct HaltFlag {
    inner: Arc<HaltInner>,
}

#[derive(Default)]
struct HaltInner {
    raised: AtomicBool,
    events: std::sync::Mutex<std::collections::VecDeque<JobEvent>>,
    cvar: std::sync::Condvar,
}

/// An event for a script callback, posted by a host thread and delivered on the job's thread.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    /// Which registered receiver it is for (a watcher's id).
    pub target: u64,
    /// The value handed to the callback.
    pub payload: serde_json::Value,
}

/// Why [`HaltFlag::wait_event`] returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Wakeup {
    /// The halt was raised.
    Halted,
    /// The timeout passed.
    TimedOut,
    /// An event is due for a callback.
    Event(JobEvent),
}

impl HaltFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask the job to halt; wakes every waiter at once.
    pub fn raise(&self) {
        let inner = &*self.inner;
        inner.raised.store(true, Ordering::SeqCst);
        let _guard = inner.events.lock().unwrap_or_else(|e| e.into_inner());
        inner.cvar.notify_all();
    }

    /// Whether the halt was asked for.
    pub fn is_raised(&self) -> bool {
        self.inner.raised.load(Ordering::SeqCst)
    }

    /// Block up to `timeout` (forever when `None`) or until raised; true if raised.
    /// Events stay queued.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        self.wait_inner(timeout, false) == Wakeup::Halted
    }

    /// Block up to `timeout` (forever when `None`), until raised, or until an event is
    /// queued, which is then taken (oldest first). A halt wins over queued events.
    pub fn wait_event(&self, timeout: Option<Duration>) -> Wakeup {
        self.wait_inner(timeout, true)
    }

    /// Queue an event for the job's thread and wake its waiter.
    pub fn post(&self, event: JobEvent) {
        let inner = &*self.inner;
        let mut queue = inner.events.lock().unwrap_or_else(|e| e.into_inner());
        queue.push_back(event);
        inner.cvar.notify_all();
    }

    /// Drop every queued event for `target` (a watcher that stopped).
    pub fn discard_events(&self, target: u64) {
        let mut queue = self.inner.events.lock().unwrap_or_else(|e| e.into_inner());
        queue.retain(|e| e.target != target);
    }

    fn wait_inner(&self, timeout: Option<Duration>, take_events: bool) -> Wakeup {
        let inner = &*self.inner;
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut queue = inner.events.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if inner.raised.load(Ordering::SeqCst) {
                return Wakeup::Halted;
            }
            if take_events && let Some(event) = queue.pop_front() {
                return Wakeup::Event(event);
            }
            match deadline {
                None => queue = inner.cvar.wait(queue).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return Wakeup::TimedOut;
                    }
                    queue = inner
                        .cvar
                        .wait_timeout(queue, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

/// What every host API module (`api/*.rs`) is given when it registers its globals into a
/// job's JavaScript context.
#[derive(Clone)]
pub struct JobScope {
    /// Secrets, VFS entries, settings and transfer records.
    pub host: Arc<dyn JobHost>,
    /// The job's log.
    pub log: LogSink,
    /// The job's halt signal; long host calls should give up when it is raised.
    pub halt: HaltFlag,
    /// The shared async runtime host calls block on (`tokio.block_on(..)`).
    pub tokio: tokio::runtime::Handle,
}

impl JobScope {
    /// Write one line to the job's log.
    pub fn log(&self, level: LogLevel, message: &str) {
        (self.log)(level, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halt_wakes_a_waiter_at_once() {
        let flag = HaltFlag::new();
        let waiter = flag.clone();
        let t = std::thread::spawn(move || {
            let start = std::time::Instant::now();
            assert!(waiter.wait(Some(Duration::from_secs(10))));
            start.elapsed()
        });
        std::thread::sleep(Duration::from_millis(20));
        flag.raise();
        assert!(t.join().unwrap() < Duration::from_secs(1));
        assert!(!HaltFlag::new().wait(Some(Duration::from_millis(5))));
    }
}
