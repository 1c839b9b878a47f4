//! `aft svc install|uninstall|start|stop|restart|status` (AFT!'s names): run `aft serve` as a
//! systemd service under a dedicated system user, with the usual hardening. Where systemd is
//! not the init system (a container), `install` still writes and checks the unit and says how
//! to start the service.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use aft_server::discovery::ServiceInfo;
use clap::Subcommand;

use super::fail;
use crate::global::GlobalArgs;

/// The unit's name.
const UNIT: &str = "aft.service";

// Run aft as a system service (systemd).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: SvcCommand,
}

#[derive(Subcommand, Debug)]
enum SvcCommand {
    /// Write, check and enable the systemd unit running `aft serve` (with --data,
    /// --database and --listen carried into it); creates the system user if missing
    Install {
        /// The system user the service runs as (created if missing)
        #[arg(long, default_value = "aft")]
        user: String,
        /// Address and port the service listens on
        #[arg(long, default_value = aft_server::server::DEFAULT_LISTEN, value_name = "ADDR:PORT")]
        listen: String,
        /// More folders scripts may write to (the rest of the system is read-only to the
        /// service); repeatable
        #[arg(long = "writable", value_name = "DIR")]
        writable: Vec<PathBuf>,
        /// Where to write the unit
        #[arg(long, default_value = "/etc/systemd/system", value_name = "DIR")]
        unit_dir: PathBuf,
    },
    /// Print the unit `install` would write, for packages and configuration management
    /// (nothing is changed)
    Unit {
        /// The system user the service runs as
        #[arg(long, default_value = "aft")]
        user: String,
        /// Address and port the service listens on
        #[arg(long, default_value = aft_server::server::DEFAULT_LISTEN, value_name = "ADDR:PORT")]
        listen: String,
        /// More folders scripts may write to; repeatable
        #[arg(long = "writable", value_name = "DIR")]
        writable: Vec<PathBuf>,
        /// The aft binary the unit starts (default: this one)
        #[arg(long, value_name = "PATH")]
        exe: Option<PathBuf>,
    },
    /// Stop and disable the service and remove its unit (the data directory stays)
    Uninstall {
        /// Where the unit was written
        #[arg(long, default_value = "/etc/systemd/system", value_name = "DIR")]
        unit_dir: PathBuf,
    },
    /// Start the service (systemctl start)
    Start,
    /// Stop the service (systemctl stop)
    Stop,
    /// Restart the service (systemctl restart)
    Restart,
    /// Whether the service runs, and its URL
    Status {
        /// Print JSON: {"running", "pid", "url", "nodeId", "unit"}
        #[arg(long)]
        json: bool,
    },
}

/// Run `aft svc ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    let result = match args.command {
        SvcCommand::Install {
            user,
            listen,
            writable,
            unit_dir,
        } => install(global, &user, &listen, &writable, &unit_dir),
        SvcCommand::Unit {
            user,
            listen,
            writable,
            exe,
        } => print_unit(global, &user, &listen, &writable, exe),
        SvcCommand::Uninstall { unit_dir } => uninstall(&unit_dir),
        SvcCommand::Start => systemctl(&["start", UNIT]),
        SvcCommand::Stop => systemctl(&["stop", UNIT]),
        SvcCommand::Restart => systemctl(&["restart", UNIT]),
        SvcCommand::Status { json } => {
            status(global, json);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Whether systemd runs this machine (it is PID 1 and has its runtime folder).
fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn install(
    global: &GlobalArgs,
    user: &str,
    listen: &str,
    writable: &[PathBuf],
    unit_dir: &Path,
) -> Result<(), String> {
    let data = absolute(&global.data_dir())?;
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| format!("cannot find the aft binary: {e}"))?;
    ensure_user(user, &data)?;
    aft_store::create_data_dir(&data).map_err(|e| e.to_string())?;
    run(Command::new("chown")
        .args(["-R", &format!("{user}:")])
        .arg(&data))?;

    let writable = writable
        .iter()
        .map(|p| absolute(p))
        .collect::<Result<Vec<_>, _>>()?;
    let unit = unit_text(
        &exe,
        &data,
        global.database.as_deref(),
        listen,
        user,
        &writable,
    );
    std::fs::create_dir_all(unit_dir)
        .map_err(|e| format!("cannot create {}: {e}", unit_dir.display()))?;
    let path = unit_dir.join(UNIT);
    std::fs::write(&path, unit).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    verify(&path)?;
    outln!("wrote and checked {}", path.display());
    if systemd_running() {
        systemctl(&["daemon-reload"])?;
        systemctl(&["enable", "--now", UNIT])?;
        outln!("enabled and started {UNIT}; aft svc status shows it");
    } else {
        outln!(
            "systemd is not running this machine (a container?): on a systemd host run \
             'systemctl daemon-reload && systemctl enable --now {UNIT}'; here, keep \
             'aft --data {} serve' running under your supervisor",
            data.display()
        );
    }
    Ok(())
}

