#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs every test of the workspace
# (unit, integration, doc tests) with optimisations, as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --release "$@"
