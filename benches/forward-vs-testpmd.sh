#!/usr/bin/env bash
# tlpfabric's forwarder against dpdk-testpmd's io forwarding on two net_null
# ports: the same core, the same duration, alternating round by round, with
# one and with eight TLPs per frame. Prints each round and the ratios of the
# medians (tlpfabric frames/s over testpmd packets/s; and TLPs/s over testpmd
# packets/s at eight TLPs per frame). testpmd's macswap mode, which reads and
# writes each packet's Ethernet addresses, runs beside io as a second
# reference: io forwards without touching a byte of the packet. So does
# tlpfabric's own io mode (`forward --mode io`), which runs beside them: the
# same ports, frame handles and poll loop as the pipeline, without the
# pipeline, so the two ratios it adds split the gap to testpmd io into what
# the port layer costs and what the pipeline's work costs.
#
#   bash benches/forward-vs-testpmd.sh [ROUNDS] [SECONDS] [null|memif]
#
# `memif` runs both on a memif pair in one process instead (a server and its
# client), which carries frames as a real transport does: each frame is
# copied into the shared ring, so bigger frames cost more, and traffic is
# started by sending first (testpmd's --tx-first, tlpfabric's --tx-first).
#
# Needs DPDK (apt-get install dpdk-dev libdpdk-dev libclang-dev pkg-config)
# and builds tlpfabric with the dpdk feature. net_null frames are filled from
# templates before tlpfabric's pipeline (standing in for a NIC's DMA);
# testpmd's io mode forwards the null frames untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
SECONDS_PER_RUN="${2:-5}"
TRANSPORT="${3:-null}"
CORE="$(( $(nproc) - 1 ))"
cargo build --release -q -p tlpfabric --features dpdk
BIN=target/release/tlpfabric
SOCKET="/tmp/tlpf-bench-memif-$$.sock"
case "$TRANSPORT" in
    null)
        EAL="--no-huge --no-pci -m 1024 --vdev=net_null0 --vdev=net_null1 --log-level=lib.eal:error"
        PORTS="net_null0,net_null1"
        TESTPMD_FIRST=""
        TLPF_FIRST="" ;;
    memif)
        EAL="--no-huge --no-pci -m 1024 --single-file-segments --log-level=lib.eal:error
             --vdev=net_memif0,role=server,socket=$SOCKET --vdev=net_memif1,role=client,socket=$SOCKET"
        PORTS="net_memif0,net_memif1"
        TESTPMD_FIRST="--tx-first"
        TLPF_FIRST="--tx-first 1" ;;
    *) echo "error: the transport must be null or memif, not '$TRANSPORT'" >&2; exit 2 ;;
esac
EAL="$(echo $EAL)"

testpmd_pps() {
    # $1: the forwarding mode (io, macswap).
    # Both ports' Rx-pps at the last one-second report, summed. testpmd runs
    # until interrupted; its exit status then is not a failure.
    local log
    log="$(mktemp)"
    (sleep $((SECONDS_PER_RUN + 4))) | timeout -s INT "$((SECONDS_PER_RUN + 2))" \
        taskset -c "0,$CORE" dpdk-testpmd $EAL --file-prefix="tp-$$" -l "0,$CORE" -- \
        --forward-mode="$1" --auto-start --stats-period 1 --nb-cores=1 $TESTPMD_FIRST > "$log" 2>&1 || true
    rm -f "$SOCKET"
    awk '/Rx-pps:/ { v[n++ % 2] = $2 } END { printf "%d\n", v[0] + v[1] }' "$log"
    rm -f "$log"
}

tlpfabric_rate() {
    # $1: TLPs per frame; $2: the mode (pipeline, io). Prints frames/s and
    # TLPs/s (0 in io mode, which looks at none).
    local json
    json="$(mktemp)"
    taskset -c "$CORE" "$BIN" forward --pmd dpdk --eal "$EAL --file-prefix=tf-$$" --mode "$2" \
        --ports "$PORTS" $TLPF_FIRST \
        --duration "${SECONDS_PER_RUN}s" --tlps-per-frame "$1" --json "$json" >/dev/null 2>&1
    rm -f "$SOCKET"
    python3 -c "import json,sys; d=json.load(open('$json')); print(d['frames_per_s'], d['tlps_per_s'] or 0)"
    rm -f "$json"
}

rounds="$(mktemp)"
trap 'rm -f "$rounds"' EXIT
for r in $(seq "$ROUNDS"); do
    tp="$(testpmd_pps io)"
    read -r f1 _ < <(tlpfabric_rate 1 pipeline)
    read -r f8 t8 < <(tlpfabric_rate 8 pipeline)
    read -r fio _ < <(tlpfabric_rate 1 io)
    ms="$(testpmd_pps macswap)"
    echo "$tp $f1 $f8 $t8 $ms $fio" >> "$rounds"
    python3 -c "print('round $r: testpmd io %.2f M pkt/s; tlpfabric 1 TLP/frame %.2f M frames/s; 8 TLPs/frame %.2f M frames/s, %.2f M TLPs/s; testpmd macswap %.2f M pkt/s; tlpfabric io mode %.2f M frames/s' % tuple(x / 1e6 for x in ($tp, $f1, $f8, $t8, $ms, $fio)))"
done
python3 - "$rounds" "$TRANSPORT" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
on = "" if sys.argv[2] == "null" else " on net_null"
tp, f1, f8, t8, ms, fio = (statistics.median(c) for c in zip(*rows))
print(f"medians ({sys.argv[2]}): testpmd io {tp / 1e6:.2f} M pkt/s, macswap {ms / 1e6:.2f} M pkt/s; tlpfabric {f1 / 1e6:.2f} M frames/s (1 TLP/frame), {t8 / 1e6:.2f} M TLPs/s (8 TLPs/frame), io mode {fio / 1e6:.2f} M frames/s")
print(f"ratio, 1 TLP/frame, frames/s over testpmd io pkt/s: {f1 / tp:.2f} (target 0.8{on}); over macswap: {f1 / ms:.2f}")
print(f"ratio, 8 TLPs/frame, TLPs/s over testpmd io pkt/s: {t8 / tp:.2f} (target 2{on}); over macswap: {t8 / ms:.2f}")
print(f"where the time goes at 1 TLP/frame, per frame: testpmd io {1e9 / tp:.1f} ns; tlpfabric's ports and loop (io mode) "
      f"{1e9 / fio:.1f} ns ({fio / tp:.2f}x testpmd io's rate); with the pipeline {1e9 / f1:.1f} ns")
PY
