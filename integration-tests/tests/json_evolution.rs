//! JSON schema evolution while the writer runs. With `evolve = true`: producers add fields at
//! every level mid-run (an old producer goes on without them), an int column gets values past
//! the int range; Spark, PyIceberg, DuckDB and our scan read old and new rows as produced. With a
//! registry: JSON records framed by its JSON Schema serializer evolve the table as Avro's do.

use std::collections::BTreeMap;
use std::time::Duration;

use icefall_integration_tests::broker::Broker;
use icefall_integration_tests::encode::confluent;
use icefall_integration_tests::engines::{self, EngineOptions, pyiceberg_rows};
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::registry::TestRegistry;
use icefall_integration_tests::tables;
use icefall_integration_tests::unique;
use icefall_integration_tests::writer::{WriterProcess, format_pipeline};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
const OLD: i64 = 100;
const ALL: i64 = 300;

/// Past 64 bytes, with `/ ? # %`, spaces and non-ASCII.
fn name(id: i64) -> String {
    format!("https://example.com/a b/ünïcødé?q={id}#frag%20/{}", "x".repeat(40))
}

/// Records `0..OLD`, and every third one after, come from an old producer: the declared
/// columns only. The others bring new fields at the top, in a struct, in a list's structs, nulls
/// at every level, and (every tenth) an `n` past the int range.
fn record(id: i64) -> Value {
    let mut r = json!({"id": id, "n": id, "user": {"name": name(id)}, "items": [{"sku": format!("sku-{id}")}]});
    if id < OLD || id % 3 == 0 {
        return r;
    }
    r["score"] = json!(id as f64 + 0.5);
    r["tags"] = json!([format!("t/{id}?#%"), null]);
    r["geo"] = if id % 5 == 0 {
        Value::Null
    } else {
        json!({"lat": 59.9, "city": if id % 7 == 0 { Value::Null } else { json!("Tromsø") }})
    };
    r["user"]["age"] = json!(id);
    r["items"][0]["qty"] = json!(id % 4);
    if id % 10 == 1 {
        r["n"] = json!(3_000_000_000i64 + id);
    }
    r
}

fn is_new(id: i64) -> bool {
    id >= OLD && id % 3 != 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_adding_fields_mid_run_evolve_the_table_and_every_engine_reads_old_and_new_rows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let topic = unique("evolve");
    broker.create_topic(&topic, 2);
    let table = format!("{}.events", unique("ns"));
    let config = format_pipeline(
        dir,
        &broker.bootstrap(),
        &topic,
        &table,
        r#"evolve = true
partition = ["bucket(4, id)"]
schema = [
  { name = "id", type = "long", required = true },
  { name = "n", type = "int" },
  { name = "user", type = "struct<name: string>" },
  { name = "items", type = "list<struct<sku: string>>" },
]"#,
        "",
    );
    let producer = TestProducer::new(&broker.bootstrap(), &topic);
    let mut sent = BTreeMap::from([(0, 0i64), (1, 0i64)]);
    let send = |sent: &mut BTreeMap<i32, i64>, payload: &[u8], id: i64| {
        let partition = (id % 2) as i32;
        producer.send(partition, &id.to_string(), payload);
        *sent.entry(partition).or_default() += 1;
    };
    for id in 0..OLD {
        send(&mut sent, record(id).to_string().as_bytes(), id);
    }
    producer.flush();
    let writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(dir).await;
    tables::wait_for_offsets(&catalog, &table, &topic, &sent, WAIT).await;

    // Mid-run: the new producer starts, the old one goes on; then a value of a type the new
    // column cannot hold (a dead letter, not a change).
    for id in OLD..ALL {
        send(&mut sent, record(id).to_string().as_bytes(), id);
    }
    send(&mut sent, json!({"id": ALL, "score": "high"}).to_string().as_bytes(), ALL);
    producer.flush();
    tables::wait_for_offsets(&catalog, &table, &topic, &sent, WAIT).await;
    assert!(writer.stop(Duration::from_secs(30)).success());

    // Our view: every id once, the new columns as produced, old rows null in them.
    let report = pyiceberg_rows(dir, &table, "id");
    assert_eq!(report["rows"], ALL);
    let schema: Vec<(String, String)> = report["schema"]
        .as_array()
        .expect("schema")
        .iter()
        .map(|f| (f[1].as_str().unwrap_or_default().to_string(), f[2].as_str().unwrap_or_default().to_string()))
        .collect();
    let ty = |column: &str| schema.iter().find(|(n, _)| n == column).map(|(_, t)| t.clone()).unwrap_or_default();
    assert_eq!(ty("n"), "long", "int widened for values past its range; {schema:?}");
    assert_eq!(ty("score"), "double", "{schema:?}");
    assert!(ty("tags").starts_with("list<string>"), "{schema:?}");
    assert!(ty("geo").contains("lat: optional double") && ty("geo").contains("city: optional string"), "{schema:?}");
    assert!(ty("user").contains("age: optional long"), "{schema:?}");
    assert!(ty("items").contains("qty: optional long"), "{schema:?}");
    let rows = report["data"].as_array().expect("rows");
    for (row, id) in rows.iter().zip(0..) {
        let produced = record(id);
        assert_eq!(row["id"], id);
        assert_eq!(row["n"], produced["n"], "id {id}");
        assert_eq!(row["user"]["name"], name(id), "id {id}");
        if is_new(id) {
            assert_eq!(row["score"], produced["score"], "id {id}");
            assert_eq!(row["tags"], produced["tags"], "id {id}");
            assert_eq!(row["geo"], produced["geo"], "id {id}: null struct, null field, or both values");
            assert_eq!(row["user"]["age"], id, "id {id}");
            assert_eq!(row["items"][0]["qty"], id % 4, "id {id}");
        } else {
            for column in ["score", "tags", "geo"] {
                assert!(row[column].is_null(), "id {id}: {column} of an old row is null: {row}");
            }
            assert!(row["user"]["age"].is_null() && row["items"][0]["qty"].is_null(), "id {id}: {row}");
        }
    }
    let letters = tables::dead_letter_offsets(&catalog, &table).await;
    assert_eq!(letters.len(), 1, "only the string score is a dead letter");

    // Every engine, with filters on the new columns counted against the values produced.
    let new_ids = || (0..ALL).filter(|id| is_new(*id));
    let expected = [
        ("score is null", (0..ALL).filter(|id| !is_new(*id)).count() as i64),
        ("score > 200", new_ids().filter(|id| *id as f64 + 0.5 > 200.0).count() as i64),
        ("n > 2147483647", new_ids().filter(|id| id % 10 == 1).count() as i64),
    ];
    let filters: Vec<&str> = expected.iter().map(|(f, _)| *f).collect();
    let options = EngineOptions { spark_filters: &filters, count_filters: &filters, ..Default::default() };
    let report = engines::engines_report(&catalog, dir, &table, &options).await;
    engines::assert_engines_agree(&report, &filters, ALL);
    engines::assert_filtered_counts(&report, &expected);
}

