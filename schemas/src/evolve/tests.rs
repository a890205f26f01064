use super::*;
use iceberg::spec::{NestedField, Type};

fn field(key: &str, name: &str, ty: PrimitiveType) -> SourceField {
    SourceField {
        key: key.into(),
        aliases: vec![],
        name: name.into(),
        ty: SourceType::Primitive(ty),
        required: false,
        doc: None,
    }
}

#[test]
fn a_table_without_a_mapping_is_matched_by_name_and_metadata_columns_stay_last() {
    let table = Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::optional(2, "name", Type::Primitive(PrimitiveType::String)).into(),
            NestedField::optional(3, "kafka_offset", Type::Primitive(PrimitiveType::Long)).into(),
        ])
        .build()
        .expect("schema");
    let source = vec![
        field("1", "id", PrimitiveType::Long),
        field("2", "name", PrimitiveType::String),
        field("9", "extra", PrimitiveType::Int),
    ];
    let options = EvolveOptions { keep_columns: vec!["kafka_offset".into()], ..Default::default() };
    let evolution = evolve(&table, 3, &FieldIds::new(), &source, &options).expect("ok");
    let schema = evolution.schema.expect("a column is added");
    let names: Vec<String> =
        schema.as_struct().fields().iter().map(|f| format!("{}#{}:{}", f.name, f.id, f.required)).collect();
    assert_eq!(names, vec!["id#1:false", "name#2:false", "extra#4:false", "kafka_offset#3:false"]);
    assert_eq!(evolution.field_ids, FieldIds::from([("1".into(), 1), ("2".into(), 2), ("9".into(), 4)]));
    assert_eq!(schema.schema_id(), table.schema_id() + 1);

    // The same source again: nothing to do.
    let again = evolve(&schema, 4, &evolution.field_ids, &source, &options).expect("ok");
    assert!(again.schema.is_none(), "{:?}", again.changes);
    // The property round-trips.
    let text = field_ids_to_property(&again.field_ids);
    let properties = HashMap::from([(FIELD_IDS_PROPERTY.to_string(), text)]);
    assert_eq!(field_ids_from_properties(&properties).expect("parses"), again.field_ids);
}

#[test]
fn new_ids_start_after_the_last_column_id_even_if_columns_were_dropped() {
    let table = Schema::builder()
        .with_fields(vec![NestedField::optional(1, "a", Type::Primitive(PrimitiveType::Int)).into()])
        .build()
        .expect("schema");
    let ids = FieldIds::from([("a".into(), 1)]);
    let source = vec![field("a", "a", PrimitiveType::Int), field("b", "b", PrimitiveType::Int)];
    let evolution = evolve(&table, 7, &ids, &source, &EvolveOptions::default()).expect("ok");
    assert_eq!(evolution.field_ids.get("b"), Some(&8));
}
