use super::*;
use crate::decode::{BinaryDecoder, SourceSchema};
use crate::evolve::{EvolveOptions, create_schema, evolve};
use crate::testing::row;
use prost::Message;
use prost_reflect::DynamicMessage;

const V1: &str = r#"
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
  uint64 big = 12;
  repeated Item items = 13;
  int64 sent_ms = 14;
  repeated int32 packed = 15;
}
"#;

fn schema(text: &str) -> ProtoSchema {
    let options = ProtoOptions { timestamp_fields: vec!["sent_ms".into()], timestamp_unit: EpochUnit::Millis };
    ProtoSchema::from_source("event.proto", text, Some("acme.Event"), options).expect("schema compiles")
}

fn encode(schema: &ProtoSchema, json: &str) -> Vec<u8> {
    let mut de = serde_json::Deserializer::from_str(json);
    DynamicMessage::deserialize(schema.message.clone(), &mut de).expect("valid message json").encode_to_vec()
}

#[test]
fn maps_every_kind_of_field_to_the_documented_column_type() {
    let source = SourceSchema::Protobuf(schema(V1));
    let (table, _) = create_schema(&source.fields().expect("fields"), &[]).expect("table schema");
    let types: Vec<String> =
        table.as_struct().fields().iter().map(|f| format!("{}:{}:{}", f.name, f.field_type, f.required)).collect();
    assert_eq!(types[0], "id:long:true");
    assert_eq!(types[2], "score:int:false", "proto3 optional has presence");
    assert_eq!(types[3], "kind:string:true");
    assert!(types[4].starts_with("item:struct<"), "{}", types[4]);
    assert_eq!(types[7], "at:timestamptz:false");
    assert_eq!(types[8], "text:string:false", "oneof members are nullable");
    assert_eq!(types[10], "blob:binary:true");
    assert_eq!(types[11], "big:long:true");
    assert_eq!(types[13], "sent_ms:timestamptz:true", "configured epoch field");
}

#[test]
fn decodes_the_wire_format_into_columns() {
    let proto = schema(V1);
    let source = SourceSchema::Protobuf(proto.clone());
    let (table, ids) = create_schema(&source.fields().expect("fields"), &[]).expect("table schema");
    let decoder = BinaryDecoder::plain(&table, &ids, &source).expect("decoder");
    let full = encode(
        &proto,
        r#"{"id": "7", "name": "a", "score": 3, "kind": "VIEW", "item": {"sku": "x", "qty": 2},
            "tags": ["t1", "t2"], "labels": {"-2": "minus two"}, "at": "2024-01-02T03:04:05.123456Z",
            "text": "hello", "blob": "AAE=", "big": "5", "items": [{"sku": "y"}], "sentMs": "1700000000123",
            "packed": [1, 2, 3]}"#,
    );
    let empty = encode(&proto, r#"{"number": "9", "kind": 5}"#);
    let decoded = decoder.decode([Some(full.as_slice()), Some(empty.as_slice())]).expect("decodes");
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    assert_eq!(
        row(&decoded.batch, 0),
        vec![
            "id=7",
            "name=a",
            "score=3",
            "kind=VIEW",
            "item={sku: x, qty: 2}",
            "tags=[t1, t2]",
            "labels={-2: minus two}",
            "at=2024-01-02T03:04:05.123456Z",
            "text=hello",
            "number=null",
            "blob=0001",
            "big=5",
            "items=[{sku: y, qty: 0}]",
            "sent_ms=2023-11-14T22:13:20.123Z",
            "packed=[1, 2, 3]",
        ]
    );
    // Absent scalars take their default, fields with presence are null, an unknown enum
    // number is kept as its number.
    assert_eq!(
        row(&decoded.batch, 1),
        vec![
            "id=0",
            "name=",
            "score=null",
            "kind=5",
            "item=null",
            "tags=[]",
            "labels={}",
            "at=null",
            "text=null",
            "number=9",
            "blob=",
            "big=0",
            "items=[]",
            "sent_ms=1970-01-01T00:00:00Z",
            "packed=[]",
        ]
    );
}

