//! `S3Client` end to end against moto (ci/peers/moto.sh), its key read from a secret.

mod clients_support;

use aft_engine::MemoryHost;
use clients_support::{js, peer_env, run, run_end_to_end};

fn s3_client() -> String {
    format!(
        "(() => {{ const c = new S3Client(); c.Endpoint = {}; c.Bucket = {}; c.Region = {}; \
         c.APIKeyID = {}; c.APIKeySecretFromSecret = 's3-secret'; return c; }})()",
        js(&peer_env("AFT_TEST_S3_ENDPOINT")),
        js(&peer_env("AFT_TEST_S3_BUCKET")),
        js(&peer_env("AFT_TEST_S3_REGION")),
        js(&peer_env("AFT_TEST_S3_KEY_ID")),
    )
}

fn host() -> MemoryHost {
    MemoryHost::new().with_secret("s3-secret", &peer_env("AFT_TEST_S3_SECRET"))
}

#[test]
fn s3_client_runs_the_end_to_end_script() {
    run_end_to_end(&s3_client(), host());
}

#[test]
fn s3_connect_to_a_missing_bucket_fails_with_the_bucket_in_last_error() {
    let ran = run(
        &format!(
            "const c = {}; c.Bucket = 'no-such-bucket-aft'; \
             check(c.Connect() === false, 'Connect must fail'); \
             check(c.LastError().indexOf('no-such-bucket-aft') >= 0, c.LastError());",
            s3_client()
        ),
        host(),
    );
    ran.assert_ok();
}

#[test]
fn s3_secret_reference_to_a_missing_secret_names_it() {
    let ran = run(
        &format!(
            "const c = {}; c.APIKeySecretFromSecret = 'not-there'; \
             check(c.Connect() === false && c.LastError().indexOf('not-there') >= 0, c.LastError());",
            s3_client()
        ),
        host(),
    );
    ran.assert_ok();
}
