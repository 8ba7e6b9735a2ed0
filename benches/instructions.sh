#!/usr/bin/env bash
# Instructions per forwarded TLP, counted by callgrind: a figure the noise of
# a shared machine does not move, to weigh a change to the pipeline by when
# timings swing more than the change. Runs the ring forwarder (`tlpfabric
# forward`) under callgrind for a short and a long time and divides the
# difference in instructions by the difference in TLPs, so start-up cancels
# out; then lists the functions that executed the most instructions.
#
#   bash benches/instructions.sh [TLPS_PER_FRAME] [TOP]
#
# Needs valgrind (apt-get install valgrind). Valgrind runs the program about
# fifty times slower and shows it no AVX-512, so the frame CRC takes its
# three-chain path here.
set -euo pipefail
cd "$(dirname "$0")/.."
PER_FRAME="${1:-8}"
TOP="${2:-15}"
command -v valgrind >/dev/null || { echo "error: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
cargo build --release -q -p tlpfabric
BIN=target/release/tlpfabric
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

run() {
    # $1: seconds. Prints the instructions executed and the TLPs forwarded.
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$1" \
        "$BIN" forward --duration "${1}s" --tlps-per-frame "$PER_FRAME" --json "$dir/fwd.$1.json" \
        >/dev/null 2>"$dir/vg.$1"
    local ir
    ir="$(awk '/^summary:/ { print $2 }' "$dir/cg.$1")"
    python3 -c "import json; d = json.load(open('$dir/fwd.$1.json')); print($ir, round(d['tlps_per_s'] * d['duration_s']))"
}

echo "counting instructions of tlpfabric forward --tlps-per-frame $PER_FRAME under callgrind (about a minute)" >&2
read -r short_ir short_tlps < <(run 1)
read -r long_ir long_tlps < <(run 4)
python3 - "$short_ir" "$short_tlps" "$long_ir" "$long_tlps" <<'PY'
import sys
si, st, li, lt = map(int, sys.argv[1:])
if lt <= st:
    sys.exit("error: the long run forwarded no more TLPs than the short one")
print(f"instructions per TLP: {(li - si) / (lt - st):.1f} "
      f"({li - si:,} instructions over {lt - st:,} TLPs, start-up subtracted)")
PY
echo "functions by instructions executed (long run, inlined code under its caller):"
callgrind_annotate --inclusive=no "$dir/cg.4" 2>/dev/null \
    | awk '/file:function/ { on = 1; next } on && NF' | head -n "$TOP" | cut -c1-160
