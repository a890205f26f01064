//! ORC tables end to end (every type Spark reads: timestamps, decimals, lists, structs, maps):
//! the writer lands a topic as ORC files (killed -9 and restarted on
//! the way: every offset exactly once), the optimizer compacts them into ORC files, and Spark
//! and PyIceberg read the table identically to our scan before and after, with Spark's pruned
//! counts (which trust our computed bounds) equal to plain counts. (No uuid column: PyIceberg
//! 0.12 ignores ORC's `iceberg.binary-type` attribute and cannot read uuid columns of ORC files,
//! Java-written ones included; docs/formats.md.)

use std::collections::BTreeMap;
use std::time::Duration;

use icefall_integration_tests::broker::Broker;
use icefall_integration_tests::engines;
use icefall_integration_tests::optimizer;
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::tables;
use icefall_integration_tests::unique;
use icefall_integration_tests::writer::{WriterProcess, format_pipeline};
use serde_json::json;

fn record(id: i64) -> serde_json::Value {
    json!({
        "id": id, "small": id % 7 - 3, "name": format!("n{}-{}", id % 13, "x".repeat((id % 40) as usize)),
        "flag": if id % 11 == 0 { json!(null) } else { json!(id % 3 == 0) },
        "ratio": id as f64 / 8.0, "score": if id % 9 == 0 { json!(null) } else { json!(id as f64 * 1.5) },
        "day": format!("2024-0{}-1{}", 1 + id % 9, id % 10),
        "amount": format!("{}.{:02}", id - 100, id % 100),
        "local": format!("2024-05-0{} 0{}:30:00.{:06}", 1 + id % 9, id % 10, id * 7),
        "ts": format!("2024-05-{:02}T{:02}:00:00.25+02:00", 1 + id % 28, id % 24),
        "tags": if id % 5 == 0 { json!(null) } else { json!([format!("t{id}"), "x"]) },
        "geo": {"lat": 59.5 + id as f64, "city": if id % 4 == 0 { json!(null) } else { json!("Oslo") }},
        "counts": {"a": id, "b": -id},
        "blob": "AAEC/w==",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orc_tables_survive_a_crash_compact_and_read_alike_in_spark_and_pyiceberg() {
    const N: i64 = 600;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let topic = unique("orc");
    broker.create_topic(&topic, 2);
    let table = format!("{}.orc_events", unique("ns"));
    let config = format_pipeline(
        dir,
        &broker.bootstrap(),
        &topic,
        &table,
        r#"file_format = "orc"
event_time_column = "ts"
partition = ["day(ts)", "bucket(2, id)"]
schema = [
  { name = "id", type = "long", required = true },
  { name = "small", type = "int" },
  { name = "name", type = "string" },
  { name = "flag", type = "boolean" },
  { name = "ratio", type = "float" },
  { name = "score", type = "double" },
  { name = "day", type = "date" },
  { name = "amount", type = "decimal(10, 2)" },
  { name = "local", type = "timestamp" },
  { name = "ts", type = "timestamptz" },
  { name = "blob", type = "binary" },
  { name = "tags", type = "list<string>" },
  { name = "geo", type = "struct<lat: double, city: string>" },
  { name = "counts", type = "map<string, long>" },
]"#,
        "",
    );
    let producer = TestProducer::new(&broker.bootstrap(), &topic);
    let mut landed = BTreeMap::new();
    let mut send = |ids: std::ops::Range<i64>| {
        for id in ids {
            let partition = (id % 2) as i32;
            producer.send(partition, &id.to_string(), record(id).to_string().as_bytes());
            *landed.entry(partition).or_insert(0) += 1;
        }
        producer.flush();
        landed.clone()
    };

    // First half, then a crash with no final checkpoint, the second half, a restart.
    let first = send(0..N / 2);
    let writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(dir).await;
    tables::wait_for_offsets(&catalog, &table, &topic, &first, Duration::from_secs(120)).await;
    writer.kill9();
    let all = send(N / 2..N);
    let writer = WriterProcess::start(&config, "writer-restarted");
    tables::wait_for_offsets(&catalog, &table, &topic, &all, Duration::from_secs(120)).await;
    assert!(writer.stop(Duration::from_secs(30)).success());
    tables::assert_offsets_exactly_once(&tables::partition_offsets(&catalog, &table).await, &all);
    tables::assert_exactly_once(&tables::long_column(&catalog, &table, "id").await, N);
    let formats = tables::data_file_formats(&catalog, &table).await;
    assert_eq!(formats.keys().collect::<Vec<_>>(), ["Orc"], "every data file is ORC: {formats:?}");
    let files_before = formats["Orc"];

    // Plain columns (pruned by our bounds only) and partition columns.
    let filters = [
        "id = 42",
        "id between 17 and 80",
        "score >= 600.0",
        "small = -3",
        "name = 'n7-xxxxxxx'",
        "name > 'n5'",
        "ratio < 10.0",
        "flag",
        "score is null",
        "day < date'2024-04-01'",
        "amount > 10.50",
        "local >= timestamp_ntz'2024-05-03 00:00:00' and local < timestamp_ntz'2024-05-05 00:00:00'",
        "ts >= timestamp'2024-05-10 00:00:00' and ts < timestamp'2024-05-12 00:00:00'",
        "geo.city is null",
        "geo.city = 'Oslo'",
        "geo.lat > 300.0",
        "tags is null",
    ];
    let options =
        engines::EngineOptions { spark_filters: &filters, engines: Some("pyiceberg,spark"), ..Default::default() };
    let written = engines::engines_report(&catalog, dir, &table, &options).await;
    let checksum = engines::assert_engines_agree(&written, &filters, N);

    let optimizer_config = optimizer::config(dir, None);
    optimizer::run(&optimizer_config, &table, &["compact"]);
    let formats = tables::data_file_formats(&catalog, &table).await;
    assert_eq!(formats.keys().collect::<Vec<_>>(), ["Orc"], "compaction wrote ORC files: {formats:?}");
    assert!(formats["Orc"] < files_before, "compaction merged files: {files_before} -> {formats:?}");
    tables::assert_offsets_exactly_once(&tables::partition_offsets(&catalog, &table).await, &all);

    let compacted = engines::engines_report(&catalog, dir, &table, &options).await;
    assert_eq!(engines::assert_engines_agree(&compacted, &filters, N), checksum, "compaction changed no value");
}

/// A table Spark made with `'write.format.default'='orc'` and filled (ORC Java's files, zlib):
/// a pipeline with no `file_format` follows the table and writes ORC; Spark deletes and
/// updates rows in merge-on-read mode (ORC position delete files) and we add equality deletes
/// (Parquet); our reader applies both; the optimizer compacts Spark's and our files together,
/// folding the deletes in, and every engine agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spark_made_orc_table_gets_orc_files_and_compacts_with_sparks_own_files_and_deletes() {
    const N: i64 = 300;
    const SPARK_ROWS: i64 = 40;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let namespace = unique("ns");
    let table = format!("{namespace}.spark_orc");
    let values: Vec<String> = (0..SPARK_ROWS)
        .map(|i| {
            format!(
                "({}, timestamp'2026-11-0{} 0{}:15:00.125', 'spark-{}', {}.25, 99, {i})",
                -1 - i,
                1 + i % 3,
                i % 10,
                i % 5,
                i * 3
            )
        })
        .collect();
    engines::spark_sql(
        dir,
        None,
        &table,
        &[
            &format!("CREATE NAMESPACE icefall.{namespace}"),
            &format!(
                "CREATE TABLE icefall.{table} (id bigint NOT NULL, ts timestamp NOT NULL, `user` string, \
                 amount decimal(12, 2), kafka_partition int, kafka_offset bigint) USING iceberg \
                 PARTITIONED BY (days(ts)) \
                 TBLPROPERTIES ('format-version' = '2', 'write.format.default' = 'orc')"
            ),
            &format!("INSERT INTO icefall.{table} VALUES {}", values.join(", ")),
            &format!("INSERT INTO icefall.{table} VALUES {}", values.join(", ").replace("'spark-", "'again-")),
        ],
    );
    let catalog = tables::catalog(dir).await;
    let spark_files = tables::data_file_formats(&catalog, &table).await;
    assert_eq!(spark_files.keys().collect::<Vec<_>>(), ["Orc"], "Spark wrote ORC: {spark_files:?}");

    let topic = unique("spark_orc");
    broker.create_topic(&topic, 2);
    let producer = TestProducer::new(&broker.bootstrap(), &topic);
    let mut landed = BTreeMap::new();
    producer.send_events(0, N, 2, &mut landed);
    let config = format_pipeline(
        dir,
        &broker.bootstrap(),
        &topic,
        &table,
        r#"schema = [
  { name = "id", type = "long", required = true },
  { name = "ts", type = "timestamptz", required = true },
  { name = "user", type = "string" },
  { name = "amount", type = "decimal(12, 2)" },
]"#,
        "",
    );
    let writer = WriterProcess::start(&config, "writer");
    tables::wait_for_offsets(&catalog, &table, &topic, &landed, Duration::from_secs(90)).await;
    assert!(writer.stop(Duration::from_secs(30)).success());
    let formats = tables::data_file_formats(&catalog, &table).await;
    assert_eq!(formats.keys().collect::<Vec<_>>(), ["Orc"], "the writer followed write.format.default: {formats:?}");
    let ours: Vec<(i32, i64)> =
        tables::partition_offsets(&catalog, &table).await.into_iter().filter(|(p, _)| *p != 99).collect();
    tables::assert_offsets_exactly_once(&ours, &landed);
    assert_eq!(tables::checksum(&catalog, &table).await.0 as i64, N + 2 * SPARK_ROWS);

    // Row-level deletes on the ORC files: Spark's merge-on-read DELETE and UPDATE (ORC
    // position delete files, written by ORC Java), then equality deletes on `id` (Parquet).
    let t = format!("icefall.{table}");
    let statements = [
        format!(
            "ALTER TABLE {t} SET TBLPROPERTIES ('write.delete.mode'='merge-on-read', \
             'write.update.mode'='merge-on-read')"
        ),
        format!("DELETE FROM {t} WHERE id % 7 = 0"),
        format!("UPDATE {t} SET `user` = 'updated', amount = amount + 1 WHERE id % 5 = 1"),
        format!("SELECT file_format, count(*) FROM {t}.delete_files GROUP BY file_format"),
        format!("SELECT count(*) FROM {t}"),
    ];
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    let results = engines::spark_sql(dir, None, &table, &statements);
    let delete_formats = &results[3]["rows"];
    assert_eq!(delete_formats.as_array().map(Vec::len), Some(1), "{results:#}");
    assert_eq!(delete_formats[0][0], "ORC", "Spark wrote ORC position deletes: {results:#}");
    let ids = |range: Vec<i64>| range.into_iter().filter(|id| id % 7 != 0).collect::<Vec<_>>();
    let mut expected: Vec<i64> = ids((0..N).collect());
    expected.extend(ids((-SPARK_ROWS..0).collect()));
    expected.extend(ids((-SPARK_ROWS..0).collect()));
    let spark_count: i64 = results[4]["rows"][0][0].as_str().and_then(|n| n.parse().ok()).expect("count");
    assert_eq!(spark_count, expected.len() as i64, "{results:#}");
    let mut ours = tables::long_column(&catalog, &table, "id").await;
    ours.sort_unstable();
    expected.sort_unstable();
    assert_eq!(ours, expected, "our reader applies Spark's ORC position deletes");

    let doomed = std::collections::BTreeSet::from([1, 2, 3, -1, -2]);
    assert!(icefall_integration_tests::deletes::delete_ids(&catalog, &table, &doomed).await > 0);
    expected.retain(|id| !doomed.contains(id));
    let before = tables::checksum(&catalog, &table).await;
    assert_eq!(before.0, expected.len(), "our reader applies Parquet equality deletes to ORC files");
    assert!(tables::delete_file_count(&catalog, &table).await > 0);

    let report = optimizer::run(&optimizer::config(dir, None), &table, &["compact"]);
    assert_eq!(report[0]["groups_failed"], 0, "{report:?}");
    let compacted = tables::data_file_formats(&catalog, &table).await;
    assert_eq!(compacted.keys().collect::<Vec<_>>(), ["Orc"], "{compacted:?}");
    assert!(compacted["Orc"] < formats["Orc"], "compaction merged Spark's and our files: {formats:?} -> {compacted:?}");
    assert_eq!(tables::checksum(&catalog, &table).await, before, "compaction changed no value, revived no row");
    assert_eq!(tables::delete_file_count(&catalog, &table).await, 0, "compaction folded every delete file in");

    let filters =
        ["ts >= timestamp'2026-11-02 00:00:00'", "id < 50", "`user` = 'user-8'", "`user` = 'updated'", "amount > 100"];
    let options =
        engines::EngineOptions { spark_filters: &filters, engines: Some("pyiceberg,spark"), ..Default::default() };
    let report = engines::engines_report(&catalog, dir, &table, &options).await;
    engines::assert_engines_agree(&report, &filters, expected.len() as i64);
}

/// ORC files as ORC Java writes them for every type Spark has (RLE v2, dictionaries, nested
/// structs/lists/maps with nulls at every level, pre-1970 timestamps, 64- and 128-bit
/// decimals): our reader reads them as Spark and PyIceberg do, and compacts them into our own
/// ORC files value for value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_written_orc_files_of_every_type_read_and_compact_value_for_value() {
    const ROWS: i64 = 300;
    const INSERTS: i64 = 6;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let namespace = unique("ns");
    let table = format!("{namespace}.spark_types");
    let t = format!("icefall.{table}");
    let mut statements = vec![
        format!("CREATE NAMESPACE icefall.{namespace}"),
        format!(
            "CREATE TABLE {t} (id bigint NOT NULL, flag boolean, small int, ratio float, score double, \
             amount decimal(9, 2), big decimal(28, 6), day date, ts timestamp, local timestamp_ntz, name string, \
             blob binary, tags array<string>, geo struct<lat: double, city: string>, counts map<string, bigint>, \
             items array<struct<sku: string, price: decimal(9, 2)>>) USING iceberg \
             TBLPROPERTIES ('format-version' = '2', 'write.format.default' = 'orc')"
        ),
    ];
    // A file or more per insert; a null in every column somewhere, at every nesting level.
    for k in 0..INSERTS {
        let (from, to) = (k * ROWS / INSERTS, (k + 1) * ROWS / INSERTS);
        statements.push(format!(
            "INSERT INTO {t} SELECT id, IF(id % 5 = 0, NULL, id % 2 = 0), CAST(id * -3 AS INT), \
             CAST(id AS FLOAT) / 3, IF(id % 7 = 0, NULL, id * 1.5D), CAST(id * 1.25 - 100 AS DECIMAL(9, 2)), \
             CAST(id * 12345.678901 - 500000 AS DECIMAL(28, 6)), date_add(DATE'1969-12-25', CAST(id AS INT)), \
             IF(id % 11 = 0, NULL, timestamp_micros(id * 3600000123 - 86400000000)), \
             CAST(timestamp_micros(id * 7200000001 - 3600000000) AS TIMESTAMP_NTZ), \
             IF(id % 9 = 0, NULL, concat('n', id % 13)), CAST(CAST(id AS STRING) AS BINARY), \
             IF(id % 4 = 0, NULL, array(CAST(id AS STRING), NULL, 'x')), \
             IF(id % 6 = 0, NULL, named_struct('lat', id / 3.0D, 'city', IF(id % 4 = 0, NULL, concat('c', id % 9)))), \
             map('a', id, 'b', IF(id % 3 = 0, NULL, -id)), \
             array(named_struct('sku', concat('s', id), 'price', CAST(id AS DECIMAL(9, 2))), \
                   named_struct('sku', 'z', 'price', CAST(NULL AS DECIMAL(9, 2)))) \
             FROM range({from}, {to})"
        ));
    }
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    engines::spark_sql(dir, None, &table, &statements);
    let catalog = tables::catalog(dir).await;
    let written = tables::data_file_formats(&catalog, &table).await;
    assert!(written.get("Orc").is_some_and(|n| *n >= INSERTS as usize), "Spark wrote ORC: {written:?}");

    let filters = ["geo.lat > 30.0", "amount < 0", "ts < timestamp'1970-01-01 00:00:00'", "name is null"];
    let options =
        engines::EngineOptions { spark_filters: &filters, engines: Some("pyiceberg,spark"), ..Default::default() };
    let before = engines::engines_report(&catalog, dir, &table, &options).await;
    let checksum = engines::assert_engines_agree(&before, &filters, ROWS);

    let report = optimizer::run(&optimizer::config(dir, None), &table, &["compact"]);
    assert_eq!(report[0]["groups_failed"], 0, "{report:?}");
    let compacted = tables::data_file_formats(&catalog, &table).await;
    assert_eq!(compacted, BTreeMap::from([("Orc".to_string(), 1)]), "Spark's files became one of ours");
    let after = engines::engines_report(&catalog, dir, &table, &options).await;
    assert_eq!(engines::assert_engines_agree(&after, &filters, ROWS), checksum, "compaction changed no value");
}
