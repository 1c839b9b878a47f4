#!/bin/sh
# Writes the order in which the linker lays out the functions aft runs (crates/aft/build.rs
# passes it to lld): by default crates/aft/symbol-order.txt, the committed list.
#
#   cargo build --release -p aft && bench/symbol-order.sh [AFT_BINARY [OUTPUT]]
#
# Runs a release binary under `valgrind --tool=callgrind` for `aft --version`, `aft run` of
# a one-line script, `aft serve` running 20 jobs posted through its API (then idle for a
# few seconds), and, when the SFTP test server's variables are set (`source` the output of
# ci/peers/sshd.sh), `aft run` of an SFTP upload and download of a big file and of 50 small
# ones (also natively under `perf`, for the code that picks its instructions by CPU). It
# writes the functions of the aft binary that these ran, by their symbol names, each once,
# grouped by which of them ran each (see below). Laid out together they fill a few MiB
# instead of being spread over the whole 32 MB of code, so each process maps fewer of the
# 64 KiB windows the kernel reads around a page fault (docs/benchmarks.md, Startup). Names
# that no longer exist after a change (a new hash, a `.llvm.` suffix) are ignored by the
# linker, so the committed list drifts: packaging/build-deb.sh writes a fresh one for the
# binary it packs (AFT_SYMBOL_ORDER).
# Needs valgrind and curl (and perf, for the SFTP transfers' native paths).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
aft=$(realpath "${1:-$root/target/release/aft}")
out=${2:-$root/crates/aft/symbol-order.txt}
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

printf 'Log(Param("x"))\n' >"$work/one-stored.syncjs"
"$aft" --data "$data" script push one "$work/one-stored.syncjs" >/dev/null
key=$("$aft" --data "$data" apikey create --name order --allow 127.0.0.1)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --callgrind-out-file="$work/serve.out" --compress-strings=no \
    --compress-pos=no --demangle=no --dump-instr=no \
    "$aft" --data "$data" serve --listen "127.0.0.1:$port" >/dev/null 2>"$work/serve.log" &
serve=$!
tries=0
until curl -sk --max-time 5 "https://127.0.0.1:$port/v1/health" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 600 ] || { echo "aft serve did not start under valgrind" >&2; exit 1; }
    sleep 0.2
done
# Jobs through the API, a burst of them (so that the runner claims and ends several at
# once, as under load), as a client posts them and follows their logs; then the pages an
# operator's tools poll; the service then stays idle a while (runner, settler, purges).
api() { curl -sk --max-time 60 -H "X-API-Key: $key" "$@"; }
post() { api -d '{"scriptName":"one","params":{"x":"hello"}}' "https://127.0.0.1:$port/v1/jobs" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["jobId"])'; }
ids=
for n in $(seq 20); do
    ids="$ids $(post)"
done
# Then as the service bench does: eight clients at once, each posting a job and following
# its log as an event stream until it ends (so jobs are queued, run and ended in batches).
clients=
for n in $(seq 8); do
    (for m in 1 2 3; do
        api -N -H 'Accept: text/event-stream' "https://127.0.0.1:$port/v1/jobs/$(post)/log" >/dev/null
    done) &
    clients="$clients $!"
done
# shellcheck disable=SC2086 # one pid per word
wait $clients
for id in $ids; do
    tries=0
    until api "https://127.0.0.1:$port/v1/jobs/$id" | grep -q '"status":"succeeded"'; do
        tries=$((tries + 1))
        [ "$tries" -lt 300 ] || { echo "job $id did not end under valgrind" >&2; exit 1; }
        sleep 0.2
    done
    api "https://127.0.0.1:$port/v1/jobs/$id/log" >/dev/null
done
api "https://127.0.0.1:$port/v1/jobs" >/dev/null
api "https://127.0.0.1:$port/metrics" >/dev/null
sleep 5
# valgrind's pid is the service's: TERM stops it cleanly, then callgrind writes its file.
kill -TERM "$serve"
wait "$serve" || true

phases="version run serve"
if [ -n "${AFT_TEST_SFTP_ADDR:-}" ]; then
    remote=$AFT_TEST_SFTP_HOME/symbol-order-$$
    # Above the size from which a big file moves over several connections (STREAMS_FROM,
    # 16 MiB), so that the code of parallel streams is laid out too.
    head -c 20000000 /dev/urandom >"$work/up.bin"
    mkdir -p "$work/down" "$work/small" "$work/down-small"
    for n in $(seq 50); do head -c 8192 /dev/urandom >"$work/small/$n.bin"; done
    q() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
    cat >"$work/sftp.syncjs" <<EOF
