//! Retries, notifications and chains (issue 20) through the real binary: a failing script
//! retried with growing gaps (measured from the job records), its failure told to a webhook
//! sink run here and to the SMTP sink peer, a dead webhook filling the dead-letter list
//! until `aft notify retry` delivers it, a chain passing params and `Result` on, and a
//! chain cycle refused.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, Service, call, peer, poll};

const TOKEN: &str = "X-Aft-Local-Token";

/// An HTTP server on `listener` that answers every request 200 and hands each body over.
fn webhook_sink(listener: TcpListener) -> mpsc::Receiver<(String, Value)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if tx.send((request_line.trim().to_string(), value)).is_err() {
                return;
            }
        }
    });
    rx
}

/// The stored mail whose text contains `marker` (the SMTP sink writes one .eml each).
fn stored_mail(marker: &str) -> String {
    let dir = peer("AFT_TEST_SMTP_DIR");
    poll(Duration::from_secs(30), || {
        std::fs::read_dir(&dir).unwrap().find_map(|entry| {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            (path.extension().is_some_and(|e| e == "eml") && text.contains(marker)).then_some(text)
        })
    })
    .unwrap_or_else(|| panic!("no mail with {marker} in {dir}"))
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// The jobs of `script`, oldest first, once `count` of them have ended.
fn ended_jobs(aft: &Aft, script: &str, count: usize) -> Vec<Value> {
    poll(Duration::from_secs(60), || {
        let listed: Value =
            serde_json::from_str(&aft.ok(&["jobs", "list", "--script", script, "--json"])).unwrap();
        let mut jobs = listed.as_array().unwrap().clone();
        jobs.reverse();
        let ended = jobs
            .iter()
            .filter(|j| !matches!(j["status"].as_str(), Some("queued" | "running")))
            .count();
        (jobs.len() == count && ended == count).then_some(jobs)
    })
    .unwrap_or_else(|| panic!("{count} ended jobs of {script} did not appear"))
}

async fn start_job(svc: &Service, script: &str, params: Value) -> String {
    let (status, body) = call(
        &svc.client(),
        Method::POST,
        &format!("{}/v1/jobs", svc.base()),
        Some((TOKEN, &svc.local_token())),
        Some(&json!({"scriptName": script, "params": params})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body["jobId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_failing_script_is_retried_with_growing_gaps_then_a_webhook_and_a_mail_tell_of_it() {
    let aft = Aft::new();
    aft.push_script(
        "Flaky",
        r#"Log("trying " + Param("batch")); throw new Error("the partner server is down");"#,
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let received = webhook_sink(listener);
    let (smtp_host, smtp_port) = peer("AFT_TEST_SMTP_ADDR")
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap();
    for (key, value) in [
        ("smtp-host", smtp_host.as_str()),
        ("smtp-port", smtp_port.as_str()),
        ("smtp-tls", "none"),
        ("smtp-from", "aft@example.com"),
        ("public-url", "https://aft.example.com/"),
    ] {
        aft.ok(&["settings", "set", key, value]);
    }
    let shown = aft.ok(&[
        "script",
        "retry",
        "Flaky",
        "--attempts",
        "4",
        "--backoff",
        "exponential",
        "--delay",
        "700ms",
    ]);
    assert!(shown.contains("4 attempts in all"), "{shown}");
    let shown = aft.ok(&[
        "script",
        "notify",
        "Flaky",
        "--webhook",
        &hook,
        "--email",
        "ops@example.com",
    ]);
    assert!(
        shown.contains(&hook) && shown.contains("ops@example.com"),
        "{shown}"
    );

    let svc = aft.serve();
    let first = start_job(&svc, "Flaky", json!({"batch": "b-7"})).await;
    let jobs = ended_jobs(&aft, "Flaky", 4);

    // Each attempt is its own job, linked to the first, with the same params.
    assert_eq!(jobs[0]["id"], first.as_str());
    for (i, job) in jobs.iter().enumerate() {
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["retryAttempt"], i as i64 + 1, "{job}");
        assert_eq!(job["params"], json!({"batch": "b-7"}), "{job}");
        if i == 0 {
            assert!(job["retryOf"].is_null(), "{job}");
        } else {
            assert_eq!(job["retryOf"], first.as_str(), "{job}");
            assert_eq!(job["origin"], "retry", "{job}");
        }
    }
    // The gaps: from an attempt's end to the next one's start, at least the configured
    // wait (700, 1400, 2800 ms), and growing.
    let gaps: Vec<i64> = jobs
        .windows(2)
        .map(|w| (time(&w[1]["startedAt"]) - time(&w[0]["finishedAt"])).num_milliseconds())
        .collect();
    for (gap, wait) in gaps.iter().zip([700, 1400, 2800]) {
        assert!(*gap >= wait, "gaps {gaps:?}");
    }
    assert!(gaps[0] < gaps[1] && gaps[1] < gaps[2], "gaps {gaps:?}");

    // The API and `aft jobs show` show the link.
    let last = jobs[3]["id"].as_str().unwrap();
    let (status, api_job) = call(
        &svc.client(),
        Method::GET,
        &format!("{}/v1/jobs/{last}", svc.base()),
        Some((TOKEN, &svc.local_token())),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(api_job["retryOf"], first.as_str(), "{api_job}");
    assert_eq!(api_job["retryAttempt"], 4, "{api_job}");
    let shown = aft.ok(&["jobs", "show", last]);
    assert!(
        shown.contains(&format!("attempt:   4 (retry of job {first})")),
        "{shown}"
    );

    // One failure notification, after the last attempt: to the webhook and by mail.
    let (request, body) = received.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(request, "POST /hook HTTP/1.1");
    assert_eq!(body["event"], "failure", "{body}");
    assert_eq!(body["script"], "Flaky", "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(body["job"]["id"], last, "{body}");
    assert_eq!(body["job"]["retryAttempt"], 4, "{body}");
    assert_eq!(
        body["url"],
        format!("https://aft.example.com/#/jobs/{last}").as_str()
    );
    let log = body["log"].to_string();
    assert!(
        log.contains("trying b-7") && log.contains("the partner server is down"),
        "{body}"
    );
    // The body is quoted-printable: join its soft line breaks to read the link whole.
    let mail = stored_mail(last).replace("=\r\n", "").replace("=\n", "");
    assert!(mail.contains("[aft] Flaky failed"), "{mail}");
    assert!(mail.contains("ops@example.com"), "{mail}");
    assert!(
        mail.contains(&format!("https://aft.example.com/#/jobs/{last}")),
        "{mail}"
    );
    assert!(
        received.recv_timeout(Duration::from_millis(1500)).is_err(),
        "the retried attempts sent no notification of their own"
    );
    let delivered: Value =
        serde_json::from_str(&aft.ok(&["notify", "list", "--state", "delivered", "--json"]))
            .unwrap();
    assert_eq!(delivered.as_array().unwrap().len(), 2, "{delivered}");
}

#[tokio::test]
async fn an_undeliverable_notification_goes_to_the_dead_letters_until_retried() {
    let aft = Aft::new();
    aft.push_script("Nightly", r#"Exit(3);"#);
    // A port nobody listens on yet: the sink starts there later.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let hook = format!("http://{addr}/slack");
    aft.ok(&["settings", "set", "notify-attempts", "3"]);
    aft.ok(&["settings", "set", "notify-backoff-ms", "100"]);
    aft.ok(&["script", "notify", "Nightly", "--slack-webhook", &hook]);
    let svc = aft.serve();
    let job = start_job(&svc, "Nightly", json!({})).await;

    let dead = poll(Duration::from_secs(30), || {
        let listed: Value =
            serde_json::from_str(&aft.ok(&["notify", "list", "--state", "dead", "--json"]))
                .unwrap();
        (listed.as_array().unwrap().len() == 1).then_some(listed[0].clone())
    })
    .expect("the notification did not go dead");
    assert_eq!(dead["jobId"], job.as_str(), "{dead}");
    assert_eq!(dead["attempts"], 3, "{dead}");
    assert!(
        dead["lastError"].as_str().unwrap().contains(&hook),
        "{dead}"
    );
    let (status, api_dead) = call(
        &svc.client(),
        Method::GET,
        &format!("{}/v1/notifications?state=dead", svc.base()),
        Some((TOKEN, &svc.local_token())),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(api_dead[0]["id"], dead["id"], "{api_dead}");

    // The sink is back: a retry delivers it, Slack-shaped.
    let received = webhook_sink(TcpListener::bind(addr).unwrap());
    let out = aft.ok(&["notify", "retry", "--all"]);
    assert!(out.contains(dead["id"].as_str().unwrap()), "{out}");
    let (request, body) = received.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(request, "POST /slack HTTP/1.1");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("[aft] Nightly failed") && text.contains(&job),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "Slack's shape: {body}");
    let delivered = poll(Duration::from_secs(10), || {
        let listed: Value = serde_json::from_str(&aft.ok(&["notify", "list", "--json"])).unwrap();
        (listed[0]["state"] == "delivered").then_some(listed[0].clone())
    });
    assert!(
        delivered.is_some(),
        "the retried notification was not recorded delivered"
    );
    let (status, none) = call(
        &svc.client(),
        Method::POST,
        &format!("{}/v1/notifications/retry", svc.base()),
        Some((TOKEN, &svc.local_token())),
        None,
    )
    .await;
    assert_eq!((status, none), (200, json!({"retried": []})));
}

#[tokio::test]
async fn a_chain_starts_the_next_script_with_params_and_result_and_refuses_a_cycle() {
    let aft = Aft::new();
    aft.push_script("Fetch", r#"SetResult("fetched-" + Param("day"));"#);
    aft.push_script(
        "Report",
        r#"Log("report for " + Param("day") + " after " + Param("Result"));"#,
    );
    aft.push_script("Cleanup", r#"Log("cleanup");"#);
    let shown = aft.ok(&["script", "chain", "Fetch", "--on-success", "report"]);
    assert!(shown.contains("on success Report"), "{shown}");
    let svc = aft.serve();
    let auth = (TOKEN, svc.local_token());

    // A cycle is refused, naming it; so is a script that is not stored.
    let (status, body) = call(
        &svc.client(),
        Method::PUT,
        &format!("{}/v1/scripts/Report/policy", svc.base()),
        Some((auth.0, &auth.1)),
        Some(&json!({"chain": {"onFailure": ["Cleanup"], "onSuccess": ["Fetch"]}})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"],
        "chain cycle: Report → Fetch → Report (a chain may not lead back to a script in it)"
    );
    let refused = aft.fails(&["script", "chain", "report", "--on-success", "FETCH"], 1);
    assert!(
        refused.contains("chain cycle: Report → Fetch → Report"),
        "{refused}"
    );
    let (status, body) = call(
        &svc.client(),
        Method::PUT,
        &format!("{}/v1/scripts/Report/policy", svc.base()),
        Some((auth.0, &auth.1)),
        Some(&json!({"chain": {"onSuccess": ["Nowhere"]}})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("Nowhere"),
        "{body}"
    );
    let (status, body) = call(
        &svc.client(),
        Method::PUT,
        &format!("{}/v1/scripts/Report/policy", svc.base()),
        Some((auth.0, &auth.1)),
        Some(&json!({"chain": {"onSuccess": ["Cleanup"]}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chain"]["onSuccess"], json!(["Cleanup"]), "{body}");

    let fetch = start_job(&svc, "Fetch", json!({"day": "2026-12-05"})).await;
    let started = Instant::now();
    let report = ended_jobs(&aft, "Report", 1).remove(0);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["chainedFrom"], fetch.as_str(), "{report}");
    assert_eq!(report["origin"], "chain", "{report}");
    assert_eq!(
        report["params"],
        json!({"day": "2026-12-05", "Result": "fetched-2026-12-05"}),
        "{report}"
    );
    let log = aft.ok(&["jobs", "log", report["id"].as_str().unwrap()]);
    assert!(
        log.contains("report for 2026-12-05 after fetched-2026-12-05"),
        "{log}"
    );
    let cleanup = ended_jobs(&aft, "Cleanup", 1).remove(0);
    assert_eq!(cleanup["chainedFrom"], report["id"], "{cleanup}");
    let fetched = aft.ok(&["jobs", "show", &fetch]);
    assert!(
        fetched.contains("result:    fetched-2026-12-05"),
        "{fetched}"
    );

    // A dry run starts no chain: the real job queued after it (settled after it) does.
    let (status, body) = call(
        &svc.client(),
        Method::POST,
        &format!("{}/v1/jobs", svc.base()),
        Some((auth.0, &auth.1)),
        Some(&json!({"scriptName": "Fetch", "params": {"day": "dry"}, "dryRun": true})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    ended_jobs(&aft, "Fetch", 2);
    start_job(&svc, "Fetch", json!({"day": "2026-12-06"})).await;
    let reports = ended_jobs(&aft, "Report", 2);
    assert_eq!(reports[1]["params"]["day"], "2026-12-06", "{reports:?}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// The jobs of `script` in the store at `db`, oldest first, once `count` have ended.
fn ended_jobs_at(data: &std::path::Path, db: &str, script: &str, count: usize) -> Vec<Value> {
    poll(Duration::from_secs(90), || {
        let out = support::ok(support::aft_at(
            data,
            &[
                "--database",
                db,
                "jobs",
                "list",
                "--script",
                script,
                "--json",
            ],
        ));
        let mut jobs = serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone();
        jobs.reverse();
        let ended = jobs
            .iter()
            .filter(|j| !matches!(j["status"].as_str(), Some("queued" | "running")))
            .count();
        (jobs.len() >= count && ended == count).then_some(jobs)
    })
    .unwrap_or_else(|| panic!("{count} ended jobs of {script} did not appear"))
}

#[tokio::test]
async fn on_postgres_two_nodes_retry_once_and_a_waiting_retry_survives_their_restart() {
    let db = aft_store::testing::TempPostgres::create().await;
    let url = db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    for data in [&one, &two] {
        std::fs::create_dir_all(data).unwrap();
    }
    let at = |args: &[&str]| {
        let mut all = vec!["--database", url.as_str()];
        all.extend_from_slice(args);
        support::ok(support::aft_at(&one, &all))
    };
    let file = one.join("shaky.syncjs");
    std::fs::write(&file, r#"throw new Error("not yet");"#).unwrap();
    at(&["script", "push", "Shaky", file.to_str().unwrap()]);
    at(&[
        "script",
        "retry",
        "Shaky",
        "--attempts",
        "3",
        "--backoff",
        "fixed",
        "--delay",
        "4s",
    ]);
    let global = ["--database", url.as_str()];
    let mut nodes = vec![
        Service::start(&one, &global, &[]),
        Service::start(&two, &global, &[]),
    ];
    let first = start_job(&nodes[0], "Shaky", json!({"n": 1})).await;

    // The first attempt failed and its retry waits in the store: both nodes die.
    let waiting = poll(Duration::from_secs(30), || {
        let listed: Value = serde_json::from_str(&at(&["jobs", "list", "--json"])).unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["retryOf"] == first.as_str())
            .cloned()
    })
    .expect("no retry was queued");
    assert_eq!(waiting["status"], "queued", "{waiting}");
    assert!(waiting["notBefore"].is_string(), "{waiting}");
    for node in &mut nodes {
        node.kill9();
    }
    drop(nodes);
    let nodes = [
        Service::start(&one, &global, &[]),
        Service::start(&two, &global, &[]),
    ];

    let jobs = ended_jobs_at(&one, &url, "Shaky", 3);
    let attempts: Vec<i64> = jobs
        .iter()
        .map(|j| j["retryAttempt"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts, vec![1, 2, 3], "each attempt once: {jobs:?}");
    assert_eq!(
        jobs[1]["id"], waiting["id"],
        "the waiting retry is the one that ran"
    );
    for job in &jobs[1..] {
        assert_eq!(job["retryOf"], first.as_str(), "{job}");
        let gap = time(&job["startedAt"]) - time(&job["notBefore"]);
        assert!(
            gap.num_milliseconds() >= 0,
            "started before its time: {job}"
        );
    }
    drop(nodes);
    db.drop_database().await;
}

#[tokio::test]
async fn the_first_success_after_a_failure_is_a_recovery_and_the_next_one_is_quiet() {
    let aft = Aft::new();
    aft.push_script(
        "Toggle",
        r#"if (Param("fail") === "yes") throw new Error("asked to fail"); Log("fine");"#,
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/", listener.local_addr().unwrap());
    let received = webhook_sink(listener);
    aft.ok(&["script", "notify", "Toggle", "--webhook", &hook]);
    let svc = aft.serve();
    let mut events = Vec::new();
    // Settled in queue order: once a job's notification is in, the jobs before it are too.
    for (n, (fail, expected)) in [("no", 0), ("yes", 1), ("yes", 2), ("no", 3), ("no", 3)]
        .into_iter()
        .enumerate()
    {
        start_job(&svc, "Toggle", json!({"fail": fail})).await;
        ended_jobs(&aft, "Toggle", n + 1);
        while events.len() < expected {
            let (_, body) = received.recv_timeout(Duration::from_secs(30)).unwrap();
            events.push(body["event"].as_str().unwrap().to_string());
        }
    }
    assert!(
        received.recv_timeout(Duration::from_millis(1500)).is_err(),
        "a success after a success is quiet"
    );
    assert_eq!(events, vec!["failure", "failure", "recovery"], "{events:?}");
}
