"""Compaction, ours against Spark's, on the same table in the same run (scripts/bench-compaction.sh).

Builds two identical tables of small files (one append commit each, `icefall-dev small-files`),
compacts one with `icefall-optimizer compact` and the other with Spark 3.5 + Iceberg 1.10
`CALL system.rewrite_data_files` on local[2], and reports for each: wall time, CPU seconds, peak
RSS and files before and after; then checks, through Spark, that both tables hold the same rows
as before (count and an order-independent hash of every value).

    python compaction_vs_spark.py --bin target/release --dir /tmp/x --files 200 --rows-per-file 5000
"""

import argparse
import os
import subprocess
import sys
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "integration-tests", "python"))
from engines import spark_session  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
OURS, SPARK = "bench.ours", "bench.spark"


def proc_cpu_seconds(pid):
    """User + system CPU seconds of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_ours(args, config):
    """`icefall-optimizer compact` as a child: wall, CPU and peak RSS from the kernel (wait4)."""
    command = [os.path.join(args.bin, "icefall-optimizer"), "--config", config, "compact", "--table", OURS]
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    out, err = child.stdout.read().decode(), child.stderr.read().decode()
    if status != 0:
        raise SystemExit(f"icefall-optimizer compact failed ({status}): {out}\n{err}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


def table_state(spark, table, snapshot=None):
    """Data files, rows and an order-independent hash of every value, read by Spark (as of
    `snapshot` if given)."""
    name = f"icefall.{table}"
    at = f" VERSION AS OF {snapshot}" if snapshot else ""
    files, size = spark.sql(
        f"select count(*), sum(file_size_in_bytes) from {name}.files{at}").collect()[0]
    rows, digest = spark.sql(f"select count(*), sum(hash(id, ts, user, amount)) from {name}{at}").collect()[0]
    return {"files": files, "bytes": size, "rows": rows, "hash": digest}


def last_append(spark, table):
    """The newest snapshot that appended data: the table as it was before compaction."""
    return spark.sql(f"select snapshot_id from icefall.{table}.snapshots where operation = 'append' "
                     "order by committed_at desc limit 1").collect()[0][0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="folder of the release icefall-optimizer and icefall-dev")
    parser.add_argument("--dir", required=True, help="an empty folder for the catalog and the tables")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rows-per-file", type=int, default=5000)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    subprocess.run(
        [os.path.join(args.bin, "icefall-dev"), "small-files", "--dir", args.dir, "--tables", f"{OURS},{SPARK}",
         "--files", str(args.files), "--rows-per-file", str(args.rows_per_file)],
        check=True,
    )
    config = os.path.join(args.dir, "optimizer.toml")
    with open(config, "w") as f:
        f.write(f'[catalog]\nuri = "sqlite:{args.dir}/catalog.db"\nwarehouse = "{args.dir}/warehouse"\n')
        # The same candidates for both engines: Spark's rewrite takes any 2+ small files.
        f.write("[compact]\nmin_input_files = 2\n")

    # Ours first, alone: Spark's JDBC catalog keeps SQLite connections open that hold off
    # other writers of the same catalog file while Spark runs.
    ours = run_ours(args, config)

    started = time.monotonic()
    spark = spark_session(SimpleNamespace(
        catalog_db=os.path.join(args.dir, "catalog.db"), catalog_uri=None, catalog_name="icefall",
        warehouse=os.path.join(args.dir, "warehouse")))
    session_s = time.monotonic() - started
    jvm = spark.sparkContext._gateway.proc.pid
    before = {OURS: table_state(spark, OURS, last_append(spark, OURS)), SPARK: table_state(spark, SPARK)}

    cpu_before = proc_cpu_seconds(jvm)
    started = time.monotonic()
    result = spark.sql(
        f"CALL icefall.system.rewrite_data_files(table => '{SPARK}', "
        "options => map('min-input-files', '2', 'target-file-size-bytes', '536870912'))").collect()
    theirs = {"wall_s": time.monotonic() - started, "cpu_s": proc_cpu_seconds(jvm) - cpu_before,
              "peak_rss_mib": proc_peak_rss_mib(jvm)}

    after = {t: table_state(spark, t) for t in (OURS, SPARK)}
    spark.stop()
    rows, mb = before[OURS]["rows"], before[OURS]["bytes"] / 1e6
    print(f"## Compaction against Spark: {args.files} files x {args.rows_per_file} rows ({mb:.1f} MB), same table twice\n")
    print(f"Spark session start (not counted): {session_s:.1f} s; Spark's result: {[list(r) for r in result]}\n")
    print("| engine | wall s | rows/s | MB/s | CPU s | peak RSS MiB | files before → after | same rows |")
    print("|---|---|---|---|---|---|---|---|")
    for label, table, m in (("icefall-optimizer compact", OURS, ours), ("Spark rewrite_data_files, local[2]", SPARK, theirs)):
        same = after[table]["rows"] == rows and after[table]["hash"] == before[table]["hash"]
        print(f"| {label} | {m['wall_s']:.2f} | {rows / m['wall_s']:,.0f} | {mb / m['wall_s']:.1f} | {m['cpu_s']:.2f} | "
              f"{m['peak_rss_mib']:.0f} | "
              f"{before[table]['files']} → {after[table]['files']} | {'yes' if same else 'NO'} |")
    print(f"\nours / Spark: {theirs['wall_s'] / ours['wall_s']:.1f}x the throughput (wall), "
          f"{theirs['cpu_s'] / max(ours['cpu_s'], 1e-9):.1f}x less CPU; Spark's peak RSS is the JVM's whole life")
    same_input = before[OURS]["hash"] == before[SPARK]["hash"] and before[OURS]["rows"] == before[SPARK]["rows"]
    ok = same_input and all(after[t]["rows"] == rows and after[t]["hash"] == before[t]["hash"] for t in (OURS, SPARK))
    if not ok or after[OURS]["files"] >= before[OURS]["files"]:
        raise SystemExit(f"compaction changed the rows or compacted nothing: {before} → {after}")


if __name__ == "__main__":
    main()
