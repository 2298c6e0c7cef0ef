#!/usr/bin/env bash
# hyper "Hello, world!" server on gpm and on tokio, loaded at fixed rates by bench's open-loop
# load generator over loopback; prints a table of medians over ROUNDS rounds.
#   ROUNDS (3), RATES ("5000 10000 20000 30000 40000"), CONNS (16), SECS (10), WARMUP (2),
#   WORKERS (2): server worker threads, the same for both runtimes.
# The runtimes alternate within each round and rate, so slow drifts of the machine hit both.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${ROUNDS:-3}"
RATES="${RATES:-5000 10000 20000 30000 40000}"
CONNS="${CONNS:-16}"
SECS="${SECS:-10}"
WARMUP="${WARMUP:-2}"
WORKERS="${WORKERS:-2}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p gpm-bench --bin hyper_hello --bin loadgen >&2
mkdir -p results
raw="results/hyper_hello.txt"
: > "$raw"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
start_server() { # runtime port
    "$target/release/hyper_hello" "$1" "127.0.0.1:$2" "$WORKERS" > "results/server-$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q listening "results/server-$1.log" && return 0
        sleep 0.05
    done
    echo "server $1 did not start" >&2
    exit 1
}
start_server gpm 47001
start_server tokio 47002
for round in $(seq "$ROUNDS"); do
    for rate in $RATES; do
        for rt in gpm tokio; do
            port=47001; [ "$rt" = tokio ] && port=47002
            line=$("$target/release/loadgen" "127.0.0.1:$port" "$rate" "$CONNS" "$SECS" "$WARMUP")
            echo "runtime=$rt round=$round $line" | tee -a "$raw" >&2
        done
    done
done
# Server CPU time (user + system, all rounds and rates), from /proc.
for i in 0 1; do
    name=$([ "$i" = 0 ] && echo gpm || echo tokio)
    ticks=$(awk '{print $14 + $15}' "/proc/${pids[$i]}/stat")
    echo "cpu runtime=$name seconds=$((ticks / $(getconf CLK_TCK)))" | tee -a "$raw" >&2
done
python3 - "$raw" <<'PY'
import re, statistics, sys
rows = {}
cpu = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    if line.startswith("cpu "):
        cpu[kv["runtime"]] = kv["seconds"]
        continue
    rows.setdefault((float(kv["rate"]), kv["runtime"]), []).append(kv)
med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
print("| offered req/s | gpm req/s | tokio req/s | gpm P50 us | tokio P50 us | gpm P99 us | tokio P99 us | P99 gpm/tokio | errors gpm/tokio |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for rate in sorted({r for r, _ in rows}):
    g, t = rows[(rate, "gpm")], rows[(rate, "tokio")]
    print(f"| {rate:.0f} | {med(g,'achieved'):.0f} | {med(t,'achieved'):.0f} | {med(g,'p50_us'):.0f} | {med(t,'p50_us'):.0f} "
          f"| {med(g,'p99_us'):.0f} | {med(t,'p99_us'):.0f} | {med(g,'p99_us')/med(t,'p99_us'):.2f} "
          f"| {sum(int(r['errors']) for r in g)}/{sum(int(r['errors']) for r in t)} |")
print(f"\nServer CPU time over the whole run (user+system): gpm {cpu.get('gpm')} s, tokio {cpu.get('tokio')} s.")
PY
