#!/usr/bin/env bash
# The HTTP comparison of issue 13: the same hyper 1.x server (bench/src/bin/hyper_hello.rs,
# with the runtime's timer, as a service has) on gpm and on tokio, 2 workers each, loaded
# by `wrk -t1 -c64 -d${SECS}s --latency` over loopback on three handlers: `/` (hello),
# `/json` (serde_json) and `/cpu` (about 20 us of CPU per request). One server at a time;
# the runtime that goes first alternates per round. Installs wrk with apt-get when missing.
#   ROUNDS (3), SECS (5), WORKERS (2). Raw lines in results/wrk_compare.txt, then medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${ROUNDS:-3}"
SECS="${SECS:-5}"
WORKERS="${WORKERS:-2}"
target="${CARGO_TARGET_DIR:-target}"
if ! command -v wrk > /dev/null; then
    apt-get install -y wrk > /dev/null 2>&1 || (apt-get update > /dev/null && apt-get install -y wrk > /dev/null)
fi
cargo build --release -p gpm-bench --bin hyper_hello >&2
mkdir -p results
raw="results/wrk_compare.txt"
: > "$raw"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT
port=47030
one_run() { # runtime path round
    port=$((port + 1))
    local log="results/server-$1.log"
    "$target/release/hyper_hello" "$1" "127.0.0.1:$port" "$WORKERS" timer > "$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.05; done
    grep -q listening "$log" || { echo "server $1 did not start: $(cat "$log")" >&2; exit 1; }
    local out rps p99 errors
    out=$(wrk -t1 -c64 -d"${SECS}s" --latency "http://127.0.0.1:$port$2")
    rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
    p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
    errors=$(awk '/Non-2xx|Socket errors/ {print}' <<< "$out" | tr '\n' ' ')
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
    echo "runtime=$1 path=$2 round=$3 rps=$rps p99=$p99 errors=[${errors}]" | tee -a "$raw"
}
for round in $(seq "$ROUNDS"); do
    for path in / /json /cpu; do
        if (( round % 2 )); then order="gpm tokio"; else order="tokio gpm"; fi
        for rt in $order; do one_run "$rt" "$path" "$round"; done
    done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "medians of $ROUNDS rounds: path, gpm req/s, tokio req/s, gpm/tokio"
for path in / /json /cpu; do
    g=$(grep "runtime=gpm path=$path " "$raw" | sed 's/.*rps=\([0-9.]*\).*/\1/' | median)
    t=$(grep "runtime=tokio path=$path " "$raw" | sed 's/.*rps=\([0-9.]*\).*/\1/' | median)
    echo "$path $g $t $(awk -v g="$g" -v t="$t" 'BEGIN {printf "%.2f", g / t}')"
done
