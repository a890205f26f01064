use super::*;
use crate::decode::{BinaryDecoder, SourceSchema};
use crate::evolve::{EvolveOptions, create_schema, evolve};
use crate::testing::row;
use apache_avro::types::Value;

const V1: &str = r#"{
  "type": "record", "name": "Order", "namespace": "acme",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "customer", "type": ["null", "string"], "default": null},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "at_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line",
        "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 2}},
    {"name": "score", "type": "float"}
  ]
}"#;

fn datum(schema: &AvroSchema, fields: Vec<(&str, Value)>) -> Vec<u8> {
    let record = Value::Record(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    let resolved = record.resolve(&schema.schema).expect("the value fits the schema");
    apache_avro::to_avro_datum(&schema.schema, resolved).expect("encodes")
}

fn v1_order(schema: &AvroSchema, id: i64, customer: Option<&str>) -> Vec<u8> {
    datum(
        schema,
        vec![
            ("id", Value::Long(id)),
            ("customer", customer.map_or(Value::Null, |c| Value::String(c.into()))),
            ("amount", Value::Decimal(apache_avro::Decimal::from(vec![0xff, 0xff, 0xff, 0x38]))), // -200 → -2.00
            ("status", Value::Enum(1, "PAID".into())),
            ("day", Value::Date(19723)),
            ("at", Value::TimestampMicros(1_700_000_000_123_456)),
            ("at_ms", Value::TimestampMillis(1_700_000_000_123)),
            ("ref", Value::Uuid(uuid::Uuid::from_u128(1))),
            (
                "lines",
                Value::Array(vec![Value::Record(vec![
                    ("sku".into(), Value::String("s1".into())),
                    ("qty".into(), Value::Int(2)),
                ])]),
            ),
            ("attrs", Value::Map([("k".to_string(), Value::Long(9))].into())),
            ("hash", Value::Fixed(2, vec![0xab, 0xcd])),
            ("score", Value::Float(1.5)),
        ],
    )
}

#[test]
fn decodes_logical_and_nested_types() {
    let schema = AvroSchema::parse(V1).expect("parses");
    let source = SourceSchema::Avro(schema.clone());
    let (table, ids) = create_schema(&source.fields().expect("fields"), &[]).expect("table");
    let types: Vec<String> =
        table.as_struct().fields().iter().map(|f| format!("{}:{}", f.name, f.field_type)).collect();
    assert_eq!(
        &types[..8],
        &[
            "id:long",
            "customer:string",
            "amount:decimal(9, 2)",
            "status:string",
            "day:date",
            "at:timestamptz",
            "at_ms:timestamptz",
            "ref:uuid"
        ]
    );
    assert!(!table.as_struct().fields()[1].required, "a union with null is optional");
    let decoder = BinaryDecoder::plain(&table, &ids, &source).expect("decoder");
    let a = v1_order(&schema, 1, Some("c1"));
    let b = v1_order(&schema, 2, None);
    let decoded = decoder.decode([Some(a.as_slice()), Some(&a[..10]), Some(b.as_slice())]).expect("batch");
    assert_eq!(decoded.rows, vec![0, 2]);
    assert_eq!(decoded.errors[0].1.kind, "bad_avro");
    assert!(decoded.errors[0].1.message.starts_with("field "), "names the field: {}", decoded.errors[0].1);
    assert_eq!(
        row(&decoded.batch, 0),
        vec![
            "id=1",
            "customer=c1",
            "amount=-2.00",
            "status=PAID",
            "day=2024-01-01",
            "at=2023-11-14T22:13:20.123456Z",
            "at_ms=2023-11-14T22:13:20.123Z",
            "ref=00000000000000000000000000000001",
            "lines=[{sku: s1, qty: 2}]",
            "attrs={k: 9}",
            "hash=abcd",
            "score=1.5",
        ]
    );
    assert_eq!(row(&decoded.batch, 1)[1], "customer=null");
}

#[test]
fn aliases_rename_and_old_records_still_decode() {
    let v1 = AvroSchema::parse(
        r#"{"type": "record", "name": "R", "fields": [{"name": "id", "type": "int"}, {"name": "name", "type": "string"},
            {"name": "gone", "type": "string"}]}"#,
    )
    .expect("v1");
    let v2 = AvroSchema::parse(
        r#"{"type": "record", "name": "R", "fields": [
            {"name": "full_name", "aliases": ["name"], "type": "string"},
            {"name": "id", "type": "long"},
            {"name": "tags", "type": ["null", {"type": "array", "items": "string"}], "default": null}]}"#,
    )
    .expect("v2");
    let (table, ids) = create_schema(&v1.fields().expect("v1"), &[]).expect("table");
    let options = EvolveOptions { drop_removed_fields: true, ..Default::default() };
    let evolution = evolve(&table, table.highest_field_id(), &ids, &v2.fields().expect("v2"), &options).expect("ok");
    let new_table = evolution.schema.expect("changed");
    let names: Vec<String> =
        new_table.as_struct().fields().iter().map(|f| format!("{}#{}:{}", f.name, f.id, f.field_type)).collect();
    assert_eq!(names, vec!["full_name#2:string", "id#1:long", "tags#4:list"]);
    assert!(evolution.changes.iter().any(|c| c.starts_with("drop column gone")), "{:?}", evolution.changes);

    let old = BinaryDecoder::plain(&new_table, &evolution.field_ids, &SourceSchema::Avro(v1.clone())).expect("old");
    let bytes = datum(
        &v1,
        vec![("id", Value::Int(3)), ("name", Value::String("n".into())), ("gone", Value::String("g".into()))],
    );
    let decoded = old.decode([Some(bytes.as_slice())]).expect("batch");
    assert_eq!(row(&decoded.batch, 0), vec!["full_name=n", "id=3", "tags=null"]);
}

#[test]
fn unions_of_several_types_are_refused_at_start_up() {
    let err =
        AvroSchema::parse(r#"{"type": "record", "name": "R", "fields": [{"name": "v", "type": ["int", "string"]}]}"#)
            .expect_err("refused");
    assert!(err.to_string().contains("field v"), "{err}");
}

#[test]
fn a_table_created_from_the_renamed_schema_still_places_old_records() {
    let old = AvroSchema::parse(r#"{"type": "record", "name": "R", "fields": [{"name": "name", "type": "string"}]}"#)
        .expect("old");
    let new = AvroSchema::parse(
        r#"{"type": "record", "name": "R", "fields": [{"name": "full_name", "aliases": ["name"], "type": "string"}]}"#,
    )
    .expect("new");
    let (table, _) = create_schema(&new.fields().expect("new"), &[]).expect("table");
    let recorded =
        evolve(&table, 1, &Default::default(), &new.fields().expect("new"), &EvolveOptions::default()).expect("ok");
    let older = EvolveOptions { older_source: true, ..Default::default() };
    let for_old = evolve(&table, 1, &recorded.field_ids, &old.fields().expect("old"), &older).expect("ok");
    assert!(for_old.schema.is_none(), "no new column for the old name: {:?}", for_old.changes);
    let decoder = BinaryDecoder::plain(&table, &for_old.field_ids, &SourceSchema::Avro(old.clone())).expect("decoder");
    let bytes = datum(&old, vec![("name", Value::String("x".into()))]);
    assert_eq!(row(&decoder.decode([Some(bytes.as_slice())]).expect("rows").batch, 0), vec!["full_name=x"]);
}
