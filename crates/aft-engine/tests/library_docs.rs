//! Every ```js example in docs/syncjs-library.md runs as a job against the real peers
//! (the test's HTTPS server, aiosmtpd, keys made by GnuPG), and every library function
//! appears in at least one example.

mod library_support;

use std::collections::BTreeMap;

use aft_engine::{HaltFlag, MemoryHost};
use library_support::{Gpg, https_server, peer_env, run_full};

const DOC: &str = include_str!("../../../docs/syncjs-library.md");

/// Every global the script library defines.
const LIBRARY: &[&str] = &[
    "HttpCli",
    "Url(",
    "Timeout(",
    "Header(",
    "ReqBody(",
    "ReqBodyJSON(",
    "CAFile(",
    "BasicAuth(",
    "BearerToken(",
    "ReqBodyBytes(",
    "ReqBodyFromFile(",
    "InsecureSkipVerify(",
    "SaveBodyTo(",
    ".Get()",
    ".Post()",
    ".Put()",
    ".Patch()",
    ".Delete()",
    ".Head()",
    ".Do(",
    "IsValid()",
    "StatusCode()",
    "BodyAsString()",
    "BodyAsBytes()",
    "BodyAsJSON()",
    "Headers()",
    "Error()",
    "SendMail(",
    "Zip(",
    "Unzip(",
    "TarGz(",
    "UnTarGz(",
    "PgpEncryptFile(",
    "PgpDecryptFile(",
    "PgpSignFile(",
    "PgpVerifyFile(",
    "HashFile(",
    "HashString(",
    "CopyFile(",
    "MoveFile(",
    "DelFile(",
    "DelTree(",
    "MakeDir(",
    "FileExists(",
    "DirExists(",
    "ReadTextFile(",
    "WriteTextFile(",
    "AppendTextFile(",
    "ReadFileBytes(",
    "WriteFileBytes(",
    "FindFiles(",
    "FileInfo(",
    "MakeTempDir(",
    "RunProgram(",
    "FormatDate(",
    "TextEncoder",
    "TextDecoder",
    "btoa(",
    "atob(",
];

/// The fenced ```js blocks of the document, with the line each starts on.
fn examples(doc: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in doc.lines().enumerate() {
        match &mut current {
            None if line.trim() == "```js" => current = Some((i + 1, String::new())),
            Some((start, code)) if line.trim() == "```" => {
                out.push((*start, std::mem::take(code)));
                current = None;
            }
            Some((_, code)) => {
                code.push_str(line);
                code.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn every_library_function_has_an_example() {
    let code: String = examples(DOC).into_iter().map(|(_, c)| c).collect();
    let missing: Vec<_> = LIBRARY
        .iter()
        .filter(|name| !code.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/syncjs-library.md has no example using {missing:?}"
    );
}

#[test]
fn every_example_in_the_library_docs_runs() {
    let blocks = examples(DOC);
    assert!(blocks.len() >= 15, "only {} examples found", blocks.len());
    let srv = https_server();
    let keys = tempfile::tempdir().unwrap();
    let partner = Gpg::new("Partner <partner@example.com>", "partner-pass", "ed25519");
    let me = Gpg::new("Me <me@example.com>", "my-pass", "ed25519");
    let (partner_pub, _) = partner.export(
        "partner@example.com",
        "partner-pass",
        keys.path(),
        "partner",
    );
    let (my_pub, my_sec) = me.export("me@example.com", "my-pass", keys.path(), "me");
    let smtp_plain = peer_env("AFT_TEST_SMTP_ADDR");
    let starttls = peer_env("AFT_TEST_SMTP_STARTTLS_ADDR");
    let (st_host, st_port) = starttls.rsplit_once(':').unwrap();

    for (line, code) in blocks {
        let work = tempfile::tempdir().unwrap();
        let host = MemoryHost::new()
            .with_secret("zip-password", "zip-secret-pass")
            .with_secret("my-pgp-passphrase", "my-pass")
            .with_secret("smtp-pass", &peer_env("AFT_TEST_SMTP_PASS"))
            .with_setting("smtp-host", st_host)
            .with_setting("smtp-port", st_port)
            .with_setting("smtp-tls", "starttls")
            .with_setting("smtp-user", &peer_env("AFT_TEST_SMTP_USER"))
            .with_setting("smtp-password-secret", "smtp-pass")
            .with_setting("smtp-ca-file", &peer_env("AFT_TEST_SMTP_CA"))
            .with_setting("smtp-from", "aft@example.com");
        let params: BTreeMap<String, String> = [
            ("work", work.path().to_string_lossy().into_owned()),
            ("api", srv.base.clone()),
            ("ca", srv.ca_file.clone()),
            ("smtp", smtp_plain.clone()),
            ("partnerPublicKey", partner_pub.clone()),
            ("myPublicKey", my_pub.clone()),
            ("myPrivateKey", my_sec.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let ran = run_full(&code, host, HaltFlag::new(), params);
        assert!(
            ran.outcome.is_success(),
            "the example at docs/syncjs-library.md line {line} failed: {}\n--- code ---\n{code}--- log ---\n{}",
            ran.outcome,
            ran.log()
        );
    }
}
