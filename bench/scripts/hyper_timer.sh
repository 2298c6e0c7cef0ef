#!/usr/bin/env bash
# What hyper's per-request timer costs on each runtime: the hyper "Hello, world!" server on
# gpm and on tokio, each with hyper's timer (header-read timeout armed per request) and
# without, loaded in turn by `wrk -t1 -c64 -d${SECS}s --latency` over loopback. Only one
# server runs at a time (the 2 cores are shared by wrk, the server and loopback).
#   ROUNDS (3), SECS (5), WORKERS (2). Prints one line per run, then medians per server.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${ROUNDS:-3}"
SECS="${SECS:-5}"
WORKERS="${WORKERS:-2}"
target="${CARGO_TARGET_DIR:-target}"
command -v wrk > /dev/null || { echo "hyper_timer.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release -p gpm-bench --bin hyper_hello >&2
mkdir -p results
raw="results/hyper_timer.txt"
: > "$raw"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT
one_run() { # runtime timer|no-timer round
    local log="results/server-$1-$2.log"
    "$target/release/hyper_hello" "$1" 127.0.0.1:47010 "$WORKERS" "$2" > "$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.05; done
    grep -q listening "$log" || { echo "server $1 $2 did not start" >&2; exit 1; }
    local out rps p99
    out=$(wrk -t1 -c64 -d"${SECS}s" --latency http://127.0.0.1:47010/)
    rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
    p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
    echo "runtime=$1 timer=$2 round=$3 rps=$rps p99=$p99" | tee -a "$raw"
}
sides=("gpm timer" "gpm no-timer" "tokio timer" "tokio no-timer")
for round in $(seq "$ROUNDS"); do
    # Rotate the order each round so drift of the machine falls on every side.
    for i in 0 1 2 3; do
        side=${sides[$(((i + round) % 4))]}
        one_run $side "$round"
    done
done
echo "medians of $ROUNDS rounds (req/s):"
for side in "${sides[@]}"; do
    set -- $side
    median=$(grep "runtime=$1 timer=$2 " "$raw" | sed 's/.*rps=\([0-9.]*\).*/\1/' | sort -n \
        | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
    echo "$1 $2: $median"
done
