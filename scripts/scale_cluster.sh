#!/usr/bin/env bash
# Issue 13, "Scale", with real processes: 3 authorities, the processor and
# M relays (default 100), each its own crux-node process on 127.0.0.1, every
# relay serving ROWS rows (default 1000) of one seeded generated CSV
# (scripts/gen_bench_data.py; `crux-node init` gives relay j slice j). Runs
# count, sum, mean, variance, an exact median and a histogram REPS times each
# (after one warm-up count and median), checks every answer against the
# plaintext computed by scripts/plain_stats.py, and reports per query:
# - the CPU time of each authority, the processor and all relays together,
#   from /proc/PID/stat (utime + stime) before and after the REPS queries,
#   divided by REPS; "net" subtracts each process's idle CPU rate (measured
#   for IDLE seconds before the queries: the processor's readiness probes of
#   every peer every 5 s, its committee poll, the nodes' timers) times the
#   queries' wall time; "raw" does not;
# - the wall time per query (one `crux-node query` process each, including
#   its start and TLS handshake) and the processor's own elapsed_ms (its log);
# and, at the end, each node's resident memory (VmRSS, VmHWM).
#
# Usage: scripts/scale_cluster.sh [--relays M] [--rows ROWS] [--reps REPS]
#                                 [--idle SECS] [--dir DIR] [--base-port P] [--no-build | --bin FILE]
# Defaults: 100 relays, 1000 rows per relay, 10 reps, 20 s idle,
# target/scale-cluster, ports 7800.. (UDP for QUIC, TCP for metrics: P to
# P + 3 + M). --bin runs the given crux-node instead of building one. The
# nodes run a copy of the binary (DIR/bin), so a build meanwhile does not
# touch them. The cluster is stopped on exit, also on failure (logs stay in
# DIR/logs). Needs python3 (data, plaintext truth) and about 35 MB of memory
# per relay at 100 relays (each relay's grows with the cluster's size).
set -euo pipefail

# shellcheck source=scripts/cluster_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"

RELAYS=100
ROWS=1000
REPS=10
IDLE=20
DIR="$ROOT/target/scale-cluster"
BASE_PORT=7800
BUILD=1
AUTHORITIES=3
LABELS=("Generated" "Values" "2026")
EDGES="0,1000,10000,100000"
STATS=(count sum mean variance median histogram)
READY_TIMEOUT=300

while (($# > 0)); do
    case "$1" in
    --relays) RELAYS=${2:?--relays needs M}; shift 2 ;;
    --rows) ROWS=${2:?--rows needs ROWS}; shift 2 ;;
    --reps) REPS=${2:?--reps needs REPS}; shift 2 ;;
    --idle) IDLE=${2:?--idle needs SECS}; shift 2 ;;
    --dir) DIR=${2:?--dir needs DIR}; shift 2 ;;
    --base-port) BASE_PORT=${2:?--base-port needs P}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --bin) BIN=${2:?--bin needs FILE}; BUILD=0; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done
for v in RELAYS ROWS REPS IDLE BASE_PORT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "--${v,,} must be a number (got ${!v})"
done
((RELAYS >= 2 && RELAYS <= 1000)) || die "--relays must be in 2..1000 (got $RELAYS)"
((REPS >= 1 && REPS <= 1000)) || die "--reps must be in 1..1000 (got $REPS)"
((ROWS >= 1)) || die "--rows must be at least 1"
((BASE_PORT >= 1024 && BASE_PORT + AUTHORITIES + RELAYS < 32768)) || die "ports $BASE_PORT.. must stay in 1024..32767"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
OUT="$DIR/out"
CLK_TCK=$(getconf CLK_TCK)

