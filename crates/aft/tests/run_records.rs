//! `aft run` without a service records its job as a service records its own: the history
//! (`aft jobs list|show|log`) shows it with `startedBy: "aft run"`, its parameters, its log
//! (capped by `job-log-max-lines`), its transfers, its result and its true end; a halt asked
//! from `aft jobs halt` stops it; a `kill -9` leaves it to the next service, which reports it
//! interrupted once its lease ran out; and a store that cannot take the record stops the
//! run before the script starts. The terminal output stays what it was.

mod support;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Aft, poll, text};

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The jobs of the history, newest first.
fn jobs(aft: &Aft) -> Vec<Value> {
    json_of(&aft.ok(&["jobs", "list", "--json"]))
        .as_array()
        .unwrap()
        .clone()
}

/// The only job of the history.
fn only_job(aft: &Aft) -> Value {
    let jobs = jobs(aft);
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    jobs[0].clone()
}

/// The stored log of job `id` as `aft jobs log --json` gives it: (level, message).
fn log_of(aft: &Aft, id: &str) -> Vec<(String, String)> {
    aft.ok(&["jobs", "log", id, "--json"])
        .lines()
        .map(|l| {
            let line = json_of(l);
            (
                line["level"].as_str().unwrap().to_string(),
                line["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `aft run -f FILE` started in the background, its output discarded.
fn spawn_run(aft: &Aft, file: &str) -> Child {
    aft.command(&["run", "-f", file])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Wait until the history shows one running job whose stored log has `line`; its id.
fn running_job_with(aft: &Aft, line: &str) -> String {
    poll(Duration::from_secs(30), || {
        let job = jobs(aft).into_iter().find(|j| j["status"] == "running")?;
        let id = job["id"].as_str()?.to_string();
        log_of(aft, &id)
            .iter()
            .any(|(_, m)| m == line)
            .then_some(id)
    })
    .unwrap_or_else(|| panic!("no running job logged {line:?}: {:#?}", jobs(aft)))
}

#[test]
fn a_run_without_a_service_is_a_job_with_its_params_log_transfers_and_result() {
    let aft = Aft::allowing_cli_run();
    let inbox = aft.path("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(aft.path("order.csv"), "id,qty\n1,3\n").unwrap();
    let file = aft.write(
        "pickup.syncjs",
        &format!(
            r#"Log("hello " + Param("who"));
var c = new LocalClient();
c.Root = {root};
if (!c.Connect()) throw new Error(c.LastError());
if (!c.Upload({src}, "/")) throw new Error(c.LastError());
c.Close();
SetResult("1 order");
"#,
            root = serde_json::json!(inbox.to_str().unwrap()),
            src = serde_json::json!(aft.path("order.csv").to_str().unwrap()),
        ),
    );
    let out = aft.run(&["run", "-f", &file, "-p", r#"{"who":"cron"}"#]);
    assert!(out.status.success(), "{}", text(&out));
    // The terminal shows the log and the transfer line, as it always did.
    let shown = stdout(&out);
    assert!(shown.contains(" INFO  hello cron\n"), "{}", text(&out));
    assert!(
        shown.contains("INFO  transfer ") && shown.contains("/order.csv: 11 bytes"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(inbox.join("order.csv")).unwrap(),
        "id,qty\n1,3\n"
    );

    let job = only_job(&aft);
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(job["startedBy"], "aft run", "{job:#}");
    assert_eq!(job["origin"], "cli", "{job:#}");
    assert_eq!(job["filePath"], file.as_str(), "{job:#}");
    assert_eq!(job["params"]["who"], "cron", "{job:#}");
    assert_eq!(job["exitCode"], 0, "{job:#}");
    assert_eq!(job["error"], Value::Null, "{job:#}");
    assert_eq!(job["leaseUntil"], Value::Null, "{job:#}");
    assert_eq!(job["result"], "1 order", "{job:#}");
    let id = job["id"].as_str().unwrap();
    // The stored log is the terminal's, less the transfer line: a transfer is a record of
    // its own, as in a service's job.
    let terminal: Vec<String> = shown
        .lines()
        .map(|l| l.splitn(3, ' ').nth(2).unwrap().trim_start().to_string())
        .filter(|m| !m.starts_with("transfer "))
        .collect();
    let stored: Vec<String> = log_of(&aft, id).into_iter().map(|(_, m)| m).collect();
    assert_eq!(stored, terminal);
    assert_eq!(stored[0], "hello cron");
    let shown = json_of(&aft.ok(&["jobs", "show", id, "--json"]));
    let transfers = shown["transfers"].as_array().unwrap();
    assert_eq!(transfers.len(), 1, "{shown:#}");
    assert_eq!(transfers[0]["bytes"], 11, "{shown:#}");
    assert_eq!(transfers[0]["outcome"], "ok", "{shown:#}");
    let human = aft.ok(&["jobs", "show", id]);
    assert!(human.contains("status:    succeeded"), "{human}");
}

#[test]
fn a_failing_run_is_recorded_failed_and_still_exits_1() {
    let aft = Aft::allowing_cli_run();
    let file = aft.write("fail.syncjs", "Log(\"about to fail\");\nExit(3);\n");
    let out = aft.run(&["run", "-f", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("ERROR the script called Exit(3)"),
        "{}",
        text(&out)
    );
    let job = only_job(&aft);
    assert_eq!(job["status"], "failed", "{job:#}");
    assert_eq!(job["startedBy"], "aft run", "{job:#}");
    assert_eq!(job["exitCode"], 3, "{job:#}");
    assert!(
        job["error"].as_str().unwrap().contains("Exit(3)"),
        "{job:#}"
    );
    let log = log_of(&aft, job["id"].as_str().unwrap());
    assert_eq!(log[0], ("info".into(), "about to fail".into()), "{log:?}");
    assert!(
        log.iter()
            .any(|(level, m)| level == "error" && m.contains("Exit(3)")),
        "{log:?}"
    );

    // A script that throws: failed, exit code 1, the error in the record.
    let file = aft.write("throw.syncjs", "throw new Error(\"no orders\");\n");
    aft.fails(&["run", "-f", &file], 1);
    let job = jobs(&aft)[0].clone();
    assert_eq!(job["status"], "failed", "{job:#}");
    assert_eq!(job["exitCode"], 1, "{job:#}");
    assert!(
        job["error"].as_str().unwrap().contains("no orders"),
        "{job:#}"
    );
}

#[test]
fn the_stored_log_is_capped_by_job_log_max_lines_while_the_terminal_shows_all() {
    let aft = Aft::allowing_cli_run();
    aft.ok(&["settings", "set", "job-log-max-lines", "100"]);
    let file = aft.write(
        "chatty.syncjs",
        "for (var i = 1; i <= 150; i++) { Log(\"line \" + i); }\n",
    );
    let out = aft.run(&["run", "-f", &file]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out).lines().count(), 150, "{}", text(&out));
    let job = only_job(&aft);
    let log = log_of(&aft, job["id"].as_str().unwrap());
    assert_eq!(log.len(), 101, "{log:?}");
    assert_eq!(log[99].1, "line 100");
    assert_eq!(log[100].0, "warn");
    assert!(
        log[100]
            .1
            .starts_with("log truncated: this job wrote more than 100 lines"),
        "{log:?}"
    );
}

#[test]
fn a_dry_run_is_recorded_as_one_with_its_plan() {
    let aft = Aft::allowing_cli_run();
    let target = aft.path("out.txt");
    let file = aft.write(
        "dry.syncjs",
        &format!(
            "Log(\"planning\");\nWriteTextFile({}, \"x\");\n",
            serde_json::json!(target.to_str().unwrap())
        ),
    );
    let out = aft.run(&["run", "-f", &file, "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!target.exists(), "a dry run wrote {}", target.display());
    let doc = json_of(&stdout(&out));
    let job = only_job(&aft);
    assert_eq!(doc["jobId"], job["id"], "{doc:#}");
    assert_eq!(doc["dryRun"], true, "{doc:#}");
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(job["startedBy"], "aft run", "{job:#}");
    let id = job["id"].as_str().unwrap();
    let shown = json_of(&aft.ok(&["jobs", "show", id, "--json"]));
    assert_eq!(shown["dryRun"], true, "{shown:#}");
    assert_eq!(shown["plan"], doc["plan"], "{shown:#}");
    let log = log_of(&aft, id);
    assert!(log[0].1.starts_with("dry run: "), "{log:?}");
    assert!(
        log.iter().any(|(_, m)| m.starts_with("plan summary:")),
        "the stored log ends with the plan, as a service's dry run's does: {log:?}"
    );
}

#[test]
fn a_halt_from_aft_jobs_halt_stops_the_run_and_is_recorded() {
    let aft = Aft::allowing_cli_run();
    let file = aft.write(
        "loop.syncjs",
        "Log(\"looping\");\nwhile (true) { Sleep(50); }\n",
    );
    let child = aft
        .command(&["run", "-f", &file])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = running_job_with(&aft, "looping");
    let asked = Instant::now();
    aft.ok(&["jobs", "halt", &id]);
    let out = child.wait_with_output().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stdout(&out).contains("halt requested"), "{}", text(&out));
    let job = only_job(&aft);
    assert_eq!(job["status"], "halted", "{job:#}");
    assert_eq!(job["exitCode"], 1, "{job:#}");
}

#[test]
fn a_killed_run_is_interrupted_by_the_next_service_once_its_lease_ran_out() {
    let aft = Aft::allowing_cli_run();
    // The shortest lease, so the test waits seconds, not half a minute.
    aft.ok(&["settings", "set", "job-lease-seconds", "3"]);
    let file = aft.write(
        "stuck.syncjs",
        "Log(\"working\");\nwhile (true) { Sleep(50); }\n",
    );
    let mut child = spawn_run(&aft, &file);
    let id = running_job_with(&aft, "working");
    let job = only_job(&aft);
    assert!(job["leaseUntil"].is_string(), "{job:#}");
    child.kill().unwrap();
    child.wait().unwrap();
    let svc = aft.serve();
    let ended = poll(Duration::from_secs(40), || {
        let job = only_job(&aft);
        (job["status"] != "running").then_some(job)
    })
    .unwrap_or_else(|| panic!("still running: {:#}", only_job(&aft)));
    assert_eq!(ended["status"], "interrupted", "{ended:#}");
    assert_eq!(ended["id"], id.as_str());
    assert!(
        ended["error"].as_str().unwrap().contains("lease"),
        "{ended:#}"
    );
    assert_eq!(ended["startedBy"], "aft run", "{ended:#}");
    // Its log up to the kill is kept.
    assert_eq!(log_of(&aft, &id)[0].1, "working");
    drop(svc);
}

/// `aft run` leaves the WAL when it ends instead of folding it into `aft.db` (4 fsyncs and
/// a file made and deleted per run): every reader still sees each run, and the WAL is folded
/// once it passes `LEFT_WAL_FOLD_BYTES`, so it stays bounded however many runs come.
#[test]
fn runs_leave_the_wal_every_reader_sees_them_and_it_stays_bounded() {
    let aft = Aft::allowing_cli_run();
    let file = aft.write("one.syncjs", "Log(Param(\"x\"));\n");
    let wal = aft.data().join("aft.db-wal");
    let wal_len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let fold = aft_store::LEFT_WAL_FOLD_BYTES;
    let runs = 40;
    let (mut left, mut folds, mut largest, mut last) = (0, 0, 0, 0);
    for n in 0..runs {
        let out = aft.run(&["run", "-f", &file, "-p", &format!(r#"{{"x":"run {n}"}}"#)]);
        assert!(out.status.success(), "{}", text(&out));
        let now = wal_len();
        left += usize::from(now > 0);
        folds += usize::from(now < last);
        largest = largest.max(now);
        last = now;
    }
    // Left after most runs (the code before deleted it at every end), folded now and then.
    assert!(left >= runs - folds, "left after {left} of {runs} runs");
    assert!(
        folds >= 2,
        "folded {folds} times in {runs} runs (largest {largest} B)"
    );
    // One run writes well under 200 KB; a fold happens at the close after it passes.
    assert!(largest < fold + 200_000, "the WAL reached {largest} B");
    // Every run is in the history, read by aft and by another SQLite client.
    assert_eq!(jobs(&aft).len(), runs);
    let counted = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM jobs').fetchone()[0])\n",
            aft.data().join("aft.db").to_str().unwrap(),
        ])
        .output()
        .expect("python3");
    assert_eq!(
        stdout(&counted).trim(),
        runs.to_string(),
        "{}",
        text(&counted)
    );
}

/// A store that cannot take the job's record: the run stops before the script starts,
/// with exit 1 and one line saying why (containing `why`).
fn refused_before_the_script(aft: &Aft, global: &[&str], why: &str) {
    let marker = aft.path("ran.txt");
    let file = aft.write(
        "marker.syncjs",
        &format!(
            "WriteTextFile({}, \"ran\");\nLog(\"ran\");\n",
            serde_json::json!(marker.to_str().unwrap())
        ),
    );
    let mut args = global.to_vec();
    args.extend(["run", "-f", &file]);
    let out = aft.run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains(why),
        "{}",
        text(&out)
    );
    assert!(stdout(&out).is_empty(), "{}", text(&out));
    assert!(!marker.exists(), "the script ran: {}", text(&out));
}

#[test]
fn a_read_only_store_stops_the_run_before_the_script_starts() {
    let aft = Aft::allowing_cli_run();
    // An immutable open reads the main file only, never the WAL: move what the set-up
    // commands left in the WAL into the file first, or the open may see half a schema
    // ("database disk image is malformed") instead of a read-only database.
    let db = aft.data().join("aft.db");
    let checkpoint = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             sqlite3.connect(sys.argv[1]).execute('PRAGMA wal_checkpoint(TRUNCATE)')\n",
            db.to_str().unwrap(),
        ])
        .status()
        .expect("python3");
    assert!(checkpoint.success());
    // SQLite's read-only open of the same database.
    let url = format!(
        "sqlite://{}?immutable=true",
        aft.data().join("aft.db").display()
    );
    // Opening the store already refuses (its schema check writes), naming the cause.
    refused_before_the_script(&aft, &["--database", &url], "readonly database");
    assert!(jobs(&aft).is_empty());
}

#[test]
fn a_locked_store_stops_the_run_before_the_script_starts() {
    let aft = Aft::allowing_cli_run();
    // Another writer holds the database's write lock for longer than the busy timeout.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             time.sleep(60)\n",
            aft.data().join("aft.db").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut said,
    )
    .unwrap();
    assert_eq!(said, "locked\n");
    refused_before_the_script(&aft, &[], "cannot record the job in the store: ");
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(jobs(&aft).is_empty());
}

#[tokio::test]
async fn a_run_against_postgres_is_recorded_there() {
    let db = aft_store::testing::TempPostgres::create().await;
    let aft = Aft::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let pg = |args: &[&str]| {
            let mut all = vec!["--database", db.url.as_str()];
            all.extend_from_slice(args);
            aft.run(&all)
        };
        assert!(
            pg(&["settings", "set", "allow-cli-run", "true"])
                .status
                .success()
        );
        let file = aft.write("pg.syncjs", "Log(\"on postgres\");\n");
        let out = pg(&["run", "-f", &file]);
        assert!(out.status.success(), "{}", text(&out));
        let listed = json_of(&stdout(&pg(&["jobs", "list", "--json"])));
        assert_eq!(listed[0]["startedBy"], "aft run", "{listed:#}");
        assert_eq!(listed[0]["status"], "succeeded", "{listed:#}");
        let id = listed[0]["id"].as_str().unwrap();
        let log = stdout(&pg(&["jobs", "log", id]));
        assert_eq!(log, "on postgres\n");
        assert!(!aft.data().join("aft.db").exists());
    }));
    db.drop_database().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
