//! Our tables through the reference engines: Spark 3.5 with the Iceberg runtime, PyIceberg and
//! DuckDB read the same SQL catalog as the writer, and agree with our own scan on the row count
//! and a checksum over every value (`integration-tests/python/engines.py`); Spark's filtered
//! counts (file pruning by partition values and column bounds) match a plain copy of the rows,
//! and Spark time travel to each writer snapshot sees its rows and our offsets.

use std::collections::BTreeMap;
use std::time::Duration;

use icefall_integration_tests::broker::Broker;
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::tables;
use icefall_integration_tests::unique;
use icefall_integration_tests::writer::{WriterProcess, format_pipeline};
use serde_json::json;

/// Every type the writer declares but `time` (Spark 3.5 refuses to read a table with a `time`
/// column: "Spark does not support time fields"), under four partition transforms at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_appends_read_alike_in_spark_pyiceberg_duckdb_and_our_scan() {
    const N: i64 = 300;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let topic = unique("interop");
    broker.create_topic(&topic, 2);
    let table = format!("{}.all_types", unique("ns"));
    let config = format_pipeline(
        dir,
        &broker.bootstrap(),
        &topic,
        &table,
        r#"partition = ["day(ts)", "bucket(4, id)", "truncate(2, name)", "flag"]
schema = [
  { name = "id", type = "long", required = true },
  { name = "small", type = "int" },
  { name = "name", type = "string" },
  { name = "flag", type = "boolean" },
  { name = "ratio", type = "float" },
  { name = "score", type = "double" },
  { name = "amount", type = "decimal(10, 2)" },
  { name = "day", type = "date" },
  { name = "local", type = "timestamp" },
  { name = "ts", type = "timestamptz" },
  { name = "ref", type = "uuid" },
  { name = "blob", type = "binary" },
  { name = "tags", type = "list<string>" },
  { name = "counts", type = "map<string, long>" },
  { name = "geo", type = "struct<lat: double, city: string>" },
]"#,
        "",
    );
    let producer = TestProducer::new(&broker.bootstrap(), &topic);
    let mut landed = BTreeMap::new();
    for id in 0..N {
        let record = json!({
            "id": id, "small": id % 7 - 3, "name": format!("n{}", id % 13), "flag": id % 3 == 0,
            "ratio": id as f64 / 8.0, "score": id as f64 * 1.5, "amount": format!("{}.{:02}", id - 100, id % 100),
            "day": format!("2024-0{}-1{}", 1 + id % 9, id % 10), "local": format!("2024-05-0{} 0{}:30:00", 1 + id % 9, id % 10),
            "ts": format!("2024-05-{:02}T{:02}:00:00.25+02:00", 1 + id % 28, id % 24),
            "ref": uuid::Uuid::from_u128(id as u128 * 7919).to_string(), "blob": "AAEC/w==",
            "tags": if id % 5 == 0 { json!(null) } else { json!([format!("t{id}"), "x"]) },
            "counts": {"a": id, "b": -id}, "geo": {"lat": 59.5 + id as f64, "city": if id % 4 == 0 { json!(null) } else { json!("Oslo") }}
        });
        let partition = (id % 2) as i32;
        producer.send(partition, &id.to_string(), record.to_string().as_bytes());
        *landed.entry(partition).or_insert(0) += 1;
    }
    producer.flush();
    let writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(dir).await;
    tables::wait_for_offsets(&catalog, &table, &topic, &landed, Duration::from_secs(120)).await;
    assert!(writer.stop(Duration::from_secs(30)).success());

    // Partition columns through each transform, and plain columns (pruned by bounds only).
    let filters = [
        "ts >= timestamp'2024-05-10 00:00:00' and ts < timestamp'2024-05-12 00:00:00'",
        "id = 42",
        "id between 17 and 80",
        "name = 'n7'",
        "flag",
        "amount > 10.50",
        "day < date'2024-04-01'",
        "score >= 300.0",
        "small = -3",
        "geo.city is null",
    ];
    let report = tables::engines_report(&catalog, dir, &table, &filters).await;
    let icefall = &report["icefall"];
    assert_eq!(icefall["rows"], N, "{report:#}");
    for engine in ["spark", "pyiceberg", "duckdb"] {
        assert_eq!(report[engine]["rows"], icefall["rows"], "{engine} row count; {report:#}");
        assert_eq!(report[engine]["checksum"], icefall["checksum"], "{engine} values; {report:#}");
    }
    let checks = &report["spark_checks"];
    for filter in filters {
        let [pruned, plain] = [&checks["filters"][filter][0], &checks["filters"][filter][1]];
        assert_eq!(pruned, plain, "Spark with pruning vs a plain copy for `{filter}`: {checks:#}");
        assert!(plain.as_i64().is_some_and(|n| n > 0 && n < N), "`{filter}` selects some rows, not all: {checks:#}");
    }
    let snapshots = checks["snapshots"].as_array().expect("snapshots");
    assert!(!snapshots.is_empty());
    for s in snapshots {
        assert_eq!(s["count_as_of"], s["total_records"], "time travel to {} sees its rows: {checks:#}", s["id"]);
        assert!(s["offsets"].as_str().is_some_and(|o| o.contains(&topic)), "Spark shows our offsets: {s}");
    }
}
