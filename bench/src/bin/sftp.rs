//! SFTP benchmark: aft as users run it (the whole `aft run` process running an AFT!-style
//! script: `new SftpClient()`, `Connect()`, `Upload`/`Download`) beside the whole processes
//! of OpenSSH `sftp -b` and `rclone copy`, against the same sshd, with the same data, key
//! and files; directly and through a delaying proxy (20 ms round trip; its own ceiling for
//! raw TCP is printed first, so a figure near it shows the proxy was measured, not the
//! tools). Each figure is the median of `--reps` runs with the tools taking turns, so a
//! busy moment of the machine does not decide a comparison; beside each time, the peak
//! RSS and CPU time (user + system) of that process, measured under GNU time (see
//! `aft_bench::measure_child`). Also aft's peak memory while listing a 100,000-entry remote directory.
//!
//! Start the server first (`mkdir -p /tmp/st && bash ci/peers/sshd.sh /tmp/st > /tmp/st/env
//! && source /tmp/st/env`), then:
//! `cargo run --release -p aft-bench --bin sftp -- [--size MIB] [--files N] [--list N]
//! [--reps N] [--small-reps N] [--no-delay] [--big-only] [--small-only] [--lib]
//! [--base AFT_BINARY] [--streams N[,N...]] [--delay-only] [--upload-only]`
//! (defaults: 1024 MiB, 5000 files of 8 KiB, 100,000 entries, 3 runs of each; `--lib` adds
//! a second aft column: the same copy by aft's library inside the bench process, with no
//! process start, script engine or login in the time; `--base` runs another aft binary in
//! turn with the others, on a row of its own and with a data folder of its own, for
//! before/after figures; `--streams 1,4` runs aft's big-file transfers once per value of
//! the client's `Streams`, in turn with the others, on a row each, and rclone with
//! `--multi-thread-streams` set to the largest value; default: aft's default, rclone's;
//! `--delay-only` skips the loopback figures; `--upload-only` runs the big file's upload
//! and nothing else).
//! The `aft` binary is
//! `target/release/aft` (or `AFT_BIN`), with a fresh data directory where `local-fsync`
//! keeps its default (on), so downloads are flushed to disk before their rename.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aft_bench::{ChildStats, aft_binary, measure_child};
use aft_vfs::Vfs;
use aft_vfs::local::LocalFs;
use aft_vfs::sftp::{SftpConfig, SftpFs};
use aft_vfs::transfer::{TransferOptions, TransferPolicy, copy_tree};
use anyhow::{Context, bail};
use futures::TryStreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Args {
    size_mib: u64,
    files: usize,
    list: usize,
    delay: bool,
    delay_only: bool,
    list_only: Option<String>,
    /// Child mode: the proxy's own ceiling over this many connections.
    proxy_ceiling: Option<u64>,
    reps: usize,
    small_reps: Option<usize>,
    big_only: bool,
    small_only: bool,
    /// Big files: the upload only (`--upload-only`).
    upload_only: bool,
    lib: bool,
    base: Option<PathBuf>,
    /// `Streams` values for aft's big files (empty: the client's default).
    streams: Vec<u32>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        size_mib: 1024,
        files: 5000,
        list: 100_000,
        delay: true,
        delay_only: false,
        list_only: None,
        proxy_ceiling: None,
        reps: 3,
        small_reps: None,
        big_only: false,
        small_only: false,
        upload_only: false,
        lib: false,
        base: None,
        streams: Vec::new(),
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
            "--list" => a.list = num("--list")? as usize,
            "--no-delay" => a.delay = false,
            "--delay-only" => a.delay_only = true,
            "--list-only" => a.list_only = it.next(),
            "--proxy-ceiling" => a.proxy_ceiling = Some(num("--proxy-ceiling")?.max(1)),
            "--reps" => a.reps = (num("--reps")? as usize).max(1),
            "--small-reps" => a.small_reps = Some((num("--small-reps")? as usize).max(1)),
            "--big-only" => a.big_only = true,
            "--small-only" => a.small_only = true,
            "--upload-only" => {
                a.upload_only = true;
                a.big_only = true;
            }
            "--lib" => a.lib = true,
            "--base" => a.base = it.next().map(PathBuf::from),
            "--streams" => {
                a.streams = it
                    .next()
                    .context("--streams needs numbers like 1,4")?
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse::<u32>()
                            .context("--streams needs numbers like 1,4")
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            other => bail!("unknown argument {other}; see the file's doc comment"),
        }
    }
    Ok(a)
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .with_context(|| format!("{name} is not set: start ci/peers/sshd.sh and source its output"))
}

