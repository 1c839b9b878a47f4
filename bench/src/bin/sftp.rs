//! SFTP benchmark: aft beside OpenSSH `sftp -b` and `rclone copy`, against the same sshd,
//! directly and through a delaying proxy (20 ms round trip), plus aft's peak memory while
//! listing a 100,000-entry remote directory.
//!
//! Start the server first (`mkdir -p /tmp/st && bash ci/peers/sshd.sh /tmp/st > /tmp/st/env
//! && source /tmp/st/env`), then:
//! `cargo run --release -p aft-bench --bin sftp -- [--size MIB] [--files N] [--list N]
//! [--reps N] [--no-delay] [--big-only]` (defaults: 1024 MiB, 5000 files of 8 KiB, 100,000
//! entries, 3 runs). Each big-file figure is the median of `--reps` runs, the three tools
//! taking turns, so a busy moment of the machine does not decide a comparison.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aft_bench::{measure, row};
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
    list_only: Option<String>,
    reps: usize,
    big_only: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        size_mib: 1024,
        files: 5000,
        list: 100_000,
        delay: true,
        list_only: None,
        reps: 3,
        big_only: false,
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
            "--list-only" => a.list_only = it.next(),
            "--reps" => a.reps = (num("--reps")? as usize).max(1),
            "--big-only" => a.big_only = true,
            other => bail!("unknown argument {other}; see the file's doc comment"),
        }
    }
    Ok(a)
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .with_context(|| format!("{name} is not set: start ci/peers/sshd.sh and source its output"))
}

/// The peer's SSH settings, and the server address to use (direct or through the proxy).
struct Server {
    user: String,
    pass: String,
    key: String,
    fingerprint: String,
    home: String,
}

impl Server {
    fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            user: env("AFT_TEST_SFTP_USER")?,
            pass: env("AFT_TEST_SFTP_PASS")?,
            key: env("AFT_TEST_SFTP_KEY")?,
            fingerprint: env("AFT_TEST_SFTP_HOSTKEY_SHA256")?,
            home: env("AFT_TEST_SFTP_HOME")?,
        })
    }

    fn aft(&self, addr: &str) -> SftpFs {
        let mut cfg = SftpConfig::new(addr, &self.user);
        cfg.password = Some(self.pass.clone().into());
        cfg.host_key_sha256 = Some(self.fingerprint.clone());
        cfg.base_dir = Some(self.home.clone());
        SftpFs::new(cfg)
    }

    fn sftp_batch(&self, addr: &str, batch: &str) -> anyhow::Result<Duration> {
        let (host, port) = addr.rsplit_once(':').context("addr")?;
        let file = std::env::temp_dir().join(format!("aft-bench-batch-{}", std::process::id()));
        std::fs::write(&file, batch)?;
        let stats = measure(
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
                .arg(format!("{}@{host}", self.user))
                .stdout(std::process::Stdio::null()),
        )?;
        Ok(stats.wall)
    }

    fn rclone(&self, addr: &str, from: &str, to: &str) -> anyhow::Result<Duration> {
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
        let stats = measure(Command::new("rclone").args([
            "copy",
            "--ignore-times",
            "--config",
            "/dev/null",
            &fix(from),
            &fix(to),
        ]))?;
        Ok(stats.wall)
    }
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

fn mib_s(bytes: u64, d: Duration) -> String {
    format!("{:.1} MiB/s", bytes as f64 / 1048576.0 / d.as_secs_f64())
}

/// The middle of several timings of the same thing.
fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