#[test]
fn a_bad_record_is_reported_and_leaves_no_half_row() {
    let proto = schema(V1);
    let source = SourceSchema::Protobuf(proto.clone());
    let (table, ids) = create_schema(&source.fields().expect("fields"), &[]).expect("table schema");
    let decoder = BinaryDecoder::plain(&table, &ids, &source).expect("decoder");
    let good = encode(&proto, r#"{"id": "1", "tags": ["a"], "item": {"sku": "x"}}"#);
    let truncated = &good[..good.len() - 2];
    let too_big = encode(&proto, r#"{"id": "2", "tags": ["b"], "big": "18446744073709551615"}"#);
    let decoded =
        decoder.decode([Some(truncated), Some(too_big.as_slice()), None, Some(good.as_slice())]).expect("batch");
    assert_eq!(decoded.batch.num_rows(), 1);
    assert_eq!(decoded.rows, vec![3]);
    let kinds: Vec<&str> = decoded.errors.iter().map(|(_, e)| e.kind).collect();
    assert_eq!(kinds, vec!["bad_protobuf", "out_of_range", "empty"]);
    assert!(decoded.errors[1].1.message.contains("big"), "{}", decoded.errors[1].1);
    assert_eq!(row(&decoded.batch, 0)[5], "tags=[a]");
}

#[test]
fn evolution_follows_field_numbers_through_renames_widening_and_removal() {
    let v1 = schema(
        "syntax = \"proto3\"; package acme; message Event { int64 id = 1; int32 count = 2; string old_name = 3; string gone = 4; }",
    );
    let v2 = schema(
        "syntax = \"proto3\"; package acme; message Event { string new_name = 3; int64 id = 1; int64 count = 2; \
         message Sub { int32 a = 1; } Sub sub = 5; }",
    );
    let (table, ids) = create_schema(&SourceSchema::Protobuf(v1.clone()).fields().expect("v1"), &[]).expect("v1 table");
    let evolution =
        evolve(&table, table.highest_field_id(), &ids, &v2.fields().expect("v2"), &EvolveOptions::default())
            .expect("compatible");
    let new_table = evolution.schema.clone().expect("a change");
    let names: Vec<String> =
        new_table.as_struct().fields().iter().map(|f| format!("{}#{}:{}", f.name, f.id, f.field_type)).collect();
    assert_eq!(names, vec!["new_name#3:string", "id#1:long", "count#2:long", "sub#5:struct<int>", "gone#4:string"]);
    assert!(evolution.changes.iter().any(|c| c == "rename old_name → new_name"), "{:?}", evolution.changes);
    assert!(evolution.changes.iter().any(|c| c.starts_with("widen count")), "{:?}", evolution.changes);
    assert!(evolution.changes.iter().any(|c| c.starts_with("make gone optional")), "{:?}", evolution.changes);

    // Old and new records land in the same columns.
    let ids = evolution.field_ids;
    let old = BinaryDecoder::plain(&new_table, &ids, &SourceSchema::Protobuf(v1.clone())).expect("v1 decoder");
    let new = BinaryDecoder::plain(&new_table, &ids, &SourceSchema::Protobuf(v2.clone())).expect("v2 decoder");
    let a = encode(&v1, r#"{"id": "1", "count": 5, "oldName": "n1", "gone": "g"}"#);
    let b = encode(&v2, r#"{"id": "2", "count": "5000000000", "newName": "n2", "sub": {"a": 1}}"#);
    let rows_a = old.decode([Some(a.as_slice())]).expect("v1 rows");
    let rows_b = new.decode([Some(b.as_slice())]).expect("v2 rows");
    assert_eq!(row(&rows_a.batch, 0), vec!["new_name=n1", "id=1", "count=5", "sub=null", "gone=g"]);
    assert_eq!(row(&rows_b.batch, 0), vec!["new_name=n2", "id=2", "count=5000000000", "sub={a: 1}", "gone=null"]);
}

#[test]
fn narrowing_and_type_changes_are_refused_naming_the_field() {
    let v1 = schema(
        "syntax = \"proto3\"; package acme; message Event { int64 id = 1; message S { string x = 1; } S s = 2; }",
    );
    let v2 = schema(
        "syntax = \"proto3\"; package acme; message Event { int64 id = 1; message S { int32 x = 1; } S s = 2; }",
    );
    let (table, ids) = create_schema(&v1.fields().expect("v1"), &[]).expect("v1 table");
    let err = evolve(&table, table.highest_field_id(), &ids, &v2.fields().expect("v2"), &EvolveOptions::default())
        .expect_err("string → int is incompatible");
    assert!(err.to_string().contains("field s.x"), "{err}");
    // A narrower source type is fine: values widen on write.
    let v3 = schema(
        "syntax = \"proto3\"; package acme; message Event { int32 id = 1; message S { string x = 1; } S s = 2; }",
    );
    let evolution =
        evolve(&table, table.highest_field_id(), &ids, &v3.fields().expect("v3"), &EvolveOptions::default())
            .expect("ok");
    assert!(evolution.schema.is_none(), "{:?}", evolution.changes);
}

#[test]
fn confluent_framing_selects_the_schema_and_message() {
    let proto = schema(V1);
    let source = SourceSchema::Protobuf(proto.clone());
    let (table, ids) = create_schema(&source.fields().expect("fields"), &[]).expect("table");
    let sources = std::collections::BTreeMap::from([(42u32, Ok(source)), (43, Err("HTTP 404".to_string()))]);
    let decoder = BinaryDecoder::confluent(&table, &ids, &sources).expect("decoder");
    assert_eq!(proto.message_indexes(), vec![1], "Event is the second message of the file");
    let body = encode(&proto, r#"{"id": "5"}"#);
    let frame = |id: u32, indexes: &[u8]| [&[0u8][..], &id.to_be_bytes(), indexes, &body].concat();
    let ok = frame(42, &[2, 2]); // count 1 (zigzag 2), index 1 (zigzag 2)
    let wrong_message = frame(42, &[0]);
    let unknown = frame(43, &[2, 2]);
    let decoded = decoder
        .decode([Some(ok.as_slice()), Some(wrong_message.as_slice()), Some(unknown.as_slice()), Some(&b"{}"[..])])
        .expect("batch");
    assert_eq!(decoded.rows, vec![0]);
    let kinds: Vec<&str> = decoded.errors.iter().map(|(_, e)| e.kind).collect();
    assert_eq!(kinds, vec!["wrong_message", "unknown_schema", "bad_framing"]);
}

#[test]
fn without_a_message_name_the_first_message_of_the_registered_file_is_used() {
    let text = "syntax = \"proto3\"; package a; import \"google/protobuf/timestamp.proto\";\n\
                message First { google.protobuf.Timestamp at = 1; } message Second { int64 id = 1; }";
    let schema = ProtoSchema::from_source("schema-7.proto", text, None, ProtoOptions::default()).expect("compiles");
    assert_eq!(schema.message_name(), "a.First");
    assert_eq!(schema.message_indexes(), vec![0]);
}
