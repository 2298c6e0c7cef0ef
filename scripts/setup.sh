#!/usr/bin/env bash
# Installs the system packages gpm builds against, when they are missing:
# hwloc's headers (gpm-numa, through hwlocality), libudev (hwloc links it), pkg-config.
set -euo pipefail

missing=()
pkg-config --version >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists hwloc 2>/dev/null || missing+=(libhwloc-dev)
pkg-config --exists libudev 2>/dev/null || missing+=(libudev-dev)
command -v lstopo-no-graphics >/dev/null 2>&1 || missing+=(hwloc)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "setup: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "setup: need root (or sudo) to install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
