#!/usr/bin/env bash
# The README's main command: tokio's runtime workloads on tokio and on gpm (medians, ratios),
# then a quick Little's-law sweep, each printing its table. Results (CSV, SVG) go to
# target/lab/ (or $GPM_LAB_OUT). Extra arguments go to `compare` (e.g. --runs 101).
# Criterion's version of the comparison is scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out="${GPM_LAB_OUT:-target/lab}"
cargo build -p gpm-bench --release --bin gpm-lab
lab="${CARGO_TARGET_DIR:-target}/release/gpm-lab"
echo "== compare: tokio's workloads, tokio vs gpm"
"$lab" --out "$out" compare "$@"
echo
echo "== littles-law (quick: 6 points of 1.5 s; gpm-lab littles-law --help for more)"
"$lab" --out "$out" littles-law --points 6 --seconds-per-point 1.5
