#!/usr/bin/env bash
# Samba smbd for the SMB backend's tests: two instances on loopback, each with a private
# smb.conf and all its state under the state dir, serving one share to one test user:
#   - 127.0.0.1:4445 requires SMB3 encryption (`server smb encrypt = required`);
#   - 127.0.0.1:4446 requires signing only (`server signing = mandatory`, no encryption).
set -euo pipefail
source "$(dirname "$0")/../peer-lib.sh"
state=$1
user=aftsmb
pass=aft-smb-pass-1
share=aftshare

# smbd serves files as a Unix account; it has no login and no home of its own.
id "$user" >/dev/null 2>&1 || useradd -M -d /nonexistent -s /usr/sbin/nologin "$user"

start_smbd() { # name port extra-global-lines
    local name=$1 port=$2 extra=$3
    local dir=$state/samba-$name
    mkdir -p "$dir"/{private,lock,state,cache,pid,ncalrpc,log} "$dir/share"
    chown "$user:" "$dir/share"
    chmod 755 "$dir"
    cat > "$dir/smb.conf" <<CONF
[global]
    server role = standalone server
    workgroup = AFTTEST
    netbios name = AFT$name
    interfaces = 127.0.0.1
    bind interfaces only = yes
    smb ports = $port
    disable netbios = yes
    server min protocol = SMB2_10
    passdb backend = tdbsam:$dir/private/passdb.tdb
    private dir = $dir/private
    lock directory = $dir/lock
    state directory = $dir/state
    cache directory = $dir/cache
    pid directory = $dir/pid
    ncalrpc dir = $dir/ncalrpc
    log file = $dir/log/smbd.log
    log level = 1
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    kernel oplocks = no
    kernel share modes = no
    store dos attributes = no
    map archive = no
    ea support = no
$extra

[$share]
    path = $dir/share
    read only = no
    valid users = $user
    force user = $user
    create mask = 0644
    directory mask = 0755
CONF
    printf '%s\n%s\n' "$pass" "$pass" | smbpasswd -c "$dir/smb.conf" -s -a "$user" >"$dir/log/smbpasswd" 2>&1
    # Its own session: smbd signals its whole process group when it stops, which must not
    # be ci/test.sh's (that killed the test run at its cleanup).
    setsid smbd --foreground --no-process-group -s "$dir/smb.conf" > "$dir/log/stdout" 2>&1 &
    echo $! > "$state/samba-$name.pid"
    wait_port 127.0.0.1 "$port"
}

start_smbd enc 4445 "    server min protocol = SMB3
    server smb encrypt = required"
start_smbd sign 4446 "    server signing = mandatory
    server smb encrypt = off"

echo "export AFT_TEST_SMB_HOST=127.0.0.1"
echo "export AFT_TEST_SMB_PORT_ENCRYPTED=4445"
echo "export AFT_TEST_SMB_PORT_SIGNED=4446"
echo "export AFT_TEST_SMB_SHARE=$share"
echo "export AFT_TEST_SMB_USER=$user"
echo "export AFT_TEST_SMB_PASS=$pass"
echo "export AFT_TEST_SMB_DIR_ENCRYPTED=$state/samba-enc/share"
echo "export AFT_TEST_SMB_DIR_SIGNED=$state/samba-sign/share"
