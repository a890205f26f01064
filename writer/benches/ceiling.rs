//! The in-process ceiling of the record path on one core: decode → Arrow → Parquet (zstd,
//! through the same `TableFiles` writers the pipeline uses), for JSON, Protobuf and Avro
//! versions of one reference event (20 fields: ids, timestamps, small strings, numbers, a
//! boolean, a nested struct). No Kafka, no commit: what a writer can do at best. Reports
//! records/s and MB/s of input, and the share of time spent decoding, in one run.
//!
//! `cargo bench --workspace --bench ceiling` (release; numbers in docs/benchmarks.md).

use std::time::{Duration, Instant};

use apache_avro::types::Value as Avro;
use icefall_schemas::avro::AvroSchema;
use icefall_schemas::declare::FieldDecl;
use icefall_schemas::decode::{BinaryDecoder, Decoder, SourceSchema};
use icefall_schemas::evolve::{EvolveOptions, evolve};
use icefall_schemas::json::{EpochUnit, JsonDecoder, JsonOptions};
use icefall_schemas::proto::{ProtoOptions, ProtoSchema};
use icefall_table::create::TableLayout;
use icefall_table::files::TableFiles;
use icefall_table::{Catalog, CatalogConfig};
use prost::Message;

const ROWS: usize = 300_000;
const BATCH: usize = 4096;

const FIELDS: &[(&str, &str)] = &[
    ("event_id", "long"),
    ("user_id", "long"),
    ("session_id", "string"),
    ("event_time", "timestamptz"),
    ("sent_time", "timestamptz"),
    ("event_type", "string"),
    ("page", "string"),
    ("referrer", "string"),
    ("country", "string"),
    ("device", "string"),
    ("os", "string"),
    ("browser", "string"),
    ("amount", "double"),
    ("quantity", "int"),
    ("discount", "float"),
    ("is_new_user", "boolean"),
    ("app_version", "string"),
    ("campaign", "string"),
    ("score", "long"),
    ("geo", "struct<lat: double, lon: double, city: string>"),
];

const PROTO: &str = r#"syntax = "proto3"; package bench;
message Geo { double lat = 1; double lon = 2; string city = 3; }
message Event {
  int64 event_id = 1; int64 user_id = 2; string session_id = 3; int64 event_time = 4; int64 sent_time = 5;
  string event_type = 6; string page = 7; string referrer = 8; string country = 9; string device = 10;
  string os = 11; string browser = 12; double amount = 13; int32 quantity = 14; float discount = 15;
  bool is_new_user = 16; string app_version = 17; string campaign = 18; int64 score = 19; Geo geo = 20;
}"#;

const AVSC: &str = r#"{"type": "record", "name": "Event", "fields": [
  {"name": "event_id", "type": "long"}, {"name": "user_id", "type": "long"}, {"name": "session_id", "type": "string"},
  {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "sent_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "event_type", "type": "string"}, {"name": "page", "type": "string"}, {"name": "referrer", "type": "string"},
  {"name": "country", "type": "string"}, {"name": "device", "type": "string"}, {"name": "os", "type": "string"},
  {"name": "browser", "type": "string"}, {"name": "amount", "type": "double"}, {"name": "quantity", "type": "int"},
  {"name": "discount", "type": "float"}, {"name": "is_new_user", "type": "boolean"},
  {"name": "app_version", "type": "string"}, {"name": "campaign", "type": "string"}, {"name": "score", "type": "long"},
  {"name": "geo", "type": {"type": "record", "name": "Geo", "fields": [
     {"name": "lat", "type": "double"}, {"name": "lon", "type": "double"}, {"name": "city", "type": "string"}]}}
]}"#;

