#!/usr/bin/env bash
# The README's main job: tokio's runtime benchmarks on tokio and on gpm, side by side,
# then a table of medians and ratios. Extra arguments go to criterion (e.g. a group name).
# Workers: GPM_BENCH_WORKERS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
target="${CARGO_TARGET_DIR:-target}"
cargo bench -p gpm-bench --bench rt -- "$@"
python3 bench/scripts/summarize.py "$target"
