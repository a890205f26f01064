//! Z-order compaction against bin-pack and against Spark's `zorder` on copies of the same
//! table: how many files PyIceberg's planning keeps for a range filter on either column.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};
use icefall_integration_tests::{Lcg, engines, optimizer, tables};
use icefall_table::catalog::parse_ident;
use icefall_table::create::TableLayout;
use icefall_table::files::TableFiles;
use icefall_table::{Catalog, PendingCommit, RetryPolicy};

const FILES: u64 = 40;
const ROWS_PER_FILE: u64 = 5_000;
/// About 30 output files from the ~3 MB the table holds (in row groups of 16 KiB: files are
/// cut between row groups). Every input file is rewritten (`--min-file-size`, `rewrite-all`).
const TARGET_BYTES: &str = "100000";
/// 2026-11-01T00:00:00Z and 30 days, in microseconds.
const START_MICROS: u64 = 1_793_491_200_000_000;
const SPAN_MICROS: u64 = 30 * 86_400_000_000;

/// Three identical tables of 40 small files: `a` uniform in [0, 1M), `b` uniform over 30 days,
/// `note` a long non-ASCII string, nulls in it.
async fn fill(catalog: &Catalog, names: &[&str]) {
    let schema = Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "a", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::required(2, "b", Type::Primitive(PrimitiveType::Timestamptz)).into(),
            NestedField::optional(3, "note", Type::Primitive(PrimitiveType::String)).into(),
        ])
        .build()
        .expect("schema");
    let properties = HashMap::from([("write.parquet.row-group-size-bytes".to_string(), "16384".to_string())]);
    let layout = TableLayout { schema, partition: vec![], properties, sort_order: vec![] };
    for name in names {
        let mut table = catalog.load_or_create(&parse_ident(name).expect("ident"), &layout).await.expect("create");
        let arrow = Arc::new(iceberg::arrow::schema_to_arrow_schema(table.metadata.current_schema()).expect("arrow"));
        let mut rng = Lcg::new(11);
        for f in 0..FILES {
            let a: Vec<i64> = (0..ROWS_PER_FILE).map(|_| rng.range(0, 1_000_000) as i64).collect();
            let b: Vec<i64> = (0..ROWS_PER_FILE).map(|_| (START_MICROS + rng.range(0, SPAN_MICROS)) as i64).collect();
            let note: Vec<Option<String>> =
                a.iter().map(|v| (v % 5 != 0).then(|| format!("{}/?#%-ünï-{v}", "z".repeat(64)))).collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(a)),
                Arc::new(TimestampMicrosecondArray::from(b).with_timezone("+00:00")),
                Arc::new(StringArray::from(note)),
            ];
            let batch = RecordBatch::try_new(arrow.clone(), columns).expect("batch");
            let files =
                TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None).expect("files");
            let mut writer = files.open(format!("small-{f}")).expect("open");
            writer.write(batch).await.expect("write");
            let data = writer.close().await.expect("close");
            let pending = PendingCommit::append(data, files.spec_id(), HashMap::new());
            table = catalog
                .commit(table, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default())
                .await
                .expect("commit")
                .table;
        }
    }
}

/// The share of files PyIceberg keeps for each filter, and the file count.
fn kept(dir: &std::path::Path, table: &str, filters: &[&str]) -> (Vec<f64>, u64) {
    let planned = engines::planned_files(dir, None, table, filters);
    let total = planned.first().map_or(0, |p| p.1);
    (planned.iter().map(|(kept, total)| *kept as f64 / *total as f64).collect(), total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zorder_prunes_range_filters_on_both_columns_about_as_well_as_spark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = tables::catalog(dir.path()).await;
    let (binpack, ours, spark) = ("ns.binpack", "ns.zorder", "ns.spark_zorder");
    fill(&catalog, &[binpack, ours, spark]).await;
    let before = tables::checksum(&catalog, ours).await;
    assert_eq!(before.0 as u64, FILES * ROWS_PER_FILE);

    let config = optimizer::config(dir.path(), None);
    let all = ["--target-file-size", TARGET_BYTES, "--min-file-size", "100000000"];
    let report = optimizer::run(&config, binpack, &[&["compact"], &all[..]].concat());
    assert_eq!(report[0]["groups_failed"], 0, "{report:?}");
    let report =
        optimizer::run(&config, ours, &[&["compact", "--strategy", "zorder", "--columns", "a,b"], &all[..]].concat());
    assert_eq!(report[0]["groups_failed"], 0, "{report:?}");
    assert_eq!(report[0]["rewritten_data_files_count"], FILES, "one group: the whole table: {report:?}");
    assert_eq!(tables::checksum(&catalog, ours).await, before, "z-ordering changed no value");
    let call = format!(
        "CALL icefall.system.rewrite_data_files(table => '{spark}', strategy => 'sort', \
         sort_order => 'zorder(a, b)', options => map('target-file-size-bytes', '{TARGET_BYTES}', 'rewrite-all', 'true'))"
    );
    engines::spark_sql(dir.path(), None, spark, &[&call]);
    assert_eq!(tables::checksum(&catalog, spark).await, before);

    // A tenth of each column's range, a tenth in the middle of one, and a range of both.
    let filters = [
        "a < 100000",
        "b < '2026-11-04T00:00:00+00:00'",
        "a >= 450000 and a < 550000",
        "a < 300000 and b < '2026-11-10T00:00:00+00:00'",
    ];
    let (binpack_kept, binpack_files) = kept(dir.path(), binpack, &filters);
    let (ours_kept, ours_files) = kept(dir.path(), ours, &filters);
    let (spark_kept, spark_files) = kept(dir.path(), spark, &filters);
    eprintln!(
        "share of files kept for {filters:?}: bin-pack {binpack_kept:.2?} of {binpack_files}, \
         ours {ours_kept:.2?} of {ours_files}, Spark {spark_kept:.2?} of {spark_files}"
    );
    assert!(ours_files >= 16, "enough output files to prune: {ours_files}");
    for (i, filter) in filters.iter().enumerate() {
        assert!(ours_kept[i] < binpack_kept[i], "{filter}: z-order keeps fewer files than bin-pack");
    }
    // Spark interleaves raw values, favouring the column of larger numbers (b, microseconds);
    // ours weighs both the same: compared over all the filters.
    let mean = |kept: &[f64]| kept.iter().sum::<f64>() / kept.len() as f64;
    assert!(mean(&ours_kept) <= mean(&spark_kept) * 1.2, "within 20% of Spark's z-order");
}
