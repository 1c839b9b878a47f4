#!/usr/bin/env bash
# FTP and explicit FTPS (vsftpd) on 127.0.0.1:2121 for the FTP backend's conformance suite:
# plain logins and AUTH TLS both accepted, passive ports 16000-21999, no MLSD (the client
# parses LIST). Runs as root with a local user made here (idempotent).
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
source "$(dirname "$0")/ftp_certs.inc"
port=2121 user=aftftp pass=ftppass
dir=$state/vsftpd
mkdir -p "$dir/empty" "$dir/home"
chmod 755 "$dir/empty"
id "$user" >/dev/null 2>&1 || useradd -M -s /bin/bash "$user" >/dev/null 2>&1
usermod -d "$dir/home" "$user" >/dev/null 2>&1 || true
echo "$user:$pass" | chpasswd >/dev/null 2>&1
chown "$user" "$dir/home"
cat > "$dir/vsftpd.conf" <<CONF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$port
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
force_dot_files=YES
pasv_enable=YES
pasv_min_port=16000
pasv_max_port=21999
pasv_address=127.0.0.1
secure_chroot_dir=$dir/empty
seccomp_sandbox=NO
ssl_enable=YES
allow_anon_ssl=NO
force_local_logins_ssl=NO
force_local_data_ssl=NO
rsa_cert_file=$ftp_tls/leaf.pem
rsa_private_key_file=$ftp_tls/leaf.key
max_per_ip=0
max_clients=0
xferlog_enable=NO
vsftpd_log_file=$dir/log
CONF
/usr/sbin/vsftpd "$dir/vsftpd.conf" > "$dir/stdout" 2>&1 &
echo $! > "$state/vsftpd.pid"
wait_port 127.0.0.1 $port
echo "export AFT_TEST_FTP_ADDR=127.0.0.1:$port"
echo "export AFT_TEST_FTP_USER=$user"
echo "export AFT_TEST_FTP_PASS=$pass"
echo "export AFT_TEST_FTP_CA=$ftp_tls/ca.pem"
