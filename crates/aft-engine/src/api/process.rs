//! Running programs from scripts: `RunProgram(program, args, options)`.
//!
//! No shell is involved unless `Shell: true` is asked for. The program runs in its own
//! process group so that a timeout or a job halt kills it and everything it started.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Value};
use serde_json::json;

use super::libutil::{opt_bool, opt_f64, opt_str, options, set_global, string_list, throw, to_js};
use crate::{HaltFlag, JobScope, LogLevel};

/// The timeout when a script gives none: 10 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Most bytes of stdout (and of stderr) kept; the rest is read and dropped.
pub const MAX_CAPTURE: usize = 16 * 1024 * 1024;

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct ProgramSpec {
    /// The program (a path, or a name looked up in `PATH`); with `shell`, a command line.
    pub program: String,
    /// Its arguments, passed as they are (no quoting, no globbing).
    pub args: Vec<String>,
    /// The working folder.
    pub dir: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Start from an empty environment (not even the variables kept by default).
    pub clear_env: bool,
    /// Hand the program the job's whole environment, not only [`KEPT_VARIABLES`].
    pub inherit_env: bool,
    /// Run `program` through `/bin/sh -c` (args become `$1`, `$2`, ...).
    pub shell: bool,
    /// Bytes written to the program's standard input (then closed).
    pub input: Option<Vec<u8>>,
    /// Kill the program after this long.
    pub timeout: Duration,
}

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramResult {
    /// Exit code; -1 when it did not start, was killed or died from a signal.
    pub exit_code: i32,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
    /// Whether it was killed for running past its timeout.
    pub timed_out: bool,
    /// Why it did not run to a normal exit, if it did not.
    pub error: Option<String>,
}

impl ProgramResult {
    fn failed(error: String) -> Self {
        Self {
            exit_code: -1,
            stdout: String::new(),
            stderr: String::new(),
            timed_out: false,
            error: Some(error),
        }
    }
}

fn capture(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = MAX_CAPTURE.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        kept
    })
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // The child leads its own group (process_group(0)), so its pid is the group id.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The variables a program gets from the job's environment by default.
pub const KEPT_VARIABLES: &[&str] = &["PATH", "HOME", "LANG"];

/// Run a program to its end, its timeout or the job's halt, whichever comes first.
pub fn run_program(spec: &ProgramSpec, halt: &HaltFlag) -> ProgramResult {
    let mut cmd = if spec.shell {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(&spec.program).arg("sh").args(&spec.args);
        c
    } else {
        let mut c = Command::new(&spec.program);
        c.args(&spec.args);
        c
    };
    // The service's environment may hold AFT_SECRET_KEY or a database URL with its
    // password: a program gets only what it needs unless the script asks for more.
    if !spec.inherit_env {
        cmd.env_clear();
        if !spec.clear_env {
            for name in KEPT_VARIABLES {
                if let Some(value) = std::env::var_os(name) {
                    cmd.env(name, value);
                }
            }
        }
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &spec.dir {
        cmd.current_dir(dir);
    }
    cmd.stdin(if spec.input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let place = spec
                .dir
                .as_deref()
                .map(|d| format!(" in {d}"))
                .unwrap_or_default();
            return ProgramResult::failed(format!("cannot start \"{}\"{place}: {e}", spec.program));
        }
    };
    let pid = child.id();
    let out = child.stdout.take().map(capture);
    let err = child.stderr.take().map(capture);
    let feeder = match (child.stdin.take(), spec.input.clone()) {
        (Some(mut stdin), Some(data)) => Some(std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        })),
        _ => None,
    };
    let deadline = Instant::now() + spec.timeout;
    let mut timed_out = false;
    let mut error = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => {
                error = Some(format!("cannot wait for \"{}\": {e}", spec.program));
                kill_group(pid);
                break child.wait().ok();
            }
        }
        if Instant::now() >= deadline {
            timed_out = true;
            error = Some(format!(
                "\"{}\" was still running after {:?} and was killed (raise Timeout if it needs longer)",
                spec.program, spec.timeout
            ));
            kill_group(pid);
            break child.wait().ok();
        }
        if halt.wait(Some(Duration::from_millis(20))) {
            error = Some(format!(
                "\"{}\" was killed because the job was halted",
                spec.program
            ));
            kill_group(pid);
            break child.wait().ok();
        }
    };
    // Grandchildren may hold the pipes open; the group kill above ends them on timeout,
    // and after a normal exit we kill leftovers too so the readers finish.
    if status.is_some() && error.is_none() {
        kill_group(pid);
    }
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let stdout = out
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    let stderr = err
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    let exit_code = match (&error, status.and_then(|s| s.code())) {
        (None, Some(code)) => code,
        (None, None) => {
            error = Some(format!("\"{}\" was killed by a signal", spec.program));
            -1
        }
        _ => -1,
    };
    ProgramResult {
        exit_code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        timed_out,
        error,
    }
}

