#!/usr/bin/env bash
# S3 (moto) on 127.0.0.1:5000 for the S3 backend's conformance suite; path-style, us-east-1,
# any access key accepted. Creates the test bucket.
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
port=5000 bucket=aft-test
mkdir -p "$state/moto"
moto_server -H 127.0.0.1 -p $port > "$state/moto/log" 2>&1 &
echo $! > "$state/moto.pid"
wait_port 127.0.0.1 $port
curl -sf -X PUT "http://127.0.0.1:$port/$bucket" > /dev/null
echo "export AFT_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
echo "export AFT_TEST_S3_BUCKET=$bucket"
echo "export AFT_TEST_S3_REGION=us-east-1"
echo "export AFT_TEST_S3_KEY_ID=aft-test-key"
echo "export AFT_TEST_S3_SECRET=aft-test-secret"
