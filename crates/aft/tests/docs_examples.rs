//! The docs are tests: every runnable example of README.md and docs/*.md — SyncJS, shell,
//! curl — runs through the real `aft` binary against the real peers, with only hosts, ports,
//! fingerprints and placeholders substituted, and must succeed with the effect it promises.
//!
//! Each fenced block is classified by its language tag and the marker on the line before it:
//!
//! - ```` ```text ```` and untagged fences are output samples and listings: not run.
//! - `<!-- not-run: REASON -->`: not run, for the (non-empty) reason given. Counted.
//! - `<!-- run: RECIPE -->`: run with the recipe of that name in [`prepare`] (set-up such
//!   as secrets, VFS entries or a running service, the substitution table, and the check of
//!   its effect). Every recipe must be used by exactly one block of its document.
//! - no marker: ```` ```js ````/```` ```syncjs ```` blocks run with `aft run -f` (in
//!   docs/syncjs-library.md with that page's parameters), ```` ```sh ```` blocks with bash.
//!   Any other language needs a marker, so a new example cannot be skipped silently.
//!
//! Shell blocks run as `bash -euo pipefail` in a fresh work folder with the test-built `aft`
//! first on `PATH` and `AFT_DATA` pointing at a fresh data directory; SyncJS blocks run as
//! `aft run -f example.syncjs` there. One test per document, so nextest runs them side by
//! side.

mod support;

#[path = "../../aft-engine/tests/library_support/mod.rs"]
mod library_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{AFT, Aft, Service, peer};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One fenced block of a document.
#[derive(Debug)]
struct Block {
    /// Line of the opening fence (1-based).
    line: usize,
    /// The language tag (`sh`, `js`, ...), empty when none.
    lang: String,
    /// The marker on the last non-blank line before the fence, if any.
    marker: Marker,
    /// The block's text.
    code: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Marker {
    None,
    NotRun(String),
    Run(String),
}

/// The fenced blocks of `doc`.
fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    let mut last_text = "";
    for (i, line) in doc.lines().enumerate() {
        match &mut open {
            Some(block) => {
                if line.trim_end() == "```" {
                    out.push(open.take().unwrap());
                    last_text = line;
                } else {
                    block.code.push_str(line);
                    block.code.push('\n');
                }
            }
            None => {
                if let Some(lang) = line.strip_prefix("```") {
                    let marker = parse_marker(last_text);
                    open = Some(Block {
                        line: i + 1,
                        lang: lang.trim().to_string(),
                        marker,
                        code: String::new(),
                    });
                } else if !line.trim().is_empty() {
                    last_text = line;
                }
            }
        }
    }
    assert!(open.is_none(), "a fence is never closed");
    out
}

fn parse_marker(line: &str) -> Marker {
    let Some(inner) = line
        .trim()
        .strip_prefix("<!--")
        .and_then(|l| l.strip_suffix("-->"))
    else {
        return Marker::None;
    };
    let inner = inner.trim();
    if let Some(reason) = inner.strip_prefix("not-run:") {
        Marker::NotRun(reason.trim().to_string())
    } else if let Some(recipe) = inner.strip_prefix("run:") {
        Marker::Run(recipe.trim().to_string())
    } else {
        Marker::None
    }
}

#[test]
fn markers_are_read() {
    let doc = "text\n<!-- not-run: too slow -->\n```sh\nsleep 1\n```\n\n<!-- run: x -->\n\n```js\nLog(1);\n```\n```text\nout\n```\n";
    let b = blocks(doc);
    assert_eq!(b.len(), 3);
    assert_eq!(b[0].marker, Marker::NotRun("too slow".into()));
    assert_eq!(
        (b[0].line, b[0].lang.as_str(), b[0].code.as_str()),
        (3, "sh", "sleep 1\n")
    );
    assert_eq!(b[1].marker, Marker::Run("x".into()));
    assert_eq!(b[2].marker, Marker::None);
    assert_eq!(b[2].lang, "text");
}

/// Every markdown document has its test below.
#[test]
fn every_document_is_tested() {
    let mut found: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    found.push("README.md".into());
    found.sort();
    let mut tested: Vec<String> = DOCS.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(
        found, tested,
        "add a test for each new document to DOCS and below"
    );
}

const DOCS: &[&str] = &[
    "README.md",
    "docs/api.md",
    "docs/architecture.md",
    "docs/audit-and-roles.md",
    "docs/benchmarks.md",
    "docs/cluster.md",
    "docs/dry-run.md",
    "docs/operations.md",
    "docs/reliability.md",
    "docs/retries-and-notifications.md",
    "docs/schedules.md",
    "docs/security.md",
    "docs/store.md",
    "docs/syncjs-library.md",
    "docs/syncjs-transfers.md",
    "docs/syncjs-watchers.md",
    "docs/syncjs.md",
    "docs/transfers.md",
    "docs/web-ui.md",
];

#[test]
fn readme() {
    run_doc("README.md", &["first-job", "ci-pipeline"]);
}
#[test]
fn api() {
    run_doc(
        "docs/api.md",
        &[
            "post-job",
            "follow-log",
            "download-log",
            "list-secrets",
            "vfs-test",
            "aft-start",
            "delete-in-use",
        ],
    );
}
#[test]
fn architecture() {
    run_doc("docs/architecture.md", &[]);
}

#[test]
fn security() {
    run_doc("docs/security.md", &[]);
}
#[test]
fn audit_and_roles() {
    run_doc("docs/audit-and-roles.md", &[]);
}
#[test]
fn benchmarks() {
    run_doc("docs/benchmarks.md", &[]);
}
#[test]
fn dry_run() {
    run_doc("docs/dry-run.md", &[]);
}
#[test]
fn cluster() {
    run_doc("docs/cluster.md", &["start-node", "list-nodes"]);
}
#[test]
fn operations() {
    run_doc(
        "docs/operations.md",
        &["start-each-line", "retry-safe", "job-commands", "cp-ls"],
    );
}
#[test]
fn retries_and_notifications() {
    run_doc(
        "docs/retries-and-notifications.md",
        &["dead-letters", "policy-api"],
    );
}
#[test]
fn schedules() {
    run_doc(
        "docs/schedules.md",
        &["schedule-commands", "watcher-commands", "until-halted"],
    );
}
#[test]
fn store() {
    run_doc("docs/store.md", &["backup-restore"]);
}
#[test]
fn syncjs_library() {
    run_doc("docs/syncjs-library.md", &[]);
}
#[test]
fn syncjs_transfers() {
    run_doc(
        "docs/syncjs-transfers.md",
        &[
            "sftp-upload",
            "getvfs",
            "sync",
            "vfs-commands",
            "reports-to-s3",
            "webdav-otfe",
            "smb-upload",
        ],
    );
}
#[test]
fn syncjs_watchers() {
    run_doc(
        "docs/syncjs-watchers.md",
        &["fs-watcher", "remote-watcher-root", "remote-watcher"],
    );
}
#[test]
fn syncjs() {
    run_doc("docs/syncjs.md", &["halt-loop", "wait-for-halt"]);
}
#[test]
fn transfers() {
    run_doc("docs/transfers.md", &[]);
}
#[test]
fn reliability() {
    run_doc("docs/reliability.md", &[]);
}
#[test]
fn web_ui() {
    run_doc("docs/web-ui.md", &[]);
}

/// What kind of program a block is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lang {
    Shell,
    SyncJs,
}

fn lang_of(tag: &str) -> Option<Lang> {
    match tag {
        "sh" | "bash" | "shell" | "console" => Some(Lang::Shell),
        "js" | "javascript" | "syncjs" => Some(Lang::SyncJs),
        _ => None,
    }
}

