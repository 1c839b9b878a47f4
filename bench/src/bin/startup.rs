//! Startup and CPU benchmark of `aft run`, beside `node` and `python3` in the same run.
//!
//! `cargo run --release -p aft-bench --bin startup [-- RUNS]`
//!
//! Needs a release build of aft (`cargo build --release -p aft`; this bench builds it if
//! `target/release/aft` is missing, or set `AFT_BIN`). Prints, for a one-line script that
//! logs a parameter, the median wall time, the median CPU time (user + system, the steadier
//! figure on a busy machine) and the peak RSS of `aft run`, `node -e` and `python3 -c`; the
//! same for `aft --version` (loading the binary and parsing the command line, the floor under
//! every command); then the wall time of a CPU-bound script (recursion, strings, JSON, regex)
//! in aft and in node.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aft_bench::{aft_binary, mib, ms, reap, row};

/// The one-liner every contender runs: print parameter `x`.
const ONE_LINER: &str = r#"Log(Param("x"))"#;

/// A CPU-bound script both aft and node run unchanged.
const CPU_SCRIPT: &str = r#"
var print = typeof Log === "function" ? Log : console.log;
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
var total = fib(27);
var parts = [];
for (var i = 0; i < 200000; i++) parts.push("item-" + i + "-" + (i * 7919 % 1000));
var joined = parts.join(",");
var split = joined.split(",");
var doc = [];
for (var j = 0; j < 20000; j++) doc.push({ id: j, name: "file" + j + ".csv", size: j * 1024, tags: ["a", "b", String(j)] });
var round = JSON.parse(JSON.stringify(doc));
var re = /^item-(\d+)-(\d{3})$/;
var matched = 0;
for (var k = 0; k < split.length; k++) { var m = re.exec(split[k]); if (m && m[2] === "042") matched++; }
print(total + " " + split.length + " " + round.length + " " + matched);
"#;

/// Wall time, CPU time and peak RSS of one child process.
struct Sample {
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: u64,
}

/// What [`measure`] reports: median wall time, median CPU time, largest peak RSS (KiB).
struct Measured {
    wall: Duration,
    cpu: Duration,
    rss: u64,
}

/// Run `cmd` once, silently, and measure it with `wait4`.
///
/// Not under GNU time like the transfer benches ([`aft_bench::measure_child`]): its start
/// would be in a wall time of a few milliseconds. So a child's peak RSS here is at least
/// the bench's own peak (the child shares the bench's memory until it runs the program),
/// which the bench prints beside the figures as their floor.
fn run_once(cmd: &mut Command) -> anyhow::Result<Sample> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn()?;
    let reaped = reap(&child)?;
    let wall = start.elapsed();
    if !reaped.exited_ok() {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr {
            use std::io::Read;
            let _ = stderr.read_to_string(&mut err);
        }
        anyhow::bail!("{cmd:?} failed (status {}): {err}", reaped.status);
    }
    Ok(Sample {
        wall,
        cpu: reaped.cpu,
        peak_rss_kib: reaped.peak_rss_kib,
    })
}

/// This process's peak RSS so far, in KiB.
fn own_peak_rss_kib() -> u64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc == 0 {
        usage.ru_maxrss.max(0) as u64
    } else {
        0
    }
}

/// Median wall and CPU time and the largest peak RSS over `runs` runs (after one warm-up).
fn measure(runs: usize, mut make: impl FnMut() -> Command) -> anyhow::Result<Measured> {
    run_once(&mut make())?;
    let (mut walls, mut cpus) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let mut rss = 0;
    for _ in 0..runs {
        let s = run_once(&mut make())?;
        walls.push(s.wall);
        cpus.push(s.cpu);
        rss = rss.max(s.peak_rss_kib);
    }
    walls.sort();
    cpus.sort();
    Ok(Measured {
        wall: walls[walls.len() / 2],
        cpu: cpus[cpus.len() / 2],
        rss,
    })
}

