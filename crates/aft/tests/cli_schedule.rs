//! Schedules and watcher jobs end to end: the real `aft serve` binary with a real clock
//! (6-field, every-second cron), its SQLite store read back to check every slot.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aft_store::{JobFilter, JobStatus, ScheduleSlot, SlotStatus, Store};
use serde_json::Value;

mod support;

use support::{AFT, Service};

fn aft(data: &Path, args: &[&str]) -> Output {
    Command::new(AFT)
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("AFT_DATABASE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn push_script(data: &Path, name: &str, body: &str) {
    let file = data.join(format!("{name}.syncjs"));
    std::fs::write(&file, body).unwrap();
    ok(aft(data, &["script", "push", name, file.to_str().unwrap()]));
}

async fn slots(data: &Path, schedule: &str) -> Vec<ScheduleSlot> {
    let store = Store::open_in_dir(data).await.unwrap();
    let s = store.find_schedule(schedule).await.unwrap();
    let mut slots = store.list_slots(&s.id, 10_000).await.unwrap();
    store.close().await;
    slots.reverse();
    slots
}

async fn jobs_of(data: &Path, script: &str) -> Vec<aft_store::Job> {
    let store = Store::open_in_dir(data).await.unwrap();
    let jobs = store
        .list_jobs(&JobFilter {
            script: Some(script.into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    store.close().await;
    jobs
}

/// Poll `check` every 100 ms for up to 20 s.
async fn poll<T, F, Fut>(check: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Some(found) = check().await {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn sleep(secs: f64) {
    std::thread::sleep(Duration::from_secs_f64(secs));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_second_schedule_fires_each_slot_once_across_a_crash_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    push_script(data, "tick", r#"Log("tick");"#);
    let mut svc = Service::start(data, &[], &[]);
    // Added while the service runs (the CLI writes the store), so no slot predates it.
    ok(aft(
        data,
        &[
            "schedule",
            "add",
            "every-second",
            "--script",
            "tick",
            "--cron",
            "* * * * * *",
            "--overlap",
            "allow",
            "--misfire",
            "run-once",
        ],
    ));
    sleep(4.0);
    svc.kill9(); // a crash: no clean shutdown
    sleep(5.0); // slots come due while no service runs
    let mut svc = Service::start(data, &[], &[]);
    sleep(4.0);
    assert!(svc.terminate().success(), "aft serve exits 0 on SIGTERM");

    let slots = slots(data, "every-second").await;
    assert!(
        slots.len() >= 10,
        "expected at least 10 slots, got {}: {slots:?}",
        slots.len()
    );
    let times: Vec<_> = slots.iter().map(|s| s.slot_time.timestamp()).collect();
    for pair in times.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1,
            "every second from the first slot to the last has one row: {times:?}"
        );
    }
    let missed: Vec<_> = slots
        .iter()
        .filter(|s| s.status == SlotStatus::Missed)
        .collect();
    let run_once: Vec<_> = slots
        .iter()
        .filter(|s| {
            s.status == SlotStatus::Fired
                && s.detail.as_deref().is_some_and(|d| d.contains("run once"))
        })
        .collect();
    assert!(
        !missed.is_empty(),
        "the down time left missed slots: {slots:?}"
    );
    assert_eq!(
        run_once.len(),
        1,
        "misfire run-once fires the newest missed slot once: {slots:?}"
    );
    assert!(missed.iter().all(|m| m.slot_time < run_once[0].slot_time));
    assert!(
        slots
            .iter()
            .all(|s| matches!(s.status, SlotStatus::Fired | SlotStatus::Missed)),
        "{slots:?}"
    );

    let fired: HashSet<String> = slots.iter().filter_map(|s| s.job_id.clone()).collect();
    assert_eq!(
        fired.len(),
        slots
            .iter()
            .filter(|s| s.status == SlotStatus::Fired)
            .count()
    );
    let jobs = jobs_of(data, "tick").await;
    let job_ids: HashSet<String> = jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(job_ids, fired, "one job per fired slot, no other");
    assert!(jobs.iter().all(|j| j.origin == "schedule"));
    assert!(
        jobs.iter()
            .filter(|j| j.status == JobStatus::Succeeded)
            .count()
            >= fired.len() - 2
    );

    let history = ok(aft(
        data,
        &["schedule", "history", "every-second", "-n", "100"],
    ));
    assert!(
        history.contains("missed") && history.contains("fired"),
        "{history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_policies_skip_queue_and_allow_with_a_real_clock() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(aft(data, &["settings", "set", "max-concurrent-jobs", "64"]));
    for name in ["slow-skip", "slow-queue", "slow-allow"] {
        push_script(data, name, r#"Sleep(2500);"#);
        let policy = name.trim_start_matches("slow-");
        ok(aft(
            data,
            &[
                "schedule",
                "add",
                name,
                "--script",
                name,
                "--cron",
                "* * * * * *",
                "--overlap",
                policy,
            ],
        ));
    }
    let mut svc = Service::start(data, &[], &[]);
    sleep(6.5);
    assert!(svc.terminate().success(), "aft serve exits 0 on SIGTERM");

    let skip = slots(data, "slow-skip").await;
    let fired = skip
        .iter()
        .filter(|s| s.status == SlotStatus::Fired)
        .count();
    let skipped = skip
        .iter()
        .filter(|s| s.status == SlotStatus::Skipped)
        .count();
    assert!(
        fired >= 2 && skipped >= 3,
        "a 2.5 s job every second skips the slots meanwhile: {skip:?}"
    );
    assert!(skipped > fired, "{skip:?}");
    let skip_jobs = jobs_of(data, "slow-skip").await;
    assert_eq!(skip_jobs.len(), fired);

    let queue = slots(data, "slow-queue").await;
    assert!(
        queue.iter().any(|s| s.status == SlotStatus::Waiting),
        "slots wait for the previous job: {queue:?}"
    );
    assert!(queue.iter().all(|s| s.status != SlotStatus::Skipped));
    let queue_jobs = jobs_of(data, "slow-queue").await;
    let mut runs: Vec<_> = queue_jobs
        .iter()
        .filter_map(|j| Some((j.started_at.clone()?, j.finished_at.clone()?)))
        .collect();
    runs.sort();
    for pair in runs.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "queued runs never overlap: {runs:?}"
        );
    }

    let allow = slots(data, "slow-allow").await;
    assert!(
        allow.iter().all(|s| s.status == SlotStatus::Fired),
        "{allow:?}"
    );
    let allow_jobs = jobs_of(data, "slow-allow").await;
    let mut spans: Vec<_> = allow_jobs
        .iter()
        .filter_map(|j| Some((j.started_at.clone()?, j.finished_at.clone())))
        .collect();
    spans.sort();
    assert!(
        spans
            .windows(2)
            .any(|p| p[0].1.as_ref().is_none_or(|end| p[1].0 < *end)),
        "allow runs jobs side by side: {spans:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_cli_and_rest_preview_dst_days_and_manage_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    push_script(data, "report", r#"Log(Param("day"));"#);
    ok(aft(
        data,
        &[
            "schedule",
            "add",
            "rome",
            "--script",
            "report",
            "--cron",
            "30 2 * * *",
            "--tz",
            "Europe/Rome",
            "--params",
            r#"{"day":"x"}"#,
            "--disabled",
        ],
    ));
    let spring = ok(aft(
        data,
        &[
            "schedule",
            "next",
            "rome",
            "-n",
            "3",
            "--from",
            "2026-03-27T12:00:00Z",
        ],
    ));
    let lines: Vec<&str> = spring.lines().collect();
    assert_eq!(lines.len(), 3, "{spring}");
    assert!(
        lines[0].starts_with("2026-03-28 02:30:00 +01:00"),
        "{spring}"
    );
    assert!(
        lines[1].starts_with("2026-03-29 03:00:00 +02:00"),
        "02:30 does not exist on the spring-forward day: {spring}"
    );
    assert!(
        lines[2].starts_with("2026-03-30 02:30:00 +02:00"),
        "{spring}"
    );
    let fall = ok(aft(
        data,
        &[
            "schedule",
            "next",
            "rome",
            "-n",
            "2",
            "--from",
            "2026-10-24T12:00:00Z",
        ],
    ));
    assert!(
        fall.lines()
            .next()
            .unwrap()
            .starts_with("2026-10-25 02:30:00 +02:00"),
        "the repeated 02:30 runs once, the first time: {fall}"
    );
    assert!(
        fall.lines()
            .nth(1)
            .unwrap()
            .starts_with("2026-10-26 02:30:00 +01:00"),
        "{fall}"
    );

    let bad = aft(
        data,
        &[
            "schedule",
            "add",
            "bad",
            "--script",
            "report",
            "--cron",
            "99 * * * *",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid cron expression"));
    let bad_tz = aft(
        data,
        &[
            "schedule",
            "add",
            "bad",
            "--script",
            "report",
            "--cron",
            "@daily",
            "--tz",
            "Europe/Nowhere",
        ],
    );
    assert!(String::from_utf8_lossy(&bad_tz.stderr).contains("unknown time zone"));
    let list = ok(aft(data, &["schedule", "list"]));
    assert!(
        list.contains("rome") && list.contains("Europe/Rome") && list.contains("disabled"),
        "{list}"
    );

    let mut svc = Service::start(data, &[], &[]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(data.join("tls/cert.pem")).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let info: Value =
        serde_json::from_slice(&std::fs::read(data.join("service.json")).unwrap()).unwrap();
    let token = info["token"].as_str().unwrap().to_string();
    let base = format!("https://127.0.0.1:{}", svc.port);
    let created = http
        .post(format!("{base}/v1/schedules"))
        .header("X-Aft-Local-Token", &token)
        .json(&serde_json::json!({"name": "ny", "script": "report", "cron": "30 1 * * *", "timeZone": "America/New_York", "misfire": "run-once"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let next: Value = http
        .get(format!(
            "{base}/v1/schedules/ny/next?n=3&from=2026-10-31T12:00:00Z"
        ))
        .header("X-Aft-Local-Token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        next["local"],
        serde_json::json!([
            "2026-11-01T01:30:00-04:00",
            "2026-11-02T01:30:00-05:00",
            "2026-11-03T01:30:00-05:00"
        ])
    );
    let dup = http
        .post(format!("{base}/v1/schedules"))
        .header("X-Aft-Local-Token", &token)
        .json(&serde_json::json!({"name": "NY", "script": "report", "cron": "@daily"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status().as_u16(), 409);
    let unauth = http
        .get(format!("{base}/v1/schedules"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status().as_u16(), 401);
    let listed: Value = http
        .get(format!("{base}/v1/schedules"))
        .header("X-Aft-Local-Token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let openapi: Value = http
        .get(format!("{base}/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/schedules",
        "/v1/schedules/{name}/next",
        "/v1/schedules/{name}/slots",
        "/v1/watchers",
    ] {
        assert!(
            openapi["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let deleted = http
        .delete(format!("{base}/v1/schedules/ny"))
        .header("X-Aft-Local-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert!(svc.terminate().success(), "aft serve exits 0 on SIGTERM");
    ok(aft(data, &["schedule", "delete", "rome"]));
    assert!(!ok(aft(data, &["schedule", "list"])).contains("rome"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_job_starts_with_the_service_backs_off_after_throwing_and_halts_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    push_script(
        data,
        "keeper",
        r#"Log("watching"); WaitForHaltSignal(); Log("halted cleanly");"#,
    );
    push_script(data, "crasher", r#"throw new Error("boom");"#);
    ok(aft(data, &["watcher", "add", "keep", "--script", "keeper"]));
    ok(aft(
        data,
        &["watcher", "add", "crash", "--script", "crasher"],
    ));

    let mut svc = Service::start(data, &[], &[]);
    sleep(5.5);
    let listed = ok(aft(data, &["watcher", "list"]));
    assert!(
        listed.contains("keep") && listed.contains("running"),
        "{listed}"
    );
    assert!(svc.terminate().success(), "aft serve exits 0 on SIGTERM");

    let keeper = jobs_of(data, "keeper").await;
    assert_eq!(keeper.len(), 1, "one run while the service ran: {keeper:?}");
    assert_eq!(
        keeper[0].status,
        JobStatus::Interrupted,
        "shutdown ends the run: {keeper:?}"
    );
    let store = Store::open_in_dir(data).await.unwrap();
    let log = store.read_job_logs(&keeper[0].id, 0, 100).await.unwrap();
    assert!(
        log.iter().any(|l| l.message == "halted cleanly"),
        "WaitForHaltSignal returned: {log:?}"
    );

    let mut crashes = jobs_of(data, "crasher").await;
    crashes.reverse();
    assert!(
        (2..=5).contains(&crashes.len()),
        "restarted with backoff (1 s, 2 s, ...): {crashes:?}"
    );
    assert!(crashes.iter().all(|j| j.status == JobStatus::Failed));
    let created: Vec<chrono::DateTime<chrono::Utc>> = crashes
        .iter()
        .map(|j| j.created_at.parse().unwrap())
        .collect();
    let gaps: Vec<i64> = created
        .windows(2)
        .map(|p| (p[1] - p[0]).num_milliseconds())
        .collect();
    assert!(gaps[0] >= 1000, "1 s after the first failure: {gaps:?}");
    if let Some(second) = gaps.get(1) {
        assert!(*second >= 2000, "2 s after the second: {gaps:?}");
    }
    let crash = store.find_watcher_job("crash").await.unwrap();
    assert!(crash.failures >= 2);
    store.close().await;

    let mut svc = Service::start(data, &[], &[]);
    let again = poll(|| async {
        let jobs = jobs_of(data, "keeper").await;
        (jobs.len() == 2 && jobs[0].status == JobStatus::Running).then_some(jobs)
    })
    .await
    .expect("the next service start runs the watcher again");
    assert_eq!(again[1].id, keeper[0].id);
    ok(aft(data, &["watcher", "delete", "keep"]));
    let after = poll(|| async {
        let jobs = jobs_of(data, "keeper").await;
        (jobs[0].status == JobStatus::Halted).then_some(jobs)
    })
    .await;
    assert!(
        after.is_some(),
        "deleting a watcher halts its run: {:?}",
        jobs_of(data, "keeper").await
    );
    assert!(svc.terminate().success(), "aft serve exits 0 on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sharing_postgres_fire_each_slot_once() {
    let db = aft_store::testing::TempPostgres::create().await;
    let url = db.url.clone();
    let dir1 = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let on_db = ["--database", url.as_str()];
    let file = dir1.path().join("tick.syncjs");
    std::fs::write(&file, r#"Log("tick");"#).unwrap();
    let cli = |args: &[&str]| ok(aft(dir1.path(), &[&on_db[..], args].concat()));
    cli(&["script", "push", "tick", file.to_str().unwrap()]);
    let mut node1 = Service::start(dir1.path(), &on_db, &[]);
    let mut node2 = Service::start(dir2.path(), &on_db, &[]);
    cli(&[
        "schedule",
        "add",
        "tick",
        "--script",
        "tick",
        "--cron",
        "* * * * * *",
        "--overlap",
        "allow",
    ]);
    sleep(5.0);
    assert!(node1.terminate().success(), "aft serve exits 0 on SIGTERM");
    assert!(node2.terminate().success(), "aft serve exits 0 on SIGTERM");

    let store = Store::open(&url).await.unwrap();
    let schedule = store.find_schedule("tick").await.unwrap();
    let mut slots = store.list_slots(&schedule.id, 1000).await.unwrap();
    slots.reverse();
    let jobs = store
        .list_jobs(&JobFilter {
            script: Some("tick".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    store.close().await;
    db.drop_database().await;

    assert!(slots.len() >= 3, "{slots:?}");
    let times: Vec<_> = slots.iter().map(|s| s.slot_time.timestamp()).collect();
    for pair in times.windows(2) {
        assert_eq!(pair[1] - pair[0], 1, "each second once: {times:?}");
    }
    assert!(
        slots.iter().all(|s| s.status == SlotStatus::Fired),
        "{slots:?}"
    );
    let fired: HashSet<String> = slots.iter().filter_map(|s| s.job_id.clone()).collect();
    let queued: HashSet<String> = jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(fired.len(), slots.len());
    assert_eq!(queued, fired, "two racing nodes queue one job per slot");
}

/// An HTTPS client that trusts the service's certificate, the base URL and its local token.
fn local_client(data: &Path, svc: &Service) -> (reqwest::Client, String, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(data.join("tls/cert.pem")).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let info: Value =
        serde_json::from_slice(&std::fs::read(data.join("service.json")).unwrap()).unwrap();
    let token = info["token"].as_str().unwrap().to_string();
    (http, format!("https://127.0.0.1:{}", svc.port), token)
}

/// Send `body` with `method` to `path`; the status and the JSON answer (Null if none).
async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let answer = http
        .request(method, format!("{base}{path}"))
        .header("X-Aft-Local-Token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_schedule_takes_its_new_timing_without_a_restart_and_decides_each_slot_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    push_script(data, "tick", r#"Log("tick");"#);
    let svc = Service::start(data, &[], &[]);
    let (http, base, token) = local_client(data, &svc);
    let put = reqwest::Method::PUT;
    let (status, created) = call(
        &http,
        &base,
        &token,
        reqwest::Method::POST,
        "/v1/schedules",
        serde_json::json!({"name": "fast", "script": "tick", "cron": "* * * * * *", "overlap": "allow"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    sleep(3.2);

    // Rejected edits change nothing and say why.
    let (status, bad) = call(
        &http,
        &base,
        &token,
        put.clone(),
        "/v1/schedules/fast",
        serde_json::json!({"cron": "61 * * * *"}),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad.to_string().contains("invalid cron expression"), "{bad}");
    let (status, bad) = call(
        &http,
        &base,
        &token,
        put.clone(),
        "/v1/schedules/fast",
        serde_json::json!({"timezone": "UTC"}),
    )
    .await;
    assert_eq!(status, 400, "an unknown field is refused: {bad}");
    let (status, _) = call(
        &http,
        &base,
        &token,
        put.clone(),
        "/v1/schedules/nope",
        serde_json::json!({"cron": "@daily"}),
    )
    .await;
    assert_eq!(status, 404);

    // Yearly from now on: the every-second slots stop at the edit.
    let (status, yearly) = call(
        &http,
        &base,
        &token,
        put.clone(),
        "/v1/schedules/FAST",
        serde_json::json!({"cron": "0 0 1 1 *", "timeZone": "Europe/Rome"}),
    )
    .await;
    assert_eq!(status, 200, "{yearly}");
    assert_eq!(yearly["cron"], "0 0 1 1 *");
    assert_eq!(yearly["timeZone"], "Europe/Rome");
    assert_eq!(yearly["overlap"], "allow", "fields left out are kept");
    let first_edit: chrono::DateTime<chrono::Utc> =
        yearly["updatedAt"].as_str().unwrap().parse().unwrap();
    sleep(2.5);
    let before = slots(data, "fast").await;
    assert!(before.len() >= 3, "{before:?}");
    assert!(
        before.iter().all(|s| s.slot_time <= first_edit),
        "no every-second slot after the edit: {before:?}"
    );
    let gaps: Vec<i64> = before
        .windows(2)
        .map(|p| (p[1].slot_time - p[0].slot_time).num_seconds())
        .collect();
    assert!(gaps.iter().all(|g| *g == 1), "no slot lost: {gaps:?}");
    assert!(
        first_edit - before.last().unwrap().slot_time < chrono::Duration::seconds(1),
        "the last second before the edit was decided too: {before:?} edit {first_edit}"
    );

    // Every other second, without a restart.
    let (status, even) = call(
        &http,
        &base,
        &token,
        put.clone(),
        "/v1/schedules/fast",
        serde_json::json!({"cron": "*/2 * * * * *", "timeZone": "UTC"}),
    )
    .await;
    assert_eq!(status, 200, "{even}");
    let second_edit: chrono::DateTime<chrono::Utc> =
        even["updatedAt"].as_str().unwrap().parse().unwrap();
    sleep(4.5);
    let all = slots(data, "fast").await;
    let after: Vec<_> = all.iter().filter(|s| s.slot_time > second_edit).collect();
    assert!(after.len() >= 2, "the new timing fires: {all:?}");
    assert!(
        after.iter().all(|s| s.slot_time.timestamp() % 2 == 0),
        "on even seconds only: {after:?}"
    );
    assert!(
        all.iter()
            .all(|s| s.slot_time <= first_edit || s.slot_time > second_edit),
        "nothing between the two edits: {all:?}"
    );
    let unique: HashSet<_> = all.iter().map(|s| s.slot_time).collect();
    assert_eq!(unique.len(), all.len());
    assert!(all.iter().all(|s| s.status == SlotStatus::Fired));
    assert_eq!(
        jobs_of(data, "tick").await.len(),
        all.len(),
        "one job per slot"
    );

    // The CLI edits the same store while the service runs.
    ok(aft(
        data,
        &[
            "schedule",
            "update",
            "fast",
            "--cron",
            "@daily",
            "--tz",
            "America/New_York",
            "--params",
            r#"{"a":1}"#,
            "--overlap",
            "queue",
            "--misfire",
            "run-once",
            "--disable",
        ],
    ));
    let listed = ok(aft(data, &["schedule", "list"]));
    assert!(
        listed.contains("@daily")
            && listed.contains("America/New_York")
            && listed.contains("queue")
            && listed.contains("run-once")
            && listed.contains("disabled"),
        "{listed}"
    );
    let bad = aft(
        data,
        &["schedule", "update", "fast", "--cron", "99 * * * *"],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid cron expression"));
    let enabled = ok(aft(data, &["schedule", "update", "fast", "--enable"]));
    assert!(enabled.contains("enabled"), "{enabled}");
    let (_, fetched) = call(
        &http,
        &base,
        &token,
        reqwest::Method::GET,
        "/v1/schedules/fast",
        Value::Null,
    )
    .await;
    // Params are stored as text, as every entry point gives them to the script.
    assert_eq!(fetched["params"], serde_json::json!({"a": "1"}));
    assert_eq!(fetched["enabled"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_watcher_halts_its_run_starts_no_job_and_its_remote_watcher_catches_up_on_enable()
{
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let inbox = tempfile::tempdir().unwrap();
    ok(aft(
        data,
        &[
            "vfs",
            "add",
            "inbox",
            "--type",
            "disk",
            "--set",
            &format!("Root={}", inbox.path().display()),
        ],
    ));
    push_script(
        data,
        "pickup",
        r#"var w = new RemoteWatcher("inbox");
w.PollSeconds = 1;
w.WatchDir("/", false);
w.Start(function (evt) { if (evt.Event == EVT_CREATE) Log("got " + evt.Object); });
WaitForHaltSignal();
w.Stop();"#,
    );
    let svc = Service::start(data, &[], &[]);
    let (http, base, token) = local_client(data, &svc);
    let put = reqwest::Method::PUT;
    let (status, created) = call(
        &http,
        &base,
        &token,
        reqwest::Method::POST,
        "/v1/watchers",
        serde_json::json!({"name": "in", "script": "pickup"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["enabled"], true);

    let logs = |job_id: String| async move {
        let store = Store::open_in_dir(data).await.unwrap();
        let lines = store.read_job_logs(&job_id, 0, 1000).await.unwrap();
        store.close().await;
        lines.into_iter().map(|l| l.message).collect::<Vec<_>>()
    };
    let first = poll(|| async {
        let jobs = jobs_of(data, "pickup").await;
        (jobs.len() == 1 && jobs[0].status == JobStatus::Running).then(|| jobs[0].id.clone())
    })
    .await
    .expect("the watcher's run starts");
    std::fs::write(inbox.path().join("a.csv"), b"a").unwrap();
    poll(|| async {
        logs(first.clone())
            .await
            .contains(&"got /a.csv".to_string())
            .then_some(())
    })
    .await
    .expect("the running watcher reports a.csv");

    let (status, off) = call(
        &http,
        &base,
        &token,
        put.clone(),
        "/v1/watchers/IN/enabled",
        serde_json::json!({"enabled": false}),
    )
    .await;
    assert_eq!(status, 200, "{off}");
    assert_eq!(off["enabled"], false);
    poll(|| async {
        let jobs = jobs_of(data, "pickup").await;
        (jobs[0].status == JobStatus::Halted).then_some(())
    })
    .await
    .expect("disabling halts the run");
    std::fs::write(inbox.path().join("b.csv"), b"b").unwrap();
    sleep(3.0);
    let jobs = jobs_of(data, "pickup").await;
    assert_eq!(jobs.len(), 1, "no run while disabled: {jobs:?}");
    assert!(
        !logs(first.clone())
            .await
            .contains(&"got /b.csv".to_string()),
        "nothing reported while disabled"
    );
    let listed = ok(aft(data, &["watcher", "list"]));
    assert!(
        listed.contains("ENABLED") && listed.contains(" no "),
        "{listed}"
    );

    let (status, on) = call(
        &http,
        &base,
        &token,
        put.clone(),
        "/v1/watchers/in/enabled",
        serde_json::json!({"enabled": true}),
    )
    .await;
    assert_eq!(status, 200, "{on}");
    assert_eq!(on["enabled"], true);
    let second = poll(|| async {
        let jobs = jobs_of(data, "pickup").await;
        (jobs.len() == 2 && jobs[0].status == JobStatus::Running).then(|| jobs[0].id.clone())
    })
    .await
    .expect("enabling starts a fresh run at once");
    poll(|| async {
        logs(second.clone())
            .await
            .contains(&"got /b.csv".to_string())
            .then_some(())
    })
    .await
    .expect("the file that landed while disabled is picked up on enable");
    assert!(
        !logs(second.clone())
            .await
            .contains(&"got /a.csv".to_string()),
        "a.csv was already reported"
    );

    // The CLI works from another process: the service sees the halt request.
    let out = ok(aft(data, &["watcher", "disable", "in"]));
    assert!(out.contains("asked to halt"), "{out}");
    poll(|| async {
        let jobs = jobs_of(data, "pickup").await;
        (jobs[0].status == JobStatus::Halted).then_some(())
    })
    .await
    .expect("a CLI disable halts the service's run");
    ok(aft(data, &["watcher", "enable", "in"]));
    poll(|| async {
        let jobs = jobs_of(data, "pickup").await;
        (jobs.len() == 3 && jobs[0].status == JobStatus::Running).then_some(())
    })
    .await
    .expect("a CLI enable starts a run");
    let (status, _) = call(
        &http,
        &base,
        &token,
        put,
        "/v1/watchers/nope/enabled",
        serde_json::json!({"enabled": true}),
    )
    .await;
    assert_eq!(status, 404);
    let (_, openapi) = call(
        &http,
        &base,
        &token,
        reqwest::Method::GET,
        "/v1/openapi.json",
        Value::Null,
    )
    .await;
    assert!(openapi["paths"]["/v1/watchers/{name}/enabled"]["put"].is_object());
    assert!(openapi["paths"]["/v1/schedules/{name}"]["put"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_see_a_schedule_edit_and_a_watcher_disabled_on_the_other_node() {
    let db = aft_store::testing::TempPostgres::create().await;
    let url = db.url.clone();
    let dir1 = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let on_db = ["--database", url.as_str()];
    let tick = dir1.path().join("tick.syncjs");
    std::fs::write(&tick, r#"Log("tick");"#).unwrap();
    let keeper = dir1.path().join("keeper.syncjs");
    std::fs::write(&keeper, r#"WaitForHaltSignal();"#).unwrap();
    let cli = |args: &[&str]| ok(aft(dir1.path(), &[&on_db[..], args].concat()));
    cli(&["script", "push", "tick", tick.to_str().unwrap()]);
    cli(&["script", "push", "keeper", keeper.to_str().unwrap()]);
    cli(&["watcher", "add", "keep", "--script", "keeper"]);
    cli(&[
        "schedule",
        "add",
        "tick",
        "--script",
        "tick",
        "--cron",
        "* * * * * *",
        "--overlap",
        "allow",
    ]);
    let node1 = Service::start(dir1.path(), &on_db, &[]);
    let node2 = Service::start(dir2.path(), &on_db, &[]);
    let clients = [
        local_client(dir1.path(), &node1),
        local_client(dir2.path(), &node2),
    ];
    let node_ids: Vec<String> = [dir1.path(), dir2.path()]
        .iter()
        .map(|d| {
            let info: Value =
                serde_json::from_slice(&std::fs::read(d.join("service.json")).unwrap()).unwrap();
            info["node_id"].as_str().unwrap().to_string()
        })
        .collect();
    let store = Store::open(&url).await.unwrap();

    // The watcher runs on one node; the other node's API disables it.
    let running = poll(|| async {
        let w = store.find_watcher_job("keep").await.ok()?;
        let job = store.get_job(w.current_job_id.as_ref()?).await.ok()?;
        (job.status == JobStatus::Running).then_some(job)
    })
    .await
    .expect("the watcher runs on a node");
    let runner = node_ids
        .iter()
        .position(|id| Some(id) == running.node_id.as_ref())
        .expect("one of the two nodes runs it");
    let (http, base, token) = &clients[1 - runner];
    let (status, off) = call(
        http,
        base,
        token,
        reqwest::Method::PUT,
        "/v1/watchers/keep/enabled",
        serde_json::json!({"enabled": false}),
    )
    .await;
    assert_eq!(status, 200, "{off}");
    poll(|| async {
        (store.get_job(&running.id).await.ok()?.status == JobStatus::Halted).then_some(())
    })
    .await
    .expect("the node running the watcher halts it when the other node disables it");
    sleep(1.5);
    let runs = |store: Store| async move {
        store
            .list_jobs(&JobFilter {
                script: Some("keeper".into()),
                limit: Some(100),
                ..Default::default()
            })
            .await
            .unwrap()
    };
    assert_eq!(
        runs(store.clone()).await.len(),
        1,
        "no node starts it while disabled"
    );

    // The schedule, edited through the other node, is retimed on both.
    let (http, base, token) = &clients[runner];
    let (status, edited) = call(
        http,
        base,
        token,
        reqwest::Method::PUT,
        "/v1/schedules/tick",
        serde_json::json!({"cron": "*/2 * * * * *"}),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    let edit: chrono::DateTime<chrono::Utc> =
        edited["updatedAt"].as_str().unwrap().parse().unwrap();
    let (status, on) = call(
        http,
        base,
        token,
        reqwest::Method::PUT,
        "/v1/watchers/keep/enabled",
        serde_json::json!({"enabled": true}),
    )
    .await;
    assert_eq!(status, 200, "{on}");
    poll(|| async {
        let jobs = runs(store.clone()).await;
        (jobs.len() == 2 && jobs[0].status == JobStatus::Running).then_some(())
    })
    .await
    .expect("enabled again, one node runs it");
    sleep(4.5);
    let schedule = store.find_schedule("tick").await.unwrap();
    let mut slots = store.list_slots(&schedule.id, 1000).await.unwrap();
    slots.reverse();
    let jobs = store
        .list_jobs(&JobFilter {
            script: Some("tick".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        runs(store.clone()).await.len(),
        2,
        "one run after enabling, not two"
    );
    store.close().await;
    drop(node1);
    drop(node2);
    db.drop_database().await;

    let before: Vec<i64> = slots
        .iter()
        .filter(|s| s.slot_time <= edit)
        .map(|s| s.slot_time.timestamp())
        .collect();
    let after: Vec<i64> = slots
        .iter()
        .filter(|s| s.slot_time > edit)
        .map(|s| s.slot_time.timestamp())
        .collect();
    assert!(before.len() >= 2 && after.len() >= 2, "{slots:?}");
    assert!(
        before.windows(2).all(|p| p[1] - p[0] == 1),
        "each second once before: {before:?}"
    );
    assert!(
        after.windows(2).all(|p| p[1] - p[0] == 2),
        "every other second after: {after:?}"
    );
    assert!(after.iter().all(|t| t % 2 == 0), "{after:?}");
    assert!(
        edit.timestamp() - before.last().unwrap() <= 1,
        "the last second before the edit is not lost"
    );
    assert!(
        slots.iter().all(|s| s.status == SlotStatus::Fired),
        "{slots:?}"
    );
    assert_eq!(
        jobs.len(),
        slots.len(),
        "one job per slot across both nodes"
    );
}