/// Run every runnable block of `doc`; `recipes` are the `run:` recipes it must use.
fn run_doc(doc: &str, recipes: &[&str]) {
    let text = std::fs::read_to_string(root().join(doc)).unwrap();
    let mut shared = Shared::default();
    let mut used = BTreeSet::new();
    let (mut ran, mut not_run) = (0, Vec::new());
    let mut previous: Option<Ctx> = None;
    for block in blocks(&text) {
        let at = format!("{doc}:{}", block.line);
        let recipe = match &block.marker {
            Marker::NotRun(reason) => {
                assert!(
                    !reason.is_empty(),
                    "{at}: a not-run marker needs its reason"
                );
                not_run.push(format!("{at}: {reason}"));
                continue;
            }
            Marker::Run(name) => {
                assert!(
                    recipes.contains(&name.as_str()),
                    "{at}: no recipe {name:?} for {doc} in docs_examples.rs"
                );
                assert!(used.insert(name.clone()), "{at}: recipe {name} used twice");
                Some(name.clone())
            }
            Marker::None => None,
        };
        let Some(lang) = lang_of(&block.lang) else {
            assert!(
                matches!(block.lang.as_str(), "" | "text") && recipe.is_none(),
                "{at}: a ```{} block must run (a `<!-- run: RECIPE -->` marker) or say why not \
                 (`<!-- not-run: REASON -->`); use ```text for output samples",
                block.lang
            );
            continue;
        };
        let ctx = run_block(
            doc,
            &at,
            &block,
            lang,
            recipe.as_deref(),
            previous.take(),
            &mut shared,
        );
        previous = Some(ctx);
        ran += 1;
    }
    let unused: Vec<_> = recipes.iter().filter(|r| !used.contains(**r)).collect();
    assert!(
        unused.is_empty(),
        "{doc}: recipes no block uses: {unused:?}"
    );
    eprintln!("{doc}: {ran} example(s) ran, {} not run", not_run.len());
    for n in &not_run {
        eprintln!("  not run: {n}");
    }
}

/// Things a document's recipes share, made once.
#[derive(Default)]
struct Shared {
    library: Option<LibraryPeers>,
}

/// The script library's peers: the test HTTPS server and GnuPG keys.
struct LibraryPeers {
    server: library_support::TestServer,
    _keys: tempfile::TempDir,
    partner_pub: String,
    my_pub: String,
    my_sec: String,
}

impl Shared {
    fn library(&mut self) -> &LibraryPeers {
        self.library.get_or_insert_with(|| {
            let server = library_support::https_server();
            let keys = tempfile::tempdir().unwrap();
            let partner = library_support::Gpg::new(
                "Partner <partner@example.com>",
                "partner-pass",
                "ed25519",
            );
            let me = library_support::Gpg::new("Me <me@example.com>", "my-pass", "ed25519");
            let (partner_pub, _) = partner.export(
                "partner@example.com",
                "partner-pass",
                keys.path(),
                "partner",
            );
            let (my_pub, my_sec) = me.export("me@example.com", "my-pass", keys.path(), "me");
            LibraryPeers {
                server,
                _keys: keys,
                partner_pub,
                my_pub,
                my_sec,
            }
        })
    }
}

