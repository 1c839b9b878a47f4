//! The audit chain with several writers at once on the real PostgreSQL server of
//! `ci/peers/postgres.sh` (`AFT_TEST_POSTGRES_URL`): two `aft serve` nodes sharing one fresh
//! database take concurrent changes over HTTPS while CLI commands write the same database
//! directly; every change has its one record and the chain verifies.

mod support;

use aft_store::testing::TempPostgres;
use futures::future::join_all;
use serde_json::{Value, json};
use support::{Aft, Service, aft_at, ok};

const PER_NODE: usize = 25;
const FROM_CLI: usize = 5;

#[tokio::test]
async fn two_nodes_and_the_cli_writing_at_once_keep_one_valid_chain() {
    let db = TempPostgres::create().await;
    let global = ["--database", db.url.as_str()];
    let (a, b, cli) = (Aft::new(), Aft::new(), Aft::new());
    let nodes = [
        Service::start(a.data(), &global, &[]),
        Service::start(b.data(), &global, &[]),
    ];

    let mut calls = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let http = node.client();
        let base = node.base();
        let token = node.local_token();
        for i in 0..PER_NODE {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            calls.push(async move {
                let resp = http
                    .post(format!("{base}/v1/scripts"))
                    .header("X-Aft-Local-Token", token)
                    .json(&json!({"name": format!("node{n}-{i}"), "body": "Log(1);"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status().as_u16(), 201);
            });
        }
    }
    // CLI commands writing the database directly, at the same time, from threads.
    let file = cli.write("s.syncjs", "Log(1);");
    let pushes: Vec<_> = (0..FROM_CLI)
        .map(|i| {
            let (data, url, file) = (cli.data().to_path_buf(), db.url.clone(), file.clone());
            std::thread::spawn(move || {
                ok(aft_at(
                    &data,
                    &[
                        "--database",
                        &url,
                        "script",
                        "push",
                        &format!("cli-{i}"),
                        &file,
                    ],
                ));
            })
        })
        .collect();
    join_all(calls).await;
    for p in pushes {
        p.join().unwrap();
    }

    let total = 2 * PER_NODE + FROM_CLI;
    let verified = ok(aft_at(
        cli.data(),
        &["--database", &db.url, "audit", "verify"],
    ));
    assert!(
        verified.contains(&format!("audit trail intact: {total} records")),
        "{verified}"
    );
    let records: Value = serde_json::from_str(&ok(aft_at(
        cli.data(),
        &[
            "--database",
            &db.url,
            "audit",
            "list",
            "--action",
            "script.created",
            "--limit",
            "1000",
            "--json",
        ],
    )))
    .unwrap();
    let mut targets: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    targets.sort();
    targets.dedup();
    assert_eq!(targets.len(), total, "one record per script: {targets:?}");
    let from_cli = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["actor"] == "local" && r["address"] == "local")
        .count();
    assert_eq!(from_cli, FROM_CLI);

    drop(nodes);
    db.drop_database().await;
}
