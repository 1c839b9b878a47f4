#!/usr/bin/env bash
# PostgreSQL 15 on 127.0.0.1:5433 for the store's tests (run as user postgres).
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
bin=/usr/lib/postgresql/15/bin
dir=$state/pg
mkdir -p "$dir" && chown postgres "$dir"
su postgres -c "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null
su postgres -c "$bin/pg_ctl -D $dir/data -l $dir/log -o '-p 5433 -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300' -w start" >/dev/null
head -1 "$dir/data/postmaster.pid" > "$state/postgres.pid"
echo "export AFT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5433/postgres"
