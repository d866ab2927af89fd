# shellcheck shell=bash
# Shared helpers for scripts/local_cluster.sh and scripts/bench_cluster.sh:
# build the release crux-node, stop a cluster by its pid files, (re)initialise
# a cluster folder keeping its discrete-log table, start every node in the
# background (logs in DIR/logs, pid files in DIR/pids) and wait until
# `crux-node status` reports every node up. Source it; it defines functions
# and the variables ROOT and BIN only. Each function returns non-zero (after
# a message on stderr) when its step fails.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# cargo builds into CARGO_TARGET_DIR when it is set
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/crux-node"

die() {
    echo "error: $*" >&2
    exit 1
}

now_ms() {
    local ns
    ns=$(date +%s%N)
    echo $((ns / 1000000))
}

# build_release: cargo build --release --bin crux-node (quiet unless it fails).
build_release() {
    local log
    log=$(mktemp)
    echo "building the release binary (cargo build --release --bin crux-node) ..."
    if ! (cd "$ROOT" && cargo build --release --bin crux-node) >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        die "cargo build --release failed"
    fi
    rm -f "$log"
    [[ -x "$BIN" ]] || die "no binary at $BIN after the build"
}

# is_crux_pid PID: true when PID is alive and runs crux-node.
is_crux_pid() {
    local pid=$1 comm
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [[ "$comm" == crux-node* ]]
}

