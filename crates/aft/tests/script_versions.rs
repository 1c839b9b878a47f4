//! Script versions through the real `aft` binary: every save that changes the source keeps a
//! version, old versions are listed and read, a restore saves an old source as a new
//! version, and each job records the version it ran — from the CLI and the HTTPS API.

use reqwest::Method;
use serde_json::{Value, json};

mod support;

use support::{Aft, call, wait_job};

const V1: &str = "Log('one');\n";
const V2: &str = "Log('two');\nLog('more');\n";
const V3: &str = "Log('three');\n";

fn versions(aft: &Aft, name: &str) -> Vec<(i64, String)> {
    let list: Value =
        serde_json::from_str(&aft.ok(&["script", "versions", name, "--json"])).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["body"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn saves_keep_versions_restores_add_one_and_jobs_record_theirs() {
    let aft = Aft::new();
    aft.push_script("report", V1);
    aft.push_script("report", V2);
    // The same source again, and a description alone, are no new version.
    aft.push_script("report", V2);
    let file = aft.write("same.syncjs", V2);
    aft.ok(&["script", "push", "report", &file, "-d", "the report"]);
    assert_eq!(
        versions(&aft, "report"),
        [(2, V2.to_string()), (1, V1.to_string())]
    );
    let table = aft.ok(&["script", "versions", "report"]);
    assert!(
        table.contains("VERSION") && table.lines().count() == 3,
        "{table}"
    );

    let svc = aft.serve();
    let token = svc.local_token();
    let auth = ("X-Aft-Local-Token", token.as_str());
    let client = svc.client();
    let base = svc.base();
    let run = |script: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let (status, queued) = call(
                &client,
                Method::POST,
                &format!("{base}/v1/jobs"),
                Some(auth),
                Some(&json!({"scriptName": script})),
            )
            .await;
            assert_eq!(status, 202, "{queued}");
            let id = queued["jobId"].as_str().unwrap().to_string();
            wait_job(&client, &base, auth, &id).await
        }
    };

    // A job records the version it ran.
    let first = run("report").await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["scriptVersion"], 2, "{first}");

    // A save over the API is version 3; the script says so.
    let (status, saved) = call(
        &client,
        Method::PUT,
        &format!("{base}/v1/scripts/report"),
        Some(auth),
        Some(&json!({"body": V3})),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["version"], 3);
    let (status, list) = call(
        &client,
        Method::GET,
        &format!("{base}/v1/scripts/report/versions"),
        Some(auth),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let numbers: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    let (status, one) = call(
        &client,
        Method::GET,
        &format!("{base}/v1/scripts/report/versions/1"),
        Some(auth),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["body"], V1);
    let (status, missing) = call(
        &client,
        Method::GET,
        &format!("{base}/v1/scripts/report/versions/99"),
        Some(auth),
        None,
    )
    .await;
    assert_eq!(status, 404, "{missing}");

    // Restore version 1 over the API: a new version 4 with version 1's source, which the
    // next job runs.
    let (status, restored) = call(
        &client,
        Method::POST,
        &format!("{base}/v1/scripts/report/versions/1/restore"),
        Some(auth),
        None,
    )
    .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["version"], 4);
    assert_eq!(restored["body"], V1);
    let second = run("report").await;
    assert_eq!(second["scriptVersion"], 4, "{second}");
    let (_, log) = call(
        &client,
        Method::GET,
        &format!("{base}/v1/jobs/{}/log", second["id"].as_str().unwrap()),
        Some(auth),
        None,
    )
    .await;
    assert!(log.to_string().contains("one"), "{log}");

    // The first job still names the version it ran.
    let (_, again) = call(
        &client,
        Method::GET,
        &format!("{base}/v1/jobs/{}", first["id"].as_str().unwrap()),
        Some(auth),
        None,
    )
    .await;
    assert_eq!(again["scriptVersion"], 2);

    // The script list shows the current version and the newest job.
    let (_, scripts) = call(
        &client,
        Method::GET,
        &format!("{base}/v1/scripts"),
        Some(auth),
        None,
    )
    .await;
    assert_eq!(scripts[0]["version"], 4);
    assert_eq!(scripts[0]["lastJob"]["id"], second["id"]);
    assert_eq!(scripts[0]["lastJob"]["status"], "succeeded");

    // Restore from the CLI.
    let out = aft.ok(&["script", "restore", "report", "2"]);
    assert!(out.contains("now version 5"), "{out}");
    assert_eq!(aft.ok(&["script", "show", "report"]), V2);
    let err = aft.fails(&["script", "restore", "report", "42"], 1);
    assert!(err.contains("not found"), "{err}");
    assert_eq!(versions(&aft, "report").len(), 5);
}
