#!/bin/sh
# Regenerates crates/aft/symbol-order.txt, the order in which the linker lays out the
# functions aft runs when it starts (crates/aft/build.rs passes it to lld).
#
#   cargo build --release -p aft && bench/symbol-order.sh [AFT_BINARY]
#
# Runs a release binary under `valgrind --tool=callgrind` for `aft --version`, `aft run` of
# a one-line script and `aft serve` until it listens, and writes the functions of the aft
# binary each one ran, by their symbol names: first those of `--version`, then those `run`
# adds, then those `serve` adds. Laid out together they fill about 3.5 MiB instead of being
# spread over the whole 32 MB of code, so each process maps fewer of the 64 KiB windows the
# kernel reads around a page fault (docs/benchmarks.md, Startup). Names that no longer exist
# after a change (a new hash, a `.llvm.` suffix) are ignored by the linker: regenerate the
# list after larger changes. Needs valgrind.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
aft=$(realpath "${1:-$root/target/release/aft}")
out=$root/crates/aft/symbol-order.txt
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

grind() { # NAME ARGS...: run aft under callgrind, keep the function names it ran
    name=$1
    shift
    valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" --compress-strings=no \
        --compress-pos=no --demangle=no --dump-instr=no "$aft" "$@" >/dev/null 2>"$work/$name.log"
}

data=$work/data
"$aft" --data "$data" settings set allow-cli-run true >/dev/null
printf 'Log(Param("x"))\n' >"$work/one.syncjs"

grind version --version
grind run --data "$data" run -f "$work/one.syncjs" -p '{"x":"hello"}'

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --callgrind-out-file="$work/serve.out" --compress-strings=no \
    --compress-pos=no --demangle=no --dump-instr=no \
    "$aft" --data "$data" serve --listen "127.0.0.1:$port" >/dev/null 2>"$work/serve.log" &
serve=$!
tries=0
until [ -e "$data/service.json" ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 600 ] || { echo "aft serve did not start under valgrind" >&2; exit 1; }
    sleep 0.2
done
sleep 2
# valgrind's pid is the service's: TERM stops it cleanly, then callgrind writes its file.
kill -TERM "$serve"
wait "$serve" || true

# The `fn=` records of the aft object, in the order the files hold them; each name once.
for name in version run serve; do
    awk -v bin="$aft" '
        /^ob=/ { ob = substr($0, 4) }
        /^fn=/ { f = substr($0, 4); if (ob == bin && f ~ /^[A-Za-z_]/) { sub(/\047[0-9]+$/, "", f); print f } }
    ' "$work/$name.out"
done | awk '
    BEGIN { print "# The functions aft runs at start-up, first those of --version, then run, then serve."
            print "# Written by bench/symbol-order.sh from a release build; read by crates/aft/build.rs." }
    !seen[$0]++' >"$out"
echo "$(grep -vc "^#" "$out") functions written to $out"