/// The peer's SSH settings, the aft binary and the bench's scratch folder.
struct Server {
    user: String,
    pass: String,
    key: String,
    fingerprint: String,
    home: String,
    aft: PathBuf,
    /// Another aft binary to compare with (`--base PATH`), in a column of its own.
    base: Option<PathBuf>,
    /// aft's data directory (a fresh one: default settings).
    data: PathBuf,
    /// The `--base` binary's own (it may carry an older store migration).
    base_data: PathBuf,
    /// rclone's `--multi-thread-streams`, when set.
    rclone_streams: Option<u32>,
    /// Where the scripts and sftp batch files are written.
    scratch: PathBuf,
}

impl Server {
    fn from_env(scratch: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            user: env("AFT_TEST_SFTP_USER")?,
            pass: env("AFT_TEST_SFTP_PASS")?,
            key: env("AFT_TEST_SFTP_KEY")?,
            fingerprint: env("AFT_TEST_SFTP_HOSTKEY_SHA256")?,
            home: env("AFT_TEST_SFTP_HOME")?,
            aft: aft_binary()?,
            base: None,
            data: scratch.join("data"),
            base_data: scratch.join("data-base"),
            rclone_streams: None,
            scratch: scratch.to_path_buf(),
        })
    }

    /// aft's library in this process (the `--lib` column and the listing child).
    fn aft_lib(&self, addr: &str) -> SftpFs {
        let mut cfg = SftpConfig::new(addr, &self.user);
        cfg.password = Some(self.pass.clone().into());
        cfg.host_key_sha256 = Some(self.fingerprint.clone());
        cfg.base_dir = Some(self.home.clone());
        SftpFs::new(cfg)
    }

    /// `aft run` of an AFT!-style script calling `method(from, to)` on an `SftpClient`
    /// logged in with the same key as the other tools (with `Streams` = `streams`, when
    /// given).
    fn aft_run(
        &self,
        bin: &Path,
        addr: &str,
        method: &str,
        from: &str,
        to: &str,
        streams: Option<u32>,
    ) -> anyhow::Result<ChildStats> {
        let q = |s: &str| serde_json::to_string(s).expect("a string");
        let script = format!(
            r#"var cli = new SftpClient();
cli.Host = {host};
cli.User = {user};
cli.KeyFile = {key};
cli.HostKeySHA256 = {fp};
cli.BaseDir = {home};
{streams}cli.Options.UploadPolicy = AlwaysOverwrite;
cli.Options.DownloadPolicy = AlwaysOverwrite;
if (!cli.Connect()) {{ Log("cannot connect: " + cli.LastError()); Exit(1); }}
if (!cli.{method}({from}, {to})) {{ Log("{method} failed: " + cli.LastError()); Exit(1); }}
cli.Close();
"#,
            host = q(addr),
            user = q(&self.user),
            key = q(&self.key),
            fp = q(&self.fingerprint),
            home = q(&self.home),
            from = q(from),
            to = q(to),
            streams = streams
                .map(|n| format!("cli.Streams = {n};\n"))
                .unwrap_or_default(),
        );
        let file = self.scratch.join(format!("{method}.js"));
        std::fs::write(&file, script)?;
        let data = if bin == self.aft {
            &self.data
        } else {
            &self.base_data
        };
        measure_child(
            Command::new(bin)
                .arg("--data")
                .arg(data)
                .args(["run", "-f"])
                .arg(&file),
            Stdio::null(),
        )
    }

    fn sftp_batch(&self, addr: &str, batch: &str) -> anyhow::Result<ChildStats> {
        let (host, port) = addr.rsplit_once(':').context("addr")?;
        let file = self.scratch.join("batch");
        std::fs::write(&file, batch)?;
        measure_child(
            Command::new("sftp")
                .args(["-q", "-b"])
                .arg(&file)
                .args(["-P", port, "-i", &self.key])
                .args([
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "LogLevel=ERROR",
                ])
                .arg(format!("{}@{host}", self.user)),
            Stdio::null(),
        )
    }

    fn rclone(&self, addr: &str, from: &str, to: &str) -> anyhow::Result<ChildStats> {
        let (host, port) = addr.rsplit_once(':').context("addr")?;
        let remote = format!(
            ":sftp,host={host},port={port},user={},key_file={}:",
            self.user, self.key
        );
        let fix = |p: &str| {
            p.strip_prefix("remote:")
                .map(|r| format!("{remote}{r}"))
                .unwrap_or(p.to_string())
        };
        // --ignore-times: copy even what is already there, as the other tools do on each run.
        let mut cmd = Command::new("rclone");
        cmd.args([
            "copy",
            "--ignore-times",
            "--config",
            "/dev/null",
            &fix(from),
            &fix(to),
        ]);
        if let Some(n) = self.rclone_streams {
            cmd.args(["--multi-thread-streams", &n.to_string()]);
        }
        measure_child(&cmd, Stdio::inherit())
    }
}

