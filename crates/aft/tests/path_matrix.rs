//! The path matrix (issue 12): every transfer client, run through the real binary by every way
//! a job can start, with its credential given every way a script can give it.
//!
//! One `#[test]` per backend (so a failure names it), each with one fresh data directory and
//! one `aft serve`. A generated script per credential mode uploads a small unique file (all 256
//! byte values, so a text-mode transfer shows) to a folder of its own, lists it, downloads it to
//! a local folder and compares hashes, deletes the folder and logs `MATRIX OK`; the test then
//! compares the downloaded bytes itself. Each script runs by the five entry points:
//!
//! | entry point | how |
//! |---|---|
//! | `run`       | `aft run -f FILE -p JSON`, no service running: the job runs in the CLI process |
//! | `delegated` | the same command while `aft serve` runs for the data directory: the service runs it (its job has `origin` `delegate`) |
//! | `api`       | `POST /v1/jobs` with an API key, then `GET /v1/jobs/{id}` with that key |
//! | `schedule`  | `aft schedule add --cron "* * * * * *"` (every second), deleted as soon as its first job is queued |
//! | `watcher`   | `aft watcher add`: the run transfers, logs `MATRIX OK`, then `WaitForHaltSignal()`; `aft watcher delete` halts it |
//!
//! and the credential modes are: `clear` (the password / key field in the script), `secret`
//! (its `...FromSecret` field naming a secret stored with `aft secret set`), `vfs` (`GetVFS` of
//! a VFS Library entry made with `aft vfs add`, whose credential is a secret name). GCS (the
//! emulator takes no credentials) and local disk have no credential field: their "credential"
//! is the on-the-fly encryption key, `Options.OTFEKey` in clear, `Options.OTFEKeyFromSecret`
//! otherwise (on the `GetVFS` client too), so a secret is read through the binary in every row.
//!
//! Every cell runs before the test judges, so one failure shows the whole table; the message
//! names each failed cell and shows its job log.

mod support;

use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, Service, call, peer, text};

/// The secret holding a backend's credential (or OTFE key) in the `secret` and `vfs` modes.
const SECRET: &str = "matrix-credential";
/// The VFS Library entry of the `vfs` mode.
const ENTRY: &str = "matrix-peer";
/// How long one job may take, start to end (they take well under a second when healthy).
const JOB_LIMIT: Duration = Duration::from_secs(45);

#[test]
fn sftp_every_entry_point_and_credential_mode() {
    Backend {
        name: "sftp",
        class: "SftpClient",
        vfs_type: "sftp",
        fields: vec![
            ("Host", peer("AFT_TEST_SFTP_ADDR")),
            ("User", peer("AFT_TEST_SFTP_USER")),
            ("HostKeySHA256", peer("AFT_TEST_SFTP_HOSTKEY_SHA256")),
            ("BaseDir", peer("AFT_TEST_SFTP_HOME")),
        ],
        credential: Credential::Field("Pass", "PassFromSecret", peer("AFT_TEST_SFTP_PASS")),
    }
    .check();
}

/// Plain FTP on vsftpd (LIST parsing).
#[test]
fn ftp_every_entry_point_and_credential_mode() {
    Backend {
        name: "ftp",
        class: "FtpClient",
        vfs_type: "ftp",
        fields: vec![
            ("Host", peer("AFT_TEST_FTP_ADDR")),
            ("User", peer("AFT_TEST_FTP_USER")),
        ],
        credential: Credential::Field("Pass", "PassFromSecret", peer("AFT_TEST_FTP_PASS")),
    }
    .check();
}

/// Explicit FTPS on vsftpd, trusting the test CA.
#[test]
fn ftps_every_entry_point_and_credential_mode() {
    Backend {
        name: "ftps",
        class: "FtpsClient",
        vfs_type: "ftps",
        fields: vec![
            ("Host", peer("AFT_TEST_FTP_ADDR")),
            ("User", peer("AFT_TEST_FTP_USER")),
            ("TLSMode", "TLS_MODE_EXPLICIT".into()),
            ("TLSCAFile", peer("AFT_TEST_FTP_CA")),
        ],
        credential: Credential::Field("Pass", "PassFromSecret", peer("AFT_TEST_FTP_PASS")),
    }
    .check();
}

