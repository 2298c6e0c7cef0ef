#!/usr/bin/env bash
# Loom models of the concurrency protocols. Our own cfg name (`gpm_loom`, not `loom`, which
# would switch tokio into its loom mode) and a separate target directory, so the normal
# build cache is not invalidated by the different RUSTFLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg gpm_loom"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_LOOM:-target-loom}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
cargo test -p gpm -p gpm-scheduler --lib --release loom_tests "$@"
