//! Decode throughput per format: the same events as JSON (arrow-json as the baseline, then our
//! streaming decoder), Protobuf and Avro, decoded into Arrow batches of 4096 rows. Reports
//! rows/s and ratios measured in the same run.
//!
//! `cargo bench -p icefall-schemas --bench decode` (release; numbers in docs/benchmarks.md).

use std::sync::Arc;
use std::time::Instant;

use apache_avro::types::Value as Avro;
use icefall_schemas::avro::AvroSchema;
use icefall_schemas::declare::{FieldDecl, schema_from_decls};
use icefall_schemas::decode::{BinaryDecoder, SourceSchema};
use icefall_schemas::evolve::{EvolveOptions, evolve};
use icefall_schemas::json::{JsonDecoder, JsonOptions};
use icefall_schemas::proto::{ProtoOptions, ProtoSchema};
use prost::Message;

const BATCH: usize = 4096;

const PROTO: &str = r#"syntax = "proto3"; package bench;
message Geo { double lat = 1; double lon = 2; }
message Event { int64 id = 1; int64 ts = 2; string user = 3; double amount = 4; repeated string tags = 5; Geo geo = 6; }"#;

const AVSC: &str = r#"{"type": "record", "name": "Event", "fields": [
  {"name": "id", "type": "long"},
  {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "user", "type": "string"},
  {"name": "amount", "type": "double"},
  {"name": "tags", "type": {"type": "array", "items": "string"}},
  {"name": "geo", "type": {"type": "record", "name": "Geo", "fields": [
     {"name": "lat", "type": "double"}, {"name": "lon", "type": "double"}]}}
]}"#;

fn decl(name: &str, ty: &str) -> FieldDecl {
    FieldDecl { name: name.into(), type_name: ty.into(), required: false, doc: None }
}

/// Best time of each decoder over `runs` rounds, the decoders taking turns within a round so a
/// noisy neighbour slows them alike; then rows/s per decoder.
fn race(rows: usize, runs: usize, decoders: &mut [(&str, &mut dyn FnMut() -> usize)]) -> Vec<f64> {
    let mut best = vec![f64::MAX; decoders.len()];
    for round in 0..=runs {
        for (i, (name, run)) in decoders.iter_mut().enumerate() {
            let started = Instant::now();
            assert_eq!(run(), rows, "{name} decoded every row");
            if round > 0 {
                // Round 0 warms up.
                best[i] = best[i].min(started.elapsed().as_secs_f64());
            }
        }
    }
    decoders
        .iter()
        .zip(&best)
        .map(|((name, _), best)| {
            let rate = rows as f64 / best;
            println!("{name:>10}: {rate:>10.0} rows/s  ({best:.3} s for {rows} rows, best of {runs})");
            rate
        })
        .collect()
}

