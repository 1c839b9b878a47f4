# Helpers for peer scripts: wait for a TCP port, record a pid for the EXIT trap.
# FTP passive port ranges stay below the kernel's ephemeral range (32768+), so a client's
# outgoing port never takes one, and are wide (5,000+) because a test that opens a data
# connection per file leaves each used port in TIME_WAIT for a minute.
wait_port() { # host port [seconds]
    local host=$1 port=$2 deadline=$((SECONDS + ${3:-20}))
    until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "peer on $host:$port did not start" >&2; return 1; }
        sleep 0.05
    done
}
