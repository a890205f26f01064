//! Protobuf and Avro through the real broker and writer, read back with PyIceberg: value
//! round trips, dead letters per format, and schema evolution while the writer runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use apache_avro::types::Value as Avro;
use icefall_integration_tests::broker::Broker;
use icefall_integration_tests::encode::{avro_encode, confluent, proto_descriptor_set, proto_encode, proto_message};
use icefall_integration_tests::engines::pyiceberg_rows;
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::registry::TestRegistry;
use icefall_integration_tests::tables;
use icefall_integration_tests::unique;
use icefall_integration_tests::writer::{WriterProcess, format_pipeline};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

struct World {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    broker: Broker,
    topic: String,
    table: String,
}

fn world(name: &str) -> World {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let broker = Broker::start();
    let topic = unique(name);
    broker.create_topic(&topic, 1);
    let table = format!("{}.events", unique("ns"));
    World { _tmp: tmp, dir, broker, topic, table }
}

/// The row of PyIceberg's dump whose `column` equals `value`.
fn row<'a>(report: &'a Value, column: &str, value: &Value) -> &'a Value {
    report["data"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| &r[column] == value))
        .unwrap_or_else(|| panic!("no row with {column} = {value}"))
}

/// `(field id, type)` of a top-level column in PyIceberg's view of the schema.
fn column(report: &Value, name: &str) -> (i64, String) {
    let fields = report["schema"].as_array().expect("schema");
    let field = fields.iter().find(|f| f[1] == name).unwrap_or_else(|| panic!("no column {name} in {fields:?}"));
    (field[0].as_i64().expect("id"), field[2].as_str().expect("type").to_string())
}

/// `kind: message` of each dead letter, in offset order.
async fn dead_letter_reasons(dir: &std::path::Path, table: &str) -> Vec<String> {
    let report = pyiceberg_rows(dir, &format!("{table}_dlq"), "offset");
    let rows = report["data"].as_array().expect("rows");
    rows.iter()
        .map(|r| {
            format!("{}: {}", r["error_kind"].as_str().unwrap_or_default(), r["error"].as_str().unwrap_or_default())
        })
        .collect()
}

const EVENT_PROTO: &str = r#"
syntax = "proto3";
package acme;
import "google/protobuf/timestamp.proto";
enum Kind { KIND_UNSPECIFIED = 0; CLICK = 1; VIEW = 2; }
message Item { string sku = 1; int32 qty = 2; }
message Event {
  int64 id = 1;
  string name = 2;
  optional int32 score = 3;
  Kind kind = 4;
  Item item = 5;
  repeated string tags = 6;
  map<int32, string> labels = 7;
  google.protobuf.Timestamp at = 8;
  oneof choice { string text = 9; int64 number = 10; }
  bytes blob = 11;
  int64 sent_ms = 12;
  double ratio = 13;
}
"#;