fn spec_from_js<'js>(
    ctx: &Ctx<'js>,
    program: String,
    args: Option<Value<'js>>,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<ProgramSpec> {
    const F: &str = "RunProgram";
    if program.is_empty() {
        return Err(throw(ctx, F, "the program is empty"));
    }
    let args = string_list(ctx, F, "argument", args)?;
    let o = options(ctx, F, opts)?;
    let mut env = Vec::new();
    if let Some(e) = o.get("Env") {
        let Some(map) = e.as_object() else {
            return Err(throw(ctx, F, "Env must be an object like {LANG: \"C\"}"));
        };
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            env.push((k.clone(), v));
        }
    }
    let timeout = match opt_f64(&o, "Timeout") {
        Some(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s),
        Some(_) => {
            return Err(throw(
                ctx,
                F,
                "Timeout must be a positive number of seconds",
            ));
        }
        None => DEFAULT_TIMEOUT,
    };
    Ok(ProgramSpec {
        program,
        args,
        dir: opt_str(&o, "Dir").map(str::to_string),
        env,
        clear_env: opt_bool(&o, "ClearEnv"),
        inherit_env: opt_bool(&o, "InheritEnv"),
        shell: opt_bool(&o, "Shell"),
        input: opt_str(&o, "Input").map(|s| s.as_bytes().to_vec()),
        timeout,
    })
}

/// Register `RunProgram`.
pub fn register<'js>(ctx: &Ctx<'js>, scope: &JobScope) -> rquickjs::Result<()> {
    let s = scope.clone();
    set_global(
        ctx,
        "RunProgram",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, program: String, args: Opt<Value<'js>>, opts: Opt<Value<'js>>| {
                let spec = spec_from_js(&ctx, program, args.0, opts.0)?;
                let r = run_program(&spec, &s.halt);
                if let Some(e) = &r.error {
                    s.log(LogLevel::Warn, &format!("RunProgram: {e}"));
                }
                to_js(
                    &ctx,
                    &json!({
                        "Ok": r.error.is_none() && r.exit_code == 0,
                        "ExitCode": r.exit_code,
                        "Stdout": r.stdout,
                        "Stderr": r.stderr,
                        "TimedOut": r.timed_out,
                        "Error": r.error.unwrap_or_default(),
                    }),
                )
            },
        )?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: &str, args: &[&str]) -> ProgramSpec {
        ProgramSpec {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(20),
            ..Default::default()
        }
    }

    #[test]
    fn captures_stdout_stderr_and_exit_code_without_a_shell() {
        let mut s = spec("/bin/sh", &["-c", "echo out; echo err >&2; exit 3"]);
        s.env.push(("X".into(), "1".into()));
        let r = run_program(&s, &HaltFlag::new());
        assert_eq!(
            (r.exit_code, r.stdout.as_str(), r.stderr.as_str()),
            (3, "out\n", "err\n")
        );
        assert!(r.error.is_none());
        // Arguments are not interpreted by a shell.
        let r = run_program(&spec("echo", &["$HOME", "*"]), &HaltFlag::new());
        assert_eq!(r.stdout, "$HOME *\n");
    }

    #[test]
    fn env_dir_input_and_shell_mode() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec("echo $GREETING $1 && pwd && cat", &["arg1"]);
        s.shell = true;
        s.env.push(("GREETING".into(), "hi".into()));
        s.dir = Some(dir.path().to_string_lossy().into_owned());
        s.input = Some(b"from stdin".to_vec());
        let r = run_program(&s, &HaltFlag::new());
        let canon = dir.path().canonicalize().unwrap();
        assert_eq!(
            r.stdout,
            format!("hi arg1\n{}\nfrom stdin", canon.display())
        );
    }

    #[test]
    fn a_hanging_program_and_its_children_are_killed_at_the_timeout() {
        let mut s = spec("/bin/sh", &["-c", "sleep 30 & sleep 30"]);
        s.timeout = Duration::from_millis(300);
        let start = Instant::now();
        let r = run_program(&s, &HaltFlag::new());
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(r.timed_out);
        assert_eq!(r.exit_code, -1);
        assert!(r.error.unwrap().contains("was killed"));
    }

    #[test]
    fn halt_kills_the_program() {
        let halt = HaltFlag::new();
        let h = halt.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            h.raise();
        });
        let r = run_program(&spec("sleep", &["30"]), &halt);
        assert!(r.error.unwrap().contains("halted"));
    }

    #[test]
    fn a_missing_program_says_so() {
        let r = run_program(&spec("/no/such/program", &[]), &HaltFlag::new());
        assert_eq!(r.exit_code, -1);
        assert!(
            r.error
                .unwrap()
                .contains("cannot start \"/no/such/program\"")
        );
    }
}
