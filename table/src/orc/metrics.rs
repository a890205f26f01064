//! A data file's Iceberg metrics, from the Arrow batches written to it: value, null and NaN
//! counts and lower/upper bounds per column. orc-rust writes no statistics, and readers prune
//! files by these bounds, so they must hold for every row: a bound that is too tight loses rows
//! from filtered queries.
//!
//! Strings and binaries keep bounds of at most 16 characters/bytes (Iceberg's default metrics
//! mode, `truncate(16)`): the lower bound is a prefix, the upper one a prefix with its last
//! character incremented, so both still bound every value.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type, Time64MicrosecondType,
    TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, make_array};
use arrow_buffer::NullBuffer;
use arrow_schema::DataType;
use iceberg::spec::{Datum, NestedFieldRef, PrimitiveType, Schema, Type};

const TRUNCATE: usize = 16;

/// Bounds of one column, in Iceberg's single-value order.
#[derive(Debug, Clone, PartialEq)]
enum Bounds {
    Bool(bool, bool),
    Int(i32, i32),
    Long(i64, i64),
    Float(f32, f32),
    Double(f64, f64),
    Decimal(i128, i128),
    Str(String, String),
    Bytes(Vec<u8>, Vec<u8>),
}

#[derive(Debug, Default)]
struct ColumnMetrics {
    values: u64,
    nulls: u64,
    nans: u64,
    bounds: Option<Bounds>,
}

/// Metrics of one data file's primitive fields: top-level ones and those inside structs (at any
/// depth). Fields inside lists and maps get none, as from Iceberg's Java writers: readers then
/// never prune by them.
#[derive(Debug)]
pub(super) struct FileMetrics {
    columns: Vec<MetricColumn>,
}

#[derive(Debug)]
struct MetricColumn {
    /// Top-level column index, then struct child indexes down to the field.
    path: Vec<usize>,
    id: i32,
    ty: PrimitiveType,
    metrics: ColumnMetrics,
}

/// What goes into the data file entry.
pub(super) struct Metrics {
    pub value_counts: HashMap<i32, u64>,
    pub null_value_counts: HashMap<i32, u64>,
    pub nan_value_counts: HashMap<i32, u64>,
    pub lower_bounds: HashMap<i32, Datum>,
    pub upper_bounds: HashMap<i32, Datum>,
}

/// Min and max of the non-null values (NaN excluded).
fn min_max<T: PartialOrd + Copy>(values: impl Iterator<Item = Option<T>>) -> Option<(T, T)> {
    let mut out: Option<(T, T)> = None;
    for v in values.flatten() {
        #[allow(clippy::eq_op)]
        if v != v {
            continue; // NaN
        }
        out = Some(match out {
            None => (v, v),
            Some(bounds) => wider(bounds, (v, v)),
        });
    }
    out
}

fn wider<T: PartialOrd>((lo, hi): (T, T), (l, h): (T, T)) -> (T, T) {
    (if l < lo { l } else { lo }, if h > hi { h } else { hi })
}

