use std::sync::Arc;

use arrow_array::{BooleanArray, Float64Array, Int32Array, LargeBinaryArray, StringArray};

use super::bounds::{decimal_bytes, truncate_str_lower, truncate_str_upper};
use super::*;

#[test]
fn counts_and_bounds_span_every_batch_and_skip_nulls_and_nans() {
    let mut m = FileMetrics::new([
        Some((1, PrimitiveType::Int)),
        Some((2, PrimitiveType::Double)),
        Some((3, PrimitiveType::String)),
        Some((4, PrimitiveType::Boolean)),
    ]);
    m.update(&[
        Arc::new(Int32Array::from(vec![Some(5), None, Some(-3)])),
        Arc::new(Float64Array::from(vec![Some(f64::NAN), Some(2.5), None])),
        Arc::new(StringArray::from(vec![Some("m"), Some("b"), None])),
        Arc::new(BooleanArray::from(vec![Some(true), None, Some(true)])),
    ]);
    m.update(&[
        Arc::new(Int32Array::from(vec![Some(9)])),
        Arc::new(Float64Array::from(vec![Some(-1.0)])),
        Arc::new(StringArray::from(vec![Some("z")])),
        Arc::new(BooleanArray::from(vec![Some(false)])),
    ]);
    let out = m.finish();
    assert_eq!(out.value_counts[&1], 4);
    assert_eq!(out.null_value_counts[&1], 1);
    assert_eq!(out.lower_bounds[&1], Datum::int(-3));
    assert_eq!(out.upper_bounds[&1], Datum::int(9));
    assert_eq!(out.nan_value_counts[&2], 1);
    assert!(!out.nan_value_counts.contains_key(&1));
    assert_eq!(out.lower_bounds[&2], Datum::double(-1.0));
    assert_eq!(out.upper_bounds[&2], Datum::double(2.5));
    assert_eq!(out.lower_bounds[&3], Datum::string("b"));
    assert_eq!(out.upper_bounds[&3], Datum::string("z"));
    assert_eq!(out.lower_bounds[&4], Datum::bool(false));
    assert_eq!(out.upper_bounds[&4], Datum::bool(true));
}

#[test]
fn fields_inside_structs_get_metrics_null_where_their_struct_is_and_lists_get_none() {
    use arrow_array::{ListArray, StructArray};
    use arrow_buffer::NullBuffer;
    use arrow_schema::Field;
    use iceberg::spec::{ListType, NestedField, StructType};

    let inner =
        StructType::new(vec![Arc::new(NestedField::optional(4, "city", Type::Primitive(PrimitiveType::String)))]);
    let schema = Schema::builder()
        .with_fields(vec![
            Arc::new(NestedField::required(1, "id", Type::Primitive(PrimitiveType::Int))),
            Arc::new(NestedField::optional(
                2,
                "geo",
                Type::Struct(StructType::new(vec![
                    Arc::new(NestedField::optional(3, "lat", Type::Primitive(PrimitiveType::Double))),
                    Arc::new(NestedField::optional(5, "place", Type::Struct(inner))),
                ])),
            )),
            Arc::new(NestedField::optional(
                6,
                "tags",
                Type::List(ListType::new(Arc::new(NestedField::optional(
                    7,
                    "element",
                    Type::Primitive(PrimitiveType::String),
                )))),
            )),
        ])
        .build()
        .expect("schema");
    let mut m = FileMetrics::for_schema(&schema, &MetricsConfig::default());
    // Row 1's geo is null: its children hold values (50.0, "hidden") that must not count.
    let city = StringArray::from(vec![Some("Oslo"), Some("hidden"), None]);
    let place =
        StructArray::from(vec![(Arc::new(Field::new("city", DataType::Utf8, true)), Arc::new(city) as ArrayRef)]);
    let lat = Float64Array::from(vec![Some(1.5), Some(50.0), Some(-2.0)]);
    let geo = StructArray::try_new(
        vec![
            Arc::new(Field::new("lat", DataType::Float64, true)),
            Arc::new(Field::new("place", place.data_type().clone(), true)),
        ]
        .into(),
        vec![Arc::new(lat), Arc::new(place)],
        Some(NullBuffer::from(vec![true, false, true])),
    )
    .expect("geo");
    let element = Arc::new(Field::new("element", DataType::Utf8, true));
    let tags = ListArray::new(
        element,
        arrow_buffer::OffsetBuffer::from_lengths([2, 0, 0]),
        Arc::new(StringArray::from(vec!["a", "b"])),
        Some(NullBuffer::from(vec![true, false, false])),
    );
    m.update(&[Arc::new(Int32Array::from(vec![1, 2, 3])), Arc::new(geo), Arc::new(tags)]);
    let out = m.finish();
    assert_eq!((out.value_counts[&3], out.null_value_counts[&3]), (3, 1));
    assert_eq!((out.lower_bounds[&3].clone(), out.upper_bounds[&3].clone()), (Datum::double(-2.0), Datum::double(1.5)));
    assert_eq!((out.value_counts[&4], out.null_value_counts[&4]), (3, 2));
    assert_eq!(
        (out.lower_bounds[&4].clone(), out.upper_bounds[&4].clone()),
        (Datum::string("Oslo"), Datum::string("Oslo"))
    );
    assert!(!out.value_counts.contains_key(&7) && !out.lower_bounds.contains_key(&7), "no metrics inside lists");
    assert_eq!(out.value_counts.len(), 3);
}

