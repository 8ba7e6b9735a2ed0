#!/usr/bin/env bash
# Instructions per forwarded TLP, counted by callgrind: a figure the noise of
# a shared machine does not move, to weigh a change to the pipeline by when
# timings swing more than the change. Runs the ring forwarder (`tlpfabric
# forward`) under callgrind for a short and a long time and divides the
# difference in instructions by the difference in TLPs, so start-up cancels
# out; then lists the functions that executed the most instructions.
#
#   bash benches/instructions.sh [TLPS_PER_FRAME] [TOP] [PMD]
#
# PMD is `ring` (the default) or `dpdk` (two net_null ports; builds with the
# dpdk feature, which needs DPDK installed); `testpmd` counts dpdk-testpmd's
# io forwarding on the same two ports instead, per packet, as the reference
# (needs the dpdk package). With DPDK ports each count is split between the
# program's own code and DPDK's libraries, which both programs pay alike.
# Needs valgrind (apt-get install
# valgrind). Valgrind runs the program about fifty times slower and shows it
# no AVX-512, so frames of 192 bytes or more take the three-chain CRC here.
set -euo pipefail
cd "$(dirname "$0")/.."
PER_FRAME="${1:-8}"
TOP="${2:-15}"
PMD="${3:-ring}"
command -v valgrind >/dev/null || { echo "error: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
case "$PMD" in
    ring) cargo build --release -q -p tlpfabric ;;
    dpdk) cargo build --release -q -p tlpfabric --features dpdk ;;
    testpmd) command -v dpdk-testpmd >/dev/null || { echo "error: dpdk-testpmd is not installed (apt-get install dpdk)" >&2; exit 2; } ;;
    *) echo "error: PMD must be ring, dpdk or testpmd, not '$PMD'" >&2; exit 2 ;;
esac
BIN=target/release/tlpfabric
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

run() {
    # $1: seconds. Prints the instructions executed and the TLPs forwarded.
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$1" \
        "$BIN" forward --pmd "$PMD" --duration "${1}s" --tlps-per-frame "$PER_FRAME" --json "$dir/fwd.$1.json" \
        >/dev/null 2>"$dir/vg.$1"
    local ir
    ir="$(awk '/^summary:/ { print $2 }' "$dir/cg.$1")"
    python3 -c "import json; d = json.load(open('$dir/fwd.$1.json')); print($ir, round(d['tlps_per_s'] * d['duration_s']))"
}

run_testpmd() {
    # $1: seconds. Prints the instructions executed and the packets received
    # on both ports (testpmd's totals when interrupted).
    (sleep $(($1 + 30))) | timeout -s INT "$1" valgrind --tool=callgrind \
        --callgrind-out-file="$dir/cg.$1" dpdk-testpmd --no-huge --no-pci -m 1024 \
        --vdev=net_null0 --vdev=net_null1 --log-level=lib.eal:error --file-prefix="ic-$$-$1" \
        -l 0,1 -- --forward-mode=io --auto-start --nb-cores=1 >"$dir/tp.$1" 2>&1 || true
    echo "$(awk '/^summary:/ { print $2 }' "$dir/cg.$1")" \
        "$(awk '/RX-packets:/ { n = $2 } END { print n }' "$dir/tp.$1")"
}

by_object() {
    # $1: a callgrind output. Prints the instructions executed in the
    # program's own code, in DPDK's libraries and elsewhere (self cost, so
    # DPDK's driver code a burst calls counts as DPDK's).
    python3 - "$1" <<'PY'
import re, sys
names, ob, skip = {}, None, False
groups = {"own": 0, "dpdk": 0, "other": 0}
def group(name):
    if name is None:
        return "other"
    base = name.rsplit("/", 1)[-1]
    if base.startswith("librte_"):
        return "dpdk"
    return "own" if base in ("tlpfabric", "dpdk-testpmd") else "other"
for line in open(sys.argv[1]):
    if line.startswith("ob="):
        m = re.match(r"ob=\((\d+)\)\s*(.*)", line)
        if m.group(2).strip():
            names[m.group(1)] = m.group(2).strip()
        ob = group(names.get(m.group(1)))
    elif line.startswith("cob="):
        m = re.match(r"cob=\((\d+)\)\s*(.*)", line)
        if m.group(2).strip():
            names[m.group(1)] = m.group(2).strip()
    elif line.startswith("calls="):
        skip = True  # the next cost line is the call's inclusive cost
    elif line[:1].isdigit() or line[:1] in "+-*":
        if skip:
            skip = False
            continue
        parts = line.split()
        if len(parts) > 1 and ob is not None:
            groups[ob] += int(parts[1])
print(groups["own"], groups["dpdk"], groups["other"])
PY
}

split() {
    # $1: what is counted; $2: the program; $3, $4: the short and the long
    # run's callgrind outputs; $5, $6: their counts. Prints where each
    # unit's instructions went.
    read -r so sd sx < <(by_object "$3")
    read -r lo ld lx < <(by_object "$4")
    python3 - "$@" "$so" "$sd" "$sx" "$lo" "$ld" "$lx" <<'PY'
import sys
unit, prog = sys.argv[1], sys.argv[2]
sn, ln = int(sys.argv[5]), int(sys.argv[6])
so, sd, sx, lo, ld, lx = map(int, sys.argv[7:])
n = ln - sn
print(f"  of which: {(lo - so) / n:.1f} in {prog}'s own code, {(ld - sd) / n:.1f} in DPDK's "
      f"libraries (drivers, mbufs, mempools), "
      f"{(lx - sx) / n:.1f} elsewhere (the C library; the loader's thread-local lookups DPDK's shared libraries make)")
PY
}

per_unit() {
    # $1: what is counted (TLP, packet); then the short and the long run's
    # instructions and counts. Prints the difference per unit.
    python3 - "$@" <<'PY'
import sys
unit = sys.argv[1]
si, sn, li, ln = map(int, sys.argv[2:])
if ln <= sn:
    sys.exit(f"error: the long run forwarded no more {unit}s than the short one")
print(f"instructions per {unit}: {(li - si) / (ln - sn):.1f} "
      f"({li - si:,} instructions over {ln - sn:,} {unit}s, start-up subtracted)")
PY
}

if [ "$PMD" = testpmd ]; then
    echo "counting instructions of dpdk-testpmd --forward-mode=io under callgrind (about 20 s)" >&2
    read -r short_ir short_pkts < <(run_testpmd 4)
    read -r long_ir long_pkts < <(run_testpmd 10)
    per_unit packet "$short_ir" "$short_pkts" "$long_ir" "$long_pkts"
    split packet dpdk-testpmd "$dir/cg.4" "$dir/cg.10" "$short_pkts" "$long_pkts"
    exit 0
fi

echo "counting instructions of tlpfabric forward --pmd $PMD --tlps-per-frame $PER_FRAME under callgrind (about a minute)" >&2
read -r short_ir short_tlps < <(run 1)
read -r long_ir long_tlps < <(run 4)
per_unit TLP "$short_ir" "$short_tlps" "$long_ir" "$long_tlps"
if [ "$PMD" = dpdk ]; then
    split TLP tlpfabric "$dir/cg.1" "$dir/cg.4" "$short_tlps" "$long_tlps"
fi
echo "functions by instructions executed (long run, inlined code under its caller):"
callgrind_annotate --inclusive=no "$dir/cg.4" 2>/dev/null \
    | awk '/file:function/ { on = 1; next } on && NF' | head -n "$TOP" | cut -c1-160
