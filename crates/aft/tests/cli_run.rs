//! End-to-end tests of `aft run` and `aft check`: a real `aft` process, its own data
//! directory (SQLite) each, and the exit codes and messages users and CI rely on.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A fresh data directory with `allow-cli-run` left at its default (off).
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A fresh data directory with `allow-cli-run` turned on.
    fn allowed() -> Env {
        let env = Env::new();
        env.ok(&["settings", "set", "allow-cli-run", "true"]);
        env
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn aft(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aft"));
        cmd.arg("--data").arg(self.data());
        cmd.env_remove("AFT_DATABASE").env_remove("AFT_SECRET_KEY");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.aft().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(out.status.success(), "aft {args:?} failed: {}", text(&out));
        out
    }

    fn script(&self, name: &str, source: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, source).unwrap();
        path.display().to_string()
    }

    fn run_script(&self, source: &str, extra: &[&str]) -> Output {
        let file = self.script("job.syncjs", source);
        let mut args = vec!["run", "-f", file.as_str()];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_succeeds_with_exit_0_and_timestamped_log_lines() {
    let env = Env::allowed();
    let out = env.run_script(
        r#"Log("hello " + Param("who")); console.log("second")"#,
        &["-p", r#"{"who":"world"}"#],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = stdout(&out);
    let first = log.lines().next().unwrap_or_default();
    assert!(first.ends_with("INFO  hello world"), "{}", text(&out));
    // 2026-11-28T19:40:00.123Z
    assert!(
        first.len() > 24 && first.as_bytes()[10] == b'T' && first[..24].ends_with('Z'),
        "{first}"
    );
    assert!(log.contains("INFO  second"));
}

#[test]
fn run_accepts_params_as_numbers_bools_and_the_v3_array_form() {
    let env = Env::allowed();
    let script =
        r#"Log([Param("a"), Param("n"), Param("b"), "[" + Param("none") + "]"].join(","))"#;
    let out = env.run_script(script, &["--params", r#"{"a":"x","n":42,"b":true}"#]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("x,42,true,[]"), "{}", text(&out));

    let out = env.run_script(
        script,
        &["-p", r#"[{"name":"a","value":"y"},{"name":"n","value":7}]"#],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("y,7,,[]"), "{}", text(&out));
}

#[test]
fn run_is_refused_with_exit_1_while_allow_cli_run_is_off() {
    let env = Env::new();
    let out = env.run_script(r#"Log("must not run")"#, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!stdout(&out).contains("must not run"));
    assert!(
        stderr(&out).contains("aft run is disabled: an administrator can enable it with 'aft settings set allow-cli-run true'"),
        "{}",
        text(&out)
    );
    env.ok(&["settings", "set", "allow-cli-run", "false"]);
    assert_eq!(env.run_script("Log(1)", &[]).status.code(), Some(1));
}

#[test]
fn thrown_error_exits_1_with_message_file_line_and_stack() {
    let env = Env::allowed();
    let out = env.run_script(
        "Log('start');\nfunction copyAll() {\n  throw new Error('disk full');\n}\ncopyAll();\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let log = stdout(&out);
    assert!(log.contains("INFO  start"));
    assert!(
        log.contains("ERROR Error: disk full at ") && log.contains("job.syncjs:3:"),
        "{}",
        text(&out)
    );
    assert!(
        log.contains("at copyAll"),
        "the stack is in the log: {}",
        text(&out)
    );
}

#[test]
fn syntax_error_exits_1_with_line_and_runs_nothing() {
    let env = Env::allowed();
    let out = env.run_script("Log('must not run');\n\nvar x = {;\n", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let log = stdout(&out);
    assert!(!log.contains("must not run"));
    assert!(
        log.contains("SyntaxError") && log.contains("job.syncjs:3:"),
        "{}",
        text(&out)
    );
}

#[test]
fn exit_without_code_exits_0_and_exit_with_code_exits_1() {
    let env = Env::allowed();
    let out = env.run_script("Log('a'); Exit(); Log('b');", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!stdout(&out).contains("INFO  b"));
    let out = env.run_script("try { Exit(4); } catch (e) { Log('caught'); }", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!stdout(&out).contains("caught"));
    assert!(stdout(&out).contains("Exit(4)"), "{}", text(&out));
}

#[test]
fn missing_script_file_is_a_usage_error_with_one_line() {
    let env = Env::allowed();
    let out = env.run(&["run", "-f", "/nonexistent/nothing.syncjs"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot read script /nonexistent/nothing.syncjs"),
        "{err}"
    );
}

#[test]
fn params_that_are_not_a_flat_object_are_a_usage_error() {
    let env = Env::allowed();
    for bad in [r#"{"a":{"b":1}}"#, "[1,2]", "not json", r#""text""#] {
        let out = env.run_script("Log('must not run')", &["-p", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(!stdout(&out).contains("must not run"));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{bad}: {err}");
        assert!(err.contains("--params"), "{bad}: {err}");
    }
}

#[test]
fn unknown_flag_and_missing_file_flag_are_usage_errors() {
    let env = Env::allowed();
    let out = env.run(&["run", "--frobnicate", "-f", "x.syncjs"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("--frobnicate"), "{}", text(&out));
    let out = env.run(&["run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Start `aft run` on a script that logs `ready` and then loops, and wait for `ready`.
fn start_busy_script(
    env: &Env,
    source: &str,
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let file = env.script("busy.syncjs", source);
    let mut child = env
        .aft()
        .args(["run", "-f", &file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "aft run ended before logging ready"
        );
        if line.contains("ready") {
            break;
        }
    }
    (child, reader)
}

fn signal_and_wait(signal: &str, script: &str) {
    let env = Env::allowed();
    let (mut child, mut reader) = start_busy_script(&env, script);
    let sent = Instant::now();
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    let took = sent.elapsed();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    assert_eq!(code, Some(1), "log: {rest}");
    assert!(took < Duration::from_secs(1), "{signal} took {took:?}");
    assert!(rest.contains("halted"), "log: {rest}");
    assert!(
        rest.contains(&format!("SIG{signal} received")),
        "log: {rest}"
    );
}

#[test]
fn sigint_halts_a_busy_script_with_exit_1_within_a_second() {
    signal_and_wait("INT", "Log('ready'); while (true) {}");
}

#[test]
fn sigterm_halts_a_sleeping_script_with_exit_1_within_a_second() {
    signal_and_wait(
        "TERM",
        "Log('ready'); while (true) { if (HaltSignalReceived) break; Sleep(60000); } Log('cleaning up');",
    );
}

#[test]
fn timeout_setting_stops_the_script_and_names_the_limit() {
    let env = Env::allowed();
    env.ok(&["settings", "set", "job-timeout-seconds", "1"]);
    let start = Instant::now();
    let out = env.run_script("while (true) {}", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        stdout(&out).contains("job exceeded its time limit of 1 s (setting job-timeout-seconds)"),
        "{}",
        text(&out)
    );
}

#[test]
fn memory_limit_setting_stops_the_script_and_names_the_limit() {
    let env = Env::allowed();
    env.ok(&["settings", "set", "job-memory-limit-mb", "16"]);
    let out = env.run_script(
        "var a = []; while (true) a.push('y'.repeat(4096) + a.length);",
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out)
            .contains("job exceeded its memory limit of 16 MiB (setting job-memory-limit-mb)"),
        "{}",
        text(&out)
    );
}

#[test]
fn get_secret_reads_the_store_and_the_value_never_reaches_the_log() {
    let env = Env::allowed();
    let mut child = env
        .aft()
        .args(["secret", "set", "PartnerPass"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hunter2-very-secret\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let out = env.run_script(
        r#"var p = GetSecret("PartnerPass"); Log("len " + p.length + " value " + p); Log("[" + GetSecret("partnerpass") + "]");"#,
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = stdout(&out);
    assert!(log.contains("len 19 value ***"), "{log}");
    assert!(log.contains("[]"), "names are case-sensitive: {log}");
    assert!(!log.contains("hunter2"), "{log}");
}

#[test]
fn check_accepts_a_valid_script_without_running_it() {
    let env = Env::new();
    let file = env.script("ok.syncjs", "Log('x'); while (true) {}");
    let start = Instant::now();
    let out = env.run(&["check", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(stdout(&out).contains("syntax OK"));
}

#[test]
fn check_reports_a_syntax_error_with_file_line_and_column() {
    let env = Env::new();
    let file = env.script("bad.syncjs", "var a = 1;\nif (a {\n}\n");
    let out = env.run(&["check", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.starts_with(&format!("{file}:2:")), "{err}");
    assert!(err.contains("SyntaxError"), "{err}");
    assert!(
        !Path::new(&env.data()).join("aft.db").exists(),
        "check must not open the store"
    );
}

#[test]
fn check_of_a_missing_file_is_a_usage_error() {
    let env = Env::new();
    let out = env.run(&["check", "/nonexistent/x.syncjs"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", text(&out));
}
