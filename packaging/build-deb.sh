#!/usr/bin/env bash
# Build the Debian package of aft: target/debian/aft_VERSION_ARCH.deb.
# Usage: packaging/build-deb.sh [--profile dev|release] [cargo-deb options]   (default release)
# The unit, man pages and completions are made by the binary itself, so they always match
# its commands; cargo-deb (`cargo install cargo-deb`) packs them with the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
if [ "${1:-}" = "--profile" ]; then profile=$2; shift 2; fi
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
# AFT_DEB_NO_BUILD=1: pack the binary already built (the test suite does, so as not to
# replace the binary its other tests run).
[ -n "${AFT_DEB_NO_BUILD:-}" ] || cargo build -p aft --profile "$profile" --locked
aft=target/$dir/aft
# A release binary is linked a second time with its code laid out in the order a profile
# of this very binary gives (bench/symbol-order.sh, about half a minute under valgrind):
# the committed list drifts as the code changes (a one-line `aft run` peaked at 12.1 MiB
# with a drifted list, 9.6 MiB with a fresh one). Without valgrind and curl, or with
# AFT_DEB_COMMITTED_ORDER=1, the committed list is used as it is.
if [ -z "${AFT_DEB_NO_BUILD:-}" ] && [ "$profile" = release ] && [ -z "${AFT_DEB_COMMITTED_ORDER:-}" ]; then
    if command -v valgrind >/dev/null && command -v curl >/dev/null; then
        order=$(realpath "target/$dir")/symbol-order.txt
        bench/symbol-order.sh "$aft" "$order"
        AFT_SYMBOL_ORDER=$order cargo build -p aft --profile "$profile" --locked
    else
        echo "build-deb: no valgrind or curl: the committed symbol order is used (see bench/symbol-order.sh)" >&2
    fi
fi
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/completions"
"$aft" --data /var/lib/aft svc unit --exe /usr/bin/aft > "$assets/aft.service"
"$aft" man --dir "$assets/man" > /dev/null
"$aft" completions bash > "$assets/completions/aft"
"$aft" completions zsh > "$assets/completions/_aft"
"$aft" completions fish > "$assets/completions/aft.fish"
cargo deb -p aft --no-build --profile "$profile" "$@"