impl FileMetrics {
    /// Metrics of top-level columns (`None`: a column that gets none).
    #[cfg(test)]
    pub fn new(columns: impl IntoIterator<Item = Option<(i32, PrimitiveType)>>) -> Self {
        let columns = columns
            .into_iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|(id, ty)| MetricColumn { path: vec![i], id, ty, metrics: Default::default() }))
            .collect();
        FileMetrics { columns }
    }

    /// Metrics of every primitive field of `schema` outside lists and maps.
    pub fn for_schema(schema: &Schema) -> Self {
        fn walk(fields: &[NestedFieldRef], path: &mut Vec<usize>, out: &mut Vec<MetricColumn>) {
            for (i, field) in fields.iter().enumerate() {
                path.push(i);
                match field.field_type.as_ref() {
                    Type::Primitive(ty) => out.push(MetricColumn {
                        path: path.clone(),
                        id: field.id,
                        ty: ty.clone(),
                        metrics: ColumnMetrics::default(),
                    }),
                    Type::Struct(strukt) => walk(strukt.fields(), path, out),
                    Type::List(_) | Type::Map(_) => {}
                }
                path.pop();
            }
        }
        let mut columns = Vec::new();
        walk(schema.as_struct().fields(), &mut Vec::new(), &mut columns);
        FileMetrics { columns }
    }

    /// Adds a batch's columns (in the table's Arrow types, same order as the schema).
    pub fn update(&mut self, arrays: &[ArrayRef]) {
        for column in &mut self.columns {
            let Some(array) = field_values(arrays, &column.path) else { continue };
            let m = &mut column.metrics;
            m.values += array.len() as u64;
            m.nulls += array.null_count() as u64;
            let batch = match array.data_type() {
                DataType::Boolean => min_max(array.as_boolean().iter()).map(|(l, h)| Bounds::Bool(l, h)),
                DataType::Int32 => min_max(array.as_primitive::<Int32Type>().iter()).map(|(l, h)| Bounds::Int(l, h)),
                DataType::Date32 => min_max(array.as_primitive::<Date32Type>().iter()).map(|(l, h)| Bounds::Int(l, h)),
                DataType::Int64 => min_max(array.as_primitive::<Int64Type>().iter()).map(|(l, h)| Bounds::Long(l, h)),
                DataType::Time64(_) => {
                    min_max(array.as_primitive::<Time64MicrosecondType>().iter()).map(|(l, h)| Bounds::Long(l, h))
                }
                DataType::Timestamp(_, _) => {
                    min_max(array.as_primitive::<TimestampMicrosecondType>().iter()).map(|(l, h)| Bounds::Long(l, h))
                }
                DataType::Decimal128(_, _) => {
                    min_max(array.as_primitive::<Decimal128Type>().iter()).map(|(l, h)| Bounds::Decimal(l, h))
                }
                DataType::Float32 => {
                    let values = array.as_primitive::<Float32Type>();
                    m.nans += values.iter().flatten().filter(|v| v.is_nan()).count() as u64;
                    min_max(values.iter()).map(|(l, h)| Bounds::Float(l, h))
                }
                DataType::Float64 => {
                    let values = array.as_primitive::<Float64Type>();
                    m.nans += values.iter().flatten().filter(|v| v.is_nan()).count() as u64;
                    min_max(values.iter()).map(|(l, h)| Bounds::Double(l, h))
                }
                DataType::Utf8 => {
                    min_max(array.as_string::<i32>().iter()).map(|(l, h)| Bounds::Str(l.to_string(), h.to_string()))
                }
                DataType::LargeUtf8 => {
                    min_max(array.as_string::<i64>().iter()).map(|(l, h)| Bounds::Str(l.to_string(), h.to_string()))
                }
                DataType::Binary => {
                    min_max(array.as_binary::<i32>().iter()).map(|(l, h)| Bounds::Bytes(l.to_vec(), h.to_vec()))
                }
                DataType::LargeBinary => {
                    min_max(array.as_binary::<i64>().iter()).map(|(l, h)| Bounds::Bytes(l.to_vec(), h.to_vec()))
                }
                DataType::FixedSizeBinary(_) => {
                    min_max(array.as_fixed_size_binary().iter()).map(|(l, h)| Bounds::Bytes(l.to_vec(), h.to_vec()))
                }
                // The layout admits no other type; without bounds a file is only never pruned.
                _ => None,
            };
            m.bounds = match (m.bounds.take(), batch) {
                (None, b) | (b, None) => b,
                (Some(old), Some(new)) => Some(merge_bounds(old, new)),
            };
        }
    }

    pub fn finish(self) -> Metrics {
        let mut out = Metrics {
            value_counts: HashMap::new(),
            null_value_counts: HashMap::new(),
            nan_value_counts: HashMap::new(),
            lower_bounds: HashMap::new(),
            upper_bounds: HashMap::new(),
        };
        for MetricColumn { id, ty, metrics: m, .. } in self.columns {
            out.value_counts.insert(id, m.values);
            out.null_value_counts.insert(id, m.nulls);
            if matches!(ty, PrimitiveType::Float | PrimitiveType::Double) {
                out.nan_value_counts.insert(id, m.nans);
            }
            let Some(bounds) = m.bounds else { continue };
            let (lower, upper) = bound_bytes(bounds, &ty);
            if let Some(d) = lower.and_then(|b| Datum::try_from_bytes(&b, ty.clone()).ok()) {
                out.lower_bounds.insert(id, d);
            }
            if let Some(d) = upper.and_then(|b| Datum::try_from_bytes(&b, ty.clone()).ok()) {
                out.upper_bounds.insert(id, d);
            }
        }
        out
    }
}

/// The values of the field at `path`: a field inside a struct is null where the struct is.
fn field_values(arrays: &[ArrayRef], path: &[usize]) -> Option<ArrayRef> {
    let (first, rest) = path.split_first()?;
    let mut array = Arc::clone(arrays.get(*first)?);
    for index in rest {
        let strukt = array.as_struct_opt()?;
        let child = strukt.columns().get(*index)?;
        let nulls = NullBuffer::union(strukt.nulls(), child.nulls());
        array = make_array(child.to_data().into_builder().nulls(nulls).build().ok()?);
    }
    Some(array)
}