/// What the delaying proxy itself carries: `mib` MiB of raw bytes from this process, over
/// `conns` connections through a proxy to a sink that discards them, in MiB/s. The SFTP
/// figures through the proxy cannot go above it; where aft and a peer both land near it,
/// the proxy, not the client, is what was measured.
fn proxy_ceiling(rt: &tokio::runtime::Runtime, mib: u64, conns: u64) -> anyhow::Result<f64> {
    rt.block_on(async {
        let sink = TcpListener::bind("127.0.0.1:0").await?;
        let sink_addr = sink.local_addr()?.to_string();
        let per_conn = mib * 1024 * 1024 / conns;
        let drain = tokio::spawn(async move {
            let mut readers = Vec::new();
            for _ in 0..conns {
                let (mut s, _) = sink.accept().await?;
                readers.push(tokio::spawn(async move {
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut got = 0u64;
                    while got < per_conn {
                        match s.read(&mut buf).await? {
                            0 => break,
                            n => got += n as u64,
                        }
                    }
                    anyhow::Ok(got)
                }));
            }
            let mut total = 0;
            for r in readers {
                total += r.await??;
            }
            anyhow::Ok(total)
        });
        let proxy = delaying_proxy(sink_addr, Duration::from_millis(10)).await?;
        let start = Instant::now();
        let mut senders = Vec::new();
        for _ in 0..conns {
            let proxy = proxy.clone();
            senders.push(tokio::spawn(async move {
                let mut s = TcpStream::connect(&proxy).await?;
                let block = vec![0x5au8; 256 * 1024];
                let mut sent = 0u64;
                while sent < per_conn {
                    let n = (per_conn - sent).min(block.len() as u64) as usize;
                    s.write_all(&block[..n]).await?;
                    sent += n as u64;
                }
                anyhow::Ok(())
            }));
        }
        for s in senders {
            s.await??;
        }
        let total = drain.await??;
        anyhow::ensure!(total == per_conn * conns, "the sink got {total} bytes");
        Ok(total as f64 / 1024.0 / 1024.0 / start.elapsed().as_secs_f64())
    })
}

/// A TCP proxy that holds every chunk for `one_way` before passing it on, both ways.
async fn delaying_proxy(target: String, one_way: Duration) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&target).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(delayed(cr, sw, one_way), delayed(sr, cw, one_way));
            });
        }
    });
    Ok(addr)
}