#[test]
fn decimal_bounds_use_the_fewest_bytes() {
    assert_eq!(decimal_bytes(0), [0x00]);
    assert_eq!(decimal_bytes(127), [0x7f]);
    assert_eq!(decimal_bytes(128), [0x00, 0x80]);
    assert_eq!(decimal_bytes(-1), [0xff]);
    assert_eq!(decimal_bytes(-129), [0xff, 0x7f]);
    let ty = PrimitiveType::Decimal { precision: 9, scale: 2 };
    let mut m = FileMetrics::new([Some((1, ty))]);
    let values = arrow_array::Decimal128Array::from(vec![Some(-12_345), None, Some(99_999)])
        .with_precision_and_scale(9, 2)
        .expect("decimal");
    m.update(&[Arc::new(values)]);
    let out = m.finish();
    assert_eq!(out.lower_bounds[&1].to_string(), "-123.45");
    assert_eq!(out.upper_bounds[&1].to_string(), "999.99");
}

#[test]
fn all_null_columns_have_counts_but_no_bounds() {
    let mut m = FileMetrics::new([Some((1, PrimitiveType::Int))]);
    m.update(&[Arc::new(Int32Array::from(vec![None, None]))]);
    let out = m.finish();
    assert_eq!((out.value_counts[&1], out.null_value_counts[&1]), (2, 2));
    assert!(out.lower_bounds.is_empty() && out.upper_bounds.is_empty());
}

#[test]
fn long_strings_and_binaries_get_truncated_bounds_that_still_bound() {
    let long = "abcdefghijklmnopqrstuvwxyz";
    assert_eq!(truncate_str_lower(long, 16), "abcdefghijklmnop");
    assert_eq!(truncate_str_upper(long, 16).as_deref(), Some("abcdefghijklmnoq"));
    assert!(truncate_str_upper(long, 16).expect("upper").as_str() > long);
    let top = "\u{10FFFF}".repeat(17);
    assert_eq!(truncate_str_upper(&top, 16), None, "no string of 16 characters is above it");
    let mut m = FileMetrics::new([Some((1, PrimitiveType::Binary))]);
    let value = [vec![0xFFu8; 15], vec![0x01, 0x02]].concat();
    m.update(&[Arc::new(LargeBinaryArray::from(vec![Some(value.as_slice())]))]);
    let out = m.finish();
    assert_eq!(out.lower_bounds[&1], Datum::binary(value[..16].to_vec()));
    assert_eq!(out.upper_bounds[&1], Datum::binary([vec![0xFFu8; 15], vec![0x02]].concat()));
}

