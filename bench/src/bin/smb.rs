//! SMB benchmark: aft beside Samba's `smbclient` and `rclone copy` (its `smb` backend),
//! against the same Samba share: one big file up and down, then many small files up and down.
//!
//! Start the servers first (`mkdir -p /tmp/st && bash ci/peers/samba.sh /tmp/st > /tmp/st/env
//! && source /tmp/st/env`), then:
//! `cargo run --release -p aft-bench --features smb --bin smb -- [--size MIB] [--files N]
//! [--reps N] [--signed]` (defaults: 1024 MiB, 5000 files of 8 KiB, 3 runs, the server that
//! requires SMB3 encryption; `--signed` uses the signing-only one, where rclone 1.60's
//! parallel small-file uploads fail with "signing required"). Each figure is the median of
//! `--reps` runs, the three tools taking turns.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aft_bench::{row, wall_time};
use aft_vfs::Vfs;
use aft_vfs::local::LocalFs;
use aft_vfs::transfer::{TransferOptions, TransferPolicy, copy_tree};
use anyhow::{Context, bail};

struct Args {
    size_mib: u64,
    files: usize,
    reps: usize,
    signed: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        size_mib: 1024,
        files: 5000,
        reps: 3,
        signed: false,
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
            "--signed" => a.signed = true,
            other => bail!("unknown argument {other}; see the file's doc comment"),
        }
    }
    Ok(a)
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set: start ci/peers/samba.sh and source its output")
    })
}

/// The Samba share and how each tool reaches it.
struct Server {
    host: String,
    port: String,
    share: String,
    user: String,
    pass: String,
    /// The password as `rclone obscure` gives it (rclone's config format).
    obscured: String,
}

impl Server {
    fn from_env(encrypted: bool) -> anyhow::Result<Self> {
        let pass = env("AFT_TEST_SMB_PASS")?;
        let out = Command::new("rclone").args(["obscure", &pass]).output()?;
        anyhow::ensure!(out.status.success(), "rclone obscure failed");
        Ok(Self {
            host: env("AFT_TEST_SMB_HOST")?,
            port: env(if encrypted {
                "AFT_TEST_SMB_PORT_ENCRYPTED"
            } else {
                "AFT_TEST_SMB_PORT_SIGNED"
            })?,
            share: env("AFT_TEST_SMB_SHARE")?,
            user: env("AFT_TEST_SMB_USER")?,
            obscured: String::from_utf8(out.stdout)?.trim().to_string(),
            pass,
        })
    }

    fn aft(&self) -> anyhow::Result<std::sync::Arc<dyn Vfs>> {
        let fields = serde_json::json!({
            "Host": self.host, "Port": self.port, "Share": self.share,
            "User": self.user, "Pass": self.pass,
        });
        Ok(aft_vfs::open_backend("smb", &fields, &|_| None)?)
    }

    /// `smbclient` running `commands` (`;`-separated) on the share, from folder `local`.
    fn smbclient(&self, local: &Path, commands: &str) -> anyhow::Result<Duration> {
        wall_time(
            Command::new("smbclient")
                .arg(format!("//{}/{}", self.host, self.share))
                .args(["-p", &self.port, "-U"])
                .arg(format!("{}%{}", self.user, self.pass))
                .args(["-c", commands])
                .current_dir(local)
                // It reports every file on stderr; a failure shows in its exit status.
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    }

    fn rclone(&self, from: &str, to: &str) -> anyhow::Result<Duration> {
        let remote = format!(
            ":smb,host={},port={},user={},pass={}:{}",
            self.host, self.port, self.user, self.obscured, self.share
        );
        let fix = |p: &str| {
            p.strip_prefix("remote:")
                .map(|r| format!("{remote}{r}"))
                .unwrap_or(p.to_string())
        };
        wall_time(Command::new("rclone").args([
            "copy",
            "--ignore-times",
            "--config",
            "/dev/null",
            &fix(from),
            &fix(to),
        ]))
    }
}

fn mib_s(bytes: u64, d: Duration) -> String {
    format!("{:.1} MiB/s", bytes as f64 / 1048576.0 / d.as_secs_f64())
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

async fn aft_copy(
    src: &dyn Vfs,
    glob: &str,
    dst: &dyn Vfs,
    dir: &str,
    parallel: usize,
) -> anyhow::Result<Duration> {
    let opts = TransferOptions {
        policy: TransferPolicy::AlwaysOverwrite,
        parallel,
        ..TransferOptions::default()
    };
    let start = Instant::now();
    let s = copy_tree(src, glob, dst, dir, &opts, &|_| {}).await?;
    anyhow::ensure!(s.all_ok(), "aft transfer failed: {:?}", s.first_error);
    Ok(start.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let srv = Server::from_env(!a.signed)?;
    let local = tempfile::tempdir()?;
    let size = a.size_mib * 1024 * 1024;
    let big = local.path().join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big)?);
        let block: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
        for _ in 0..a.size_mib {
            f.write_all(&block)?;
        }
    }
    let small = local.path().join("small");
    std::fs::create_dir_all(&small)?;
    for i in 0..a.files {
        std::fs::write(
            small.join(format!("f{i:05}.dat")),
            vec![(i % 251) as u8; 8192],
        )?;
    }
    let down = local.path().join("down");
    let (big_s, small_s, down_s) = (
        big.to_string_lossy().to_string(),
        small.to_string_lossy().to_string(),
        down.to_string_lossy().to_string(),
    );
    let aft = srv.aft()?;
    let fs = LocalFs::new("/");
    let run = format!("bench-{}", std::process::id());
    for d in ["aft", "smb", "rcl", "aft/small", "smb/small"] {
        aft.mkdir_all(&format!("/{run}/{d}")).await?;
    }
    println!(
        "--- SMB to {}:{} ({})",
        srv.host,
        srv.port,
        if !a.signed {
            "SMB3 encryption required"
        } else {
            "signing required"
        }
    );