fn merge_bounds(old: Bounds, new: Bounds) -> Bounds {
    use Bounds::*;
    match (old, new) {
        (Bool(a, b), Bool(c, d)) => {
            let (l, h) = wider((a, b), (c, d));
            Bool(l, h)
        }
        (Int(a, b), Int(c, d)) => {
            let (l, h) = wider((a, b), (c, d));
            Int(l, h)
        }
        (Long(a, b), Long(c, d)) => {
            let (l, h) = wider((a, b), (c, d));
            Long(l, h)
        }
        (Float(a, b), Float(c, d)) => {
            let (l, h) = wider((a, b), (c, d));
            Float(l, h)
        }
        (Double(a, b), Double(c, d)) => {
            let (l, h) = wider((a, b), (c, d));
            Double(l, h)
        }
        (Decimal(a, b), Decimal(c, d)) => {
            let (l, h) = wider((a, b), (c, d));
            Decimal(l, h)
        }
        (Str(a, b), Str(c, d)) => {
            let (l, h) = wider((a, b), (c, d));
            Str(l, h)
        }
        (Bytes(a, b), Bytes(c, d)) => {
            let (l, h) = wider((a, b), (c, d));
            Bytes(l, h)
        }
        // One column has one type.
        (old, _) => old,
    }
}

/// Lower and upper bound in Iceberg's single-value serialization (upper `None` when no
/// truncated upper bound exists).
fn bound_bytes(bounds: Bounds, ty: &PrimitiveType) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    match bounds {
        Bounds::Bool(l, h) => (Some(vec![u8::from(l)]), Some(vec![u8::from(h)])),
        Bounds::Int(l, h) => (Some(l.to_le_bytes().to_vec()), Some(h.to_le_bytes().to_vec())),
        Bounds::Long(l, h) => (Some(l.to_le_bytes().to_vec()), Some(h.to_le_bytes().to_vec())),
        Bounds::Float(l, h) => (Some(l.to_le_bytes().to_vec()), Some(h.to_le_bytes().to_vec())),
        Bounds::Double(l, h) => (Some(l.to_le_bytes().to_vec()), Some(h.to_le_bytes().to_vec())),
        Bounds::Decimal(l, h) => (Some(decimal_bytes(l)), Some(decimal_bytes(h))),
        Bounds::Str(l, h) => {
            (Some(truncate_str_lower(&l).into_bytes()), truncate_str_upper(&h).map(String::into_bytes))
        }
        // Uuids and fixed values have a fixed length: kept whole.
        Bounds::Bytes(l, h) if !matches!(ty, PrimitiveType::Binary) => (Some(l), Some(h)),
        Bounds::Bytes(l, h) => (Some(l[..l.len().min(TRUNCATE)].to_vec()), truncate_bytes_upper(&h)),
    }
}

/// An unscaled decimal as Iceberg stores it: two's-complement big-endian, fewest bytes.
fn decimal_bytes(value: i128) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    // Drop leading bytes that only repeat the sign of the next one.
    let mut start = 0;
    while start < 15 {
        let (byte, next) = (bytes[start], bytes[start + 1]);
        if (byte == 0x00 && next & 0x80 == 0) || (byte == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

fn truncate_str_lower(s: &str) -> String {
    s.chars().take(TRUNCATE).collect()
}

/// The shortest string of at most 16 characters that is ≥ every string with `s`'s prefix.
fn truncate_str_upper(s: &str) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    if chars.len() <= TRUNCATE {
        return Some(s.to_string());
    }
    chars.truncate(TRUNCATE);
    while let Some(last) = chars.pop() {
        // The next code point, skipping the surrogate gap.
        let next = (u32::from(last) + 1..=0x10FFFF).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn truncate_bytes_upper(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() <= TRUNCATE {
        return Some(b.to_vec());
    }
    let mut out = b[..TRUNCATE].to_vec();
    while let Some(last) = out.pop() {
        if last < u8::MAX {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{BooleanArray, Float64Array, Int32Array, LargeBinaryArray, StringArray};

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
        let mut m = FileMetrics::for_schema(&schema);
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
        assert_eq!(
            (out.lower_bounds[&3].clone(), out.upper_bounds[&3].clone()),
            (Datum::double(-2.0), Datum::double(1.5))
        );
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
        assert_eq!(truncate_str_lower(long), "abcdefghijklmnop");
        assert_eq!(truncate_str_upper(long).as_deref(), Some("abcdefghijklmnoq"));
        assert!(truncate_str_upper(long).expect("upper").as_str() > long);
        let top = "\u{10FFFF}".repeat(17);
        assert_eq!(truncate_str_upper(&top), None, "no string of 16 characters is above it");
        let mut m = FileMetrics::new([Some((1, PrimitiveType::Binary))]);
        let value = [vec![0xFFu8; 15], vec![0x01, 0x02]].concat();
        m.update(&[Arc::new(LargeBinaryArray::from(vec![Some(value.as_slice())]))]);
        let out = m.finish();
        assert_eq!(out.lower_bounds[&1], Datum::binary(value[..16].to_vec()));
        assert_eq!(out.upper_bounds[&1], Datum::binary([vec![0xFFu8; 15], vec![0x02]].concat()));
    }
}
