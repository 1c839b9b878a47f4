#!/usr/bin/env bash
# PostgreSQL 15 on 127.0.0.1 for the store's tests (run as user postgres). Uses port 5433,
# or the next free one if another PostgreSQL (a second checkout's test run) holds it.
# Each store test creates and drops its own database `t_<random>` on this server.
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
bin=/usr/lib/postgresql/15/bin
dir=$state/pg
port=5433
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
    [ $port -lt 5500 ] || { echo "no free port for PostgreSQL in 5433-5499" >&2; exit 1; }
done
mkdir -p "$dir" && chown postgres "$dir"
su postgres -c "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null
su postgres -c "$bin/pg_ctl -D $dir/data -l $dir/log -o '-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300' -w start" >/dev/null
head -1 "$dir/data/postmaster.pid" > "$state/postgres.pid"
wait_port 127.0.0.1 "$port"
echo "export AFT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres"
