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

# TLS, for the sslmode=verify-full tests: a CA of its own and a server certificate for
# 127.0.0.1 and localhost. The role aft_tls may only connect over TLS (pg_hba), so a test
# connecting as it proves the connection was encrypted.
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=aft test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 30 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
# A second CA that signed nothing here, to test a certificate that must not be trusted.
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=other CA" \
    -keyout "$dir/other-ca.key" -out "$dir/other-ca.pem" 2>/dev/null
chown postgres "$dir"/server.key "$dir"/server.pem && chmod 600 "$dir/server.key"
chmod 644 "$dir/ca.pem" "$dir/other-ca.pem"
{ echo "hostnossl all aft_tls 0.0.0.0/0 reject"; cat "$dir/data/pg_hba.conf"; } > "$dir/pg_hba.new"
mv "$dir/pg_hba.new" "$dir/data/pg_hba.conf" && chown postgres "$dir/data/pg_hba.conf"

su postgres -c "$bin/pg_ctl -D $dir/data -l $dir/log -o '-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 -c ssl=on -c ssl_cert_file=$dir/server.pem -c ssl_key_file=$dir/server.key' -w start" >/dev/null
head -1 "$dir/data/postmaster.pid" > "$state/postgres.pid"
wait_port 127.0.0.1 "$port"
su postgres -c "psql -h $dir -p $port -qc 'CREATE ROLE aft_tls LOGIN SUPERUSER'" >/dev/null
echo "export AFT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres"
echo "export AFT_TEST_POSTGRES_TLS_URL=postgres://aft_tls@127.0.0.1:$port/postgres"
echo "export AFT_TEST_POSTGRES_CA=$dir/ca.pem"
echo "export AFT_TEST_POSTGRES_OTHER_CA=$dir/other-ca.pem"
