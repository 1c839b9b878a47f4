//! `GCSClient` end to end against fake-gcs-server (ci/peers/fakegcs.sh).

mod clients_support;

use aft_engine::MemoryHost;
use clients_support::{js, peer_env, run_end_to_end};

#[test]
fn gcs_client_runs_the_end_to_end_script() {
    let make = format!(
        "(() => {{ const c = new GCSClient(); c.Endpoint = {}; c.Bucket = {}; return c; }})()",
        js(&peer_env("AFT_TEST_GCS_ENDPOINT")),
        js(&peer_env("AFT_TEST_GCS_BUCKET")),
    );
    run_end_to_end(&make, MemoryHost::new());
}
