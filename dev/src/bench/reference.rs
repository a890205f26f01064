//! The reference event of the writer benchmarks: 20 fields (two ids, a session id, two
//! timestamps, nine short strings, a double, an int, a float, a boolean, a long, and a nested
//! struct of two doubles and a string), ~430 B as JSON, with the same values as Protobuf
//! (~175 B) and Avro (~150 B).

use std::path::Path;

use apache_avro::types::Value as Avro;
use icefall_schemas::avro::AvroSchema;
use icefall_schemas::declare::FieldDecl;
use icefall_schemas::decode::{BinaryDecoder, Decoder, SourceSchema};
use icefall_schemas::evolve::{EvolveOptions, evolve};
use icefall_schemas::json::{EpochUnit, JsonDecoder, JsonOptions};
use icefall_schemas::proto::{ProtoOptions, ProtoSchema};
use prost_reflect::MessageDescriptor;

/// Columns of the reference table (JSON declares them; Protobuf and Avro carry the same).
pub const FIELDS: &[(&str, &str)] = &[
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

pub const PROTO: &str = r#"syntax = "proto3"; package bench;
message Geo { double lat = 1; double lon = 2; string city = 3; }
message Event {
  int64 event_id = 1; int64 user_id = 2; string session_id = 3; int64 event_time = 4; int64 sent_time = 5;
  string event_type = 6; string page = 7; string referrer = 8; string country = 9; string device = 10;
  string os = 11; string browser = 12; double amount = 13; int32 quantity = 14; float discount = 15;
  bool is_new_user = 16; string app_version = 17; string campaign = 18; int64 score = 19; Geo geo = 20;
}"#;

pub const AVSC: &str = r#"{"type": "record", "name": "Event", "fields": [
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

/// Protobuf fields holding epoch microseconds (`timestamptz` columns).
const PROTO_TIMESTAMPS: [&str; 2] = ["event_time", "sent_time"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Protobuf,
    Avro,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Json, Format::Protobuf, Format::Avro];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Protobuf => "protobuf",
            Format::Avro => "avro",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == text)
    }
}

/// The reference event `i` as JSON (timestamps as epoch microseconds).
pub fn event(i: usize) -> serde_json::Value {
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

/// Encodes reference events in one format.
pub struct Encoder {
    format: Format,
    message: Option<MessageDescriptor>,
    avro: Option<apache_avro::Schema>,
}

impl Encoder {
    pub fn new(format: Format) -> Encoder {
        Encoder {
            format,
            message: (format == Format::Protobuf)
                .then(|| icefall_integration_tests::encode::proto_message(PROTO, "bench.Event")),
            avro: (format == Format::Avro).then(|| apache_avro::Schema::parse_str(AVSC).expect("avsc")),
        }
    }

    /// Event `i` in this encoder's format.
    pub fn encode(&self, i: usize) -> Vec<u8> {
        let mut e = event(i);
        match (self.format, &self.message, &self.avro) {
            (Format::Protobuf, Some(message), _) => {
                for k in ["event_id", "user_id", "event_time", "sent_time", "score"] {
                    e[k] = serde_json::Value::String(e[k].to_string()); // int64 is text in Protobuf JSON
                }
                icefall_integration_tests::encode::proto_encode(message, &e)
            }
            (Format::Avro, _, Some(schema)) => apache_avro::to_avro_datum(schema, avro_value(&e)).expect("datum"),
            _ => e.to_string().into_bytes(),
        }
    }
}

fn avro_value(e: &serde_json::Value) -> Avro {
    let s = |k: &str| Avro::String(e[k].as_str().unwrap_or_default().to_string());
    let l = |k: &str| Avro::Long(e[k].as_i64().unwrap_or_default());
    let d = |k: &str| Avro::Double(e[k].as_f64().unwrap_or_default());
    let mut fields = Vec::with_capacity(FIELDS.len());
    for (name, ty) in FIELDS {
        let value = match (*name, *ty) {
            ("event_time" | "sent_time", _) => Avro::TimestampMicros(e[*name].as_i64().unwrap_or_default()),
            (_, "long") => l(name),
            (_, "string") => s(name),
            (_, "double") => d(name),
            (_, "int") => Avro::Int(e[*name].as_i64().unwrap_or_default() as i32),
            (_, "float") => Avro::Float(e[*name].as_f64().unwrap_or_default() as f32),
            (_, "boolean") => Avro::Boolean(e[*name].as_bool().unwrap_or_default()),
            _ => Avro::Record(vec![
                ("lat".into(), Avro::Double(e["geo"]["lat"].as_f64().unwrap_or_default())),
                ("lon".into(), Avro::Double(e["geo"]["lon"].as_f64().unwrap_or_default())),
                ("city".into(), Avro::String(e["geo"]["city"].as_str().unwrap_or_default().to_string())),
            ]),
        };
        fields.push(((*name).to_string(), value));
    }
    Avro::Record(fields)
}

/// The reference table's columns as JSON declarations.
pub fn field_decls() -> Vec<FieldDecl> {
    FIELDS
        .iter()
        .map(|(name, ty)| FieldDecl { name: (*name).into(), type_name: (*ty).into(), required: false, doc: None })
        .collect()
}

/// The decoder the writer builds for `format`, against the reference table's schema.
pub fn decoder(format: Format, schema: &iceberg::spec::SchemaRef) -> Decoder {
    let binary = |source: SourceSchema| {
        let fields = source.fields().expect("fields");
        let ids = evolve(schema, 100, &Default::default(), &fields, &EvolveOptions::default()).expect("fits").field_ids;
        Decoder::Binary(BinaryDecoder::plain(schema, &ids, &source).expect("decoder"))
    };
    match format {
        Format::Json => Decoder::Json(
            JsonDecoder::new(schema.clone(), JsonOptions { epoch_unit: EpochUnit::Micros, ..Default::default() })
                .expect("json"),
        ),
        Format::Protobuf => {
            let options = ProtoOptions {
                timestamp_fields: PROTO_TIMESTAMPS.iter().map(|s| s.to_string()).collect(),
                timestamp_unit: EpochUnit::Micros,
            };
            binary(SourceSchema::Protobuf(
                ProtoSchema::from_source("bench.proto", PROTO, Some("bench.Event"), options).expect("proto"),
            ))
        }
        Format::Avro => binary(SourceSchema::Avro(AvroSchema::parse(AVSC).expect("avro"))),
    }
}

/// The format-specific keys of a writer pipeline reading the reference event; schema files
/// go into `dir`.
pub fn pipeline_keys(format: Format, dir: &Path) -> String {
    match format {
        Format::Json => {
            let columns: Vec<String> =
                FIELDS.iter().map(|(name, ty)| format!("  {{ name = \"{name}\", type = \"{ty}\" }},")).collect();
            format!("format = \"json\"\nepoch_unit = \"micros\"\nschema = [\n{}\n]\n", columns.join("\n"))
        }
        Format::Protobuf => {
            let path = dir.join("bench.proto");
            std::fs::write(&path, PROTO).expect("write bench.proto");
            format!(
                "format = \"protobuf\"\n\n[pipelines.protobuf]\nproto_files = [\"{}\"]\nmessage = \"bench.Event\"\n\
                 timestamp_fields = {:?}\ntimestamp_unit = \"micros\"\n",
                path.display(),
                PROTO_TIMESTAMPS
            )
        }
        Format::Avro => {
            let path = dir.join("bench.avsc");
            std::fs::write(&path, AVSC).expect("write bench.avsc");
            format!("format = \"avro\"\n\n[pipelines.avro]\nschema_file = \"{}\"\n", path.display())
        }
    }
}
