//! A finished local file survives a power cut (issue 15): the transfer's temp file is
//! flushed (fsync) before it is renamed to its final name and its folder after, unless the
//! `local-fsync` setting trades that for speed. A power cut cannot be staged here, so the
//! test watches the system calls of the real binary with strace.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::Aft;

/// The fsync, sync_file_range and rename calls `aft cp SRC DST` makes, in order, one per
/// line, each with the path of its descriptor (`-y`): only those on `dir` count, since the
/// store's SQLite flushes its own files too.
fn traced_copy(aft: &Aft, src: &str, dst: &str, dir: &str, trace: &std::path::Path) -> Vec<String> {
    let out = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-y",
            "-e",
            "trace=fsync,fdatasync,sync_file_range,rename,renameat,renameat2",
            "-o",
        ])
        .arg(trace)
        .arg(env!("CARGO_BIN_EXE_aft"))
        .arg("--data")
        .arg(aft.data())
        .args(["cp", "--no-progress", src, dst])
        .output()
        .expect("strace (Debian package strace) must be installed");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(trace)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("unfinished") && !l.contains("resumed"))
        .map(|l| {
            l.split_once(' ')
                .map_or(l, |(_, call)| call)
                .trim()
                .to_string()
        })
        .filter(|l| {
            ["fsync", "fdatasync", "sync_file_range", "rename"]
                .iter()
                .any(|call| l.starts_with(call))
        })
        .filter(|l| l.contains(dir))
        .collect()
}

/// A file to copy with `aft cp` into a folder `out/` of the data folder.
struct Case {
    src: PathBuf,
    dst: PathBuf,
}

impl Case {
    fn new(aft: &Aft, name: &str, content: &[u8]) -> Self {
        let src = aft.path(name);
        std::fs::write(&src, content).unwrap();
        let dst = aft.path("out");
        std::fs::create_dir_all(&dst).unwrap();
        Case { src, dst }
    }

    /// [`traced_copy`] of the file into `out/`, traced to `trace_name`.
    fn traced_copy(&self, aft: &Aft, trace_name: &str) -> Vec<String> {
        let dir = self.dst.to_string_lossy().to_string();
        traced_copy(
            aft,
            &self.src.to_string_lossy(),
            &format!("{dir}/"),
            &dir,
            &aft.path(trace_name),
        )
    }
}

#[test]
fn a_local_target_is_flushed_before_its_rename_unless_local_fsync_is_off() {
    let aft = Aft::allowing_cli_run();
    let case = Case::new(&aft, "report.csv", b"id,total\n1,42\n");
    let (src, dst) = (&case.src, &case.dst);
    let calls = case.traced_copy(&aft, "on.trace");
    let rename = calls
        .iter()
        .position(|c| {
            c.starts_with("rename") && c.contains(".aft-tmp-") && c.contains("report.csv\"")
        })
        .unwrap_or_else(|| panic!("no rename of the temp file into place: {calls:#?}"));
    assert!(
        calls[..rename].iter().any(|c| c.starts_with("fsync")),
        "the data must be flushed before the rename: {calls:#?}"
    );
    assert!(
        calls[rename + 1..].iter().any(|c| c.starts_with("fsync")),
        "the folder must be flushed after the rename: {calls:#?}"
    );
    assert_eq!(
        std::fs::read(dst.join("report.csv")).unwrap(),
        std::fs::read(src).unwrap()
    );

    aft.ok(&["settings", "set", "local-fsync", "false"]);
    let calls = case.traced_copy(&aft, "off.trace");
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("rename") && c.contains("report.csv\"")),
        "{calls:#?}"
    );
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("fsync") || c.starts_with("fdatasync")),
        "local-fsync false must not flush: {calls:#?}"
    );
}

/// A big file's bytes go to disk while it is written, not all at the flush before its
/// rename: with `local-fsync` on, the kernel is asked to start writing each 8 MiB as it
/// lands (`sync_file_range`, which does not wait), before the flush and the rename; with it
/// off, the kernel is left to write when it likes.
#[test]
fn a_big_local_target_is_written_back_as_it_lands_when_flushed() {
    let aft = Aft::allowing_cli_run();
    let case = Case::new(
        &aft,
        "big.bin",
        &support::xorshift_bytes(20 * 1024 * 1024 + 5, 0x5EED),
    );
    let (src, dst) = (&case.src, &case.dst);
    let calls = case.traced_copy(&aft, "on.trace");
    let rename = calls
        .iter()
        .position(|c| c.starts_with("rename") && c.contains("big.bin\""))
        .unwrap_or_else(|| panic!("no rename into place: {calls:#?}"));
    let flush = calls[..rename]
        .iter()
        .rposition(|c| c.starts_with("fsync"))
        .unwrap_or_else(|| panic!("no flush before the rename: {calls:#?}"));
    let early: Vec<_> = calls[..flush]
        .iter()
        .filter(|c| c.starts_with("sync_file_range") && c.contains(".aft-tmp-"))
        .collect();
    // 20 MiB: written back from 8 MiB and from 16 MiB on, the tail by the flush.
    assert_eq!(early.len(), 2, "{calls:#?}");
    assert!(
        calls[flush..]
            .iter()
            .all(|c| !c.starts_with("sync_file_range")),
        "{calls:#?}"
    );
    assert_eq!(
        std::fs::read(dst.join("big.bin")).unwrap(),
        std::fs::read(src).unwrap()
    );

    aft.ok(&["settings", "set", "local-fsync", "false"]);
    let calls = case.traced_copy(&aft, "off.trace");
    assert!(calls.iter().any(|c| c.starts_with("rename")), "{calls:#?}");
    assert!(
        !calls.iter().any(|c| c.starts_with("sync_file_range")),
        "local-fsync false leaves the write-back to the kernel: {calls:#?}"
    );
}
