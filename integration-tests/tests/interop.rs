//! Our tables through the reference engines: Spark 3.5 with the Iceberg runtime, PyIceberg and
//! DuckDB read the same SQL catalog as the writer, and agree with our own scan on the row count
//! and a checksum over every value (`integration-tests/python/engines.py`); Spark's filtered
//! counts (file pruning by partition values and column bounds) match a plain copy of the rows,
//! and Spark time travel to each writer snapshot sees its rows and our offsets.

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::types::Value as Avro;
use icefall_integration_tests::broker::Broker;
use icefall_integration_tests::encode::{avro_encode, confluent};
use icefall_integration_tests::engines;
use icefall_integration_tests::optimizer;
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::registry::TestRegistry;
use icefall_integration_tests::tables;
use icefall_integration_tests::unique;
use icefall_integration_tests::writer::{WriterProcess, format_pipeline};
use icefall_table::catalog::parse_ident;
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
    let options = engines::EngineOptions { spark_filters: &filters, ..Default::default() };
    let report = engines::engines_report(&catalog, dir, &table, &options).await;
    engines::assert_engines_agree(&report, &filters, N);
    let checks = &report["spark_checks"];
    let snapshots = checks["snapshots"].as_array().expect("snapshots");
    assert!(!snapshots.is_empty());
    for s in snapshots {
        assert!(s["offsets"].as_str().is_some_and(|o| o.contains(&topic)), "Spark shows our offsets: {s}");
    }
}

/// v1 of the evolution test's Avro schema.
const READING_V1: &str = r#"{"type": "record", "name": "Reading", "namespace": "iot", "fields": [
  {"name": "id", "type": "long"},
  {"name": "sensor", "type": "string"},
  {"name": "value", "type": "float"},
  {"name": "count", "type": "int"},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
  {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "received", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "legacy", "type": ["null", "string"], "default": null},
  {"name": "meta", "type": {"type": "record", "name": "Meta", "fields": [
    {"name": "site", "type": "string"}, {"name": "level", "type": "int"}]}}
]}"#;

/// v2, every kind of change at once: `sensor` renamed to `device` (alias), `value`
/// float → double, `count` int → long, `price` decimal(9,2) → decimal(12,2), fields reordered,
/// `legacy` removed (dropped: `drop_removed_fields`), `tags` and the nested `meta.zone` added.
const READING_V2: &str = r#"{"type": "record", "name": "Reading", "namespace": "iot", "fields": [
  {"name": "device", "aliases": ["sensor"], "type": "string"},
  {"name": "id", "type": "long"},
  {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "value", "type": "double"},
  {"name": "count", "type": "long"},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "received", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "meta", "type": {"type": "record", "name": "Meta", "fields": [
    {"name": "site", "type": "string"}, {"name": "level", "type": "int"},
    {"name": "zone", "type": ["null", "string"], "default": null}]}},
  {"name": "tags", "type": ["null", {"type": "array", "items": "string"}], "default": null}
]}"#;

/// `at` (micros) spread over 6 hours of 3 months, `day` over 400 days, `received` (millis)
/// over 2 years: for the hour, month and year transforms.
fn reading_time(id: i64) -> (i64, i32, i64) {
    const MAY_2024_MICROS: i64 = 1_714_521_600_000_000;
    let at = MAY_2024_MICROS + (id % 6) * 3_600_000_000 + (id % 3) * 31 * 86_400_000_000 + id;
    (at, 19_800 + (id % 400) as i32, at / 1000 + (id % 2) * 365 * 86_400_000)
}

fn reading_v1(id: i64) -> Avro {
    let (at, day, received) = reading_time(id);
    Avro::Record(vec![
        ("id".into(), Avro::Long(id)),
        ("sensor".into(), Avro::String(format!("s{}", id % 5))),
        ("value".into(), Avro::Float(id as f32 / 4.0)),
        ("count".into(), Avro::Int(id as i32 * 3)),
        ("price".into(), Avro::Decimal(apache_avro::Decimal::from((id * 101).to_be_bytes().to_vec()))),
        ("at".into(), Avro::TimestampMicros(at)),
        ("day".into(), Avro::Date(day)),
        ("received".into(), Avro::TimestampMillis(received)),
        ("legacy".into(), Avro::Union(1, Box::new(Avro::String(format!("old{id}"))))),
        (
            "meta".into(),
            Avro::Record(vec![
                ("site".into(), Avro::String(format!("site{}", id % 2))),
                ("level".into(), Avro::Int((id % 4) as i32)),
            ]),
        ),
    ])
}

