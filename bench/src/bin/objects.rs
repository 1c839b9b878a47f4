//! Object store benchmark: aft as users run it (the whole `aft run` process of an
//! AFT!-style script: `new S3Client()`, `Connect()`, `Upload`/`Download`) beside the whole
//! processes of `rclone copy` and the AWS CLI (`aws s3 cp`), against the same S3 server,
//! `s3s-fs` (a fast S3 server on a local folder; moto is too slow to tell clients apart),
//! which the bench starts on a free loopback port with a fresh folder of its own. Each
//! figure is the median of `--reps` runs with the tools taking turns; beside each time, the
//! peak RSS and CPU time (user + system) of that process, measured under GNU time (see
//! `aft_bench::measure_child`).
//!
//! Install the server once (`cargo install s3s-fs --version 0.14.1 --features binary`), then:
//! `cargo run --release -p aft-bench --bin objects -- [--size MIB] [--files N] [--reps N]
//! [--small-reps N] [--streams N] [--big-only] [--small-only] [--no-aws] [--no-single]
//! [--base AFT_BINARY] [--host ADDR] [--transfers N]`
//! (defaults: a 1024 MiB file, 5,000 files of 8 KiB, 3 runs of each, 4 streams). One big
//! file moves with the same number of streams in every tool: aft's `Streams`, rclone's
//! `--s3-upload-concurrency` and `--multi-thread-streams`, the AWS CLI's
//! `max_concurrent_requests`, all with 8 MiB parts. Small files move with each tool's own
//! default number of files at once. Unless `--no-single`, aft also runs the big file with
//! `Streams = 1`, on a row of its own, to show what the parallel parts gain. The `aft`
//! binary is `target/release/aft` (or `AFT_BIN`), with a fresh data directory (so
//! `local-fsync` is on: downloads are flushed to disk before their rename). `--host` serves
//! on another loopback address (default 127.0.0.1), e.g. one given a delay with `tc netem`
//! to measure at a round trip of a real network without slowing the rest of loopback.
//! `--transfers N` also runs rclone with `--transfers N` on the small files (its default
//! is 4; aft moves up to 16 small files at once to an object store), on a row of its own.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aft_bench::{ChildStats, aft_binary, measure_child};
use anyhow::{Context, bail};

const KEY_ID: &str = "AKIAAFTBENCH";
const SECRET: &str = "aft-bench-secret-key";
const REGION: &str = "us-east-1";
const BUCKET: &str = "bench";

struct Args {
    size_mib: u64,
    files: usize,
    reps: usize,
    small_reps: Option<usize>,
    streams: usize,
    big_only: bool,
    small_only: bool,
    aws: bool,
    single: bool,
    base: Option<PathBuf>,
    host: String,
    transfers: Option<usize>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        size_mib: 1024,
        files: 5000,
        reps: 3,
        small_reps: None,
        streams: 4,
        big_only: false,
        small_only: false,
        aws: true,
        single: true,
        base: None,
        host: "127.0.0.1".into(),
        transfers: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> anyhow::Result<u64> {
            it.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse()
                .with_context(|| format!("{name} needs a whole number"))
        };
        match arg.as_str() {
            "--size" => a.size_mib = num("--size")?,
            "--files" => a.files = num("--files")? as usize,
            "--reps" => a.reps = (num("--reps")? as usize).max(1),
            "--small-reps" => a.small_reps = Some((num("--small-reps")? as usize).max(1)),
            "--streams" => a.streams = (num("--streams")? as usize).clamp(1, 64),
            "--big-only" => a.big_only = true,
            "--small-only" => a.small_only = true,
            "--no-aws" => a.aws = false,
            "--no-single" => a.single = false,
            "--base" => a.base = it.next().map(PathBuf::from),
            "--host" => a.host = it.next().context("--host needs an address")?,
            "--transfers" => a.transfers = Some((num("--transfers")? as usize).max(1)),
            other => bail!("unknown argument {other}; see the file's doc comment"),
        }
    }
    Ok(a)
}

/// `s3s-fs` serving a fresh folder on a free loopback port; stopped when dropped.
struct S3sFs {
    child: Child,
    endpoint: String,
    _root: tempfile::TempDir,
}