var cli = new SftpClient();
cli.Host = $(q "$AFT_TEST_SFTP_ADDR");
cli.User = $(q "$AFT_TEST_SFTP_USER");
cli.KeyFile = $(q "$AFT_TEST_SFTP_KEY");
cli.HostKeySHA256 = $(q "$AFT_TEST_SFTP_HOSTKEY_SHA256");
cli.Options.UploadPolicy = AlwaysOverwrite;
cli.Options.DownloadPolicy = AlwaysOverwrite;
if (!cli.Connect()) { Log("cannot connect: " + cli.LastError()); Exit(1); }
if (!cli.Upload($(q "$work/up.bin"), $(q "$remote"))) { Log("Upload failed: " + cli.LastError()); Exit(1); }
if (!cli.Download($(q "$remote/up.bin"), $(q "$work/down"))) { Log("Download failed: " + cli.LastError()); Exit(1); }
if (!cli.Upload($(q "$work/small/*"), $(q "$remote/small"))) { Log("Upload failed: " + cli.LastError()); Exit(1); }
if (!cli.Download($(q "$remote/small/*"), $(q "$work/down-small"))) { Log("Download failed: " + cli.LastError()); Exit(1); }
if (!cli.DelTree($(q "$remote"))) { Log("DelTree failed: " + cli.LastError()); Exit(1); }
cli.Close();
EOF
    grind sftp --data "$data" run -f "$work/sftp.syncjs"
    phases="$phases sftp"
    # Under valgrind, code that picks its instructions by what the CPU offers (SHA-256,
    # AES-GCM) takes its portable path; the paths this machine takes are sampled natively.
    if command -v perf >/dev/null 2>&1; then
        for n in 1 2 3; do
            perf record -q -e cpu-clock -F 20000 -o "$work/sftp-native-$n.perf" -- \
                "$aft" --data "$data" run -f "$work/sftp.syncjs" >/dev/null 2>&1
        done
        phases="$phases sftp-native"
    fi
fi

# The `fn=` records of the aft object, in the order the files hold them, each line with its
# phase. Then each name once, grouped by which kinds of process run it: R (`--version` and
# the one-liner), S (the service), T (the SFTP transfers). Laid out in this order, each
# kind's code is one stretch, but for a small group inside the service's:
#   T only | T and S | T and R | all three | R and S | R only | S only
# so a transfer does not also map the service's code between its own (a fault maps the
# 64 KiB around it). Within a group, names keep the order in which the phases met them.
for name in $phases; do
    if [ "$name" = sftp-native ]; then
        for data in "$work"/sftp-native-*.perf; do
            perf report -i "$data" --stdio --no-demangle --no-children --sort dso,sym 2>/dev/null
        done | awk -v dso="$(basename "$aft")" '$2 == dso && $3 == "[.]" { print "sftp", $4 }'
        continue
    fi
    awk -v bin="$aft" -v phase="$name" '
        /^ob=/ { ob = substr($0, 4) }
        /^fn=/ { f = substr($0, 4); if (ob == bin && f ~ /^[A-Za-z_]/) { sub(/\047[0-9]+$/, "", f); print phase, f } }
    ' "$work/$name.out"
done | awk '
    {
        if (!($2 in order)) { order[$2] = ++n; names[n] = $2 }
        if ($1 == "version" || $1 == "run") r[$2] = 1
        else if ($1 == "serve") s[$2] = 1
        else t[$2] = 1
    }
    END {
        for (i = 1; i <= n; i++) {
            f = names[i]
            if (f in t) group = (f in r) ? ((f in s) ? 4 : 3) : ((f in s) ? 2 : 1)
            else group = (f in r) ? ((f in s) ? 5 : 6) : 7
            print group, i, f
        }
    }' | sort -k1,1n -k2,2n | awk '
    BEGIN { print "# The functions aft runs: --version, run, serve with jobs, SFTP (see the script),"
            print "# grouped by which of them run each. Written by bench/symbol-order.sh from a"
            print "# release build; read by crates/aft/build.rs." }
    { print $3 }' >"$out"
echo "$(grep -vc "^#" "$out") functions written to $out"
