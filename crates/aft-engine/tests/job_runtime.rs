//! The job runtime: job context, errors with positions, halt, limits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aft_engine::{
    HaltFlag, JobScope, JobSpec, Limits, LogCollector, LogLevel, MemoryHost, Outcome, check_syntax,
    run_job,
};

struct Job {
    log: LogCollector,
    halt: HaltFlag,
    scope: JobScope,
    _tokio: tokio::runtime::Runtime,
}

fn job_with(host: MemoryHost) -> Job {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = LogCollector::new();
    let halt = HaltFlag::new();
    let scope = JobScope {
        host: Arc::new(host),
        log: log.sink(),
        halt: halt.clone(),
        tokio: tokio.handle().clone(),
    };
    Job {
        log,
        halt,
        scope,
        _tokio: tokio,
    }
}

fn spec(source: &str) -> JobSpec {
    JobSpec {
        name: "test.syncjs".into(),
        source: source.into(),
        params: BTreeMap::new(),
    }
}

fn run(source: &str) -> (Outcome, String) {
    let job = job_with(MemoryHost::new());
    let outcome = run_job(spec(source), job.scope.clone(), Limits::default());
    (outcome, job.log.text())
}

#[test]
fn log_and_console_write_lines_with_levels() {
    let job = job_with(MemoryHost::new());
    let outcome = run_job(
        spec(
            r#"Log("hello", 42, {a: [1, 2]}); console.warn("careful"); console.error(new TypeError("bad"))"#,
        ),
        job.scope.clone(),
        Limits::default(),
    );
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(
        job.log.lines(),
        vec![
            (LogLevel::Info, r#"hello 42 {"a":[1,2]}"#.to_string()),
            (LogLevel::Warn, "careful".to_string()),
            (LogLevel::Error, "TypeError: bad".to_string()),
        ]
    );
}

#[test]
fn param_returns_value_or_empty_string() {
    let job = job_with(MemoryHost::new());
    let mut s = spec(
        r#"Log("[" + Param("dest") + "][" + Param("missing") + "]" + typeof Param("missing"))"#,
    );
    s.params.insert("dest".into(), "/archive/2026".into());
    assert_eq!(
        run_job(s, job.scope.clone(), Limits::default()),
        Outcome::Succeeded
    );
    assert_eq!(job.log.text(), "[/archive/2026][]string");
}

#[test]
fn get_secret_returns_value_and_log_masks_it() {
    let job = job_with(MemoryHost::new().with_secret("Token", "s3cr3t-value"));
    let outcome = run_job(
        spec(
            r#"var t = GetSecret("Token"); Log("token is " + t); Log("[" + GetSecret("token") + "]"); throw new Error("failed with " + t)"#,
        ),
        job.scope.clone(),
        Limits::default(),
    );
    let Outcome::Threw(error) = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        error.message, "Error: failed with ***",
        "the outcome is masked too"
    );
    let text = job.log.text();
    assert!(
        !text.contains("s3cr3t-value"),
        "secret leaked into the log: {text}"
    );
    assert!(text.contains("token is ***"), "{text}");
    assert!(
        text.contains("[]"),
        "secret names are case-sensitive: {text}"
    );
    assert!(text.contains("Error: failed with ***"), "{text}");
}

#[test]
fn exit_without_code_succeeds_and_skips_the_rest() {
    let (outcome, log) = run(
        r#"Log("before"); try { Exit(); } catch (e) { Log("caught"); } finally { Log("finally"); } Log("after")"#,
    );
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(log, "before");
}

#[test]
fn exit_with_nonzero_code_fails_and_cannot_be_caught() {
    let (outcome, log) = run(
        r#"function f() { try { Exit(3); } catch (e) { Log("caught " + e); } } f(); Log("after")"#,
    );
    assert_eq!(outcome, Outcome::Exited { code: 3 });
    assert_eq!(outcome.exit_code(), 3);
    assert!(!log.contains("caught") && !log.contains("after"), "{log}");
    assert_eq!(run("Exit(0)").0, Outcome::Succeeded);
}

#[test]
fn uncaught_throw_reports_message_position_and_stack() {
    let (outcome, log) =
        run("var x = 1;\nfunction inner() {\n  throw new RangeError('too far');\n}\ninner();\n");
    let Outcome::Threw(e) = outcome else {
        panic!("expected a throw, got {outcome:?}")
    };
    assert_eq!(e.message, "RangeError: too far");
    assert_eq!((e.file.as_str(), e.line), ("test.syncjs", 3));
    assert!(e.column > 0);
    assert!(e.stack.contains("inner"), "stack: {}", e.stack);
    assert!(
        log.contains("RangeError: too far at test.syncjs:3:"),
        "{log}"
    );
    assert!(log.contains("at inner"), "the log carries the stack: {log}");
}