impl S3sFs {
    fn start(host: &str) -> anyhow::Result<Self> {
        let root = tempfile::tempdir_in(std::env::temp_dir())?;
        std::fs::create_dir_all(root.path().join(BUCKET))?;
        let port = std::net::TcpListener::bind((host, 0))?.local_addr()?.port();
        let bin = which("s3s-fs").context(
            "s3s-fs is not installed: cargo install s3s-fs --version 0.14.1 --features binary",
        )?;
        let child = Command::new(bin)
            .args(["--host", host, "--port", &port.to_string()])
            .args(["--access-key", KEY_ID, "--secret-key", SECRET])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting s3s-fs")?;
        let mut server = S3sFs {
            child,
            endpoint: format!("http://{host}:{port}"),
            _root: root,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((host, port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!("s3s-fs exited at start: {status}");
            }
            anyhow::ensure!(Instant::now() < deadline, "s3s-fs did not listen in 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on the PATH, or in ~/.cargo/bin.
fn which(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The tools and the bench's scratch folder.
struct Tools {
    endpoint: String,
    aft: PathBuf,
    base: Option<PathBuf>,
    /// aft's data directory (a fresh one: default settings).
    data: PathBuf,
    scratch: PathBuf,
    streams: usize,
}

impl Tools {
    /// `aft run` of a script calling `method(from, to)` on an `S3Client` with `streams`.
    fn aft_run(
        &self,
        bin: &Path,
        method: &str,
        from: &str,
        to: &str,
        streams: usize,
    ) -> anyhow::Result<ChildStats> {
        let q = |s: &str| serde_json::to_string(s).expect("a string");
        let script = format!(
            r#"var cli = new S3Client();
cli.Endpoint = {endpoint};
cli.Bucket = {bucket};
cli.Region = {region};
cli.APIKeyID = {key};
cli.APIKeySecret = {secret};
cli.Streams = {streams};
cli.Options.UploadPolicy = AlwaysOverwrite;
cli.Options.DownloadPolicy = AlwaysOverwrite;
if (!cli.Connect()) {{ Log("cannot connect: " + cli.LastError()); Exit(1); }}
if (!cli.{method}({from}, {to})) {{ Log("{method} failed: " + cli.LastError()); Exit(1); }}
cli.Close();
"#,
            endpoint = q(&self.endpoint),
            bucket = q(BUCKET),
            region = q(REGION),
            key = q(KEY_ID),
            secret = q(SECRET),
            from = q(from),
            to = q(to),
        );
        let file = self.scratch.join(format!("{method}.js"));
        std::fs::write(&file, script)?;
        let log = self.scratch.join("aft-run.log");
        measure_child(
            Command::new(bin)
                .arg("--data")
                .arg(&self.data)
                .args(["run", "-f"])
                .arg(&file),
            std::fs::File::create(&log)?,
        )
        .with_context(|| std::fs::read_to_string(&log).unwrap_or_default())
    }

    /// `rclone copy FROM TO`, `remote:` standing for the bucket; `big` sets the streams,
    /// `transfers` the files at once (else rclone's default, 4).
    fn rclone(
        &self,
        from: &str,
        to: &str,
        big: bool,
        transfers: Option<usize>,
    ) -> anyhow::Result<ChildStats> {
        let fix = |p: &str| {
            p.strip_prefix("remote:")
                .map(|r| format!(":s3:{BUCKET}/{r}"))
                .unwrap_or(p.to_string())
        };
        let streams = self.streams.to_string();
        let mut cmd = Command::new("rclone");
        // --ignore-times: copy even what is already there, as the other tools do each run.
        cmd.args(["copy", "--ignore-times", "--config", "/dev/null"])
            .args(["--s3-no-check-bucket", "--s3-chunk-size", "8M"])
            .env("RCLONE_S3_PROVIDER", "Other")
            .env("RCLONE_S3_ENV_AUTH", "false")
            .env("RCLONE_S3_ACCESS_KEY_ID", KEY_ID)
            .env("RCLONE_S3_SECRET_ACCESS_KEY", SECRET)
            .env("RCLONE_S3_REGION", REGION)
            .env("RCLONE_S3_ENDPOINT", &self.endpoint)
            .env("RCLONE_S3_FORCE_PATH_STYLE", "true")
            // rclone's AWS SDK fails on a CA bundle with its own HTTP transport; plain http.
            .env_remove("AWS_CA_BUNDLE");
        if big {
            cmd.args(["--s3-upload-concurrency", &streams])
                .args(["--multi-thread-streams", &streams]);
        }
        if let Some(n) = transfers {
            cmd.args(["--transfers", &n.to_string()]);
        }
        measure_child(cmd.arg(fix(from)).arg(fix(to)), Stdio::null())
    }

    /// `aws s3 cp FROM TO` (`--recursive` for a folder), `s3://` paths in the bucket; `big`
    /// sets `max_concurrent_requests` to the streams, else the CLI's default (10).
    fn aws(&self, from: &str, to: &str, recursive: bool, big: bool) -> anyhow::Result<ChildStats> {
        let config = self
            .scratch
            .join(if big { "aws-big.cfg" } else { "aws.cfg" });
        let concurrency = if big {
            format!("  max_concurrent_requests = {}\n", self.streams)
        } else {
            String::new()
        };
        std::fs::write(
            &config,
            format!(
                "[default]\ns3 =\n{concurrency}  multipart_chunksize = 8MB\n  multipart_threshold = 8MB\n"
            ),
        )?;
        let fix = |p: &str| {
            p.strip_prefix("remote:")
                .map(|r| format!("s3://{BUCKET}/{r}"))
                .unwrap_or(p.to_string())
        };
        let mut cmd = Command::new("aws");
        cmd.args(["--endpoint-url", &self.endpoint, "--only-show-errors"])
            .args(["s3", "cp"])
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if recursive {
            cmd.arg("--recursive");
        }
        measure_child(cmd.arg(fix(from)).arg(fix(to)), Stdio::null())
    }
}

/// The middle of several measurements of the same thing.
fn median<T: PartialOrd + Copy>(mut runs: Vec<T>) -> T {
    runs.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    runs[runs.len() / 2]
}

/// The medians of one tool's runs: wall time, peak RSS, CPU time.
#[derive(Clone, Copy)]
struct Medians {
    wall: Duration,
    rss_kib: u64,
    cpu: Duration,
}

fn medians(runs: &[ChildStats]) -> Option<Medians> {
    (!runs.is_empty()).then(|| Medians {
        wall: median(runs.iter().map(|r| r.wall).collect()),
        rss_kib: median(runs.iter().map(|r| r.peak_rss_kib).collect()),
        cpu: median(runs.iter().map(|r| r.cpu).collect()),
    })
}

fn header() {
    println!(
        "{:<28} {:>11} {:>11} {:>11} {:>13} {:>26} {:>20}",
        "figure (median)",
        "aft run",
        "rclone",
        "aws s3 cp",
        "aft/faster",
        "peak RSS aft/rclone/aws",
        "CPU s aft/rcl/aws"
    );
}

/// One figure: aft's and the peers' medians, aft's time over the faster peer's, memory, CPU.
fn report(what: &str, bytes: Option<u64>, aft: Medians, rclone: Medians, aws: Option<Medians>) {
    let show = |m: Option<Medians>| match (m, bytes) {
        (None, _) => "-".to_string(),
        (Some(m), Some(b)) => format!("{:.1} MiB/s", b as f64 / 1048576.0 / m.wall.as_secs_f64()),
        (Some(m), None) => format!("{:.2} s", m.wall.as_secs_f64()),
    };
    let (faster, name) = match aws {
        Some(w) if w.wall < rclone.wall => (w.wall, "aws"),
        _ => (rclone.wall, "rclone"),
    };
    let each = |f: &dyn Fn(Medians) -> String| {
        [Some(aft), Some(rclone), aws]
            .iter()
            .map(|m| m.map_or("-".to_string(), f))
            .collect::<Vec<_>>()
            .join("/")
    };
    println!(
        "{what:<28} {:>11} {:>11} {:>11} {:>6.2} {name:<6} {:>26} {:>20}",
        show(Some(aft)),
        show(Some(rclone)),
        show(aws),
        aft.wall.as_secs_f64() / faster.as_secs_f64(),
        format!(
            "{} MiB",
            each(&|m| format!("{:.1}", m.rss_kib as f64 / 1024.0))
        ),
        each(&|m| format!("{:.2}", m.cpu.as_secs_f64())),
    );
}

/// One transfer, the tools taking turns.
struct Transfer<'a> {
    what: String,
    bytes: Option<u64>,
    upload: bool,
    /// aft's source and target.
    aft: (String, String),
    /// rclone's source and target (`remote:` is the bucket).
    rcl: (String, String),
    /// The AWS CLI's source and target (`remote:` is the bucket) and `--recursive`.
    aws: (String, String, bool),
    /// A local folder emptied before each download.
    clear: Option<&'a Path>,
    reps: usize,
}

fn run_transfer(tools: &Tools, t: &Transfer<'_>, a: &Args) -> anyhow::Result<()> {
    let fresh = || -> anyhow::Result<()> {
        if let Some(dir) = t.clear {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir)?;
        }
        aft_bench::flush_writes()
    };
    let big = t.bytes.is_some();
    let method = if t.upload { "Upload" } else { "Download" };
    let (mut f, mut r, mut w, mut one, mut b) = (vec![], vec![], vec![], vec![], vec![]);
    let mut rn = vec![];
    let transfers = a.transfers.filter(|_| !big);
    for i in 0..t.reps {
        // Each upload goes to a prefix of its own (`%N`): s3s-fs answers a HEAD of a key
        // that is one of its folders with 500, which would fail the check of the target.
        let n = |p: &str, tag: &str| p.replace("-%N", &format!("{tag}-{i}"));
        fresh()?;
        let aft_to = n(&t.aft.1, "");
        f.push(tools.aft_run(&tools.aft, method, &t.aft.0, &aft_to, tools.streams)?);
        if big && a.single {
            fresh()?;
            one.push(tools.aft_run(&tools.aft, method, &t.aft.0, &n(&t.aft.1, "1"), 1)?);
        }
        if let Some(base) = &tools.base {
            fresh()?;
            let base_to = n(&t.aft.1, "b");
            b.push(tools.aft_run(base, method, &t.aft.0, &base_to, tools.streams)?);
        }
        fresh()?;
        r.push(tools.rclone(&t.rcl.0, &n(&t.rcl.1, ""), big, None)?);
        if transfers.is_some() {
            fresh()?;
            rn.push(tools.rclone(&t.rcl.0, &n(&t.rcl.1, "t"), big, transfers)?);
        }
        if a.aws {
            fresh()?;
            w.push(tools.aws(&t.aws.0, &n(&t.aws.1, ""), t.aws.2, big)?);
        }
    }
    let (rclone, aws) = (medians(&r).expect("runs"), medians(&w));
    report(&t.what, t.bytes, medians(&f).expect("runs"), rclone, aws);
    if let Some(m) = medians(&one) {
        report(&format!("  Streams=1 {}", t.what), t.bytes, m, rclone, aws);
    }
    if let Some(m) = medians(&b) {
        report(&format!("  --base {}", t.what), t.bytes, m, rclone, aws);
    }
    if let (Some(m), Some(n)) = (medians(&rn), transfers) {
        // aft's figure again, beside rclone with as many files at once as it was asked for.
        let label = format!("  vs rclone --transfers {n}");
        report(&label, t.bytes, medians(&f).expect("runs"), m, aws);
    }
    if let Some(dir) = t.clear {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let server = S3sFs::start(&a.host)?;
    let scratch = tempfile::tempdir()?;
    let tools = Tools {
        endpoint: server.endpoint.clone(),
        aft: aft_binary()?,
        base: a.base.clone(),
        data: scratch.path().join("data"),
        scratch: scratch.path().to_path_buf(),
        streams: a.streams,
    };
    let status = Command::new(&tools.aft)
        .arg("--data")
        .arg(&tools.data)
        .args(["settings", "set", "allow-cli-run", "true"])
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(
        status.success(),
        "aft settings set allow-cli-run true failed"
    );

    let local = tempfile::tempdir()?;
    let lp = local.path();
    aft_bench::write_test_files(lp, a.size_mib, a.files)?;
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    let (big, small, out_path) = (s(lp.join("big.bin")), s(lp.join("small")), lp.join("down"));
    let out = s(out_path.clone());
    println!(
        "--- S3 (s3s-fs at {}), {} streams for one big file",
        tools.endpoint, a.streams
    );
    header();
    if !a.small_only {
        let mib = a.size_mib;
        run_transfer(
            &tools,
            &Transfer {
                what: format!("upload {mib} MiB"),
                bytes: Some(mib * 1024 * 1024),
                upload: true,
                aft: (big.clone(), "/aft-%N".into()),
                rcl: (big.clone(), "remote:rcl-%N".into()),
                aws: (big.clone(), "remote:aws-%N/big.bin".into(), false),
                clear: None,
                reps: a.reps,
            },
            &a,
        )?;
        run_transfer(
            &tools,
            &Transfer {
                what: format!("download {mib} MiB"),
                bytes: Some(mib * 1024 * 1024),
                upload: false,
                aft: ("/aft-0/big.bin".into(), out.clone()),
                rcl: ("remote:rcl-0/big.bin".into(), out.clone()),
                aws: (
                    "remote:aws-0/big.bin".into(),
                    format!("{out}/big.bin"),
                    false,
                ),
                clear: Some(&out_path),
                reps: a.reps,
            },
            &a,
        )?;
    }
    if !a.big_only {
        let reps = a.small_reps.unwrap_or(a.reps);
        run_transfer(
            &tools,
            &Transfer {
                what: format!("upload {} x 8 KiB", a.files),
                bytes: None,
                upload: true,
                aft: (format!("{small}/*"), "/aft-%N/small".into()),
                rcl: (small.clone(), "remote:rcl-%N/small".into()),
                aws: (small.clone(), "remote:aws-%N/small".into(), true),
                clear: None,
                reps,
            },
            &a,
        )?;
        run_transfer(
            &tools,
            &Transfer {
                what: format!("download {} x 8 KiB", a.files),
                bytes: None,
                upload: false,
                aft: ("/aft-0/small/*".into(), out.clone()),
                rcl: ("remote:rcl-0/small".into(), out.clone()),
                aws: ("remote:aws-0/small".into(), out.clone(), true),
                clear: Some(&out_path),
                reps,
            },
            &a,
        )?;
    }
    drop(server);
    Ok(())
}