cleanup() {
    local rc=$?
    if compgen -G "$DIR/pids/*.pid" >/dev/null; then
        echo "stopping the cluster in $DIR ..."
        stop_cluster "$DIR" | tail -n 3
    fi
    if ((rc != 0)); then echo "scale_cluster.sh failed (exit $rc); node logs are in $DIR/logs" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# proc_stat_files: the /proc/PID/stat of every node, one "FILE ROLE" line
# each (ROLE: authority-i, processor, or relays for every relay).
proc_stat_files() {
    local pidfile name pid
    for pidfile in "$DIR"/pids/*.pid; do
        name=$(basename "$pidfile" .pid)
        pid=$(cat "$pidfile")
        is_crux_pid "$pid" || die "node $name (pid $pid) is not running; see $DIR/logs/$name.log"
        [[ "$name" == relay-* ]] && name=relays
        echo "/proc/$pid/stat $name"
    done
}

# snapshot OUT_FILE: "FILE TICKS" (utime + stime) of every node, and the time in ns.
snapshot() {
    local files
    mapfile -t files < <(cut -d' ' -f1 "$OUT/roles")
    # fields after "(comm) ": state is $1, so utime and stime are $12 and $13
    awk '{ sub(/^.*\) /, ""); print FILENAME, $12 + $13 }' "${files[@]}" >"$1"
    date +%s%N >"$1.ns"
}

# role_ms BEFORE AFTER: "ROLE CPU_MS ELAPSED_S" per role between two snapshots.
role_ms() {
    local secs
    secs=$(awk -v a="$(cat "$1.ns")" -v b="$(cat "$2.ns")" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')
    awk -v tck="$CLK_TCK" -v secs="$secs" '
        FILENAME == ARGV[1] { role[$1] = $2; next }
        FILENAME == ARGV[2] { before[$1] = $2; next }
        { d[role[$1]] += $2 - before[$1] }
        END { for (r in d) printf "%s %.1f %s\n", r, d[r] * 1000 / tck, secs }
    ' "$OUT/roles" "$1" "$2" | sort -V
}

# check_answer STAT ANSWER_JSON: prints Crux's exact answer; fails unless it
# equals the plaintext one in $OUT/plain.json.
check_answer() {
    python3 - "$1" "$2" "$OUT/plain.json" <<'EOF'
import json, sys
from decimal import Decimal
from fractions import Fraction
stat, answer, plain = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
truth = plain["stats"][stat]
if stat == "histogram":
    crux, want = ",".join(str(b["count"]) for b in answer["buckets"]), truth["value"]
    ok = crux == want
else:
    frac = lambda t: Fraction(t) if "/" in t else Fraction(Decimal(t))
    crux, want = answer["exact_value"], truth.get("exact", truth["value"])
    ok = frac(crux) == frac(want)
print(crux)
if not ok:
    sys.exit(f"{stat}: Crux answered {crux}, the plaintext is {want}")
EOF
}

# run_queries NAME REPS STAT [ARGS...]: REPS exact queries, answers checked,
# query ids in $OUT/NAME.ids.
run_queries() {
    local name=$1 reps=$2 stat=$3 i
    shift 3
    : >"$OUT/$name.ids"
    for ((i = 0; i < reps; i++)); do
        if ! "$BIN" query "$stat" --exact "$@" --config "$DIR/user.yaml" --json "${LABELS[@]}" \
            >"$OUT/$name.json" 2>"$OUT/$name.err"; then
            sed 's/^/    /' "$OUT/$name.err" >&2
            die "crux-node query $stat failed"
        fi
        check_answer "$stat" "$OUT/$name.json" >"$OUT/$name.answer"
        sed -n 's/.*"query_id":"\([0-9a-f]*\)".*/\1/p' "$OUT/$name.json" >>"$OUT/$name.ids"
    done
}

# processor_ms NAME: median elapsed_ms the processor logged for the query ids of NAME.
processor_ms() {
    sed 's/\x1b\[[0-9;]*m//g' "$DIR/logs/processor.log" |
        awk -v ids="$OUT/$1.ids" '
            BEGIN { while ((getline id < ids) > 0) want[id] = 1 }
            /answered/ && match($0, /query_id=[0-9a-f]+/) {
                id = substr($0, RSTART + 9, RLENGTH - 9)
                if ((id in want) && match($0, /elapsed_ms=[0-9]+/)) print substr($0, RSTART + 11, RLENGTH - 11) + 0
            }' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'
}

# report NAME: one line of CPU per query per role (net of idle, then raw).
report() {
    local name=$1 stat=$2
    awk -v name="$stat" -v reps="$REPS" -v relays="$RELAYS" -v answer="$(cat "$OUT/$name.answer")" \
        -v proc_ms="$(processor_ms "$name")" '
        FILENAME == ARGV[1] { idle[$1] = $2 / $3; next }
        { raw[$1] = $2 / reps; net[$1] = ($2 - idle[$1] * $3) / reps; wall = $3 / reps * 1000 }
        END {
            printf "%-10s %8.0f %8s |", name, wall, proc_ms
            for (i = 1; i <= 3; i++) { r = "authority-" i; printf " %7.1f (%5.1f)", net[r], raw[r] }
            printf " | %7.1f (%5.1f) | %8.1f (%6.1f) %6.2f | %s\n", net["processor"], raw["processor"], net["relays"], raw["relays"], net["relays"] / relays, answer
        }' "$OUT/idle.ms" "$OUT/$name.ms"
}

# memory_report: VmRSS and VmHWM of the authorities and the processor (with
# VmRSS split into anonymous memory, the heap, and file pages, mostly the
# memory-mapped discrete-log table, which the kernel can drop), and the
# relays' range and sum.
memory_report() {
    local file role pid
    echo "resident memory after the queries (VmRSS / VmHWM, MB; VmRSS = anonymous + file pages):"
    while read -r file role; do
        pid=$(basename "$(dirname "$file")")
        awk -v role="$role" '/^VmRSS/ { rss = $2 } /^VmHWM/ { hwm = $2 } /^RssAnon/ { anon = $2 } /^RssFile/ { file = $2 }
            END { print role, rss, hwm, anon, file }' "/proc/$pid/status"
    done <"$OUT/roles" | awk '
        $1 != "relays" { printf "  %-12s %7.1f / %7.1f (anonymous %.1f, file %.1f)\n", $1, $2 / 1024, $3 / 1024, $4 / 1024, $5 / 1024; next }
        { n++; s += $2; h += $3; if (n == 1 || $2 < lo) lo = $2; if ($2 > hi) hi = $2 }
        END { printf "  %d relays: RSS %.1f-%.1f MB each, %.0f MB together (VmHWM %.0f MB together)\n", n, lo / 1024, hi / 1024, s / 1024, h / 1024 }'
}

stat_args() {
    case "$1" in
    histogram) echo "--edges $EDGES" ;;
    *) echo "" ;;
    esac
}

