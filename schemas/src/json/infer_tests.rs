use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use iceberg::spec::{PrimitiveType, Schema, Type};

use super::*;
use crate::declare::{FieldDecl, schema_from_decls};
use crate::evolve::{EvolveOptions, FieldIds, evolve};
use crate::json::{JsonDecoder, JsonOptions};

fn table() -> Schema {
    let decl = |name: &str, ty: &str| FieldDecl { name: name.into(), type_name: ty.into(), required: false, doc: None };
    schema_from_decls(&[
        decl("id", "long"),
        decl("n", "int"),
        decl("user", "struct<name: string>"),
        decl("items", "list<struct<sku: string>>"),
        decl("attrs", "map<string, struct<v: int>>"),
        decl("_offset", "long"),
    ])
    .expect("schema")
}

fn probe(records: &[&str]) -> NewShape {
    let probe = ShapeProbe::new(table().as_struct(), &["_offset".to_string()]);
    let mut found = NewShape::default();
    for record in records {
        probe.probe(record.as_bytes(), &mut found);
    }
    found
}

fn field(name: &str) -> Step {
    Step::Field(name.into())
}

#[test]
fn records_of_the_tables_shape_need_nothing() {
    let found = probe(&[
        r#"{"id": 1, "n": 2147483647, "user": {"name": "a/b?c#d%e é"}, "items": [{"sku": "x"}, null],
            "attrs": {"any key": {"v": -1}}, "_offset": 5, "id": 3}"#,
        r#"{"id": null, "user": null, "items": null, "attrs": {}}"#,
        "not json",
        r#"{"truncated": 1"#,
        r#"[1, 2]"#,
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn new_fields_at_every_level_are_found_with_inferred_types() {
    let found = probe(&[
        r#"{"id": 1, "flag": true, "score": 1.5, "big": 18446744073709551615, "tags": ["a"], "geo": {"lat": 1.0, "alt": null},
            "user": {"name": "a", "age": 30}, "items": [{"sku": "x"}, {"sku": "y", "qty": 2}],
            "attrs": {"k": {"v": 1, "unit": "m"}}}"#,
        // Nothing to infer from: null, empty object, empty array, array of nulls.
        r#"{"nothing": null, "empty": {}, "none": [], "nulls": [null]}"#,
        // A later type for a field already found does not replace the first.
        r#"{"flag": "yes"}"#,
    ]);
    let added: Vec<(Vec<Step>, String, String)> =
        found.additions.iter().map(|(p, n, t)| (p.clone(), n.clone(), format!("{t:?}"))).collect();
    let names: Vec<(&[Step], &str)> = added.iter().map(|(p, n, _)| (p.as_slice(), n.as_str())).collect();
    assert_eq!(
        names,
        vec![
            (&[][..], "flag"),
            (&[][..], "score"),
            (&[][..], "big"),
            (&[][..], "tags"),
            (&[][..], "geo"),
            (&[field("user")][..], "age"),
            (&[field("items"), Step::Element][..], "qty"),
            (&[field("attrs"), Step::Value][..], "unit"),
        ]
    );
    let ty = |name: &str| found.additions.iter().find(|(_, n, _)| n == name).map(|(_, _, t)| t.clone()).expect(name);
    assert_eq!(ty("flag"), SourceType::Primitive(PrimitiveType::Boolean));
    assert_eq!(ty("score"), SourceType::Primitive(PrimitiveType::Double));
    assert_eq!(ty("big"), SourceType::Primitive(PrimitiveType::Double), "past the long range");
    assert_eq!(ty("age"), SourceType::Primitive(PrimitiveType::Long));
    let SourceType::Struct(geo) = ty("geo") else { panic!("geo is a struct") };
    assert_eq!(geo.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["lat"], "alt is null: nothing to infer");
}

#[test]
fn int_columns_given_values_past_the_int_range_are_widened() {
    let found = probe(&[r#"{"n": 2147483648, "attrs": {"k": {"v": -2147483649}}}"#]);
    assert_eq!(found.widen_to_long, vec![vec![field("n")], vec![field("attrs"), Step::Value, field("v")]]);
}

#[test]
fn the_evolved_table_keeps_its_ids_and_decodes_the_new_fields() {
    let table = table();
    let found = probe(&[r#"{"n": 3000000000, "flag": true, "user": {"age": 30}, "items": [{"qty": 2}]}"#]);
    let metadata = ["_offset".to_string()];
    let source = found.source_fields(table.as_struct(), &metadata);
    let options = EvolveOptions { keep_columns: metadata.to_vec(), ..Default::default() };
    let evolution = evolve(&table, table.highest_field_id(), &FieldIds::new(), &source, &options).expect("evolves");
    let evolved = evolution.schema.expect("a change");
    for old in table.as_struct().fields() {
        let kept = evolved.field_by_id(old.id).expect("every column keeps its id");
        assert_eq!(kept.name, old.name);
    }
    assert_eq!(*evolved.field_by_name("n").expect("n").field_type, Type::Primitive(PrimitiveType::Long));
    let flag = evolved.field_by_name("flag").expect("flag added");
    assert!(!flag.required && flag.id > table.highest_field_id());
    assert!(evolved.field_by_name("user.age").is_some() && evolved.field_by_name("items.element.qty").is_some());
    assert_eq!(evolved.field_by_name("_offset").map(|f| f.id), table.field_by_name("_offset").map(|f| f.id));
    assert!(evolution.changes.iter().any(|c| c.contains("widen n")), "{:?}", evolution.changes);

    // Nothing more to find against the evolved table, and its decoder reads the new values.
    let again = ShapeProbe::new(evolved.as_struct(), &metadata);
    let record = r#"{"n": 3000000000, "flag": true, "user": {"age": 30}, "items": [{"qty": 2}]}"#;
    assert!(!again.probe(record.as_bytes(), &mut NewShape::default()));
    let decoder = JsonDecoder::new(Arc::new(evolved.clone()), JsonOptions::default()).expect("decoder");
    let out = decoder.decode([Some(record.as_bytes())]).expect("decode");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let n = out.batch.column_by_name("n").expect("n");
    assert_eq!(n.as_primitive::<Int64Type>().value(0), 3_000_000_000);
    assert!(out.batch.column_by_name("flag").expect("flag").is_valid(0));
}

#[test]
fn registry_framed_json_schema_records_evolve_and_decode_like_plain_json() {
    let v2 = r#"{"type": "object", "required": ["id"], "properties": {
        "id": {"type": "integer"}, "n": {"type": "integer"}, "score": {"type": ["null", "number"]},
        "user": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}}}"#;
    let source = crate::decode::SourceSchema::json_schema(v2).expect("a JSON Schema");
    let table = table();
    let options = EvolveOptions { keep_columns: vec!["_offset".into()], ..Default::default() };
    let fields = source.fields().expect("fields");
    let evolution = evolve(&table, table.highest_field_id(), &FieldIds::new(), &fields, &options).expect("evolves");
    let evolved = evolution.schema.expect("a change");
    assert_eq!(
        *evolved.field_by_name("n").expect("n").field_type,
        Type::Primitive(PrimitiveType::Long),
        "integer widens int"
    );
    assert!(evolved.field_by_name("score").is_some() && evolved.field_by_name("user.age").is_some());
    assert!(evolved.field_by_name("items").is_some(), "a column the JSON Schema lacks is kept");

    // A record framed by the registry serializer (magic byte 0, schema id 7) decodes as JSON.
    let mut framed = vec![0, 0, 0, 0, 7];
    framed.extend_from_slice(br#"{"id": 1, "n": 3000000000, "score": 2.5, "user": {"age": 4}}"#);
    let decoder = JsonDecoder::new(Arc::new(evolved.clone()), JsonOptions::default()).expect("decoder");
    let out = decoder.decode([Some(framed.as_slice())]).expect("decode");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.batch.column_by_name("n").expect("n").as_primitive::<Int64Type>().value(0), 3_000_000_000);
    let probe = ShapeProbe::new(evolved.as_struct(), &[]);
    assert!(!probe.probe(&framed, &mut NewShape::default()), "the probe reads past the frame too");
}

#[test]
fn field_text_reads_one_top_level_scalar() {
    let text = |payload: &[u8]| field_text(payload, "kind");
    assert_eq!(text(br#"{"a": {"kind": "inner"}, "kind": "click", "b": [1]}"#), Some("click".into()));
    assert_eq!(text(br#"{"k\u0069nd": "escaped key"}"#), Some("escaped key".into()));
    assert_eq!(text(br#"{"kind": 7}"#), Some("7".into()));
    assert_eq!(text(br#"{"kind": true}"#), Some("true".into()));
    assert_eq!(text(b"\x00\x00\x00\x00\x07{\"kind\": \"framed\"}"), Some("framed".into()));
    for nothing in [&br#"{"kind": null}"#[..], br#"{"kind": {"x": 1}}"#, br#"{"other": 1}"#, b"[1]", b"{bad"] {
        assert_eq!(text(nothing), None, "{}", String::from_utf8_lossy(nothing));
    }
}