#[test]
fn s3_every_entry_point_and_credential_mode() {
    Backend {
        name: "s3",
        class: "S3Client",
        vfs_type: "s3",
        fields: vec![
            ("Endpoint", peer("AFT_TEST_S3_ENDPOINT")),
            ("Bucket", peer("AFT_TEST_S3_BUCKET")),
            ("Region", peer("AFT_TEST_S3_REGION")),
            ("APIKeyID", peer("AFT_TEST_S3_KEY_ID")),
        ],
        credential: Credential::Field(
            "APIKeySecret",
            "APIKeySecretFromSecret",
            peer("AFT_TEST_S3_SECRET"),
        ),
    }
    .check();
}

#[test]
fn azure_every_entry_point_and_credential_mode() {
    Backend {
        name: "azure",
        class: "AzureClient",
        vfs_type: "azure",
        fields: vec![
            ("Endpoint", peer("AFT_TEST_AZURE_ENDPOINT")),
            ("AccountName", peer("AFT_TEST_AZURE_ACCOUNT")),
            ("Container", peer("AFT_TEST_AZURE_CONTAINER")),
        ],
        credential: Credential::Field(
            "AccountKey",
            "AccountKeyFromSecret",
            peer("AFT_TEST_AZURE_KEY"),
        ),
    }
    .check();
}

/// fake-gcs-server takes no credentials: the OTFE key stands in for one.
#[test]
fn gcs_every_entry_point_and_credential_mode() {
    Backend {
        name: "gcs",
        class: "GCSClient",
        vfs_type: "gcs",
        fields: vec![
            ("Endpoint", peer("AFT_TEST_GCS_ENDPOINT")),
            ("Bucket", peer("AFT_TEST_GCS_BUCKET")),
        ],
        credential: Credential::OtfeKey,
    }
    .check();
}

#[test]
fn webdav_every_entry_point_and_credential_mode() {
    Backend {
        name: "webdav",
        class: "WebDAVClient",
        vfs_type: "webdav",
        fields: vec![
            ("Endpoint", peer("AFT_TEST_WEBDAV_URL")),
            ("User", peer("AFT_TEST_WEBDAV_USER")),
        ],
        credential: Credential::Field("Pass", "PassFromSecret", peer("AFT_TEST_WEBDAV_PASS")),
    }
    .check();
}

/// SMB on Samba's smbd, the instance that requires SMB3 encryption (only in a build with
/// the `smb` feature, as ci/test.sh makes).
#[cfg(feature = "smb")]
#[test]
fn smb_every_entry_point_and_credential_mode() {
    Backend {
        name: "smb",
        class: "SmbClient",
        vfs_type: "smb",
        fields: vec![
            ("Host", peer("AFT_TEST_SMB_HOST")),
            ("Port", peer("AFT_TEST_SMB_PORT_ENCRYPTED")),
            ("Share", peer("AFT_TEST_SMB_SHARE")),
            ("User", peer("AFT_TEST_SMB_USER")),
        ],
        credential: Credential::Field("Pass", "PassFromSecret", peer("AFT_TEST_SMB_PASS")),
    }
    .check();
}

/// A local folder as the "remote"; the OTFE key stands in for a credential.
#[test]
fn local_every_entry_point_and_credential_mode() {
    let root = tempfile::tempdir().unwrap();
    Backend {
        name: "local",
        class: "LocalClient",
        vfs_type: "disk",
        fields: vec![("Root", root.path().to_str().unwrap().to_string())],
        credential: Credential::OtfeKey,
    }
    .check();
}

// ---------------------------------------------------------------------------------------------
// The matrix's axes

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Clear,
    Secret,
    Vfs,
}

const MODES: [Mode; 3] = [Mode::Clear, Mode::Secret, Mode::Vfs];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Clear => "clear",
            Mode::Secret => "secret",
            Mode::Vfs => "vfs",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Entry {
    Run,
    Delegated,
    Api,
    Schedule,
    Watcher,
}

const ENTRIES: [Entry; 5] = [
    Entry::Run,
    Entry::Delegated,
    Entry::Api,
    Entry::Schedule,
    Entry::Watcher,
];

