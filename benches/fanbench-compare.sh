#!/usr/bin/env bash
# An optional cross-check of benches/compare.sh with an independent harness,
# fanbench, which is not part of this repository: mp1d against Redis
# pub/sub and fanbench's floor (one bare write() per recipient), in one
# run. Closed mode: message k+1 is published once all N subscribers got
# message k. Point FANBENCH at a fanbench checkout (a Cargo project with
# table.py beside it).
#
# Server pinned to CPU 0, harness to CPU 1; repetitions interleaved so a
# drift in this VM's speed does not favour one server. Loopback only.
#
#   FANBENCH=DIR benches/fanbench-compare.sh     # REPS=3 SIZES="1000 5000"
#   FANBENCH=DIR REPS=1 SIZES=1000 SERVERS="mp1d" benches/fanbench-compare.sh
#   FANBENCH=DIR MP1D=path/to/other/mp1d benches/fanbench-compare.sh
#   FANBENCH=DIR SERVERS="floor-server mp1d-writev mp1d-uring redis" benches/fanbench-compare.sh
#
# SERVERS: `mp1d` (with its defaults), `mp1d-writev` / `mp1d-uring` (with
# `--io-uring off` / `on`), `redis`, and `floor-server`: fanbench's minimal
# RESP pub/sub server, one send() per recipient, measured like a server.
#
# Writes target/fanbench/compare-<date>.jsonl and prints the markdown table
# (fanbench's table.py) plus mp1d's resident memory with 5000 idle clients.
set -u -o pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FANBENCH="${FANBENCH:?set FANBENCH to a fanbench checkout (not part of this repository); benches/compare.sh needs none}"
REPS=${REPS:-3}
SIZES=${SIZES:-"1000 5000"}
SERVERS=${SERVERS:-"mp1d redis"}
OUTDIR="$ROOT/target/fanbench"
mkdir -p "$OUTDIR"
OUT="$OUTDIR/compare-$(date +%Y%m%d-%H%M%S).jsonl"
LOG="${OUT%.jsonl}.log"
. "$ROOT/benches/servers.sh"

case " $SERVERS " in *" redis "*) ensure_redis ;; esac
log "building fanbench and mp1d (release)"
CARGO_TARGET_DIR="$OUTDIR/target" cargo build --release --manifest-path "$FANBENCH/Cargo.toml" >>"$LOG" 2>&1 || { log "fanbench build failed"; exit 1; }
cargo build --release --manifest-path "$ROOT/Cargo.toml" --bin mp1d >>"$LOG" 2>&1 || { log "mp1d build failed"; exit 1; }
BIN="$OUTDIR/target/release/fanbench"
MP1D="${MP1D:-$ROOT/target/release/mp1d}"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

PORT=0
start_server() {
    case $1 in
    mp1d | mp1d-writev | mp1d-uring)
        local opts=()
        [ "$1" = mp1d-writev ] && opts=(--io-uring off)
        [ "$1" = mp1d-uring ] && opts=(--io-uring on)
        PORT=$(free_port)
        taskset -c 0 "$MP1D" --bind 127.0.0.1 --port $PORT --max-clients 20000 --log-level warn \
            "${opts[@]}" 2>>"$LOG" &
        SRV_PID=$! ;;
    floor-server)
        PORT=$(free_port)
        taskset -c 0 "$BIN" floor-server --bind 127.0.0.1 --port $PORT 2>>"$LOG" &
        SRV_PID=$! ;;
    redis)
        PORT=$(free_port)
        start_redis $PORT ;;
    esac
    wait_listening $PORT "$1"
}

run_one() {
    local label=$1; shift
    local line
    line=$(taskset -c 1 "$BIN" "$@" --label "$label" 2>>"$LOG" | grep '^RESULT ' | sed 's/^RESULT //')
    [ -n "$line" ] || line="{\"label\":\"$label\",\"error\":\"fanbench printed no RESULT line\"}"
    echo "$line" >>"$OUT"
    log "$label: $(echo "$line" | cut -c1-160)"
}

python3 - "$OUT" <<'PY'
import json, platform, subprocess, sys, datetime
v = lambda c: (subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip().splitlines() or [None])[0]
json.dump({"meta": {"date": datetime.datetime.now().isoformat(timespec="seconds"), "kernel": platform.release(),
  "cpus": v("nproc"), "redis": v("redis-server --version"), "pinning": "server taskset -c 0, harness taskset -c 1"}},
  open(sys.argv[1], "a")); open(sys.argv[1], "a").write("\n")
PY

for rep in $(seq 1 "$REPS"); do
    log "=== repetition $rep of $REPS"
    for n in $SIZES; do
        run_one "floor#$rep" floor --subs "$n" --payload 64 --messages "$(msgs_for "$n")" --quiet
    done
    for srv in $SERVERS; do
        start_server "$srv" || continue
        for n in $SIZES; do
            proto="--proto redis"; [[ $srv = mp1d* ]] && proto="--proto mp1 --framing bare"
            run_one "$srv#$rep" $proto --target 127.0.0.1:$PORT --subs "$n" --payload 64 \
                --messages "$(msgs_for "$n")" --warmup 20 --server-pid "$SRV_PID" --timeout 150 --quiet
            sleep 2
        done
        stop_server
    done
done

# Resident memory of mp1d with 5000 idle logged-in clients.
if [[ " $SERVERS " == *" mp1d "* ]]; then
    start_server mp1d
    python3 "$ROOT/benches/idle_rss.py" "$PORT" "$SRV_PID" 5000 | tee -a "$LOG"
    stop_server
fi
python3 "$FANBENCH/table.py" "$OUT" | tee "${OUT%.jsonl}.md"
