//! The data directory and the database hold job logs, params, scripts and the secrets key:
//! through the real binary, what aft creates is private to its user (0700 directory, 0600
//! files), and an existing database left readable by others is tightened when opened.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::{AFT, Service, ok};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn aft(data: &Path, args: &[&str]) -> String {
    ok(Command::new(AFT)
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("AFT_DATABASE")
        .env_remove("AFT_SECRET_KEY")
        .output()
        .unwrap())
}

/// Every file aft keeps in `data`, with the database's WAL and shared-memory files.
fn assert_private(data: &Path) {
    assert_eq!(mode(data), 0o700, "data directory {}", data.display());
    for name in ["aft.db", "aft.db-wal", "aft.db-shm", "secrets.key"] {
        let path = data.join(name);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
}

#[test]
fn a_new_data_directory_and_its_database_are_private_to_the_user() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("nested/data");
    aft(&data, &["settings", "set", "allow-cli-run", "true"]);
    assert!(data.join("aft.db").exists());
    assert_private(&data);

    let secret_data = scratch.path().join("with-secret");
    let mut child = Command::new(AFT)
        .arg("--data")
        .arg(&secret_data)
        .args(["secret", "set", "s"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"v").unwrap();
    assert!(child.wait().unwrap().success());
    assert!(secret_data.join("secrets.key").exists());
    assert_private(&secret_data);

    let served = scratch.path().join("served");
    let svc = Service::start(&served, &[], &[]);
    assert_private(&served);
    drop(svc);
}

#[test]
fn an_existing_database_readable_by_others_is_tightened_when_opened() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    aft(&data, &["settings", "set", "allow-cli-run", "true"]);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(data.join("aft.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    aft(&data, &["settings", "get", "allow-cli-run"]);
    assert_private(&data);
}

#[test]
fn a_file_that_is_not_a_database_fails_at_once_with_its_cause() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("aft.db"),
        "this is not a database, it is a text file",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(AFT)
        .arg("--data")
        .arg(&data)
        .args(["settings", "get", "allow-cli-run"])
        .env_remove("AFT_DATABASE")
        .output()
        .unwrap();
    let took = started.elapsed();
    let text = support::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("file is not a database"), "{text}");
    assert!(
        took < std::time::Duration::from_secs(2),
        "took {took:?}: {text}"
    );
}
