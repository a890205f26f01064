//! Z-order compaction against bin-pack and against Spark's `zorder` on copies of the same
//! table ([`generated::fill`]): how many files PyIceberg's planning keeps for a range filter
//! on either column.

use std::collections::HashMap;

use icefall_integration_tests::{engines, generated, optimizer, tables};

const FILES: u64 = 40;
const ROWS_PER_FILE: u64 = 5_000;
/// About 30 output files from the ~3 MB the table holds (in row groups of 16 KiB: files are
/// cut between row groups). Every input file is rewritten (`--min-file-size`, `rewrite-all`).
const TARGET_BYTES: &str = "100000";
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
    let properties = HashMap::from([("write.parquet.row-group-size-bytes".to_string(), "16384".to_string())]);
    for table in [binpack, ours, spark] {
        generated::fill(&catalog, table, FILES, ROWS_PER_FILE, properties.clone()).await;
    }
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