async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0
                || tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((at, data)) = rx.recv().await {
            tokio::time::sleep_until(at.into()).await;
            if to.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
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

fn medians(runs: &[ChildStats]) -> Medians {
    Medians {
        wall: median(runs.iter().map(|r| r.wall).collect()),
        rss_kib: median(runs.iter().map(|r| r.peak_rss_kib).collect()),
        cpu: median(runs.iter().map(|r| r.cpu).collect()),
    }
}

fn header(lib: bool) {
    println!(
        "{:<26} {:>11} {:>11} {:>11} {:>13} {:>26} {:>20}{}",
        "figure (median)",
        "aft run",
        "sftp -b",
        "rclone",
        "aft/faster",
        "peak RSS aft/sftp/rclone",
        "CPU s aft/sftp/rcl",
        if lib { "   aft library in-process" } else { "" }
    );
}

/// One figure: the three tools' medians, aft's time over the faster peer's, memory, CPU.
fn report(what: &str, bytes: Option<u64>, m: [Medians; 3], lib: Option<Duration>) {
    let show = |d: Duration| match bytes {
        Some(b) => format!("{:.1} MiB/s", b as f64 / 1048576.0 / d.as_secs_f64()),
        None => format!("{:.2} s", d.as_secs_f64()),
    };
    let (faster, name) = if m[1].wall <= m[2].wall {
        (m[1].wall, "sftp")
    } else {
        (m[2].wall, "rclone")
    };
    println!(
        "{what:<26} {:>11} {:>11} {:>11} {:>6.2} {name:<6} {:>26} {:>20}{}",
        show(m[0].wall),
        show(m[1].wall),
        show(m[2].wall),
        m[0].wall.as_secs_f64() / faster.as_secs_f64(),
        format!(
            "{:.1}/{:.1}/{:.1} MiB",
            m[0].rss_kib as f64 / 1024.0,
            m[1].rss_kib as f64 / 1024.0,
            m[2].rss_kib as f64 / 1024.0
        ),
        format!(
            "{:.2}/{:.2}/{:.2}",
            m[0].cpu.as_secs_f64(),
            m[1].cpu.as_secs_f64(),
            m[2].cpu.as_secs_f64()
        ),
        lib.map(|d| format!("   {:>11}", show(d)))
            .unwrap_or_default(),
    );
}

async fn aft_copy(
    src: &dyn Vfs,
    glob: &str,
    dst: &dyn Vfs,
    dir: &str,
    parallel: usize,
) -> anyhow::Result<()> {
    let opts = TransferOptions {
        policy: TransferPolicy::AlwaysOverwrite,
        parallel,
        ..TransferOptions::default()
    };
    let s = copy_tree(src, glob, dst, dir, &opts, &|_| {}).await?;
    anyhow::ensure!(s.all_ok(), "aft transfer failed: {:?}", s.first_error);
    Ok(())
}

/// The in-process library timing of one copy (the `--lib` column).
fn lib_copy(
    rt: &tokio::runtime::Runtime,
    srv: &Server,
    addr: &str,
    upload: bool,
    from: &str,
    to: &str,
) -> anyhow::Result<Duration> {
    rt.block_on(async {
        let remote = srv.aft_lib(addr);
        let local = LocalFs::new("/");
        remote.connect().await?;
        let start = Instant::now();
        // The script's transfer runs with TransferOptions' default parallelism too.
        let parallel = TransferOptions::default().parallel;
        if upload {
            aft_copy(&local, from, &remote, to, parallel).await?;
        } else {
            aft_copy(&remote, from, &local, to, parallel).await?;
        }
        let took = start.elapsed();
        remote.close().await?;
        Ok(took)
    })
}

/// The four transfers of one scenario, one kind at a time, the tools taking turns.
struct Transfer<'a> {
    what: String,
    bytes: Option<u64>,
    upload: bool,
    /// aft's source and target (remote paths below the base dir).
    aft: (String, String),
    /// The sftp batch command.
    ssh: String,
    /// rclone's source and target.
    rcl: (String, String),
    /// A local folder emptied before each download.
    clear: Option<&'a Path>,
    reps: usize,
    /// aft's `Streams` values, a row each (`None`: the client's default).
    streams: Vec<Option<u32>>,
}