/// The reference event `i` as JSON (Protobuf/Avro carry the same values).
fn event(i: usize) -> serde_json::Value {
    let pick = |options: &[&str]| options[i % options.len()].to_string();
    let micros = 1_700_000_000_000_000i64 + i as i64 * 1_000;
    serde_json::json!({
        "event_id": i, "user_id": 10_000 + i % 5_000, "session_id": format!("s-{:08x}", i / 7),
        "event_time": micros, "sent_time": micros + 250,
        "event_type": pick(&["page_view", "click", "add_to_cart", "purchase"]),
        "page": format!("/products/{}", i % 997), "referrer": pick(&["https://www.example.com/", "", "https://news.example.org/a"]),
        "country": pick(&["NO", "SE", "DE", "US", "BR"]), "device": pick(&["mobile", "desktop", "tablet"]),
        "os": pick(&["android", "ios", "linux", "windows"]), "browser": pick(&["chrome", "firefox", "safari"]),
        "amount": (i % 10_000) as f64 / 100.0, "quantity": (i % 5) as i32, "discount": 0.1,
        "is_new_user": i.is_multiple_of(11), "app_version": "4.12.0", "campaign": pick(&["spring", "none", "retarget"]),
        "score": (i * 31) % 1000, "geo": {"lat": 59.91, "lon": 10.75, "city": pick(&["Oslo", "Bergen"])}
    })
}

fn compile_proto() -> prost_reflect::MessageDescriptor {
    struct One(protox::file::File);
    impl protox::file::FileResolver for One {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            if name == self.0.name() { Ok(self.0.clone()) } else { Err(protox::Error::file_not_found(name)) }
        }
    }
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(One(protox::file::File::from_source("bench.proto", PROTO).expect("parse")));
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.open_file("bench.proto").expect("compile");
    compiler.descriptor_pool().get_message_by_name("bench.Event").expect("message")
}

fn avro_value(e: &serde_json::Value) -> Avro {
    let s = |k: &str| Avro::String(e[k].as_str().unwrap_or_default().to_string());
    let l = |k: &str| Avro::Long(e[k].as_i64().unwrap_or_default());
    let d = |k: &str| Avro::Double(e[k].as_f64().unwrap_or_default());
    Avro::Record(vec![
        ("event_id".into(), l("event_id")),
        ("user_id".into(), l("user_id")),
        ("session_id".into(), s("session_id")),
        ("event_time".into(), Avro::TimestampMicros(e["event_time"].as_i64().unwrap_or_default())),
        ("sent_time".into(), Avro::TimestampMicros(e["sent_time"].as_i64().unwrap_or_default())),
        ("event_type".into(), s("event_type")),
        ("page".into(), s("page")),
        ("referrer".into(), s("referrer")),
        ("country".into(), s("country")),
        ("device".into(), s("device")),
        ("os".into(), s("os")),
        ("browser".into(), s("browser")),
        ("amount".into(), d("amount")),
        ("quantity".into(), Avro::Int(e["quantity"].as_i64().unwrap_or_default() as i32)),
        ("discount".into(), Avro::Float(0.1)),
        ("is_new_user".into(), Avro::Boolean(e["is_new_user"].as_bool().unwrap_or_default())),
        ("app_version".into(), s("app_version")),
        ("campaign".into(), s("campaign")),
        ("score".into(), l("score")),
        (
            "geo".into(),
            Avro::Record(vec![
                ("lat".into(), Avro::Double(59.91)),
                ("lon".into(), Avro::Double(10.75)),
                ("city".into(), Avro::String(e["geo"]["city"].as_str().unwrap_or_default().to_string())),
            ]),
        ),
    ])
}

struct Outcome {
    total: Duration,
    decode: Duration,
    bytes: usize,
    files: usize,
    file_bytes: u64,
}

