//! The backend registry through the real binary: `aft vfs add` and `POST/PUT /v1/vfs` refuse
//! what the registry refuses (unknown fields, clear-text credentials, inline keys, URLs with
//! a password) naming the field and what to use instead; `GET /v1/vfs/types` and
//! `aft vfs types` list every backend with its fields; an SFTP entry whose private key is a
//! secret (`KeyFileFromSecret`) connects to the real sshd.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, call, peer};

/// Entries every refusal test tries, with what the message must name.
fn refused_entries() -> Vec<(&'static str, Value, Vec<&'static str>)> {
    vec![
        (
            "sftp",
            json!({"Host": "sftp.example.com:22", "User": "u", "Password": "hunter2"}),
            vec!["\"Password\"", "PassFromSecret", "aft secret set"],
        ),
        (
            "sftp",
            json!({"Host": "sftp.example.com:22", "User": "u", "Pass": "hunter2"}),
            vec!["Pass", "PassFromSecret", "aft secret set"],
        ),
        (
            "s3",
            json!({"Bucket": "b", "APIKeyID": "id", "APIKeySecret": "hunter2"}),
            vec!["APIKeySecret", "APIKeySecretFromSecret"],
        ),
        (
            "sftp",
            json!({"Host": "sftp.example.com:22", "User": "u",
                   "KeyFile": "-----BEGIN OPENSSH PRIVATE KEY-----\nhunter2\n-----END OPENSSH PRIVATE KEY-----\n"}),
            vec!["KeyFile", "KeyFileFromSecret"],
        ),
        (
            "webdav",
            json!({"Endpoint": "https://bob:hunter2@dav.example.com/dav"}),
            vec!["Endpoint", "User", "PassFromSecret"],
        ),
    ]
}

#[test]
fn vfs_add_refuses_unknown_fields_clear_text_credentials_inline_keys_and_url_passwords() {
    let aft = Aft::new();
    for (kind, fields, names) in refused_entries() {
        let out = aft.fails(
            &[
                "vfs",
                "add",
                "x",
                "--type",
                kind,
                "--json",
                &fields.to_string(),
            ],
            2,
        );
        for name in names {
            assert!(
                out.contains(name),
                "{kind} {fields}: missing {name} in:\n{out}"
            );
        }
        assert!(
            !out.contains("hunter2"),
            "the value must not be echoed:\n{out}"
        );
    }
    // --set goes through the same check (a field name is case-sensitive: a hint says so).
    let out = aft.fails(
        &[
            "vfs",
            "add",
            "x",
            "--type",
            "ftp",
            "--set",
            "host=ftp.example.com",
        ],
        2,
    );
    assert!(out.contains("did you mean Host?"), "{out}");
    assert!(!aft.ok(&["vfs", "list"]).contains('x'));
    // A valid entry still saves, under the type's canonical name.
    let out = aft.ok(&[
        "vfs",
        "add",
        "outbox",
        "--type",
        "LOCAL",
        "--set",
        "Root=/srv/outbox",
    ]);
    assert!(out.contains("outbox (disk) saved"), "{out}");
}

