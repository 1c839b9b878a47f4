#!/usr/bin/env bash
# WebDAV (wsgidav + cheroot) on 127.0.0.1:8081 for the WebDAV backend's conformance suite,
# serving a fresh folder with HTTP basic auth.
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
port=8081 user=aft pass=davpass
dir=$state/wsgidav
mkdir -p "$dir/root"
cat > "$dir/wsgidav.yaml" <<YAML
host: 127.0.0.1
port: $port
provider_mapping:
  "/": "$dir/root"
http_authenticator:
  domain_controller: null
  accept_basic: true
  accept_digest: false
  default_to_digest: false
simple_dc:
  user_mapping:
    "*":
      "$user":
        password: "$pass"
verbose: 1
logging:
  enable_loggers: []
YAML
wsgidav --config "$dir/wsgidav.yaml" > "$dir/log" 2>&1 &
echo $! > "$state/wsgidav.pid"
wait_port 127.0.0.1 $port
echo "export AFT_TEST_WEBDAV_URL=http://127.0.0.1:$port"
echo "export AFT_TEST_WEBDAV_USER=$user"
echo "export AFT_TEST_WEBDAV_PASS=$pass"
