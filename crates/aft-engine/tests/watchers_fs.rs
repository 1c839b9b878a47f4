//! `FsWatcher` on real folders: callbacks on the script's thread during `Sleep` and
//! `WaitForHaltSignal`, bursts, quiet periods, filters and `Stop()`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aft_engine::{HaltFlag, JobScope, JobSpec, Limits, LogCollector, MemoryHost, Outcome, run_job};

struct Running {
    log: LogCollector,
    halt: HaltFlag,
    thread: std::thread::JoinHandle<Outcome>,
    _tokio: tokio::runtime::Runtime,
}

/// Start `source` on its own thread with `Param("dir")` = `dir`.
fn start(source: &str, dir: &Path) -> Running {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = LogCollector::new();
    let halt = HaltFlag::new();
    let scope = JobScope {
        host: Arc::new(MemoryHost::new()),
        log: log.sink(),
        halt: halt.clone(),
        tokio: tokio.handle().clone(),
    };
    let spec = JobSpec {
        name: "watch.syncjs".into(),
        source: source.into(),
        params: BTreeMap::from([("dir".to_string(), dir.display().to_string())]),
    };
    let limits = Limits {
        timeout: Some(Duration::from_secs(60)),
        ..Limits::default()
    };
    let thread = std::thread::spawn(move || run_job(spec, scope, limits));
    Running {
        log,
        halt,
        thread,
        _tokio: tokio,
    }
}

