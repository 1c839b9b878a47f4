# Helpers for peer scripts: wait for a TCP port, record a pid for the EXIT trap.
wait_port() { # host port [seconds]
    local host=$1 port=$2 deadline=$((SECONDS + ${3:-20}))
    until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "peer on $host:$port did not start" >&2; return 1; }
        sleep 0.05
    done
}