/// The python3 interpreter itself: `python3` on PATH may be a version-manager shim (a
/// shell script) whose own startup would be charged to Python.
fn real_python() -> PathBuf {
    Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(31);
    let aft = aft_binary()?;
    let dir = std::env::temp_dir().join(format!("aft-bench-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let status = Command::new(&aft)
        .arg("--data")
        .arg(&data)
        .args(["settings", "set", "allow-cli-run", "true"])
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(
        status.success(),
        "aft settings set allow-cli-run true failed"
    );
    let one_liner = dir.join("one.syncjs");
    std::fs::write(&one_liner, ONE_LINER)?;
    let cpu = dir.join("cpu.js");
    std::fs::write(&cpu, CPU_SCRIPT)?;

    println!("aft run vs node vs python3, {runs} runs each (median wall, max peak RSS)");
    println!("one-liner: {ONE_LINER}  with x = \"hello\"");
    let aft_one = measure(runs, || {
        let mut c = Command::new(&aft);
        c.arg("--data")
            .arg(&data)
            .arg("run")
            .arg("-f")
            .arg(&one_liner);
        c.args(["-p", r#"{"x":"hello"}"#]);
        c
    })?;
    let node_one = measure(runs, || {
        let mut c = Command::new("node");
        c.args(["-e", "console.log(process.argv[1])", "hello"]);
        c
    });
    let python = real_python();
    let python_one = measure(runs, || {
        let mut c = Command::new(&python);
        c.args(["-c", "import sys; print(sys.argv[1])", "hello"]);
        c
    });
    let show = |r: &anyhow::Result<Measured>, f: fn(&Measured) -> String| match r {
        Ok(v) => f(v),
        Err(e) => format!("n/a ({e})"),
    };
    for (name, peer) in [("node", &node_one), ("python3", &python_one)] {
        row(
            "one-liner wall (median)",
            &ms(aft_one.wall),
            name,
            &show(peer, |v| ms(v.wall)),
        );
        row(
            "one-liner CPU user+sys (median)",
            &ms(aft_one.cpu),
            name,
            &show(peer, |v| ms(v.cpu)),
        );
        row(
            "one-liner peak RSS",
            &mib(aft_one.rss),
            name,
            &show(peer, |v| mib(v.rss)),
        );
    }
    // What loading the binary and parsing the command line cost alone: the floor under
    // every aft command, whatever it does next.
    let aft_version = measure(runs, || {
        let mut c = Command::new(&aft);
        c.arg("--version");
        c
    })?;
    println!(
        "{:<44} aft {:>10}   CPU {:>10}   peak RSS {:>9}",
        "start-up floor (aft --version)",
        ms(aft_version.wall),
        ms(aft_version.cpu),
        mib(aft_version.rss)
    );
    println!(
        "{:<44} {:>18}",
        "this bench's own peak RSS (floor of each)",
        mib(own_peak_rss_kib())
    );
    let goal_ok = aft_one.wall <= Duration::from_millis(5) && aft_one.rss <= 12 * 1024;
    println!(
        "goal (<= 5 ms, <= 12 MiB): {}",
        if goal_ok { "met" } else { "NOT met" }
    );

    let cpu_runs = (runs / 6).max(3);
    println!(
        "\nCPU-bound script (fib(27), 200k strings, 20k-object JSON round trip, regex), {cpu_runs} runs"
    );
    let aft_cpu = measure(cpu_runs, || {
        let mut c = Command::new(&aft);
        c.arg("--data").arg(&data).arg("run").arg("-f").arg(&cpu);
        c
    })?;
    let node_cpu = measure(cpu_runs, || {
        let mut c = Command::new("node");
        c.arg(&cpu);
        c
    });
    row(
        "cpu script wall (median)",
        &ms(aft_cpu.wall),
        "node",
        &show(&node_cpu, |v| ms(v.wall)),
    );
    row(
        "cpu script peak RSS",
        &mib(aft_cpu.rss),
        "node",
        &show(&node_cpu, |v| mib(v.rss)),
    );

    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