impl Running {
    /// Wait until the log has a line containing `needle` (the script logs READY once
    /// its watcher runs).
    fn wait_for(&self, needle: &str) {
        let until = Instant::now() + Duration::from_secs(20);
        while !self.log.text().contains(needle) {
            assert!(
                Instant::now() < until,
                "the script never logged {needle:?}; log so far:\n{}",
                self.log.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn finish(self) -> (Outcome, String) {
        let outcome = self.thread.join().unwrap();
        (outcome, self.log.text())
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn folder() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap();
    (dir, path)
}

#[test]
fn thousand_files_dropped_at_once_give_thousand_callbacks_without_duplicates() {
    let (_keep, dir) = folder();
    let job = start(
        r#"
        var seen = {}, n = 0, dups = 0;
        var w = new FsWatcher();
        w.WatchDir(Param("dir"), true);
        w.Start(function (evt) {
          if (evt.Event !== EVT_CREATE) return;
          if (seen[evt.Object]) dups++;
          seen[evt.Object] = true;
          n++;
        });
        Log("READY");
        var until = Date.now() + 30000;
        while (n < 1000 && Date.now() < until) Sleep(50);
        Sleep(1500); // late duplicates would show up here
        w.Stop();
        Log("COUNT " + n + " DUPS " + dups);
        "#,
        &dir,
    );
    job.wait_for("READY");
    for i in 0..1000 {
        std::fs::write(dir.join(format!("file-{i:04}.dat")), format!("content {i}")).unwrap();
    }
    let (outcome, log) = job.finish();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert!(log.contains("COUNT 1000 DUPS 0"), "{log}");
}

#[test]
fn slowly_written_file_fires_once_after_it_is_complete() {
    let (_keep, dir) = folder();
    let job = start(
        r#"
        var w = new FsWatcher();
        w.DelayBySeconds = 1;
        w.WatchDir(Param("dir"), false);
        var fired = 0;
        w.Start(function (evt) {
          fired++;
          Log("FIRED " + evt.Event + " " + Date.now() + " " + evt.Object + " " + evt.TimeStamp);
        });
        Log("READY");
        var until = Date.now() + 20000;
        while (fired === 0 && Date.now() < until) Sleep(50);
        Sleep(2500);
        w.Stop();
        Log("TOTAL " + fired);
        "#,
        &dir,
    );
    job.wait_for("READY");
    let path = dir.join("slow.bin");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&path).unwrap();
        // Chunks 400 ms apart: each gap is shorter than the 1 s quiet period.
        for _ in 0..5 {
            f.write_all(&[7u8; 4096]).unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(400));
        }
    }
    let closed = now_ms();
    let (outcome, log) = job.finish();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    let fired: Vec<&str> = log.lines().filter(|l| l.contains("FIRED ")).collect();
    assert_eq!(fired.len(), 1, "{log}");
    assert!(log.contains("TOTAL 1"), "{log}");
    let fields: Vec<&str> = fired[0]
        .split("FIRED ")
        .nth(1)
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(fields[0], "EVT_CREATE", "{log}");
    let at: u128 = fields[1].parse().unwrap();
    assert!(
        at >= closed,
        "fired at {at}, before the file was closed at {closed}"
    );
    assert_eq!(fields[2], path.display().to_string());
    assert!(fields[3].ends_with('Z') && fields[3].contains('T'), "{log}");
}

#[test]
fn filters_keep_included_names_and_drop_excluded_ones() {
    let (_keep, dir) = folder();
    let job = start(
        r#"
        var w = new FsWatcher();
        w.InclusionFilter = ["*.csv"];
        w.ExclusionFilter = ["skip*"];
        w.WatchDir(Param("dir"), true);
        var done = false;
        w.Start(function (evt) {
          if (evt.Event !== EVT_CREATE) return;
          var name = evt.Object.split("/").pop();
          Log("GOT " + name);
          if (name === "zz-last.csv") done = true;
        });
        Log("READY");
        var until = Date.now() + 20000;
        while (!done && Date.now() < until) Sleep(50);
        w.Stop();
        "#,
        &dir,
    );
    job.wait_for("READY");
    std::fs::create_dir(dir.join("sub")).unwrap();
    for name in ["a.csv", "b.txt", "skip-me.csv", "sub/c.csv", "zz-last.csv"] {
        std::fs::write(dir.join(name), b"x").unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let (outcome, log) = job.finish();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    let got: HashSet<&str> = log.lines().filter_map(|l| l.split("GOT ").nth(1)).collect();
    assert_eq!(
        got,
        HashSet::from(["a.csv", "c.csv", "zz-last.csv"]),
        "{log}"
    );
}

#[test]
fn no_callback_fires_after_stop_returns() {
    let (_keep, dir) = folder();
    let job = start(
        r#"
        var n = 0;
        var w = new FsWatcher();
        w.WatchDir(Param("dir"), false);
        w.Start(function (evt) { n++; });
        Log("READY");
        var until = Date.now() + 20000;
        while (n < 5 && Date.now() < until) Sleep(20);
        w.Stop();
        var atStop = n;
        Sleep(1500);
        Log(n === atStop ? "QUIET AFTER STOP" : "FIRED AFTER STOP " + (n - atStop));
        w.Stop(); // a second Stop is harmless
        "#,
        &dir,
    );
    job.wait_for("READY");
    let writer_dir = dir.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..300 {
            std::fs::write(writer_dir.join(format!("f{i}")), b"data").unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let (outcome, log) = job.finish();
    writer.join().unwrap();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert!(log.contains("QUIET AFTER STOP"), "{log}");
}

#[test]
fn callbacks_run_during_wait_for_halt_signal_and_halt_ends_the_job() {
    let (_keep, dir) = folder();
    let job = start(
        r#"
        var w = new FsWatcher();
        w.WatchDir(Param("dir"), false);
        w.Start(function (evt) { Log("EVENT " + evt.Event + " " + evt.Object.split("/").pop()); });
        Log("READY");
        WaitForHaltSignal();
        w.Stop();
        "#,
        &dir,
    );
    job.wait_for("READY");
    std::fs::write(dir.join("one.txt"), b"1").unwrap();
    job.wait_for("EVENT EVT_CREATE one.txt");
    std::fs::rename(dir.join("one.txt"), dir.join("two.txt")).unwrap();
    job.wait_for("EVENT EVT_RENAME one.txt");
    job.wait_for("EVENT EVT_CREATE two.txt");
    std::fs::remove_file(dir.join("two.txt")).unwrap();
    job.wait_for("EVENT EVT_REMOVE two.txt");
    job.halt.raise();
    let (outcome, log) = job.finish();
    assert_eq!(outcome, Outcome::Halted, "{log}");
}

#[test]
fn a_throwing_callback_fails_the_job_with_its_error() {
    let (_keep, dir) = folder();
    let job = start(
        r#"
        var w = new FsWatcher();
        w.WatchDir(Param("dir"), false);
        w.Start(function (evt) { throw new Error("cannot handle " + evt.Object.split("/").pop()); });
        Log("READY");
        try { Sleep(20000); } catch (e) { Log("CAUGHT " + e.message); throw e; }
        "#,
        &dir,
    );
    job.wait_for("READY");
    std::fs::write(dir.join("bad.txt"), b"1").unwrap();
    let (outcome, log) = job.finish();
    match outcome {
        Outcome::Threw(e) => assert!(e.message.contains("cannot handle bad.txt"), "{e:?}"),
        other => panic!("expected a throw, got {other:?}\n{log}"),
    }
}

#[test]
fn start_without_callback_does_nothing_and_bad_folders_say_which() {
    let (_keep, dir) = folder();
    let job = start(
        r#"
        var w = new FsWatcher();
        w.WatchDir(Param("dir"), false);
        w.Start();
        Log("READY");
        Sleep(500);
        var bad = new FsWatcher();
        bad.WatchDir(Param("dir") + "/missing", false);
        try { bad.Start(function () {}); Log("STARTED"); } catch (e) { Log("REFUSED " + e.message); }
        var glob = new FsWatcher();
        glob.WatchDir(Param("dir"), false);
        glob.InclusionFilter = ["["];
        try { glob.Start(function () {}); } catch (e) { Log("REFUSED " + e.message); }
        "#,
        &dir,
    );
    job.wait_for("READY");
    std::fs::write(dir.join("ignored.txt"), b"1").unwrap();
    let (outcome, log) = job.finish();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert!(!log.contains("STARTED"), "{log}");
    assert!(
        log.contains(&format!(
            "REFUSED FsWatcher.WatchDir: {}/missing",
            dir.display()
        )),
        "{log}"
    );
    assert!(
        log.contains("REFUSED FsWatcher.InclusionFilter: \"[\""),
        "{log}"
    );
}

#[test]
fn callbacks_run_one_at_a_time_even_when_a_callback_sleeps() {
    let (_keep, dir) = folder();
    let job = start(
        r#"
        var active = 0, done = 0, overlaps = 0;
        var w = new FsWatcher();
        w.WatchDir(Param("dir"), false);
        w.Start(function (evt) {
          if (evt.Event !== EVT_CREATE) return;
          active++;
          if (active > 1) overlaps++;
          Sleep(20); // must not run the next callback from in here
          active--;
          done++;
        });
        Log("READY");
        var until = Date.now() + 20000;
        while (done < 20 && Date.now() < until) Sleep(10);
        w.Stop();
        Log("DONE " + done + " OVERLAPS " + overlaps);
        "#,
        &dir,
    );
    job.wait_for("READY");
    for i in 0..20 {
        std::fs::write(dir.join(format!("n{i}")), b"x").unwrap();
    }
    let (outcome, log) = job.finish();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert!(log.contains("DONE 20 OVERLAPS 0"), "{log}");
}
