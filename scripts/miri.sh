#!/usr/bin/env bash
# The task allocator's unit tests (runtime::alloc) under Miri with Tree Borrows. Needs the
# nightly toolchain's `miri` component (`rustup component add --toolchain nightly miri`,
# which downloads it: not part of offline CI, where scripts/memcheck.sh runs instead).
# Under cfg(miri) spans come from the global allocator and the stress test is scaled down
# 4000x. Several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_MIRI:-target-miri}"
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-tree-borrows}"
cargo +nightly miri test -p gpm --lib alloc:: "$@"
