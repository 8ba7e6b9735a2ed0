#!/usr/bin/env bash
# The native AF_PACKET port against DPDK's net_af_packet on the same veth
# pair: `tlpfabric forward` with the node's pipeline (or io mode) between the
# pair's two ends, each port sending bursts of template frames first so that
# frames keep going round. The same core and the same duration are used, and
# the two run in alternate rounds. Prints each round, then the ratio of the
# medians: native frames/s over net_af_packet frames/s (goal: 1.0 or more).
#
#   bash benches/af-packet-vs-dpdk.sh [ROUNDS] [SECONDS] [pipeline|io]
#
# Needs root (a network namespace of its own, removed on exit), DPDK
# (apt-get install dpdk-dev libdpdk-dev libclang-dev pkg-config), and
# builds tlpfabric with the dpdk feature.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
SECONDS_PER_RUN="${2:-3}"
MODE="${3:-pipeline}"
CORE="$(( $(nproc) - 1 ))"
NS="tlpf-afp-bench-$$"
cargo build --release -q -p tlpfabric --features dpdk
BIN="$PWD/target/release/tlpfabric"

cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link add name w type veth peer name e
ip -n "$NS" link set dev w up
ip -n "$NS" link set dev e up

rate() {
    # $1: native or dpdk. Prints frames/s.
    local json
    json="$(mktemp)"
    if [ "$1" = native ]; then
        ip netns exec "$NS" taskset -c "$CORE" "$BIN" forward --pmd af-packet --ports w,e \
            --tx-first 4 --mode "$MODE" --duration "${SECONDS_PER_RUN}s" --json "$json" >/dev/null 2>&1
    else
        ip netns exec "$NS" taskset -c "$CORE" "$BIN" forward --pmd dpdk \
            --eal "--no-huge --no-pci -m 1024 --file-prefix=afp-$$ --log-level=lib.eal:error --vdev=net_af_packet0,iface=w,qpairs=1 --vdev=net_af_packet1,iface=e,qpairs=1" \
            --ports net_af_packet0,net_af_packet1 \
            --tx-first 4 --mode "$MODE" --duration "${SECONDS_PER_RUN}s" --json "$json" >/dev/null 2>&1
    fi
    python3 -c "import json; print(json.load(open('$json'))['frames_per_s'])"
    rm -f "$json"
}

rounds="$(mktemp)"
trap 'rm -f "$rounds"; cleanup' EXIT
for r in $(seq "$ROUNDS"); do
    native="$(rate native)"
    dpdk="$(rate dpdk)"
    printf 'round %d: native %.0f frames/s, net_af_packet %.0f frames/s\n' "$r" "$native" "$dpdk"
    echo "$native $dpdk" >> "$rounds"
done
python3 - "$rounds" "$MODE" <<'EOF'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
native = statistics.median(r[0] for r in rows)
dpdk = statistics.median(r[1] for r in rows)
print(f"{sys.argv[2]}: native {native / 1e6:.3f} M frames/s, net_af_packet {dpdk / 1e6:.3f} M frames/s, "
      f"ratio {native / dpdk:.2f} (medians of {len(rows)} rounds)")
EOF
