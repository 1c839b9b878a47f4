//! `AzureClient` end to end against Azurite (ci/peers/azurite.sh), its key from a secret.

mod clients_support;

use aft_engine::MemoryHost;
use clients_support::{js, peer_env, run_end_to_end};

#[test]
fn azure_client_runs_the_end_to_end_script() {
    let make = format!(
        "(() => {{ const c = new AzureClient(); c.Endpoint = {}; c.AccountName = {}; c.Container = {}; \
         c.AccountKeyFromSecret = 'azure-key'; return c; }})()",
        js(&peer_env("AFT_TEST_AZURE_ENDPOINT")),
        js(&peer_env("AFT_TEST_AZURE_ACCOUNT")),
        js(&peer_env("AFT_TEST_AZURE_CONTAINER")),
    );
    run_end_to_end(
        &make,
        MemoryHost::new().with_secret("azure-key", &peer_env("AFT_TEST_AZURE_KEY")),
    );
}
