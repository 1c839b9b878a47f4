//! Cluster tests: three real `aft serve` processes on loopback sharing one fresh database on
//! the real PostgreSQL server of `ci/peers/postgres.sh` (`AFT_TEST_POSTGRES_URL`), called
//! over real HTTPS. They pin "every job runs exactly once" and "a dead node's running job is
//! interrupted within the lease time while the others carry on", "a per-second schedule over
//! a minute fires each slot once" and "a job's live log can be followed from any node".

#[path = "support/node.rs"]
mod node;
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aft_store::testing::TempPostgres;
use node::{Node, aft};
use serde_json::Value;
use support::free_port;

/// The server's default lease (`aft_server::runner::DEFAULT_LEASE`) plus two housekeeping rounds (5 s
/// each) and slack for a loaded machine: a dead node's job must be interrupted by then.
const LEASE_PLUS_REAP: Duration = Duration::from_secs(30 + 10 + 10);

fn push_script(data: &Path, db: &str, name: &str, body: &str) {
    let file = data.join(format!("{name}.syncjs"));
    std::fs::write(&file, body).unwrap();
    aft(data, db, &["script", "push", name, file.to_str().unwrap()]);
}

impl Node {
    fn pid(&self) -> i64 {
        i64::from(self.child.id())
    }

    fn local_token(&self) -> String {
        let info: Value =
            serde_json::from_slice(&std::fs::read(self.data.join("service.json")).unwrap())
                .unwrap();
        info["token"].as_str().unwrap().to_string()
    }

    async fn post_job(&self, key: &str, body: String) -> String {
        let resp = self
            .http
            .post(format!("{}/v1/jobs", self.base()))
            .header("Content-Type", "application/json")
            .header("X-API-Key", key)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 202, "POST /v1/jobs on {}: {text}", self.base());
        let body: Value = serde_json::from_str(&text).unwrap();
        body["jobId"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str, auth: (&str, &str)) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base()))
            .header(auth.0, auth.1)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "GET {path} on {}: {text}", self.base());
        serde_json::from_str(&text).unwrap()
    }

    async fn nodes(&self) -> Vec<Value> {
        let token = self.local_token();
        let nodes = self.get("/v1/nodes", ("X-Aft-Local-Token", &token)).await;
        nodes.as_array().unwrap().clone()
    }
}

/// A fresh database and three nodes on it (CLI set-up commands use a data dir of their own).
struct Cluster {
    db: Option<TempPostgres>,
    /// Keeps the nodes' data directories until the cluster is dropped.
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
    key: String,
}

impl Cluster {
    async fn start(scripts: &[(&str, &str)]) -> Cluster {
        Cluster::start_with(scripts, &[], &[]).await
    }

    /// A cluster with extra `aft settings set` pairs, and the named scripts stored retry-safe.
    async fn start_with(
        scripts: &[(&str, &str)],
        settings: &[(&str, &str)],
        retry_safe: &[&str],
    ) -> Cluster {
        let db = TempPostgres::create().await;
        let dir = tempfile::tempdir().unwrap();
        let admin = dir.path().join("admin");
        std::fs::create_dir_all(&admin).unwrap();
        // Migrate once before the nodes race to do it.
        aft(
            &admin,
            &db.url,
            &["settings", "set", "max-concurrent-jobs", "6"],
        );
        for (key, value) in settings {
            aft(&admin, &db.url, &["settings", "set", key, value]);
        }
        for (name, body) in scripts {
            push_script(&admin, &db.url, name, body);
            if retry_safe.contains(name) {
                let file = admin.join(format!("{name}.syncjs"));
                aft(
                    &admin,
                    &db.url,
                    &[
                        "script",
                        "push",
                        name,
                        file.to_str().unwrap(),
                        "--retry-safe",
                    ],
                );
            }
        }
        let key = aft(
            &admin,
            &db.url,
            &["apikey", "create", "--name", "ci", "--allow", "127.0.0.1"],
        )
        .trim()
        .to_string();
        let nodes = (0..3)
            .map(|i| Node::start(&dir.path().join(format!("node{i}")), &db.url, free_port()))
            .collect();
        Cluster {
            db: Some(db),
            _dir: dir,
            nodes,
            key,
        }
    }