/// Values longer than any truncation, spread over many batches (as over row groups): the
/// bounds hold the smallest and the largest, whichever batch they came in.
#[test]
fn long_values_in_any_batch_stay_inside_the_bounds() {
    let long = |c: char, n: usize| c.to_string().repeat(n);
    let mut m = FileMetrics::new([Some((1, PrimitiveType::String))]);
    let batches = [
        vec![Some("m".to_string()), None],
        vec![Some(format!("{}é/?#%", long('a', 100)))],
        vec![Some("n".to_string())],
        vec![Some(format!("{}\u{10FFFF}", long('z', 200)))],
    ];
    for batch in &batches {
        m.update(&[Arc::new(StringArray::from(batch.clone()))]);
    }
    let out = m.finish();
    let values: Vec<String> = batches.iter().flatten().flatten().cloned().collect();
    let text = |d: &Datum| match d.literal() {
        iceberg::spec::PrimitiveLiteral::String(s) => s.clone(),
        other => panic!("{other:?}"),
    };
    let (lower, upper) = (text(&out.lower_bounds[&1]), text(&out.upper_bounds[&1]));
    for v in &values {
        assert!(lower.as_str() <= v.as_str() && v.as_str() <= upper.as_str(), "{lower:?} <= {v:?} <= {upper:?}");
    }
    assert_eq!(out.lower_bounds[&1], Datum::string("a".repeat(16)));
    assert_eq!(out.upper_bounds[&1], Datum::string(format!("{}{{", "z".repeat(15))));
    assert_eq!((out.value_counts[&1], out.null_value_counts[&1]), (5, 1));
}

#[test]
fn modes_decide_counts_bounds_and_their_length() {
    use iceberg::spec::NestedField;
    let schema = Schema::builder()
        .with_fields(vec![
            Arc::new(NestedField::optional(1, "none", Type::Primitive(PrimitiveType::String))),
            Arc::new(NestedField::optional(2, "counts", Type::Primitive(PrimitiveType::String))),
            Arc::new(NestedField::optional(3, "short", Type::Primitive(PrimitiveType::String))),
            Arc::new(NestedField::optional(4, "full", Type::Primitive(PrimitiveType::String))),
            Arc::new(NestedField::optional(5, "default", Type::Primitive(PrimitiveType::String))),
        ])
        .build()
        .expect("schema");
    let props: HashMap<String, String> = [
        ("write.metadata.metrics.column.none", "none"),
        ("write.metadata.metrics.column.counts", "counts"),
        ("write.metadata.metrics.column.short", "truncate(2)"),
        ("write.metadata.metrics.column.full", "full"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = MetricsConfig::from_properties(&props).expect("config");
    let mut m = FileMetrics::for_schema(&schema, &config);
    let value = "x".repeat(40);
    let column = || Arc::new(StringArray::from(vec![Some(value.as_str()), None])) as ArrayRef;
    m.update(&[column(), column(), column(), column(), column()]);
    let out = m.finish();
    assert!(!out.value_counts.contains_key(&1) && !out.null_value_counts.contains_key(&1));
    assert!(!out.lower_bounds.contains_key(&1) && !out.upper_bounds.contains_key(&1));
    assert_eq!((out.value_counts[&2], out.null_value_counts[&2]), (2, 1));
    assert!(!out.lower_bounds.contains_key(&2) && !out.upper_bounds.contains_key(&2));
    assert_eq!(
        (out.lower_bounds[&3].clone(), out.upper_bounds[&3].clone()),
        (Datum::string("xx"), Datum::string("xy"))
    );
    assert_eq!(
        (out.lower_bounds[&4].clone(), out.upper_bounds[&4].clone()),
        (Datum::string(&value), Datum::string(&value))
    );
    assert_eq!(out.lower_bounds[&5], Datum::string("x".repeat(16)));
}

#[test]
fn zero_bounds_hold_both_signed_zeros() {
    let mut m = FileMetrics::new([Some((1, PrimitiveType::Double))]);
    m.update(&[Arc::new(Float64Array::from(vec![0.0, -0.0]))]);
    let out = m.finish();
    let bits = |d: &Datum| match d.literal() {
        iceberg::spec::PrimitiveLiteral::Double(v) => v.to_bits(),
        other => panic!("{other:?}"),
    };
    assert_eq!(bits(&out.lower_bounds[&1]), (-0.0f64).to_bits());
    assert_eq!(bits(&out.upper_bounds[&1]), 0.0f64.to_bits());
}
