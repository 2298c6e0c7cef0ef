#!/usr/bin/env bash
# A screenshot of the live probes page (docs/LIVE.md): runs the probes example with --serve,
# lets the load rise for a while, asks for two stops of the world (POST /stw), and takes a
# headless Chromium screenshot of the page into docs/live.png (or $1).
#
#   bash scripts/screenshot_live.sh [OUT.png]
#
# Needs chromium (Debian: apt-get install -y chromium) and curl. Chromium's virtual time
# (--virtual-time-budget) runs the page's 1 s refresh timer ahead of the wall clock, so the
# charts cover the last seconds of real time at a tighter spacing than a browser would show.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/live.png}
addr=${GPM_LIVE_ADDR:-127.0.0.1:9187}
warmup=${GPM_LIVE_WARMUP:-10}
command -v chromium >/dev/null || { echo "chromium is not installed (apt-get install -y chromium)" >&2; exit 1; }
cargo build -q --release -p gpm --features probes-server --example probes
target=${CARGO_TARGET_DIR:-target}
"$target/release/examples/probes" $((warmup + 40)) --serve "$addr" >/dev/null 2>&1 &
example=$!
trap 'kill "$example" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -sf "http://$addr/metrics" >/dev/null && break
    sleep 0.1
done
sleep "$warmup"
curl -sf -X POST "http://$addr/stw" >/dev/null
sleep 1
curl -sf -X POST "http://$addr/stw" >/dev/null
# Chromium refuses to run as root without --no-sandbox.
sandbox=()
[ "$(id -u)" = 0 ] && sandbox=(--no-sandbox)
chromium --headless "${sandbox[@]}" --disable-gpu --hide-scrollbars \
    --screenshot="$PWD/$out" --window-size=1280,900 --virtual-time-budget=15000 \
    "http://$addr/" 2>/dev/null
echo "wrote $out"
