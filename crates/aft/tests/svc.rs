//! `aft svc` through the real binary on a machine where systemd is installed but is not the
//! init system (as in a container, and here): `install` creates the system user, writes a
//! hardened unit that `systemd-analyze verify` accepts, and the unit's command runs the
//! service as that user; `status`, `start` and `uninstall` say what they can do.

mod support;

use std::process::{Command, Stdio};

use support::{Aft, free_port};

#[test]
fn install_writes_a_checked_unit_whose_command_serves_as_its_user() {
    let aft = Aft::new();
    let scratch = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let data = scratch.path().join("var-lib-aft");
    let units = scratch.path().join("units");
    let user = format!("aftsvc{}", std::process::id() % 100_000);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let said = support::ok(support::aft_at(
        &data,
        &[
            "svc",
            "install",
            "--user",
            &user,
            "--listen",
            &listen,
            "--unit-dir",
            units.to_str().unwrap(),
            "--writable",
            "/srv/outbox",
        ],
    ));
    assert!(
        said.contains("wrote and checked") && said.contains("systemd is not running"),
        "{said}"
    );
    let unit = std::fs::read_to_string(units.join("aft.service")).unwrap();
    for line in [
        format!("User={user}"),
        "ProtectSystem=strict".into(),
        "NoNewPrivileges=yes".into(),
        format!("ReadWritePaths={} -/srv/outbox", data.display()),
        format!("--data {} serve --listen {listen}", data.display()),
    ] {
        assert!(unit.contains(&line), "the unit lacks {line:?}:\n{unit}");
    }
    let owner = Command::new("stat")
        .args(["-c", "%U %a"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&owner.stdout).trim(),
        format!("{user} 700")
    );

    // What systemd would run, as the unit's user: the service comes up on its data.
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let mut child = Command::new("runuser")
        .args(["-u", &user, "--", "sh", "-c", &format!("exec {exec}")])
        .env_remove("AFT_DATA")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = support::wait_until_listening(&mut child);
    let status = support::ok(support::aft_at(&data, &["svc", "status"]));
    // `runuser` forks the service and waits for it: killing `runuser` would leave the
    // service running (and its user undeletable). Stop the service by its pid first.
    let service_pid = status
        .split("running: pid")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .find(|s| !s.is_empty())
        })
        .map(str::to_string);
    match &service_pid {
        Some(pid) => {
            let _ = Command::new("kill").arg(pid).status();
        }
        None => {
            let _ = child.kill();
        }
    }
    let _ = child.wait();
    let cleanup = || {
        let _ = Command::new("userdel").arg(&user).status();
    };
    if !up {
        cleanup();
        panic!("the unit's command did not start the service as {user}");
    }
    assert!(status.contains("running: pid"), "{status}");

    let refused = aft.fails(&["svc", "start"], 1);
    assert!(refused.contains("systemd is not running"), "{refused}");
    let removed = aft.ok(&["svc", "uninstall", "--unit-dir", units.to_str().unwrap()]);
    assert!(removed.contains("removed"), "{removed}");
    assert!(!units.join("aft.service").exists());
    cleanup();
    // The service is gone with its user: nothing of the test is left running.
    let user_left = Command::new("id").arg(&user).output().unwrap();
    assert!(
        !user_left.status.success(),
        "user {user} is still there: its service kept running"
    );
}
