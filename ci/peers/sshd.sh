#!/usr/bin/env bash
# OpenSSH sshd on 127.0.0.1:2222 for the SFTP tests: private config and host key in the
# state dir, a test user with a password and authorized ed25519 and RSA keys (also as PuTTY
# .ppk files), run as root.
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

# Keys are kept when the state dir is reused, so a restart keeps the pinned fingerprints.
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519" -C aft-test-host
[ -f "$dir/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/client_ed25519" -C aft-test-client
# An encrypted RSA key in PEM-less OpenSSH format, to test passphrases and RSA signatures.
[ -f "$dir/client_rsa_enc" ] ||
    ssh-keygen -q -t rsa -b 2048 -N 'aft-key-pass' -f "$dir/client_rsa_enc" -C aft-test-client-enc
# An ECDSA P-256 key, authorized only to test it as a .ppk file.
[ -f "$dir/client_ecdsa" ] ||
    ssh-keygen -q -t ecdsa -b 256 -N '' -f "$dir/client_ecdsa" -C aft-test-client-ecdsa

# The client keys as PuTTY .ppk files (puttygen, Debian putty-tools): the ed25519 key
# unencrypted in PPK v3 (puttygen's default) and v2, the RSA key encrypted with a new
# passphrase in v3 (Argon2id) and v2 (their key derivations differ), the ECDSA key in v3.
ppk_pass=aft-ppk-pass
printf '%s\n' aft-key-pass > "$dir/client_rsa_enc.pass"
printf '%s\n' "$ppk_pass" > "$dir/ppk.pass"
puttygen "$dir/client_ed25519" -O private -o "$dir/client_ed25519.ppk"
puttygen "$dir/client_ed25519" -O private --ppk-param version=2 -o "$dir/client_ed25519_v2.ppk"
puttygen "$dir/client_ecdsa" -O private -o "$dir/client_ecdsa.ppk"
puttygen "$dir/client_rsa_enc" --old-passphrase "$dir/client_rsa_enc.pass" \
    --new-passphrase "$dir/ppk.pass" -O private -o "$dir/client_rsa_enc.ppk"
puttygen "$dir/client_rsa_enc" --old-passphrase "$dir/client_rsa_enc.pass" \
    --new-passphrase "$dir/ppk.pass" -O private --ppk-param version=2 -o "$dir/client_rsa_enc_v2.ppk"
rm -f "$dir/client_rsa_enc.pass" "$dir/ppk.pass"
cat "$dir/client_ed25519.pub" "$dir/client_rsa_enc.pub" "$dir/client_ecdsa.pub" \
    > "$home/.ssh/authorized_keys"
chown -R "$user:" "$home"
chmod 700 "$home/.ssh"
chmod 600 "$home/.ssh/authorized_keys"
chmod 600 "$dir/client_ed25519" "$dir/client_rsa_enc" "$dir/client_ecdsa" "$dir"/*.ppk

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
fp_md5=$(ssh-keygen -l -E md5 -f "$dir/host_ed25519.pub" | awk '{print $2}')
fp_sha1=$(ssh-keygen -l -E sha1 -f "$dir/host_ed25519.pub" | awk '{print $2}')
echo "export AFT_TEST_SFTP_ADDR=127.0.0.1:$port"
echo "export AFT_TEST_SFTP_USER=$user"
echo "export AFT_TEST_SFTP_PASS=$pass"
echo "export AFT_TEST_SFTP_KEY=$dir/client_ed25519"
echo "export AFT_TEST_SFTP_KEY_ENC=$dir/client_rsa_enc"
echo "export AFT_TEST_SFTP_KEY_ENC_PASS=aft-key-pass"
echo "export AFT_TEST_SFTP_HOSTKEY_SHA256=$fp"
echo "export AFT_TEST_SFTP_HOSTKEY_MD5=$fp_md5"
echo "export AFT_TEST_SFTP_HOSTKEY_SHA1=$fp_sha1"
echo "export AFT_TEST_SFTP_PPK=$dir/client_ed25519.ppk"
echo "export AFT_TEST_SFTP_PPK_V2=$dir/client_ed25519_v2.ppk"
echo "export AFT_TEST_SFTP_PPK_ECDSA=$dir/client_ecdsa.ppk"
echo "export AFT_TEST_SFTP_PPK_ENC=$dir/client_rsa_enc.ppk"
echo "export AFT_TEST_SFTP_PPK_ENC_V2=$dir/client_rsa_enc_v2.ppk"
echo "export AFT_TEST_SFTP_PPK_ENC_PASS=$ppk_pass"
echo "export AFT_TEST_SFTP_HOME=$home"
