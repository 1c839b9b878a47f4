//! The Debian package (issue 16): `packaging/build-deb.sh` (cargo-deb) packs the binary the
//! suite built with the unit, man pages and completions it makes; `dpkg -i` installs it,
//! `aft` runs from PATH, systemd accepts the unit, and `dpkg -r` / `dpkg --purge` take it
//! away again. Runs as root (as the test command does), since dpkg installs system-wide.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn installed() -> bool {
    Command::new("dpkg")
        .args(["-s", "aft"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn deb_installs_runs_from_path_and_removes_cleanly() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "dpkg -i needs root: run the suite as the test command does"
    );
    let root = workspace();
    // Pack the binary this suite built (building again could swap it under other tests).
    let out = run(Command::new(root.join("packaging/build-deb.sh"))
        .args(["--profile", "dev", "--no-strip", "--fast"])
        .env("AFT_DEB_NO_BUILD", "1")
        .current_dir(&root));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let deb = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.ends_with(".deb"))
        .unwrap_or_else(|| panic!("cargo deb named no package: {stdout}"))
        .to_string();

    if installed() {
        run(Command::new("dpkg").args(["--purge", "aft"]));
    }
    run(Command::new("dpkg").args(["-i", &deb]));

    // From PATH, the packaged binary answers with the suite's version.
    let version = run(Command::new("aft").arg("--version"));
    assert!(
        String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{version:?}"
    );
    let which = run(Command::new("sh").args(["-c", "command -v aft"]));
    assert_eq!(
        String::from_utf8_lossy(&which.stdout).trim(),
        "/usr/bin/aft"
    );

    // The unit runs the packaged binary on /var/lib/aft as the user aft, and systemd
    // accepts it.
    let unit = std::fs::read_to_string("/lib/systemd/system/aft.service").unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/aft --data /var/lib/aft serve"),
        "{unit}"
    );
    assert!(unit.contains("User=aft") && unit.contains("ProtectSystem=strict"));
    let verify =
        run(Command::new("systemd-analyze").args(["verify", "/lib/systemd/system/aft.service"]));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(said.trim().is_empty(), "systemd-analyze: {said}");

    // The system user and its private data directory.
    run(Command::new("getent").args(["passwd", "aft"]));
    let data = std::fs::metadata("/var/lib/aft").unwrap();
    assert_eq!(data.permissions().mode() & 0o777, 0o700);
    let uid = String::from_utf8_lossy(&run(Command::new("id").args(["-u", "aft"])).stdout)
        .trim()
        .parse::<u32>()
        .unwrap();
    assert_eq!(data.uid(), uid);

    // Man pages for every subcommand and completions for three shells.
    for page in ["aft.1", "aft-run.1", "aft-cp.1", "aft-svc.1"] {
        let path = Path::new("/usr/share/man/man1").join(page);
        let path_gz = Path::new("/usr/share/man/man1").join(format!("{page}.gz"));
        assert!(path.exists() || path_gz.exists(), "{page} is missing");
    }
    for file in [
        "/usr/share/bash-completion/completions/aft",
        "/usr/share/zsh/vendor-completions/_aft",
        "/usr/share/fish/vendor_completions.d/aft.fish",
    ] {
        assert!(Path::new(file).is_file(), "{file} is missing");
    }

    // Removal takes every file of the package and keeps the data; purge takes the user.
    let files = String::from_utf8_lossy(&run(Command::new("dpkg").args(["-L", "aft"])).stdout)
        .lines()
        .map(str::to_string)
        .filter(|p| Path::new(p).is_file())
        .collect::<Vec<_>>();
    assert!(files.iter().any(|f| f == "/usr/bin/aft"), "{files:?}");
    run(Command::new("dpkg").args(["-r", "aft"]));
    for file in &files {
        assert!(!Path::new(file).exists(), "{file} stayed after dpkg -r");
    }
    assert!(
        Path::new("/var/lib/aft").is_dir(),
        "the data must survive a removal"
    );
    run(Command::new("dpkg").args(["--purge", "aft"]));
    assert!(!installed());
    let user = Command::new("getent")
        .args(["passwd", "aft"])
        .output()
        .unwrap();
    assert!(!user.status.success(), "purge must remove the user aft");
    // The data directory is the store and the key: never deleted by the package.
    assert!(Path::new("/var/lib/aft").is_dir());
    std::fs::remove_dir_all("/var/lib/aft").unwrap();
}