/// `DECODE_ROWS` / `DECODE_RUNS` from the environment (e.g. fewer under callgrind).
fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let rows = setting("DECODE_ROWS", 200_000);
    let runs = setting("DECODE_RUNS", 10);
    // The table: the same columns for every format (timestamps as timestamptz).
    let table = Arc::new(
        schema_from_decls(&[
            decl("id", "long"),
            decl("ts", "timestamptz"),
            decl("user", "string"),
            decl("amount", "double"),
            decl("tags", "list<string>"),
            decl("geo", "struct<lat: double, lon: double>"),
        ])
        .expect("schema"),
    );
    let ts = |i: usize| 1_700_000_000_000_000i64 + i as i64 * 1000;

    let json: Vec<Vec<u8>> = (0..rows)
        .map(|i| {
            serde_json::json!({"id": i, "ts": chrono::DateTime::from_timestamp_micros(ts(i)).expect("ts").to_rfc3339(),
                "user": format!("user-{}", i % 1000), "amount": i as f64 * 0.25, "tags": ["a", "b"],
                "geo": {"lat": 59.9, "lon": 10.7}})
            .to_string()
            .into_bytes()
        })
        .collect();

    let options =
        ProtoOptions { timestamp_fields: vec!["ts".into()], timestamp_unit: icefall_schemas::json::EpochUnit::Micros };
    let proto = ProtoSchema::from_source("bench.proto", PROTO, Some("bench.Event"), options).expect("proto");
    let pool = {
        let file = protox::file::File::from_source("bench.proto", PROTO).expect("parse");
        let mut resolver = protox::file::ChainFileResolver::new();
        struct One(protox::file::File);
        impl protox::file::FileResolver for One {
            fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
                if name == self.0.name() { Ok(self.0.clone()) } else { Err(protox::Error::file_not_found(name)) }
            }
        }
        resolver.add(One(file));
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.open_file("bench.proto").expect("compile");
        compiler.descriptor_pool()
    };
    let message = pool.get_message_by_name("bench.Event").expect("message");
    let protos: Vec<Vec<u8>> = (0..rows)
        .map(|i| {
            let event = serde_json::json!({"id": i.to_string(), "ts": ts(i).to_string(), "user": format!("user-{}", i % 1000),
                "amount": i as f64 * 0.25, "tags": ["a", "b"], "geo": {"lat": 59.9, "lon": 10.7}});
            prost_reflect::DynamicMessage::deserialize(message.clone(), event).expect("message").encode_to_vec()
        })
        .collect();

    let avro_schema = apache_avro::Schema::parse_str(AVSC).expect("avsc");
    let avros: Vec<Vec<u8>> = (0..rows)
        .map(|i| {
            let value = Avro::Record(vec![
                ("id".into(), Avro::Long(i as i64)),
                ("ts".into(), Avro::TimestampMicros(ts(i))),
                ("user".into(), Avro::String(format!("user-{}", i % 1000))),
                ("amount".into(), Avro::Double(i as f64 * 0.25)),
                ("tags".into(), Avro::Array(vec![Avro::String("a".into()), Avro::String("b".into())])),
                (
                    "geo".into(),
                    Avro::Record(vec![("lat".into(), Avro::Double(59.9)), ("lon".into(), Avro::Double(10.7))]),
                ),
            ]);
            apache_avro::to_avro_datum(&avro_schema, value).expect("datum")
        })
        .collect();

    let json_decoder = JsonDecoder::new(table.clone(), JsonOptions::default()).expect("json decoder");
    let binary = |source: &SourceSchema| {
        let ids = evolve(&table, 20, &Default::default(), &source.fields().expect("fields"), &EvolveOptions::default())
            .expect("fits")
            .field_ids;
        BinaryDecoder::plain(&table, &ids, source).expect("decoder")
    };
    let proto_decoder = binary(&SourceSchema::Protobuf(proto));
    let avro_decoder = binary(&SourceSchema::Avro(AvroSchema::parse(AVSC).expect("avro")));

    // arrow-json, the Arrow project's JSON reader, on the same newline-delimited records.
    let arrow_schema = json_decoder.arrow_schema().clone();
    let ndjson: Vec<Vec<u8>> =
        json.chunks(BATCH).map(|chunk| chunk.iter().flat_map(|r| r.iter().copied().chain([b'\n'])).collect()).collect();

    println!("decode {rows} events (id, ts, user, amount, tags[2], geo{{lat, lon}}) in batches of {BATCH}:");
    let run = |payloads: &[Vec<u8>], decode: &dyn Fn(&[Vec<u8>]) -> usize| -> usize {
        payloads.chunks(BATCH).map(decode).sum()
    };
    let mut arrow_json = || {
        let mut rows = 0;
        for chunk in &ndjson {
            let mut decoder = arrow_json::ReaderBuilder::new(arrow_schema.clone())
                .with_batch_size(BATCH)
                .build_decoder()
                .expect("arrow-json decoder");
            decoder.decode(chunk).expect("arrow-json decodes");
            rows += decoder.flush().expect("flush").map_or(0, |b| b.num_rows());
        }
        rows
    };
    let mut ours_json =
        || run(&json, &|c| json_decoder.decode(c.iter().map(|p| Some(p.as_slice()))).expect("ok").batch.num_rows());
    let mut ours_proto =
        || run(&protos, &|c| proto_decoder.decode(c.iter().map(|p| Some(p.as_slice()))).expect("ok").batch.num_rows());
    let mut ours_avro =
        || run(&avros, &|c| avro_decoder.decode(c.iter().map(|p| Some(p.as_slice()))).expect("ok").batch.num_rows());
    let rates = race(
        rows,
        runs,
        &mut [
            ("arrow-json", &mut arrow_json),
            ("json", &mut ours_json),
            ("protobuf", &mut ours_proto),
            ("avro", &mut ours_avro),
        ],
    );
    let [arrow_json_rate, json_rate, proto_rate, avro_rate] = rates[..] else { unreachable!("four decoders") };
    println!(
        "ratios (same run): json / arrow-json {:.2}x; protobuf / json {:.2}x; avro / json {:.2}x",
        json_rate / arrow_json_rate,
        proto_rate / json_rate,
        avro_rate / json_rate
    );
}
