//! NDV statistics read by others: Apache DataSketches' Python library deserialises our sketch
//! bytes to the same estimates, Spark's cost-based optimizer reads our statistics file, and
//! Spark's own `compute_table_stats` on the same table agrees with us within 2%.

use std::collections::{BTreeSet, HashMap};

use arrow_array::cast::AsArray;
use icefall_integration_tests::{engines, generated, optimizer, tables};
use icefall_optimizer::stats::NDV_PROPERTY;
use icefall_table::catalog::parse_ident;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_ndv_sketches_read_alike_in_datasketches_and_spark_and_agree_with_spark_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = tables::catalog(dir.path()).await;
    let table = "ns.counted";
    generated::fill(&catalog, table, 20, 10_000, HashMap::new()).await;

    // The exact distinct counts, from our reading of every row.
    let mut distinct: [BTreeSet<String>; 3] = Default::default();
    for batch in tables::scan(&catalog, table, &["a", "b", "note"]).await {
        for (i, set) in distinct.iter_mut().enumerate() {
            let column = arrow_cast::cast(batch.column(i), &arrow_schema::DataType::Utf8).expect("text");
            set.extend(column.as_string::<i32>().iter().flatten().map(str::to_string));
        }
    }
    let exact: Vec<i64> = distinct.iter().map(|s| s.len() as i64).collect();

    let config = optimizer::config(dir.path(), None);
    let report = optimizer::run(&config, table, &["stats"]);
    let path = report[0]["statistics_file"].as_str().expect("statistics_file").to_string();
    let loaded = catalog.load(&parse_ident(table).expect("ident")).await.expect("load");
    let snapshot = loaded.metadata.current_snapshot_id().expect("snapshot");
    let ours: HashMap<i32, i64> = loaded
        .metadata
        .statistics_for_snapshot(snapshot)
        .expect("our statistics")
        .blob_metadata
        .iter()
        .map(|b| (b.fields[0], b.properties[NDV_PROPERTY].parse().expect("ndv")))
        .collect();
    for (field, exact) in (1..=3).zip(&exact) {
        let error = (ours[&field] - exact).abs() as f64 / *exact as f64;
        assert!(error <= 0.02, "field {field}: ours {} vs exact {exact}", ours[&field]);
    }

    // DataSketches' own library reads the same sketches.
    let read = engines::datasketches_read(&path);
    assert_eq!(read.len(), 3);
    for (fields, ndv, estimate) in &read {
        assert_eq!(ours[&fields[0]], *ndv);
        assert_eq!(estimate.round() as i64, *ndv, "DataSketches estimates what we wrote");
    }

    // Spark's optimizer takes our numbers for the current snapshot.
    let spark_sees = engines::spark_column_stats(dir.path(), table);
    let named: HashMap<&str, i32> = HashMap::from([("a", 1), ("b", 2), ("note", 3)]);
    for (name, field) in &named {
        assert_eq!(spark_sees.get(*name), Some(&ours[field]), "Spark's distinct count of {name}: {spark_sees:?}");
    }

    // Spark's own statistics of the same snapshot agree within 2%.
    let call = format!("CALL icefall.system.compute_table_stats(table => '{table}')");
    engines::spark_sql(dir.path(), None, table, &[&call]);
    let loaded = catalog.load(&parse_ident(table).expect("ident")).await.expect("load");
    let spark = loaded.metadata.statistics_for_snapshot(snapshot).expect("Spark's statistics");
    assert_ne!(spark.statistics_path, path, "Spark wrote its own file");
    let theirs: HashMap<i32, &String> =
        spark.blob_metadata.iter().map(|b| (b.fields[0], &b.properties[NDV_PROPERTY])).collect();
    eprintln!("exact {exact:?}, ours {ours:?}, Spark's compute_table_stats {theirs:?}");
    for blob in &spark.blob_metadata {
        let field = blob.fields[0];
        let theirs: i64 = blob.properties[NDV_PROPERTY].parse().expect("ndv");
        let error = (theirs - ours[&field]).abs() as f64 / ours[&field] as f64;
        assert!(error <= 0.02, "field {field}: Spark {theirs} vs ours {}", ours[&field]);
    }

    // Spark's 4,096-entry sketches are never a base to merge into: ours are computed afresh.
    let again = optimizer::run(&config, table, &["stats"]);
    let notes = again[0]["notes"].to_string();
    assert!(notes.contains("full: no earlier statistics of these columns"), "{again:?}");
}
