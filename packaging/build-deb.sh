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
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/completions"
"$aft" --data /var/lib/aft svc unit --exe /usr/bin/aft > "$assets/aft.service"
"$aft" man --dir "$assets/man" > /dev/null
"$aft" completions bash > "$assets/completions/aft"
"$aft" completions zsh > "$assets/completions/_aft"
"$aft" completions fish > "$assets/completions/aft.fish"
cargo deb -p aft --no-build --profile "$profile" "$@"
