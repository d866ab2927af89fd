#!/usr/bin/env bash
# Runs a whole Crux cluster on this machine (127.0.0.1) for a demo: builds the
# release crux-node, writes a fresh cluster folder with `crux-node init
# --exact` (keeping an already built discrete-log table), starts N
# authorities, the processor and M relays in the background, waits until
# `crux-node status` says every node is up, then asks for sum, mean, variance
# and median of a demo column, exact and with DP noise, beside the plaintext
# truth computed by scripts/plain_stats.py (Python, no Crux). Leaves the
# cluster running; `--stop` stops it. With `--console`, also starts the web
# console (`crux-node console`, as the cluster's user) once the cluster is
# up and prints its URL; `--stop` stops it with the nodes.
#
# Usage: scripts/local_cluster.sh [--data FILE] [--header-rows H] [--authorities N]
#                                 [--threshold T] [--relays M] [--dir DIR] [--base-port P]
#                                 [--stop] [--console] [--console-port PORT]
#        scripts/local_cluster.sh --add-authority | --remove-authority NAME | --rotate
#                                 [--threshold T] [--dir DIR]
#
# The second form changes the committee of the cluster running in DIR, doing
# every operator's step (scripts/committee_change.sh): propose, approve by t
# members, the ceremony on every participant at once, then waits until the
# running nodes switch to the new epoch (no restart) and asks an exact count.
set -euo pipefail

# shellcheck source=scripts/cluster_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"

DATA="$ROOT/demo/areas.xlsx"
# the demo workbook has 3 header rows (group, sub-label, year)
HEADER_ROWS=3
AUTHORITIES=3
THRESHOLD=""
RELAYS=3
DIR="$ROOT/target/local-cluster"
BASE_PORT=7100
STOP=0
DLOG_BITS=22
READY_TIMEOUT=120
# The demo column; the truth is computed from the same file by Python (stdlib).
LABELS=("Population" "All usual residents" "2021")
TRUTH_COLUMN=H
DP_BOUNDS="0:3000000"
CONSOLE=0
CONSOLE_PORT=8080
CHANGE=()

usage() {
    sed -n '13,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while (($# > 0)); do
    case "$1" in
    --data) DATA=${2:?--data needs FILE}; shift 2 ;;
    --header-rows) HEADER_ROWS=${2:?--header-rows needs H}; shift 2 ;;
    --authorities) AUTHORITIES=${2:?--authorities needs N}; shift 2 ;;
    --threshold) THRESHOLD=${2:?--threshold needs T}; shift 2 ;;
    --relays) RELAYS=${2:?--relays needs M}; shift 2 ;;
    --dir) DIR=${2:?--dir needs DIR}; shift 2 ;;
    --base-port) BASE_PORT=${2:?--base-port needs P}; shift 2 ;;
    --stop) STOP=1; shift ;;
    --console) CONSOLE=1; shift ;;
    --console-port) CONSOLE_PORT=${2:?--console-port needs PORT}; CONSOLE=1; shift 2 ;;
    --add-authority) CHANGE=(add); shift ;;
    --remove-authority) CHANGE=(remove "${2:?--remove-authority needs NAME}"); shift 2 ;;
    --rotate) CHANGE=(rotate); shift ;;
    -h | --help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
    esac
done

THRESHOLD_ARGS=()
if [[ -n "$THRESHOLD" ]]; then
    [[ "$THRESHOLD" =~ ^[0-9]+$ ]] || die "--threshold must be a number (got $THRESHOLD)"
    THRESHOLD_ARGS=(--threshold "$THRESHOLD")
