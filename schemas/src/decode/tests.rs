//! Robustness: random and mutated bytes never panic a decoder, and every input is accounted
//! for (a row or a dead-letter reason), with batches that stay valid.

use super::*;
use crate::evolve::create_schema;
use crate::json::JsonOptions;

/// A small deterministic generator (no randomness crate needed for this).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % max;
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const PROTO: &str = r#"syntax = "proto3"; package f;
message Inner { string s = 1; repeated sint64 n = 2; }
message M { int64 a = 1; string b = 2; repeated Inner inner = 3; map<int32, Inner> m = 4; optional double d = 5;
  bytes e = 6; fixed32 f = 7; uint64 g = 8; repeated int32 packed = 9; }"#;

const AVSC: &str = r#"{"type": "record", "name": "M", "fields": [
  {"name": "a", "type": "long"}, {"name": "b", "type": ["null", "string"]},
  {"name": "c", "type": {"type": "array", "items": {"type": "map", "values": "int"}}},
  {"name": "d", "type": {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 2}},
  {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X", "Y"]}},
  {"name": "f", "type": {"type": "fixed", "name": "F", "size": 3}}]}"#;

fn check(decoder: &Decoder, inputs: &[Vec<u8>]) {
    let decoded = decoder.decode(inputs.iter().map(|p| Some(p.as_slice()))).expect("a batch, never an error");
    assert_eq!(decoded.rows.len() + decoded.errors.len(), inputs.len());
    assert_eq!(decoded.batch.num_rows(), decoded.rows.len());
    for column in decoded.batch.columns() {
        column.to_data().validate_full().expect("valid Arrow data");
    }
}

fn mutations(rng: &mut Lcg, valid: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..200 {
        let mut m = valid.to_vec();
        match rng.next() % 3 {
            0 if !m.is_empty() => {
                let i = rng.next() as usize % m.len();
                m[i] ^= 1 << (rng.next() % 8);
            }
            1 => m.truncate(rng.next() as usize % (valid.len() + 1)),
            _ => m.extend(rng.bytes(8)),
        }
        out.push(m);
    }
    out
}

#[test]
fn random_and_mutated_bytes_never_panic_any_decoder() {
    let mut rng = Lcg(42);
    let proto_schema = ProtoSchema::from_source("f.proto", PROTO, Some("f.M"), Default::default()).expect("proto");
    let proto = SourceSchema::Protobuf(proto_schema);
    let avro = SourceSchema::Avro(AvroSchema::parse(AVSC).expect("avro"));
    for source in [&proto, &avro] {
        let (table, ids) = create_schema(&source.fields().expect("fields"), &[]).expect("table");
        let plain = Decoder::Binary(BinaryDecoder::plain(&table, &ids, source).expect("decoder"));
        let sources = BTreeMap::from([(7u32, Ok(source.clone()))]);
        let framed = Decoder::Binary(BinaryDecoder::confluent(&table, &ids, &sources).expect("decoder"));
        let random: Vec<Vec<u8>> = (0..3000).map(|_| rng.bytes(64)).collect();
        check(&plain, &random);
        check(&framed, &random);
        let indexes: &[u8] = if matches!(source, SourceSchema::Protobuf(_)) { &[0] } else { &[] };
        let framed_random: Vec<Vec<u8>> =
            random.iter().map(|r| [&[0u8, 0, 0, 0, 7][..], indexes, r].concat()).collect();
        check(&framed, &framed_random);
        let json = Decoder::Json(JsonDecoder::new(Arc::new(table.clone()), JsonOptions::default()).expect("json"));
        check(&json, &random);
        check(&json, &mutations(&mut rng, br#"{"a": 1, "b": "x", "d": 1.5, "e": "AAE=", "inner": [{"s": "y"}]}"#));
    }
    // Mutations of a valid Protobuf record with nested, repeated and packed fields.
    let (table, ids) = create_schema(&proto.fields().expect("fields"), &[]).expect("table");
    let decoder = Decoder::Binary(BinaryDecoder::plain(&table, &ids, &proto).expect("decoder"));
    // Hand-encoded: a=150, b="hi", inner=[{s:"x", n:[-1 (zigzag 1), 1 (zigzag 2)]}], packed=[1,2,300].
    let mut valid =
        vec![0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1a, 0x07, 0x0a, 0x01, b'x', 0x12, 0x02, 0x01, 0x02];
    valid.extend([0x4a, 0x04, 0x01, 0x02, 0xac, 0x02]);
    let decoded = decoder.decode([Some(valid.as_slice())]).expect("decodes");
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    assert_eq!(crate::testing::row(&decoded.batch, 0)[2], "inner=[{s: x, n: [-1, 1]}]");
    assert_eq!(crate::testing::row(&decoded.batch, 0)[8], "packed=[1, 2, 300]");
    check(&decoder, &mutations(&mut rng, &valid));
}