const JSON_SCHEMA_V1: &str = r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["id"],
  "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}"#;
const JSON_SCHEMA_V2: &str = r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["id"],
  "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "score": {"type": ["null", "number"]},
    "geo": {"type": "object", "properties": {"lat": {"type": "number"}, "city": {"type": ["null", "string"]}}}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_framed_json_schema_records_evolve_the_table_like_avro() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let topic = unique("jsonschema");
    broker.create_topic(&topic, 1);
    let table = format!("{}.events", unique("ns"));
    let registry = TestRegistry::start();
    let subject = format!("{topic}-value");
    let v1 = registry.register(&subject, "JSON", JSON_SCHEMA_V1);
    let config = format_pipeline(
        dir,
        &broker.bootstrap(),
        &topic,
        &table,
        r#"schema = [{ name = "id", type = "long", required = true }, { name = "name", type = "string" }]"#,
        &format!("[schema_registry]\nurl = \"{}\"\ntimeout = \"5s\"", registry.url),
    );
    let producer = TestProducer::new(&broker.bootstrap(), &topic);
    for id in 0..20 {
        producer.send(0, "k", &confluent(v1, None, json!({"id": id, "name": name(id)}).to_string().as_bytes()));
    }
    producer.flush();
    let writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(dir).await;
    tables::wait_for_offsets(&catalog, &table, &topic, &BTreeMap::from([(0, 20)]), WAIT).await;

    // The producer moves to v2 mid-run; an old one goes on with v1, another sends unframed JSON.
    let v2 = registry.register(&subject, "JSON", JSON_SCHEMA_V2);
    let geo = |id: i64| if id % 3 == 0 { Value::Null } else { json!({"lat": id as f64 / 8.0, "city": "Tromsø/#?%"}) };
    for id in 20..40 {
        let record = json!({"id": id, "name": name(id), "score": id as f64 * 1.5, "geo": geo(id)});
        producer.send(0, "k", &confluent(v2, None, record.to_string().as_bytes()));
    }
    producer.send(0, "k", &confluent(v1, None, json!({"id": 40, "name": name(40)}).to_string().as_bytes()));
    producer.send(0, "k", json!({"id": 41, "name": name(41), "score": 0.25}).to_string().as_bytes());
    producer.flush();
    tables::wait_for_offsets(&catalog, &table, &topic, &BTreeMap::from([(0, 42)]), WAIT).await;
    assert!(writer.stop(Duration::from_secs(30)).success());

    let report = pyiceberg_rows(dir, &table, "id");
    assert_eq!(report["rows"], 42);
    let rows = report["data"].as_array().expect("rows");
    for (row, id) in rows.iter().zip(0..) {
        assert_eq!((&row["id"], &row["name"]), (&json!(id), &json!(name(id))));
        let (score, geo) = match id {
            20..=39 => (json!(id as f64 * 1.5), geo(id)),
            41 => (json!(0.25), Value::Null), // unframed: decoded by name like the rest
            _ => (Value::Null, Value::Null),
        };
        assert_eq!((&row["score"], &row["geo"]), (&score, &geo), "id {id}: {row}");
    }
    assert!(tables::dead_letter_offsets(&catalog, &table).await.is_empty());
}
