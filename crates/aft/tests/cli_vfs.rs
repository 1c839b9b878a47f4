//! `aft vfs add|list|show|delete|test` with the real binary on a temporary data directory;
//! `test` connects to the real sshd of ci/peers/sshd.sh.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn peer_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through ci/test.sh, which starts the real servers (or start ci/peers/sshd.sh by hand and source its output)")
    })
}

struct Aft {
    dir: tempfile::TempDir,
}

impl Aft {
    fn new() -> Aft {
        Aft {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aft"))
            .arg("--data")
            .arg(self.dir.path())
            .args(args)
            .env_remove("AFT_SECRET_KEY")
            .env_remove("AFT_DATABASE")
            .env_remove("AFT_DATA")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aft");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, "");
        assert!(
            out.status.success(),
            "aft {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.run(args, "");
        assert!(
            !out.status.success(),
            "aft {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

#[test]
fn vfs_add_list_show_test_delete_an_sftp_entry_with_a_secret_password() {
    let aft = Aft::new();
    let pass = peer_env("AFT_TEST_SFTP_PASS");
    let out = aft.run(&["secret", "set", "partner-pass"], &pass);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let host = format!("Host={}", peer_env("AFT_TEST_SFTP_ADDR"));
    let user = format!("User={}", peer_env("AFT_TEST_SFTP_USER"));
    let pin = format!("HostKeySHA256={}", peer_env("AFT_TEST_SFTP_HOSTKEY_SHA256"));
    let base = format!("BaseDir={}", peer_env("AFT_TEST_SFTP_HOME"));
    let args = [
        "vfs", "add", "Partner", "--type", "sftp", "--set", &host, "--set", &user,
    ];
    let mut with_secret = args.to_vec();
    with_secret.extend([
        "--set",
        "PassFromSecret=partner-pass",
        "--set",
        &pin,
        "--set",
        &base,
    ]);
    assert!(aft.ok(&with_secret).contains("Partner"));

    let list = aft.ok(&["vfs", "list"]);
    assert!(
        list.contains("Partner")
            && list.contains("sftp")
            && list.contains(&peer_env("AFT_TEST_SFTP_ADDR")),
        "{list}"
    );
    let show = aft.ok(&["vfs", "show", "partner"]);
    assert!(
        show.contains("PassFromSecret") && show.contains("partner-pass"),
        "{show}"
    );
    assert!(
        !show.contains(&pass),
        "show must never print the secret's value: {show}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&aft.ok(&["vfs", "list", "--json"])).unwrap();
    assert_eq!(json[0]["type"], "sftp");

    let tested = aft.ok(&["vfs", "test", "Partner"]);
    assert!(tested.contains("connected to"), "{tested}");

    // Adding the same name again needs --replace; without the pin, test prints the
    // fingerprint to pin and fails.
    let (_, _, err) = aft.fails(&with_secret);
    assert!(err.contains("--replace"), "{err}");
    let mut unpinned = args.to_vec();
    unpinned.extend(["--set", "PassFromSecret=partner-pass", "--replace"]);
    aft.ok(&unpinned);
    let (code, out, err) = aft.fails(&["vfs", "test", "Partner"]);
    assert_eq!(code, 1);
    let fingerprint = peer_env("AFT_TEST_SFTP_HOSTKEY_SHA256");
    assert!(
        out.contains(&fingerprint) && err.contains("HostKeySHA256="),
        "stdout: {out}\nstderr: {err}"
    );

    aft.ok(&["vfs", "delete", "PARTNER"]);
    assert!(!aft.ok(&["vfs", "list"]).contains("Partner"));
    let (code, _, err) = aft.fails(&["vfs", "show", "Partner"]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn vfs_add_refuses_clear_text_credentials_and_unknown_types() {
    let aft = Aft::new();
    let (_, _, err) = aft.fails(&[
        "vfs",
        "add",
        "x",
        "--type",
        "sftp",
        "--set",
        "Host=h:22",
        "--set",
        "Pass=hunter2",
    ]);
    assert!(
        err.contains("PassFromSecret") && err.contains("aft secret set"),
        "{err}"
    );
    let (code, _, err) = aft.fails(&["vfs", "add", "x", "--type", "floppy"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("floppy"), "{err}");
    let (code, _, err) = aft.fails(&["vfs", "add", "x", "--type", "s3", "--set", "no-equals-sign"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn vfs_add_takes_json_fields_and_test_reports_a_failed_connection() {
    let aft = Aft::new();
    aft.ok(&[
        "vfs",
        "add",
        "dead",
        "--type",
        "ftp",
        "--json",
        r#"{"Host":"127.0.0.1:1","User":"u"}"#,
    ]);
    let show = aft.ok(&["vfs", "show", "dead", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(v["settings"]["Host"], "127.0.0.1:1");
    let (code, _, err) = aft.fails(&["vfs", "test", "dead"]);
    assert_eq!(code, 1);
    assert!(err.contains("dead") && err.contains("127.0.0.1:1"), "{err}");
}
