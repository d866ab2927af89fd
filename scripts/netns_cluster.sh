#!/usr/bin/env bash
# A Crux cluster across separate network hosts on one machine, set up the
# way docs/deploy.md tells it for real hosts: one Linux network namespace per
# node (3 authorities, processor, 3 relays, and one for the user), each
# joined by a veth pair to a bridge that lives in its own "switch" namespace
# (the host's namespace is not touched), addresses 10.77.0.0/24, with
# `tc netem delay 20ms loss 1%` on every node's link.
#
# Steps, as in the guide:
#   1. every node runs `crux-node init ROLE NAME` inside its own namespace,
#      into its own folder (DIR/hosts/NAME): its keys never leave it;
#   2. only the public cards are copied to the admin (DIR/admin), who runs
#      `crux-node init assemble` into cluster.yaml;
#   3. cluster.yaml is copied to every node, which runs `crux-node init join`;
#   4. the three authorities run `crux-node keygen --threshold 2` at the same
#      time, each in its namespace; the committee file they write is copied to
#      the processor and the relays;
#   5. every node starts in its namespace; the user runs exact sum, mean and
#      median of column H of tests/data/areas.xlsx (each relay serves a third
#      of its rows: expected 14134681, 14134681/414, 6469);
#   6. a 4th authority is added while the cluster runs ("Changing the cluster
#      later"): it runs `init authority` in its own namespace, its card is
#      assembled (`--from`), it joins and gets the committee file;
#      authority-1 proposes, authority-2 approves, the four run `committee
#      apply` at once (ceremony over the namespaces' links), authority-4
#      starts; then with authority-1 and authority-2 stopped the sum is still
#      exact, decrypted by authority-3 and authority-4. No node restarts.
# Prints results and timings, and removes every namespace it created.
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
DATA=$(realpath tests/data/areas.xlsx)

P="crux$$"                         # namespace prefix, unique per run
SW="$P-sw"
NODES=(processor authority-1 authority-2 authority-3 relay-1 relay-2 relay-3 user)
NEW=authority-4                    # added in step 6
HOSTS=("${NODES[@]}" "$NEW")       # every namespace
AUTHORITIES=(authority-1 authority-2 authority-3)
RELAYS=(relay-1 relay-2 relay-3)
PIDS=()
CREATED=()

cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  for ns in "${CREATED[@]:-}"; do [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

ns_of() { echo "$P-$1"; }
ip_of() { # node index in HOSTS -> 10.77.0.(10+i)
  local i
  for i in "${!HOSTS[@]}"; do [ "${HOSTS[$i]}" = "$1" ] && echo "10.77.0.$((10 + i))"; done
}
in_ns() { local n=$1; shift; ip netns exec "$(ns_of "$n")" "$@"; }
host_dir() { echo "$DIR/hosts/$1"; }
# at_once WHAT ARGS...: `crux-node ARGS... --config FOLDER/node.yaml` on every
# authority of AT_ONCE at the same time, each in its own namespace ("{}" in
# ARGS stands for that authority's folder); logs in DIR/NAME.WHAT.log; fails
# naming the first that fails
at_once() {
  local what=$1 a i
  shift
  local -a pids=()
  for a in "${AT_ONCE[@]}"; do
    ip netns exec "$(ns_of "$a")" "$BIN" "${@//\{\}/$(host_dir "$a")}" --config "$(host_dir "$a")/node.yaml" \
      >"$DIR/$a.$what.out" 2>"$DIR/$a.$what.log" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "FAILED: $what on ${AT_ONCE[$i]}; see $DIR/${AT_ONCE[$i]}.$what.log" >&2; exit 1; }
  done
}

ip netns add "$SW"; CREATED+=("$SW")
ip -n "$SW" link set lo up
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
NETEM=1
for i in "${!HOSTS[@]}"; do
  n=${HOSTS[$i]}
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
in_ns user ping -c 2 -W 2 "$(ip_of processor)" >/dev/null 2>&1 \
  && echo "user -> processor: $(in_ns user ping -c 3 -q "$(ip_of processor)" | tail -1)" \
  || echo "ping user -> processor: no answer (ping missing or ICMP lost); continuing"

rm -rf "$DIR"
mkdir -p "$DIR/hosts" "$DIR/admin"

# 1. every node makes its own folder inside its namespace (every host can use the same ports)
echo "1. init on each host"
in_ns processor "$BIN" init processor processor --out "$(host_dir processor)" --host "$(ip_of processor)" \
  --port 7100 --dlog-bits 16 --dlog-range-bits 32 >/dev/null