    fn url(&self) -> String {
        self.db.as_ref().unwrap().url.clone()
    }

    /// Stop every node, then drop the database.
    async fn finish(mut self) {
        self.nodes.clear();
        if let Some(db) = self.db.take() {
            db.drop_database().await;
        }
    }
}

/// Poll a job from `node` until it has ended; its final JSON.
async fn wait_ended(node: &Node, key: &str, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let job = node
            .get(&format!("/v1/jobs/{id}"), ("X-API-Key", key))
            .await;
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} did not end: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_jobs_submitted_to_three_nodes_each_run_exactly_once() {
    const JOBS: usize = 1000;
    const SUBMITTERS: usize = 12;
    let cluster = Cluster::start(&[("Count", r#"Log("ran " + Param("n"));"#)]).await;
    let Cluster {
        db,
        _dir,
        nodes,
        key,
    } = cluster;
    let nodes = Arc::new(nodes);
    let started = Instant::now();

    // Job n goes to node n % 3, from several submitters at once.
    let mut submitters = tokio::task::JoinSet::new();
    for s in 0..SUBMITTERS {
        let nodes = nodes.clone();
        let key = key.clone();
        submitters.spawn(async move {
            let mut ids = Vec::new();
            for n in (s..JOBS).step_by(SUBMITTERS) {
                let body = format!(r#"{{"scriptName":"Count","params":{{"n":"{n}"}}}}"#);
                ids.push((n, nodes[n % 3].post_job(&key, body).await));
            }
            ids
        });
    }
    let mut ids = vec![String::new(); JOBS];
    while let Some(batch) = submitters.join_next().await {
        for (n, id) in batch.unwrap() {
            ids[n] = id;
        }
    }
    let submitted = started.elapsed();

    // Read each job and its log back from a node other than the one it was sent to.
    let mut per_node = std::collections::HashMap::<String, usize>::new();
    for (n, id) in ids.iter().enumerate() {
        let reader = &nodes[(n + 1) % 3];
        let job = wait_ended(reader, &key, id, Duration::from_secs(90)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "claimed exactly once: {job}");
        let node_id = job["nodeId"].as_str().expect("an ended job names its node");
        *per_node.entry(node_id.to_string()).or_default() += 1;
        let log = nodes[(n + 2) % 3]
            .get(&format!("/v1/jobs/{id}/log"), ("X-API-Key", &key))
            .await;
        let lines = log["lines"].as_array().unwrap();
        assert_eq!(
            lines.len(),
            1,
            "exactly one run wrote exactly one line: {log}"
        );
        assert_eq!(lines[0]["message"], format!("ran {n}"), "{log}");
    }
    let ended = started.elapsed();
    eprintln!(
        "{JOBS} jobs: submitted in {submitted:?}, all ended in {ended:?}; per node {per_node:?}"
    );

    let known: Vec<String> = nodes[0]
        .nodes()
        .await
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(known.len(), 3, "three nodes registered: {known:?}");
    for node_id in per_node.keys() {
        assert!(
            known.contains(node_id),
            "{node_id} is not a registered node"
        );
    }
    assert!(
        per_node.len() > 1,
        "the jobs spread over more than one node: {per_node:?}"
    );
    assert_eq!(per_node.values().sum::<usize>(), JOBS);

    drop(
        Arc::try_unwrap(nodes)
            .ok()
            .expect("no submitter holds the nodes"),
    );
    Cluster {
        db,
        _dir,
        nodes: Vec::new(),
        key,
    }
    .finish()
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_running_a_job_has_it_interrupted_within_the_lease_and_rejoins_on_restart() {
    let mut cluster = Cluster::start(&[
        ("Forever", r#"Log("started"); WaitForHaltSignal();"#),
        ("Hello", r#"Log("hello");"#),
    ])
    .await;
    let key = cluster.key.clone();
    let auth = ("X-API-Key", key.as_str());

    let forever = cluster.nodes[0]
        .post_job(&key, r#"{"scriptName":"Forever"}"#.to_string())
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let running = loop {
        let job = cluster.nodes[1]
            .get(&format!("/v1/jobs/{forever}"), auth)
            .await;
        if job["status"] == "running" {
            break job;
        }
        assert!(Instant::now() < deadline, "the job never started: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let runner_id = running["nodeId"].as_str().unwrap().to_string();
    let nodes = cluster.nodes[0].nodes().await;
    let runner_pid = nodes
        .iter()
        .find(|n| n["id"] == runner_id.as_str())
        .unwrap_or_else(|| panic!("{runner_id} is not in GET /v1/nodes: {nodes:?}"))["pid"]
        .as_i64()
        .unwrap();
    let victim = cluster
        .nodes
        .iter()
        .position(|n| n.pid() == runner_pid)
        .expect("the running node is one of ours");
    let survivor = (victim + 1) % 3;

    let killed_at = Instant::now();
    cluster.nodes[victim].kill9();
    let job = wait_ended(&cluster.nodes[survivor], &key, &forever, LEASE_PLUS_REAP).await;
    eprintln!(
        "the dead node's job ended {:?} after kill -9",
        killed_at.elapsed()
    );
    assert_eq!(job["status"], "interrupted", "{job}");
    assert!(
        job["error"].as_str().unwrap_or_default().contains("lease"),
        "interrupted by the reaper, not by the dead node's own restart: {job}"
    );

    // The other nodes carry on: a new job sent to the survivors runs on one of them.
    for other in [survivor, (victim + 2) % 3] {
        let id = cluster.nodes[other]
            .post_job(&key, r#"{"scriptName":"Hello"}"#.to_string())
            .await;
        let job = wait_ended(&cluster.nodes[other], &key, &id, Duration::from_secs(30)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_ne!(job["nodeId"], runner_id.as_str(), "{job}");
    }

    // The killed node restarts on the same data dir and rejoins under the same id.
    let data = cluster.nodes[victim].data.clone();
    let port = cluster.nodes[victim].port;
    let url = cluster.url();
    cluster.nodes[victim] = Node::start(&data, &url, port);
    let new_pid = cluster.nodes[victim].pid();
    let nodes = cluster.nodes[survivor].nodes().await;
    let back = nodes
        .iter()
        .find(|n| n["id"] == runner_id.as_str())
        .unwrap_or_else(|| panic!("the restarted node is missing: {nodes:?}"));
    assert_eq!(back["pid"], new_pid, "{back}");
    assert!(back["stoppedAt"].is_null(), "{back}");
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    let id = cluster.nodes[victim]
        .post_job(&key, r#"{"scriptName":"Hello"}"#.to_string())
        .await;
    let job = wait_ended(&cluster.nodes[survivor], &key, &id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retry_safe_job_of_a_killed_node_is_queued_again_and_finishes_on_another_node() {
    // A short lease (the `job-lease-seconds` setting) so the take-over comes quickly.
    let mut cluster = Cluster::start_with(
        &[(
            "Idempotent",
            r#"Log("started"); for (var i = 0; i < 25 && !HaltSignalReceived; i++) Sleep(200); Log("finished");"#,
        )],
        &[("job-lease-seconds", "4")],
        &["Idempotent"],
    )
    .await;
    let key = cluster.key.clone();
    let auth = ("X-API-Key", key.as_str());
    let id = cluster.nodes[0]
        .post_job(&key, r#"{"scriptName":"Idempotent"}"#.to_string())
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let first_node = loop {
        let job = cluster.nodes[1].get(&format!("/v1/jobs/{id}"), auth).await;
        if job["status"] == "running" {
            break job["nodeId"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the job never started: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let nodes = cluster.nodes[0].nodes().await;
    let pid = nodes
        .iter()
        .find(|n| n["id"] == first_node.as_str())
        .expect("the running node is listed")["pid"]
        .as_i64()
        .unwrap();
    let victim = cluster
        .nodes
        .iter()
        .position(|n| n.pid() == pid)
        .expect("the running node is one of ours");
    let survivor = (victim + 1) % 3;
    let killed_at = Instant::now();
    cluster.nodes[victim].kill9();

    // 4 s lease + a renewal round + the 5 s run, with slack for a loaded machine.
    let job = wait_ended(&cluster.nodes[survivor], &key, &id, Duration::from_secs(40)).await;
    eprintln!(
        "the retry-safe job ended {:?} after kill -9",
        killed_at.elapsed()
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["attempts"], 2,
        "run once on the dead node, once again: {job}"
    );
    assert_ne!(job["nodeId"], first_node.as_str(), "{job}");
    cluster.finish().await;
}

impl Node {
    /// A request with the node's local token (an admin caller); the JSON reply of `want`.
    async fn admin(&self, method: reqwest::Method, path: &str, body: Value, want: u16) -> Value {
        let resp = self
            .http
            .request(method.clone(), format!("{}{path}", self.base()))
            .header("X-Aft-Local-Token", self.local_token())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(status, want, "{method} {path} on {}: {text}", self.base());
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The index in `nodes` of the node whose registered id is `node_id`.
    async fn index_of(&self, nodes: &[Node], node_id: &str) -> usize {
        let registered = self.nodes().await;
        let pid = registered
            .iter()
            .find(|n| n["id"] == node_id)
            .unwrap_or_else(|| panic!("{node_id} is not in GET /v1/nodes: {registered:?}"))["pid"]
            .as_i64()
            .unwrap();
        nodes
            .iter()
            .position(|n| n.pid() == pid)
            .expect("the node is one of ours")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_second_schedule_over_a_minute_on_three_nodes_fires_each_slot_once() {
    const RUN: Duration = Duration::from_secs(60);
    let cluster = Cluster::start(&[("Tick", r#"Log("tick");"#)]).await;
    let nodes = &cluster.nodes;
    // `allow`: a run slowed by the loaded machine must not turn the next slot into a skip.
    nodes[0]
        .admin(
            reqwest::Method::POST,
            "/v1/schedules",
            serde_json::json!({"name": "every-second", "script": "Tick",
                "cron": "* * * * * *", "overlap": "allow"}),
            201,
        )
        .await;
    tokio::time::sleep(RUN).await;
    nodes[1]
        .admin(
            reqwest::Method::PUT,
            "/v1/schedules/every-second/enabled",
            serde_json::json!({"enabled": false}),
            200,
        )
        .await;
    // A pass that read the schedule before it was disabled may still decide one slot.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let slots = nodes[2]
        .admin(
            reqwest::Method::GET,
            "/v1/schedules/every-second/slots?limit=1000",
            Value::Null,
            200,
        )
        .await;
    let mut slots = slots.as_array().unwrap().clone();
    slots.reverse();
    assert!(
        slots.len() >= 55,
        "about 60 slots in 60 s, got {}: {slots:?}",
        slots.len()
    );
    let times: Vec<i64> = slots
        .iter()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s["slotTime"].as_str().unwrap())
                .unwrap()
                .timestamp()
        })
        .collect();
    for pair in times.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1,
            "each second between the first and last slot has one row: {times:?}"
        );
    }
    assert!(
        slots.iter().all(|s| s["status"] == "fired"),
        "every slot fired: {slots:?}"
    );
    let fired: std::collections::HashSet<String> = slots
        .iter()
        .map(|s| {
            s["jobId"]
                .as_str()
                .expect("a fired slot names its job")
                .to_string()
        })
        .collect();
    assert_eq!(fired.len(), slots.len(), "one job per slot: {slots:?}");

    let registered: Vec<String> = nodes[0]
        .nodes()
        .await
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    let mut deciders = std::collections::HashMap::<String, usize>::new();
    for slot in &slots {
        let node_id = slot["nodeId"].as_str().unwrap();
        assert!(registered.iter().any(|r| r == node_id), "{slot}");
        *deciders.entry(node_id.to_string()).or_default() += 1;
    }

    // The slots' jobs, and no other job of the script: each ran once and succeeded. Jobs
    // queued by a schedule are not an API key's, so they are read as the admin.
    let deadline = Instant::now() + Duration::from_secs(30);
    let jobs = loop {
        let page = nodes[1]
            .admin(
                reqwest::Method::GET,
                "/v1/jobs?script=Tick&limit=1000",
                Value::Null,
                200,
            )
            .await;
        let jobs = page["jobs"].as_array().unwrap().clone();
        let pending = jobs
            .iter()
            .filter(|j| matches!(j["status"].as_str(), Some("queued" | "running")))
            .count();
        if pending == 0 {
            break jobs;
        }
        assert!(Instant::now() < deadline, "{pending} jobs did not end");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let queued: std::collections::HashSet<String> = jobs
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(queued.len(), jobs.len());
    assert_eq!(queued, fired, "the nodes queued exactly the slots' jobs");
    let mut runners = std::collections::HashMap::<String, usize>::new();
    for job in &jobs {
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "claimed exactly once: {job}");
        *runners
            .entry(job["nodeId"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    // Which node decides a slot is a race by design (the first to insert its row), so the
    // spread is reported, not asserted.
    eprintln!(
        "{} slots; decided per node {deciders:?}; run per node {runners:?}",
        slots.len()
    );
    cluster.finish().await;
}

/// One server-sent event: its `event` name and `data`.
fn parse_event(block: &str) -> Option<(String, String)> {
    let mut event = String::from("message");
    let mut data = Vec::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
        }
    }
    // Comment-only blocks (keep-alives) carry no data.
    (!data.is_empty()).then(|| (event, data.join("\n")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_log_of_a_job_is_followed_from_another_node_while_it_runs() {
    let cluster = Cluster::start(&[(
        "Ticker",
        r#"for (var i = 0; i < 6; i++) { Log("tick " + i); Sleep(400); }"#,
    )])
    .await;
    let key = cluster.key.clone();
    let nodes = &cluster.nodes;
    let id = nodes[0]
        .post_job(&key, r#"{"scriptName":"Ticker"}"#.to_string())
        .await;
    // Any node may claim the job: follow it from one that does not run it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let runner_id = loop {
        let job = nodes[0]
            .get(&format!("/v1/jobs/{id}"), ("X-API-Key", &key))
            .await;
        if let Some(node_id) = job["nodeId"].as_str() {
            break node_id.to_string();
        }
        assert!(Instant::now() < deadline, "the job never started: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let runner = nodes[0].index_of(nodes, &runner_id).await;
    let follower = &nodes[(runner + 1) % 3];
    let checker = &nodes[(runner + 2) % 3];

    let mut resp = follower
        .http
        .get(format!("{}/v1/jobs/{id}/log", follower.base()))
        .header("X-API-Key", &key)
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut buf = String::new();
    let mut lines: Vec<(Instant, Value)> = Vec::new();
    let mut status_at_first_line = Value::Null;
    let end = 'stream: loop {
        let chunk = tokio::time::timeout(Duration::from_secs(30), resp.chunk())
            .await
            .expect("the stream went quiet for 30 s")
            .unwrap()
            .expect("the stream closed without an end event");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(at) = buf.find("\n\n") {
            let block: String = buf.drain(..at + 2).collect();
            let Some((event, data)) = parse_event(&block) else {
                continue;
            };
            let data: Value = serde_json::from_str(&data).unwrap();
            match event.as_str() {
                "line" => {
                    if lines.is_empty() {
                        let job = checker
                            .get(&format!("/v1/jobs/{id}"), ("X-API-Key", &key))
                            .await;
                        status_at_first_line = job["status"].clone();
                    }
                    lines.push((Instant::now(), data));
                }
                "end" => break 'stream (Instant::now(), data),
                other => panic!("unexpected event {other}: {data}"),
            }
        }
    };
    let messages: Vec<&str> = lines
        .iter()
        .map(|(_, l)| l["message"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..6).map(|i| format!("tick {i}")).collect();
    assert_eq!(messages, expected, "every line once, in order");
    let numbers: Vec<i64> = lines
        .iter()
        .map(|(_, l)| l["line"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=6).collect::<Vec<_>>());
    assert_eq!(
        status_at_first_line, "running",
        "the first line arrived while the job ran"
    );
    // Six lines 400 ms apart: streamed as written, not delivered together at the end.
    let spread = lines[5].0 - lines[0].0;
    assert!(
        spread >= Duration::from_millis(1000),
        "lines arrived over {spread:?}, not live"
    );
    let (ended_at, job) = end;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["id"], id.as_str(), "{job}");
    assert!(ended_at >= lines[5].0);
    cluster.finish().await;
}