/// Where a block runs: a data directory, a work folder (the current directory), perhaps a
/// service, and what the recipe set up.
struct Ctx {
    aft: Aft,
    work: tempfile::TempDir,
    service: Option<Service>,
    /// Extra environment for shell blocks (`AFT_KEY`, `TOKEN`, ...).
    env: Vec<(String, String)>,
    /// A folder of this run on the SFTP server (also a local path: the peer is on loopback).
    remote: Option<PathBuf>,
    pg: Option<aft_store::testing::TempPostgres>,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            aft: Aft::new(),
            work: tempfile::tempdir().unwrap(),
            service: None,
            env: Vec::new(),
            remote: None,
            pg: None,
        }
    }

    fn work(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn work_str(&self, name: &str) -> String {
        self.work(name).to_string_lossy().into_owned()
    }

    fn data_str(&self) -> String {
        self.aft.data().to_string_lossy().into_owned()
    }

    fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    fn serve(&mut self) -> &Service {
        if self.service.is_none() {
            self.service = Some(self.aft.serve());
        }
        self.service.as_ref().unwrap()
    }

    fn service(&self) -> &Service {
        self.service.as_ref().expect("the recipe starts a service")
    }

    /// This run's folder on the SFTP server, made on first use.
    fn remote(&mut self) -> PathBuf {
        if self.remote.is_none() {
            self.remote = Some(support::folder_in_sftp_home("docs-").keep());
        }
        self.remote.clone().unwrap()
    }

    fn remote_str(&mut self) -> String {
        self.remote().to_string_lossy().into_owned()
    }

    /// A fresh PostgreSQL database on the test server.
    fn postgres(&mut self) -> String {
        if self.pg.is_none() {
            self.pg = Some(block_on(aft_store::testing::TempPostgres::create()));
        }
        self.pg.as_ref().unwrap().url.clone()
    }

    fn push_script(&self, name: &str, body: &str) {
        self.aft.push_script(name, body);
    }

    /// Store the partner's SFTP password and a VFS entry "Partner SFTP" for the SFTP peer,
    /// pinned, with its `BaseDir` this run's remote folder.
    fn partner_sftp_entry(&mut self) {
        let remote = self.remote_str();
        self.aft.secret("partner-pass", &peer("AFT_TEST_SFTP_PASS"));
        self.aft.ok(&[
            "vfs",
            "add",
            "Partner SFTP",
            "--type",
            "sftp",
            "--set",
            &format!("Host={}", peer("AFT_TEST_SFTP_ADDR")),
            "--set",
            &format!("User={}", peer("AFT_TEST_SFTP_USER")),
            "--set",
            "PassFromSecret=partner-pass",
            "--set",
            &format!("HostKeySHA256={}", peer("AFT_TEST_SFTP_HOSTKEY_SHA256")),
            "--set",
            &format!("BaseDir={remote}"),
        ]);
    }

    /// `GET path` on the running service with the local token.
    fn get(&self, path: &str) -> Value {
        let svc = self.service();
        let (status, body) = block_on(support::call(
            &svc.client(),
            reqwest::Method::GET,
            &format!("{}{path}", svc.base()),
            Some(("X-Aft-Local-Token", &svc.local_token())),
            None,
        ));
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Wait until the service has no queued or running job; returns every job.
    fn jobs_ended(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let jobs = self.get("/v1/jobs")["jobs"].as_array().unwrap().clone();
            if jobs
                .iter()
                .all(|j| !matches!(j["status"].as_str(), Some("queued" | "running")))
            {
                return jobs;
            }
            assert!(Instant::now() < deadline, "jobs did not end: {jobs:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every job ended and succeeded; returns their logs, joined.
    fn all_jobs_succeeded(&self, at_least: usize) -> String {
        let jobs = self.jobs_ended();
        assert!(
            jobs.len() >= at_least,
            "expected {at_least} job(s): {jobs:?}"
        );
        let mut logs = String::new();
        for job in &jobs {
            let id = job["id"].as_str().unwrap();
            let log = self.job_log(id);
            assert_eq!(job["status"], "succeeded", "job {job}\nlog:\n{log}");
            logs.push_str(&log);
        }
        logs
    }

    fn job_log(&self, id: &str) -> String {
        self.get(&format!("/v1/jobs/{id}/log"))["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| format!("{}\n", l["message"].as_str().unwrap_or_default()))
            .collect()
    }

    /// Queue `script` with `params` through an API key and wait for it to end; its id.
    fn job_through_key(&self, key: &str, script: &str, params: Value) -> String {
        let svc = self.service();
        let (status, body) = block_on(support::call(
            &svc.client(),
            reqwest::Method::POST,
            &format!("{}/v1/jobs", svc.base()),
            Some(("X-API-Key", key)),
            Some(&json!({"scriptName": script, "params": params})),
        ));
        assert_eq!(status, 202, "{body}");
        body["jobId"].as_str().unwrap().to_string()
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        self.service.take();
        if let Some(dir) = self.remote.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(pg) = self.pg.take() {
            block_on(pg.drop_database());
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    library_support::tokio().block_on(f)
}

/// How a block is run.
enum Mode {
    /// To completion; it must exit 0.
    Complete,
    /// A script that runs until halted: `poke` is called about every 500 ms until the
    /// output holds `ready`, then the run gets SIGINT (Ctrl-C) and must end halted.
    UntilHalted {
        ready: String,
        poke: Box<dyn FnMut(&Ctx)>,
    },
    /// A shell block that ends in a service in the foreground (each line on its own with
    /// `each_line`): once it prints `listening on URL`, `GET URL/v1/health` (trusting
    /// `cacert`, else the data directory's certificate) must answer ok; then SIGTERM to the
    /// service must end it with exit 0.
    Service {
        each_line: bool,
        cacert: Option<String>,
    },
}

/// What a block printed: `stdout` alone (for answers to parse), and both streams as they
/// came (what `Deref` gives, for log lines and messages).
struct Out {
    stdout: String,
    all: String,
}

impl std::ops::Deref for Out {
    type Target = str;
    fn deref(&self) -> &str {
        &self.all
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.all)
    }
}

impl Out {
    /// Stdout parsed as JSON.
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {}", self.all))
    }
}

/// The check of a block's effect, after it ran.
type Check = Box<dyn FnOnce(&mut Ctx, &Out)>;

/// A recipe, ready to run: substitutions (each must occur in the block), parameters for
/// `aft run`, the mode, and the check of the block's effect.
struct Plan {
    subs: Vec<(String, String)>,
    params: Option<Value>,
    mode: Mode,
    check: Check,
}

impl Plan {
    fn new() -> Plan {
        Plan {
            subs: Vec::new(),
            params: None,
            mode: Mode::Complete,
            check: Box::new(|_, _| {}),
        }
    }

    fn sub(mut self, from: &str, to: impl Into<String>) -> Plan {
        self.subs.push((from.to_string(), to.into()));
        self
    }

    fn params(mut self, params: Value) -> Plan {
        self.params = Some(params);
        self
    }

    fn mode(mut self, mode: Mode) -> Plan {
        self.mode = mode;
        self
    }

    fn check(mut self, check: impl FnOnce(&mut Ctx, &Out) + 'static) -> Plan {
        self.check = Box::new(check);
        self
    }
}

/// A SyncJS run that is halted once its output holds `ready`.
fn until_halted(ready: &str) -> Mode {
    Mode::UntilHalted {
        ready: ready.to_string(),
        poke: Box::new(|_| {}),
    }
}

/// Write `body` to `path`, making its folder.
fn put(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The placeholder SFTP fingerprint the docs use.
const DOC_FINGERPRINT: &str = "SHA256:Irn1IBm7C1Ha1UZ+2tX5mAmY7kWgrUyU+I+ROS7LlY0";

/// Set up `recipe` (or the document's default for an unmarked block) in `ctx`.
fn prepare(
    doc: &str,
    recipe: Option<&str>,
    lang: Lang,
    ctx: &mut Ctx,
    shared: &mut Shared,
) -> Plan {
    let sftp_addr = peer("AFT_TEST_SFTP_ADDR");
    let sftp_user = peer("AFT_TEST_SFTP_USER");
    let sftp_pass = peer("AFT_TEST_SFTP_PASS");
    let fingerprint = peer("AFT_TEST_SFTP_HOSTKEY_SHA256");
    match (doc, recipe) {
        // ---------------------------------------------------------------- store.md
        ("docs/store.md", Some("backup-restore")) => {
            // A store with a secret and a script, backed up while its service runs.
            ctx.aft.ok(&["settings", "set", "allow-cli-run", "true"]);
            ctx.aft.secret("token", "restored-value");
            ctx.aft.push_script("Nightly", "Log(\"nightly\");");
            ctx.serve();
            let backups = ctx.work("backups");
            std::fs::create_dir_all(&backups).unwrap();
            let restored = ctx.work("aft-new");
            Plan::new()
                .sub("/backups", backups.to_string_lossy())
                .sub("/srv/aft-new", restored.to_string_lossy())
                .check(move |ctx, _| {
                    let script = ctx.work("check.syncjs");
                    put(
                        &script,
                        "if (GetSecret(\"token\") != \"restored-value\") throw new Error(\"lost\"); Log(\"kept\");",
                    );
                    let in_restored = |args: &[&str]| {
                        support::ok(
                            std::process::Command::new(support::AFT)
                                .arg("--data")
                                .arg(&restored)
                                .args(args)
                                .env_remove("AFT_DATABASE")
                                .env_remove("AFT_SECRET_KEY")
                                .output()
                                .unwrap(),
                        )
                    };
                    let out = in_restored(&["run", "-f", &script.to_string_lossy()]);
                    assert!(out.contains("kept"), "{out}");
                    let scripts = in_restored(&["script", "list"]);
                    assert!(scripts.contains("Nightly"), "{scripts}");
                })
        }
        // ---------------------------------------------------------------- README.md
        ("README.md", Some("first-job")) => {
            let remote = ctx.remote();
            put(&remote.join("outbox/a.csv"), "order,1\n");
            put(&remote.join("outbox/b.csv"), "order,2\n");
            put(&remote.join("outbox/skip.txt"), "not a csv\n");
            let orders = ctx.work("orders");
            std::fs::create_dir_all(&orders).unwrap();
            Plan::new()
                .sub("sftp.partner.example:22", &sftp_addr)
                .sub("\"acme\"", format!("\"{sftp_user}\""))
                .sub("'partner-password'", format!("'{sftp_pass}'"))
                .sub("\"SHA256:...\"", format!("\"{fingerprint}\""))
                .sub(
                    "\"/outbox/*.csv\"",
                    format!("\"{}/outbox/*.csv\"", remote.display()),
                )
                .sub("/data/orders", orders.to_string_lossy())
                .check(move |_, _| {
                    assert_eq!(read(&orders.join("a.csv")), "order,1\n");
                    assert_eq!(read(&orders.join("b.csv")), "order,2\n");
                    assert!(!orders.join("skip.txt").exists());
                })
        }
        ("README.md", Some("ci-pipeline")) => {
            // Continues "A first job": the same data directory, secret and pickup.syncjs.
            let host = ctx.serve().host();
            let cert = ctx.service().cert().to_string_lossy().into_owned();
            let orders = ctx.work("orders-ci");
            std::fs::create_dir_all(&orders).unwrap();
            Plan::new()
                .sub("10.0.0.0/8", "127.0.0.1")
                .sub("aft.example:44399", &host)
                .sub("aft-cert.pem", cert)
                .sub("/data/orders", orders.to_string_lossy())
                .check(move |ctx, out| {
                    assert!(out.contains("\"status\":\"queued\""), "{out}");
                    ctx.all_jobs_succeeded(2);
                    assert_eq!(read(&orders.join("a.csv")), "order,1\n");
                })
        }
        // ---------------------------------------------------------------- docs/api.md
        ("docs/api.md", Some("post-job")) => {
            let base = ctx.serve().base();
            let key = ctx.aft.create_key("ci", "127.0.0.1");
            ctx.set_env("AFT_KEY", &key);
            ctx.push_script(
                "nightly",
                "Log(\"destination \" + Param(\"destination\"));\n",
            );
            Plan::new()
                .sub("https://127.0.0.1:44399", base)
                .check(|ctx, out| {
                    let answer = out.json();
                    assert_eq!(answer["status"], "queued", "{answer}");
                    let logs = ctx.all_jobs_succeeded(1);
                    assert!(logs.contains("destination /archive/2026"), "{logs}");
                })
        }
        ("docs/api.md", Some("follow-log")) => {
            let base = ctx.serve().base();
            let key = ctx.aft.create_key("ci", "127.0.0.1");
            ctx.push_script("nightly", "Log(\"one\");\nLog(\"two\");\n");
            let job = ctx.job_through_key(&key, "nightly", json!({}));
            ctx.set_env("AFT_KEY", &key);
            ctx.set_env("JOB", &job);
            Plan::new()
                .sub("https://127.0.0.1:44399", base)
                .check(|_, out| {
                    assert!(out.contains("event: line"), "{out}");
                    assert!(out.contains("\"message\":\"two\""), "{out}");
                    assert!(out.contains("event: end"), "{out}");
                    assert!(out.contains("\"status\":\"succeeded\""), "{out}");
                })
        }
        ("docs/api.md", Some("download-log")) => {
            let base = ctx.serve().base();
            let key = ctx.aft.create_key("ci", "127.0.0.1");
            ctx.push_script("nightly", "Log(\"one\");\nconsole.error(\"two\");\n");
            let job = ctx.job_through_key(&key, "nightly", json!({}));
            ctx.set_env("AFT_KEY", &key);
            ctx.set_env("JOB", &job);
            Plan::new()
                .sub("https://127.0.0.1:44399", base)
                .check(|_, out| {
                    let lines: Vec<&str> = out.lines().collect();
                    assert_eq!(lines.len(), 2, "{out}");
                    assert!(lines[0].ends_with(" INFO  one"), "{out}");
                    assert!(lines[1].ends_with(" ERROR two"), "{out}");
                })
        }
        // ------------------------------------------------ retries-and-notifications.md
        ("docs/retries-and-notifications.md", Some("dead-letters")) => {
            // A failed job whose webhook nobody answers: one attempt, then it is dead.
            ctx.aft.ok(&["settings", "set", "notify-attempts", "1"]);
            let hook = format!("http://127.0.0.1:{}/hook", support::free_port());
            ctx.push_script("nightly", "Exit(2);\n");
            ctx.aft
                .ok(&["script", "notify", "nightly", "--webhook", hook.as_str()]);
            ctx.serve();
            let key = ctx.aft.create_key("ops", "127.0.0.1");
            let job = ctx.job_through_key(&key, "nightly", json!({}));
            let deadline = Instant::now() + Duration::from_secs(30);
            while ctx.get("/v1/notifications?state=dead")[0]["jobId"] != job.as_str() {
                assert!(
                    Instant::now() < deadline,
                    "no dead notification of job {job}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Plan::new().check(move |_, out| {
                assert!(out.contains(&job) && out.contains(&hook), "{out}");
                assert!(out.contains("queued for delivery again"), "{out}");
            })
        }
        ("docs/retries-and-notifications.md", Some("policy-api")) => {
            let base = ctx.serve().base();
            let cert = ctx.service().cert().to_string_lossy().into_owned();
            ctx.set_env("TOKEN", &ctx.service().local_token());
            ctx.push_script("nightly", "Log(\"nightly\");\n");
            ctx.push_script("report", "Log(\"report\");\n");
            Plan::new()
                .sub("DATA/tls/cert.pem", cert)
                .sub("https://127.0.0.1:44399", base)
                .check(|ctx, out| {
                    let answer = out.json();
                    assert_eq!(answer["script"], "nightly", "{answer}");
                    assert_eq!(answer["retry"]["attempts"], 3, "{answer}");
                    assert_eq!(answer["chain"]["onSuccess"], json!(["report"]), "{answer}");
                    let shown = ctx.aft.ok(&["script", "policy", "nightly"]);
                    assert!(
                        shown.contains("3 attempts in all, fixed backoff from 60000 ms"),
                        "{shown}"
                    );
                    assert!(
                        shown.contains("webhook https://hooks.example.com/aft"),
                        "{shown}"
                    );
                })
        }
        ("docs/api.md", Some("list-secrets")) => {
            let base = ctx.serve().base();
            let cert = ctx.service().cert().to_string_lossy().into_owned();
            let token = ctx.service().local_token();
            ctx.set_env("TOKEN", &token);
            ctx.aft.secret("partner-pass", "s3cr3t-value");
            Plan::new()
                .sub("DATA/tls/cert.pem", cert)
                .sub("https://127.0.0.1:44399", base)
                .check(|_, out| {
                    assert!(!out.contains("s3cr3t-value"), "{out}");
                    let list = out.json();
                    let item = &list[0];
                    assert_eq!(item["name"], "partner-pass", "{list}");
                    for field in ["createdAt", "updatedAt"] {
                        assert!(item[field].as_str().is_some_and(|t| t.len() > 10), "{list}");
                    }
                    assert_eq!(
                        item.as_object().unwrap().len(),
                        3,
                        "only name and times: {list}"
                    );
                })
        }
        ("docs/api.md", Some("delete-in-use")) => {
            let base = ctx.serve().base();
            let cert = ctx.service().cert().to_string_lossy().into_owned();
            ctx.set_env("TOKEN", &ctx.service().local_token());
            ctx.aft.push_script("nightly", "Log('nightly');\n");
            ctx.aft.ok(&[
                "schedule",
                "add",
                "nightly-at-2",
                "-s",
                "nightly",
                "--cron",
                "0 2 * * *",
            ]);
            Plan::new()
                .sub("DATA/tls/cert.pem", cert)
                .sub("https://127.0.0.1:44399", base)
                .check(|ctx, out| {
                    let answer = out.json();
                    assert!(
                        answer["error"]
                            .as_str()
                            .is_some_and(|e| e.contains("schedule nightly-at-2")),
                        "{answer}"
                    );
                    assert_eq!(answer["usedBy"][0]["name"], "nightly-at-2", "{answer}");
                    assert_eq!(answer["usedBy"][0]["kind"], "schedule", "{answer}");
                    // Refused: the script is still there.
                    ctx.aft.ok(&["script", "show", "nightly"]);
                })
        }
        ("docs/api.md", Some("vfs-test")) => {
            let base = ctx.serve().base();
            let cert = ctx.service().cert().to_string_lossy().into_owned();
            ctx.set_env("TOKEN", &ctx.service().local_token());
            // The doc's entry is named partner-sftp.
            ctx.aft.secret("partner-pass", &sftp_pass);
            let remote = ctx.remote_str();
            ctx.aft.ok(&[
                "vfs",
                "add",
                "partner-sftp",
                "--type",
                "sftp",
                "--set",
                &format!("Host={sftp_addr}"),
                "--set",
                &format!("User={sftp_user}"),
                "--set",
                "PassFromSecret=partner-pass",
                "--set",
                &format!("HostKeySHA256={fingerprint}"),
                "--set",
                &format!("BaseDir={remote}"),
            ]);
            put(&ctx.remote().join("in/x.csv"), "x\n");
            put(&ctx.remote().join("readme.txt"), "hello\n");
            Plan::new()
                .sub("DATA/tls/cert.pem", cert)
                .sub("https://127.0.0.1:44399", base)
                .check(|_, out| {
                    let answer = out.json();
                    assert_eq!(answer["ok"], true, "{answer}");
                    assert_eq!(answer["sample"], json!(["in/", "readme.txt"]), "{answer}");
                })
        }
        ("docs/api.md", Some("aft-start")) => {
            let host = ctx.serve().host();
            let cert = ctx.service().cert().to_string_lossy().into_owned();
            let key = ctx.aft.create_key("ci", "127.0.0.1");
            ctx.set_env("AFT_KEY", &key);
            ctx.push_script(
                "nightly",
                "Log(\"destination \" + Param(\"destination\"));\n",
            );
            let scripts: Value =
                serde_json::from_str(&ctx.aft.ok(&["script", "list", "--json"])).unwrap();
            let id = scripts[0]["id"].as_str().unwrap().to_string();
            Plan::new()
                .sub("10.0.0.5:44399", &host)
                .sub("--cacert ca.pem", format!("--cacert {cert}"))
                // The second and third lines use the default --host 127.0.0.1:44399.
                .sub("--wait ", format!("--wait --host {host} "))
                .sub("-s SCRIPT_ID", format!("-s {id}"))
                .sub("\"/archive\"}]'", format!("\"/archive\"}}]' --host {host}"))
                .check(|ctx, _| {
                    let logs = ctx.all_jobs_succeeded(3);
                    assert_eq!(logs.matches("destination /archive\n").count(), 2, "{logs}");
                    assert_eq!(logs.matches("destination \n").count(), 1, "{logs}");
                })
        }
        // ---------------------------------------------------------------- docs/cluster.md
        ("docs/cluster.md", Some("start-node")) => {
            let url = ctx.postgres();
            let port = support::free_port();
            let (chain, key) = certificate(ctx.work.path());
            // base64 of 32 bytes, as `head -c32 /dev/urandom | base64` gives.
            let secret_key = "YWZ0IGRvY3MgdGVzdDogMzIgYnl0ZXMgb2Yga2V5ISE=";
            let data = ctx.data_str();
            Plan::new()
                .sub("AFT_SECRET_KEY=...", format!("AFT_SECRET_KEY={secret_key}"))
                .sub("/srv/aft", data)
                .sub("postgres://aft:pw@db.internal/aft", url)
                .sub("0.0.0.0:44399", format!("127.0.0.1:{port}"))
                .sub("/etc/aft/chain.pem", &chain)
                .sub("/etc/aft/key.pem", key)
                .mode(Mode::Service {
                    each_line: false,
                    cacert: Some(chain),
                })
        }
        ("docs/cluster.md", Some("list-nodes")) => {
            let url = ctx.postgres();
            let svc = Service::start(ctx.aft.data(), &["--database", &url], &[]);
            let cert = svc.cert().to_string_lossy().into_owned();
            let token = svc.local_token();
            let base = svc.base();
            ctx.service = Some(svc);
            Plan::new()
                .sub("postgres://...", url)
                .sub("--cacert cert.pem", format!("--cacert {cert}"))
                .sub(
                    "X-Aft-Local-Token: ...",
                    format!("X-Aft-Local-Token: {token}"),
                )
                .sub("https://node1:44399", base)
                .check(|ctx, out| {
                    let node = ctx.get("/v1/nodes")[0].clone();
                    let id = node["id"].as_str().unwrap();
                    // Once in the table, once in the JSON.
                    assert!(out.matches(id).count() >= 2, "{out}");
                    assert!(out.contains("\"heartbeatAt\""), "{out}");
                })
        }
        // ---------------------------------------------------------------- docs/operations.md
        ("docs/operations.md", Some("start-each-line")) => {
            let url = ctx.postgres();
            let (p1, p3) = (support::free_port(), support::free_port());
            let p2 = support::free_port();
            let srv = ctx.work_str("srv-aft");
            Plan::new()
                // Line 3 first: its text also holds line 1's "aft serve   ".
                .sub(
                    "postgres://aft:pw@db/aft serve",
                    format!("{url} serve --listen 127.0.0.1:{p3}"),
                )
                .sub(
                    "aft serve      ",
                    format!("aft serve --listen 127.0.0.1:{p1} "),
                )
                .sub("/srv/aft", srv)
                .sub("0.0.0.0:44399", format!("127.0.0.1:{p2}"))
                .mode(Mode::Service {
                    each_line: true,
                    cacert: None,
                })
        }
        ("docs/operations.md", Some("cp-ls")) => {
            // `partner` is the real sshd under a folder of this run's own; `archive` a disk
            // folder. The partner's file is put there with `aft cp` itself.
            ctx.aft.ok(&["settings", "set", "allow-cli-run", "true"]);
            ctx.aft
                .secret("partner-pass", &support::peer("AFT_TEST_SFTP_PASS"));
            let folder = format!(
                "docs-cp-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            );
            let home = support::peer("AFT_TEST_SFTP_HOME");
            let base = format!("{home}/{folder}");
            let partner = json!({
                "Host": support::peer("AFT_TEST_SFTP_ADDR"),
                "User": support::peer("AFT_TEST_SFTP_USER"),
                "PassFromSecret": "partner-pass",
                "HostKeySHA256": support::peer("AFT_TEST_SFTP_HOSTKEY_SHA256"),
                "BaseDir": base,
            });
            ctx.aft.ok(&[
                "vfs",
                "add",
                "partner",
                "--type",
                "sftp",
                "--json",
                &partner.to_string(),
            ]);
            let archive = ctx.work_str("archive");
            std::fs::create_dir_all(&archive).unwrap();
            ctx.aft.ok(&[
                "vfs",
                "add",
                "archive",
                "--type",
                "disk",
                "--set",
                &format!("Root={archive}"),
            ]);
            let seed = ctx.work("seed");
            std::fs::create_dir_all(&seed).unwrap();
            put(&seed.join("orders.csv"), "id,qty\n1,3\n");
            // Seeded through an entry on the login folder, which makes the partner's base.
            let mut home_entry = partner.clone();
            home_entry["BaseDir"] = json!(home);
            ctx.aft.ok(&[
                "vfs",
                "add",
                "sftp-home",
                "--type",
                "sftp",
                "--json",
                &home_entry.to_string(),
            ]);
            ctx.aft.ok(&[
                "cp",
                &ctx.work_str("seed/orders.csv"),
                &format!("sftp-home:/{folder}/outbox/"),
            ]);
            let reports = ctx.work("reports");
            std::fs::create_dir_all(reports.join("eu")).unwrap();
            put(&reports.join("summary.txt"), "total 3\n");
            put(&reports.join("eu/fr.txt"), "fr 1\n");
            std::fs::create_dir_all(ctx.work("inbox")).unwrap();
            Plan::new()
                .sub("/srv/inbox", ctx.work_str("inbox"))
                .sub("/srv/reports", ctx.work_str("reports"))
                .check(move |ctx, out| {
                    assert!(out.contains("orders.csv"), "{out}");
                    assert_eq!(
                        std::fs::read_to_string(ctx.work("inbox/orders.csv")).unwrap(),
                        "id,qty\n1,3\n"
                    );
                    let archive = ctx.work("archive");
                    assert!(archive.join("2026/12/eu/fr.txt").is_file(), "{out}");
                    assert!(archive.join("2026/12/summary.txt").is_file(), "{out}");
                    assert_eq!(
                        std::fs::read_to_string(archive.join("orders-latest.csv")).unwrap(),
                        "id,qty\n1,3\n"
                    );
                    assert!(out.contains("\"status\": \"succeeded\""), "{out}");
                    let jobs: Value =
                        serde_json::from_str(&ctx.aft.ok(&["jobs", "list", "--json"])).unwrap();
                    let cli_jobs = jobs
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|j| j["origin"] == "cli")
                        .count();
                    // The seeding copy and the three of the example.
                    assert_eq!(cli_jobs, 4, "{jobs}");
                })
        }
        ("docs/operations.md", Some("retry-safe")) => {
            put(&ctx.work("nightly.syncjs"), "Log(\"nightly\");\n");
            Plan::new().check(|ctx, out| {
                let row = out
                    .lines()
                    .find(|l| l.starts_with("nightly "))
                    .unwrap_or_else(|| panic!("no row for nightly: {out}"));
                assert!(row.contains(" yes "), "{row}");
                let list: Value =
                    serde_json::from_str(&ctx.aft.ok(&["script", "list", "--json"])).unwrap();
                assert_eq!(list[0]["retrySafe"], true, "{list}");
                // The documented way to take the mark off.
                let file = ctx.work_str("nightly.syncjs");
                ctx.aft
                    .ok(&["script", "push", "--retry-safe=false", "nightly", &file]);
                let list: Value =
                    serde_json::from_str(&ctx.aft.ok(&["script", "list", "--json"])).unwrap();
                assert_eq!(list[0]["retrySafe"], false, "{list}");
            })
        }
        ("docs/operations.md", Some("job-commands")) => {
            ctx.serve();
            let key = ctx.aft.create_key("ops", "127.0.0.1");
            ctx.push_script("nightly", "Log(\"nightly ran\");\n");
            ctx.push_script("long", "Log(\"long started\");\nSleep(60000);\n");
            let done = ctx.job_through_key(&key, "nightly", json!({}));
            let running = ctx.job_through_key(&key, "long", json!({}));
            let deadline = Instant::now() + Duration::from_secs(30);
            while !ctx.job_log(&running).contains("long started") {
                assert!(Instant::now() < deadline, "the long job did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
            while ctx.get(&format!("/v1/jobs/{done}"))["status"] != "succeeded" {
                assert!(Instant::now() < deadline, "the nightly job did not succeed");
                std::thread::sleep(Duration::from_millis(50));
            }
            Plan::new()
                .sub("aft jobs show ID", format!("aft jobs show {done}"))
                .sub("aft jobs log ID", format!("aft jobs log {done}"))
                .sub("aft jobs halt ID", format!("aft jobs halt {running}"))
                .check(move |ctx, out| {
                    assert!(out.contains("nightly ran"), "the log of the job: {out}");
                    assert!(
                        out.contains(&format!("halt signal sent to job {running}")),
                        "{out}"
                    );
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while ctx.get(&format!("/v1/jobs/{running}"))["status"] != "halted" {
                        assert!(Instant::now() < deadline, "the long job was not halted");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    let settings = ctx.aft.ok(&["settings", "get", "max-concurrent-jobs"]);
                    assert_eq!(settings.trim(), "8");
                })
        }
        // ---------------------------------------------------------------- docs/schedules.md
        ("docs/schedules.md", Some("schedule-commands")) => {
            ctx.push_script("backup", "Log(\"backup\");\n");
            ctx.push_script("backup-v2", "Log(\"backup v2\");\n");
            Plan::new().check(|ctx, out| {
                // `next --from` around the spring-forward night in Rome: 02:30 does not
                // exist on 29 March 2026, so that slot fires at 03:00 CEST.
                assert!(out.contains("2026-03-29 03:00:00 +02:00"), "{out}");
                let list = ctx.aft.ok(&["schedule", "list"]);
                assert!(!list.contains("nightly"), "deleted at the end: {list}");
            })
        }
        ("docs/schedules.md", Some("watcher-commands")) => {
            ctx.push_script("monitor", "WaitForHaltSignal();\n");
            Plan::new().check(|ctx, out| {
                assert!(out.contains("inbox-monitor"), "listed: {out}");
                let list = ctx.aft.ok(&["watcher", "list"]);
                assert!(
                    !list.contains("inbox-monitor"),
                    "deleted at the end: {list}"
                );
            })
        }
        ("docs/schedules.md", Some("until-halted")) => Plan::new()
            .mode(until_halted("watching"))
            .check(|_, out| assert!(out.contains("halted cleanly"), "{out}")),
        // ---------------------------------------------------------------- docs/syncjs.md
        ("docs/syncjs.md", Some("halt-loop")) => {
            let started = Instant::now();
            Plan::new()
                .mode(Mode::UntilHalted {
                    ready: String::new(),
                    poke: Box::new(move |_| {
                        if started.elapsed() < Duration::from_secs(1) {
                            std::thread::sleep(Duration::from_millis(1000));
                        }
                    }),
                })
                .check(|_, out| assert!(out.contains("stopping cleanly"), "{out}"))
        }
        ("docs/syncjs.md", Some("wait-for-halt")) => {
            let inbox = ctx.work("inbox");
            std::fs::create_dir_all(&inbox).unwrap();
            let mut n = 0;
            Plan::new()
                .sub("/data/inbox", inbox.to_string_lossy())
                .mode(Mode::UntilHalted {
                    ready: "EVT_CREATE ".to_string(),
                    poke: Box::new(move |ctx| {
                        n += 1;
                        std::fs::write(ctx.work(&format!("inbox/f{n}.csv")), "x").unwrap();
                    }),
                })
                .check(|ctx, out| {
                    let inbox = ctx.work("inbox");
                    assert!(
                        out.contains(&format!("EVT_CREATE {}/f", inbox.display())),
                        "{out}"
                    );
                })
        }
        // ---------------------------------------------------------------- docs/syncjs-watchers.md
        ("docs/syncjs-watchers.md", Some("fs-watcher")) => {
            let inbox = ctx.work("inbox");
            std::fs::create_dir_all(&inbox).unwrap();
            let mut n = 0;
            Plan::new()
                .sub("/data/inbox", inbox.to_string_lossy())
                .mode(Mode::UntilHalted {
                    ready: "new file ".to_string(),
                    poke: Box::new(move |ctx| {
                        n += 1;
                        if n % 4 == 1 {
                            let i = n / 4;
                            std::fs::write(ctx.work(&format!("inbox/a{i}.csv")), "x").unwrap();
                            std::fs::write(ctx.work(&format!("inbox/a{i}.tmp")), "x").unwrap();
                        }
                    }),
                })
                .check(|ctx, out| {
                    let inbox = ctx.work("inbox");
                    assert!(
                        out.contains(&format!("new file {}/a", inbox.display())),
                        "{out}"
                    );
                    assert!(
                        !out.lines()
                            .any(|l| l.contains("new file") && l.ends_with(".tmp")),
                        "*.tmp is excluded: {out}"
                    );
                })
        }
        ("docs/syncjs-watchers.md", Some("remote-watcher-root")) => {
            ctx.partner_sftp_entry();
            put(&ctx.remote().join("a.csv"), "a\n");
            put(&ctx.remote().join("sub/b.csv"), "b\n");
            Plan::new()
                .mode(until_halted("EVT_CREATE /a.csv"))
                .check(|_, out| assert!(!out.contains("b.csv"), "not recursive: {out}"))
        }
        ("docs/syncjs-watchers.md", Some("remote-watcher")) => {
            // Runs at the example's own pace: a file fires once unchanged for a minute.
            ctx.partner_sftp_entry();
            put(&ctx.remote().join("outbox/2026/a.csv"), "a\n");
            put(&ctx.remote().join("outbox/b.txt"), "b\n");
            Plan::new()
                .mode(until_halted("pick up /outbox/2026/a.csv"))
                .check(|_, out| assert!(!out.contains("b.txt"), "filtered: {out}"))
        }
        // ---------------------------------------------------------------- docs/syncjs-transfers.md
        ("docs/syncjs-transfers.md", Some("smb-upload")) => {
            ctx.aft.secret("finance-share", &peer("AFT_TEST_SMB_PASS"));
            put(&ctx.work("outbox/s1.csv"), "s1\n");
            let folder = format!(
                "docs-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            );
            let on_disk = Path::new(&peer("AFT_TEST_SMB_DIR_SIGNED")).join(&folder);
            let plan = Plan::new()
                .sub(
                    "fileserver.example.com",
                    format!(
                        "{}:{}",
                        peer("AFT_TEST_SMB_HOST"),
                        peer("AFT_TEST_SMB_PORT_SIGNED")
                    ),
                )
                .sub("\"finance\"", format!("\"{}\"", peer("AFT_TEST_SMB_SHARE")))
                .sub("\"svc-aft\"", format!("\"{}\"", peer("AFT_TEST_SMB_USER")))
                .sub("/inbound/2026", format!("/{folder}/inbound/2026"))
                .sub("/data/outbox", ctx.work_str("outbox"));
            if cfg!(feature = "smb") {
                plan.check(move |_, out| {
                    assert!(!out.contains("upload failed"), "{out}");
                    assert_eq!(read(&on_disk.join("inbound/2026/s1.csv")), "s1\n");
                    let _ = std::fs::remove_dir_all(&on_disk);
                })
            } else {
                // A build without SMB: the documented refusal, and the script's own exit.
                plan.sub("Exit(1)", "Exit(0)").check(|_, out| {
                    assert!(out.contains("built without SMB support"), "{out}");
                })
            }
        }
        ("docs/syncjs-transfers.md", Some("sftp-upload")) => {
            ctx.aft.secret("acme-sftp", &sftp_pass);
            let remote = ctx.remote();
            std::fs::create_dir_all(remote.join("inbound")).unwrap();
            put(&ctx.work("outbox/r1.csv"), "r1\n");
            put(&ctx.work("outbox/r2.csv"), "r2\n");
            Plan::new()
                .sub("sftp.example.com:22", &sftp_addr)
                .sub("\"acme\"", format!("\"{sftp_user}\""))
                .sub(DOC_FINGERPRINT, &fingerprint)
                .sub("/data/outbox", ctx.work_str("outbox"))
                .sub("\"/inbound\"", format!("\"{}/inbound\"", remote.display()))
                .check(move |_, out| {
                    assert!(!out.contains("upload failed"), "{out}");
                    assert_eq!(read(&remote.join("inbound/r1.csv")), "r1\n");
                    assert_eq!(read(&remote.join("inbound/r2.csv")), "r2\n");
                })
        }
        ("docs/syncjs-transfers.md", Some("getvfs")) => {
            ctx.partner_sftp_entry();
            put(&ctx.work("outbox/o1.xml"), "<o/>");
            let remote = ctx.remote();
            Plan::new()
                .sub("/data/outbox", ctx.work_str("outbox"))
                .check(move |_, _| assert_eq!(read(&remote.join("in/o1.xml")), "<o/>"))
        }
        ("docs/syncjs-transfers.md", Some("sync")) => {
            ctx.partner_sftp_entry();
            put(&ctx.work("mirror/m.txt"), "mirror\n");
            let remote = ctx.remote();
            put(&remote.join("backup/mirror/stale.txt"), "old\n");
            put(&remote.join("outbox/new.csv"), "new\n");
            let work = ctx.work.path().to_path_buf();
            Plan::new()
                .sub("/data/mirror", ctx.work_str("mirror"))
                .sub("/data/incoming", ctx.work_str("incoming"))
                .check(move |_, _| {
                    assert_eq!(read(&remote.join("backup/mirror/m.txt")), "mirror\n");
                    assert!(
                        !remote.join("backup/mirror/stale.txt").exists(),
                        "Delete: true"
                    );
                    assert_eq!(read(&work.join("incoming/new.csv")), "new\n");
                })
        }
        ("docs/syncjs-transfers.md", Some("vfs-commands")) => {
            ctx.set_env("PARTNER_PASS", &sftp_pass);
            Plan::new()
                .sub("sftp.partner.com:22", &sftp_addr)
                .sub("User=acme", format!("User={sftp_user}"))
                .sub(DOC_FINGERPRINT, &fingerprint)
                .check(move |ctx, out| {
                    // The first test names the fingerprint; the second connects.
                    assert!(out.contains(&fingerprint), "{out}");
                    assert!(out.contains("connected to"), "{out}");
                    let shown = ctx.aft.ok(&["vfs", "show", "Partner SFTP"]);
                    assert!(shown.contains(&fingerprint), "{shown}");
                    let list = ctx.aft.ok(&["vfs", "list"]);
                    assert!(!list.contains("archive"), "deleted: {list}");
                })
        }
        ("docs/syncjs-transfers.md", Some("reports-to-s3")) => {
            ctx.partner_sftp_entry();
            ctx.aft.secret("archive-key", &peer("AFT_TEST_S3_SECRET"));
            let settings = json!({
                "Bucket": peer("AFT_TEST_S3_BUCKET"),
                "Region": peer("AFT_TEST_S3_REGION"),
                "APIKeyID": peer("AFT_TEST_S3_KEY_ID"),
                "APIKeySecretFromSecret": "archive-key",
                "Endpoint": peer("AFT_TEST_S3_ENDPOINT"),
            });
            ctx.aft.ok(&[
                "vfs",
                "add",
                "archive",
                "--type",
                "s3",
                "--json",
                &settings.to_string(),
            ]);
            let remote = ctx.remote();
            put(&remote.join("out/report-1.csv"), "r,1\n");
            put(&remote.join("out/other.csv"), "o\n");
            // A unique archive folder in the shared bucket.
            let folder = format!("/{}/", remote.file_name().unwrap().to_string_lossy());
            let reports = ctx.work("reports");
            Plan::new()
                .sub("/data/reports", reports.to_string_lossy())
                .sub("\"/partner/\"", format!("\"/partner{folder}\""))
                .check(move |_, out| {
                    assert!(!out.contains("did not arrive"), "{out}");
                    assert_eq!(read(&reports.join("report-1.csv")), "r,1\n");
                    assert!(!reports.join("other.csv").exists());
                })
        }
        ("docs/syncjs-transfers.md", Some("webdav-otfe")) => {
            let url = peer("AFT_TEST_WEBDAV_URL");
            let (user, pass) = (peer("AFT_TEST_WEBDAV_USER"), peer("AFT_TEST_WEBDAV_PASS"));
            ctx.aft.secret("dav-pass", &pass);
            ctx.aft
                .secret("otfe-key", "a long random passphrase for the docs test");
            put(&ctx.work("payroll.xlsx"), "payroll figures");
            let folder = format!(
                "/docs-{}-{}/vault/",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            );
            let file_url = format!("{}{folder}payroll.xlsx", url.trim_end_matches('/'));
            Plan::new()
                .sub("https://dav.example.com/remote.php/dav/files/acme", &url)
                .sub("\"acme\"", format!("\"{user}\""))
                .sub("/data/payroll.xlsx", ctx.work_str("payroll.xlsx"))
                .sub("\"/vault/\"", format!("\"{folder}\""))
                .check(move |_, _| {
                    let got = Command::new("curl")
                        .args(["-sf", "-u", &format!("{user}:{pass}"), &file_url])
                        .output()
                        .unwrap();
                    assert!(got.status.success(), "GET {file_url}: {got:?}");
                    assert!(got.stdout.starts_with(b"AFTE"), "stored encrypted");
                    assert!(!String::from_utf8_lossy(&got.stdout).contains("payroll figures"));
                })
        }
        // ---------------------------------------------------------------- docs/syncjs-library.md
        ("docs/syncjs-library.md", None) if lang == Lang::SyncJs => {
            let lib = shared.library();
            let starttls = peer("AFT_TEST_SMTP_STARTTLS_ADDR");
            let (st_host, st_port) = starttls.rsplit_once(':').unwrap();
            ctx.aft.secret("zip-password", "zip-secret-pass");
            ctx.aft.secret("my-pgp-passphrase", "my-pass");
            ctx.aft.secret("smtp-pass", &peer("AFT_TEST_SMTP_PASS"));
            let (user, ca) = (peer("AFT_TEST_SMTP_USER"), peer("AFT_TEST_SMTP_CA"));
            for (key, value) in [
                ("smtp-host", st_host),
                ("smtp-port", st_port),
                ("smtp-tls", "starttls"),
                ("smtp-user", user.as_str()),
                ("smtp-password-secret", "smtp-pass"),
                ("smtp-ca-file", ca.as_str()),
                ("smtp-from", "aft@example.com"),
            ] {
                ctx.aft.ok(&["settings", "set", key, value]);
            }
            Plan::new().params(json!({
                "work": ctx.work_str("work"),
                "api": lib.server.base,
                "ca": lib.server.ca_file,
                "smtp": peer("AFT_TEST_SMTP_ADDR"),
                "partnerPublicKey": lib.partner_pub,
                "myPublicKey": lib.my_pub,
                "myPrivateKey": lib.my_sec,
            }))
        }
        // Unmarked blocks elsewhere run as they are.
        (_, None) => Plan::new(),
        (doc, Some(other)) => panic!("{doc}: recipe {other} is listed but not defined"),
    }
}

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files in `dir`.
fn certificate(dir: &Path) -> (String, String) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (chain, key) = (dir.join("chain.pem"), dir.join("key.pem"));
    std::fs::write(&chain, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.signing_key.serialize_pem()).unwrap();
    (
        chain.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

/// Run one block; returns its context for a following block that continues it.
fn run_block(
    doc: &str,
    at: &str,
    block: &Block,
    lang: Lang,
    recipe: Option<&str>,
    previous: Option<Ctx>,
    shared: &mut Shared,
) -> Ctx {
    // Only the CI pipeline of the README continues the block before it.
    let mut ctx = match (recipe, previous) {
        (Some("ci-pipeline"), Some(prev)) => prev,
        (Some("ci-pipeline"), None) => panic!("{at}: continues the block before it"),
        _ => Ctx::new(),
    };
    if lang == Lang::SyncJs {
        ctx.aft.ok(&["settings", "set", "allow-cli-run", "true"]);
        std::fs::create_dir_all(ctx.work("work")).unwrap();
    }
    let plan = prepare(doc, recipe, lang, &mut ctx, shared);
    if let Some(remote) = &ctx.remote {
        // The SFTP peer logs in as another user: let it read and write this run's folder.
        let chmod = Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(remote)
            .status()
            .unwrap();
        assert!(chmod.success());
    }
    let mut code = block.code.clone();
    for (from, to) in &plan.subs {
        assert!(
            code.contains(from.as_str()),
            "{at}: the substitution {from:?} no longer matches the example:\n{code}"
        );
        code = code.replace(from.as_str(), to);
    }
    let out = match plan.mode {
        Mode::Complete => {
            let (status, out) = finish(spawn(&ctx, lang, &code, plan.params.as_ref()), 180, at);
            assert!(
                status.success(),
                "{at}: the example failed ({status}):\n--- example as run ---\n{code}--- output ---\n{out}"
            );
            out
        }
        Mode::UntilHalted { ready, mut poke } => {
            let run = spawn(&ctx, lang, &code, plan.params.as_ref());
            let deadline = Instant::now() + Duration::from_secs(150);
            loop {
                poke(&ctx);
                std::thread::sleep(Duration::from_millis(500));
                if run.output.lock().unwrap().contains(&ready) {
                    break;
                }
                if let Some(status) = run.child.lock().unwrap().try_wait().unwrap() {
                    panic!(
                        "{at}: ended ({status}) before it was halted:\n{code}--- output ---\n{}",
                        run.output.lock().unwrap()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "{at}: {ready:?} never came:\n{code}--- output ---\n{}",
                    run.output.lock().unwrap()
                );
            }
            support::signal(run.child.lock().unwrap().id(), "INT");
            let (status, out) = finish(run, 30, at);
            // `aft run` exits 1 for a halted job, and its log says so.
            assert_eq!(status.code(), Some(1), "{at}: {out}");
            assert!(out.contains("halted"), "{at}: not halted:\n{out}");
            out
        }
        Mode::Service { each_line, cacert } => {
            let programs: Vec<String> = if each_line {
                code.lines()
                    .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .map(|l| format!("{l}\n"))
                    .collect()
            } else {
                vec![code.clone()]
            };
            let mut all = Out {
                stdout: String::new(),
                all: String::new(),
            };
            for program in programs {
                let out = run_service(&ctx, at, &program, cacert.as_deref());
                all.stdout.push_str(&out.stdout);
                all.all.push_str(&out.all);
            }
            all
        }
    };
    (plan.check)(&mut ctx, &out);
    ctx
}

/// A running block: the child and its output (stdout and stderr, as they come).
struct Running {
    child: Arc<Mutex<Child>>,
    output: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Start a block: a shell block with bash, a SyncJS block with `aft run -f`.
fn spawn(ctx: &Ctx, lang: Lang, code: &str, params: Option<&Value>) -> Running {
    let home = ctx.work("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = match lang {
        Lang::Shell => {
            let script = ctx.work("example.sh");
            std::fs::write(&script, code).unwrap();
            let bin = ctx.work("bin");
            std::fs::create_dir_all(&bin).unwrap();
            let link = bin.join("aft");
            if !link.exists() {
                std::os::unix::fs::symlink(AFT, &link).unwrap();
            }
            let mut cmd = Command::new("bash");
            cmd.arg("-euo").arg("pipefail").arg(&script).env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            );
            cmd.env("AFT_DATA", ctx.aft.data());
            cmd
        }
        Lang::SyncJs => {
            let script = ctx.work("example.syncjs");
            std::fs::write(&script, code).unwrap();
            let mut cmd = Command::new(AFT);
            cmd.arg("--data")
                .arg(ctx.aft.data())
                .args(["run", "-f"])
                .arg(&script);
            if let Some(params) = params {
                cmd.args(["-p", &params.to_string()]);
            }
            cmd
        }
    };
    cmd.current_dir(ctx.work.path())
        .env("HOME", &home)
        .env_remove("AFT_DATABASE")
        .env_remove("AFT_API_KEY")
        .env_remove("AFT_SECRET_KEY")
        .env("AFT_LOG", "warn")
        .envs(ctx.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().unwrap();
    let output = Arc::new(Mutex::new(String::new()));
    let stdout = Arc::new(Mutex::new(String::new()));
    let readers = vec![
        read_lines(
            child.stdout.take().unwrap(),
            output.clone(),
            Some(stdout.clone()),
        ),
        read_lines(child.stderr.take().unwrap(), output.clone(), None),
    ];
    Running {
        child: Arc::new(Mutex::new(child)),
        output,
        stdout,
        readers,
    }
}

/// Append each line of `stream` to `all` (and to `own`, if given) as it comes.
fn read_lines(
    stream: impl std::io::Read + Send + 'static,
    all: Arc<Mutex<String>>,
    own: Option<Arc<Mutex<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let Some(own) = &own {
                let mut own = own.lock().unwrap();
                own.push_str(&line);
                own.push('\n');
            }
            let mut all = all.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    })
}

/// Wait at most `secs` for a run to end (then kill its process group); status and output.
fn finish(run: Running, secs: u64, at: &str) -> (ExitStatus, Out) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = run.child.lock().unwrap().try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let pid = run.child.lock().unwrap().id();
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{pid}")])
                .status();
            panic!(
                "{at}: still running after {secs} s:\n{}",
                run.output.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for reader in run.readers {
        let _ = reader.join();
    }
    let out = Out {
        stdout: run.stdout.lock().unwrap().clone(),
        all: run.output.lock().unwrap().clone(),
    };
    (status, out)
}

/// Run a shell program that ends in `aft serve`: wait until it listens, check its health,
/// stop it with SIGTERM and require a clean exit.
fn run_service(ctx: &Ctx, at: &str, program: &str, cacert: Option<&str>) -> Out {
    let run = spawn(ctx, Lang::Shell, program, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = loop {
        let out = run.output.lock().unwrap().clone();
        if let Some(rest) = out.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        if let Some(status) = run.child.lock().unwrap().try_wait().unwrap() {
            panic!("{at}: ended ({status}) instead of serving:\n{program}--- output ---\n{out}");
        }
        assert!(
            Instant::now() < deadline,
            "{at}: never listened:\n{program}\n{out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // The data directory is the one --data names, else AFT_DATA.
    let data = program
        .split("--data ")
        .nth(1)
        .map(|r| PathBuf::from(r.split_whitespace().next().unwrap()))
        .unwrap_or_else(|| ctx.aft.data().to_path_buf());
    let cacert = cacert
        .map(str::to_string)
        .unwrap_or_else(|| data.join("tls/cert.pem").to_string_lossy().into_owned());
    let health = Command::new("curl")
        .args(["-sS", "--cacert", &cacert, &format!("{url}/v1/health")])
        .output()
        .unwrap();
    let body: Value = serde_json::from_slice(&health.stdout).unwrap_or_else(|_| {
        panic!(
            "{at}: GET {url}/v1/health: {}{}",
            String::from_utf8_lossy(&health.stdout),
            String::from_utf8_lossy(&health.stderr)
        )
    });
    assert_eq!(body["status"], "ok", "{at}: {body}");
    assert!(
        data.join("service.json").exists(),
        "{at}: no service.json in {}",
        data.display()
    );
    // SIGTERM to the service only (the shell's child, by its parent id): bash then ends
    // with the service's exit status.
    let bash = run.child.lock().unwrap().id();
    let term = Command::new("pkill")
        .args(["-TERM", "-P", &bash.to_string()])
        .status()
        .unwrap();
    assert!(term.success(), "{at}: no service process under bash {bash}");
    let (status, out) = finish(run, 30, at);
    assert!(
        status.success(),
        "{at}: the service did not stop cleanly ({status}):\n{out}"
    );
    assert!(
        !data.join("service.json").exists(),
        "{at}: a clean shutdown removes service.json"
    );
    out
}
