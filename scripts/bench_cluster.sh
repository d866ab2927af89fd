#!/usr/bin/env bash
# End-to-end timings of every statistic on a local Crux cluster, with the
# plaintext computation on the same data as the floor.
#
# Part A: the demo data (demo/areas.xlsx, column "Population" "All usual
#   residents" 2021) on 3 authorities + processor + 3 relays (target/bench-cluster,
#   ports from 7400).
# Part B: 10^6 generated rows (scripts/gen_bench_data.py, seeded) in
#   target/bench-cluster-1m/data.csv on 3 authorities + processor + 8 relays,
#   each relay serving 1/8 of the rows (ports from 7500).
#
# Each statistic is timed from the shell around `crux-node query` (wall time:
# process start, config and key loading, the CLI's TLS handshake with the
# processor and the whole protocol round trip), REPS_A / REPS_B times after
# one warm-up query; the median is printed. The floor is
# scripts/plain_stats.py on the same file (Python, time.perf_counter): the
# statistic alone on parsed values, and file read + parse + statistic.
# Every Crux exact answer is checked against the plaintext one. The table
# (scripts/bench_report.py) also shows the processor's own elapsed_ms for the
# same queries, from its log.
#
# Usage: scripts/bench_cluster.sh [--skip-a] [--skip-b]
# Environment: REPS_A (default 5), REPS_B (default 5), ROWS_B (default 1000000).
# Both clusters are stopped on exit.
set -euo pipefail

# shellcheck source=scripts/cluster_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"

REPS_A=${REPS_A:-5}
REPS_B=${REPS_B:-5}
ROWS_B=${ROWS_B:-1000000}
DIR_A="$ROOT/target/bench-cluster"
DIR_B="$ROOT/target/bench-cluster-1m"
PORT_A=7400
PORT_B=7500
DLOG_BITS=22
RUN_A=1
RUN_B=1
while (($# > 0)); do
    case "$1" in
    --skip-a) RUN_A=0; shift ;;
    --skip-b) RUN_B=0; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $1" ;;
    esac
done

# The processor's default rate limit (120 queries a minute) and the default
# privacy budget would stop a benchmark: raise both for these clusters only.
PROCESSOR_ENV=(CRUX__PROCESSOR__RATE_LIMIT_PER_MINUTE=100000)
# both data sets have 3 header rows (demo/areas.xlsx; gen_bench_data.py)
INIT_ARGS=(--exact --budget 100000 --dlog-bits "$DLOG_BITS" --header-rows 3)

cleanup() {
    local rc=$?
    for d in "$DIR_A" "$DIR_B"; do
        if compgen -G "$d/pids/*.pid" >/dev/null; then
            echo "stopping the cluster in $d ..."
            stop_cluster "$d"
        fi
    done
    if ((rc != 0)); then echo "bench_cluster.sh failed (exit $rc); node logs are in $DIR_A/logs and $DIR_B/logs" >&2; fi
}
trap cleanup EXIT

STATS=(count sum mean variance stddev min max median quantile histogram)
EDGES="0,1000,10000,100000"
QUANTILE=0.9

# stat_args STAT: the extra query arguments of STAT.
stat_args() {
    case "$1" in
    quantile) echo "--quantile $QUANTILE" ;;
    histogram) echo "--edges $EDGES" ;;
    *) echo "" ;;
    esac
}

# time_query OUT NAME REPS USER_CFG -- QUERY ARGS...: runs the query REPS
# times, writes the wall times in ns to OUT/NAME.ns and the last answer to
# OUT/NAME.json, the query ids to OUT/NAME.ids; fails with the query's message.
time_query() {
    local out=$1 name=$2 reps=$3 cfg=$4 i t0 t1
    shift 5
    : >"$out/$name.ns"
    : >"$out/$name.ids"
    for ((i = 0; i < reps; i++)); do
        t0=$(date +%s%N)
        if ! "$BIN" query "$@" --config "$cfg" --json "${LABELS[@]}" >"$out/$name.json" 2>"$out/$name.err"; then
            echo "error: crux-node query $* --config $cfg --json ${LABELS[*]} failed:" >&2
            sed 's/^/    /' "$out/$name.err" >&2
            return 1
        fi
        t1=$(date +%s%N)
        echo $((t1 - t0)) >>"$out/$name.ns"
        sed -n 's/.*"query_id":"\([0-9a-f]*\)".*/\1/p' "$out/$name.json" >>"$out/$name.ids"
    done
}

