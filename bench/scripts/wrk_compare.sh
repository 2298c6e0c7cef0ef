#!/usr/bin/env bash
# The HTTP comparison of issue 13: the same hyper 1.x server (bench/src/bin/hyper_hello.rs,
# with the runtime's timer, as a service has) on gpm and on tokio, 2 workers each, loaded
# by `wrk -t1 -c64 -d${SECS}s --latency` over loopback on three handlers: `/` (hello),
# `/json` (serde_json) and `/cpu` (about 20 us of CPU per request), each served by a hyper
# `service_fn` and by an axum `Router` (`hyper_hello ... axum`). One server at a time;
# the runtime that goes first alternates per round. Installs wrk with apt-get when missing.
#   ROUNDS (3), SECS (5), WORKERS (2). Raw lines in results/wrk_compare.txt, then medians.
set -euo pipefail
source "$(dirname "$0")/wrk_lib.sh"
if ! command -v wrk > /dev/null; then
    apt-get install -y wrk > /dev/null 2>&1 || (apt-get update > /dev/null && apt-get install -y wrk > /dev/null)
fi
build_hyper_hello
raw="results/wrk_compare.txt"
: > "$raw"
cases="hyper:/ hyper:/json hyper:/cpu axum:/ axum:/json axum:/cpu"
one_run() { # runtime app path round
    start_server "$1" timer "results/server-$1.log" "$2"
    load "$server_url$3"
    local errors
    errors=$(awk '/Non-2xx|Socket errors/ {print}' <<< "$wrk_out" | tr '\n' ' ')
    stop_server
    echo "runtime=$1 app=$2 path=$3 round=$4 rps=$rps p99=$p99 errors=[${errors}]" | tee -a "$raw"
}
for round in $(seq "$ROUNDS"); do
    for case in $cases; do
        if (( round % 2 )); then order="gpm tokio"; else order="tokio gpm"; fi
        for rt in $order; do one_run "$rt" "${case%%:*}" "${case#*:}" "$round"; done
    done
done
echo "medians of $ROUNDS rounds: app, path, gpm req/s, tokio req/s, gpm/tokio"
for case in $cases; do
    app=${case%%:*} path=${case#*:}
    g=$(median_rps "runtime=gpm app=$app path=$path " "$raw")
    t=$(median_rps "runtime=tokio app=$app path=$path " "$raw")
    echo "$app $path $g $t $(awk -v g="$g" -v t="$t" 'BEGIN {printf "%.2f", g / t}')"
done
