#!/usr/bin/env bash
# Implicit FTPS (vsftpd, TLS from the first byte) on 127.0.0.1:2990 for the FTPS tests:
# the same local user and certificate as vsftpd.sh, passive ports 22000-26999.
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
source "$(dirname "$0")/ftp_certs.inc"
port=2990 user=aftftp pass=ftppass
dir=$state/vsftpd_implicit
home=$state/vsftpd/home
mkdir -p "$dir/empty" "$home"
chmod 755 "$dir/empty"
id "$user" >/dev/null 2>&1 || useradd -M -s /bin/bash "$user" >/dev/null 2>&1
usermod -d "$home" "$user" >/dev/null 2>&1 || true
echo "$user:$pass" | chpasswd >/dev/null 2>&1
chown "$user" "$home"
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
pasv_min_port=22000
pasv_max_port=26999
pasv_address=127.0.0.1
secure_chroot_dir=$dir/empty
seccomp_sandbox=NO
ssl_enable=YES
implicit_ssl=YES
allow_anon_ssl=NO
force_local_logins_ssl=YES
force_local_data_ssl=YES
rsa_cert_file=$ftp_tls/leaf.pem
rsa_private_key_file=$ftp_tls/leaf.key
max_per_ip=0
max_clients=0
xferlog_enable=NO
vsftpd_log_file=$dir/log
CONF
/usr/sbin/vsftpd "$dir/vsftpd.conf" > "$dir/stdout" 2>&1 &
echo $! > "$state/vsftpd_implicit.pid"
wait_port 127.0.0.1 $port
echo "export AFT_TEST_FTPS_IMPLICIT_ADDR=127.0.0.1:$port"
