//! Shared helpers for aft's benchmarks: timing, peak memory of a child process, and one
//! table format so every benchmark prints our figure beside the peer's.

pub mod svc;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Run `cmd` to completion and return its wall time; fails if it exits non-zero.
///
/// Its peak RSS is not taken here: a child spawned from the bench starts with the bench's
/// own peak in its `ru_maxrss` (see [`measure_child`], which measures that one process).
pub fn wall_time(cmd: &mut Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = cmd.status()?;
    let wall = start.elapsed();
    anyhow::ensure!(status.success(), "{cmd:?} failed: {status}");
    Ok(wall)
}

/// The median and the 99th percentile of a set of durations.
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

/// A duration in milliseconds, two decimals (`12.34 ms`).
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A size in KiB as MiB, one decimal (`38.3 MiB`).
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Print one row: what was measured, our figure, the peer's figure.
pub fn row(what: &str, ours: &str, peer_name: &str, peer: &str) {
    println!("{what:<44} aft {ours:>14}   {peer_name} {peer:>14}");
}

/// The workspace folder (where `target/` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ lives in the workspace")
        .to_path_buf()
}

/// The release `aft` binary: `AFT_BIN`, or `target/release/aft`, built if missing.
pub fn aft_binary() -> anyhow::Result<PathBuf> {
    if let Ok(bin) = std::env::var("AFT_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let root = workspace_root();
    let bin = root.join("target/release/aft");
    if !bin.exists() {
        eprintln!("building target/release/aft (cargo build --release -p aft) ...");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "aft"])
            .current_dir(&root)
            .status()?;
        anyhow::ensure!(status.success(), "cargo build --release -p aft failed");
    }
    Ok(bin)
}

/// Wall time, peak RSS and CPU time of one child process, measured for that child alone.
#[derive(Debug, Clone, Copy)]
pub struct ChildStats {
    /// Wall-clock time from spawn to exit.
    pub wall: Duration,
    /// Peak RSS in KiB of this child (`wait4`'s `ru_maxrss`).
    pub peak_rss_kib: u64,
    /// User plus system CPU time of this child.
    pub cpu: Duration,
}

/// GNU time: the launcher through which [`measure_child`] runs what it measures.
const GNU_TIME: &str = "/usr/bin/time";

/// Run `cmd` to completion, its standard output sent to `stdout`, and measure that one
/// process; fails if it exits non-zero.
///
/// It runs under GNU time (`/usr/bin/time`, Debian's `time` package), which forks it and
/// reports its peak RSS. Spawned from the bench directly, a child's `ru_maxrss` starts at
/// the bench's own: Rust spawns with `posix_spawn`, whose child shares the parent's memory
/// until it runs the program, and Linux carries that memory's peak over into the child's
/// (a plain `fork` carries the parent's resident size at the fork). So every figure was at
/// least the bench's own peak, which grew with the proxy's buffers: at 20 ms, aft and
/// OpenSSH `sftp` both showed the bench's 20.9 MiB. GNU time is a 1 MiB process that forks.
/// CPU time is `wait4`'s for GNU time, which includes the child it waited for.
pub fn measure_child(cmd: &Command, stdout: impl Into<Stdio>) -> anyhow::Result<ChildStats> {
    anyhow::ensure!(
        Path::new(GNU_TIME).is_file(),
        "{GNU_TIME} is missing: the benches measure each process with GNU time (apt-get install time)"
    );
    let report = tempfile::NamedTempFile::new()?;
    let mut timed = Command::new(GNU_TIME);
    timed
        .args(["--format", "%M", "--output"])
        .arg(report.path())
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(stdout);
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    let start = Instant::now();
    let child = timed.spawn()?;
    let reaped = reap(&child).with_context(|| format!("wait4 on {cmd:?}"))?;
    let wall = start.elapsed();
    anyhow::ensure!(
        reaped.exited_ok(),
        "{cmd:?} failed: wait status {:#x}",
        reaped.status
    );
    // The last line: GNU time puts a note of a failed command before it.
    let text = std::fs::read_to_string(report.path())?;
    let peak_rss_kib = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("GNU time reported no peak RSS for {cmd:?}: {text:?}"))?;
    Ok(ChildStats {
        wall,
        peak_rss_kib,
        cpu: reaped.cpu,
    })
}

/// What `wait4` tells of a child that exited.
pub struct Reaped {
    /// The wait status.
    pub status: libc::c_int,
    /// User plus system CPU time.
    pub cpu: Duration,
    /// `ru_maxrss` in KiB: at least the parent's peak when the child was spawned from a
    /// big process (see [`measure_child`]).
    pub peak_rss_kib: u64,
}

impl Reaped {
    /// Exited with status 0.
    pub fn exited_ok(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }
}

/// Wait for `child` to exit (through an interrupted wait too) and take its CPU time and
/// peak RSS from `wait4`, which std's `wait` does not give. The child is reaped here: do
/// not wait for it through std afterwards.
pub fn reap(child: &std::process::Child) -> std::io::Result<Reaped> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 only writes into the status and the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Ok(Reaped {
        status,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss_kib: usage.ru_maxrss.max(0) as u64,
    })
}

/// The transfer benches' local files in `dir`: `big.bin` of `size_mib` MiB and `files`
/// files of 8 KiB in `small/`, cut from one pseudo-random MiB (so compression gains nothing).
pub fn write_test_files(dir: &std::path::Path, size_mib: u64, files: usize) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(dir.join("big.bin"))?;
    let block: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for _ in 0..size_mib {
        std::io::Write::write_all(&mut f, &block)?;
    }
    std::fs::create_dir_all(dir.join("small"))?;
    for i in 0..files {
        std::fs::write(
            dir.join(format!("small/f{i:05}.dat")),
            &block[i % 1000..i % 1000 + 8192],
        )?;
    }
    Ok(())
}

/// Write every file's dirty pages to disk (`sync`) and wait until done, before a timed run:
/// otherwise the run after a tool that wrote a big file pays for that tool's write-back,
/// throttled behind it, and whichever tool runs first in a round comes out slower (seen on
/// 2026-12-07: the same aft binary at 211 and 369 MiB/s, by its place in the round).
pub fn flush_writes() -> anyhow::Result<()> {
    let status = Command::new("sync").status()?;
    anyhow::ensure!(status.success(), "sync failed: {status}");
    Ok(())
}
