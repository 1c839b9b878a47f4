#!/usr/bin/env bash
# SMTP (aiosmtpd) on 127.0.0.1 for the script library's SendMail tests: a plain listener,
# a STARTTLS + AUTH listener and an implicit-TLS + AUTH listener, with a test CA made here.
# Every accepted message lands as a .eml file in $AFT_TEST_SMTP_DIR.
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$state/smtp
mkdir -p "$dir/mail"
plain=2525 starttls=2587 tls=2465

# A CA and a leaf for 127.0.0.1/localhost signed by it (rustls refuses a CA as server cert).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -subj "/CN=aft test SMTP CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/leaf.key" -out "$dir/leaf.csr" -subj "/CN=localhost" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$dir/leaf.ext"
openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 30 -out "$dir/leaf.pem" -extfile "$dir/leaf.ext" 2>/dev/null

python3 "$here/smtp_server.py" "$dir/mail" "$dir/leaf.pem" "$dir/leaf.key" aft mailpass \
    $plain $starttls $tls > "$dir/log" 2>&1 &
echo $! > "$state/smtp.pid"
wait_port 127.0.0.1 $plain
wait_port 127.0.0.1 $starttls
wait_port 127.0.0.1 $tls
echo "export AFT_TEST_SMTP_ADDR=127.0.0.1:$plain"
echo "export AFT_TEST_SMTP_STARTTLS_ADDR=127.0.0.1:$starttls"
echo "export AFT_TEST_SMTP_TLS_ADDR=127.0.0.1:$tls"
echo "export AFT_TEST_SMTP_CA=$dir/ca.pem"
echo "export AFT_TEST_SMTP_USER=aft"
echo "export AFT_TEST_SMTP_PASS=mailpass"
echo "export AFT_TEST_SMTP_DIR=$dir/mail"
