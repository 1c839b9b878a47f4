//! `POST /v1/jobs` with `filePath`, through the real binary: it runs only `.syncjs` files of
//! the folders an administrator listed, only for callers allowed to, without `..` or
//! symlink escapes, and its refusals do not tell which files exist.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, call, wait_job};

async fn post_file(
    http: &reqwest::Client,
    base: &str,
    auth: (&str, &str),
    path: &str,
) -> (u16, Value) {
    call(
        http,
        Method::POST,
        &format!("{base}/v1/jobs"),
        Some(auth),
        Some(&json!({"filePath": path})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_paths_run_only_from_the_script_folders_for_allowed_callers() {
    let aft = Aft::new();
    let scratch = tempfile::tempdir().unwrap();
    let folder = scratch.path().join("scripts");
    let outside = scratch.path().join("elsewhere");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let inside_file = folder.join("nightly.syncjs");
    std::fs::write(&inside_file, r#"Log("ran from the script folder");"#).unwrap();
    let outside_file = outside.join("evil.syncjs");
    std::fs::write(&outside_file, r#"Log("must not run");"#).unwrap();
    std::os::unix::fs::symlink(&outside_file, folder.join("link.syncjs")).unwrap();
    std::fs::write(folder.join("notes.txt"), "not a script").unwrap();

    let plain = aft.create_key("plain", "127.0.0.1");
    let files = aft.ok(&[
        "apikey",
        "create",
        "--name",
        "files",
        "--allow",
        "127.0.0.1",
        "--allow-file-runs",
    ]);
    let files = files.trim();
    let svc = aft.serve();
    let http = svc.client();
    let base = svc.base();
    let token = svc.local_token();
    let admin = ("X-Aft-Local-Token", token.as_str());
    let inside = inside_file.to_str().unwrap();

    // By default filePath is off, for admins too.
    let (status, body) = post_file(&http, &base, admin, inside).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("script-folders"),
        "{body}"
    );

    aft.ok(&[
        "settings",
        "set",
        "script-folders",
        folder.to_str().unwrap(),
    ]);
    // A key must be granted file runs.
    let (status, body) = post_file(&http, &base, ("X-API-Key", &plain), inside).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--allow-file-runs"),
        "{body}"
    );
    // Inside the folder it runs.
    let (status, queued) = post_file(&http, &base, ("X-API-Key", files), inside).await;
    assert_eq!(status, 202, "{queued}");
    let job = wait_job(
        &http,
        &base,
        ("X-API-Key", files),
        queued["jobId"].as_str().unwrap(),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");

    // Escapes, other files and missing files all get the same answer.
    let dotdot = format!("{}/../elsewhere/evil.syncjs", folder.display());
    let link = folder.join("link.syncjs");
    let missing = folder.join("missing.syncjs");
    let text = folder.join("notes.txt");
    let mut answers = Vec::new();
    for path in [
        dotdot.as_str(),
        link.to_str().unwrap(),
        outside_file.to_str().unwrap(),
        missing.to_str().unwrap(),
        text.to_str().unwrap(),
        "nightly.syncjs",
    ] {
        for auth in [admin, ("X-API-Key", files)] {
            let (status, body) = post_file(&http, &base, auth, path).await;
            assert_eq!(status, 403, "{path}: {body}");
            answers.push(body["error"].as_str().unwrap().to_string());
        }
    }
    answers.dedup();
    assert_eq!(
        answers.len(),
        1,
        "one answer for every refused path: {answers:?}"
    );
    assert!(
        !answers[0].contains("elsewhere") && !answers[0].contains("missing"),
        "{answers:?}"
    );
    let (_, jobs) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/jobs"),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(
        jobs["jobs"].as_array().map(Vec::len),
        Some(1),
        "only the allowed file ran: {jobs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_key_cannot_tell_existing_from_missing_scripts_and_past_expiry_is_refused() {
    let aft = Aft::new();
    aft.push_script("Allowed", r#"Log("ok");"#);
    aft.push_script("Secret Job", r#"Log("other");"#);
    let scoped = aft.ok(&[
        "apikey",
        "create",
        "--name",
        "scoped",
        "--allow",
        "127.0.0.1",
        "--scripts",
        "Allowed",
    ]);
    let scoped = scoped.trim();
    let svc = aft.serve();
    let http = svc.client();
    let base = svc.base();
    let mut answers = Vec::new();
    for body in [
        json!({"scriptName": "Secret Job"}),
        json!({"scriptName": "No Such Job"}),
        json!({"scriptId": "0190d8c1-0000-7000-8000-000000000000"}),
    ] {
        let (status, answer) = call(
            &http,
            Method::POST,
            &format!("{base}/v1/jobs"),
            Some(("X-API-Key", scoped)),
            Some(&body),
        )
        .await;
        answers.push((status, answer["error"].clone()));
    }
    answers.dedup();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].0, 403);

    let token = svc.local_token();
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (status, body) = call(
        &http,
        Method::POST,
        &format!("{base}/v1/apikeys"),
        Some(("X-Aft-Local-Token", &token)),
        Some(&json!({"name": "old", "allow": ["127.0.0.1"], "expiresAt": past})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("past"), "{body}");
}
