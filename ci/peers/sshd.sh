#!/usr/bin/env bash
# OpenSSH sshd on 127.0.0.1:2222 for the SFTP tests: private config and host key in the
# state dir, a test user with a password and an authorized ed25519 key (run as root).
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
dir=$state/sshd
port=${AFT_TEST_SFTP_PORT:-2222}
user=aftsftp
pass=aft-sftp-pass-1
mkdir -p "$dir" /run/sshd
chmod 755 "$dir"

# The user's home lives in the state dir, so every run starts empty.
home=$dir/home
if ! id "$user" >/dev/null 2>&1; then
    useradd -M -d "$home" -s /bin/sh "$user" >/dev/null
else
    usermod -d "$home" "$user" >/dev/null 2>&1 || true
fi
mkdir -p "$home/.ssh"
echo "$user:$pass" | chpasswd

ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519" -C aft-test-host
ssh-keygen -q -t ed25519 -N '' -f "$dir/client_ed25519" -C aft-test-client
# An encrypted RSA key in PEM-less OpenSSH format, to test passphrases and RSA signatures.
ssh-keygen -q -t rsa -b 2048 -N 'aft-key-pass' -f "$dir/client_rsa_enc" -C aft-test-client-enc
cat "$dir/client_ed25519.pub" "$dir/client_rsa_enc.pub" > "$home/.ssh/authorized_keys"
chown -R "$user:" "$home"
chmod 700 "$home/.ssh"
chmod 600 "$home/.ssh/authorized_keys"
chmod 600 "$dir/client_ed25519" "$dir/client_rsa_enc"

cat > "$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
PidFile $dir/sshd.pidfile
UsePAM no
PasswordAuthentication yes
PubkeyAuthentication yes
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
StrictModes no
AllowUsers $user
MaxStartups 200:30:400
MaxSessions 100
Subsystem sftp internal-sftp
CONF

/usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
echo $! > "$state/sshd.pid"
wait_port 127.0.0.1 "$port"

fp=$(ssh-keygen -l -E sha256 -f "$dir/host_ed25519.pub" | awk '{print $2}')
echo "export AFT_TEST_SFTP_ADDR=127.0.0.1:$port"
echo "export AFT_TEST_SFTP_USER=$user"
echo "export AFT_TEST_SFTP_PASS=$pass"
echo "export AFT_TEST_SFTP_KEY=$dir/client_ed25519"
echo "export AFT_TEST_SFTP_KEY_ENC=$dir/client_rsa_enc"
echo "export AFT_TEST_SFTP_KEY_ENC_PASS=aft-key-pass"
echo "export AFT_TEST_SFTP_HOSTKEY_SHA256=$fp"
echo "export AFT_TEST_SFTP_HOME=$home"