fn print_unit(
    global: &GlobalArgs,
    user: &str,
    listen: &str,
    writable: &[PathBuf],
    exe: Option<PathBuf>,
) -> Result<(), String> {
    let data = absolute(&global.data_dir())?;
    let exe = match exe {
        Some(exe) => exe,
        None => std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .map_err(|e| format!("cannot find the aft binary: {e}"))?,
    };
    let writable = writable
        .iter()
        .map(|p| absolute(p))
        .collect::<Result<Vec<_>, _>>()?;
    out!(
        "{}",
        unit_text(
            &exe,
            &data,
            global.database.as_deref(),
            listen,
            user,
            &writable
        )
    );
    Ok(())
}

/// The unit: `aft serve` as `user`, restarted on failure, the system read-only to it except
/// the data directory and the `writable` folders.
fn unit_text(
    exe: &Path,
    data: &Path,
    database: Option<&str>,
    listen: &str,
    user: &str,
    writable: &[PathBuf],
) -> String {
    let mut exec = format!("{} --data {}", exe.display(), data.display());
    if let Some(url) = database {
        exec.push_str(&format!(" --database {url}"));
    }
    exec.push_str(&format!(" serve --listen {listen}"));
    let mut paths = vec![data.display().to_string()];
    // "-": a folder that does not exist (yet) must not keep the service from starting.
    paths.extend(writable.iter().map(|p| format!("-{}", p.display())));
    format!(
        "# Made by 'aft svc install' or 'aft svc unit'.
[Unit]
Description=aft automated file transfers
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={user}
Group={user}
ExecStart={exec}
Restart=on-failure
RestartSec=5
# aft serve gives running jobs 10 s (--grace) after SIGTERM.
TimeoutStopSec=30
LimitNOFILE=65536
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths={paths}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6

[Install]
WantedBy=multi-user.target
",
        paths = paths.join(" ")
    )
}

/// `systemd-analyze verify`: it exits 0 even when it ignores a line, so any word it says
/// is a failure.
fn verify(unit: &Path) -> Result<(), String> {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .map_err(|e| format!("cannot run systemd-analyze (is systemd installed?): {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !said.trim().is_empty() {
        return Err(format!(
            "systemd-analyze verify refused {}: {}",
            unit.display(),
            said.trim()
        ));
    }
    Ok(())
}

/// Create system user `user` (home: the data directory, no login) if it does not exist.
fn ensure_user(user: &str, home: &Path) -> Result<(), String> {
    let exists = Command::new("id")
        .arg("-u")
        .arg(user)
        .output()
        .is_ok_and(|o| o.status.success());
    if exists {
        return Ok(());
    }
    run(Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
        ])
        .arg("--home-dir")
        .arg(home)
        .arg(user))
    .map_err(|e| format!("cannot create the system user {user} (run as root): {e}"))
}

fn uninstall(unit_dir: &Path) -> Result<(), String> {
    let path = unit_dir.join(UNIT);
    if systemd_running() {
        systemctl(&["disable", "--now", UNIT])?;
    }
    match std::fs::remove_file(&path) {
        Ok(()) => outln!("removed {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("no unit at {}", path.display()));
        }
        Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
    }
    if systemd_running() {
        systemctl(&["daemon-reload"])?;
    }
    outln!("the data directory and the system user are kept");
    Ok(())
}

/// What runs: the service of this data directory (from its service.json) and, under
/// systemd, the unit's state.
fn status(global: &GlobalArgs, json: bool) {
    let info = ServiceInfo::find_live(&global.data_dir());
    let unit = systemd_running().then(|| {
        Command::new("systemctl")
            .args(["is-active", UNIT])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|e| format!("unknown ({e})"))
    });
    if json {
        let value = serde_json::json!({
            "running": info.is_some(),
            "pid": info.as_ref().map(|i| i.pid),
            "url": info.as_ref().map(|i| i.url.clone()),
            "nodeId": info.as_ref().map(|i| i.node_id.clone()),
            "unit": unit,
        });
        outln!("{value}");
        return;
    }
    match info {
        Some(info) => outln!(
            "running: pid {}, {} (node {})",
            info.pid,
            info.url,
            info.node_id
        ),
        None => outln!("not running on {}", global.data_dir().display()),
    }
    if let Some(state) = unit {
        outln!("{UNIT}: {state}");
    }
}

fn systemctl(args: &[&str]) -> Result<(), String> {
    if !systemd_running() {
        return Err(format!(
            "systemd is not running this machine, so there is no {UNIT} to {}; run 'aft serve' under your supervisor",
            args[0]
        ));
    }
    run(Command::new("systemctl").args(args))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}
