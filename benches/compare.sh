#!/usr/bin/env bash
# Fan-out side by side, in one run, with the project's own loadgen: mp1d
# against Redis pub/sub (same payload, same closed loop, same accounting),
# or against an earlier mp1d. Server pinned to CPU 0, loadgen to CPU 1;
# repetitions interleaved so a drift in the machine's speed favours no one.
# Loopback only; every server is started here and stopped by its PID.
#
#   benches/compare.sh                      # mp1d vs redis, REPS=3 SIZES="1000 5000"
#   benches/compare.sh mp1d@HEAD~3 mp1d     # an earlier build vs this tree
#   REPS=5 SIZES=5000 MODE=open benches/compare.sh
#   REPS=3 SIZES=10000 MODE=storm benches/compare.sh mp1d@HEAD~1 mp1d   # login storms
#
# SERVER is `mp1d` (this tree), `mp1d@REV` (any git revision, built in
# target/compare/), `mp1d-uring` / `mp1d-writev` (this tree's mp1d with
# `--io-uring on` / `--io-uring off`), `mp1d-ws` (this tree's mp1d with browsers' transport:
# loadgen --transport ws against its --http face) or `redis` (Debian's
# redis-server; installed if root), or `clusterN`: N mp1d nodes serving one
# chat through a Redis of their own (`mp1d --cluster`), loadgen's clients
# spread over them; the CPU counted is the nodes' and Redis's together,
# and each one's is in the .jsonl.
#
#   REPS=3 SIZES=5000 benches/compare.sh mp1d cluster1 cluster3
#   REPS=3 benches/compare.sh mp1d-writev mp1d-uring redis   # io_uring off / on
# Writes target/compare/<date>.jsonl and prints a table of medians.
set -u -o pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPS=${REPS:-3}
SIZES=${SIZES:-"1000 5000"}
MODE=${MODE:-closed}
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(mp1d redis)
OUTDIR="$ROOT/target/compare"
mkdir -p "$OUTDIR"
OUT="$OUTDIR/$(date +%Y%m%d-%H%M%S).jsonl"
LOG="${OUT%.jsonl}.log"
. "$ROOT/benches/servers.sh"

cargo build --release --workspace --manifest-path "$ROOT/Cargo.toml" >>"$LOG" 2>&1 || { log "build failed (see $LOG)"; exit 1; }
LOADGEN="$ROOT/target/release/loadgen"

# The mp1d binary for SERVER.
mp1d_bin() {
    local rev=${1#mp1d@}
    if [ "$1" = mp1d ]; then echo "$ROOT/target/release/mp1d"; return; fi
    local sha dir
    sha=$(git -C "$ROOT" rev-parse --short "$rev") || return 1
    dir="$OUTDIR/src-$sha"
    if [ ! -x "$dir/target/release/mp1d" ]; then
        log "building mp1d at $rev ($sha)"
        rm -rf "$dir" && git -C "$ROOT" worktree add --detach -f "$dir" "$sha" >>"$LOG" 2>&1 || return 1
        cargo build --release --manifest-path "$dir/Cargo.toml" --bin mp1d >>"$LOG" 2>&1 || return 1
    fi
    echo "$dir/target/release/mp1d"
}

for s in "${SERVERS[@]}"; do
    case $s in
    redis) ensure_redis ;;
    mp1d-ws | mp1d-uring | mp1d-writev) ;;
    cluster[1-9]) ensure_redis ;;
    mp1d*) mp1d_bin "$s" >/dev/null || { log "cannot build $s"; exit 1; } ;;
    *) log "unknown server $s (mp1d, mp1d@REV, mp1d-uring, mp1d-writev, mp1d-ws or redis)"; exit 2 ;;
    esac
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

PORT=""
# loadgen's --target and --server-pid options for the server under test.
TARGETS=""
PIDS=""
start_server() {
    PORT=$(free_port)
    TARGETS="--target 127.0.0.1:$PORT"
    case $1 in
    cluster[1-9])
        # Redis on PORT, each node on a free port; all on CPU 0 like any server.
        local nodes=${1#cluster} redis_port=$PORT i
        start_redis "$redis_port"
        wait_listening "$redis_port" redis || return 1
        PIDS="--server-pid $SRV_PID"
        TARGETS=""
        for i in $(seq 1 "$nodes"); do
            PORT=$(free_port)
            taskset -c 0 "$ROOT/target/release/mp1d" --bind 127.0.0.1 --port $PORT \
                --max-clients 20000 --log-level warn --cluster "redis://127.0.0.1:$redis_port" \
                --node-id "node$i" 2>>"$LOG" &
            EXTRA_PIDS+=($!)
            PIDS="$PIDS --server-pid $!"
            TARGETS="$TARGETS --target 127.0.0.1:$PORT"
            wait_listening $PORT "node $i" || return 1
        done
        return 0 ;;
    redis) start_redis $PORT ;;
    mp1d-ws)
        # Clients come to the --http face; the TCP port stays unused.
        taskset -c 0 "$ROOT/target/release/mp1d" --bind 127.0.0.1 --port 0 \
            --http 127.0.0.1:$PORT --max-clients 20000 --log-level warn 2>>"$LOG" &
        SRV_PID=$! ;;
    mp1d-uring | mp1d-writev)
        local mode=on; [ "$1" = mp1d-writev ] && mode=off
        taskset -c 0 "$ROOT/target/release/mp1d" --bind 127.0.0.1 --port $PORT --max-clients 20000 \
            --io-uring $mode --log-level warn 2>>"$LOG" &
        SRV_PID=$! ;;
    mp1d*)
        taskset -c 0 "$(mp1d_bin "$1")" --bind 127.0.0.1 --port $PORT --max-clients 20000 \
            --log-level warn 2>>"$LOG" &
        SRV_PID=$! ;;
    esac
    PIDS="--server-pid $SRV_PID"
    wait_listening $PORT "$1"
}
workload() {
    if [ "$MODE" = storm ]; then
        # N logins, each announced to everyone: N²/2 deliveries.
        echo "--messages 20 --warmup 0 --connect-timeout 120"
    elif [ "$MODE" = open ]; then
        # About 100k offered deliveries/s whatever the size.
        echo "--mode open --senders 10 --duration 10 --warmup 2 --rate $(python3 -c "print(round(100000/($1-1), 2))")"
    else
        echo "--messages $(msgs_for "$1") --warmup 20"
    fi
}