/// Decodes and writes every payload on the current thread; returns the timings.
async fn run(decoder: &Decoder, files: &TableFiles, payloads: &[Vec<u8>], prefix: &str) -> Outcome {
    let started = Instant::now();
    let mut decode = Duration::ZERO;
    let mut writer = files.open(prefix.to_string()).expect("open files");
    for chunk in payloads.chunks(BATCH) {
        let t = Instant::now();
        let decoded = decoder.decode(chunk.iter().map(|p| Some(p.as_slice()))).expect("decodes");
        decode += t.elapsed();
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors.first());
        writer.write(decoded.batch).await.expect("writes");
    }
    let written = writer.close().await.expect("closes");
    Outcome {
        total: started.elapsed(),
        decode,
        bytes: payloads.iter().map(Vec::len).sum(),
        files: written.len(),
        file_bytes: written.iter().map(|f| f.file_size_in_bytes()).sum(),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = CatalogConfig {
            uri: format!("sqlite:{}/catalog.db", dir.path().display()),
            name: "bench".into(),
            warehouse: format!("{}/warehouse", dir.path().display()),
            ..Default::default()
        };
        let catalog = Catalog::connect(&config).await.expect("catalog");
        let decls: Vec<FieldDecl> = FIELDS
            .iter()
            .map(|(name, ty)| FieldDecl { name: (*name).into(), type_name: (*ty).into(), required: false, doc: None })
            .collect();
        let layout = TableLayout {
            schema: icefall_schemas::declare::schema_from_decls(&decls).expect("schema"),
            partition: vec![],
            properties: Default::default(),
            sort_order: vec![],
        };
        let ident = icefall_table::catalog::parse_ident("bench.events").expect("ident");
        let table = catalog.load_or_create(&ident, &layout).await.expect("table");
        let files =
            TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None).expect("files");
        let schema = table.metadata.current_schema().clone();

        let events: Vec<serde_json::Value> = (0..ROWS).map(event).collect();
        let json: Vec<Vec<u8>> = events.iter().map(|e| e.to_string().into_bytes()).collect();
        let message = compile_proto();
        let protos: Vec<Vec<u8>> = events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                for k in ["event_id", "user_id", "event_time", "sent_time", "score"] {
                    e[k] = serde_json::Value::String(e[k].to_string()); // int64 is text in Protobuf JSON
                }
                prost_reflect::DynamicMessage::deserialize(message.clone(), e).expect("message").encode_to_vec()
            })
            .collect();
        let avro_schema = apache_avro::Schema::parse_str(AVSC).expect("avsc");
        let avros: Vec<Vec<u8>> =
            events.iter().map(|e| apache_avro::to_avro_datum(&avro_schema, avro_value(e)).expect("datum")).collect();

        let json_decoder = Decoder::Json(
            JsonDecoder::new(schema.clone(), JsonOptions { epoch_unit: EpochUnit::Micros, ..Default::default() })
                .expect("json"),
        );
        let binary = |source: SourceSchema| {
            let ids =
                evolve(&schema, 100, &Default::default(), &source.fields().expect("fields"), &EvolveOptions::default())
                    .expect("fits")
                    .field_ids;
            Decoder::Binary(BinaryDecoder::plain(&schema, &ids, &source).expect("decoder"))
        };
        let proto_options = ProtoOptions {
            timestamp_fields: vec!["event_time".into(), "sent_time".into()],
            timestamp_unit: EpochUnit::Micros,
        };
        let proto = binary(SourceSchema::Protobuf(
            ProtoSchema::from_source("bench.proto", PROTO, Some("bench.Event"), proto_options).expect("proto"),
        ));
        let avro = binary(SourceSchema::Avro(AvroSchema::parse(AVSC).expect("avro")));

        println!("decode → Arrow → Parquet (zstd) of {ROWS} reference events (20 fields) on one core:");
        let cases: [(&str, &Decoder, &[Vec<u8>]); 3] =
            [("json", &json_decoder, &json), ("protobuf", &proto, &protos), ("avro", &avro, &avros)];
        for (name, decoder, payloads) in cases {
            run(decoder, &files, &payloads[..BATCH * 4], &format!("warm-{name}")).await;
            let out = run(decoder, &files, payloads, name).await;
            let secs = out.total.as_secs_f64();
            println!(
                "{name:>9}: {:>9.0} records/s  {:>6.1} MB/s in ({:.0} B/record)  decode {:>3.0}% of the time  \
                 → {} file(s), {:.1} MB",
                ROWS as f64 / secs,
                out.bytes as f64 / secs / 1e6,
                out.bytes as f64 / ROWS as f64,
                out.decode.as_secs_f64() / secs * 100.0,
                out.files,
                out.file_bytes as f64 / 1e6
            );
        }
    });
}
