#!/usr/bin/env bash
# Instructions per operation of gpm's scheduler, with probes off and at their defaults:
# callgrind counts of bench/examples/probe_cost.rs (1 worker, 20 iterations of a workload)
# minus the runtime's start and shutdown (workload `none`), divided by the operations the
# workload performs. Deterministic: the machine's load does not change the counts.
#
#   yield_many        200 tasks x 1000 yields x 20      per yield (one re-enqueue + one poll)
#   chained_spawn     1000-task chain x 20              per spawn (spawn, poll, complete)
#   spawn_many_local  10,000 tasks from block_on x 20   per spawn from outside the Ps
#   ping_pong         1000 pings x 20                   per ping (two spawns, two messages)
#
# Usage: bash bench/scripts/instructions.sh [modes...]   (default modes: off 32, the default sampling)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind > /dev/null || sudo apt-get install -y -q valgrind > /dev/null 2>&1 \
    || apt-get install -y -q valgrind > /dev/null
cargo build -q --release -p gpm-bench --example probe_cost
bin=target/release/examples/probe_cost
if [ $# -eq 0 ]; then modes=(off 32); else modes=("$@"); fi

count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

printf '%-18s %-6s %14s %12s\n' workload probes instructions per-op
for mode in "${modes[@]}"; do
    base=$(count "$mode" none)
    for spec in yield_many:4000000 chained_spawn:20000 spawn_many_local:200000 ping_pong:20000; do
        workload=${spec%%:*}
        ops=${spec##*:}
        total=$(count "$mode" "$workload")
        awk -v w="$workload" -v m="$mode" -v t="$total" -v b="$base" -v n="$ops" \
            'BEGIN { printf "%-18s %-6s %14d %12.1f\n", w, m, t - b, (t - b) / n }'
    done
done
