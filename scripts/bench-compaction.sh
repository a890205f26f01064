#!/usr/bin/env bash
# Compaction against Spark on the same table, same run: two identical tables of small files,
# one compacted by `icefall-optimizer compact`, one by Spark 3.5 + Iceberg 1.10
# `rewrite_data_files` (local[2]); time, CPU, peak RSS, and the same rows in both after.
# Arguments go to dev/python/compaction_vs_spark.py (e.g. --files 1000 --rows-per-file 500).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cargo build --release -p icefall-optimizer -p icefall-dev --bins
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
.tools/venv/bin/python dev/python/compaction_vs_spark.py --bin target/release --dir "$dir" "$@"