fn reading_v2(id: i64) -> Avro {
    let (at, day, received) = reading_time(id);
    let tags = if id % 4 == 0 {
        Avro::Union(0, Box::new(Avro::Null))
    } else {
        Avro::Union(1, Box::new(Avro::Array(vec![Avro::String(format!("t{}", id % 7))])))
    };
    Avro::Record(vec![
        ("device".into(), Avro::String(format!("s{}", id % 5))),
        ("id".into(), Avro::Long(id)),
        ("at".into(), Avro::TimestampMicros(at)),
        ("value".into(), Avro::Double(id as f64 / 3.0)),
        ("count".into(), Avro::Long(5_000_000_000 + id)),
        ("price".into(), Avro::Decimal(apache_avro::Decimal::from((10_000_000_000 + id).to_be_bytes().to_vec()))),
        ("day".into(), Avro::Date(day)),
        ("received".into(), Avro::TimestampMillis(received)),
        (
            "meta".into(),
            Avro::Record(vec![
                ("site".into(), Avro::String(format!("site{}", id % 2))),
                ("level".into(), Avro::Int((id % 4) as i32)),
                ("zone".into(), Avro::Union(1, Box::new(Avro::String(format!("z{}", id % 3))))),
            ]),
        ),
        ("tags".into(), tags),
    ])
}

/// Schema evolution of every kind (while the writer runs, from the registry), under the
/// year/month/hour transforms, read alike by every engine; then our optimizer's four
/// operations on that table (compaction across schema versions included) change nothing any
/// engine reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evolved_then_optimized_tables_read_alike_in_every_engine() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let registry = TestRegistry::start();
    let topic = unique("evolve");
    broker.create_topic(&topic, 1);
    let table = format!("{}.readings", unique("ns"));
    let subject = format!("{topic}-value");
    let config = format_pipeline(
        dir,
        &broker.bootstrap(),
        &topic,
        &table,
        "format = \"avro\"\ndrop_removed_fields = true\npartition = [\"year(received)\", \"month(day)\", \"hour(at)\"]",
        &format!("[schema_registry]\nurl = \"{}\"", registry.url),
    );
    let producer = TestProducer::new(&broker.bootstrap(), &topic);
    let v1 = registry.register(&subject, "AVRO", READING_V1);
    for id in 0..120 {
        producer.send(0, "k", &confluent(v1, None, &avro_encode(READING_V1, reading_v1(id))));
    }
    producer.flush();
    let writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(dir).await;
    tables::wait_for_offsets(&catalog, &table, &topic, &BTreeMap::from([(0, 120)]), Duration::from_secs(90)).await;
    let v2 = registry.register(&subject, "AVRO", READING_V2);
    for id in 120..240 {
        producer.send(0, "k", &confluent(v2, None, &avro_encode(READING_V2, reading_v2(id))));
    }
    // An old producer still on v1.
    for id in 240..260 {
        producer.send(0, "k", &confluent(v1, None, &avro_encode(READING_V1, reading_v1(id))));
    }
    producer.flush();
    tables::wait_for_offsets(&catalog, &table, &topic, &BTreeMap::from([(0, 260)]), Duration::from_secs(90)).await;
    assert!(writer.stop(Duration::from_secs(30)).success());

    let filters = [
        "device = 's3'",
        "count > 1000",
        "value >= 20.5",
        "price < 100.00",
        "at >= timestamp'2024-06-01 00:00:00' and at < timestamp'2024-07-01 00:00:00'",
        "hour(at) = 3",
        "day >= date'2024-09-01'",
        "received < timestamp'2025-01-01 00:00:00'",
        "meta.zone = 'z1'",
        "meta.site = 'site0' and id < 100",
        "tags is null",
    ];
    let options = engines::EngineOptions { spark_filters: &filters, ..Default::default() };
    let evolved = engines::engines_report(&catalog, dir, &table, &options).await;
    let columns = &evolved["pyiceberg"]["columns"];
    assert_eq!(
        columns,
        &json!([
            "device",
            "id",
            "at",
            "value",
            "count",
            "price",
            "day",
            "received",
            "meta",
            "tags",
            "kafka_offset",
            "kafka_partition"
        ]),
        "renamed, reordered, dropped and added columns: {evolved:#}"
    );
    let checksum = engines::assert_engines_agree(&evolved, &filters, 260);
    let files_before = tables::data_file_count(&catalog, &table).await;

    // Our optimizer, every operation; an orphan (a crashed writer's file) to remove.
    let location = tables::files_on_disk(dir, &table);
    let some_data_file = location.iter().find(|p| p.extension().is_some_and(|e| e == "parquet")).expect("a data file");
    let orphan = some_data_file.with_file_name("crashed-writer-00000.parquet");
    std::fs::copy(some_data_file, &orphan).expect("orphan");
    let optimizer_config = optimizer::config(dir, None);
    optimizer::run(&optimizer_config, &table, &["compact"]);
    optimizer::run(&optimizer_config, &table, &["rewrite-manifests"]);
    optimizer::run(&optimizer_config, &table, &["expire-snapshots", "--retain-last", "2", "--older-than", "0s"]);
    optimizer::run(&optimizer_config, &table, &["remove-orphans", "--older-than", "0s", "--force"]);
    assert!(!orphan.exists(), "remove-orphans deleted the orphan");
    let files_after = tables::data_file_count(&catalog, &table).await;
    assert!(files_after < files_before, "compaction merged files: {files_before} -> {files_after}");

    let optimized = engines::engines_report(&catalog, dir, &table, &options).await;
    assert_eq!(engines::assert_engines_agree(&optimized, &filters, 260), checksum, "the optimizer changed no value");
    // Expiry kept the newest two (compaction, manifest rewrite) and the writer's tagged state.
    let snapshots = optimized["spark_checks"]["snapshots"].as_array().expect("snapshots");
    let writers: Vec<&serde_json::Value> = snapshots.iter().filter(|s| !s["writer"].is_null()).collect();
    assert_eq!((snapshots.len(), writers.len()), (3, 1), "{optimized:#}");
    assert!(writers[0]["offsets"].as_str().is_some_and(|o| o.contains(&topic)), "{optimized:#}");
}

