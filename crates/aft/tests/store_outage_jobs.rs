//! The job queue through a database outage (issue 15, "every state change of a job is
//! retried until the store takes it"): two `aft serve` nodes share one PostgreSQL, reached
//! through a TCP relay this test cuts and restores while 200 short jobs run. Jobs end while
//! the database is away, claims are cut mid-flight, leases run out; afterwards every job
//! has ended exactly once as `succeeded` (one attempt, its one log line stored), none is
//! left `running`, both nodes run nothing, and nobody had to step in. Last, `aft jobs halt`
//! ends a job whose nodes are gone.

#[path = "support/node.rs"]
mod node;
#[path = "support/relay.rs"]
mod relay;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use aft_store::testing::TempPostgres;
use node::{Node, aft};
use relay::{Relay, split_address};
use serde_json::Value;
use support::free_port;

const JOBS: usize = 200;

impl Node {
    async fn post_job(&self, key: &str, n: usize) -> String {
        let resp = self
            .http
            .post(format!("{}/v1/jobs", self.base()))
            // A request the cut relay holds must not hang the test.
            .timeout(Duration::from_secs(30))
            .header("X-API-Key", key)
            .json(&serde_json::json!({"scriptName": "Short", "params": {"n": n.to_string()}}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 202, "{body}");
        body["jobId"].as_str().unwrap().to_string()
    }

    /// `GET path`: `(status, body)`; a transport error reads as status 0.
    async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let resp = match self
            .http
            .get(format!("{}{path}", self.base()))
            .timeout(Duration::from_secs(30))
            .header("X-API-Key", key)
            .send()
            .await
        {
            Ok(resp) => resp,
            Err(_) => return (0, Value::Null),
        };
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// Every job of the database, by status (through the relay-free URL, as an operator would).
fn statuses(admin: &Path, db: &str) -> Vec<Value> {
    let out = aft(
        admin,
        db,
        &[
            "jobs", "list", "--script", "Short", "--limit", "1000", "--json",
        ],
    );
    let list: Value = serde_json::from_str(&out).unwrap();
    list.as_array()
        .or_else(|| list["jobs"].as_array())
        .unwrap()
        .clone()
}

fn count(jobs: &[Value], status: &str) -> usize {
    jobs.iter().filter(|j| j["status"] == status).count()
}

/// Wait until at least `ended` jobs have ended.
async fn wait_until_ended(admin: &Path, db: &str, ended: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let jobs = statuses(admin, db);
        let done = jobs
            .iter()
            .filter(|j| !matches!(j["status"].as_str(), Some("queued" | "running")))
            .count();
        if done >= ended {
            return jobs;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {ended} jobs ended within {within:?}: {} running, {} queued",
            count(&jobs, "running"),
            count(&jobs, "queued")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two nodes, 200 jobs, and one database outage of each length in `outages`, each started
/// once the jobs ended so far reach the next share of the 200.
async fn jobs_survive_outages(outages: &[Duration]) {
    let db = TempPostgres::create().await;
    let (upstream, _) = split_address(&db.url, 0);
    let relay = Relay::start(upstream);
    let (_, relayed) = split_address(&db.url, relay.port);
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin");
    std::fs::create_dir_all(&admin).unwrap();
    // A short lease: every outage here outlasts it, so leases run out while the nodes are
    // cut off, and only the retries and the reaper's patience keep the outcomes true.
    aft(
        &admin,
        &db.url,
        &["settings", "set", "job-lease-seconds", "4"],
    );
    let script = admin.join("short.syncjs");
    std::fs::write(&script, r#"Sleep(300); Log("ran " + Param("n"));"#).unwrap();
    aft(
        &admin,
        &db.url,
        &["script", "push", "Short", script.to_str().unwrap()],
    );
    let key = aft(
        &admin,
        &db.url,
        &["apikey", "create", "--name", "ci", "--allow", "127.0.0.1"],
    )
    .trim()
    .to_string();
    let mut nodes = [
        Node::start(&dir.path().join("node0"), &relayed, free_port()),
        Node::start(&dir.path().join("node1"), &relayed, free_port()),
    ];

    let mut ids = Vec::with_capacity(JOBS);
    for n in 0..JOBS {
        ids.push(nodes[n % 2].post_job(&key, n).await);
    }
    let started = Instant::now();
    for (i, outage) in outages.iter().enumerate() {
        // Cut while jobs run and others wait: ends, log lines and claims are in flight.
        let share = JOBS * (i + 1) / (outages.len() + 2);
        let jobs = wait_until_ended(&admin, &db.url, share, Duration::from_secs(120)).await;
        let running = count(&jobs, "running");
        relay.cut();
        eprintln!(
            "{:?}: database cut for {outage:?} with {running} jobs running",
            started.elapsed()
        );
        tokio::time::sleep(*outage).await;
        relay.restore();
    }
    let jobs = wait_until_ended(&admin, &db.url, JOBS, Duration::from_secs(120)).await;
    eprintln!("{:?}: all {JOBS} jobs ended", started.elapsed());

    // Exactly once, with the true outcome, and the log kept.
    assert_eq!(jobs.len(), JOBS);
    for job in &jobs {
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "ran once: {job}");
        assert!(job["leaseUntil"].is_null(), "{job}");
    }
    for (n, id) in ids.iter().enumerate() {
        let (status, log) = nodes[(n + 1) % 2]
            .get(&format!("/v1/jobs/{id}/log"), &key)
            .await;
        assert_eq!(status, 200, "{log}");
        let ran: Vec<&Value> = log["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with("ran ")))
            .collect();
        assert_eq!(ran.len(), 1, "job {n}: {log}");
        assert_eq!(ran[0]["message"], format!("ran {n}"), "{log}");
    }
    // Neither node thinks it still runs something.
    for node in &nodes {
        let (status, health) = node.get("/v1/health", &key).await;
        assert_eq!(status, 200, "{health}");
        assert_eq!(health["runningJobs"], 0, "{health}");
    }

    // A job whose nodes are gone: `aft jobs halt` ends it once its lease has run out (a
    // halt request nobody would act on is not left pending).
    let forever = admin.join("forever.syncjs");
    std::fs::write(&forever, "Sleep(600000);").unwrap();
    aft(
        &admin,
        &db.url,
        &["script", "push", "Forever", forever.to_str().unwrap()],
    );
    let stuck = {
        let resp = nodes[0]
            .http
            .post(format!("{}/v1/jobs", nodes[0].base()))
            .header("X-API-Key", &key)
            .json(&serde_json::json!({"scriptName": "Forever"}))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        body["jobId"].as_str().unwrap().to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while aft_json(&admin, &db.url, &stuck)["status"] != "running" {
        assert!(Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for node in &mut nodes {
        node.kill9();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let halted = loop {
        aft(&admin, &db.url, &["jobs", "halt", &stuck]);
        let job = aft_json(&admin, &db.url, &stuck);
        if job["status"] != "running" {
            break job;
        }
        assert!(Instant::now() < deadline, "halt did not end it: {job}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(halted["status"], "halted", "{halted}");
    assert!(halted["finishedAt"].is_string(), "{halted}");
    drop(nodes);
    db.drop_database().await;
}

/// `aft jobs show ID --json`.
fn aft_json(admin: &Path, db: &str, id: &str) -> Value {
    serde_json::from_str(&aft(admin, db, &["jobs", "show", id, "--json"])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_end_200_jobs_exactly_once_through_outages_of_5_and_45_seconds() {
    jobs_survive_outages(&[Duration::from_secs(5), Duration::from_secs(45)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_end_200_jobs_exactly_once_through_an_outage_of_120_seconds() {
    jobs_survive_outages(&[Duration::from_secs(120)]).await;
}