#[test]
fn type_error_from_a_bad_call_is_located() {
    let (outcome, _) = run("Log('ok');\nvar o = {};\no.missing();\n");
    let Outcome::Threw(e) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(e.message.starts_with("TypeError"), "{}", e.message);
    assert_eq!(e.line, 3);
}

#[test]
fn thrown_string_fails_the_job_with_its_text() {
    let (outcome, log) = run("throw 'plain text'");
    let Outcome::Threw(e) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(e.message.contains("plain text"), "{}", e.message);
    assert!(log.contains("plain text"));
}

#[test]
fn syntax_error_is_reported_with_line_before_anything_runs() {
    let (outcome, log) = run("Log('must not run');\nvar a = ;\n");
    let Outcome::Threw(e) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(e.message.starts_with("SyntaxError"), "{}", e.message);
    assert_eq!(e.line, 2);
    assert!(!log.contains("must not run"), "{log}");
    assert!(log.contains("test.syncjs:2:"), "{log}");
}

#[test]
fn check_syntax_accepts_valid_and_locates_invalid_without_running() {
    assert_eq!(
        check_syntax("ok.syncjs", "while (true) {}\nExit(1)"),
        Ok(())
    );
    let e = check_syntax("bad.syncjs", "var ok = 1;\n\nif (ok {\n}").unwrap_err();
    assert!(e.message.starts_with("SyntaxError"), "{}", e.message);
    assert_eq!((e.file.as_str(), e.line), ("bad.syncjs", 3));
}

#[test]
fn scripts_are_sloppy_global_scripts() {
    let (outcome, log) = run("undeclared = 5; var g = 1; Log(globalThis.g + undeclared)");
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(log, "6");
}

#[test]
fn async_functions_run_to_completion() {
    let (outcome, log) = run("async function f() { await null; Log('done'); } f();");
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(log, "done");
}

#[test]
fn halt_stops_a_busy_loop_within_100_ms() {
    let job = job_with(MemoryHost::new());
    let halt = job.halt.clone();
    let raiser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let at = Instant::now();
        halt.raise();
        at
    });
    let outcome = run_job(
        spec("while (true) {}"),
        job.scope.clone(),
        Limits::default(),
    );
    let halted_after = raiser.join().unwrap().elapsed();
    assert_eq!(outcome, Outcome::Halted);
    assert!(
        halted_after < Duration::from_millis(100),
        "took {halted_after:?}"
    );
    assert!(job.log.text().contains("halted"), "{}", job.log.text());
    assert_eq!(outcome.exit_code(), 1);
}

#[test]
fn halt_cannot_be_caught_by_the_script() {
    let job = job_with(MemoryHost::new());
    let halt = job.halt.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        halt.raise();
    });
    let outcome = run_job(
        spec(
            "for (;;) { try { while (true) {} } catch (e) { Log('caught ' + e); } finally { Log('finally'); } }",
        ),
        job.scope.clone(),
        Limits::default(),
    );
    assert_eq!(outcome, Outcome::Halted);
    let log = job.log.text();
    assert!(!log.contains("caught") && !log.contains("finally"), "{log}");
}

#[test]
fn halt_wakes_sleep_at_once_and_sets_halt_signal_received() {
    let job = job_with(MemoryHost::new());
    let halt = job.halt.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        halt.raise();
    });
    let start = Instant::now();
    let outcome = run_job(
        spec(
            "Log('before ' + HaltSignalReceived); Sleep(60000); Log('after ' + HaltSignalReceived);",
        ),
        job.scope.clone(),
        Limits::default(),
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(outcome, Outcome::Halted);
    let log = job.log.text();
    assert!(
        log.contains("before false") && log.contains("after true"),
        "{log}"
    );
}

#[test]
fn wait_for_halt_signal_blocks_until_halt_then_script_can_clean_up() {
    let job = job_with(MemoryHost::new());
    let halt = job.halt.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        halt.raise();
    });
    let start = Instant::now();
    let outcome = run_job(
        spec("WaitForHaltSignal(); if (HaltSignalReceived) Log('cleaning up');"),
        job.scope.clone(),
        Limits::default(),
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(140) && took < Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(outcome, Outcome::Halted);
    assert!(job.log.text().contains("cleaning up"));
}

#[test]
fn halt_signal_received_is_a_read_only_value() {
    let (outcome, log) =
        run("HaltSignalReceived = true; Log(typeof HaltSignalReceived, HaltSignalReceived)");
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(log, "boolean false");
}

