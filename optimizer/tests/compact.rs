//! Compaction writes the table's sort order (SQLite catalog and local files in a temp dir).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use futures::TryStreamExt;
use iceberg::spec::{ManifestStatus, NestedField, PrimitiveType, Schema, SortDirection, Type};
use icefall_optimizer::compact::{CompactOptions, compact};
use icefall_table::catalog::parse_ident;
use icefall_table::create::TableLayout;
use icefall_table::{Catalog, CatalogConfig};

mod common;
use common::append;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_output_follows_the_table_sort_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::connect(&CatalogConfig::embedded_in(dir.path())).await.expect("catalog");
    let layout = TableLayout { sort_order: vec!["id desc".into()], ..id_and_name(HashMap::new()) };
    let ident = parse_ident("ns.sorted").expect("ident");
    let mut table = catalog.load_or_create(&ident, &layout).await.expect("create");
    let order = table.metadata.default_sort_order();
    assert_eq!(order.fields.len(), 1);
    assert_eq!(order.fields[0].direction, SortDirection::Descending);

    // Six files of interleaved ids, each file in its own (unsorted) order.
    let arrow_schema =
        Arc::new(iceberg::arrow::schema_to_arrow_schema(table.metadata.current_schema()).expect("arrow"));
    for f in 0..6i64 {
        let ids: Vec<i64> = (0..500).map(|i| ((i * 37 + f * 11) % 500) * 6 + f).collect();
        let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
        let columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names))];
        let batch = RecordBatch::try_new(arrow_schema.clone(), columns).expect("batch");
        table = append(&catalog, table, batch, &format!("unsorted-{f}")).await;
    }

    let report =
        compact(&catalog, &ident, &CompactOptions { min_input_files: 2, ..Default::default() }).await.expect("compact");
    assert_eq!(report.files_out, 1, "{report:?}");
    let table = catalog.load(&ident).await.expect("load");
    let scan = table.to_table(catalog.file_io()).expect("table").scan().select(["id"]).build().expect("scan");
    let batches: Vec<RecordBatch> = scan.to_arrow().await.expect("read").try_collect().await.expect("batches");
    let ids: Vec<i64> =
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
    assert_eq!(ids.len(), 3_000);
    let mut expected = ids.clone();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, expected, "one file, rows in descending id order");

    // The compacted file says which order its rows follow.
    let snapshot = table.metadata.current_snapshot().expect("snapshot");
    let list = catalog.manifest_list(&table.metadata, snapshot).await.expect("manifest list");
    let mut orders = Vec::new();
    for manifest in list.entries() {
        let entries = manifest.load_manifest(catalog.file_io()).await.expect("manifest");
        orders.extend(entries.entries().iter().filter(|e| e.is_alive()).map(|e| e.data_file().sort_order_id()));
    }
    let order_id = i32::try_from(table.metadata.default_sort_order_id()).expect("order id");
    assert_eq!(orders, [Some(order_id)]);

    // The six removed files, one per manifest before, are listed as deleted (by this snapshot)
    // in one rewritten manifest, not in six.
    let mut deleted_per_manifest = Vec::new();
    for manifest in list.entries() {
        let entries = manifest.load_manifest(catalog.file_io()).await.expect("manifest");
        let deleted: Vec<_> = entries.entries().iter().filter(|e| e.status() == ManifestStatus::Deleted).collect();
        assert!(deleted.iter().all(|e| e.snapshot_id() == Some(snapshot.snapshot_id())));
        deleted_per_manifest.push(deleted.len());
    }
    deleted_per_manifest.sort_unstable();
    assert_eq!(deleted_per_manifest, [0, 6], "the new file's manifest, and one listing the removed files");
}