fn event(id: i64) -> Value {
    let mut e = json!({
        "id": id.to_string(),
        "name": format!("event-{id}"),
        "kind": if id % 10 == 9 { json!(7) } else if id % 2 == 0 { json!("CLICK") } else { json!("VIEW") },
        "item": {"sku": format!("sku-{id}"), "qty": id as i32 % 5},
        "tags": [format!("t{id}"), "all"],
        "labels": {(id % 3 - 1).to_string(): format!("label-{id}")},
        "at": format!("2024-03-01T10:00:{:02}.250Z", id % 60),
        "blob": "AAEC",
        "sentMs": (1_700_000_000_000i64 + id).to_string(),
        "ratio": id as f64 / 4.0,
    });
    if id % 2 == 0 {
        e["score"] = json!(id * 10);
        e["text"] = json!(format!("text-{id}"));
    } else {
        e["number"] = json!(id.to_string());
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_records_round_trip_with_nested_types_and_bad_records_dead_lettered() {
    let w = world("proto");
    std::fs::write(w.dir.join("event.proto"), EVENT_PROTO).expect("write proto");
    let config = format_pipeline(
        &w.dir,
        &w.broker.bootstrap(),
        &w.topic,
        &w.table,
        r#"format = "protobuf"

[pipelines.protobuf]
proto_files = ["event.proto"]
message = "acme.Event"
timestamp_fields = ["sent_ms"]
timestamp_unit = "millis""#,
        "",
    );
    let message = proto_message(EVENT_PROTO, "acme.Event");
    let producer = TestProducer::new(&w.broker.bootstrap(), &w.topic);
    for id in 0..50 {
        producer.send(0, &id.to_string(), &proto_encode(&message, &event(id)));
    }
    producer.send(0, "bad-1", &[0xff, 0xff, 0xff]); // a varint that never ends
    producer.send(0, "bad-2", &[0x0a, 0x05, b'a', b'b']); // a string 3 bytes short
    producer.flush();

    let writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(&w.dir).await;
    tables::wait_for_offsets(&catalog, &w.table, &w.topic, &BTreeMap::from([(0, 52)]), WAIT).await;
    assert!(writer.stop(Duration::from_secs(30)).success());

    let report = pyiceberg_rows(&w.dir, &w.table, "id");
    assert_eq!(report["rows"], 50);
    assert_eq!(column(&report, "id").1, "long");
    assert_eq!(column(&report, "at").1, "timestamptz");
    assert_eq!(column(&report, "sent_ms").1, "timestamptz");
    assert_eq!(column(&report, "kind").1, "string");
    assert!(column(&report, "labels").1.starts_with("map<int, string>"), "{}", column(&report, "labels").1);
    let even = row(&report, "id", &json!(4));
    assert_eq!(even["name"], "event-4");
    assert_eq!(even["score"], 40);
    assert_eq!(even["kind"], "CLICK");
    assert_eq!(even["item"], json!({"sku": "sku-4", "qty": 4}));
    assert_eq!(even["tags"], json!(["t4", "all"]));
    assert_eq!(even["labels"], json!([[0, "label-4"]]));
    assert_eq!(even["at"], "2024-03-01 10:00:04.250000+00:00");
    assert_eq!(even["text"], "text-4");
    assert_eq!(even["number"], Value::Null);
    assert_eq!(even["blob"], "000102");
    assert_eq!(even["sent_ms"], "2023-11-14 22:13:20.004000+00:00");
    assert_eq!(even["ratio"], 1.0);
    assert_eq!(even["kafka_offset"], 4);
    let odd = row(&report, "id", &json!(9));
    assert_eq!(odd["score"], Value::Null, "an absent optional field is null");
    assert_eq!(odd["kind"], "7", "an unknown enum number is kept as text");
    assert_eq!(odd["labels"], json!([[-1, "label-9"]]));
    assert_eq!(odd["text"], Value::Null);
    assert_eq!(odd["number"], 9);
    // Every record exactly once, at its offset.
    let offsets: Vec<i64> =
        report["data"].as_array().expect("rows").iter().map(|r| r["kafka_offset"].as_i64().expect("offset")).collect();
    assert_eq!(offsets, (0..50).collect::<Vec<_>>());

    let reasons = dead_letter_reasons(&w.dir, &w.table).await;
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.iter().all(|r| r.starts_with("bad_protobuf")), "{reasons:?}");
}

const ORDER_V1: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
  {"name": "id", "type": "long"},
  {"name": "name", "type": "string"},
  {"name": "qty", "type": "int"},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
  {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "attrs", "type": {"type": "map", "values": "long"}},
  {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
  {"name": "gone", "type": "string"}
]}"#;

/// v2: `name` renamed (alias), `qty` widened, `price` precision up, moved `id`, added `tags`
/// and a nested `address`, dropped `gone`.
const ORDER_V2: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
  {"name": "full_name", "aliases": ["name"], "type": "string"},
  {"name": "id", "type": "long"},
  {"name": "qty", "type": "long"},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
  {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "attrs", "type": {"type": "map", "values": "long"}},
  {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
  {"name": "tags", "type": ["null", {"type": "array", "items": "string"}], "default": null},
  {"name": "address", "type": ["null", {"type": "record", "name": "Address", "fields": [
      {"name": "city", "type": "string"}, {"name": "zip", "type": "int"}]}], "default": null}
]}"#;

/// v3: `qty` becomes a string — incompatible.
const ORDER_V3: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
  {"name": "full_name", "type": "string"},
  {"name": "id", "type": "long"},
  {"name": "qty", "type": "string"}
]}"#;

fn cents(n: i64) -> Avro {
    Avro::Decimal(apache_avro::Decimal::from(n.to_be_bytes().to_vec()))
}

