//! The audit trail through the real binary: every kind of change, made through the HTTPS API
//! (as the web UI does), with an API key, or with a CLI command, leaves exactly one record
//! naming who made it and from which address, without secret material; an edited or deleted
//! record makes `aft audit verify` fail and name it; retention, by age or by count, keeps
//! the chain verifiable.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, Service, call, sign_in, text};

const SECRET_VALUE: &str = "s3cr3t-value-never-recorded";

/// An admin's signed-in browser session from one address.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Browser {
    async fn sign_in(service: &Service, from: &str, user: &str, password: &str) -> Browser {
        let http = service.client_from(from);
        let (status, cookie, body) = sign_in(&http, &service.base(), user, password).await;
        assert_eq!(status, 200, "{body}");
        Browser {
            http,
            base: service.base(),
            cookie,
            csrf: body["csrfToken"].as_str().unwrap().to_string(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .header("X-CSRF-Token", &self.csrf);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Reads the trail as the local CLI token (reads are not recorded), one change at a time.
struct Trail {
    http: reqwest::Client,
    base: String,
    token: String,
    seen: i64,
}

impl Trail {
    /// The records appended since the last call; there must be exactly one, and it is
    /// returned.
    async fn one_new(&mut self, what: &str) -> Value {
        let (status, records) = call(
            &self.http,
            Method::GET,
            &format!(
                "{}/v1/audit?order=asc&afterSeq={}&limit=1000",
                self.base, self.seen
            ),
            Some(("X-Aft-Local-Token", &self.token)),
            None,
        )
        .await;
        assert_eq!(status, 200, "{records}");
        let records = records.as_array().unwrap();
        assert_eq!(
            records.len(),
            1,
            "{what}: expected exactly one new audit record, got {records:#?}"
        );
        let record = records[0].clone();
        self.seen = record["seq"].as_i64().unwrap();
        let text = record.to_string();
        assert!(
            !text.contains(SECRET_VALUE) && !text.contains("$argon2"),
            "{what}: secret material in the record: {text}"
        );
        record
    }
}

/// `(actor, actorKind, address, action, target)` of a record.
fn who_what(r: &Value) -> (&str, &str, &str, &str, &str) {
    (
        r["actor"].as_str().unwrap(),
        r["actorKind"].as_str().unwrap(),
        r["address"].as_str().unwrap(),
        r["action"].as_str().unwrap(),
        r["target"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn every_kind_of_change_leaves_one_record_with_its_actor_and_address() {
    let aft = Aft::new();
    let service = aft.serve();
    let mut trail = Trail {
        http: service.client(),
        base: service.base(),
        token: service.local_token(),
        seen: 0,
    };

    // The CLI writes the store directly: `local`, from `local`.
    ok_with_input(&aft, &["admin", "create", "alice"], "alice-password");
    let r = trail.one_new("aft admin create").await;
    assert_eq!(
        who_what(&r),
        ("local", "local", "local", "admin.created", "alice")
    );
    assert_eq!(r["after"]["role"], "admin");
    assert_eq!(r["detail"]["command"], "admin create");

    // Sign-ins, good and bad, from their addresses.
    let alice = Browser::sign_in(&service, "127.0.0.2", "alice", "alice-password").await;
    let r = trail.one_new("sign-in").await;
    assert_eq!(
        who_what(&r),
        ("alice", "admin", "127.0.0.2", "session.created", "alice")
    );
    let (status, _, _) = sign_in(
        &service.client_from("127.0.0.4"),
        &service.base(),
        "mallory",
        "guessed-password",
    )
    .await;
    assert_eq!(status, 401);
    let r = trail.one_new("failed sign-in").await;
    assert_eq!(
        who_what(&r),
        (
            "mallory",
            "anonymous",
            "127.0.0.4",
            "session.failed",
            "mallory"
        )
    );

    // Scripts: created, then changed (before and after), through the web UI's API.
    let (status, body) = alice
        .call(
            Method::POST,
            "/v1/scripts",
            Some(json!({"name": "pickup", "body": "Log('v1');"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let r = trail.one_new("script created").await;
    assert_eq!(
        who_what(&r),
        ("alice", "admin", "127.0.0.2", "script.created", "pickup")
    );
    assert_eq!(r["before"], Value::Null);
    assert_eq!(r["after"]["body"], "Log('v1');");
    let (status, body) = alice
        .call(
            Method::PUT,
            "/v1/scripts/pickup",
            Some(json!({"body": "Sleep(60000);"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let r = trail.one_new("script updated").await;
    assert_eq!(r["action"], "script.updated");
    assert_eq!(r["before"]["body"], "Log('v1');");
    assert_eq!(r["after"]["body"], "Sleep(60000);");

    // A secret: its name, never its value.
    let (status, body) = alice
        .call(
            Method::PUT,
            "/v1/secrets/partner-pass",
            Some(json!({"value": SECRET_VALUE})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let r = trail.one_new("secret set").await;
    assert_eq!(
        who_what(&r),
        (
            "alice",
            "admin",
            "127.0.0.2",
            "secret.created",
            "partner-pass"
        )
    );

    // A VFS Library entry.
    let entry = json!({"name": "partner", "type": "sftp",
        "settings": {"Host": "sftp.example.com:22", "User": "u", "PassFromSecret": "partner-pass"}});
    let (status, body) = alice.call(Method::POST, "/v1/vfs", Some(entry)).await;
    assert_eq!(status, 201, "{body}");
    let r = trail.one_new("vfs entry").await;
    assert_eq!(r["action"], "vfs.created");
    assert_eq!(r["target"], "partner");
    assert_eq!(r["after"]["settings"]["PassFromSecret"], "partner-pass");

    // An API key: its name and allow-list, never the key.
    let (status, created) = alice
        .call(
            Method::POST,
            "/v1/apikeys",
            Some(json!({"name": "robot", "allow": ["127.0.0.3"]})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let r = trail.one_new("api key created").await;
    assert_eq!(r["action"], "apikey.created");
    assert_eq!(r["target"], "robot");
    assert!(!r.to_string().contains(&key));

    // A schedule and a watcher.
    let (status, body) = alice
        .call(
            Method::POST,
            "/v1/schedules",
            Some(json!({"name": "nightly", "script": "pickup", "cron": "0 3 * * *", "enabled": false})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let r = trail.one_new("schedule").await;
    assert_eq!(
        (r["action"].as_str(), r["target"].as_str()),
        (Some("schedule.created"), Some("nightly"))
    );
    let (status, body) = alice
        .call(
            Method::PUT,
            "/v1/schedules/nightly/enabled",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let r = trail.one_new("schedule enabled").await;
    assert_eq!(r["action"], "schedule.updated");
    assert_eq!(
        (&r["before"]["enabled"], &r["after"]["enabled"]),
        (&json!(false), &json!(true))
    );
    let (status, body) = alice
        .call(
            Method::POST,
            "/v1/watchers",
            Some(json!({"name": "inbox", "script": "pickup"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let r = trail.one_new("watcher").await;
    assert_eq!(
        (r["action"].as_str(), r["target"].as_str()),
        (Some("watcher.created"), Some("inbox"))
    );
    let (status, body) = alice.call(Method::DELETE, "/v1/watchers/inbox", None).await;
    assert_eq!(status, 204, "{body}");
    let r = trail.one_new("watcher deleted").await;
    assert_eq!(r["action"], "watcher.deleted");
    assert_eq!(r["after"], Value::Null);

    // A setting, with the value before and after.
    let (status, body) = alice
        .call(
            Method::PUT,
            "/v1/settings/job-retention-days",
            Some(json!({"value": "40"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let r = trail.one_new("setting").await;
    assert_eq!(r["action"], "setting.updated");
    assert_eq!(
        (&r["before"]["value"], &r["after"]["value"]),
        (&json!("30"), &json!("40"))
    );

    // Admins: created with a role, role changed, password changed (no hash recorded).
    let (status, body) = alice
        .call(
            Method::POST,
            "/v1/admins",
            Some(json!({"username": "olga", "password": "olga-password", "role": "operator"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let r = trail.one_new("admin created").await;
    assert_eq!(
        (r["action"].as_str(), r["after"]["role"].as_str()),
        (Some("admin.created"), Some("operator"))
    );
    let (status, body) = alice
        .call(
            Method::PUT,
            "/v1/admins/olga/role",
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let r = trail.one_new("role").await;
    assert_eq!(
        (r["before"]["role"].as_str(), r["after"]["role"].as_str()),
        (Some("operator"), Some("viewer"))
    );
    let (status, body) = alice
        .call(
            Method::PUT,
            "/v1/admins/olga/password",
            Some(json!({"password": "olga-password-2"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let r = trail.one_new("password").await;
    assert_eq!(
        (r["action"].as_str(), r["target"].as_str()),
        (Some("admin.updated"), Some("olga"))
    );

    // A job started with the API key, from its address, and halted by alice.
    let (status, queued) = call(
        &service.client_from("127.0.0.3"),
        Method::POST,
        &format!("{}/v1/jobs", service.base()),
        Some(("X-API-Key", &key)),
        Some(&json!({"scriptName": "pickup"})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let job = queued["jobId"].as_str().unwrap().to_string();
    let r = trail.one_new("job started").await;
    assert_eq!(
        who_what(&r),
        ("robot", "apikey", "127.0.0.3", "job.started", job.as_str())
    );
    assert_eq!(r["after"]["scriptName"], "pickup");
    let (status, body) = alice
        .call(Method::DELETE, &format!("/v1/jobs/{job}"), None)
        .await;
    assert!(status < 300, "{status} {body}");
    let r = trail.one_new("job halted").await;
    assert_eq!(
        who_what(&r),
        ("alice", "admin", "127.0.0.2", "job.halted", job.as_str())
    );

    // Revoking the key and deleting the secret.
    let (status, body) = alice.call(Method::DELETE, "/v1/apikeys/robot", None).await;
    assert!(status < 300, "{status} {body}");
    let r = trail.one_new("key revoked").await;
    assert_eq!(r["action"], "apikey.updated");
    assert!(r["before"]["revokedAt"].is_null() && r["after"]["revokedAt"].is_string());
    // The VFS entry `partner` still reads it: refused (nothing recorded), then forced.
    let (status, body) = alice
        .call(Method::DELETE, "/v1/secrets/partner-pass", None)
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = alice
        .call(Method::DELETE, "/v1/secrets/partner-pass?force=true", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let r = trail.one_new("secret deleted").await;
    assert_eq!(r["action"], "secret.deleted");

    // CLI commands: a secret (through standard input) and a setting.
    ok_with_input(&aft, &["secret", "set", "cli-secret"], SECRET_VALUE);
    let r = trail.one_new("aft secret set").await;
    assert_eq!(
        who_what(&r),
        ("local", "local", "local", "secret.created", "cli-secret")
    );
    aft.ok(&["settings", "set", "audit-retention-days", "90"]);
    let r = trail.one_new("aft settings set").await;
    assert_eq!(r["action"], "setting.updated");
    // A delegated `aft run` (its answer is an event stream): the record names its job.
    aft.ok(&["settings", "set", "allow-cli-run", "true"]);
    trail.one_new("aft settings set allow-cli-run").await;
    let file = aft.write("delegated.syncjs", r#"Log("delegated");"#);
    aft.ok(&["run", "-f", &file]);
    let r = trail.one_new("delegated aft run").await;
    let delegated = aft.newest_job_of("delegate");
    let job = delegated["id"].as_str().unwrap();
    assert_eq!(
        (
            r["action"].as_str(),
            r["actorKind"].as_str(),
            r["target"].as_str()
        ),
        (Some("job.started"), Some("local"), Some(job)),
        "{r}"
    );
    assert_eq!(r["after"]["filePath"], delegated["filePath"], "{r}");
    assert_eq!(r["after"]["origin"], "delegate", "{r}");
    // A read changes nothing and records nothing.
    aft.ok(&["script", "list"]);
    aft.ok(&["audit", "list"]);

    // Signing out.
    let (status, _) = alice.call(Method::DELETE, "/v1/session", None).await;
    assert_eq!(status, 204);
    let r = trail.one_new("sign-out").await;
    assert_eq!(
        who_what(&r),
        ("alice", "admin", "127.0.0.2", "session.ended", "alice")
    );

    // Filters, the export formats and the chain.
    let by_robot: Value =
        serde_json::from_str(&aft.ok(&["audit", "list", "--actor", "robot", "--json"])).unwrap();
    assert_eq!(by_robot.as_array().unwrap().len(), 1, "{by_robot}");
    let jsonl = aft.ok(&["audit", "export", "--format", "jsonl", "--kind", "secret"]);
    let actions: Vec<String> = jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        actions,
        ["secret.created", "secret.deleted", "secret.created"],
        "{jsonl}"
    );
    let csv = aft.ok(&["audit", "export", "--format", "csv", "--action", "session."]);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("seq,at,actor,actorKind,address,action")
    );
    assert_eq!(lines.count(), 3, "{csv}");
    let verified = aft.ok(&["audit", "verify"]);
    assert!(
        verified.contains(&format!("{} records", trail.seen)),
        "{verified}"
    );
}

fn ok_with_input(aft: &Aft, args: &[&str], input: &str) {
    let out = aft.run_with_input(args, input);
    assert!(out.status.success(), "aft {args:?}: {}", text(&out));
}

/// Change one column of one record of the SQLite database, as someone with access to the
/// file could.
async fn tamper(aft: &Aft, sql: &str) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", aft.data().join("aft.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(sql).execute(&mut db).await.unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn an_edited_or_deleted_record_fails_verify_and_is_named() {
    let aft = Aft::new();
    for name in ["a", "b", "c", "d", "e"] {
        aft.push_script(name, "Log(1);");
    }
    assert!(aft.ok(&["audit", "verify"]).contains("5 records"));

    // Edit record 3's target: its hash no longer matches.
    tamper(&aft, "UPDATE audit_log SET target = 'x' WHERE seq = 3").await;
    let out = aft.fails(&["audit", "verify"], 1);
    assert!(out.contains("record 3 was edited"), "{out}");
    let report: Value = serde_json::from_str(
        &String::from_utf8(aft.run(&["audit", "verify", "--json"]).stdout).unwrap(),
    )
    .unwrap();
    assert_eq!(report["problems"][0]["seq"], 3, "{report}");

    // Re-hashing the edited record does not help: the next one holds the old hash.
    tamper(
        &aft,
        "UPDATE audit_log SET hash = '1111111111111111111111111111111111111111111111111111111111111111' WHERE seq = 3",
    )
    .await;
    let out = aft.fails(&["audit", "verify"], 1);
    assert!(out.contains("record 3 was changed"), "{out}");

    // Deleting a record in the middle, or the newest, is found too.
    let restore = Aft::new();
    for name in ["a", "b", "c", "d"] {
        restore.push_script(name, "Log(1);");
    }
    tamper(&restore, "DELETE FROM audit_log WHERE seq = 2").await;
    let out = restore.fails(&["audit", "verify"], 1);
    assert!(out.contains("record 2 is missing"), "{out}");
    let newest = Aft::new();
    for name in ["a", "b", "c"] {
        newest.push_script(name, "Log(1);");
    }
    tamper(&newest, "DELETE FROM audit_log WHERE seq = 3").await;
    let out = newest.fails(&["audit", "verify"], 1);
    assert!(out.contains("records 3 to 3 are missing"), "{out}");
}

#[tokio::test]
async fn pruning_keeps_the_chain_verifiable_and_tamper_evident() {
    let aft = Aft::new();
    for name in ["a", "b", "c"] {
        aft.push_script(name, "Log(1);");
    }
    // Everything older than now: the three records go, a checkpoint record stays.
    let out = aft.ok(&["audit", "prune", "--older-than-days", "0"]);
    assert!(out.contains("3 audit records"), "{out}");
    aft.push_script("d", "Log(1);");
    let verified = aft.ok(&["audit", "verify"]);
    assert!(verified.contains("2 records"), "{verified}");
    let records: Value = serde_json::from_str(&aft.ok(&["audit", "list", "--json"])).unwrap();
    let actions: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["script.created", "audit.pruned"]);
    assert_eq!(records[1]["detail"]["prunedThrough"], 3);

    // Moving the start of the chain to hide more deletions is found.
    tamper(&aft, "DELETE FROM audit_log WHERE seq = 4").await;
    tamper(&aft, "UPDATE audit_chain SET pruned_seq = 4").await;
    let out = aft.fails(&["audit", "verify"], 1);
    assert!(out.contains("no retention record says"), "{out}");
}

/// `aft audit list --json`, newest first.
fn audit_records(aft: &Aft) -> Vec<Value> {
    let out = aft.ok(&["audit", "list", "--json", "--limit", "1000"]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_count_cap_keeps_the_newest_records_and_the_chain_verifiable() {
    let aft = Aft::new();
    for name in ["a", "b", "c", "d", "e"] {
        aft.push_script(name, "Log(1);");
    }
    // By hand: records 1-3 go, 4 and 5 stay with the checkpoint record (6) as the three kept.
    let out = aft.ok(&["audit", "prune", "--keep", "3"]);
    assert!(out.contains("3 audit records removed"), "{out}");
    let records = audit_records(&aft);
    let seqs: Vec<i64> = records.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [6, 5, 4]);
    assert_eq!(records[0]["action"], "audit.pruned");
    assert_eq!(records[0]["detail"]["prunedThrough"], 3);
    assert_eq!(records[0]["detail"]["kept"], 3);
    // A prune does not make room for the next one: at the cap, nothing more goes.
    let out = aft.ok(&["audit", "prune", "--keep", "3"]);
    assert!(out.contains("0 audit records removed"), "{out}");
    assert!(aft.ok(&["audit", "verify"]).contains("3 records"));
    let refused = aft.run(&["audit", "prune", "--keep", "0"]);
    assert!(
        !refused.status.success(),
        "a cap of 0 keeps nothing: refused"
    );
    assert_eq!(audit_records(&aft).len(), 3);

    // The setting: applied by a service from its start, then every minute.
    let refused = aft.fails(
        &["settings", "set", "audit-retention-max-records", "many"],
        1,
    );
    assert!(refused.contains("audit-retention-max-records"), "{refused}");
    aft.ok(&["settings", "set", "audit-retention-max-records", "4"]);
    for name in ["f", "g"] {
        aft.push_script(name, "Log(1);");
    }
    let before_service = audit_records(&aft)[0]["seq"].as_i64().unwrap();
    assert_eq!(before_service, 9, "6 records, over the cap of 4");
    let _service = aft.serve();
    let records = support::poll(std::time::Duration::from_secs(30), || {
        let records = audit_records(&aft);
        records
            .iter()
            .any(|r| r["action"] == "audit.pruned" && r["actorKind"] == "service")
            .then_some(records)
    })
    .unwrap_or_else(|| {
        panic!(
            "the service did not apply the cap: {:#?}",
            audit_records(&aft)
        )
    });
    // The service's checkpoint record and the three newest before it (records the service
    // itself appended since may follow it).
    let marker = records
        .iter()
        .position(|r| r["action"] == "audit.pruned")
        .unwrap();
    let kept: Vec<i64> = records[marker..]
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(kept, [10, 9, 8, 7], "{records:#?}");
    assert_eq!(records[marker]["detail"]["prunedThrough"], 6);
    assert!(
        records[marker]["actor"]
            .as_str()
            .unwrap()
            .starts_with("node ")
    );
    let verified = aft.ok(&["audit", "verify"]);
    assert!(verified.contains("audit trail intact"), "{verified}");
}