    let (mut up_aft, mut up_smb, mut up_rcl) = (vec![], vec![], vec![]);
    for _ in 0..a.reps {
        up_aft.push(aft_copy(&fs, &big_s, &*aft, &format!("/{run}/aft"), 1).await?);
        up_smb.push(srv.smbclient(local.path(), &format!("put big.bin {run}/smb/big.bin"))?);
        up_rcl.push(srv.rclone(&big_s, &format!("remote:/{run}/rcl"))?);
    }
    let (up_aft, up_smb, up_rcl) = (median(up_aft), median(up_smb), median(up_rcl));
    let what = format!("upload {} MiB", a.size_mib);
    row(
        &what,
        &mib_s(size, up_aft),
        "smbclient",
        &mib_s(size, up_smb),
    );
    row("", "-", "rclone", &mib_s(size, up_rcl));

    let (mut d_aft, mut d_smb, mut d_rcl) = (vec![], vec![], vec![]);
    for _ in 0..a.reps {
        let _ = std::fs::remove_dir_all(&down);
        d_aft.push(aft_copy(&*aft, &format!("/{run}/aft/big.bin"), &fs, &down_s, 1).await?);
        let _ = std::fs::remove_dir_all(&down);
        std::fs::create_dir_all(&down)?;
        d_smb.push(srv.smbclient(&down, &format!("get {run}/smb/big.bin big.bin"))?);
        let _ = std::fs::remove_dir_all(&down);
        d_rcl.push(srv.rclone(&format!("remote:/{run}/rcl/big.bin"), &down_s)?);
    }
    let (d_aft, d_smb, d_rcl) = (median(d_aft), median(d_smb), median(d_rcl));
    let what = format!("download {} MiB", a.size_mib);
    row(&what, &mib_s(size, d_aft), "smbclient", &mib_s(size, d_smb));
    row("", "-", "rclone", &mib_s(size, d_rcl));

    let (mut up_aft, mut up_smb, mut up_rcl) = (vec![], vec![], vec![]);
    for _ in 0..a.reps {
        let small_glob = format!("{small_s}/*");
        up_aft.push(aft_copy(&fs, &small_glob, &*aft, &format!("/{run}/aft/small"), 16).await?);
        up_smb.push(srv.smbclient(&small, &format!("prompt off; cd {run}/smb/small; mput *"))?);
        up_rcl.push(srv.rclone(&small_s, &format!("remote:/{run}/rcl/small"))?);
    }
    let (up_aft, up_smb, up_rcl) = (median(up_aft), median(up_smb), median(up_rcl));
    let what = format!("upload {} x 8 KiB", a.files);
    row(&what, &secs(up_aft), "smbclient", &secs(up_smb));
    row("", "-", "rclone", &secs(up_rcl));

    let (mut d_aft, mut d_smb, mut d_rcl) = (vec![], vec![], vec![]);
    for _ in 0..a.reps {
        let _ = std::fs::remove_dir_all(&down);
        let from = format!("/{run}/aft/small/*");
        d_aft.push(aft_copy(&*aft, &from, &fs, &down_s, 16).await?);
        let _ = std::fs::remove_dir_all(&down);
        std::fs::create_dir_all(&down)?;
        d_smb.push(srv.smbclient(&down, &format!("prompt off; cd {run}/smb/small; mget *"))?);
        let _ = std::fs::remove_dir_all(&down);
        d_rcl.push(srv.rclone(&format!("remote:/{run}/rcl/small"), &down_s)?);
    }
    let (d_aft, d_smb, d_rcl) = (median(d_aft), median(d_smb), median(d_rcl));
    let what = format!("download {} x 8 KiB", a.files);
    row(&what, &secs(d_aft), "smbclient", &secs(d_smb));
    row("", "-", "rclone", &secs(d_rcl));

    aft.remove_all(&format!("/{run}")).await?;
    aft.close().await?;
    Ok(())
}