fn run_transfer(
    rt: &tokio::runtime::Runtime,
    srv: &Server,
    addr: &str,
    t: &Transfer<'_>,
    lib: bool,
) -> anyhow::Result<()> {
    let fresh = || -> anyhow::Result<()> {
        if let Some(dir) = t.clear {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir)?;
        }
        aft_bench::flush_writes()
    };
    let method = if t.upload { "Upload" } else { "Download" };
    let (mut s, mut r, mut l, mut b) = (vec![], vec![], vec![], vec![]);
    let mut a: Vec<Vec<ChildStats>> = vec![vec![]; t.streams.len()];
    for _ in 0..t.reps {
        for (runs, &streams) in a.iter_mut().zip(&t.streams) {
            fresh()?;
            runs.push(srv.aft_run(&srv.aft, addr, method, &t.aft.0, &t.aft.1, streams)?);
        }
        if let Some(base) = &srv.base {
            fresh()?;
            b.push(srv.aft_run(base, addr, method, &t.aft.0, &t.aft.1, t.streams[0])?);
        }
        fresh()?;
        s.push(srv.sftp_batch(addr, &t.ssh)?);
        fresh()?;
        r.push(srv.rclone(addr, &t.rcl.0, &t.rcl.1)?);
        if lib {
            fresh()?;
            l.push(lib_copy(rt, srv, addr, t.upload, &t.aft.0, &t.aft.1)?);
        }
    }
    let mut lib = (!l.is_empty()).then(|| median(l));
    for (runs, streams) in a.iter().zip(&t.streams) {
        let what = match streams {
            Some(n) => format!("{}, Streams {n}", t.what),
            None => t.what.clone(),
        };
        report(
            &what,
            t.bytes,
            [medians(runs), medians(&s), medians(&r)],
            lib.take(),
        );
    }
    if !b.is_empty() {
        let peers = [medians(&s), medians(&r)];
        report(
            &format!("  --base {}", t.what),
            t.bytes,
            [medians(&b), peers[0], peers[1]],
            None,
        );
    }
    if let Some(dir) = t.clear {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

fn scenario(
    rt: &tokio::runtime::Runtime,
    label: &str,
    srv: &Server,
    addr: &str,
    local: &Path,
    a: &Args,
) -> anyhow::Result<()> {
    println!("--- {label}");
    header(a.lib);
    let size = a.size_mib * 1024 * 1024;
    let big = local.join("big.bin").to_string_lossy().into_owned();
    let small = local.join("small").to_string_lossy().into_owned();
    let out_path = local.join("down");
    let out = out_path.to_string_lossy().into_owned();
    let rdir = |name: &str| format!("{}/bench-{name}", srv.home);
    let uid = uid_of(&srv.home)?;
    for d in ["aft", "ssh", "rcl"] {
        let _ = std::fs::remove_dir_all(rdir(d));
        std::fs::create_dir_all(rdir(d))?;
        std::os::unix::fs::chown(rdir(d), Some(uid), None)?;
    }
    // Every tool uploads into a folder that exists, as a scheduled job usually does.
    std::fs::create_dir_all(rdir("aft") + "/small")?;
    std::os::unix::fs::chown(rdir("aft") + "/small", Some(uid), None)?;

    let big_streams: Vec<Option<u32>> = if a.streams.is_empty() {
        vec![None]
    } else {
        a.streams.iter().copied().map(Some).collect()
    };
    if !a.small_only {
        let mib = a.size_mib;
        run_transfer(
            rt,
            srv,
            addr,
            &Transfer {
                what: format!("upload {mib} MiB"),
                bytes: Some(size),
                upload: true,
                aft: (big.clone(), "/bench-aft".into()),
                ssh: format!("put {big} {}/\n", rdir("ssh")),
                rcl: (big.clone(), format!("remote:{}", rdir("rcl"))),
                clear: None,
                reps: a.reps,
                streams: big_streams.clone(),
            },
            a.lib,
        )?;
    }
    if !a.small_only && !a.upload_only {
        let mib = a.size_mib;
        run_transfer(
            rt,
            srv,
            addr,
            &Transfer {
                what: format!("download {mib} MiB"),
                bytes: Some(size),
                upload: false,
                aft: ("/bench-aft/big.bin".into(), out.clone()),
                ssh: format!("get {}/big.bin {out}/\n", rdir("ssh")),
                rcl: (format!("remote:{}/big.bin", rdir("rcl")), out.clone()),
                clear: Some(&out_path),
                reps: a.reps,
                streams: big_streams.clone(),
            },
            a.lib,
        )?;
    }
    if !a.big_only {
        let reps = a.small_reps.unwrap_or(a.reps);
        run_transfer(
            rt,
            srv,
            addr,
            &Transfer {
                what: format!("upload {} x 8 KiB", a.files),
                bytes: None,
                upload: true,
                aft: (format!("{small}/*"), "/bench-aft/small".into()),
                ssh: format!("put -r {small} {}/\n", rdir("ssh")),
                rcl: (small.clone(), format!("remote:{}/small", rdir("rcl"))),
                clear: None,
                reps,
                streams: vec![None],
            },
            a.lib,
        )?;
        run_transfer(
            rt,
            srv,
            addr,
            &Transfer {
                what: format!("download {} x 8 KiB", a.files),
                bytes: None,
                upload: false,
                aft: ("/bench-aft/small/*".into(), out.clone()),
                ssh: format!("get -r {}/small {out}/\n", rdir("ssh")),
                rcl: (format!("remote:{}/small", rdir("rcl")), out.clone()),
                clear: Some(&out_path),
                reps,
                streams: vec![None],
            },
            a.lib,
        )?;
    }
    Ok(())
}

fn uid_of(path: &str) -> anyhow::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.uid())
}