/// `--where` selects partitions by a predicate on their values: of three days with three small
/// files each, only the day before the cut is compacted; a field the table lacks is an error
/// naming the ones it has. Then the other two days are rewritten side by side (two groups at
/// once), every row kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_compacts_only_the_partitions_its_predicate_selects() {
    use arrow_array::TimestampMicrosecondArray;
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::connect(&CatalogConfig::embedded_in(dir.path())).await.expect("catalog");
    let schema = Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::required(2, "ts", Type::Primitive(PrimitiveType::Timestamptz)).into(),
        ])
        .build()
        .expect("schema");
    let layout =
        TableLayout { schema, partition: vec!["day(ts)".into()], properties: HashMap::new(), sort_order: vec![] };
    let ident = parse_ident("ns.daily").expect("ident");
    let mut table = catalog.load_or_create(&ident, &layout).await.expect("create");
    let arrow_schema =
        Arc::new(iceberg::arrow::schema_to_arrow_schema(table.metadata.current_schema()).expect("arrow"));
    // 2025-11-01, 2026-11-02 and 2026-11-03, noon UTC.
    let days = [1_761_998_400_000_000i64, 1_793_620_800_000_000, 1_793_707_200_000_000];
    for (f, micros) in days.iter().flat_map(|d| [*d; 3]).enumerate() {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values((0..100).map(|i| f as i64 * 100 + i)));
        let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![micros; 100]).with_timezone("+00:00"));
        let batch = RecordBatch::try_new(arrow_schema.clone(), vec![ids, ts]).expect("batch");
        table = append(&catalog, table, batch, &format!("day-{f}")).await;
    }
    let options = |filter: &str| CompactOptions {
        min_input_files: 2,
        partition_filter: Some(filter.to_string()),
        ..Default::default()
    };
    let e = compact(&catalog, &ident, &options("hour(ts) = 3")).await.expect_err("no such field");
    assert!(e.to_string().contains("ts_day = day(ts)"), "{e}");
    let report = compact(&catalog, &ident, &options("day(ts) < '2026-01-01'")).await.expect("compact");
    assert_eq!((report.files_in, report.files_out), (3, 1), "{report:?}");
    let table = catalog.load(&ident).await.expect("load");
    let summary = &table.metadata.current_snapshot().expect("snapshot").summary().additional_properties;
    assert_eq!(summary.get("total-data-files").map(String::as_str), Some("7"), "the later days kept their files");
    let both = CompactOptions { min_input_files: 2, max_concurrent_group_rewrites: 2, ..Default::default() };
    let report = compact(&catalog, &ident, &both).await.expect("compact");
    assert_eq!((report.groups, report.commits, report.files_out), (2, 2, 2), "{report:?}");
    let table = catalog.load(&ident).await.expect("load");
    let summary = &table.metadata.current_snapshot().expect("snapshot").summary().additional_properties;
    assert_eq!(summary.get("total-data-files").map(String::as_str), Some("3"));
    assert_eq!(summary.get("total-records").map(String::as_str), Some("900"));
}

/// A table whose property names z-order columns is z-ordered by a plain `compact` (what `run`
/// calls); `--strategy binpack` overrides it, and a z-order without columns on a table that
/// names none is an error saying what to pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_property_makes_zorder_the_default() {
    use icefall_optimizer::compact::Strategy;
    use icefall_table::contract::OPTIMIZER_ZORDER_COLUMNS;
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::connect(&CatalogConfig::embedded_in(dir.path())).await.expect("catalog");
    let layout = id_and_name(HashMap::from([(OPTIMIZER_ZORDER_COLUMNS.to_string(), "id, name".to_string())]));
    let ident = parse_ident("ns.clustered").expect("ident");
    let mut table = catalog.load_or_create(&ident, &layout).await.expect("create");
    let arrow_schema =
        Arc::new(iceberg::arrow::schema_to_arrow_schema(table.metadata.current_schema()).expect("arrow"));
    for f in 0..4i64 {
        let ids: Vec<i64> = (0..200).map(|i| (i * 7 + f) % 800).collect();
        let names: Vec<Option<String>> = ids.iter().map(|i| (i % 9 != 0).then(|| format!("ü-{i}"))).collect();
        let columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names))];
        let batch = RecordBatch::try_new(arrow_schema.clone(), columns).expect("batch");
        table = append(&catalog, table, batch, &format!("small-{f}")).await;
    }
    let options = |strategy: Option<Strategy>| CompactOptions {
        min_input_files: 2,
        strategy,
        dry_run: true,
        ..Default::default()
    };
    let report = compact(&catalog, &ident, &options(None)).await.expect("compact");
    assert!(report.notes.iter().any(|n| n == "z-order of id, name"), "{report:?}");
    let report = compact(&catalog, &ident, &options(Some(Strategy::BinPack))).await.expect("compact");
    assert!(!report.notes.iter().any(|n| n.contains("z-order")), "{report:?}");
    let report = compact(&catalog, &ident, &CompactOptions { dry_run: false, ..options(None) }).await.expect("compact");
    assert_eq!((report.files_in, report.rows), (4, 800), "{report:?}");

    let plain = parse_ident("ns.plain").expect("ident");
    let layout = id_and_name(HashMap::new());
    catalog.load_or_create(&plain, &layout).await.expect("create");
    append(&catalog, catalog.load(&plain).await.expect("load"), RecordBatch::new_empty(arrow_schema.clone()), "x")
        .await;
    let e = compact(&catalog, &plain, &options(Some(Strategy::ZOrder(vec![])))).await.expect_err("which columns?");
    assert!(e.to_string().contains("--columns") && e.to_string().contains(OPTIMIZER_ZORDER_COLUMNS), "{e}");
}

/// An unpartitioned table of `id` (long) and `name` (string, optional) with these properties.
fn id_and_name(properties: HashMap<String, String>) -> TableLayout {
    let schema = Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::optional(2, "name", Type::Primitive(PrimitiveType::String)).into(),
        ])
        .build()
        .expect("schema");
    TableLayout { schema, partition: vec![], properties, sort_order: vec![] }
}
