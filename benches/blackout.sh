#!/usr/bin/env bash
# Migration blackout on this machine: the default fabric on its pinned cores,
# VM and endpoint migrations back and forth while traffic flows, once per ID
# mode, each run's report and JSON kept under target/blackout/.
#
#   benches/blackout.sh [MIGRATIONS_OF_EACH_KIND] [DURATION] [WRITES_PER_S_PER_HOST]
#
# Defaults: 10000 of each kind over 20 s at 364000 writes/s per host, which
# with the reads and the device's DMA is 1 M tracked TLPs/s offered.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
duration=${2:-20s}
rate=${3:-364000}
out=target/blackout
mkdir -p "$out"
cargo build --release -q -p tlpfabric
for mode in different common; do
  echo "== id mode: $mode"
  target/release/tlpfabric run --duration "$duration" --rate "$rate" \
    --vm-migrations "$n" --endpoint-migrations "$n" --id-mode "$mode" \
    --json "$out/$mode.json" --hdr-log "$out/$mode.hlog" --plot "$out/$mode.svg" \
    | tee "$out/$mode.txt" || echo "(integrity failed: see $out/$mode.txt)"
done
