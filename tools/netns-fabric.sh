#!/usr/bin/env bash
# A fabric of processes on one machine: one `tlpfabric node` per switch node
# of a topology, each in a network namespace of its own, each of the
# topology's links a veth pair between two of them (native AF_PACKET ports
# at both ends). A fabric manager runs in the first node's namespace, joined
# to the others by a control network of its own (veth pairs, 10.99.N.0/24);
# every node reports to it, and the script prints its status while the
# traffic runs. Tracked traffic runs for DURATION; then `tlpfabric report`
# merges the nodes' reports into the fabric's integrity, and the script
# exits with its status. Namespaces and processes are removed on exit,
# failure and Ctrl-C included.
#
#   sudo bash tools/netns-fabric.sh [CONFIG] [DURATION] [-- NODE OPTIONS...]
#
# CONFIG defaults to configs/default.toml, DURATION to 2s. Options after
# `--` go to every node (`--rate 50000`, `--payload 256`, ...). Each node's
# report is left in $TLPF_OUT (default: a new temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${1:-configs/default.toml}"
DURATION="${2:-2s}"
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift
EXTRA=("$@")
BIN="${TLPF_BIN:-target/release/tlpfabric}"
[ -x "$BIN" ] || cargo build --release -q -p tlpfabric
OUT="${TLPF_OUT:-$(mktemp -d)}"
TAG="tlpf$$"

# Nodes, and links as "index a_node b_node", from the topology.
mapfile -t NODES < <(python3 -c '
import sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb"))
for n in t["node"]:
    print(n["name"])' "$CONFIG")
mapfile -t LINKS < <(python3 -c '
import sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb"))
for i, l in enumerate(t.get("link", [])):
    print(i, l["a"].split(":")[0], l["b"].split(":")[0])' "$CONFIG")

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for n in "${NODES[@]}"; do ip netns del "$TAG-$n" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

declare -A PORTS
for n in "${NODES[@]}"; do ip netns add "$TAG-$n"; PORTS[$n]=""; done
for l in "${LINKS[@]}"; do
    read -r i a b <<< "$l"
    ip link add name "l${i}a" netns "$TAG-$a" type veth peer name "l${i}b" netns "$TAG-$b"
    ip -n "$TAG-$a" link set dev "l${i}a" up
    ip -n "$TAG-$b" link set dev "l${i}b" up
    PORTS[$a]+=" --port link$i=l${i}a"
    PORTS[$b]+=" --port link$i=l${i}b"
done

# The control network: the manager in the first node's namespace, a veth
# pair from there to each other one; the first node reaches it over loopback.
HOME_NS="$TAG-${NODES[0]}"
ip -n "$HOME_NS" link set dev lo up
declare -A MANAGER
MANAGER[${NODES[0]}]="127.0.0.1:7800"
for i in "${!NODES[@]}"; do
    [ "$i" -eq 0 ] && continue
    n="${NODES[$i]}"
    ip link add name "m${i}a" netns "$HOME_NS" type veth peer name "m${i}b" netns "$TAG-$n"
    ip -n "$HOME_NS" addr add "10.99.$i.1/24" dev "m${i}a"
    ip -n "$TAG-$n" addr add "10.99.$i.2/24" dev "m${i}b"
    ip -n "$HOME_NS" link set dev "m${i}a" up
    ip -n "$TAG-$n" link set dev "m${i}b" up
    MANAGER[$n]="10.99.$i.1:7800"
done
ip netns exec "$HOME_NS" "$BIN" manager --config "$CONFIG" --listen 0.0.0.0:7800 \
    > "$OUT/manager.txt" 2>&1 &
MANAGER_PID=$!
PIDS+=("$MANAGER_PID")

NODE_PIDS=()
for n in "${NODES[@]}"; do
    # shellcheck disable=SC2086
    ip netns exec "$TAG-$n" "$BIN" node --config "$CONFIG" --node "$n" ${PORTS[$n]} \
        --manager "${MANAGER[$n]}" --duration "$DURATION" --json "$OUT/$n.json" "${EXTRA[@]}" \
        > "$OUT/$n.txt" 2>&1 &
    NODE_PIDS+=("$!")
    PIDS+=("$!")
done
# Halfway through the traffic: what the manager sees.
sleep "$(python3 -c 'import sys; d=sys.argv[1]; u={"ms":1e-3,"s":1,"m":60}; n=d.rstrip("mns"); s=d[len(n):]; print(float(n)*u.get(s,1)/2 + 1)' "$DURATION")"
ip netns exec "$HOME_NS" "$BIN" status --manager 127.0.0.1:7800 || true
status=0
for p in "${NODE_PIDS[@]}"; do wait "$p" || status=$?; done
kill "$MANAGER_PID" 2>/dev/null || true
PIDS=()
if [ "$status" -ne 0 ]; then
    echo "error: a node failed (its output is in $OUT)" >&2
    exit "$status"
fi
REPORTS=()
for n in "${NODES[@]}"; do REPORTS+=("$OUT/$n.json"); done
echo "nodes' reports and outputs: $OUT"
"$BIN" report "${REPORTS[@]}"
