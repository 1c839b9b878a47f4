//! Conformance with what is known of Syncplify AFT! v4 (`/work/shared/spec/AFT.md`), through
//! the real binary: the names and constants of the script API, the job context, and the
//! places where aft once differed from AFT!'s documented usage.

mod support;

use support::{Aft, peer};

/// Every global the spec names exists with the documented kind, and the documented constants
/// have the documented values.
#[test]
fn spec_globals_and_constants() {
    let aft = Aft::allowing_cli_run();
    let script = aft.write(
        "globals.syncjs",
        r#"
var fns = ["Log", "Param", "Exit", "Sleep", "GetSecret", "WaitForHaltSignal", "GetVFS",
    "SftpClient", "FtpsClient", "S3Client", "AzureClient", "GCSClient", "WebDAVClient",
    "LocalClient", "FsWatcher", "RemoteWatcher", "HttpCli", "SendMail"];
for (var f of fns) if (typeof globalThis[f] !== "function") throw new Error(f + " is " + typeof globalThis[f]);
if (HaltSignalReceived !== false) throw new Error("HaltSignalReceived is not the value false");
var want = {LIST_ALL: 0, LIST_FILES: 1, LIST_DIRS: 2,
    TLS_MODE_NONE: 0, TLS_MODE_EXPLICIT: 1, TLS_MODE_IMPLICIT: 2,
    NeverOverwrite: 0, AlwaysOverwrite: 1, OverwriteIfDiffSize: 2, OverwriteIfNewer: 3};
for (var k in want) if (globalThis[k] !== want[k]) throw new Error(k + " = " + globalThis[k]);
for (var e of ["EVT_CREATE", "EVT_WRITE", "EVT_REMOVE", "EVT_RENAME", "EVT_CHMOD"])
    if (typeof globalThis[e] === "undefined") throw new Error(e + " missing");
var o = new SftpClient().Options;
var defaults = {StopOnTransferError: false, UploadPolicy: 0, DownloadPolicy: 0,
    UploadWithTempName: false, DownloadWithTempName: false, DeleteSourceAfterUpload: false,
    DeleteSourceAfterDownload: false, AdjustTimeOnUpload: false, AdjustTimeOnDownload: false,
    VersionedUpload: false, VersionedDownload: false, VersionsToKeepRemote: 3,
    VersionsToKeepLocal: 3, OTFE: false};
for (var k in defaults) if (o[k] !== defaults[k]) throw new Error("Options." + k + " = " + o[k]);
var methods = ["Connect", "Close", "ListDir", "ListDirR", "ListFiles", "ListFilesR", "MakeDir",
    "RenDir", "DelDir", "DelTree", "Upload", "Download", "DelFile", "RenFile", "Stat", "Exists",
    "UploadFile", "DownloadFile", "CopyTo", "Sync", "LastError"];
for (var c of ["SftpClient", "FtpsClient", "S3Client", "AzureClient", "GCSClient", "WebDAVClient", "LocalClient"]) {
    var inst = new globalThis[c]();
    for (var m of methods) if (typeof inst[m] !== "function") throw new Error(c + "." + m + " missing");
}
var h = new HttpCli();
if (h.Url("http://x").Timeout(5).Header("A", "b").ReqBody("") !== h) throw new Error("HttpCli is not chainable");
Log("param=[" + Param("absent") + "] secret=[" + GetSecret("absent") + "]");
Log("GLOBALS OK");
"#,
    );
    let out = aft.ok(&["run", "-f", &script]);
    assert!(out.contains("param=[] secret=[]"), "{out}");
    assert!(out.contains("GLOBALS OK"), "{out}");
}

/// `aft run` exits 0 on success and on `Exit()`, 1 on a throw (with message and line in the
/// log) and on `Exit(code)` with a non-zero code.
#[test]
fn run_exit_codes() {
    let aft = Aft::allowing_cli_run();
    let exit = aft.write("exit.syncjs", "Exit();\nthrow new Error('not reached');\n");
    aft.ok(&["run", "-f", &exit]);
    let code = aft.write("code.syncjs", "Exit(3);\n");
    aft.fails(&["run", "-f", &code], 1);
    let throws = aft.write(
        "throws.syncjs",
        "Log('a');\nthrow new Error('boom here');\n",
    );
    let out = aft.fails(&["run", "-f", &throws], 1);
    assert!(out.contains("boom here"), "{out}");
    assert!(
        out.contains("throws.syncjs:2"),
        "the line is missing: {out}"
    );
}

