#!/usr/bin/env bash
# Changes the authority committee of a local cluster while it runs, doing
# every operator's step on this machine: `crux-node init authority` for a new
# member, `committee propose` by the first member, `committee approve` by as
# many others as the threshold needs, `committee apply` on every participant
# at the same time (the current members deal, the new members receive), then
# waits until the processor runs the new epoch (the running nodes switch by
# themselves; relays are not restarted) and asks an exact count through it.
# Prints how long the change took. A removed authority's node erases its old
# share after the grace period (20 s, or CRUX_COMMITTEE_GRACE_SECS as the
# nodes were started with) and is then stopped; its config is renamed
# NAME.yaml.removed. A member that is down is removed by the others
# (`propose --without NAME`; t of them must remain); it erases its share
# when started again. Called by scripts/local_cluster.sh.
#
# Usage: scripts/committee_change.sh [--dir DIR] [--threshold T] add
#        scripts/committee_change.sh [--dir DIR] [--threshold T] remove NAME
#        scripts/committee_change.sh [--dir DIR] threshold T
#        scripts/committee_change.sh [--dir DIR] rotate
set -euo pipefail

# shellcheck source=scripts/cluster_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"

DIR="$ROOT/target/local-cluster"
THRESHOLD=""
PHASE_TIMEOUT=60
SWITCH_TIMEOUT=60

usage() {
    sed -n '16,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while (($# > 0)); do
    case "$1" in
    --dir) DIR=${2:?--dir needs DIR}; shift 2 ;;
    --threshold) THRESHOLD=${2:?--threshold needs T}; shift 2 ;;
    -h | --help) usage 0 ;;
    -*) echo "unknown argument: $1" >&2; usage 2 ;;
    *) break ;;
    esac
