#!/usr/bin/env bash
# The task allocator under valgrind memcheck: its unit tests (runtime::alloc, including the
# 4-thread stress test scaled down 20x), then the runtime-level tests of task memory
# (tests/tests/task_allocator.rs: tasks outliving the runtime, foreign-thread frees, large
# tasks). Invalid reads/writes, uses of freed or uninitialised memory, and definite leaks
# fail the run. Miri would be the first choice, but it cannot be installed offline here
# (see runtime/src/alloc/mod.rs). About 2 minutes on 2 cores, plus the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

if ! command -v valgrind >/dev/null 2>&1 || ! command -v jq >/dev/null 2>&1; then
    echo "memcheck: installing valgrind and jq" >&2
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq valgrind jq >/dev/null
fi

# Path of the test executable named $2 built by `cargo test $1 --no-run` (debug: debug
# assertions check span headers and size classes on every free).
test_binary() {
    # shellcheck disable=SC2086
    cargo test $1 --no-run --message-format=json 2>/dev/null \
        | jq -r --arg name "$2" 'select(.reason == "compiler-artifact" and .target.name == $name
                                        and .profile.test == true) | .executable' \
        | tail -n 1
}

run_memcheck() {
    local binary=$1
    shift
    if [ -z "$binary" ] || [ ! -x "$binary" ]; then
        echo "memcheck: test binary not found" >&2
        exit 1
    fi
    valgrind --tool=memcheck --error-exitcode=1 --quiet \
        --leak-check=full --errors-for-leak-kinds=definite --show-possibly-lost=no \
        "$binary" "$@" --test-threads=1
}

export GPM_SLAB_STRESS_SCALE="${GPM_SLAB_STRESS_SCALE:-20}"
run_memcheck "$(test_binary "-p gpm --lib" gpm)" alloc::
run_memcheck "$(test_binary "-p gpm-tests --test task_allocator" task_allocator)"
echo "memcheck: clean"
