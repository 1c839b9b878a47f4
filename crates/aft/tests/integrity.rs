//! Deleting what something uses: a script run by schedules and watchers, a secret named by a
//! VFS entry, a VFS entry a script opens with `GetVFS("name")`. The real `aft` binary, from
//! the CLI (store) and the HTTPS API: refused with the users listed, unless forced, which
//! deletes and disables the schedules and watchers and says so.

use reqwest::Method;
use serde_json::{Value, json};

mod support;

use support::{Aft, call};

const MOVER: &str = r#"// Opens the partner entry only when asked, so the watcher's runs stay quiet.
if (Param("go") == "yes") {
    var remote = GetVFS("partner");
}
Log("checked");
"#;

/// A data directory with: secret sftpPass, VFS entry partner (PassFromSecret=sftpPass),
/// script mover (GetVFS("partner")) run by schedule nightly and watcher inbox, and script
/// other run by schedule spare.
fn setup() -> Aft {
    let aft = Aft::new();
    aft.secret("sftpPass", "s3cret");
    aft.ok(&[
        "vfs",
        "add",
        "partner",
        "--type",
        "sftp",
        "--set",
        "Host=127.0.0.1:2222",
        "--set",
        "User=u",
        "--set",
        "PassFromSecret=sftpPass",
    ]);
    aft.push_script("mover", MOVER);
    aft.push_script("other", "Log('other');\n");
    aft.ok(&[
        "schedule", "add", "nightly", "-s", "mover", "--cron", "@daily",
    ]);
    aft.ok(&[
        "schedule", "add", "spare", "-s", "other", "--cron", "@daily",
    ]);
    aft.ok(&["watcher", "add", "inbox", "-s", "mover"]);
    aft
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn names(users: &Value) -> Vec<String> {
    let mut out: Vec<String> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{}/{}",
                u["kind"].as_str().unwrap(),
                u["name"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

fn schedule_enabled(aft: &Aft, name: &str) -> bool {
    let list = json(&aft.ok(&["schedule", "list", "--json"]));
    let s = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no schedule {name} in {list}"));
    s["enabled"].as_bool().unwrap()
}

#[test]
fn cli_refuses_deleting_what_is_used_and_force_disables_the_users() {
    let aft = setup();

    // What uses what, as the CLI lists it.
    let users = json(&aft.ok(&["script", "used-by", "mover", "--json"]));
    assert_eq!(names(&users), ["schedule/nightly", "watcher/inbox"]);
    assert_eq!(
        names(&json(&aft.ok(&["secret", "used-by", "sftpPass", "--json"]))),
        ["vfs/partner"]
    );
    let vfs_users = json(&aft.ok(&["vfs", "used-by", "partner", "--json"]));
    assert_eq!(names(&vfs_users), ["script/mover", "watcher/inbox"]);
    assert!(
        aft.ok(&["script", "used-by", "other"]).contains("spare"),
        "the table names the schedule"
    );

    // Refused, naming every user, and nothing is deleted.
    let refused = aft.fails(&["script", "rm", "mover"], 1);
    assert!(refused.contains("schedule nightly"), "{refused}");
    assert!(refused.contains("watcher inbox"), "{refused}");
    assert!(refused.contains("--force"), "{refused}");
    let refused = aft.fails(&["secret", "delete", "sftpPass"], 1);
    assert!(refused.contains("vfs partner"), "{refused}");
    let refused = aft.fails(&["vfs", "rm", "partner"], 1);
    assert!(refused.contains("script mover"), "{refused}");
    aft.ok(&["script", "show", "mover"]);
    aft.ok(&["vfs", "show", "partner"]);
    assert!(aft.ok(&["secret", "list"]).contains("sftpPass"));
    assert!(schedule_enabled(&aft, "nightly"));

    // Forced: deleted, and the schedule that ran it is disabled (the other one is not).
    let out = aft.ok(&["script", "rm", "other", "--force"]);
    assert!(out.contains("script other deleted"), "{out}");
    assert!(out.contains("disabled schedule/spare"), "{out}");
    assert!(!schedule_enabled(&aft, "spare"));
    assert!(schedule_enabled(&aft, "nightly"));
    aft.fails(&["script", "show", "other"], 1);

    // Unused: deleted at once.
    aft.push_script("lonely", "Log(1);\n");
    assert!(aft.ok(&["script", "rm", "lonely"]).contains("deleted"));
}

#[tokio::test(flavor = "multi_thread")]
async fn api_answers_409_with_the_users_and_force_disables_them() {
    let aft = setup();
    let svc = aft.serve();
    let token = svc.local_token();
    let auth = Some(("X-Aft-Local-Token", token.as_str()));
    let client = svc.client();
    let base = svc.base();
    let get = |path: String| {
        let client = client.clone();
        async move { call(&client, Method::GET, &path, auth, None).await }
    };

    // Used-by routes.
    let (status, users) = get(format!("{base}/v1/scripts/mover/used-by")).await;
    assert_eq!(status, 200, "{users}");
    assert_eq!(names(&users), ["schedule/nightly", "watcher/inbox"]);
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["enabled"] == true)
    );
    let (status, users) = get(format!("{base}/v1/secrets/sftpPass/used-by")).await;
    assert_eq!(status, 200);
    assert_eq!(users[0]["how"], "PassFromSecret", "{users}");
    let (_, users) = get(format!("{base}/v1/vfs/partner/used-by")).await;
    assert_eq!(names(&users), ["script/mover", "watcher/inbox"]);
    let (status, _) = get(format!("{base}/v1/scripts/nope/used-by")).await;
    assert_eq!(status, 404);

    // Refused with the users.
    let (status, body) = call(
        &client,
        Method::DELETE,
        &format!("{base}/v1/scripts/mover"),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("schedule nightly"));
    assert_eq!(
        names(&body["usedBy"]),
        ["schedule/nightly", "watcher/inbox"]
    );
    let (status, body) = call(
        &client,
        Method::DELETE,
        &format!("{base}/v1/secrets/sftpPass"),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(names(&body["usedBy"]), ["vfs/partner"]);
    let (status, _) = get(format!("{base}/v1/scripts/mover")).await;
    assert_eq!(status, 200, "a refused delete deletes nothing");

    // Forced delete of the VFS entry: the watcher whose script opens it is disabled.
    let (status, body) = call(
        &client,
        Method::DELETE,
        &format!("{base}/v1/vfs/partner?force=true"),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], "partner");
    assert_eq!(body["disabled"], json!(["watcher/inbox"]));
    let (_, w) = get(format!("{base}/v1/watchers/inbox")).await;
    assert_eq!(w["enabled"], false, "{w}");

    // Forced delete of the script: the schedule is disabled too (the watcher already was).
    let (status, body) = call(
        &client,
        Method::DELETE,
        &format!("{base}/v1/scripts/mover?force=true"),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled"], json!(["schedule/nightly"]));
    assert_eq!(
        names(&body["usedBy"]),
        ["schedule/nightly", "watcher/inbox"]
    );
    let (_, s) = get(format!("{base}/v1/schedules/nightly")).await;
    assert_eq!(s["enabled"], false, "{s}");
    let (status, _) = get(format!("{base}/v1/scripts/mover")).await;
    assert_eq!(status, 404);

    // Nothing uses the secret any more: a plain 204.
    let (status, body) = call(
        &client,
        Method::DELETE,
        &format!("{base}/v1/secrets/sftpPass"),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
}