/// AFT!'s examples upload `C:\\folder\\*.*` meaning "every file"; `ListFiles` already took
/// `*.*` so. A transfer glob ending in `*.*` selects files without a dot in their name too.
#[test]
fn star_dot_star_glob_selects_every_file() {
    let aft = Aft::allowing_cli_run();
    let out_dir = aft.path("out");
    std::fs::create_dir_all(out_dir.join("sub")).unwrap();
    for name in ["a.txt", "b.csv", "README"] {
        std::fs::write(out_dir.join(name), name).unwrap();
    }
    std::fs::write(out_dir.join("sub/deep.txt"), "deep").unwrap();
    let script = aft.write(
        "stars.syncjs",
        r#"
var c = new LocalClient();
var src = Param("src"), up = Param("up"), down = Param("down");
if (!c.Upload(src + "/*.*", up)) throw new Error("Upload: " + c.LastError());
if (!c.Download(up + "/*.*", down)) throw new Error("Download: " + c.LastError());
Log("UP " + c.ListDir(up, LIST_ALL).map(function (e) { return e.Name; }).join(","));
Log("DOWN " + FindFiles(down, "**").length);
var x = c.Upload(src + "/x*.*", up + "2");
Log("NARROW " + (DirExists(up + "2") ? FindFiles(up + "2", "**").length : 0));
"#,
    );
    let params = serde_json::json!({
        "src": out_dir,
        "up": aft.path("up"),
        "down": aft.path("down"),
    })
    .to_string();
    let out = aft.ok(&["run", "-f", &script, "-p", &params]);
    // Every file of the folder, names without a dot included; not the sub-folder's tree.
    assert!(out.contains("UP README,a.txt,b.csv\n"), "{out}");
    assert!(out.contains("DOWN 3\n"), "{out}");
    // Only a last part that is exactly `*.*` means every file: `x*.*` stays a glob.
    assert!(out.contains("NARROW 0\n"), "{out}");
}

/// `DelDir` deletes only an empty folder; on a folder with content it returns false and says
/// why (SFTP servers answer just "Failure"), and the folder stays.
#[test]
fn deldir_refuses_a_folder_with_content_and_says_why() {
    let aft = Aft::allowing_cli_run();
    let script = aft.write(
        "deldir.syncjs",
        r#"
var c = new SftpClient();
c.Host = Param("host"); c.User = Param("user"); c.Pass = Param("pass");
c.HostKeySHA256 = Param("hostkey");
var dir = Param("home") + "/spec-deldir-" + Date.now();
if (!c.MakeDir(dir + "/inner")) throw new Error("MakeDir: " + c.LastError());
var r = c.DelDir(dir);
Log("RESULT " + r + " EXISTS " + c.Exists(dir) + " ERR " + c.LastError());
if (!c.DelDir(dir + "/inner")) throw new Error("DelDir of an empty folder: " + c.LastError());
if (!c.DelDir(dir)) throw new Error("DelDir once empty: " + c.LastError());
Log("GONE " + !c.Exists(dir));
"#,
    );
    let params = serde_json::json!({
        "host": peer("AFT_TEST_SFTP_ADDR"),
        "user": peer("AFT_TEST_SFTP_USER"),
        "pass": peer("AFT_TEST_SFTP_PASS"),
        "hostkey": peer("AFT_TEST_SFTP_HOSTKEY_SHA256"),
        "home": peer("AFT_TEST_SFTP_HOME"),
    })
    .to_string();
    let out = aft.ok(&["run", "-f", &script, "-p", &params]);
    assert!(out.contains("RESULT false EXISTS true ERR "), "{out}");
    assert!(
        out.contains("is not empty (it holds inner)"),
        "the reason is not named: {out}"
    );
    assert!(out.contains("GONE true"), "{out}");
}
