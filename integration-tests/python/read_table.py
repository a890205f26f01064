"""Reads an Icefall table with PyIceberg (the SQL catalog the writer uses) and prints a JSON
report: row count, distinct ids, and the snapshots with their icefall.* summary keys."""
import argparse
import json

from pyiceberg.catalog.sql import SqlCatalog


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalog-db", required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--catalog-name", default="icefall")
    parser.add_argument("--summary", action="store_true", help="print one human-readable line instead of JSON")
    parser.add_argument("--dump-rows", metavar="COLUMN", help="include every row (as JSON), ordered by COLUMN")
    parser.add_argument("--property", action="append", default=[], help="KEY=VALUE storage property")
    parser.add_argument("--count-filter", action="append", default=[], help="count the rows a filtered scan returns")
    args = parser.parse_args()

    warehouse = args.warehouse if "://" in args.warehouse else f"file://{args.warehouse}"
    props = dict(p.split("=", 1) for p in args.property)
    catalog = SqlCatalog(args.catalog_name, uri=f"sqlite:///{args.catalog_db}", warehouse=warehouse, **props)
    table = catalog.load_table(args.table)
    data = table.scan().to_arrow()
    report = {
        "rows": data.num_rows,
        "columns": data.column_names,
        "snapshots": [
            {
                "id": s.snapshot_id,
                "operation": s.summary.operation.value if s.summary else None,
                "icefall": {k: v for k, v in (s.summary.additional_properties if s.summary else {}).items() if k.startswith("icefall.")},
            }
            for s in table.snapshots()
        ],
    }
    # Filtered scans prune files and row groups by their bounds before filtering rows.
    report["filtered"] = {f: table.scan(row_filter=f).to_arrow().num_rows for f in args.count_filter}
    if args.dump_rows:
        report["schema"] = [[f.field_id, f.name, str(f.field_type)] for f in table.schema().fields]
        report["data"] = data.sort_by(args.dump_rows).to_pylist()
    if "id" in data.column_names:
        ids = data.column("id").to_pylist()
        report["distinct_ids"] = len(set(ids))
        report["min_id"] = min(ids) if ids else None
        report["max_id"] = max(ids) if ids else None
    if args.summary:
        print(f"PyIceberg: {report['rows']} rows, {report.get('distinct_ids')} distinct ids, {len(report['snapshots'])} snapshots")
    else:
        print(json.dumps(report, default=lambda o: o.hex() if isinstance(o, (bytes, bytearray)) else str(o)))


if __name__ == "__main__":
    main()
