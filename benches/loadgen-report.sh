#!/usr/bin/env bash
# The loadgen numbers of BENCHMARKS.md: closed-loop sweep and open-loop
# runs at 100, 1000 and 5000 clients, mp1d pinned to CPU 0 and loadgen to
# CPU 1, a fresh mp1d per run. Loopback only. Writes target/loadgen/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/loadgen"
mkdir -p "$OUT"
cargo build --release --workspace --manifest-path "$ROOT/Cargo.toml" >/dev/null 2>&1
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
MP1D="$ROOT/target/release/mp1d"
LOADGEN="$ROOT/target/release/loadgen"
# free_port
. "$ROOT/benches/servers.sh"
PORT=""
PID=""
start() {
    PORT=$(free_port)
    taskset -c 0 "$MP1D" --bind 127.0.0.1 --port $PORT --max-clients 20000 --log-level warn "$@" &
    PID=$!
    sleep 0.3
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; }
trap stop EXIT

echo "## closed loop sweep"
start
taskset -c 1 "$LOADGEN" --target 127.0.0.1:$PORT --sweep 100,1000,5000 --messages 200 \
    --server-pid "$PID" --plot "$OUT/closed-sweep.svg" | tee "$OUT/closed-sweep.txt"
stop

echo "## open loop (about 100k offered deliveries/s), 10 senders"
for n in 100 1000 5000; do
    rate=$(python3 -c "print(round(100000/($n-1), 2))")
    start
    taskset -c 1 "$LOADGEN" --target 127.0.0.1:$PORT --clients $n --mode open --rate "$rate" \
        --senders 10 --duration 10 --warmup 2 --server-pid "$PID" \
        --hgrm "$OUT/open-$n" --plot "$OUT/open-$n.svg" | tee "$OUT/open-$n.txt"
    stop
done

echo "## UDP peers through the bridge"
start --peer-name br --broadcast 127.255.255.255 --max-lan-peers 256
sleep 1.6
taskset -c 1 "$LOADGEN" --target 127.0.0.1:$PORT --clients 1000 --peers 200 --messages 200 \
    --server-pid "$PID" | tee "$OUT/peers.txt"
stop