/// Tables made by Spark (`CREATE TABLE … PARTITIONED BY (hours(ts), bucket(8, id))`, snappy)
/// and by PyIceberg (its own field ids, `month(ts)` + `truncate(4, user)`, gzip) as the
/// writer's targets: the writer keeps their partition specs, honours their codecs, and every
/// engine reads every record exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_created_by_spark_and_by_pyiceberg_take_the_writers_records() {
    const N: i64 = 300;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let namespace = unique("ns");
    let spark_table = format!("{namespace}.spark_made");
    let pyiceberg_table = format!("{namespace}.pyiceberg_made");
    // Spark first: its JdbcCatalog lays out the catalog tables in the new SQLite file.
    engines::spark_sql(
        dir,
        None,
        &spark_table,
        &[
            &format!("CREATE NAMESPACE icefall.{namespace}"),
            &format!(
                "CREATE TABLE icefall.{spark_table} (id bigint NOT NULL, ts timestamp NOT NULL, `user` string, \
                 amount decimal(12, 2), tags array<string>, geo struct<lat: double, lon: double>, \
                 kafka_partition int, kafka_offset bigint) USING iceberg \
                 PARTITIONED BY (hours(ts), bucket(8, id)) \
                 TBLPROPERTIES ('format-version' = '2', 'write.parquet.compression-codec' = 'snappy')"
            ),
        ],
    );
    engines::pyiceberg_create_events_table(dir, &pyiceberg_table);

    let catalog = tables::catalog(dir).await;
    for (table, transforms, codec) in
        [(&spark_table, ["hour", "bucket[8]"], "SNAPPY"), (&pyiceberg_table, ["month", "truncate[4]"], "GZIP")]
    {
        let topic = unique("engine_made");
        broker.create_topic(&topic, 2);
        let producer = TestProducer::new(&broker.bootstrap(), &topic);
        let mut landed = BTreeMap::new();
        producer.send_events(0, N, 2, &mut landed);
        let config = format_pipeline(
            dir,
            &broker.bootstrap(),
            &topic,
            table,
            r#"schema = [
  { name = "id", type = "long", required = true },
  { name = "ts", type = "timestamptz", required = true },
  { name = "user", type = "string" },
  { name = "amount", type = "decimal(12, 2)" },
  { name = "tags", type = "list<string>" },
  { name = "geo", type = "struct<lat: double, lon: double>" },
]"#,
            "",
        );
        let writer = WriterProcess::start(&config, "writer");
        tables::wait_for_offsets(&catalog, table, &topic, &landed, Duration::from_secs(90)).await;
        assert!(writer.stop(Duration::from_secs(30)).success());

        let loaded = catalog.load(&parse_ident(table).expect("ident")).await.expect("load");
        let spec: Vec<String> =
            loaded.metadata.default_partition_spec().fields().iter().map(|f| f.transform.to_string()).collect();
        assert_eq!(spec, transforms, "{table}: the writer kept the table's partition spec");
        assert_eq!(loaded.metadata.partition_specs_iter().count(), 1, "{table}: no new spec");
        let codecs = tables::data_file_codecs(&catalog, table).await;
        assert_eq!(codecs, [codec.to_string()].into(), "{table}: the table's write.parquet.compression-codec");
        tables::assert_offsets_exactly_once(&tables::partition_offsets(&catalog, table).await, &landed);

        let filters = ["ts >= timestamp'2026-11-02 00:00:00'", "id < 50", "`user` = 'user-7'", "geo.lat > 40"];
        let options = engines::EngineOptions { spark_filters: &filters, ..Default::default() };
        let report = engines::engines_report(&catalog, dir, table, &options).await;
        engines::assert_engines_agree(&report, &filters, N);
    }
}
