#!/usr/bin/env bash
# What hyper's per-request timer costs on each runtime: the hyper "Hello, world!" server on
# gpm and on tokio, each with hyper's timer (header-read timeout armed per request) and
# without, loaded in turn by `wrk -t1 -c64 -d${SECS}s --latency` over loopback. Only one
# server runs at a time (the 2 cores are shared by wrk, the server and loopback).
#   ROUNDS (3), SECS (5), WORKERS (2). Prints one line per run, then medians per server.
set -euo pipefail
source "$(dirname "$0")/wrk_lib.sh"
command -v wrk > /dev/null || { echo "hyper_timer.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
build_hyper_hello
raw="results/hyper_timer.txt"
: > "$raw"
one_run() { # runtime timer|no-timer round
    start_server "$1" "$2" "results/server-$1-$2.log"
    load "$server_url/"
    stop_server
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
    median=$(median_rps "runtime=$1 timer=$2 " "$raw")
    echo "$1 $2: $median"
done