impl Entry {
    fn name(self) -> &'static str {
        match self {
            Entry::Run => "run",
            Entry::Delegated => "delegated",
            Entry::Api => "api",
            Entry::Schedule => "schedule",
            Entry::Watcher => "watcher",
        }
    }

    fn how(self) -> &'static str {
        match self {
            Entry::Run => "aft run, no service",
            Entry::Delegated => "aft run delegated to aft serve",
            Entry::Api => "POST /v1/jobs with an API key",
            Entry::Schedule => "an every-second schedule",
            Entry::Watcher => "a watcher job",
        }
    }
}

/// How a backend authenticates.
enum Credential {
    /// (clear-text field, its `...FromSecret` field, the value).
    Field(&'static str, &'static str, String),
    /// No credential field: the OTFE key plays its part.
    OtfeKey,
}

/// The OTFE key of the credential-less backends.
const OTFE_KEY: &str = "path-matrix-otfe-passphrase-0123456789";

/// One client type against its peer.
struct Backend {
    name: &'static str,
    /// The SyncJS constructor.
    class: &'static str,
    /// `aft vfs add --type`.
    vfs_type: &'static str,
    /// The connection fields other than the credential.
    fields: Vec<(&'static str, String)>,
    credential: Credential,
}

/// The matrix script's check where folders are real: an upload whose target name is taken
/// by a folder fails for that file, naming the folder, and leaves the folder, what is in
/// it, and no temp file; under the default policy, and under `AlwaysOverwrite`, where the
/// upload does not look at its target first (one request less per file) and the folder
/// shows only when the temp name cannot be renamed onto it. (`UploadFile` onto a folder's
/// path uploads into that folder; `Upload` of a folder's files into another is where a
/// name can be taken.)
const FOLDER_IN_THE_WAY: &str = r#"var here = src.substring(0, src.lastIndexOf("/"));
var taken = remote + "/into/" + name;
if (!c.MakeDir(taken)) fail("MakeDir into/" + name);
if (!c.UploadFile(src, taken + "/inside.bin")) fail("UploadFile into the folder in the way");
function uploadOntoFolder(policy) {
  if (c.Upload(here + "/" + name, remote + "/into")) { Log("MATRIX FAILED: an upload replaced a folder (" + policy + ")"); Exit(1); }
  if (c.LastError().indexOf("is a directory") < 0) { Log("MATRIX FAILED: the upload onto a folder (" + policy + ") failed with: " + c.LastError()); Exit(1); }
  var inside = c.ListFiles(taken, "*");
  if (inside === null || inside.length !== 1) { Log("MATRIX FAILED: the folder in the way (" + policy + ") holds " + JSON.stringify(inside)); Exit(1); }
  var left = c.ListFiles(remote + "/into", "*").map(function (f) { return f.Name; }).filter(function (n) { return n.indexOf("aft-tmp") >= 0; });
  if (left.length > 0) { Log("MATRIX FAILED: temp files left (" + policy + "): " + JSON.stringify(left)); Exit(1); }
}
uploadOntoFolder("default policy");
c.Options.UploadPolicy = AlwaysOverwrite;
uploadOntoFolder("AlwaysOverwrite");
"#;

fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

impl Backend {
    /// The script of one credential mode; its parameters are `src` (the local file), `remote`
    /// (a folder of its own on the peer), `back` (the local folder to download to) and
    /// `watcher` (`yes`: wait for the halt signal once done).
    fn script(&self, mode: Mode) -> String {
        let mut client = String::new();
        if mode == Mode::Vfs {
            client += &format!("var c = GetVFS({});\n", js(ENTRY));
        } else {
            client += &format!("var c = new {}();\n", self.class);
            for (field, value) in &self.fields {
                client += &format!("c.{field} = {};\n", js(value));
            }
        }
        match (&self.credential, mode) {
            (Credential::Field(clear, _, value), Mode::Clear) => {
                client += &format!("c.{clear} = {};\n", js(value));
            }
            (Credential::Field(_, from_secret, _), Mode::Secret) => {
                client += &format!("c.{from_secret} = {};\n", js(SECRET));
            }
            (Credential::Field(..), Mode::Vfs) => {} // the entry names the secret
            (Credential::OtfeKey, Mode::Clear) => {
                client += &format!(
                    "c.Options.OTFE = true;\nc.Options.OTFEKey = {};\n",
                    js(OTFE_KEY)
                );
            }
            (Credential::OtfeKey, Mode::Secret | Mode::Vfs) => {
                client += &format!(
                    "c.Options.OTFE = true;\nc.Options.OTFEKeyFromSecret = {};\n",
                    js(SECRET)
                );
            }
        }
        format!(
            r#"// path matrix: {backend}, credentials {mode}
{client}var src = Param("src"), remote = Param("remote"), back = Param("back");
var name = src.substring(src.lastIndexOf("/") + 1);
function fail(step) {{ Log("MATRIX FAILED at " + step + ": " + c.LastError()); Exit(1); }}
if (!c.Connect()) fail("Connect");
if (!c.MakeDir(remote)) fail("MakeDir");
if (!c.UploadFile(src, remote + "/" + name)) fail("UploadFile");
var listed = c.ListFiles(remote, "*");
if (listed === null) fail("ListFiles");
var names = listed.map(function (f) {{ return f.Name; }});
if (names.indexOf(name) < 0) {{ Log("MATRIX FAILED at ListFiles: " + name + " not in " + JSON.stringify(names)); Exit(1); }}
if (!c.DownloadFile(remote + "/" + name, back + "/" + name)) fail("DownloadFile");
if (HashFile(back + "/" + name) !== HashFile(src)) {{ Log("MATRIX FAILED: the downloaded file differs"); Exit(1); }}
{folder_in_the_way}if (!c.DelTree(remote)) fail("DelTree");
c.Close();
Log("MATRIX OK " + name);
if (Param("watcher") === "yes") WaitForHaltSignal();
Exit(0);
"#,
            backend = self.name,
            mode = mode.name(),
            folder_in_the_way = if self.folders_are_real() {
                FOLDER_IN_THE_WAY
            } else {
                ""
            },
        )
    }

