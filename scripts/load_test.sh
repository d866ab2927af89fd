#!/usr/bin/env bash
# Load test of a local Crux cluster (3 authorities, processor, 3 relays on
# 127.0.0.1, release binary, its own directory and base port).
#
# Phase 1 (warm-up): CLIENTS concurrent client loops of PER_CLIENT queries
# each (mixed exact statistics on column H of demo data: sum, mean, median,
# count); every answer is checked against the known exact values
# (tests/data/README.md: sum 14134681, mean 14134681/414, median 6469, count
# 414). Prints the throughput and each node's memory.
# Phase 2: EXTRA more queries the same way, in SAMPLES parts, printing each
# node's resident memory after each part; checks that no node's resident
# memory (VmRSS) grew by more than MAX_GROWTH_KB since the warm-up (default
# 5120 kB: bounded state, issue 13), and prints how many bytes each
# authority's LMDB ledger (data.mdb) grew per query admitted in phase 2
# (every query is inside the replay window of one day). Stops the cluster
# at the end.
#
# Usage: scripts/load_test.sh [--dir DIR] [--base-port P] [--clients N]
#          [--per-client K] [--extra M] [--samples S] [--max-growth-kb KB]
#          [--bin PATH]
# e.g. scripts/load_test.sh --per-client 64 --extra 10000 (about 8 minutes
# at 20 to 26 queries/s; the longer warm-up first fills the authorities'
# bounded query state: 64 live and 128 ended queries).
# Traffic goes to 127.0.0.1 only; every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=target/load-test
BASE=7300
# all clients are one user: the processor keeps at most 8 connections per
# user (MAX_CONNECTIONS_PER_PEER); beyond that it closes the oldest idle one,
# or refuses a new one while each serves a query, and the CLI waits and
# sends again (--clients 16 works: every answer correct)
CLIENTS=8
PER_CLIENT=5
EXTRA=200
SAMPLES=4
BIN=target/release/crux-node
MAX_GROWTH_KB=${MAX_GROWTH_KB:-5120}
DATA=tests/data/areas.xlsx
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --base-port) BASE=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --per-client) PER_CLIENT=$2; shift 2 ;;
    --extra) EXTRA=$2; shift 2 ;;
    --samples) SAMPLES=$2; shift 2 ;;
    --max-growth-kb) MAX_GROWTH_KB=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$SAMPLES" -ge 1 ] || { echo "--samples must be at least 1" >&2; exit 2; }

if [ ! -x "$BIN" ]; then
  echo "building $BIN (cargo build --release)"
  cargo build --release --locked --bin crux-node
fi

NODES="authority-1 authority-2 authority-3 processor relay-1 relay-2 relay-3"
PIDS=()
stop_cluster() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
}
trap stop_cluster EXIT

rm -rf "$DIR"
mkdir -p "$DIR"
"$BIN" init --out "$DIR" --authorities 3 --relays 3 --data "$DATA" --base-port "$BASE" \
  --exact --dlog-bits 16 --dlog-range-bits 32 --header-rows 3 >/dev/null
declare -A PID_OF
for n in $NODES; do
  env RUST_LOG=warn CRUX__TIMEOUTS__CONNECT_MS=1000 CRUX__TIMEOUTS__REQUEST_MS=20000 \
    CRUX__PROCESSOR__RATE_LIMIT_PER_MINUTE=100000 \
    "$BIN" start --config "$DIR/$n.yaml" 2>"$DIR/$n.log" &
  PIDS+=($!)
  PID_OF[$n]=$!
done
USER_CFG="$DIR/user.yaml"
for _ in $(seq 1 150); do
  if "$BIN" status --config "$USER_CFG" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
"$BIN" status --config "$USER_CFG" >/dev/null || { echo "cluster did not come up; see $DIR/*.log" >&2; exit 1; }

STATS=(sum mean median count)
declare -A EXPECT=([sum]=14134681 [mean]=14134681/414 [median]=6469 [count]=414)
LABELS=(Population "All usual residents" 2021)

# one client: $1 = client index, $2 = queries; writes one line per query
client() {
  local i=$1 k=$2 q stat out got
  for q in $(seq 1 "$k"); do
    stat=${STATS[$(((i + q) % 4))]}
    if out=$(CRUX__TIMEOUTS__REQUEST_MS=60000 "$BIN" query "$stat" --exact --json --config "$USER_CFG" "${LABELS[@]}" 2>&1); then
      got=$(printf '%s' "$out" | sed -n 's/.*"exact_value":"\([^"]*\)".*/\1/p')
      if [ "$got" = "${EXPECT[$stat]}" ]; then echo "ok $stat"; else echo "WRONG $stat got=$got want=${EXPECT[$stat]}"; fi
    else
      echo "FAIL $stat $(printf '%s' "$out" | tail -1)"
    fi
  done
}

