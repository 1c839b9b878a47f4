//! aft on PostgreSQL over TLS, through the real binary: `sslmode=verify-full` with the
//! server's CA connects (as a role the server accepts only over TLS), a certificate from
//! another CA is refused, and a plain connection for that role is refused by the server.

mod support;

use std::time::{Duration, Instant};

use support::{Aft, peer, text};

/// The TLS-only role's URL for the temporary database `db` (made on the peer).
fn tls_url(db: &aft_store::testing::TempPostgres, query: &str) -> String {
    let name = db.url.rsplit('/').next().unwrap();
    let base = peer("AFT_TEST_POSTGRES_TLS_URL");
    let server = base.rsplit_once('/').unwrap().0;
    format!("{server}/{name}?{query}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_connects_over_tls_and_refuses_an_untrusted_certificate() {
    let db = aft_store::testing::TempPostgres::create().await;
    let aft = Aft::new();
    let ca = peer("AFT_TEST_POSTGRES_CA");
    let other_ca = peer("AFT_TEST_POSTGRES_OTHER_CA");

    let verified = tls_url(&db, &format!("sslmode=verify-full&sslrootcert={ca}"));
    aft.ok(&[
        "--database",
        &verified,
        "settings",
        "set",
        "allow-cli-run",
        "true",
    ]);
    let got = aft.ok(&["--database", &verified, "settings", "get", "allow-cli-run"]);
    assert_eq!(got.trim(), "true");
    let required = tls_url(&db, "sslmode=require");
    assert_eq!(
        aft.ok(&["--database", &required, "settings", "get", "allow-cli-run"])
            .trim(),
        "true"
    );

    // The server refuses this role without TLS: the commands above were encrypted.
    let plain = tls_url(&db, "sslmode=disable");
    let refused = aft.fails(
        &["--database", &plain, "settings", "get", "allow-cli-run"],
        1,
    );
    assert!(refused.contains("no encryption"), "{refused}");

    // A server certificate the given CA did not sign is refused, quickly and by name.
    let untrusted = tls_url(&db, &format!("sslmode=verify-full&sslrootcert={other_ca}"));
    let started = Instant::now();
    let out = aft.run(&["--database", &untrusted, "settings", "get", "allow-cli-run"]);
    let message = text(&out);
    assert_eq!(out.status.code(), Some(1), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        message.to_lowercase().contains("certificate") || message.to_lowercase().contains("tls"),
        "{message}"
    );
    db.drop_database().await;
}
