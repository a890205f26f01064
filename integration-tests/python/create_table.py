"""Creates the test events table with PyIceberg in a SQL catalog, with PyIceberg's own choices
(field ids, partition spec `month(ts)` + `truncate(4, user)`, sort order `id`, gzip), so the
writer can be pointed at a table it did not create.

    python create_table.py --catalog-db catalog.db --warehouse warehouse --table ns.events
"""
import argparse
import json
import os

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.transforms import IdentityTransform, MonthTransform, TruncateTransform
from pyiceberg.types import (
    DecimalType,
    DoubleType,
    IntegerType,
    ListType,
    LongType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalog-db", required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--catalog-name", default="icefall")
    args = parser.parse_args()
    catalog = SqlCatalog(
        args.catalog_name,
        uri=f"sqlite:///{os.path.abspath(args.catalog_db)}",
        warehouse=f"file://{os.path.abspath(args.warehouse)}",
    )
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "ts", TimestamptzType(), required=True),
        NestedField(3, "user", StringType()),
        NestedField(4, "amount", DecimalType(12, 2)),
        NestedField(5, "tags", ListType(10, StringType(), element_required=False)),
        NestedField(6, "geo", StructType(NestedField(11, "lat", DoubleType()), NestedField(12, "lon", DoubleType()))),
        NestedField(7, "kafka_partition", IntegerType()),
        NestedField(8, "kafka_offset", LongType()),
    )
    spec = PartitionSpec(
        PartitionField(source_id=2, field_id=1000, transform=MonthTransform(), name="ts_month"),
        PartitionField(source_id=3, field_id=1001, transform=TruncateTransform(4), name="user_trunc"),
    )
    namespace = args.table.rsplit(".", 1)[0]
    catalog.create_namespace_if_not_exists(namespace)
    table = catalog.create_table(
        args.table,
        schema=schema,
        partition_spec=spec,
        sort_order=SortOrder(SortField(source_id=1, transform=IdentityTransform())),
        properties={"write.parquet.compression-codec": "gzip"},
    )
    print(json.dumps({"location": table.metadata.location, "spec": str(table.spec())}))


if __name__ == "__main__":
    main()