fn order_v1(id: i64) -> Avro {
    Avro::Record(vec![
        ("id".into(), Avro::Long(id)),
        ("name".into(), Avro::String(format!("n{id}"))),
        ("qty".into(), Avro::Int(id as i32)),
        ("price".into(), cents(id * 100 + 5)),
        ("at".into(), Avro::TimestampMillis(1_700_000_000_000 + id)),
        ("attrs".into(), Avro::Map([("k".to_string(), Avro::Long(id))].into())),
        ("status".into(), Avro::Enum((id % 3) as u32, ["NEW", "PAID", "SHIPPED"][(id % 3) as usize].into())),
        ("day".into(), Avro::Date(19_800 + id as i32)),
        ("ref".into(), Avro::Uuid(uuid::Uuid::from_u128(id as u128))),
        ("gone".into(), Avro::String(format!("g{id}"))),
    ])
}

fn order_v2(id: i64) -> Avro {
    Avro::Record(vec![
        ("full_name".into(), Avro::String(format!("n{id}"))),
        ("id".into(), Avro::Long(id)),
        ("qty".into(), Avro::Long(5_000_000_000 + id)),
        ("price".into(), cents(id * 100 + 5)),
        ("at".into(), Avro::TimestampMillis(1_700_000_000_000 + id)),
        ("attrs".into(), Avro::Map(Default::default())),
        ("status".into(), Avro::Enum((id % 3) as u32, ["NEW", "PAID", "SHIPPED"][(id % 3) as usize].into())),
        ("day".into(), Avro::Date(19_800 + id as i32)),
        ("ref".into(), Avro::Uuid(uuid::Uuid::from_u128(id as u128))),
        ("tags".into(), Avro::Union(1, Box::new(Avro::Array(vec![Avro::String(format!("t{id}"))])))),
        (
            "address".into(),
            Avro::Union(
                1,
                Box::new(Avro::Record(vec![
                    ("city".into(), Avro::String("Oslo".into())),
                    ("zip".into(), Avro::Int(id as i32)),
                ])),
            ),
        ),
    ])
}