# stop_cluster DIR: SIGTERM every node with a pid file in DIR/pids, wait up
# to 10 s, SIGKILL what is left, remove the pid files. Prints what it did.
stop_cluster() {
    local dir=$1 pidfile pid name
    local -a pids=() names=()
    [[ -d "$dir/pids" ]] || return 0
    shopt -s nullglob
    local files=("$dir"/pids/*.pid)
    shopt -u nullglob
    for pidfile in "${files[@]}"; do
        name=$(basename "$pidfile" .pid)
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if is_crux_pid "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$name")
        else
            echo "  $name: not running (stale pid file)"
            rm -f "$pidfile"
        fi
    done
    ((${#pids[@]} > 0)) || return 0
    local deadline=$(($(date +%s) + 10)) alive i
    while :; do
        alive=0
        for pid in "${pids[@]}"; do
            if kill -0 "$pid" 2>/dev/null; then alive=1; fi
        done
        ((alive)) || break
        (($(date +%s) < deadline)) || break
        sleep 0.2
    done
    for i in "${!pids[@]}"; do
        pid=${pids[$i]}
        name=${names[$i]}
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            echo "  stopped $name (pid $pid) with SIGKILL after 10 s"
        else
            echo "  stopped $name (pid $pid)"
        fi
        rm -f "$dir/pids/$name.pid"
    done
}

# reset_dir DIR: removes what `init` and a previous run wrote in DIR (configs,
# keys, certificates, node data, logs, pid files) but keeps the processor's
# discrete-log table in DIR/data/processor/dlog. Never removes DIR itself or
# files it did not write.
reset_dir() {
    local dir=$1 keep=""
    mkdir -p "$dir"
    if [[ -d "$dir/data/processor/dlog" ]]; then
        keep="$dir/.dlog-keep"
        rm -rf "$keep"
        mv "$dir/data/processor/dlog" "$keep"
    fi
    rm -rf "$dir/certs" "$dir/keys" "$dir/data" "$dir/logs" "$dir/pids" "$dir/out"
    rm -rf "$dir/changes"
    rm -f "$dir"/authority-*.yaml "$dir"/authority-*.yaml.removed "$dir"/relay-*.yaml "$dir"/processor.yaml \
        "$dir"/user*.yaml "$dir"/cluster-key.bin*
    if [[ -n "$keep" ]]; then
        mkdir -p "$dir/data/processor"
        mv "$keep" "$dir/data/processor/dlog"
    fi
}

# init_cluster DIR DATA N M PORT [extra init args...]
init_cluster() {
    local dir=$1 data=$2 n=$3 m=$4 port=$5
    shift 5
    reset_dir "$dir"
    local log="$dir/init.log"
    if ! "$BIN" init --out "$dir" --authorities "$n" --relays "$m" --data "$data" \
        --base-port "$port" --host 127.0.0.1 "$@" >"$log" 2>&1; then
        cat "$log" >&2
        die "crux-node init failed"
    fi
    sed 's/^/  /' "$log"
}

# node_names DIR: the nodes of the cluster in DIR, one per line (from its configs).
node_names() {
    local dir=$1 f
    for f in "$dir"/authority-*.yaml "$dir"/processor.yaml "$dir"/relay-*.yaml; do
        [[ "$f" == *.card.yaml ]] && continue
        [[ -f "$f" ]] && basename "$f" .yaml
    done | sort -V
}

# start_cluster DIR [ENV=VALUE...]: starts every node of DIR in the
# background, each in its own session (so a Ctrl-C in this terminal does not
# reach them), with RUST_LOG=info unless set; the ENV=VALUE pairs go to the
# processor only.
start_cluster() {
    local dir=$1 name
    shift
    while read -r name; do
        if [[ "$name" == processor ]]; then
            start_node "$dir" "$name" "$@"
        else
            start_node "$dir" "$name"
        fi
    done < <(node_names "$dir")
}

# start_node DIR NAME [ENV=VALUE...]: starts node NAME of DIR in the
# background in its own session, log in DIR/logs, pid file in DIR/pids.
start_node() {
    local dir=$1 name=$2 pid
    shift 2
    mkdir -p "$dir/logs" "$dir/pids"
    env RUST_LOG="${RUST_LOG:-info}" "$@" setsid "$BIN" start --config "$dir/$name.yaml" \
        >"$dir/logs/$name.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/pids/$name.pid"
    echo "  started $name (pid $pid, log $dir/logs/$name.log)"
}

# check_nodes_alive DIR: fails (showing each log's tail) when a node has exited.
check_nodes_alive() {
    local dir=$1 pidfile name pid dead=0
    for pidfile in "$dir"/pids/*.pid; do
        [[ -f "$pidfile" ]] || continue
        name=$(basename "$pidfile" .pid)
        pid=$(cat "$pidfile")
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: node $name (pid $pid) exited; last lines of $dir/logs/$name.log:" >&2
            tail -n 20 "$dir/logs/$name.log" | sed 's/^/    /' >&2
            rm -f "$pidfile"
            dead=1
        fi
    done
    return "$dead"
}

# check_ports_free HOST FIRST LAST: fails when a port in FIRST..LAST is
# taken: UDP on HOST (the nodes talk QUIC) or TCP on 127.0.0.1 (each node's
# metrics endpoint, which `crux-node init` puts at the same port number).
check_ports_free() {
    local busy
    if ! command -v python3 >/dev/null 2>&1; then
        return 0 # no python3: the nodes report a taken port themselves
    fi
    busy=$(python3 -c '
import socket, sys
host, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
busy = []
for port in range(first, last + 1):
    for kind, at, name in ((socket.SOCK_DGRAM, host, "UDP"), (socket.SOCK_STREAM, "127.0.0.1", "TCP")):
        s = socket.socket(socket.AF_INET, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((at, port))
        except OSError:
            busy.append(f"{name} {port}")
        finally:
            s.close()
print(", ".join(busy))
' "$@")
    if [[ -n "$busy" ]]; then
        echo "error: port(s) $busy are in use (another cluster? stop it, or choose another --base-port)" >&2
        return 1
    fi
}

# wait_ready DIR TIMEOUT_SECONDS: polls `crux-node status` until it exits 0.
wait_ready() {
    local dir=$1 timeout=$2 start elapsed out err
    start=$(date +%s)
    out="$dir/status.out"
    err="$dir/status.err"
    while :; do
        check_nodes_alive "$dir" || return 1
        if "$BIN" status --config "$dir/user.yaml" >"$out" 2>"$err"; then
            elapsed=$(($(date +%s) - start))
            echo "  cluster up after ${elapsed} s:"
            sed 's/^/    /' "$out"
            return 0
        fi
        elapsed=$(($(date +%s) - start))
        if ((elapsed >= timeout)); then
            echo "error: the cluster in $dir is not up after ${timeout} s; last status:" >&2
            sed 's/^/    /' "$out" "$err" >&2
            return 1
        fi
        echo "  waiting for the cluster (${elapsed} s): $(tail -n 1 "$err" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-120)"
        sleep 2
    done
}
