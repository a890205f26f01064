"""Writes Hive-style data files as another engine leaves them (no Iceberg field ids, the
partition column only in the folder names `region=…`, nested columns with nulls at every level,
strings longer than 64 bytes): Parquet under `OUT/parquet/region=eu/`, ORC under
`OUT/orc/region=us-west/`. Prints the row count and checksum of the values written
(`engines.summarize`, the form every engine's reading is compared in), as JSON.

    python hive_files.py --catalog-db … --warehouse … --table ns.t --out /tmp/hive
"""
import argparse
import json
import os
import sys

import pyarrow as pa
import pyarrow.orc as po
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engines import summarize  # noqa: E402

# Each region's files in one format: Spark's add_files takes one format per call.
REGIONS = [("eu", "parquet"), ("us-west", "orc")]
COLUMNS = ["id", "name", "geo", "tags", "attrs", "region"]


def row(i):
    return {
        "id": i,
        "name": None if i % 11 == 0 else f"https://example.com/{i}/ä?q=%20#{'x' * (80 if i % 3 == 0 else 5)}",
        "geo": None if i % 7 == 0 else {"lat": None if i % 5 == 0 else i / 4, "city": None if i % 2 else f"city-{i % 4}"},
        "tags": None if i % 6 == 0 else ([] if i % 6 == 1 else [f"t{i}", None, "z"]),
        "attrs": None if i % 9 == 0 else [("k", f"v{i}"), ("empty", None)],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalog-db")
    parser.add_argument("--catalog-uri")
    parser.add_argument("--warehouse")
    parser.add_argument("--table")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("geo", pa.struct([("lat", pa.float64()), ("city", pa.string())])),
            ("tags", pa.list_(pa.string())),
            ("attrs", pa.map_(pa.string(), pa.string())),
        ]
    )
    produced = []
    i = 0
    for region, file_format in REGIONS:
        folder = os.path.join(args.out, file_format, f"region={region}")
        os.makedirs(folder, exist_ok=True)
        for part in range(2):
            rows = [row(i + n) for n in range(50)]
            i += 50
            data = pa.Table.from_pylist(rows, schema=schema)
            path = os.path.join(folder, f"part-{part}.{file_format}")
            # Several row groups (stripes) per file, as engines write big files.
            if file_format == "parquet":
                pq.write_table(data, path, row_group_size=20)
            else:
                po.write_table(data, path, stripe_size=1024)
            produced.extend(dict(r, region=region) for r in rows)
    table = pa.Table.from_pylist(produced, schema=schema.append(pa.field("region", pa.string())))
    json.dump({"produced": summarize(table, COLUMNS)}, sys.stdout)


if __name__ == "__main__":
    main()