fi
for v in AUTHORITIES RELAYS BASE_PORT HEADER_ROWS CONSOLE_PORT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "--${v,,} must be a number (got ${!v})"
done
if ((${#CHANGE[@]} > 0)); then
    ((STOP == 0)) || die "--stop does not go with a committee change"
    exec "$ROOT/scripts/committee_change.sh" --dir "$DIR" "${THRESHOLD_ARGS[@]}" "${CHANGE[@]}"
fi
if ((STOP)) && [[ ! -d "$DIR" ]]; then
    echo "no cluster folder $DIR: nothing to stop."
    exit 0
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
STOP_CMD="scripts/local_cluster.sh --stop"
[[ "$DIR" == "$ROOT/target/local-cluster" ]] || STOP_CMD+=" --dir $DIR"

if ((STOP)); then
    echo "stopping the cluster in $DIR ..."
    stop_cluster "$DIR"
    echo "done."
    exit 0
fi

[[ -f "$DATA" ]] || die "data file $DATA not found"
DATA=$(cd "$(dirname "$DATA")" && pwd)/$(basename "$DATA")
TRUTH_FILE=$DATA

# On any failure after the nodes start: stop them (logs stay in DIR/logs).
STARTED=0
on_exit() {
    local rc=$?
    if ((rc != 0 && STARTED)); then
        echo "error: step failed (exit $rc); stopping the nodes started (logs kept in $DIR/logs):" >&2
        stop_cluster "$DIR" >&2
    fi
}
trap on_exit EXIT

build_release

if compgen -G "$DIR/pids/*.pid" >/dev/null; then
    echo "stopping the cluster still running in $DIR ..."
    stop_cluster "$DIR"
fi

check_ports_free 127.0.0.1 "$BASE_PORT" $((BASE_PORT + AUTHORITIES + RELAYS)) || die "cannot start the cluster"

echo "writing a fresh cluster to $DIR ($AUTHORITIES authorities, $RELAYS relays, ports from $BASE_PORT, data $DATA) ..."
echo "  (the authorities make their key shares with a distributed key generation: one keygen process each)"
init_cluster "$DIR" "$DATA" "$AUTHORITIES" "$RELAYS" "$BASE_PORT" --exact --dlog-bits "$DLOG_BITS" \
    --header-rows "$HEADER_ROWS" --publish-columns "${THRESHOLD_ARGS[@]}"

echo "starting the nodes ..."
if [[ ! -d "$DIR/data/processor/dlog" ]]; then
    echo "  (first start: the processor builds its 2^$DLOG_BITS-entry discrete-log table, a few seconds)"
else
    echo "  (reusing the discrete-log table in $DIR/data/processor/dlog)"
fi
STARTED=1
start_cluster "$DIR"
echo "waiting until every node is up (at most ${READY_TIMEOUT} s) ..."
wait_ready "$DIR" "$READY_TIMEOUT" || die "the cluster did not come up"

USER_CFG="$DIR/user.yaml"
OUT="$DIR/out"
mkdir -p "$OUT"

# start_console: `crux-node console` in the background (log in
# DIR/logs/console.log, pid file beside the nodes' so that --stop stops it);
# waits for the URL it prints.
CONSOLE_URL=""
start_console() {
    local pid i
    setsid "$BIN" console --config "$USER_CFG" --listen "127.0.0.1:$CONSOLE_PORT" \
        >"$DIR/logs/console.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$DIR/pids/console.pid"
    for ((i = 0; i < 100; i++)); do
        CONSOLE_URL=$(sed -n 's/^console: //p' "$DIR/logs/console.log" | head -n 1)
        [[ -n "$CONSOLE_URL" ]] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$DIR/pids/console.pid"
            sed 's/^/    /' "$DIR/logs/console.log" >&2
            die "the console did not start (port $CONSOLE_PORT taken? choose another with --console-port)"
        fi
        sleep 0.1
    done
    [[ -n "$CONSOLE_URL" ]] || die "the console printed no URL within 10 s (log: $DIR/logs/console.log)"
    echo "web console (pid $pid, log $DIR/logs/console.log): $CONSOLE_URL"
}
if ((CONSOLE)); then
    start_console
fi
console_line() {
    if ((CONSOLE)); then
        echo "  console: $CONSOLE_URL (stopped with the cluster)"
    fi
}

# query NAME ARGS...: runs one query with --json into $OUT/NAME.json; dies with its message on failure.
query() {
    local name=$1
    shift
    if ! "$BIN" query "$@" --config "$USER_CFG" --json "${LABELS[@]}" >"$OUT/$name.json" 2>"$OUT/$name.err"; then
        echo "error: crux-node query $* --config $USER_CFG --json ${LABELS[*]} failed:" >&2
        sed 's/^/    /' "$OUT/$name.err" >&2
        return 1
    fi
}

if [[ "$DATA" != "$ROOT/demo/areas.xlsx" ]]; then
    cat <<EOF
custom data: no demo queries (they use the demo column "Population" "All usual residents" 2021).
The cluster is running (logs in $DIR/logs, pid files in $DIR/pids).
  status:  $BIN status --config $USER_CFG
  committee: $BIN committee status --config $USER_CFG
  columns: $BIN columns --config $USER_CFG
  query:   $BIN query sum --exact --config $USER_CFG GROUP [SUB-LABEL [PERIOD]]
           $BIN query mean --epsilon 1 --bounds LO:HI --config $USER_CFG GROUP [SUB-LABEL [PERIOD]]
  stop:    $STOP_CMD
EOF
    console_line
    exit 0
fi

echo "the committee:"
"$BIN" committee status --config "$USER_CFG" | sed 's/^/  /' || true
echo "querying ${LABELS[*]} (exact, and DP with epsilon 1 and bounds $DP_BOUNDS) ..."
for stat in sum mean variance median; do
    query "$stat-exact" "$stat" --exact
    query "$stat-dp" "$stat" --epsilon 1 --bounds "$DP_BOUNDS"
done
if ! command -v python3 >/dev/null 2>&1; then
    echo
    echo "python3 not found: Crux's answers without the plaintext truth beside them:"
    for stat in sum mean variance median; do
        for mode in exact dp; do
            value=$(sed -n 's/.*"exact_value":"\([^"]*\)".*/\1/p' "$OUT/$stat-$mode.json")
            [[ -n "$value" ]] || value=$(sed -n 's/.*"value":\([^,}]*\).*/\1/p' "$OUT/$stat-$mode.json")
            printf '  %-9s %-6s %s\n' "$stat" "$mode" "$value"
        done
    done
    echo
    echo "The cluster is running (logs in $DIR/logs). Stop it with: $STOP_CMD"
    console_line
    exit 0
fi
python3 "$ROOT/scripts/plain_stats.py" --file "$TRUTH_FILE" --column "$TRUTH_COLUMN" \
    --stats sum,mean,variance,median >"$OUT/truth.json"

python3 - "$OUT" "${LABELS[*]}" "$TRUTH_FILE" "$TRUTH_COLUMN" "$DP_BOUNDS" <<'EOF'
import json, sys
from decimal import Decimal
from fractions import Fraction

out, labels, truth_file, column, bounds = sys.argv[1:6]
truth = json.load(open(f"{out}/truth.json"))

def frac(text):
    return Fraction(text) if "/" in text else Fraction(Decimal(text))

def show(fr):
    if fr.denominator == 1:
        return str(fr.numerator)
    q = round(fr * 10**6)
    sign = "-" if q < 0 else ""
    return f"{sign}{abs(q) // 10**6}.{abs(q) % 10**6:06d} (= {fr.numerator}/{fr.denominator})"

rows = []
for stat in ["sum", "mean", "variance", "median"]:
    exact = json.load(open(f"{out}/{stat}-exact.json"))
    dp = json.load(open(f"{out}/{stat}-dp.json"))
    t = truth["stats"][stat]
    crux, plain = frac(exact["exact_value"]), frac(t.get("exact", t["value"]))
    rows.append((stat, show(crux), f"{dp['value']:.2f}", show(plain), "yes" if crux == plain else "NO"))
    relays, count = exact["relays"], exact["rows"]
head = ("statistic", "exact (Crux)", "DP eps=1 (Crux)", "plaintext truth", "exact = truth")
w = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
line = lambda r: " | ".join(str(c).ljust(w[i]) if i in (0, 4) else str(c).rjust(w[i]) for i, c in enumerate(r)).rstrip()
print()
print(f"column {labels}: {count} values over {relays} relays")
print(f"plaintext truth: scripts/plain_stats.py (Python, exact fractions) on {truth_file} column {column}")
print(line(head))
print("-+-".join("-" * x for x in w))
for r in rows:
    print(line(r))
print(f"DP answers carry noise calibrated to the bounds {bounds}; each costs epsilon 1 of the budget (10 per dataset).")
print("At these bounds the variance's noise is larger than the variance itself: its DP answer ranges from 0 (clamped)")
print("to several times the truth. Narrower bounds give less noise.")
print()
if any(r[4] != "yes" for r in rows):
    sys.exit("error: an exact Crux answer differs from the plaintext truth")
EOF

cat <<EOF
The cluster is running (logs in $DIR/logs, pid files in $DIR/pids).
  status:  $BIN status --config $USER_CFG
  committee: $BIN committee status --config $USER_CFG
  columns: $BIN columns --config $USER_CFG
  query:   $BIN query mean --exact --config $USER_CFG "Population" "All usual residents" 2021
           $BIN query median --epsilon 1 --bounds $DP_BOUNDS --config $USER_CFG "Population" "All usual residents" 2021
  metrics: curl http://127.0.0.1:$BASE_PORT/metrics   (each node on TCP at its own port; also /healthz, /readyz)
  stop:    $STOP_CMD
EOF
console_line