    /// Whether folders exist on their own: not on an object store, where an object and a
    /// "folder" (a prefix) of the same name live side by side.
    fn folders_are_real(&self) -> bool {
        !matches!(self.name, "s3" | "azure" | "gcs")
    }

    /// The VFS Library entry: the fields, and the credential as a secret name.
    fn entry_json(&self) -> String {
        let mut settings = serde_json::Map::new();
        for (field, value) in &self.fields {
            settings.insert(field.to_string(), json!(value));
        }
        if let Credential::Field(_, from_secret, _) = &self.credential {
            settings.insert(from_secret.to_string(), json!(SECRET));
        }
        Value::Object(settings).to_string()
    }

    fn secret_value(&self) -> &str {
        match &self.credential {
            Credential::Field(_, _, value) => value,
            Credential::OtfeKey => OTFE_KEY,
        }
    }

    /// Run all fifteen cells and fail with the table if any failed.
    fn check(&self) {
        let started = Instant::now();
        let matrix = Matrix::new(self);
        let mut results = Vec::new();
        matrix.run_cli(Entry::Run, None, &mut results);
        let svc = matrix.aft.serve();
        let api = Api::new(&svc, &matrix.rt);
        matrix.run_cli(Entry::Delegated, Some(&api), &mut results);
        matrix.run_api(&api, &mut results);
        matrix.run_schedules(&api, &mut results);
        matrix.run_watchers(&api, &mut results);
        drop(svc);
        report(self.name, &results, started.elapsed());
    }
}

// ---------------------------------------------------------------------------------------------
// Cells

/// One (mode, entry point) cell: its file, its remote folder, its download folder.
struct Cell {
    mode: Mode,
    entry: Entry,
    src: PathBuf,
    content: Vec<u8>,
    remote: String,
    back: PathBuf,
}

impl Cell {
    fn params(&self) -> Value {
        json!({
            "src": self.src.to_str().unwrap(),
            "remote": self.remote,
            "back": self.back.to_str().unwrap(),
            "watcher": if self.entry == Entry::Watcher { "yes" } else { "no" },
        })
    }

    fn name(&self) -> String {
        format!("{}-{}", self.mode.name(), self.entry.name())
    }

