#!/usr/bin/env bash
# The task allocator's unit tests (runtime::alloc, including the 4-thread stress test,
# scaled down 20x) under valgrind memcheck: invalid reads/writes, uses of freed or
# uninitialised memory, and definite leaks fail the run. Miri would be the first choice,
# but it is not installable offline here (see runtime/src/alloc/mod.rs). About 1-2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

if ! command -v valgrind >/dev/null 2>&1; then
    echo "memcheck: installing valgrind" >&2
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq valgrind >/dev/null
fi

# Build the gpm library's test binary (debug: debug assertions check span headers and
# size classes on every free) and find its path.
binary=$(cargo test -p gpm --lib --no-run --message-format=json 2>/dev/null \
    | jq -r 'select(.reason == "compiler-artifact" and .target.name == "gpm"
                    and .profile.test == true) | .executable' \
    | tail -n 1)
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
    echo "memcheck: could not find the gpm test binary" >&2
    exit 1
fi

GPM_SLAB_STRESS_SCALE="${GPM_SLAB_STRESS_SCALE:-20}" valgrind \
    --tool=memcheck --error-exitcode=1 --quiet \
    --leak-check=full --errors-for-leak-kinds=definite --show-possibly-lost=no \
    "$binary" alloc:: --test-threads=1
echo "memcheck: clean"
