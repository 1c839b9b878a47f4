#!/usr/bin/env bash
# Azure Blob (Azurite) on 127.0.0.1:10000 for the Azure backend's conformance suite, with
# Azurite's published development account, and the test container created here.
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
port=10000 container=aft-test
account=devstoreaccount1
# Azurite's well-known development key (public, in Microsoft's documentation).
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
mkdir -p "$state/azurite"
"$root/.ci-state/npm/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort $port \
    --location "$state/azurite" --silent --skipApiVersionCheck --loose > "$state/azurite/log" 2>&1 &
echo $! > "$state/azurite.pid"
wait_port 127.0.0.1 $port
python3 - "$port" "$account" "$key" "$container" <<'PY'
# Create the container with a Shared Key signed request (no SDK needed).
import base64, hashlib, hmac, sys, urllib.request
from email.utils import formatdate
port, account, key, container = sys.argv[1:]
date = formatdate(usegmt=True)
version = "2021-08-06"
canon_headers = f"x-ms-date:{date}\nx-ms-version:{version}\n"
canon_resource = f"/{account}/{account}/{container}\nrestype:container"
to_sign = "PUT\n" + "\n" * 11 + canon_headers + canon_resource
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(
    f"http://127.0.0.1:{port}/{account}/{container}?restype=container", method="PUT",
    headers={"x-ms-date": date, "x-ms-version": version, "Content-Length": "0",
             "Authorization": f"SharedKey {account}:{sig}"})
try:
    urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    if e.code != 409:  # already exists
        raise
PY
echo "export AFT_TEST_AZURE_ENDPOINT=http://127.0.0.1:$port/$account"
echo "export AFT_TEST_AZURE_ACCOUNT=$account"
echo "export AFT_TEST_AZURE_KEY=$key"
echo "export AFT_TEST_AZURE_CONTAINER=$container"