async fn timed<F: std::future::Future<Output = anyhow::Result<()>>>(
    f: F,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    f.await?;
    Ok(start.elapsed())
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

async fn scenario(
    label: &str,
    srv: &Server,
    addr: &str,
    local: &Path,
    a: &Args,
) -> anyhow::Result<()> {
    println!("--- {label}");
    let aft = srv.aft(addr);
    let fs = LocalFs::new("/");
    let size = a.size_mib * 1024 * 1024;
    let big = local.join("big.bin");
    let small = local.join("small");
    let out = local.join("down");
    let (big_s, small_s, out_s) = (
        big.to_string_lossy(),
        small.to_string_lossy(),
        out.to_string_lossy(),
    );
    let rdir = |name: &str| format!("{}/bench-{name}", srv.home);
    for d in ["aft", "ssh", "rcl"] {
        let _ = std::fs::remove_dir_all(rdir(d));
        std::fs::create_dir_all(rdir(d))?;
        std::os::unix::fs::chown(rdir(d), Some(uid_of(&srv.home)?), None)?;
    }

    let (mut up_aft, mut up_ssh, mut up_rcl) = (vec![], vec![], vec![]);
    for _ in 0..a.reps {
        up_aft.push(timed(aft_copy(&fs, &big_s, &aft, "/bench-aft", 1)).await?);
        up_ssh.push(srv.sftp_batch(addr, &format!("put {big_s} {}/\n", rdir("ssh")))?);
        up_rcl.push(srv.rclone(addr, &big_s, &format!("remote:{}", rdir("rcl")))?);
    }
    let (up_aft, up_ssh, up_rcl) = (median(up_aft), median(up_ssh), median(up_rcl));
    row(
        &format!("upload {} MiB", a.size_mib),
        &mib_s(size, up_aft),
        "sftp",
        &mib_s(size, up_ssh),
    );
    row("", "-", "rclone", &mib_s(size, up_rcl));

    let (mut down_aft, mut down_ssh, mut down_rcl) = (vec![], vec![], vec![]);
    for _ in 0..a.reps {
        let _ = std::fs::remove_dir_all(&out);
        down_aft.push(timed(aft_copy(&aft, "/bench-aft/big.bin", &fs, &out_s, 1)).await?);
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out)?;
        down_ssh.push(srv.sftp_batch(addr, &format!("get {}/big.bin {out_s}/\n", rdir("ssh")))?);
        let _ = std::fs::remove_dir_all(&out);
        down_rcl.push(srv.rclone(addr, &format!("remote:{}/big.bin", rdir("rcl")), &out_s)?);
    }
    let (down_aft, down_ssh, down_rcl) = (median(down_aft), median(down_ssh), median(down_rcl));
    row(
        &format!("download {} MiB", a.size_mib),
        &mib_s(size, down_aft),
        "sftp",
        &mib_s(size, down_ssh),
    );
    row("", "-", "rclone", &mib_s(size, down_rcl));
    if a.big_only {
        let _ = std::fs::remove_dir_all(&out);
        aft.close().await?;
        return Ok(());
    }

    let up_aft = timed(aft_copy(
        &fs,
        &format!("{small_s}/*"),
        &aft,
        "/bench-aft/small",
        16,
    ))
    .await?;
    let up_ssh = srv.sftp_batch(addr, &format!("put -r {small_s} {}/\n", rdir("ssh")))?;
    let up_rcl = srv.rclone(addr, &small_s, &format!("remote:{}/small", rdir("rcl")))?;
    row(
        &format!("upload {} x 8 KiB", a.files),
        &secs(up_aft),
        "sftp",
        &secs(up_ssh),
    );
    row("", "-", "rclone", &secs(up_rcl));

    let _ = std::fs::remove_dir_all(&out);
    let down_aft = timed(aft_copy(&aft, "/bench-aft/small/*", &fs, &out_s, 16)).await?;
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let down_ssh = srv.sftp_batch(addr, &format!("get -r {}/small {out_s}/\n", rdir("ssh")))?;
    let _ = std::fs::remove_dir_all(&out);
    let down_rcl = srv.rclone(addr, &format!("remote:{}/small", rdir("rcl")), &out_s)?;
    row(
        &format!("download {} x 8 KiB", a.files),
        &secs(down_aft),
        "sftp",
        &secs(down_ssh),
    );
    row("", "-", "rclone", &secs(down_rcl));
    let _ = std::fs::remove_dir_all(&out);
    aft.close().await?;
    Ok(())
}

fn uid_of(path: &str) -> anyhow::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.uid())
}

/// Child mode: list `dir` on the server and print the entry count (RSS is measured outside).
async fn list_only(srv: &Server, dir: &str) -> anyhow::Result<()> {
    let aft = srv.aft(&env("AFT_TEST_SFTP_ADDR")?);
    let n = aft
        .list(dir)
        .await?
        .try_fold(0u64, |n, _| async move { Ok(n + 1) })
        .await?;
    println!("{n}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let srv = Server::from_env()?;
    if let Some(dir) = &a.list_only {
        return list_only(&srv, dir).await;
    }
    let addr = env("AFT_TEST_SFTP_ADDR")?;

    // First, before anything else grows this process: the kernel reports the largest peak
    // RSS of any child, so the lister must be the first child measured.
    println!("--- listing {} entries", a.list);
    let many = format!("{}/bench-list", srv.home);
    let _ = std::fs::remove_dir_all(&many);
    std::fs::create_dir_all(&many)?;
    for i in 0..a.list {
        std::fs::File::create(format!("{many}/entry-{i:06}"))?;
    }
    let exe = std::env::current_exe()?;
    let stats = measure(
        Command::new(exe)
            .args(["--list-only", "/bench-list"])
            .stdout(std::process::Stdio::null()),
    )?;
    row(
        &format!("list {} entries: peak RSS (goal < 64 MiB)", a.list),
        &format!("{} MiB", stats.peak_rss_kib / 1024),
        "time",
        &secs(stats.wall),
    );
    let _ = std::fs::remove_dir_all(&many);

    let local = tempfile::tempdir()?;
    let local_path: PathBuf = local.path().into();
    {
        let mut f = std::fs::File::create(local_path.join("big.bin"))?;
        let block: Vec<u8> = (0..1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for _ in 0..a.size_mib {
            std::io::Write::write_all(&mut f, &block)?;
        }
        std::fs::create_dir_all(local_path.join("small"))?;
        for i in 0..a.files {
            std::fs::write(
                local_path.join(format!("small/f{i:05}.dat")),
                &block[i % 1000..i % 1000 + 8192],
            )?;
        }
    }
    scenario("direct (loopback)", &srv, &addr, &local_path, &a).await?;
    if a.delay {
        let proxy = delaying_proxy(addr.clone(), Duration::from_millis(10)).await?;
        scenario(
            "through a 20 ms round-trip proxy",
            &srv,
            &proxy,
            &local_path,
            &a,
        )
        .await?;
    }
    for d in ["aft", "ssh", "rcl"] {
        let _ = std::fs::remove_dir_all(format!("{}/bench-{d}", srv.home));
    }
    Ok(())
}
