//! NDV statistics (SQLite catalog, local files in a temp dir): accuracy on 1M rows, the
//! Puffin file and its metadata entry, incremental runs after appends equal to a full one,
//! carried over compaction, and gone with their snapshot on expiry.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};
use icefall_optimizer::compact::{CompactOptions, compact};
use icefall_optimizer::stats::{NDV_PROPERTY, StatsOptions, compute_stats};
use icefall_table::catalog::parse_ident;
use icefall_table::create::TableLayout;
use icefall_table::{Catalog, CatalogConfig, Change, LoadedTable, PendingCommit, RetryPolicy, TableIdent};

mod common;

/// Rows `from..to`: `id` unique, `country` one of 1,000 (long, non-ASCII), `ts` one per
/// 7 ids (so about a seventh as many distinct), nulls in `country`.
fn rows(table: &LoadedTable, from: i64, to: i64) -> RecordBatch {
    let schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(table.metadata.current_schema()).expect("arrow"));
    let ids: Vec<i64> = (from..to).collect();
    let countries: Vec<Option<String>> = ids
        .iter()
        .map(|i| (i % 101 != 0).then(|| format!("{}-ünï/?#%-{}", "c".repeat(60), (i * 7919) % 1000)))
        .collect();
    let ts: Vec<i64> = ids.iter().map(|i| 1_793_491_200_000_000 + (i / 7) * 1_000_000).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(StringArray::from(countries)),
        Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("+00:00")),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

/// The `ndv` of each field id in the statistics of the table's current snapshot.
fn ndv(table: &LoadedTable) -> HashMap<i32, i64> {
    let snapshot = table.metadata.current_snapshot_id().expect("snapshot");
    let stats = table.metadata.statistics_for_snapshot(snapshot).expect("statistics of the current snapshot");
    stats.blob_metadata.iter().map(|b| (b.fields[0], b.properties[NDV_PROPERTY].parse().expect("ndv"))).collect()
}

fn within(estimate: i64, exact: i64, tolerance: f64) -> bool {
    ((estimate - exact) as f64).abs() / exact as f64 <= tolerance
}

async fn run(catalog: &Catalog, ident: &TableIdent, full: bool) -> (icefall_optimizer::report::Report, LoadedTable) {
    let report = compute_stats(catalog, ident, &StatsOptions { full, ..Default::default() }).await.expect("stats");
    (report, catalog.load(ident).await.expect("load"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndv_of_a_million_rows_within_two_percent_and_kept_fresh_incrementally() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::connect(&CatalogConfig::embedded_in(dir.path())).await.expect("catalog");
    let schema = Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::optional(2, "country", Type::Primitive(PrimitiveType::String)).into(),
            NestedField::required(3, "ts", Type::Primitive(PrimitiveType::Timestamptz)).into(),
        ])
        .build()
        .expect("schema");
    let layout = TableLayout { schema, partition: vec![], properties: HashMap::new(), sort_order: vec![] };
    let ident = parse_ident("ns.counted").expect("ident");
    let mut table = catalog.load_or_create(&ident, &layout).await.expect("create");
    for part in 0..4 {
        let batch = rows(&table, part * 250_000, (part + 1) * 250_000);
        table = common::append(&catalog, table, batch, &format!("rows-{part}")).await;
    }

    // `run`'s guard: no full read over the limit.
    let guarded = StatsOptions { max_full_bytes: Some(1_000), ..Default::default() };
    let skipped = compute_stats(&catalog, &ident, &guarded).await.expect("guarded");
    assert!(skipped.notes.iter().any(|n| n.starts_with("skipped: a full computation")), "{skipped:?}");
    assert_eq!((skipped.rows, skipped.commits), (0, 0));

    let (report, table) = run(&catalog, &ident, false).await;
    assert_eq!((report.rows, report.commits, report.files_out), (1_000_000, 1, 1), "{report:?}");
    assert!(report.notes.iter().any(|n| n.starts_with("full:")), "{report:?}");
    let exact = HashMap::from([(1, 1_000_000), (2, 1_000), (3, 142_858)]);
    let estimates = ndv(&table);
    eprintln!("exact {exact:?}, estimates {estimates:?}");
    for (field, exact) in &exact {
        assert!(within(estimates[field], *exact, 0.02), "field {field}: {} vs {exact}", estimates[field]);
    }
    let stats =
        table.metadata.statistics_for_snapshot(table.metadata.current_snapshot_id().expect("id")).expect("stats");
    assert!(stats.statistics_path.ends_with(".stats") && stats.file_size_in_bytes > stats.file_footer_size_in_bytes);
    assert_eq!(report.statistics_file.as_deref(), Some(stats.statistics_path.as_str()));
    let again = run(&catalog, &ident, false).await.0;
    assert!(again.notes.iter().any(|n| n.contains("already has these statistics")) && again.commits == 0);

    // Appends: only the new file is read, and the result is what a full run gives.
    let more = rows(&table, 1_000_000, 1_100_000);
    common::append(&catalog, table, more, "more").await;
    // Incremental runs are never held back by the guard.
    let incremental = compute_stats(&catalog, &ident, &guarded).await.expect("incremental");
    let table = catalog.load(&ident).await.expect("load");
    assert_eq!((incremental.files_in, incremental.rows), (1, 100_000), "{incremental:?}");
    let merged = ndv(&table);
    let (full, table) = run(&catalog, &ident, true).await;
    assert_eq!(full.rows, 1_100_000);
    assert_eq!(ndv(&table), merged, "incremental = full");
    assert!(within(merged[&1], 1_100_000, 0.02), "{merged:?}");

    // Compaction changes no row: the sketches carry over without reading anything.
    compact(&catalog, &ident, &CompactOptions { min_input_files: 2, ..Default::default() }).await.expect("compact");
    let (carried, table) = run(&catalog, &ident, false).await;
    assert_eq!((carried.files_in, carried.commits), (0, 1), "{carried:?}");
    assert_eq!(ndv(&table), merged);

    // Expiry takes the statistics of the snapshots it removes.
    let current = table.metadata.current_snapshot_id().expect("id");
    let older: BTreeSet<i64> =
        table.metadata.snapshots().map(|s| s.snapshot_id()).filter(|id| *id != current).collect();
    let table = common::commit(&catalog, table, Change::Expire { snapshot_ids: older, refs: BTreeSet::new() }).await;
    assert_eq!(table.metadata.statistics_iter().count(), 1, "only the current snapshot's statistics are left");

    // Statistics of a snapshot expired meanwhile are refused, not registered.
    let mut stale = table.metadata.statistics_iter().next().expect("statistics").clone();
    stale.snapshot_id = 42; // no snapshot of this table has that id
    let pending = PendingCommit::new(Change::SetStatistics { statistics: Box::new(stale) }, HashMap::new());
    let refused = catalog.commit(table, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default()).await;
    assert!(matches!(refused, Err(icefall_table::Error::Rejected { .. })), "{:?}", refused.map(|o| o.snapshot_id));
}
