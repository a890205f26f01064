#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the broker and PyIceberg, builds, and runs
# unit, crate and integration tests (real broker, real SQLite catalog, PyIceberg).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all --check
python3 scripts/layout.py   # files ~≤ 400 lines, no import cycle across folders
cargo build --bins
# Integration tests each run a broker and writer processes: two at a time fit 2 cores.
cargo test --workspace -- --test-threads=2
cargo clippy --workspace --all-targets -- -D warnings
