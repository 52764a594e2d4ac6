# Sourced by benches/compare.sh, benches/fanbench-compare.sh and
# benches/loadgen-report.sh: what they need to run a server under test on
# loopback, pinned to CPU 0, and stop it by its PID. The caller sets LOG (a
# file) and OUTDIR before sourcing.

# A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick):
# a run never collides with another server on this machine.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }

# Messages per run for N subscribers: about the same deliveries at each size.
msgs_for() { case $1 in 100) echo 1000 ;; 1000) echo 200 ;; *) echo 100 ;; esac; }

# Debian's redis-server, installed if missing (needs root).
ensure_redis() {
    command -v redis-server >/dev/null && return 0
    log "installing redis-server"
    (apt-get install -y redis-server || { apt-get update && apt-get install -y redis-server; }) >>"$LOG" 2>&1
}

SRV_PID=""
# Redis as a plain pub/sub server: no persistence, no output-buffer cut-off.
start_redis() {
    taskset -c 0 redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no \
        --client-output-buffer-limit "pubsub 0 0 0" --maxclients 20000 \
        --logfile "$OUTDIR/redis.log" --daemonize no &
    SRV_PID=$!
}

# Waits up to 10 s for something to accept on 127.0.0.1:PORT; NAME is for the log.
wait_listening() {
    local port=$1 name=$2
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    log "$name did not start"; return 1
}

# More processes of the server under test (a cluster's nodes), stopped
# before SRV_PID (their Redis).
EXTRA_PIDS=()

stop_one() {
    kill "$1" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null
}

stop_server() {
    for pid in "${EXTRA_PIDS[@]}"; do stop_one "$pid"; done
    EXTRA_PIDS=()
    [ -n "$SRV_PID" ] || return 0
    stop_one "$SRV_PID"; SRV_PID=""
}
trap 'stop_server' EXIT