fn wait_for_exit(writer: &mut WriterProcess, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while writer.is_running() {
        assert!(Instant::now() < deadline, "the writer kept running; log: {}", writer.log.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_with_a_registry_evolves_the_table_while_the_writer_runs() {
    let w = world("avro");
    let registry = TestRegistry::start();
    let subject = format!("{}-value", w.topic);
    let v1 = registry.register(&subject, "AVRO", ORDER_V1);
    let config = format_pipeline(
        &w.dir,
        &w.broker.bootstrap(),
        &w.topic,
        &w.table,
        "format = \"avro\"",
        // Schema id 999 below is never registered: dead-letter it rather than wait for it.
        &format!("[schema_registry]\nurl = \"{}\"\ntimeout = \"5s\"\nmissing_schema = \"dead_letter\"", registry.url),
    );
    let producer = TestProducer::new(&w.broker.bootstrap(), &w.topic);
    for id in 0..20 {
        producer.send(0, "k", &confluent(v1, None, &avro_encode(ORDER_V1, order_v1(id))));
    }
    producer.flush();
    let mut writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(&w.dir).await;
    tables::wait_for_offsets(&catalog, &w.table, &w.topic, &BTreeMap::from([(0, 20)]), WAIT).await;
    let before = pyiceberg_rows(&w.dir, &w.table, "id");
    let (name_id, _) = column(&before, "name");
    assert_eq!(column(&before, "qty").1, "int");

    // The producer moves to v2 while the writer runs; an old producer keeps sending v1.
    let v2 = registry.register(&subject, "AVRO", ORDER_V2);
    for id in 20..40 {
        producer.send(0, "k", &confluent(v2, None, &avro_encode(ORDER_V2, order_v2(id))));
    }
    producer.send(0, "k", &confluent(v1, None, &avro_encode(ORDER_V1, order_v1(40))));
    producer.send(0, "unknown-id", &confluent(999, None, &avro_encode(ORDER_V1, order_v1(41)))); // offset 41
    producer.send(0, "unframed", &avro_encode(ORDER_V1, order_v1(42))); // offset 42
    producer.send(0, "truncated", &confluent(v2, None, &avro_encode(ORDER_V2, order_v2(43))[..6])); // offset 43
    producer.flush();
    tables::wait_for_offsets(&catalog, &w.table, &w.topic, &BTreeMap::from([(0, 44)]), WAIT).await;

    let after = pyiceberg_rows(&w.dir, &w.table, "id");
    assert_eq!(after["rows"], 41);
    let names: Vec<&str> =
        after["schema"].as_array().expect("schema").iter().map(|f| f[1].as_str().unwrap_or("")).collect();
    let expected = [
        "full_name",
        "id",
        "qty",
        "price",
        "at",
        "attrs",
        "status",
        "day",
        "ref",
        "tags",
        "address",
        "gone",
        "kafka_offset",
        "kafka_partition",
    ];
    assert_eq!(names, expected);
    assert_eq!(column(&after, "full_name").0, name_id, "a rename keeps the field id");
    assert_eq!(column(&after, "qty").1, "long");
    assert_eq!(column(&after, "price").1, "decimal(12, 2)");
    let old = row(&after, "id", &json!(3));
    assert_eq!(old["full_name"], "n3");
    assert_eq!(old["qty"], 3);
    assert_eq!(old["price"], "3.05");
    assert_eq!(old["gone"], "g3");
    assert_eq!(old["tags"], Value::Null);
    assert_eq!(old["attrs"], json!([["k", 3]]));
    assert_eq!(old["status"], "NEW");
    assert_eq!(old["day"], "2024-03-21");
    assert_eq!(old["ref"], "00000000-0000-0000-0000-000000000003");
    let new = row(&after, "id", &json!(25));
    assert_eq!(new["full_name"], "n25");
    assert_eq!(new["qty"], 5_000_000_025i64);
    assert_eq!(new["price"], "25.05");
    assert_eq!(new["at"], "2023-11-14 22:13:20.025000+00:00");
    assert_eq!(new["tags"], json!(["t25"]));
    assert_eq!(new["address"], json!({"city": "Oslo", "zip": 25}));
    assert_eq!(new["gone"], Value::Null, "a field removed at the source keeps its column, null");
    assert_eq!(new["status"], "PAID");
    let late_v1 = row(&after, "id", &json!(40));
    assert_eq!((late_v1["full_name"].as_str(), late_v1["gone"].as_str()), (Some("n40"), Some("g40")));
    let reasons = dead_letter_reasons(&w.dir, &w.table).await;
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].starts_with("unknown_schema: schema id 999"), "{reasons:?}");
    assert!(reasons[1].starts_with("bad_framing"), "{reasons:?}");
    assert!(reasons[2].starts_with("bad_avro"), "{reasons:?}");

    // An incompatible change stops the pipeline before any record of the new shape lands.
    let v3 = registry.register(&subject, "AVRO", ORDER_V3);
    let v3_record = Avro::Record(vec![
        ("full_name".into(), Avro::String("x".into())),
        ("id".into(), Avro::Long(99)),
        ("qty".into(), Avro::String("many".into())),
    ]);
    producer.send(0, "k", &confluent(v3, None, &avro_encode(ORDER_V3, v3_record)));
    producer.flush();
    wait_for_exit(&mut writer, Duration::from_secs(60));
    let log = std::fs::read_to_string(&writer.log).expect("log");
    assert!(log.contains("field qty"), "the error names the field; log: {}", writer.log.display());
    let offsets = tables::offsets(&catalog, &w.table).await;
    assert_eq!(offsets[&w.topic][&0], 44, "the v3 record is neither committed nor skipped");
    assert_eq!(pyiceberg_rows(&w.dir, &w.table, "id")["rows"], 41);
}

const USER_V1: &str = r#"syntax = "proto3"; package people;
message User { int64 id = 1; string name = 2; int32 visits = 3; string gone = 4; }"#;

/// v2: field 2 renamed, field 3 widened, fields reordered, nested message and list added,
/// field 4 removed.
const USER_V2: &str = r#"syntax = "proto3"; package people;
message User {
  string display_name = 2;
  int64 id = 1;
  int64 visits = 3;
  message Address { string city = 1; }
  Address address = 5;
  repeated string roles = 6;
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_with_a_registry_follows_renames_by_field_number() {
    let w = world("protoreg");
    let registry = TestRegistry::start_with_basic_auth("icefall", "s3cret");
    let subject = format!("{}-value", w.topic);
    let v1 = registry.register(&subject, "PROTOBUF", USER_V1);
    let config = format_pipeline(
        &w.dir,
        &w.broker.bootstrap(),
        &w.topic,
        &w.table,
        "format = \"protobuf\"\n\n[pipelines.protobuf]\nmessage = \"people.User\"",
        &format!("[schema_registry]\nurl = \"{}\"\nusername = \"icefall\"\npassword = \"s3cret\"", registry.url),
    );
    let (m1, m2) = (proto_message(USER_V1, "people.User"), proto_message(USER_V2, "people.User"));
    let producer = TestProducer::new(&w.broker.bootstrap(), &w.topic);
    for id in 0..10 {
        let body =
            proto_encode(&m1, &json!({"id": id.to_string(), "name": format!("u{id}"), "visits": id, "gone": "g"}));
        producer.send(0, "k", &confluent(v1, Some(&[0]), &body));
    }
    producer.flush();
    let writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(&w.dir).await;
    tables::wait_for_offsets(&catalog, &w.table, &w.topic, &BTreeMap::from([(0, 10)]), WAIT).await;
    let name_id = column(&pyiceberg_rows(&w.dir, &w.table, "id"), "name").0;

    let v2 = registry.register(&subject, "PROTOBUF", USER_V2);
    for id in 10..20 {
        let body = proto_encode(
            &m2,
            &json!({"id": id.to_string(), "displayName": format!("u{id}"), "visits": "6000000000",
                    "address": {"city": "Bergen"}, "roles": ["admin"]}),
        );
        producer.send(0, "k", &confluent(v2, Some(&[0]), &body));
    }
    producer.flush();
    tables::wait_for_offsets(&catalog, &w.table, &w.topic, &BTreeMap::from([(0, 20)]), WAIT).await;
    assert!(writer.stop(Duration::from_secs(30)).success());

    let report = pyiceberg_rows(&w.dir, &w.table, "id");
    assert_eq!(report["rows"], 20);
    assert_eq!(column(&report, "display_name").0, name_id, "same field number, same column");
    assert_eq!(column(&report, "visits").1, "long");
    let old = row(&report, "id", &json!(3));
    assert_eq!(old["display_name"], "u3");
    assert_eq!(old["visits"], 3);
    assert_eq!(old["gone"], "g");
    assert_eq!(old["address"], Value::Null);
    let new = row(&report, "id", &json!(15));
    assert_eq!(new["display_name"], "u15");
    assert_eq!(new["visits"], 6_000_000_000i64);
    assert_eq!(new["address"], json!({"city": "Bergen"}));
    assert_eq!(new["roles"], json!(["admin"]));
    assert_eq!(new["gone"], Value::Null);
}

const SENSOR_V1: &str = r#"syntax = "proto3"; package iot;
message Reading { string sensor = 1; float value = 2; int64 at_ms = 3; }"#;

/// v2 after a deploy: `value` renamed and widened to double, `unit` added.
const SENSOR_V2: &str = r#"syntax = "proto3"; package iot;
message Reading { string sensor = 1; double reading = 2; int64 at_ms = 3; string unit = 4; }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_descriptor_set_after_a_restart_evolves_the_table() {
    let w = world("desc");
    let desc = w.dir.join("readings.desc");
    std::fs::write(&desc, proto_descriptor_set(SENSOR_V1)).expect("descriptor set");
    let config = format_pipeline(
        &w.dir,
        &w.broker.bootstrap(),
        &w.topic,
        &w.table,
        "format = \"protobuf\"\n\n[pipelines.protobuf]\ndescriptor_set = \"readings.desc\"\nmessage = \"iot.Reading\"\ntimestamp_fields = [\"at_ms\"]",
        "",
    );
    let producer = TestProducer::new(&w.broker.bootstrap(), &w.topic);
    let m1 = proto_message(SENSOR_V1, "iot.Reading");
    for i in 0..5 {
        producer.send(
            0,
            "k",
            &proto_encode(&m1, &json!({"sensor": format!("s{i}"), "value": 1.5, "atMs": "1700000000000"})),
        );
    }
    producer.flush();
    let catalog = tables::catalog(&w.dir).await;
    let writer = WriterProcess::start(&config, "writer-v1");
    tables::wait_for_offsets(&catalog, &w.table, &w.topic, &BTreeMap::from([(0, 5)]), WAIT).await;
    assert!(writer.stop(Duration::from_secs(30)).success());
    let value_id = column(&pyiceberg_rows(&w.dir, &w.table, "sensor"), "value").0;

    // Deploy v2: new descriptor, restart.
    std::fs::write(&desc, proto_descriptor_set(SENSOR_V2)).expect("descriptor set");
    let m2 = proto_message(SENSOR_V2, "iot.Reading");
    for i in 5..10 {
        let reading = json!({"sensor": format!("s{i}"), "reading": 0.1, "atMs": "1700000000000", "unit": "C"});
        producer.send(0, "k", &proto_encode(&m2, &reading));
    }
    producer.flush();
    let writer = WriterProcess::start(&config, "writer-v2");
    tables::wait_for_offsets(&catalog, &w.table, &w.topic, &BTreeMap::from([(0, 10)]), WAIT).await;
    assert!(writer.stop(Duration::from_secs(30)).success());

    let report = pyiceberg_rows(&w.dir, &w.table, "sensor");
    assert_eq!(report["rows"], 10);
    assert_eq!(column(&report, "reading"), (value_id, "double".to_string()));
    assert_eq!(column(&report, "at_ms").1, "timestamptz");
    let old = row(&report, "sensor", &json!("s1"));
    assert_eq!((old["reading"].as_f64(), &old["unit"]), (Some(1.5), &Value::Null));
    let new = row(&report, "sensor", &json!("s7"));
    assert_eq!((new["reading"].as_f64(), new["unit"].as_str()), (Some(0.1), Some("C")));
    assert_eq!(new["at_ms"], "2023-11-14 22:13:20+00:00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_round_trip_with_nested_types() {
    let w = world("json");
    let config = format_pipeline(
        &w.dir,
        &w.broker.bootstrap(),
        &w.topic,
        &w.table,
        r#"schema = [
  { name = "id", type = "long", required = true },
  { name = "ts", type = "timestamptz" },
  { name = "amount", type = "decimal(10, 2)" },
  { name = "day", type = "date" },
  { name = "flag", type = "boolean" },
  { name = "blob", type = "binary" },
  { name = "tags", type = "list<string>" },
  { name = "counts", type = "map<int, string>" },
  { name = "geo", type = "struct<lat: double, city: string>" },
]"#,
        "",
    );
    let producer = TestProducer::new(&w.broker.bootstrap(), &w.topic);
    for id in 0..20 {
        let record = json!({
            "id": id, "ts": format!("2024-05-01T12:00:{:02}.5+02:00", id), "amount": format!("{id}.25"),
            "day": "2024-05-01", "flag": id % 2 == 0, "blob": "AAEC", "tags": [format!("t{id}")],
            "counts": {(id - 10).to_string(): format!("c{id}")}, "geo": {"lat": 59.5, "city": "Oslo"}
        });
        producer.send(0, "k", record.to_string().as_bytes());
    }
    producer.send(0, "bad", br#"{"id": "seven"}"#);
    producer.flush();
    let writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(&w.dir).await;
    tables::wait_for_offsets(&catalog, &w.table, &w.topic, &BTreeMap::from([(0, 21)]), WAIT).await;
    assert!(writer.stop(Duration::from_secs(30)).success());

    let report = pyiceberg_rows(&w.dir, &w.table, "id");
    assert_eq!(report["rows"], 20);
    let r = row(&report, "id", &json!(3));
    assert_eq!(r["ts"], "2024-05-01 10:00:03.500000+00:00", "the offset is converted to UTC");
    assert_eq!(r["amount"], "3.25");
    assert_eq!(r["day"], "2024-05-01");
    assert_eq!(r["flag"], false);
    assert_eq!(r["blob"], "000102");
    assert_eq!(r["tags"], json!(["t3"]));
    assert_eq!(r["counts"], json!([[-7, "c3"]]));
    assert_eq!(r["geo"], json!({"lat": 59.5, "city": "Oslo"}));
    assert_eq!(r["kafka_offset"], 3);
    let reasons = dead_letter_reasons(&w.dir, &w.table).await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].starts_with("wrong_type: id: expected an integer"), "{reasons:?}");
}