# bench_part TITLE DIR DATA RELAYS PORT REPS BOUNDS TRUTH_COLUMN
bench_part() {
    local title=$1 dir=$2 data=$3 relays=$4 port=$5 reps=$6 bounds=$7 column=$8 stat
    local out="$dir/bench"
    echo
    echo "=== $title ==="
    if compgen -G "$dir/pids/*.pid" >/dev/null; then stop_cluster "$dir"; fi
    check_ports_free 127.0.0.1 "$port" $((port + 3 + relays)) || die "cannot start the cluster"
    init_cluster "$dir" "$data" 3 "$relays" "$port" "${INIT_ARGS[@]}"
    start_cluster "$dir" "${PROCESSOR_ENV[@]}"
    wait_ready "$dir" 180 || die "the cluster in $dir did not come up"
    mkdir -p "$out"
    local cfg="$dir/user.yaml"
    echo "warm-up query ..."
    time_query "$out" warmup 1 "$cfg" -- count --exact
    for stat in "${STATS[@]}"; do
        # shellcheck disable=SC2046
        time_query "$out" "$stat-exact" "$reps" "$cfg" -- "$stat" --exact $(stat_args "$stat")
        echo "  $stat --exact: $(tr '\n' ' ' <"$out/$stat-exact.ns" | awk '{for (i = 1; i <= NF; i++) printf "%.0f ", $i / 1e6}') ms"
    done
    for stat in sum mean median; do
        time_query "$out" "$stat-dp" "$reps" "$cfg" -- "$stat" --epsilon 1 --bounds "$bounds"
        echo "  $stat --epsilon 1: $(tr '\n' ' ' <"$out/$stat-dp.ns" | awk '{for (i = 1; i <= NF; i++) printf "%.0f ", $i / 1e6}') ms"
    done
    # process start alone, for scale
    : >"$out/start.ns"
    for ((i = 0; i < reps; i++)); do
        t0=$(date +%s%N)
        "$BIN" --version >/dev/null
        t1=$(date +%s%N)
        echo $((t1 - t0)) >>"$out/start.ns"
    done
    echo "plaintext floor: scripts/plain_stats.py --time on $data ..."
    python3 "$ROOT/scripts/plain_stats.py" --file "$data" --column "$column" --time --repeat "$reps" \
        --quantile "$QUANTILE" --edges "$EDGES" >"$out/plain.json"
    stop_cluster "$dir"
    python3 "$ROOT/scripts/bench_report.py" "$out" "$title" "$reps" "$relays" "$bounds" "${STATS[*]}" "$dir/logs/processor.log"
}

build_release
echo "crux-node: $("$BIN" --version); $(nproc) cores; $(date -u +%Y-%m-%dT%H:%M:%SZ)"
START_ALL=$(date +%s)

if ((RUN_A)); then
    LABELS=("Population" "All usual residents" "2021")
    bench_part "Part A: demo/areas.xlsx, Population / All usual residents / 2021" \
        "$DIR_A" "$ROOT/demo/areas.xlsx" 3 "$PORT_A" "$REPS_A" "0:3000000" H
fi

if ((RUN_B)); then
    mkdir -p "$DIR_B"
    DATA_B="$DIR_B/data.csv"
    STAMP="$DIR_B/data.csv.rows"
    if [[ ! -f "$DATA_B" || "$(cat "$STAMP" 2>/dev/null || true)" != "$ROWS_B seed 2026" ]]; then
        echo
        echo "generating $ROWS_B rows into $DATA_B ..."
        python3 "$ROOT/scripts/gen_bench_data.py" "$DATA_B" "$ROWS_B" 2026
        echo "$ROWS_B seed 2026" >"$STAMP"
    fi
    # reset_dir keeps data.csv (it removes only what init and the nodes write)
    LABELS=("Generated" "Values" "2026")
    bench_part "Part B: $ROWS_B generated rows, Generated / Values / 2026" \
        "$DIR_B" "$DATA_B" 8 "$PORT_B" "$REPS_B" "0:10000000" A
fi

echo
echo "total bench time: $(($(date +%s) - START_ALL)) s"
