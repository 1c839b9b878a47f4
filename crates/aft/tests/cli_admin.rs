//! End-to-end tests of the administration commands (`settings`, `secret`, `script`,
//! `apikey`, `admin`, `reinit`), running the real `aft` binary on a temporary data directory.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use aft_store::{ApiKeyCheck, SecretsKey, Store};

/// A temporary data directory and a way to run `aft` on it.
struct Aft {
    dir: tempfile::TempDir,
}

impl Aft {
    fn new() -> Aft {
        Aft {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aft"));
        cmd.arg("--data").arg(self.data()).args(args);
        cmd.env_remove("AFT_SECRET_KEY")
            .env_remove("AFT_DATABASE")
            .env_remove("AFT_DATA");
        cmd
    }

    /// Run with `stdin` piped in, returning the output whatever the exit code.
    fn run_with(&self, mut cmd: Command, stdin: &str) -> Output {
        let mut child = cmd
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

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(self.command(args), stdin)
    }

    /// Run and require success; returns stdout.
    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "aft {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and require exit `code`; returns stderr.
    fn fails(&self, args: &[&str], stdin: &str, code: i32) -> String {
        let out = self.run(args, stdin);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(code), "aft {args:?}: {stderr}");
        stderr
    }

    async fn store(&self) -> Store {
        Store::open_in_dir(self.data()).await.unwrap()
    }
}

#[test]
fn settings_set_allow_cli_run_and_get_shows_it() {
    let aft = Aft::new();
    assert_eq!(aft.ok(&["settings", "get", "allow-cli-run"], ""), "false\n");
    assert_eq!(
        aft.ok(&["settings", "set", "allow-cli-run", "true"], ""),
        "allow-cli-run = true\n"
    );
    assert_eq!(aft.ok(&["settings", "get", "allow-cli-run"], ""), "true\n");
    let table = aft.ok(&["settings", "get"], "");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("allow-cli-run") && l.contains("true") && l.ends_with("set")),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("max-concurrent-jobs")
            && l.contains('4')
            && l.ends_with("default")),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&aft.ok(&["settings", "get", "--json"], "")).unwrap();
    assert_eq!(json["allow-cli-run"], "true");
    assert_eq!(json["smtp-port"], "587");
}

