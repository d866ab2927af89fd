#!/usr/bin/env bash
# A Crux cluster across separate network hosts on one machine: one Linux
# network namespace per node (3 authorities, processor, 3 relays, and one for
# the user), each joined by a veth pair to a bridge that lives in its own
# "switch" namespace (the host's namespace is not touched), addresses
# 10.77.0.0/24, with `tc netem delay 20ms loss 1%` on every node's link.
# Runs `crux-node init` once, rewrites each node's address in every YAML,
# starts each node inside its namespace, runs exact sum, mean and median on
# column H of tests/data/areas.xlsx (expected 14134681, 14134681/414, 6469),
# prints results and timings, and removes everything it created.
#
# Needs root, iproute2 (`ip`, `tc`) and permission to create namespaces; where
# that is missing it says why and exits 0 (skipped). Without the netem qdisc
# (kernel module sch_netem) it runs without delay/loss and says so.
#
# Usage: scripts/netns_cluster.sh [--bin PATH] [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=target/release/crux-node
DIR=target/netns-cluster
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

skip() { echo "SKIPPED: $*"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "iproute2 is not installed (apt-get install -y iproute2)"
command -v tc >/dev/null || skip "tc is not installed (apt-get install -y iproute2)"
PROBE="crux-probe-$$"
ip netns add "$PROBE" 2>/dev/null || skip "network namespaces are not permitted here (ip netns add failed)"
ip netns del "$PROBE"

if [ ! -x "$BIN" ]; then
  echo "building $BIN (cargo build --release)"
  cargo build --release --locked --bin crux-node
fi
BIN=$(realpath "$BIN")

P="crux$$"                         # namespace prefix, unique per run
SW="$P-sw"
NODES=(processor authority-1 authority-2 authority-3 relay-1 relay-2 relay-3 user)
BASE=7500                            # processor 7500, authorities 7501-7503, relays 7504-7506
PIDS=()
CREATED=()

cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  for ns in "${CREATED[@]:-}"; do [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

ns_of() { echo "$P-$1"; }
ip_of() { # node index in NODES -> 10.77.0.(10+i)
  local i
  for i in "${!NODES[@]}"; do [ "${NODES[$i]}" = "$1" ] && echo "10.77.0.$((10 + i))"; done
}

ip netns add "$SW"; CREATED+=("$SW")
ip -n "$SW" link set lo up
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
NETEM=1
for i in "${!NODES[@]}"; do
  n=${NODES[$i]}
  ns=$(ns_of "$n")
  ip netns add "$ns"; CREATED+=("$ns")
  ip -n "$ns" link set lo up
  ip link add "v$$-$i" type veth peer name "eth0" netns "$ns"
  ip link set "v$$-$i" netns "$SW"
  ip -n "$SW" link set "v$$-$i" master br0 up
  ip -n "$ns" addr add "$(ip_of "$n")/24" dev eth0
  ip -n "$ns" link set eth0 up
  if ! ip netns exec "$ns" tc qdisc add dev eth0 root netem delay 20ms loss 1% 2>/dev/null; then
    NETEM=0
  fi
done
if [ "$NETEM" -eq 1 ]; then
  echo "links: veth to a bridge, tc netem delay 20ms loss 1% on every node's egress (about 40 ms round trip)"
else
  echo "links: veth to a bridge; WARNING: tc netem is unavailable here (no sch_netem), running WITHOUT delay/loss"
fi
ip netns exec "$(ns_of user)" ping -c 2 -W 2 "$(ip_of processor)" >/dev/null 2>&1 \
  && echo "user -> processor: $(ip netns exec "$(ns_of user)" ping -c 3 -q "$(ip_of processor)" | tail -1)" \
  || echo "ping user -> processor: no answer (ping missing or ICMP lost); continuing"

rm -rf "$DIR"
mkdir -p "$DIR"
"$BIN" init --out "$DIR" --authorities 3 --relays 3 --data tests/data/areas.xlsx --base-port "$BASE" \
  --host 10.77.0.1 --exact --dlog-bits 16 --dlog-range-bits 32 --header-rows 3 >/dev/null
# every node has its own port: map each port to its node's address in every file
for k in 0 1 2 3 4 5 6; do
  n=${NODES[$k]}
  sed -i "s/10\.77\.0\.1:$((BASE + k))\b/$(ip_of "$n"):$((BASE + k))/g" "$DIR"/*.yaml
done
grep -h "listen:" "$DIR"/*.yaml | sed 's/^/  /'

for n in "${NODES[@]}"; do
  [ "$n" = user ] && continue
  ip netns exec "$(ns_of "$n")" env RUST_LOG=info "$BIN" start --config "$DIR/$n.yaml" 2>"$DIR/$n.log" &
  PIDS+=($!)
done
UNS=$(ns_of user)
USER_CFG="$DIR/user.yaml"
started=$(date +%s.%N)
up=0
for _ in $(seq 1 120); do
  if ip netns exec "$UNS" "$BIN" status --config "$USER_CFG" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.5
done
if [ "$up" -ne 1 ]; then
  ip netns exec "$UNS" "$BIN" status --config "$USER_CFG" || true
  echo "FAILED: the cluster did not come up; logs in $DIR" >&2
  exit 1
fi
awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "cluster up across %d namespaces in %.2f s\n", 8, e - s }'
ip netns exec "$UNS" "$BIN" status --config "$USER_CFG"

declare -A EXPECT=([sum]=14134681 [mean]=14134681/414 [median]=6469)
fail=0
for stat in sum mean median; do
  t0=$(date +%s.%N)
  out=$(ip netns exec "$UNS" "$BIN" query "$stat" --exact --json --config "$USER_CFG" Population "All usual residents" 2021 2>&1) || true
  t1=$(date +%s.%N)
  got=$(printf '%s' "$out" | sed -n 's/.*"exact_value":"\([^"]*\)".*/\1/p')
  verdict=ok; [ "$got" = "${EXPECT[$stat]}" ] || { verdict="WRONG (want ${EXPECT[$stat]}): $out"; fail=1; }
  awk -v s="$t0" -v e="$t1" -v st="$stat" -v g="$got" -v v="$verdict" \
    'BEGIN { printf "%-6s = %-14s in %6.3f s  %s\n", st, g, e - s, v }'
done
[ "$fail" -eq 0 ] || { echo "FAILED" >&2; exit 1; }
echo "netns cluster: all statistics exact; cleaning up"