/// Child mode: list `dir` on the server and print the entry count (RSS is measured outside).
fn list_only(srv: &Server, dir: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let aft = srv.aft_lib(&env("AFT_TEST_SFTP_ADDR")?);
        let n = aft
            .list(dir)
            .await?
            .try_fold(0u64, |n, _| async move { Ok(n + 1) })
            .await?;
        println!("{n}");
        Ok(())
    })
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let scratch = tempfile::tempdir()?;
    let mut srv = Server::from_env(scratch.path())?;
    srv.base = a.base.clone();
    srv.rclone_streams = a.streams.iter().copied().max();
    if let Some(dir) = &a.list_only {
        return list_only(&srv, dir);
    }
    if let Some(conns) = a.proxy_ceiling {
        let rate = proxy_ceiling(&tokio::runtime::Runtime::new()?, a.size_mib, conns)?;
        println!("{rate:.1}");
        return Ok(());
    }
    let addr = env("AFT_TEST_SFTP_ADDR")?;
    // Each binary gets a data folder of its own: a `--base` build may carry an older store
    // migration than the other, and refuses a folder the newer one migrated.
    let own = [(srv.aft.clone(), srv.data.clone())];
    let base = srv.base.clone().map(|b| (b, srv.base_data.clone()));
    for (bin, data) in own.into_iter().chain(base) {
        let status = Command::new(&bin)
            .arg("--data")
            .arg(&data)
            .args(["settings", "set", "allow-cli-run", "true"])
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(
            status.success(),
            "{} settings set allow-cli-run true failed",
            bin.display()
        );
    }

    if a.list > 0 {
        println!("--- listing {} entries", a.list);
        let many = format!("{}/bench-list", srv.home);
        let _ = std::fs::remove_dir_all(&many);
        std::fs::create_dir_all(&many)?;
        for i in 0..a.list {
            std::fs::File::create(format!("{many}/entry-{i:06}"))?;
        }
        let stats = measure_child(
            Command::new(std::env::current_exe()?).args(["--list-only", "/bench-list"]),
            Stdio::null(),
        )?;
        println!(
            "list {} entries: aft library peak RSS {:.1} MiB (goal < 64 MiB), {:.2} s",
            a.list,
            stats.peak_rss_kib as f64 / 1024.0,
            stats.wall.as_secs_f64()
        );
        let _ = std::fs::remove_dir_all(&many);
    }

    let local = tempfile::tempdir()?;
    let local_path: PathBuf = local.path().into();
    aft_bench::write_test_files(&local_path, a.size_mib, a.files)?;
    let rt = tokio::runtime::Runtime::new()?;
    if !a.delay_only {
        scenario(&rt, "direct (loopback)", &srv, &addr, &local_path, &a)?;
    }
    if a.delay || a.delay_only {
        for conns in [1, 4] {
            // In a child: the proxy holds what it has not passed on yet, and a bench that
            // grew would lend its peak RSS to every child it forks after.
            let out = Command::new(std::env::current_exe()?)
                .args(["--proxy-ceiling", &conns.to_string()])
                .args(["--size", &a.size_mib.to_string()])
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "--proxy-ceiling failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            println!(
                "the proxy itself: {} MiB of raw TCP over {conns} connection(s) at {} MiB/s",
                a.size_mib,
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        let proxy = rt.block_on(delaying_proxy(addr.clone(), Duration::from_millis(10)))?;
        scenario(
            &rt,
            "through a 20 ms round-trip proxy",
            &srv,
            &proxy,
            &local_path,
            &a,
        )?;
    }
    for d in ["aft", "ssh", "rcl"] {
        let _ = std::fs::remove_dir_all(format!("{}/bench-{d}", srv.home));
    }
    Ok(())
}
