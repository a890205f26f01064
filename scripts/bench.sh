#!/usr/bin/env bash
# Every benchmark in one run: decoders vs arrow-json, then the in-process ceiling against the
# plain libraries, the broker's consume-only rate and the writer end to end on 1 and 2 cores
# (icefall-dev bench), then compaction against Spark (scripts/bench-compaction.sh).
#   bash scripts/bench.sh            # the full run (~15 minutes on 2 cores, 3M events per format)
#   bash scripts/bench.sh --quick    # smaller inputs, JSON only end to end (~3 minutes)
# Other arguments go to `icefall-dev bench` (e.g. --records 2000000 --formats json).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
if [ "${1:-}" = "--quick" ]; then
  quick=true
  shift
fi
bash scripts/setup.sh
cargo bench --workspace --bench decode
cargo build --release -p icefall-writer -p icefall-dev -p icefall-optimizer --bins
if $quick; then
  target/release/icefall-dev bench --records 300000 --ceiling-records 100000 --formats json --cores 1 "$@"
  bash scripts/bench-compaction.sh --files 100 --rows-per-file 2000
else
  target/release/icefall-dev bench "$@"
  bash scripts/bench-compaction.sh --files 200 --rows-per-file 5000
fi