# $1 = phase name, $2 = queries per client; prints results and throughput
run_phase() {
  local name=$1 k=$2 start end total ok bad
  rm -f "$DIR"/client-*.out
  start=$(date +%s.%N)
  for i in $(seq 1 "$CLIENTS"); do
    client "$i" "$k" >"$DIR/client-$i.out" &
  done
  wait_clients
  end=$(date +%s.%N)
  total=$(cat "$DIR"/client-*.out | wc -l)
  ok=$(cat "$DIR"/client-*.out | awk '/^ok/ { n++ } END { print n + 0 }')
  bad=$((total - ok))
  awk -v n="$total" -v s="$start" -v e="$end" -v name="$name" -v ok="$ok" -v c="$CLIENTS" \
    'BEGIN { printf "%s: %d queries from %d clients, %d correct, in %.2f s: %.2f queries/s\n", name, n, c, ok, e - s, n / (e - s) }'
  if [ "$bad" -ne 0 ]; then
    grep -hv '^ok' "$DIR"/client-*.out | head -5
    echo "FAILED: $bad wrong or failed answers" >&2
    exit 1
  fi
}

wait_clients() {
  # wait for the client loops only (not the nodes)
  for job in $(jobs -p); do
    case " ${PIDS[*]} " in *" $job "*) ;; *) wait "$job" ;; esac
  done
}

mem() { # $1 = pid, $2 = VmHWM|VmRSS|RssAnon|RssFile -> kB
  awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

# bytes of an authority's ledger file (LMDB writes pages at its end)
ledger_bytes() { # $1 = node name
  stat -c %s "$DIR/data/$1/ledger/data.mdb"
}

# one line per node: resident memory, and its growth since the warm-up
# when $1 is "growth"
report() {
  local n rss
  for n in $NODES; do
    rss=$(mem "${PID_OF[$n]}" VmRSS)
    printf '  %-12s VmHWM %7d kB  VmRSS %7d kB (anon %7d, file %6d)' "$n" "$(mem "${PID_OF[$n]}" VmHWM)" \
      "$rss" "$(mem "${PID_OF[$n]}" RssAnon)" "$(mem "${PID_OF[$n]}" RssFile)"
    if [ "$1" = growth ]; then printf '  growth %+d kB' "$((rss - RSS1[$n]))"; fi
    printf '\n'
  done
}

echo "cluster: $DIR, base port $BASE, binary $BIN"
run_phase "phase 1 (warm-up)" "$PER_CLIENT"
echo "memory after the warm-up:"
declare -A RSS1 LEDGER1
for n in $NODES; do
  RSS1[$n]=$(mem "${PID_OF[$n]}" VmRSS)
  case "$n" in authority-*) LEDGER1[$n]=$(ledger_bytes "$n") ;; esac
done
report start

per=$(((EXTRA + CLIENTS * SAMPLES - 1) / (CLIENTS * SAMPLES)))
done_queries=0
for s in $(seq 1 "$SAMPLES"); do
  run_phase "phase 2, part $s of $SAMPLES" "$per"
  done_queries=$((done_queries + per * CLIENTS))
  echo "memory after $done_queries queries of phase 2 (growth of VmRSS since the warm-up, limit $MAX_GROWTH_KB kB):"
  report growth
done

echo "ledger (LMDB data.mdb) growth over the $done_queries queries of phase 2, all inside the replay window:"
for n in $NODES; do
  case "$n" in
    authority-*)
      now=$(ledger_bytes "$n")
      awk -v n="$n" -v a="${LEDGER1[$n]}" -v b="$now" -v q="$done_queries" \
        'BEGIN { printf "  %-12s %9d -> %9d bytes: %.0f bytes per query\n", n, a, b, (b - a) / q }'
      ;;
  esac
done

grew=0
for n in $NODES; do
  growth=$(($(mem "${PID_OF[$n]}" VmRSS) - RSS1[$n]))
  if [ "$growth" -gt "$MAX_GROWTH_KB" ]; then
    echo "FAILED: $n's resident memory grew by $growth kB, more than $MAX_GROWTH_KB kB" >&2
    grew=1
  fi
done
if [ "$grew" -ne 0 ]; then
  exit 1
fi
echo "load test passed; stopping the cluster"