#[test]
fn vfs_types_and_add_help_list_every_backend_with_its_fields() {
    let aft = Aft::new();
    let types = aft.ok(&["vfs", "types"]);
    for needle in [
        "disk",
        "sftp",
        "ftps",
        "s3",
        "azure",
        "gcs",
        "webdav",
        "KeyFileFromSecret",
        "APIKeySecretFromSecret",
        "TLS_MODE_IMPLICIT",
    ] {
        assert!(types.contains(needle), "{needle} missing from:\n{types}");
    }
    // Clear-text credential fields are never offered.
    assert!(!types.contains("KeyFilePass "), "{types}");
    let one = aft.ok(&["vfs", "types", "azure"]);
    assert!(
        one.contains("AccountKeyFromSecret") && !one.contains("Bucket"),
        "{one}"
    );
    aft.fails(&["vfs", "types", "floppy"], 2);
    let help = aft.ok(&["vfs", "add", "--help"]);
    assert!(
        help.contains("HostKeySHA256") && help.contains("webdav"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_what_the_registry_refuses_and_lists_the_types() {
    let aft = Aft::new();
    let svc = aft.serve();
    let http = svc.client();
    let token = svc.local_token();
    let auth = Some(("X-Aft-Local-Token", token.as_str()));
    let url = |path: &str| format!("{}{path}", svc.base());

    for (kind, fields, names) in refused_entries() {
        let body = json!({"name": "x", "type": kind, "settings": fields});
        let (status, answer) = call(&http, Method::POST, &url("/v1/vfs"), auth, Some(&body)).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default().to_string();
        for name in names {
            assert!(
                message.contains(name),
                "{body}: missing {name} in {message}"
            );
        }
        assert!(!answer.to_string().contains("hunter2"), "{answer}");
    }
    let (_, list) = call(&http, Method::GET, &url("/v1/vfs"), auth, None).await;
    assert_eq!(list, json!([]), "nothing refused was stored");

    // PUT is checked too: the "More fields" row named Password of the security issue.
    let good = json!({"name": "partner", "type": "sftp",
                      "settings": {"Host": "sftp.example.com:22", "User": "u", "PassFromSecret": "partner-pass"}});
    let (status, saved) = call(&http, Method::POST, &url("/v1/vfs"), auth, Some(&good)).await;
    assert_eq!(status, 201, "{saved}");
    let bad = json!({"type": "sftp",
                     "settings": {"Host": "sftp.example.com:22", "User": "u", "Password": "hunter2"}});
    let (status, answer) = call(
        &http,
        Method::PUT,
        &url("/v1/vfs/partner"),
        auth,
        Some(&bad),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (_, entry) = call(&http, Method::GET, &url("/v1/vfs/partner"), auth, None).await;
    assert_eq!(entry["settings"], good["settings"], "{entry}");

    // The registry as JSON: every type with its fields.
    let (status, types) = call(&http, Method::GET, &url("/v1/vfs/types"), auth, None).await;
    assert_eq!(status, 200, "{types}");
    let names: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "disk", "sftp", "ftp", "ftps", "s3", "azure", "gcs", "webdav", "smb"
        ]
    );
    let sftp = &types[1];
    assert_eq!(sftp["label"], "SFTP");
    assert_eq!(sftp["client"], "SftpClient");
    let field = |t: &Value, name: &str| {
        t["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no field {name} in {t}"))
    };
    let host = field(sftp, "Host");
    assert_eq!(host["required"], true);
    assert_eq!(host["placeholder"], "sftp.example.com:22");
    let key = field(sftp, "KeyFileFromSecret");
    assert_eq!(key["kind"], "secret");
    assert_eq!(key["secretFor"], "KeyFile");
    assert_eq!(field(sftp, "Pass")["kind"], "credential");
    assert_eq!(
        field(&types[3], "TLSMode")["default"],
        1,
        "ftps defaults to explicit TLS"
    );
    assert_eq!(field(&types[2], "TLSMode")["default"], 0);
    assert_eq!(
        field(&types[3], "TLSMode")["options"],
        json!(["TLS_MODE_NONE", "TLS_MODE_EXPLICIT", "TLS_MODE_IMPLICIT"])
    );
    assert_eq!(types[7]["oneOf"], json!(["Endpoint", "Host"]));

    // ... and in the OpenAPI document.
    let (_, doc) = call(&http, Method::GET, &url("/v1/openapi.json"), auth, None).await;
    assert!(
        doc["paths"]["/v1/vfs/types"]["get"].is_object(),
        "{}",
        doc["paths"]
    );
    assert!(doc["components"]["schemas"]["VfsTypeView"].is_object());
}

#[test]
fn sftp_entry_with_its_private_key_in_a_secret_connects_to_the_real_sshd() {
    let aft = Aft::new();
    let key_text = std::fs::read_to_string(peer("AFT_TEST_SFTP_KEY")).unwrap();
    support::ok(aft.run_with_input(&["secret", "set", "partner-key"], &key_text));
    let host = format!("Host={}", peer("AFT_TEST_SFTP_ADDR"));
    let user = format!("User={}", peer("AFT_TEST_SFTP_USER"));
    let pin = format!("HostKeySHA256={}", peer("AFT_TEST_SFTP_HOSTKEY_SHA256"));
    aft.ok(&[
        "vfs",
        "add",
        "partner",
        "--type",
        "sftp",
        "--set",
        &host,
        "--set",
        &user,
        "--set",
        &pin,
        "--set",
        "KeyFileFromSecret=partner-key",
    ]);
    let tested = aft.ok(&["vfs", "test", "partner"]);
    assert!(tested.contains("connected to sftp://"), "{tested}");
    // The key is what logged in: a secret holding something else is refused by name.
    aft.secret("not-a-key", "hunter2");
    aft.ok(&[
        "vfs",
        "add",
        "partner",
        "--type",
        "sftp",
        "--replace",
        "--set",
        &host,
        "--set",
        &user,
        "--set",
        &pin,
        "--set",
        "KeyFileFromSecret=not-a-key",
    ]);
    let out = aft.fails(&["vfs", "test", "partner"], 1);
    assert!(
        out.contains("not-a-key") && out.contains("KeyFileFromSecret") && !out.contains("hunter2"),
        "{out}"
    );
}

#[test]
fn syncjs_sftp_client_logs_in_with_key_file_from_secret() {
    let aft = Aft::allowing_cli_run();
    let key_text = std::fs::read_to_string(peer("AFT_TEST_SFTP_KEY")).unwrap();
    support::ok(aft.run_with_input(&["secret", "set", "partner-key"], &key_text));
    let script = format!(
        r#"var c = new SftpClient();
c.Host = "{}"; c.User = "{}"; c.HostKeySHA256 = "{}";
c.KeyFileFromSecret = "partner-key";
if (!c.Connect()) throw new Error("connect: " + c.LastError());
Log("listed " + (c.ListDir("/") !== null));
c.Close();
"#,
        peer("AFT_TEST_SFTP_ADDR"),
        peer("AFT_TEST_SFTP_USER"),
        peer("AFT_TEST_SFTP_HOSTKEY_SHA256"),
    );
    let file = aft.write("key.syncjs", &script);
    let out = aft.ok(&["run", "-f", &file]);
    assert!(out.contains("listed true"), "{out}");
}