#[test]
fn settings_refuse_unknown_keys_and_bad_values_in_one_line() {
    let aft = Aft::new();
    let err = aft.fails(&["settings", "set", "allow-cli-runs", "true"], "", 1);
    assert!(
        err.contains("allow-cli-runs") && err.contains("allow-cli-run,"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = aft.fails(&["settings", "set", "smtp-tls", "ssl"], "", 1);
    assert!(
        err.contains("smtp-tls") && err.contains("starttls, tls or none"),
        "{err}"
    );
    // A webhook URL is checked when it is set, not when a notification fails.
    let err = aft.fails(
        &["settings", "set", "notify-webhook", "hooks.example.com/aft"],
        "",
        1,
    );
    assert!(
        err.contains("notify-webhook") && err.contains("http:// or https:// URL"),
        "{err}"
    );
    assert_eq!(
        aft.ok(
            &[
                "settings",
                "set",
                "notify-webhook",
                "https://hooks.example.com/aft"
            ],
            ""
        ),
        "notify-webhook = https://hooks.example.com/aft\n"
    );
}

#[tokio::test]
async fn secret_value_never_appears_in_output_or_in_the_database_file() {
    let aft = Aft::new();
    let value = "TopSecret-Value-4711";
    let out = aft.ok(&["secret", "set", "SftpPass"], &format!("{value}\n"));
    assert!(!out.contains(value));
    let listed = aft.ok(&["secret", "list"], "");
    assert!(
        listed.contains("SftpPass") && !listed.contains(value),
        "{listed}"
    );
    let json = aft.ok(&["secret", "list", "--json"], "");
    assert!(json.contains("SftpPass") && !json.contains(value), "{json}");
    for entry in std::fs::read_dir(aft.data()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "{} holds the secret in clear text",
            path.display()
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(aft.data().join("secrets.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "secrets.key must be private");
    }
    // One trailing newline is dropped, nothing else.
    let key = SecretsKey::load_or_create(aft.data()).unwrap();
    let store = aft.store().await;
    assert_eq!(
        store
            .get_secret(&key, "SftpPass")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        value
    );
    aft.ok(&["secret", "set", "Spaces"], "  two lines\nkept\n\n");
    assert_eq!(
        store
            .get_secret(&key, "Spaces")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "  two lines\nkept\n"
    );
    aft.ok(&["secret", "delete", "Spaces"], "");
    assert!(!aft.ok(&["secret", "list"], "").contains("Spaces"));
    let err = aft.fails(&["secret", "delete", "Spaces"], "", 1);
    assert!(err.contains("not found: Spaces"), "{err}");
}

#[test]
fn secret_value_is_refused_on_the_command_line() {
    let aft = Aft::new();
    aft.fails(&["secret", "set", "Name", "value-in-argv"], "", 2);
    let err = aft.fails(&["secret", "set", "Name"], "", 2);
    assert!(err.contains("standard input"), "{err}");
}

#[test]
fn secrets_under_a_wrong_key_fail_clearly() {
    let aft = Aft::new();
    aft.ok(&["secret", "set", "a"], "one");
    let other = SecretsKey::generate();
    let mut cmd = aft.command(&["secret", "set", "b"]);
    cmd.env("AFT_SECRET_KEY", other.to_base64().expose());
    let out = aft.run_with(cmd, "two");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("secrets were encrypted with another key: check AFT_SECRET_KEY / secrets.key"),
        "{err}"
    );
    let mut cmd = aft.command(&["secret", "set", "b"]);
    cmd.env("AFT_SECRET_KEY", "not base64!");
    let out = aft.run_with(cmd, "two");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("AFT_SECRET_KEY"), "{err}");
}

#[test]
fn script_push_list_show_delete_with_case_insensitive_names() {
    let aft = Aft::new();
    let file = aft.data().join("nightly.syncjs");
    std::fs::write(&file, "Log('one');\n").unwrap();
    let file = file.to_str().unwrap();
    aft.ok(
        &[
            "script",
            "push",
            "Nightly",
            file,
            "--description",
            "the nightly run",
            "--retry-safe",
        ],
        "",
    );
    std::fs::write(aft.data().join("nightly.syncjs"), "Log('two');\n").unwrap();
    let out = aft.ok(&["script", "push", "NIGHTLY", file], "");
    assert!(
        out.contains("updated"),
        "pushing the same name in other case updates: {out}"
    );
    let list = aft.ok(&["script", "list"], "");
    assert_eq!(list.lines().count(), 2, "one header and one script: {list}");
    let row = list.lines().nth(1).unwrap();
    assert!(
        row.starts_with("Nightly ") && row.contains("yes") && row.ends_with("the nightly run"),
        "{row}"
    );
    assert_eq!(aft.ok(&["script", "show", "nightly"], ""), "Log('two');\n");
    let json: serde_json::Value =
        serde_json::from_str(&aft.ok(&["script", "list", "--json"], "")).unwrap();
    assert_eq!(json[0]["name"], "Nightly");
    assert_eq!(json[0]["retrySafe"], true);
    aft.ok(&["script", "delete", "NiGhTlY"], "");
    let err = aft.fails(&["script", "show", "Nightly"], "", 1);
    assert!(err.contains("script not found: Nightly"), "{err}");
    let err = aft.fails(&["script", "push", "x", "/no/such/file.syncjs"], "", 2);
    assert!(err.contains("/no/such/file.syncjs"), "{err}");
}

#[test]
fn apikey_allow_list_accepts_ipv4_ipv6_and_cidr_and_rejects_junk() {
    let aft = Aft::new();
    let out = aft.run(
        &[
            "apikey",
            "create",
            "--name",
            "ci",
            "--allow",
            "127.0.0.1,10.0.0.0/8",
            "--allow",
            "::1, fd00::/8",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap();
    assert!(
        key.trim().starts_with("aft_") && key.trim().len() >= 43,
        "{key}"
    );
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot be shown again")
    );
    let list = aft.ok(&["apikey", "list"], "");
    assert!(
        list.contains("127.0.0.1, 10.0.0.0/8, ::1, fd00::/8") && list.contains("active"),
        "{list}"
    );
    assert!(!list.contains(key.trim()), "the key is never listed");
    let err = aft.fails(
        &[
            "apikey",
            "create",
            "--name",
            "bad",
            "--allow",
            "10.0.0.0/8,not-an-ip",
        ],
        "",
        2,
    );
    assert!(err.contains("\"not-an-ip\""), "{err}");
    let err = aft.fails(
        &[
            "apikey",
            "create",
            "--name",
            "bad",
            "--allow",
            "10.0.0.0/40",
        ],
        "",
        2,
    );
    assert!(err.contains("10.0.0.0/40"), "{err}");
    aft.fails(&["apikey", "create", "--name", "bad"], "", 2);
    let err = aft.fails(
        &["apikey", "create", "--name", "CI", "--allow", "::1"],
        "",
        1,
    );
    assert!(err.contains("already exists"), "{err}");
}

#[tokio::test]
async fn expired_and_revoked_keys_do_not_authenticate() {
    let aft = Aft::new();
    let revoked = aft.ok(
        &["apikey", "create", "--name", "old", "--allow", "127.0.0.1"],
        "",
    );
    aft.ok(&["apikey", "revoke", "old"], "");
    let expiring = aft.ok(
        &[
            "apikey",
            "create",
            "--name",
            "brief",
            "--allow",
            "127.0.0.1",
            "--expires",
            "1s",
        ],
        "",
    );
    let live = aft.ok(
        &[
            "apikey",
            "create",
            "--name",
            "live",
            "--allow",
            "127.0.0.1",
            "--expires",
            "30d",
            "--scripts",
            "a,b",
        ],
        "",
    );
    aft.fails(
        &[
            "apikey",
            "create",
            "--name",
            "x",
            "--allow",
            "127.0.0.1",
            "--expires",
            "2000-01-01T00:00:00Z",
        ],
        "",
        2,
    );
    aft.fails(
        &[
            "apikey",
            "create",
            "--name",
            "x",
            "--allow",
            "127.0.0.1",
            "--expires",
            "soon",
        ],
        "",
        2,
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let store = aft.store().await;
    assert!(matches!(
        store.authenticate_api_key(revoked.trim()).await.unwrap(),
        ApiKeyCheck::Revoked(_)
    ));
    assert!(matches!(
        store.authenticate_api_key(expiring.trim()).await.unwrap(),
        ApiKeyCheck::Expired(_)
    ));
    let ApiKeyCheck::Valid(key) = store.authenticate_api_key(live.trim()).await.unwrap() else {
        panic!("the live key must authenticate");
    };
    assert_eq!(key.scripts, Some(vec!["a".to_string(), "b".to_string()]));
    let list = aft.ok(&["apikey", "list"], "");
    for (name, status) in [("old", "revoked"), ("brief", "expired"), ("live", "active")] {
        assert!(
            list.lines()
                .any(|l| l.starts_with(name) && l.contains(status)),
            "{name} {status}: {list}"
        );
    }
    aft.ok(&["apikey", "delete", "live"], "");
    assert_eq!(
        store.authenticate_api_key(live.trim()).await.unwrap(),
        ApiKeyCheck::Unknown
    );
}

#[tokio::test]
async fn admin_create_reads_the_password_from_stdin() {
    let aft = Aft::new();
    aft.ok(&["admin", "create", "alice"], "correct-horse\n");
    let store = aft.store().await;
    assert!(
        store
            .verify_admin("alice", "correct-horse")
            .await
            .unwrap()
            .is_some()
    );
    let err = aft.fails(&["admin", "create", "bob"], "short\n", 1);
    assert!(err.contains("at least 8"), "{err}");
    assert!(aft.ok(&["admin", "list"], "").contains("alice"));
}

/// Write a service.json naming `pid`, as a running `aft serve` would.
fn fake_service_file(data: &Path, pid: u32) {
    let info = serde_json::json!({
        "pid": pid,
        "url": "https://127.0.0.1:1",
        "cert_path": data.join("cert.pem"),
        "token": "t",
        "node_id": "n",
    });
    std::fs::write(data.join("service.json"), info.to_string()).unwrap();
}

#[tokio::test]
async fn reinit_refuses_while_a_service_runs_and_resets_otherwise() {
    let aft = Aft::new();
    aft.ok(&["settings", "set", "allow-cli-run", "true"], "");
    aft.ok(&["admin", "create", "alice"], "password-1");
    aft.ok(&["secret", "set", "kept-secret"], "v");
    aft.ok(
        &[
            "apikey",
            "create",
            "--name",
            "kept-key",
            "--allow",
            "127.0.0.1",
        ],
        "",
    );
    let file = aft.data().join("s.syncjs");
    std::fs::write(&file, "Log(1)").unwrap();
    aft.ok(
        &["script", "push", "kept-script", file.to_str().unwrap()],
        "",
    );

    // This test process is alive, so a service.json naming it looks like a live service.
    fake_service_file(aft.data(), std::process::id());
    let err = aft.fails(&["reinit"], "", 1);
    assert!(
        err.contains("service is running") && err.contains(&std::process::id().to_string()),
        "{err}"
    );
    assert_eq!(aft.ok(&["settings", "get", "allow-cli-run"], ""), "true\n");

    fake_service_file(aft.data(), u32::MAX - 1);
    // Without a terminal to ask on, it needs --yes; nothing changes without it.
    let err = aft.fails(&["reinit"], "yes\n", 2);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(aft.ok(&["settings", "get", "allow-cli-run"], ""), "true\n");
    aft.ok(&["reinit", "--yes"], "");
    assert_eq!(aft.ok(&["settings", "get", "allow-cli-run"], ""), "false\n");
    let store = aft.store().await;
    assert_eq!(store.count_admins().await.unwrap(), 0);
    assert!(store.script_by_name("kept-script").await.unwrap().is_some());
    assert_eq!(store.list_secrets().await.unwrap().len(), 1);
    assert_eq!(store.list_api_keys().await.unwrap().len(), 1);
}

#[tokio::test]
async fn admin_commands_work_against_postgres() {
    let db = aft_store::testing::TempPostgres::create().await;
    let aft = Aft::new();
    let run = |args: &[&str], stdin: &str| {
        let mut cmd = aft.command(&["--database", &db.url]);
        cmd.args(args);
        aft.run_with(cmd, stdin)
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert!(
            run(&["settings", "set", "allow-cli-run", "on"], "")
                .status
                .success()
        );
        assert_eq!(
            run(&["settings", "get", "allow-cli-run"], "").stdout,
            b"true\n"
        );
        assert!(run(&["secret", "set", "pg"], "value").status.success());
        let listed = run(&["secret", "list"], "");
        assert!(String::from_utf8_lossy(&listed.stdout).contains("pg"));
        assert!(
            !aft.data().join("aft.db").exists(),
            "no SQLite file with --database postgres://"
        );
    }));
    db.drop_database().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
