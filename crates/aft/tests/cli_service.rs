//! End-to-end tests of the service: the real `aft serve` binary on a free loopback port
//! with a temp data directory, called over real HTTPS with reqwest and with `aft start`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;

use support::{AFT, Service, blake3_file, free_port, ok, sha256_file, wait_job, xorshift_bytes};

/// Run an `aft` command against `data`, with `stdin` as its input.
fn aft(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(AFT)
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("AFT_DATABASE")
        .env_remove("AFT_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

fn push_script(data: &Path, name: &str, body: &str) {
    let file = write_script(data, &format!("{name}.syncjs"), body);
    ok(aft(
        data,
        &["script", "push", name, file.to_str().unwrap()],
        None,
    ));
}

fn create_key(data: &Path, name: &str, allow: &str) -> String {
    ok(aft(
        data,
        &["apikey", "create", "--name", name, "--allow", allow],
        None,
    ))
    .trim()
    .to_string()
}

async fn post_job(
    client: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut req = client
        .post(format!("{base}/v1/jobs"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        req = req.header("X-API-Key", key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get_json(client: &reqwest::Client, url: &str, auth: (&str, &str)) -> (u16, Value, String) {
    let resp = client.get(url).header(auth.0, auth.1).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_jobs_answers_every_status_code_of_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    push_script(data, "Hello", r#"Log("hello " + Param("who"));"#);
    push_script(data, "Other", r#"Log("other");"#);
    let key = create_key(data, "ci", "127.0.0.1");
    let key_v2 = create_key(data, "only-2", "127.0.0.2/32");
    let revoked = create_key(data, "gone", "127.0.0.1");
    ok(aft(data, &["apikey", "revoke", "gone"], None));
    // The CLI refuses a past expiry, so age a key in the store directly.
    let expired = {
        let store = aft_store::Store::open_in_dir(data).await.unwrap();
        let new = aft_store::NewApiKey {
            name: "old".into(),
            allow_list: "127.0.0.1".parse().unwrap(),
            expires_at: Some(chrono::Utc::now() - chrono::Duration::hours(1)),
            scripts: None,
            file_runs: false,
        };
        let (_, key) = store.create_api_key(new).await.unwrap();
        store.close().await;
        key.expose().to_string()
    };
    let scoped = ok(aft(
        data,
        &[
            "apikey",
            "create",
            "--name",
            "scoped",
            "--allow",
            "127.0.0.1",
            "--scripts",
            "Other",
        ],
        None,
    ))
    .trim()
    .to_string();
    let svc = Service::start(data, &[], &[]);
    let http = svc.client();
    let base = svc.base();

    // 202, script name matched case-insensitively, params reach the script.
    let (status, body) = post_job(
        &http,
        &base,
        Some(&key),
        r#"{"scriptName":"hello","params":{"who":"world"}}"#,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "queued");
    let id = body["jobId"].as_str().unwrap().to_string();
    let job = wait_job(&http, &base, ("X-API-Key", &key), &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["exitCode"], 0);
    let (_, log, _) = get_json(
        &http,
        &format!("{base}/v1/jobs/{id}/log"),
        ("X-API-Key", &key),
    )
    .await;
    assert_eq!(log["lines"][0]["message"], "hello world", "{log}");

    // v3 array params and scriptId.
    let (_, scripts, _) = get_json(
        &http,
        &format!("{base}/v1/scripts"),
        ("X-Aft-Local-Token", &svc.local_token()),
    )
    .await;
    let hello_id = scripts
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Hello")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = format!(r#"{{"scriptId":"{hello_id}","params":[{{"name":"who","value":"v3"}}]}}"#);
    let (status, queued) = post_job(&http, &base, Some(&key), &body).await;
    assert_eq!(status, 202, "{queued}");
    let job = wait_job(
        &http,
        &base,
        ("X-API-Key", &key),
        queued["jobId"].as_str().unwrap(),
    )
    .await;
    assert_eq!(job["status"], "succeeded");

    // 400: none, two, params not flat, not JSON.
    for bad in [
        r#"{}"#,
        r#"{"scriptName":"Hello","scriptId":"x"}"#,
        r#"{"scriptName":"Hello","params":{"a":{"b":1}}}"#,
        r#"{"scriptName":"Hello","params":"x"}"#,
        "not json",
    ] {
        let (status, body) = post_job(&http, &base, Some(&key), bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    // 401: missing, unknown, revoked, expired.
    for k in [
        None,
        Some("aft_not-a-key"),
        Some(revoked.as_str()),
        Some(expired.as_str()),
    ] {
        let (status, body) = post_job(&http, &base, k, r#"{"scriptName":"Hello"}"#).await;
        assert_eq!(status, 401, "{k:?}: {body}");
        assert!(body["error"].is_string());
    }
    // 403: the allow-list, both ways; and a script outside the key's scope.
    let (status, body) = post_job(&http, &base, Some(&key_v2), r#"{"scriptName":"Hello"}"#).await;
    assert_eq!(
        status, 403,
        "127.0.0.1 is not in the 127.0.0.2 key's list: {body}"
    );
    let http2 = svc.client_from("127.0.0.2");
    let (status, body) = post_job(&http2, &base, Some(&key_v2), r#"{"scriptName":"Hello"}"#).await;
    assert_eq!(status, 202, "127.0.0.2 is in its list: {body}");
    let (status, body) = post_job(&http2, &base, Some(&key), r#"{"scriptName":"Hello"}"#).await;
    assert_eq!(
        status, 403,
        "127.0.0.2 is not in the 127.0.0.1 key's list: {body}"
    );
    let (status, body) = post_job(&http, &base, Some(&scoped), r#"{"scriptName":"Hello"}"#).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = post_job(&http, &base, Some(&scoped), r#"{"scriptName":"other"}"#).await;
    assert_eq!(status, 202);
    // An API key cannot administer.
    let (status, _, _) = get_json(&http, &format!("{base}/v1/scripts"), ("X-API-Key", &key)).await;
    assert_eq!(status, 403);
    // 404: no such script (name or id), no such job.
    let (status, body) = post_job(&http, &base, Some(&key), r#"{"scriptName":"nope"}"#).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = post_job(
        &http,
        &base,
        Some(&key),
        r#"{"scriptId":"0190d8c1-0000-7000-8000-000000000000"}"#,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) =
        get_json(&http, &format!("{base}/v1/jobs/nope"), ("X-API-Key", &key)).await;
    assert_eq!(status, 404);
    // A key sees only its own jobs.
    let (status, _, _) = get_json(
        &http,
        &format!("{base}/v1/jobs/{id}"),
        ("X-API-Key", &scoped),
    )
    .await;
    assert_eq!(status, 404);
    // 429 after repeated failures from one address (127.0.0.3, so other tests are unaffected).
    let http3 = svc.client_from("127.0.0.3");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(
            post_job(
                &http3,
                &base,
                Some("aft_wrong"),
                r#"{"scriptName":"Hello"}"#,
            )
            .await
            .0,
        );
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(statuses[11], 429, "{statuses:?}");
    let (status, _) = post_job(&http3, &base, Some(&key), r#"{"scriptName":"Hello"}"#).await;
    assert_eq!(
        status, 429,
        "a blocked address is refused even with a good key"
    );
    let (status, _) = post_job(&http, &base, Some(&key), r#"{"scriptName":"Hello"}"#).await;
    assert_eq!(status, 202, "other addresses are not blocked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aft_start_prints_the_job_id_and_wait_exits_with_the_job_result() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    push_script(data, "Greet", r#"Log("greetings " + Param("who"));"#);
    push_script(
        data,
        "Broken",
        r#"Log("about to fail"); throw new Error("boom");"#,
    );
    let key = create_key(data, "ci", "127.0.0.1");
    let svc = Service::start(data, &[], &[]);

    let out = ok(aft(
        data,
        &["start", "-n", "greet", "-a", &key, "--host", &svc.host()],
        None,
    ));
    let id = out.trim();
    assert_eq!(id.len(), 36, "a job id: {out}");
    let job = wait_job(&svc.client(), &svc.base(), ("X-API-Key", &key), id).await;
    assert_eq!(job["status"], "succeeded");

    let out = aft(
        data,
        &[
            "start",
            "-n",
            "Greet",
            "-a",
            &key,
            "--host",
            &svc.host(),
            "--params",
            r#"{"who":"ci"}"#,
            "--wait",
        ],
        None,
    );
    let stdout = ok(out);
    assert!(stdout.contains("greetings ci"), "{stdout}");

    let out = aft(
        data,
        &[
            "start",
            "-n",
            "Broken",
            "-a",
            &key,
            "--host",
            &svc.host(),
            "--wait",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("boom"),
        "{out:?}"
    );

    // v3 forms: -s ID and array params.
    let token = svc.local_token();
    let (_, scripts, _) = get_json(
        &svc.client(),
        &format!("{}/v1/scripts/Greet", svc.base()),
        ("X-Aft-Local-Token", &token),
    )
    .await;
    let script_id = scripts["id"].as_str().unwrap();
    let stdout = ok(aft(
        data,
        &[
            "start",
            "-s",
            script_id,
            "-a",
            &key,
            "--host",
            &svc.host(),
            "--params",
            r#"[{"name":"who","value":"v3"}]"#,
            "--wait",
        ],
        None,
    ));
    assert!(stdout.contains("greetings v3"), "{stdout}");

    // Refusals exit 1 with the service's message.
    let out = aft(
        data,
        &["start", "-n", "missing", "-a", &key, "--host", &svc.host()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{out:?}"
    );

    // From another data directory the certificate is unknown: refused unless trusted.
    let other = tempfile::tempdir().unwrap();
    let out = aft(
        other.path(),
        &["start", "-n", "greet", "-a", &key, "--host", &svc.host()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--cacert"),
        "{out:?}"
    );
    let cert = data.join("tls/cert.pem");
    ok(aft(
        other.path(),
        &[
            "start",
            "-n",
            "greet",
            "-a",
            &key,
            "--host",
            &svc.host(),
            "--cacert",
            cert.to_str().unwrap(),
        ],
        None,
    ));
    ok(aft(
        other.path(),
        &[
            "start",
            "-n",
            "greet",
            "-a",
            &key,
            "--host",
            &svc.host(),
            "--insecure",
        ],
        None,
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_service_runs_every_queued_job_once_after_restart_and_interrupts_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    push_script(data, "Forever", r#"Log("started"); WaitForHaltSignal();"#);
    push_script(data, "Count", r#"Log("ran " + Param("n"));"#);
    ok(aft(
        data,
        &["settings", "set", "max-concurrent-jobs", "1"],
        None,
    ));
    let key = create_key(data, "ci", "127.0.0.1");
    let port = free_port();
    let mut svc = Service::start_on(data, port, &[], &[]);
    let http = svc.client();
    let base = svc.base();
    let auth = ("X-API-Key", key.as_str());

    let (_, first) = post_job(&http, &base, Some(&key), r#"{"scriptName":"Forever"}"#).await;
    let forever = first["jobId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, job, _) = get_json(&http, &format!("{base}/v1/jobs/{forever}"), auth).await;
        if job["status"] == "running" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first job never started: {job}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ids = Vec::new();
    for n in 0..50 {
        let (status, body) = post_job(
            &http,
            &base,
            Some(&key),
            &format!(r#"{{"scriptName":"Count","params":{{"n":"{n}"}}}}"#),
        )
        .await;
        assert_eq!(status, 202);
        ids.push(body["jobId"].as_str().unwrap().to_string());
    }
    svc.kill9();
    drop(svc);

    let svc = Service::start_on(data, port, &[], &[]);
    let http = svc.client();
    let job = wait_job(&http, &base, auth, &forever).await;
    assert_eq!(job["status"], "interrupted", "{job}");
    assert!(job["error"].as_str().unwrap().contains("stopped"), "{job}");
    for (n, id) in ids.iter().enumerate() {
        let job = wait_job(&http, &base, auth, id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "ran exactly once: {job}");
        let (_, log, _) = get_json(&http, &format!("{base}/v1/jobs/{id}/log"), auth).await;
        let lines = log["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 1, "{log}");
        assert_eq!(lines[0]["message"], format!("ran {n}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_appears_in_any_api_response_or_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let secret = "s3cr3t-Value-9f8e7d";
    ok(aft(data, &["secret", "set", "db-pass"], Some(secret)));
    push_script(
        data,
        "UsesSecret",
        r#"var p = GetSecret("db-pass"); Log("the secret is " + p); Log("length " + p.length); if (p.length != 19) throw new Error("wrong secret");"#,
    );
    let key = create_key(data, "ci", "127.0.0.1");
    let svc = Service::start(data, &[], &[]);
    let http = svc.client();
    let base = svc.base();
    let token = svc.local_token();
    let (status, body) = post_job(&http, &base, Some(&key), r#"{"scriptName":"UsesSecret"}"#).await;
    assert_eq!(status, 202);
    let id = body["jobId"].as_str().unwrap();
    let job = wait_job(&http, &base, ("X-API-Key", &key), id).await;
    assert_eq!(
        job["status"], "succeeded",
        "the script saw the right secret: {job}"
    );

    let local = ("X-Aft-Local-Token", token.as_str());
    let mut bodies = Vec::new();
    for path in [
        format!("/v1/jobs/{id}"),
        format!("/v1/jobs/{id}/log"),
        format!("/v1/jobs/{id}/transfers"),
        "/v1/jobs".to_string(),
        "/v1/secrets".to_string(),
        "/v1/settings".to_string(),
        "/v1/scripts".to_string(),
        "/v1/nodes".to_string(),
        "/metrics".to_string(),
        "/v1/openapi.json".to_string(),
    ] {
        let (status, _, text) = get_json(&http, &format!("{base}{path}"), local).await;
        assert_eq!(status, 200, "{path}: {text}");
        bodies.push((path, text));
    }
    let (_, log, _) = get_json(&http, &format!("{base}/v1/jobs/{id}/log"), local).await;
    assert!(
        log["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"].as_str().unwrap().starts_with("the secret is"))
    );
    let sse = http
        .get(format!("{base}/v1/jobs/{id}/log?follow=true"))
        .header(local.0, local.1)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    bodies.push(("log stream".into(), sse));
    let cli_log = aft(data, &["jobs", "log", id], None);
    bodies.push((
        "aft jobs log".into(),
        String::from_utf8_lossy(&cli_log.stdout).to_string(),
    ));
    for (what, text) in &bodies {
        assert!(!text.contains(secret), "{what} shows the secret: {text}");
    }
}

/// A job's transfer records carry the file's digest and name it: BLAKE3 by default, SHA-256
/// when the script asks (`Options.RecordHash`), each as `b3sum` and `sha256sum` compute it,
/// in `GET /v1/jobs/{id}/transfers` (the line `aft run` prints is checked by the transfer
/// tests: fault_matrix, sftp_streams, object_parallel); a digest aft does not make is
/// refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_records_name_their_digest_as_b3sum_and_sha256sum_compute_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let files = tempfile::tempdir().unwrap();
    // Big enough to be hashed on its own thread beside the copy.
    let src = files.path().join("orders.bin");
    std::fs::write(&src, xorshift_bytes(5 * 1024 * 1024 + 3, 0x00B1_A4E3)).unwrap();
    let q = |p: &Path| serde_json::to_string(p.to_str().unwrap()).unwrap();
    let copy = |option: &str, to: &str| {
        format!(
            r#"var c = new LocalClient();
{option}
if (!c.UploadFile({src}, {to})) throw new Error(c.LastError());"#,
            src = q(&src),
            to = q(&files.path().join(to)),
        )
    };
    push_script(data, "Default", &copy("", "default.bin"));
    push_script(
        data,
        "AsksSha256",
        &copy(r#"c.Options.RecordHash = "SHA256";"#, "sha.bin"),
    );
    push_script(
        data,
        "AsksMd5",
        &format!(
            r#"var c = new LocalClient();
c.Options.RecordHash = "md5";
if (c.UploadFile({src}, {to})) throw new Error("md5 was accepted");
Log("refused: " + c.LastError());"#,
            src = q(&src),
            to = q(&files.path().join("md5.bin")),
        ),
    );
    let key = create_key(data, "ci", "127.0.0.1");
    let svc = Service::start(data, &[], &[]);
    let http = svc.client();
    let base = svc.base();
    let auth = ("X-API-Key", key.as_str());
    let mut ids = Vec::new();
    for script in ["Default", "AsksSha256", "AsksMd5"] {
        let body = json!({ "scriptName": script }).to_string();
        let (status, answer) = post_job(&http, &base, Some(&key), &body).await;
        assert_eq!(status, 202, "{script}: {answer}");
        let id = answer["jobId"].as_str().unwrap().to_string();
        let job = wait_job(&http, &base, auth, &id).await;
        assert_eq!(job["status"], "succeeded", "{script}: {job}");
        ids.push(id);
    }

    for (id, algo, want, file) in [
        (&ids[0], "blake3", blake3_file(&src), "default.bin"),
        (&ids[1], "sha256", sha256_file(&src), "sha.bin"),
    ] {
        assert_eq!(
            std::fs::read(files.path().join(file)).unwrap(),
            std::fs::read(&src).unwrap()
        );
        let (status, records, text) =
            get_json(&http, &format!("{base}/v1/jobs/{id}/transfers"), auth).await;
        assert_eq!(status, 200, "{text}");
        let records = records.as_array().unwrap();
        assert_eq!(records.len(), 1, "{text}");
        assert_eq!(records[0]["outcome"], "ok", "{text}");
        assert_eq!(records[0]["hashAlgo"], algo, "{text}");
        assert_eq!(records[0]["hash"], want.as_str(), "{text}");
    }
    let (_, log, text) = get_json(&http, &format!("{base}/v1/jobs/{}/log", ids[2]), auth).await;
    assert!(
        log["lines"].as_array().unwrap().iter().any(|l| l["message"]
            == r#"refused: Options.RecordHash must be "blake3" or "sha256", not "md5""#),
        "{text}"
    );
    assert!(!files.path().join("md5.bin").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_halts_running_jobs_marks_them_interrupted_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    push_script(
        data,
        "Waits",
        r#"Log("waiting"); WaitForHaltSignal(); Log("halt seen");"#,
    );
    let key = create_key(data, "ci", "127.0.0.1");
    let mut svc = Service::start_on(data, free_port(), &[], &["--grace", "5"]);
    let http = svc.client();
    let base = svc.base();
    let (_, body) = post_job(&http, &base, Some(&key), r#"{"scriptName":"Waits"}"#).await;
    let id = body["jobId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, job, _) =
            get_json(&http, &format!("{base}/v1/jobs/{id}"), ("X-API-Key", &key)).await;
        if job["status"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = svc.terminate();
    assert!(status.success(), "aft serve exits 0 on SIGTERM: {status}");
    assert!(
        !data.join("service.json").exists(),
        "the discovery file is removed"
    );
    let shown = ok(aft(data, &["jobs", "show", &id, "--json"], None));
    let job: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(job["status"], "interrupted", "{job}");
    let log = ok(aft(data, &["jobs", "log", &id], None));
    assert!(
        log.contains("halt seen"),
        "the job saw the halt before the service stopped: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halt_stops_a_running_job_and_log_follow_streams_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    push_script(
        data,
        "Loop",
        r#"Log("begin"); while (!HaltSignalReceived) { Sleep(10); } Log("stopping");"#,
    );
    let key = create_key(data, "ci", "127.0.0.1");
    let svc = Service::start(data, &[], &[]);
    let http = svc.client();
    let base = svc.base();
    let (_, body) = post_job(&http, &base, Some(&key), r#"{"scriptName":"Loop"}"#).await;
    let id = body["jobId"].as_str().unwrap().to_string();
    let follower = {
        let http = http.clone();
        let url = format!("{base}/v1/jobs/{id}/log");
        let key = key.clone();
        tokio::spawn(async move {
            http.get(url)
                .header("X-API-Key", key)
                .header("Accept", "text/event-stream")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = http
        .delete(format!("{base}/v1/jobs/{id}"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let stream = tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .unwrap()
        .unwrap();
    assert!(stream.contains("event: line"), "{stream}");
    assert!(
        stream.contains("\"begin\"") && stream.contains("\"stopping\""),
        "{stream}"
    );
    assert!(
        stream.contains("event: end") && stream.contains("\"halted\""),
        "{stream}"
    );
    let job = wait_job(&http, &base, ("X-API-Key", &key), &id).await;
    assert_eq!(job["status"], "halted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), &[], &[]);
    let (status, api, _) = get_json(
        &svc.client(),
        &format!("{}/v1/openapi.json", svc.base()),
        ("X-Nothing", ""),
    )
    .await;
    assert_eq!(status, 200);
    let expected = [
        ("post", "/v1/jobs"),
        ("get", "/v1/jobs"),
        ("get", "/v1/jobs/{id}"),
        ("delete", "/v1/jobs/{id}"),
        ("get", "/v1/jobs/{id}/log"),
        ("get", "/v1/jobs/{id}/transfers"),
        ("post", "/v1/jobs/run"),
        ("get", "/v1/health"),
        ("get", "/v1/setup"),
        ("post", "/v1/setup"),
        ("get", "/v1/session"),
        ("post", "/v1/session"),
        ("delete", "/v1/session"),
        ("get", "/v1/scripts"),
        ("post", "/v1/scripts"),
        ("post", "/v1/scripts/check"),
        ("get", "/v1/scripts/{id}"),
        ("put", "/v1/scripts/{id}"),
        ("delete", "/v1/scripts/{id}"),
        ("get", "/v1/settings"),
        ("put", "/v1/settings/{key}"),
        ("get", "/v1/secrets"),
        ("put", "/v1/secrets/{name}"),
        ("delete", "/v1/secrets/{name}"),
        ("get", "/v1/apikeys"),
        ("post", "/v1/apikeys"),
        ("delete", "/v1/apikeys/{id}"),
        ("get", "/v1/vfs"),
        ("post", "/v1/vfs"),
        ("get", "/v1/vfs/{name}"),
        ("put", "/v1/vfs/{name}"),
        ("delete", "/v1/vfs/{name}"),
        ("get", "/v1/nodes"),
        ("get", "/metrics"),
    ];
    let token = svc.local_token();
    for (method, path) in expected {
        assert!(
            api["paths"][path][method].is_object(),
            "{method} {path} missing from openapi.json"
        );
        // The route is really served: not 404/405 from the router (ids are made up).
        let url = format!(
            "{}{}",
            svc.base(),
            path.replace("{id}", "x")
                .replace("{key}", "max-concurrent-jobs")
                .replace("{name}", "x")
        );
        let req = svc
            .client()
            .request(method.to_uppercase().parse().unwrap(), url)
            .header("X-Aft-Local-Token", &token);
        let resp = req
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {text}");
        if status >= 400 {
            let body: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{method} {path}: error is not JSON: {text}"));
            assert!(body["error"].is_string(), "{method} {path}: {text}");
        }
    }
    // Routes are registered through utoipa-axum's `routes!`, which documents each one as
    // it is added, so what is served and what is described cannot drift apart; other
    // features' routes (schedules, watchers) are documented the same way.
    let paths = api["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{:?}", paths.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_session_needs_csrf_for_changes_and_setup_happens_once() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), &[], &[]);
    let http = svc.client();
    let base = svc.base();
    let (_, setup, _) = get_json(&http, &format!("{base}/v1/setup"), ("X-Nothing", "")).await;
    assert_eq!(setup["adminExists"], false);
    let creds = json!({"username": "root", "password": "correct horse battery"});
    let resp = http
        .post(format!("{base}/v1/setup"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let resp = http
        .post(format!("{base}/v1/setup"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        409,
        "only the first admin is made this way"
    );
    let bad = json!({"username": "root", "password": "wrong password"});
    let resp = http
        .post(format!("{base}/v1/session"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = http
        .post(format!("{base}/v1/session"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session: Value = resp.json().await.unwrap();
    let csrf = session["csrfToken"].as_str().unwrap().to_string();
    let cookie_pair = cookie.split(';').next().unwrap().to_string();
    let (status, _, _) = get_json(
        &http,
        &format!("{base}/v1/scripts"),
        ("Cookie", &cookie_pair),
    )
    .await;
    assert_eq!(status, 200);
    let script = json!({"name": "FromUi", "body": "Log(1);"});
    let resp = http
        .post(format!("{base}/v1/scripts"))
        .header("Cookie", &cookie_pair)
        .json(&script)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        403,
        "a cookie alone cannot change state"
    );
    let resp = http
        .post(format!("{base}/v1/scripts"))
        .header("Cookie", &cookie_pair)
        .header("X-CSRF-Token", &csrf)
        .json(&script)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let resp = http
        .delete(format!("{base}/v1/session"))
        .header("Cookie", &cookie_pair)
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (status, _, _) = get_json(
        &http,
        &format!("{base}/v1/scripts"),
        ("Cookie", &cookie_pair),
    )
    .await;
    assert_eq!(status, 401, "signed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aft_run_delegates_to_the_local_service_and_exits_with_the_job_result() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(aft(data, &["secret", "set", "token"], Some("abc")));
    let svc = Service::start(data, &[], &[]);
    let good = write_script(
        data,
        "good.syncjs",
        r#"Log("secret length " + GetSecret("token").length + " " + Param("x"));"#,
    );
    let bad = write_script(data, "bad.syncjs", r#"Exit(3);"#);
    let out = aft(data, &["run", "-f", good.to_str().unwrap()], None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "refused while allow-cli-run is off: {out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("allow-cli-run"),
        "{out:?}"
    );
    ok(aft(
        data,
        &["settings", "set", "allow-cli-run", "true"],
        None,
    ));
    let stdout = ok(aft(
        data,
        &["run", "-f", good.to_str().unwrap(), "-p", r#"{"x":"y"}"#],
        None,
    ));
    assert!(stdout.contains("secret length 3 y"), "{stdout}");
    let out = aft(data, &["run", "-f", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let jobs: Value =
        serde_json::from_str(&ok(aft(data, &["jobs", "list", "--json"], None))).unwrap();
    let origins: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["origin"].as_str().unwrap())
        .collect();
    assert_eq!(
        origins,
        ["delegate", "delegate"],
        "both runs went through the service"
    );
    drop(svc);
}
