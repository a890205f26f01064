#!/usr/bin/env bash
# Local quickstart on the embedded defaults: starts a local Kafka-protocol broker, produces
# sample events (1% malformed), runs icefall-writer until they are committed, stops it with
# SIGTERM, and prints the table's snapshots and row count (ours, then PyIceberg's).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet --bins
PORT=19092
DATA=quickstart-data
rm -rf "$DATA" && mkdir -p "$DATA"

echo "== starting the broker on 127.0.0.1:$PORT"
.tools/bin/tansu broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
  --storage-engine memory://tansu/ 2>"$DATA/broker.log" &
BROKER=$!
WRITER=""
trap 'kill $BROKER ${WRITER:-} 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
.tools/bin/tansu topic create --broker "tcp://127.0.0.1:$PORT" --partitions 4 events >/dev/null

echo "== producing 10000 sample events (every 100th malformed)"
target/debug/icefall-dev produce --brokers "127.0.0.1:$PORT" --topic events --count 10000 --bad-every 100

echo "== checking the config, catalog and broker"
target/debug/icefall-writer validate --config examples/quickstart.toml

echo "== running icefall-writer (log: $DATA/writer.log)"
target/debug/icefall-writer run --config examples/quickstart.toml 2>"$DATA/writer.log" &
WRITER=$!
for _ in $(seq 120); do
  sleep 1
  state=$(target/debug/icefall-dev inspect --dir "$DATA" --table quickstart.events 2>/dev/null || true)
  if [[ "$state" == *'"events":{"0":2500,"1":2500,"2":2500,"3":2500}'* ]]; then break; fi
done
kill -TERM $WRITER && wait $WRITER && WRITER=""
echo "== icefall-writer stopped cleanly (final checkpoint done)"

echo "== the table"
target/debug/icefall-dev inspect --dir "$DATA" --table quickstart.events
echo "== the dead-letter table"
target/debug/icefall-dev inspect --dir "$DATA" --table quickstart.events_dlq
echo "== read back with PyIceberg"
.tools/venv/bin/python integration-tests/python/read_table.py --catalog-db "$PWD/$DATA/catalog.db" \
  --warehouse "$PWD/$DATA/warehouse" --table quickstart.events --summary
