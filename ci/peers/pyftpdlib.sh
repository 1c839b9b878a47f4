#!/usr/bin/env bash
# FTP and explicit FTPS (pyftpdlib) on 127.0.0.1:2122 for the FTP backend's conformance
# suite: MLSD/MLST listings and MFMT (set_mtime), passive ports 27000-32499, the same test
# CA as the vsftpd peers.
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/ftp_certs.inc"
port=2122 user=aftpy pass=pypass
dir=$state/pyftpdlib
mkdir -p "$dir/root"
python3 "$here/pyftpdlib_server.py" "$dir/root" $user $pass $port \
    "$ftp_tls/leaf.pem" "$ftp_tls/leaf.key" 27000 32499 > "$dir/log" 2>&1 &
echo $! > "$state/pyftpdlib.pid"
wait_port 127.0.0.1 $port
echo "export AFT_TEST_FTP_MLSD_ADDR=127.0.0.1:$port"
echo "export AFT_TEST_FTP_MLSD_USER=$user"
echo "export AFT_TEST_FTP_MLSD_PASS=$pass"
