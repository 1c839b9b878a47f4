//! The service log as an operator's log file or shipper gets it, through the real binary:
//! plain text when standard error is not a terminal, JSON lines on request, and the level
//! from AFT_LOG or RUST_LOG.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};

use support::{AFT, free_port, signal};

/// Run `aft serve` with `args` and `env` until it listens, stop it, and return its stderr.
fn service_log(args: &[&str], env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(AFT);
    cmd.arg("--data")
        .arg(data.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(args)
        .env_remove("AFT_LOG")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("AFT_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    assert!(
        support::wait_until_listening(&mut child),
        "aft serve did not start listening"
    );
    signal(child.id(), "TERM");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(child.wait().unwrap().success());
    log
}

#[test]
fn a_log_that_is_not_a_terminal_is_plain_text() {
    let log = service_log(&[], &[]);
    assert!(log.contains("service started"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a log file: {log:?}"
    );
}

#[test]
fn json_log_format_writes_one_object_a_line() {
    let log = service_log(&["--log-format", "json"], &[]);
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(log.contains("service started"), "{log}");
    let from_env = service_log(&[], &[("AFT_LOG_FORMAT", "json")]);
    assert!(
        from_env
            .lines()
            .all(|l| l.trim().is_empty() || l.starts_with('{')),
        "{from_env}"
    );
}

#[test]
fn the_level_comes_from_aft_log_or_rust_log() {
    for var in ["AFT_LOG", "RUST_LOG"] {
        let log = service_log(&[], &[(var, "warn")]);
        assert!(
            !log.contains("service started"),
            "{var}=warn still logs info: {log}"
        );
    }
}