if ((BUILD)); then build_release; fi
[[ -x "$BIN" ]] || die "no crux-node at $BIN (run without --no-build)"
# run a private copy, so that a build started meanwhile cannot change the
# binary under the running nodes and the query processes
mkdir -p "$DIR/bin"
[[ "$BIN" -ef "$DIR/bin/crux-node" ]] || cp "$BIN" "$DIR/bin/crux-node"
BIN="$DIR/bin/crux-node"
START_ALL=$(date +%s)
echo "crux-node: $("$BIN" --version); $(nproc) cores; $(date -u +%Y-%m-%dT%H:%M:%SZ); $RELAYS relays x $ROWS rows"

DATA="$DIR/data.csv"
TOTAL_ROWS=$((RELAYS * ROWS))
if [[ ! -f "$DATA" || "$(cat "$DATA.rows" 2>/dev/null || true)" != "$TOTAL_ROWS seed 2026" ]]; then
    echo "generating $TOTAL_ROWS rows into $DATA ..."
    python3 "$ROOT/scripts/gen_bench_data.py" "$DATA" "$TOTAL_ROWS" 2026
    echo "$TOTAL_ROWS seed 2026" >"$DATA.rows"
fi

if compgen -G "$DIR/pids/*.pid" >/dev/null; then stop_cluster "$DIR"; fi
check_ports_free 127.0.0.1 "$BASE_PORT" $((BASE_PORT + AUTHORITIES + RELAYS)) || die "cannot start the cluster"
T=$(date +%s)
init_cluster "$DIR" "$DATA" "$AUTHORITIES" "$RELAYS" "$BASE_PORT" --exact --budget 100000 --header-rows 3 |
    grep -v '^  relay-' || true
[[ -f "$DIR/user.yaml" ]] || die "crux-node init wrote no user.yaml"
echo "init: $(($(date +%s) - T)) s"
T=$(date +%s)
# the processor's default rate limit (120 queries a minute) would stop the run
start_cluster "$DIR" CRUX__PROCESSOR__RATE_LIMIT_PER_MINUTE=100000 | grep -v 'started relay-' || true
echo "  started $RELAYS relays"
wait_ready "$DIR" "$READY_TIMEOUT" | grep -v '^    relay-' || true
"$BIN" status --config "$DIR/user.yaml" >/dev/null 2>&1 || die "the cluster in $DIR did not come up"
echo "start until every node is up: $(($(date +%s) - T)) s"

mkdir -p "$OUT"
proc_stat_files >"$OUT/roles"
echo "plaintext truth: scripts/plain_stats.py on $DATA ..."
python3 "$ROOT/scripts/plain_stats.py" --file "$DATA" --column A --edges "$EDGES" \
    --stats "$(IFS=,; echo "${STATS[*]}")" >"$OUT/plain.json"
echo "warm-up: one count and one median ..."
run_queries warmup-count 1 count
run_queries warmup-median 1 median

echo "idle CPU for $IDLE s ..."
snapshot "$OUT/idle.before"
sleep "$IDLE"
snapshot "$OUT/idle.after"
role_ms "$OUT/idle.before" "$OUT/idle.after" >"$OUT/idle.ms"
awk '{ printf "  idle %-12s %6.1f ms CPU per second\n", $1, $2 / $3 }' "$OUT/idle.ms"

echo
echo "CPU per query, ms: net of idle (raw); $REPS queries each; wall = one crux-node query process; proc = processor's elapsed_ms (median)"
printf "%-10s %8s %8s | %15s %15s %15s | %15s | %17s %6s | %s\n" query "wall ms" "proc ms" authority-1 authority-2 \
    authority-3 processor "all relays" "/relay" "answer (= plaintext)"
for stat in "${STATS[@]}"; do
    snapshot "$OUT/$stat.before"
    # shellcheck disable=SC2046
    run_queries "$stat" "$REPS" "$stat" $(stat_args "$stat")
    snapshot "$OUT/$stat.after"
    role_ms "$OUT/$stat.before" "$OUT/$stat.after" >"$OUT/$stat.ms"
    report "$stat" "$stat"
done
echo "(every answer above equals scripts/plain_stats.py's on the same file)"
echo
memory_report
echo "total: $(($(date +%s) - START_ALL)) s"