for a in "${AUTHORITIES[@]}"; do
  in_ns "$a" "$BIN" init authority "$a" --out "$(host_dir "$a")" --host "$(ip_of "$a")" --port 7101 --exact >/dev/null
done
for j in "${!RELAYS[@]}"; do
  r=${RELAYS[$j]}
  in_ns "$r" "$BIN" init relay "$r" --out "$(host_dir "$r")" --host "$(ip_of "$r")" --port 7102 \
    --data "$DATA" --header-rows 3 --shard "$((j + 1))/${#RELAYS[@]}" >/dev/null
done
in_ns user "$BIN" init user user --out "$(host_dir user)" >/dev/null

# 2. only the cards travel to the admin, who assembles cluster.yaml
echo "2. cards to the admin; init assemble"
for n in "${NODES[@]}"; do cp "$(host_dir "$n")/$n.card.yaml" "$DIR/admin/"; done
"$BIN" init assemble --dataset areas --min-relays 2 --out "$DIR/admin/cluster.yaml" "$DIR"/admin/*.card.yaml 2>&1 \
  | sed 's/^/   /'

# 3. cluster.yaml to every node; each joins it
echo "3. cluster.yaml to every host; init join"
for n in "${NODES[@]}"; do
  cp "$DIR/admin/cluster.yaml" "$(host_dir "$n")/cluster.yaml"
  in_ns "$n" "$BIN" init join --config "$(host_dir "$n")/node.yaml" --cluster "$(host_dir "$n")/cluster.yaml" >/dev/null
done

# no host holds another node's private key
for n in "${NODES[@]}"; do
  for f in "$(host_dir "$n")"/keys/*; do
    case "$(basename "$f")" in
      "$n".*) ;;
      *) echo "FAILED: $f is not $n's own key" >&2; exit 1 ;;
    esac
  done
done

# 4. keygen on the three authorities at the same time, each in its namespace
echo "4. keygen on ${AUTHORITIES[*]} at once (2 of 3 decrypt)"
t0=$(date +%s.%N)
AT_ONCE=("${AUTHORITIES[@]}")
at_once keygen keygen --threshold 2 --phase-timeout 30
awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN { printf "   keygen done in %.2f s\n", e - s }'
COMMITTEE="$(host_dir authority-1)/cluster-key.bin"
for a in "${AUTHORITIES[@]}"; do
  cmp -s "$COMMITTEE" "$(host_dir "$a")/cluster-key.bin" || { echo "FAILED: $a wrote another committee file" >&2; exit 1; }
done
for n in processor "${RELAYS[@]}"; do cp "$COMMITTEE" "$(host_dir "$n")/cluster-key.bin"; done

# 5. start every node in its namespace; query as the user
echo "5. start; queries"
for n in "${NODES[@]}"; do
  [ "$n" = user ] && continue
  # `ip netns exec` and `env` exec the node, so $! is the node's own pid (for cleanup)
  ip netns exec "$(ns_of "$n")" env RUST_LOG=info "$BIN" start --config "$(host_dir "$n")/node.yaml" \
    >/dev/null 2>"$DIR/$n.log" &
  PIDS+=($!)
done
USER_CFG="$(host_dir user)/node.yaml"
started=$(date +%s.%N)
up=0
for _ in $(seq 1 120); do
  if in_ns user "$BIN" status --config "$USER_CFG" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.5
done
if [ "$up" -ne 1 ]; then
  in_ns user "$BIN" status --config "$USER_CFG" || true
  echo "FAILED: the cluster did not come up; logs in $DIR" >&2
  exit 1
fi
awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "cluster up across %d namespaces in %.2f s\n", 8, e - s }'
in_ns user "$BIN" status --config "$USER_CFG"

declare -A EXPECT=([sum]=14134681 [mean]=14134681/414 [median]=6469)
fail=0
for stat in sum mean median; do
  t0=$(date +%s.%N)
  out=$(in_ns user "$BIN" query "$stat" --exact --json --config "$USER_CFG" Population "All usual residents" 2021 2>&1) || true
  t1=$(date +%s.%N)
  got=$(printf '%s' "$out" | sed -n 's/.*"exact_value":"\([^"]*\)".*/\1/p')
  verdict=ok; [ "$got" = "${EXPECT[$stat]}" ] || { verdict="WRONG (want ${EXPECT[$stat]}): $out"; fail=1; }
  awk -v s="$t0" -v e="$t1" -v st="$stat" -v g="$got" -v v="$verdict" \
    'BEGIN { printf "%-6s = %-14s in %6.3f s  %s\n", st, g, e - s, v }'