done
(($# > 0)) || usage 2
KIND=$1
SUBJECT=${2:-}
case "$KIND" in
add | rotate) (($# == 1)) || usage 2 ;;
remove | threshold) (($# == 2)) || usage 2 ;;
*) echo "unknown change: $KIND" >&2; usage 2 ;;
esac
if [[ -n "$THRESHOLD" && ! "$THRESHOLD" =~ ^[0-9]+$ ]]; then
    die "--threshold must be a number (got $THRESHOLD)"
fi

[[ -d "$DIR" ]] || die "no cluster folder $DIR: start one with scripts/local_cluster.sh"
DIR=$(cd "$DIR" && pwd)
USER_CFG="$DIR/user.yaml"
[[ -f "$USER_CFG" ]] || die "$DIR holds no cluster (no user.yaml): start one with scripts/local_cluster.sh"
[[ -x "$BIN" ]] || build_release

# the committee as the cluster runs it: epoch, threshold, member names
# (it exits 1 when fewer than t members are up, but still prints the JSON)
committee_json() {
    local out
    out=$("$BIN" committee status --config "$USER_CFG" --json 2>"$DIR/committee-status.err") || true
    if [[ "$out" != \{* ]]; then
        sed 's/^/    /' "$DIR/committee-status.err" >&2
        return 1
    fi
    echo "$out"
}
STATUS=$(committee_json) || die "the cluster in $DIR does not answer (is it running? scripts/local_cluster.sh starts it)"
EPOCH=$(sed -n 's/.*"epoch":\([0-9]*\).*/\1/p' <<<"$STATUS")
T=$(sed -n 's/.*"threshold":\([0-9]*\).*/\1/p' <<<"$STATUS")
mapfile -t MEMBERS < <(grep -o '"name":"[^"]*"' <<<"$STATUS" | cut -d'"' -f4)
[[ -n "$EPOCH" && -n "$T" && ${#MEMBERS[@]} -gt 0 ]] || die "unreadable committee status: $STATUS"
echo "committee epoch $EPOCH: $T of ${#MEMBERS[@]} decrypt (${MEMBERS[*]})"

# config_port FILE: the port of the node's QUIC endpoint, from its config
config_port() {
    sed -n 's/^  listen: *[0-9.]*:\([0-9]*\).*/\1/p' "$1" | head -n 1
}

# share_path NAME: the key share file of authority NAME, from its config
share_path() {
    local share
    share=$(sed -n 's/^  key_share: *\([^ #]*\).*/\1/p' "$DIR/$1.yaml" | head -n 1)
    [[ "$share" == /* ]] || share="$DIR/$share"
    echo "$share"
}

# the participants: every current member deals, a new member receives
PARTICIPANTS=("${MEMBERS[@]}")
NEW=""
DOWN=""
PROPOSE=()
case "$KIND" in
add)
    # the next free name and port after every node of the cluster
    n=1
    while [[ -e "$DIR/authority-$n.yaml" || -e "$DIR/authority-$n.yaml.removed" ]]; do n=$((n + 1)); done
    NEW="authority-$n"
    port=0
    for f in "$DIR"/*.yaml "$DIR"/*.yaml.removed; do
        [[ -f "$f" ]] || continue
        p=$(config_port "$f")
        [[ -n "$p" ]] && ((p > port)) && port=$p
    done
    ((port > 0)) || die "no node ports found in $DIR"
    port=$((port + 1))
    check_ports_free 127.0.0.1 "$port" "$port" || die "cannot add $NEW at port $port"
    echo "making $NEW (port $port) on this host: crux-node init authority ..."
    "$BIN" init authority "$NEW" --out "$DIR" --host 127.0.0.1 --port "$port" | sed 's/^/  /'
    PARTICIPANTS+=("$NEW")
    PROPOSE=(add --card "$DIR/$NEW.card.yaml")
    ;;
remove)
    printf '%s\n' "${MEMBERS[@]}" | grep -qx "$SUBJECT" || die "$SUBJECT is not a member (${MEMBERS[*]})"
    PROPOSE=(remove "$SUBJECT")
    # a member that is down does not deal: the others (at least t) do
    if ! grep -q "\"name\":\"$SUBJECT\",\"state\":\"up\"" <<<"$STATUS"; then
        echo "$SUBJECT is not up: the other members deal without it (--without $SUBJECT)"
        PROPOSE+=(--without "$SUBJECT")
        DOWN=$SUBJECT
    fi
    ;;
threshold) PROPOSE=(threshold "$SUBJECT") ;;
rotate) PROPOSE=(rotate) ;;
esac
if [[ -n "$THRESHOLD" && "$KIND" != threshold && "$KIND" != rotate ]]; then
    PROPOSE+=(--threshold "$THRESHOLD")
fi

# the proposer and the approvers: current members other than a removed one
# first (any t current members may approve)
SIGNERS=()
for m in "${MEMBERS[@]}"; do
    if [[ "$m" != "$SUBJECT" || "$KIND" != remove ]]; then SIGNERS+=("$m"); fi
done
if [[ "$KIND" == remove && -z "$DOWN" ]]; then SIGNERS+=("$SUBJECT"); fi
if [[ -n "$DOWN" ]]; then
    mapfile -t PARTICIPANTS < <(printf '%s\n' "${MEMBERS[@]}" | grep -vx "$DOWN")
fi

CHANGE_FILE="$DIR/changes/epoch-$EPOCH-$KIND.json"
mkdir -p "$DIR/changes"
rm -f "$CHANGE_FILE"
START=$(now_ms)
echo "${SIGNERS[0]} proposes: crux-node committee propose ${PROPOSE[*]} ..."
"$BIN" committee propose "${PROPOSE[@]}" --config "$DIR/${SIGNERS[0]}.yaml" --out "$CHANGE_FILE" | sed 's/^/  /'
for ((i = 1; i < T; i++)); do
    echo "${SIGNERS[$i]} approves: crux-node committee approve ..."
    "$BIN" committee approve --config "$DIR/${SIGNERS[$i]}.yaml" "$CHANGE_FILE" | sed 's/^/  /'
done

echo "the ceremony: crux-node committee apply on ${PARTICIPANTS[*]} at the same time ..."
CEREMONY_START=$(now_ms)
declare -A APPLY_PIDS=()
for m in "${PARTICIPANTS[@]}"; do
    "$BIN" committee apply --phase-timeout "$PHASE_TIMEOUT" --config "$DIR/$m.yaml" "$CHANGE_FILE" \
        >"$DIR/logs/apply-$m.log" 2>&1 &
    APPLY_PIDS[$m]=$!
done
FAILED=0
for m in "${PARTICIPANTS[@]}"; do
    if wait "${APPLY_PIDS[$m]}"; then
        sed -n 's/^/  /p' "$DIR/logs/apply-$m.log" | grep -v ' INFO \| WARN ' || true
    else
        echo "error: committee apply on $m failed (log $DIR/logs/apply-$m.log):" >&2
        tail -n 15 "$DIR/logs/apply-$m.log" | sed 's/^/    /' >&2
        FAILED=1
    fi
done
((FAILED == 0)) || die "the ceremony failed; the cluster keeps running epoch $EPOCH (nothing changed)"
CEREMONY_MS=$(($(now_ms) - CEREMONY_START))

if [[ -n "$NEW" ]]; then
    echo "starting $NEW ..."
    start_node "$DIR" "$NEW"
fi

echo "waiting until the running nodes switch to epoch $((EPOCH + 1)) ..."
deadline=$(($(date +%s) + SWITCH_TIMEOUT))
# processor_epoch: the epoch the processor runs, from `crux-node status`
# (the committee file alone is not enough: in a local cluster the
# authorities rewrite it before the processor has switched)
processor_epoch() {
    { "$BIN" status --config "$USER_CFG" 2>/dev/null || true; } | awk '$2 == "processor"' |
        sed -n 's/.* epoch=\([0-9]*\).*/\1/p' | head -n 1
}
while :; do
    if STATUS=$(committee_json 2>/dev/null) && [[ $(sed -n 's/.*"epoch":\([0-9]*\).*/\1/p' <<<"$STATUS") == $((EPOCH + 1)) ]] &&
        ! grep -o '"state":"[^"]*"' <<<"$STATUS" | grep -qv '"up"' && [[ $(processor_epoch) == $((EPOCH + 1)) ]]; then
        break
    fi
    (($(date +%s) < deadline)) || die "the cluster did not switch to epoch $((EPOCH + 1)) within ${SWITCH_TIMEOUT} s (logs in $DIR/logs)"
    sleep 0.2
done
TOTAL_MS=$(($(now_ms) - START))
printf 'committee change took %d.%03d s (the ceremony %d.%03d s); every member up in the new epoch:\n' \
    $((TOTAL_MS / 1000)) $((TOTAL_MS % 1000)) $((CEREMONY_MS / 1000)) $((CEREMONY_MS % 1000))
"$BIN" committee status --config "$USER_CFG" | sed 's/^/  /'
echo "an exact count through the new committee:"
"$BIN" query count --exact --config "$USER_CFG" "Population" "All usual residents" 2021 2>&1 | sed 's/^/  /' ||
    echo "  (the count failed: the demo column is missing with custom data, or see $DIR/logs)"

if [[ "$KIND" == remove && -n "$DOWN" ]]; then
    echo "$SUBJECT was down: its share files stay on disk until it starts again (it then erases them and refuses to"
    echo "  start, being no member), or remove them by hand: $(share_path "$SUBJECT")"
    rm -f "$DIR/pids/$SUBJECT.pid"
    mv "$DIR/$SUBJECT.yaml" "$DIR/$SUBJECT.yaml.removed"
elif [[ "$KIND" == remove ]]; then
    share=$(share_path "$SUBJECT")
    echo "$SUBJECT erases its old share after the grace period ..."
    deadline=$(($(date +%s) + 60))
    while [[ -e "$share" || -e "$share.previous" ]] && (($(date +%s) < deadline)); do sleep 0.5; done
    if [[ -e "$share" || -e "$share.previous" ]]; then
        echo "warning: $share still there after 60 s; see $DIR/logs/$SUBJECT.log" >&2
    else
        echo "  $share erased"
    fi
    pidfile="$DIR/pids/$SUBJECT.pid"
    if [[ -f "$pidfile" ]]; then
        pid=$(cat "$pidfile")
        if is_crux_pid "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            echo "  stopped $SUBJECT (pid $pid)"
        fi
        rm -f "$pidfile"
    fi
    mv "$DIR/$SUBJECT.yaml" "$DIR/$SUBJECT.yaml.removed"
    echo "  $SUBJECT.yaml renamed $SUBJECT.yaml.removed (it is no member)"
fi