    /// What the job left behind: its log says `MATRIX OK` and the downloaded bytes are the
    /// uploaded ones.
    fn verify(&self, log: &str) -> Result<(), String> {
        if !log.contains("MATRIX OK") {
            return Err(format!("the job ended without logging MATRIX OK\n{log}"));
        }
        let file = self.back.join(self.src.file_name().unwrap());
        match std::fs::read(&file) {
            Ok(bytes) if bytes == self.content => Ok(()),
            Ok(bytes) => Err(format!(
                "{} holds {} bytes, not the {} uploaded\n{log}",
                file.display(),
                bytes.len(),
                self.content.len()
            )),
            Err(e) => Err(format!("{}: {e}\n{log}", file.display())),
        }
    }
}

type Results = Vec<(Mode, Entry, Result<(), String>)>;

/// A backend's data directory (secret, VFS entry, one stored script per mode, an API key) and
/// local scratch folder (the scripts as files for `aft run`, the cells' files).
struct Matrix<'a> {
    backend: &'a Backend,
    aft: Aft,
    work: tempfile::TempDir,
    key: String,
    rt: tokio::runtime::Runtime,
    unique: String,
}

impl<'a> Matrix<'a> {
    fn new(backend: &'a Backend) -> Matrix<'a> {
        let aft = Aft::allowing_cli_run();
        aft.secret(SECRET, backend.secret_value());
        aft.ok(&[
            "vfs",
            "add",
            ENTRY,
            "--type",
            backend.vfs_type,
            "--json",
            &backend.entry_json(),
        ]);
        let work = tempfile::tempdir().unwrap();
        for mode in MODES {
            let script = backend.script(mode);
            std::fs::write(
                work.path().join(format!("{}.syncjs", script_name(mode))),
                &script,
            )
            .unwrap();
            aft.push_script(&script_name(mode), &script);
        }
        let key = aft.create_key("matrix", "127.0.0.1");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Matrix {
            backend,
            aft,
            work,
            key,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            unique: format!("{}-{:x}", std::process::id(), nanos),
        }
    }

    /// A cell with its local file written and its download folder made.
    fn cell(&self, mode: Mode, entry: Entry) -> Cell {
        let tag = format!("{}-{}-{}", self.backend.name, mode.name(), entry.name());
        let dir = self.work.path().join(&tag);
        let back = dir.join("back");
        std::fs::create_dir_all(&back).unwrap();
        let src = dir.join(format!("{tag}-{}.bin", self.unique));
        let mut content = format!("aft path matrix {tag} {}\r\n", self.unique).into_bytes();
        content.extend(0..=255u8);
        std::fs::write(&src, &content).unwrap();
        Cell {
            mode,
            entry,
            src,
            content,
            remote: format!("/aft-matrix-{tag}-{}", self.unique),
            back,
        }
    }

    /// `aft run -f SCRIPT -p PARAMS` for each mode at once; with `api` a service runs and the
    /// job must be the service's (`origin` `delegate`).
    fn run_cli(&self, entry: Entry, api: Option<&Api>, results: &mut Results) {
        let running: Vec<(Cell, Child)> = MODES
            .iter()
            .map(|&mode| {
                let cell = self.cell(mode, entry);
                let file = self
                    .work
                    .path()
                    .join(format!("{}.syncjs", script_name(mode)));
                let params = cell.params().to_string();
                let child = self
                    .aft
                    .command(&["run", "-f", file.to_str().unwrap(), "-p", &params])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (cell, child)
            })
            .collect();
        for (cell, child) in running {
            let result = finish_cli(child).and_then(|out| {
                let log = text(&out);
                if !out.status.success() {
                    return Err(format!("aft run exited {}\n{log}", out.status));
                }
                if let Some(api) = api {
                    let job = self
                        .rt
                        .block_on(api.find_job(&cell.remote))
                        .ok_or_else(|| {
                            format!("the service has no job for it: it did not delegate\n{log}")
                        })?;
                    if job["origin"] != "delegate" {
                        return Err(format!(
                            "its job's origin is {}, not delegate\n{log}",
                            job["origin"]
                        ));
                    }
                }
                cell.verify(&log)
            });
            results.push((cell.mode, entry, result));
        }
    }

    /// `POST /v1/jobs` with the API key for each mode, then wait for each with that key.
    fn run_api(&self, api: &Api, results: &mut Results) {
        let queued: Vec<(Cell, Result<String, String>)> = MODES
            .iter()
            .map(|&mode| {
                let cell = self.cell(mode, Entry::Api);
                let body = json!({"scriptName": script_name(mode), "params": cell.params()});
                let (status, answer) = self.rt.block_on(call(
                    &api.http,
                    Method::POST,
                    &format!("{}/v1/jobs", api.base),
                    Some(("X-API-Key", &self.key)),
                    Some(&body),
                ));
                let id = match (status, answer["jobId"].as_str()) {
                    (202, Some(id)) => Ok(id.to_string()),
                    _ => Err(format!("POST /v1/jobs answered {status} {answer}")),
                };
                (cell, id)
            })
            .collect();
        for (cell, id) in queued {
            let result = id.and_then(|id| {
                let auth = ("X-API-Key", self.key.as_str());
                let job = self.rt.block_on(api.wait_end(auth, &id, JOB_LIMIT))?;
                let log = self.rt.block_on(api.log(auth, &id));
                expect_status(&job, "succeeded", &log)?;
                cell.verify(&log)
            });
            results.push((cell.mode, Entry::Api, result));
        }
    }

    /// An every-second schedule per mode; each is deleted as soon as its first job is queued
    /// (overlap `skip` keeps a second one from starting meanwhile), and that job must succeed.
    fn run_schedules(&self, api: &Api, results: &mut Results) {
        let cells: Vec<Cell> = MODES
            .iter()
            .map(|&mode| {
                let cell = self.cell(mode, Entry::Schedule);
                self.aft.ok(&[
                    "schedule",
                    "add",
                    &cell.name(),
                    "--script",
                    &script_name(mode),
                    "--cron",
                    "* * * * * *",
                    "--params",
                    &cell.params().to_string(),
                ]);
                cell
            })
            .collect();
        for cell in cells {
            let found = self
                .rt
                .block_on(api.poll_job(&cell.remote, Duration::from_secs(10)));
            self.aft.ok(&["schedule", "delete", &cell.name()]);
            let result = found
                .ok_or_else(|| "the schedule queued no job within 10 s".to_string())
                .and_then(|job| self.judge(api, &cell, &job, "schedule", "succeeded"));
            results.push((cell.mode, Entry::Schedule, result));
        }
    }

    /// A watcher job per mode: its run logs `MATRIX OK` and then waits for the halt signal;
    /// deleting the watcher halts it.
    fn run_watchers(&self, api: &Api, results: &mut Results) {
        let cells: Vec<Cell> = MODES
            .iter()
            .map(|&mode| {
                let cell = self.cell(mode, Entry::Watcher);
                self.aft.ok(&[
                    "watcher",
                    "add",
                    &cell.name(),
                    "--script",
                    &script_name(mode),
                    "--params",
                    &cell.params().to_string(),
                ]);
                cell
            })
            .collect();
        for cell in cells {
            let auth = api.auth();
            // The run is done with the transfer when it logs the marker, or when it ended.
            let run = self.rt.block_on(async {
                let job = api.poll_job(&cell.remote, Duration::from_secs(10)).await?;
                let id = job["id"].as_str()?.to_string();
                let deadline = Instant::now() + JOB_LIMIT;
                loop {
                    let log = api.log(auth, &id).await;
                    let (_, job) = call(
                        &api.http,
                        Method::GET,
                        &format!("{}/v1/jobs/{id}", api.base),
                        Some(auth),
                        None,
                    )
                    .await;
                    let ended = !matches!(job["status"].as_str(), Some("queued" | "running"));
                    if log.contains("MATRIX OK") || ended || Instant::now() > deadline {
                        return Some(job);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            self.aft.ok(&["watcher", "delete", &cell.name()]);
            let result = run
                .ok_or_else(|| "the watcher started no run within 10 s".to_string())
                .and_then(|job| self.judge(api, &cell, &job, "watcher", "halted"));
            results.push((cell.mode, Entry::Watcher, result));
        }
    }

    /// Wait for a service job to end; it must have `origin` and end with `status`.
    fn judge(
        &self,
        api: &Api,
        cell: &Cell,
        job: &Value,
        origin: &str,
        status: &str,
    ) -> Result<(), String> {
        let id = job["id"].as_str().unwrap_or_default().to_string();
        let job = self.rt.block_on(api.wait_end(api.auth(), &id, JOB_LIMIT))?;
        let log = self.rt.block_on(api.log(api.auth(), &id));
        if job["origin"] != origin {
            return Err(format!(
                "job {id} has origin {}, not {origin}\n{log}",
                job["origin"]
            ));
        }
        expect_status(&job, status, &log)?;
        cell.verify(&log)
    }
}

/// The stored script of a mode.
fn script_name(mode: Mode) -> String {
    format!("matrix-{}", mode.name())
}

/// The output of `aft run`, killing it after `JOB_LIMIT`.
fn finish_cli(child: Child) -> Result<Output, String> {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(JOB_LIMIT) {
        Ok(out) => out.map_err(|e| e.to_string()),
        Err(_) => {
            support::signal(pid, "KILL");
            Err(format!("aft run did not end within {JOB_LIMIT:?}; killed"))
        }
    }
}

fn expect_status(job: &Value, status: &str, log: &str) -> Result<(), String> {
    if job["status"] == status {
        return Ok(());
    }
    Err(format!(
        "job {} ended {} (exit code {}, error {}), not {status}\n{log}",
        job["id"], job["status"], job["exitCode"], job["error"]
    ))
}

// ---------------------------------------------------------------------------------------------
// The service's API

/// The running service, called with its local token (or a given API key).
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(svc: &Service, rt: &tokio::runtime::Runtime) -> Api {
        let _guard = rt.enter();
        Api {
            http: svc.client(),
            base: svc.base(),
            token: svc.local_token(),
        }
    }

    fn auth(&self) -> (&str, &str) {
        ("X-Aft-Local-Token", &self.token)
    }

    /// The job whose `remote` parameter is `remote` (each cell has its own), if any yet.
    async fn find_job(&self, remote: &str) -> Option<Value> {
        let (status, page) = call(
            &self.http,
            Method::GET,
            &format!("{}/v1/jobs?limit=1000", self.base),
            Some(self.auth()),
            None,
        )
        .await;
        assert_eq!(status, 200, "GET /v1/jobs: {page}");
        page["jobs"]
            .as_array()?
            .iter()
            .rev() // the oldest first: a watcher restarted after a failure has several runs
            .find(|job| job["params"]["remote"] == remote)
            .cloned()
    }

    /// Poll for the job of `remote` for at most `limit`.
    async fn poll_job(&self, remote: &str, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(job) = self.find_job(remote).await {
                return Some(job);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Poll `GET /v1/jobs/{id}` until the job has ended; an error (with its log) after `limit`.
    async fn wait_end(
        &self,
        auth: (&str, &str),
        id: &str,
        limit: Duration,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + limit;
        loop {
            let (status, job) = call(
                &self.http,
                Method::GET,
                &format!("{}/v1/jobs/{id}", self.base),
                Some(auth),
                None,
            )
            .await;
            if status != 200 {
                return Err(format!("GET /v1/jobs/{id} answered {status} {job}"));
            }
            if !matches!(job["status"].as_str(), Some("queued" | "running")) {
                return Ok(job);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "job {id} still {} after {limit:?}\n{}",
                    job["status"],
                    self.log(auth, id).await
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The job's log as text, one `level message` line each.
    async fn log(&self, auth: (&str, &str), id: &str) -> String {
        let (status, log) = call(
            &self.http,
            Method::GET,
            &format!("{}/v1/jobs/{id}/log", self.base),
            Some(auth),
            None,
        )
        .await;
        if status != 200 {
            return format!("(GET /v1/jobs/{id}/log answered {status} {log})");
        }
        log["lines"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|line| {
                format!(
                    "    {} {}\n",
                    line["level"].as_str().unwrap_or("?"),
                    line["message"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The report

/// Print the table; fail naming every failed cell with its log.
fn report(backend: &str, results: &Results, took: Duration) {
    let mut table = format!("path matrix, {backend} ({took:.1?}):\n{:<8}", "");
    for entry in ENTRIES {
        table += &format!("{:<11}", entry.name());
    }
    for mode in MODES {
        table += &format!("\n{:<8}", mode.name());
        for entry in ENTRIES {
            let cell = results.iter().find(|(m, e, _)| *m == mode && *e == entry);
            let mark = match cell {
                Some((_, _, Ok(()))) => "ok",
                Some((_, _, Err(_))) => "FAILED",
                None => "not run",
            };
            table += &format!("{mark:<11}");
        }
    }
    println!("{table}");
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(mode, entry, result)| {
            result.as_ref().err().map(|why| {
                format!(
                    "--- {backend}: {} × {} ({}) failed: {why}",
                    mode.name(),
                    entry.name(),
                    entry.how()
                )
            })
        })
        .collect();
    assert!(
        failed.is_empty() && results.len() == MODES.len() * ENTRIES.len(),
        "{table}\n\n{}",
        failed.join("\n")
    );
}
