#!/usr/bin/env bash
# Run every test of aft against real servers: installs what is missing, starts each peer
# on loopback, runs the Rust suite (one shared build, cargo-nextest) and the browser tests,
# and stops the peers on exit. Usage: ci/test.sh [extra nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash ci/install.sh

state=$(mktemp -d /tmp/aft-peers.XXXXXX)
chmod 755 "$state"
export AFT_PEERS_STATE=$state
cleanup() {
    for pidfile in "$state"/*.pid; do
        [ -e "$pidfile" ] || continue
        kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 0.3
    for pidfile in "$state"/*.pid; do
        [ -e "$pidfile" ] || continue
        kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    done
    [ -n "${KEEP_PEERS_STATE:-}" ] || rm -rf "$state"
}
trap cleanup EXIT

# Each peer script starts one server and prints `export VAR=...` lines for the tests.
for peer in ci/peers/*.sh; do
    name=$(basename "$peer" .sh)
    echo "--- starting $name"
    bash "$peer" "$state" > "$state/$name.env"
    # shellcheck disable=SC1090
    source "$state/$name.env"
done

# One shared build, with the optional backends that need a system library (SMB:
# libsmbclient, installed from ci/peers/samba.apt).
features=aft/smb,aft-vfs/smb
echo "--- building"
# A one-off build: incremental state would only add gigabytes to the disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
cargo build --workspace --all-targets --locked --features "$features"
echo "--- cargo nextest"
cargo nextest run --workspace --no-fail-fast --locked --profile ci --features "$features" "$@"

if [ -f web/package.json ] && [ -d web/tests ]; then
    echo "--- browser tests"
    (cd web && npm test)
fi