#[test]
fn sleep_waits_about_the_time_asked() {
    let start = Instant::now();
    let (outcome, _) = run("Sleep(120); Sleep(); Sleep(-5)");
    assert_eq!(outcome, Outcome::Succeeded);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(120) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn timeout_stops_a_busy_loop_and_names_the_setting() {
    let job = job_with(MemoryHost::new());
    let limits = Limits {
        timeout: Some(Duration::from_millis(300)),
        ..Limits::default()
    };
    let start = Instant::now();
    let outcome = run_job(
        spec("try { while (true) {} } catch (e) { Log('caught'); }"),
        job.scope.clone(),
        limits,
    );
    let took = start.elapsed();
    assert_eq!(
        outcome,
        Outcome::TimedOut {
            limit: Duration::from_millis(300)
        }
    );
    assert!(took < Duration::from_millis(800), "{took:?}");
    let log = job.log.text();
    assert!(!log.contains("caught"));
    assert!(
        log.contains("time limit of 0.300 s (setting job-timeout-seconds)"),
        "{log}"
    );
}

#[test]
fn timeout_cuts_a_long_sleep_short() {
    let job = job_with(MemoryHost::new());
    let limits = Limits {
        timeout: Some(Duration::from_secs(1)),
        ..Limits::default()
    };
    let start = Instant::now();
    let outcome = run_job(
        spec("Sleep(60000); Log('after');"),
        job.scope.clone(),
        limits,
    );
    assert!(start.elapsed() < Duration::from_millis(1500));
    assert_eq!(
        outcome,
        Outcome::TimedOut {
            limit: Duration::from_secs(1)
        }
    );
    assert!(
        outcome
            .to_string()
            .contains("time limit of 1 s (setting job-timeout-seconds)")
    );
    assert!(!job.log.text().contains("after"));
}

#[test]
fn memory_limit_fails_the_job_and_names_the_setting() {
    let job = job_with(MemoryHost::new());
    let limits = Limits {
        memory_bytes: 16 * 1024 * 1024,
        ..Limits::default()
    };
    let outcome = run_job(
        spec("var a = []; while (true) { a.push('x'.repeat(1000) + a.length); }"),
        job.scope.clone(),
        limits,
    );
    assert_eq!(
        outcome,
        Outcome::OutOfMemory {
            limit_bytes: 16 * 1024 * 1024
        }
    );
    assert!(
        job.log
            .text()
            .contains("memory limit of 16 MiB (setting job-memory-limit-mb)"),
        "{}",
        job.log.text()
    );
}

#[test]
fn runaway_recursion_fails_with_a_stack_error_not_a_crash() {
    let (outcome, _) = run("function f(n) { return f(n + 1) + 1; } f(0);");
    let Outcome::Threw(e) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(e.message.contains("stack"), "{}", e.message);
}

#[test]
fn limits_come_from_settings_and_bad_values_name_the_setting() {
    let settings = |pairs: &'static [(&'static str, &'static str)]| {
        move |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(
        Limits::from_settings(settings(&[])).unwrap(),
        Limits::default()
    );
    let l = Limits::from_settings(settings(&[
        ("job-memory-limit-mb", "64"),
        ("job-timeout-seconds", "30"),
    ]))
    .unwrap();
    assert_eq!(l.memory_bytes, 64 * 1024 * 1024);
    assert_eq!(l.timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        Limits::from_settings(settings(&[("job-timeout-seconds", "0")]))
            .unwrap()
            .timeout,
        None
    );
    let e = Limits::from_settings(settings(&[("job-memory-limit-mb", "lots")])).unwrap_err();
    assert!(e.to_string().contains("job-memory-limit-mb"), "{e}");
}

#[test]
fn unhandled_promise_rejection_fails_the_job_but_a_handled_one_does_not() {
    let (outcome, log) = run("async function f() { await null;\n throw new Error('late'); }\nf();");
    let Outcome::Threw(e) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        e.message
            .contains("unhandled promise rejection: Error: late"),
        "{}",
        e.message
    );
    assert_eq!(e.line, 2);
    assert!(log.contains("late"));
    let (outcome, log) = run(
        "async function f() { throw new Error('x'); } f().catch(function (e) { Log('handled ' + e.message); });",
    );
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert_eq!(log, "handled x");
}

#[test]
fn exit_inside_an_async_function_ends_the_job() {
    let (outcome, log) = run(
        "async function f() { await null; Exit(5); Log('not here'); } f(); Promise.resolve().then(function () { Log('then'); });",
    );
    assert_eq!(outcome, Outcome::Exited { code: 5 }, "{log}");
    assert!(!log.contains("not here"), "{log}");
}

#[test]
fn halt_stops_a_runaway_regular_expression() {
    let job = job_with(MemoryHost::new());
    let halt = job.halt.clone();
    let raiser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let at = Instant::now();
        halt.raise();
        at
    });
    let outcome = run_job(
        spec("/(a+)+b/.test('a'.repeat(64)); Log('finished');"),
        job.scope.clone(),
        Limits::default(),
    );
    let took = raiser.join().unwrap().elapsed();
    assert_eq!(outcome, Outcome::Halted);
    assert!(took < Duration::from_millis(100), "took {took:?}");
}