for rep in $(seq 1 "$REPS"); do
    log "=== repetition $rep of $REPS"
    for s in "${SERVERS[@]}"; do
        proto="--protocol mp1"
        [ "$s" = redis ] && proto="--protocol redis"
        [ "$s" = mp1d-ws ] && proto="--transport ws"
        for n in $SIZES; do
            start_server "$s" || continue
            # shellcheck disable=SC2046
            # shellcheck disable=SC2086
            line=$(taskset -c 1 "$LOADGEN" $proto $TARGETS --clients "$n" \
                $(workload "$n") $PIDS --json 2>>"$LOG" | tail -n 1)
            stop_server
            [ -n "$line" ] || line='{"error":"loadgen printed nothing"}'
            echo "{\"server\":\"$s\",\"rep\":$rep,\"run\":$line}" >>"$OUT"
            log "$s $n clients: $(echo "$line" | cut -c1-120)"
        done
    done
done

python3 - "$OUT" "$MODE" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
groups = {}
for r in rows:
    run = r["run"]
    if "clients" not in run:
        continue
    groups.setdefault((run["clients"], r["server"]), []).append(run)
med = lambda xs: statistics.median(xs) if xs else float("nan")
if sys.argv[2] == "storm":
    print(f"\nlogin storms, medians of {max(len(v) for v in groups.values())} interleaved runs ({sys.argv[1]})\n")
    print("| clients | server | server CPU of the storm | all logged in after | login p50 | login p99 |")
    print("|---:|---|---:|---:|---:|---:|")
    for (n, s), runs in sorted(groups.items()):
        cpu = med([x["login_server_cpu_s"] for x in runs if x.get("login_server_cpu_s") is not None])
        wall = med([x["connect_s"] for x in runs])
        p50 = med([x["login_us"]["p50"] for x in runs]) / 1000
        p99 = med([x["login_us"]["p99"] for x in runs]) / 1000
        print(f"| {n} | {s} | {cpu:.2f} s | {wall:.1f} s | {p50:.0f} ms | {p99:.0f} ms |")
    sys.exit(0)
print(f"\n{sys.argv[2]} loop, medians of {max(len(v) for v in groups.values())} interleaved runs ({sys.argv[1]})\n")
print("| clients | server | µs server CPU per delivery | deliveries/s | p50 | p99 | fan-out p50 | fan-out p99 | lost |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
for (n, s), runs in sorted(groups.items()):
    cpu = med([x["server_cpu_us_per_delivery"] for x in runs if x.get("server_cpu_us_per_delivery")])
    dps = med([x["deliveries_per_s"] for x in runs])
    p50 = med([x["delivery_us"]["p50"] for x in runs]) / 1000
    p99 = med([x["delivery_us"]["p99"] for x in runs]) / 1000
    f = [x["fanout_us"] for x in runs if x.get("fanout_us")]
    f50 = med([x["p50"] for x in f]) / 1000 if f else float("nan")
    f99 = med([x["p99"] for x in f]) / 1000 if f else float("nan")
    lost = sum(x["tcp"]["lost"] for x in runs)
    print(f"| {n} | {s} | {cpu:.2f} | {dps/1000:.1f}k | {p50:.2f} ms | {p99:.2f} ms | {f50:.2f} ms | {f99:.2f} ms | {lost} |")
# A cluster's processes one by one: each node, then its Redis (the first pid).
each = {}
for (n, s), runs in sorted(groups.items()):
    per = [x.get("server_cpu_each") or [] for x in runs]
    if len(per[0]) > 1:
        cols = list(zip(*[[e["us_per_delivery"] for e in p] for p in per if len(p) == len(per[0])]))
        names = ["Redis"] + [f"node {i}" for i in range(1, len(cols))]
        each[(n, s)] = ", ".join(f"{nm} {med(list(c)):.2f}" for nm, c in zip(names, cols))
if each:
    print("\nµs CPU per delivery of each process (medians):\n")
    for (n, s), text in each.items():
        print(f"- {s}, {n} clients: {text}")
PY
