# What hyper_timer.sh and wrk_compare.sh share (sourced, not run): the settings, one
# hyper_hello server at a time (started, waited for, stopped; killed on exit), one wrk load
# of it, and the median of the req/s of the raw lines.
#   ROUNDS (3), SECS (5), WORKERS (2).
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROUNDS="${ROUNDS:-3}"
SECS="${SECS:-5}"
WORKERS="${WORKERS:-2}"
target="${CARGO_TARGET_DIR:-target}"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT

build_hyper_hello() {
    cargo build --release -p gpm-bench --bin hyper_hello >&2
    mkdir -p results
}

# Starts a server on a port the kernel picks (a fixed port can collide with the ephemeral
# port of one of wrk's earlier connections still in TIME_WAIT) and sets server_url to it.
start_server() { # runtime timer|no-timer log [hyper|axum]
    "$target/release/hyper_hello" "$1" 127.0.0.1:0 "$WORKERS" "$2" "${4:-hyper}" > "$3" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do grep -q listening "$3" && break; sleep 0.05; done
    grep -q listening "$3" || { echo "server $1 $2 did not start: $(cat "$3")" >&2; exit 1; }
    server_url="http://$(awk '/listening on/ {print $3; exit}' "$3")"
}

stop_server() {
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}

load() { # url: sets wrk_out, rps and p99
    wrk_out=$(wrk -t1 -c64 -d"${SECS}s" --latency "$1")
    rps=$(awk '/Requests\/sec/ {print $2}' <<< "$wrk_out")
    p99=$(awk '$1 == "99%" {print $2}' <<< "$wrk_out")
}

median_rps() { # pattern raw-file: the median rps= of the lines that match
    grep "$1" "$2" | sed 's/.*rps=\([0-9.]*\).*/\1/' | sort -n \
        | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}