done
[ "$fail" -eq 0 ] || { echo "FAILED" >&2; exit 1; }

# 6. add authority-4 while the cluster runs
echo "6. add $NEW on the fly"
t0=$(date +%s.%N)
in_ns "$NEW" "$BIN" init authority "$NEW" --out "$(host_dir "$NEW")" --host "$(ip_of "$NEW")" --port 7101 --exact >/dev/null
cp "$(host_dir "$NEW")/$NEW.card.yaml" "$DIR/admin/"
"$BIN" init assemble --from "$DIR/admin/cluster.yaml" --out "$DIR/admin/cluster-2.yaml" "$DIR/admin/$NEW.card.yaml" \
  2>/dev/null
cp "$DIR/admin/cluster-2.yaml" "$(host_dir "$NEW")/cluster.yaml"
in_ns "$NEW" "$BIN" init join --config "$(host_dir "$NEW")/node.yaml" --cluster "$(host_dir "$NEW")/cluster.yaml" >/dev/null
cp "$COMMITTEE" "$(host_dir "$NEW")/cluster-key.bin"
# the card travels to authority-1, which proposes; the change file to authority-2, which approves
cp "$(host_dir "$NEW")/$NEW.card.yaml" "$(host_dir authority-1)/"
in_ns authority-1 "$BIN" committee propose add --card "$(host_dir authority-1)/$NEW.card.yaml" \
  --config "$(host_dir authority-1)/node.yaml" --out "$(host_dir authority-1)/add.json" | sed 's/^/   /'
cp "$(host_dir authority-1)/add.json" "$(host_dir authority-2)/add.json"
in_ns authority-2 "$BIN" committee approve --config "$(host_dir authority-2)/node.yaml" "$(host_dir authority-2)/add.json" \
  | sed 's/^/   /'
AT_ONCE=("${AUTHORITIES[@]}" "$NEW")
for a in "${AT_ONCE[@]}"; do
  [ "$a" = authority-2 ] || cp "$(host_dir authority-2)/add.json" "$(host_dir "$a")/add.json"
done
at_once apply committee apply --phase-timeout 30 "{}/add.json"
awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN { printf "   init, assemble, join, propose, approve and the ceremony in %.2f s\n", e - s }'
ip netns exec "$(ns_of "$NEW")" env RUST_LOG=info "$BIN" start --config "$(host_dir "$NEW")/node.yaml" \
  >/dev/null 2>"$DIR/$NEW.log" &
PIDS+=($!)
# the processor, 4 authorities all in epoch 1 (the processor learns it from the members)
switched=0
for _ in $(seq 1 120); do
  n=$(in_ns user "$BIN" status --json --config "$USER_CFG" 2>/dev/null | grep -o '"epoch":"1"' | wc -l || true)
  if [ "$n" -ge 5 ]; then switched=1; break; fi
  sleep 0.5
done
[ "$switched" -eq 1 ] || { in_ns user "$BIN" status --config "$USER_CFG" || true; echo "FAILED: not every node switched to epoch 1; logs in $DIR" >&2; exit 1; }
awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN { printf "   every node in committee epoch 1 (2 of 4 decrypt) %.2f s after the start of step 6\n", e - s }'
# stop two old members (PIDS: processor, authority-1, authority-2, ...): the new one decrypts
kill -TERM "${PIDS[1]}" "${PIDS[2]}" 2>/dev/null || true
wait "${PIDS[1]}" "${PIDS[2]}" 2>/dev/null || true
out=$(in_ns user "$BIN" query sum --exact --json --config "$USER_CFG" Population "All usual residents" 2021 2>&1) || true
got=$(printf '%s' "$out" | sed -n 's/.*"exact_value":"\([^"]*\)".*/\1/p')
decryptors=$(printf '%s' "$out" | sed -n 's/.*"decryptors":\[\([^]]*\)\].*/\1/p')
if [ "$got" != 14134681 ] || [ "$decryptors" != '"authority-3","authority-4"' ]; then
  echo "FAILED: with authority-1 and authority-2 stopped: $out" >&2
  exit 1
fi
echo "sum    = $got with authority-1 and authority-2 stopped, decrypted by $decryptors"
echo "netns cluster: all statistics exact, an authority added on the fly; cleaning up"
