#!/usr/bin/env bash
# The writer benchmark in one run: decoders vs arrow-json, then the in-process ceiling, the
# broker's consume-only rate and the writer end to end on 1 and 2 cores (icefall-dev bench).
# Arguments go to `icefall-dev bench` (e.g. --records 2000000 --formats json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo bench --workspace --bench decode
cargo build --release -p icefall-writer -p icefall-dev --bins
target/release/icefall-dev bench "$@"
