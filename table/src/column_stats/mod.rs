//! A data file's column statistics (Iceberg calls them "metrics"; here that word means
//! Prometheus), computed from the Arrow batches written to it, for Parquet
//! and ORC alike: value, null and NaN counts and lower/upper bounds per column, as the table's
//! metrics modes ([`mode`]) ask. Readers prune files by these bounds, so they must hold for
//! every row: a bound that is too tight loses rows from every engine's filtered queries. That
//! is why they are not taken from Parquet's per-row-group statistics, which parquet-rs cuts to
//! 64 bytes and iceberg-rust then leaves out one row group at a time.
//!
//! Bounds of strings and binaries are cut to `truncate(N)` characters/bytes: the lower bound
//! is a prefix, the upper one a prefix with its last character incremented, so both still
//! bound every value ([`bounds`]).

mod bounds;
pub mod mode;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type, Time64MicrosecondType,
    TimestampMicrosecondType, TimestampNanosecondType,
};
use arrow_array::{Array, ArrayRef, make_array};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, TimeUnit};
use iceberg::spec::{DataFileBuilder, Datum, NestedFieldRef, PrimitiveType, Schema, Type};

use self::bounds::{Bounds, min_max};
pub use self::mode::{MetricsConfig, MetricsMode};

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
pub struct FileMetrics {
    columns: Vec<MetricColumn>,
}

#[derive(Debug)]
struct MetricColumn {
    /// Top-level column index, then struct child indexes down to the field.
    path: Vec<usize>,
    id: i32,
    ty: PrimitiveType,
    mode: MetricsMode,
    metrics: ColumnMetrics,
}

/// What goes into the data file entry.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Values per column id (nulls included).
    pub value_counts: HashMap<i32, u64>,
    /// Null values per column id.
    pub null_value_counts: HashMap<i32, u64>,
    /// NaN values per floating-point column id.
    pub nan_value_counts: HashMap<i32, u64>,
    /// Lower bounds per column id.
    pub lower_bounds: HashMap<i32, Datum>,
    /// Upper bounds per column id.
    pub upper_bounds: HashMap<i32, Datum>,
}

impl Metrics {
    /// Sets these metrics on a data file entry, replacing any it had.
    pub fn set_on(self, builder: &mut DataFileBuilder) {
        builder
            .value_counts(self.value_counts)
            .null_value_counts(self.null_value_counts)
            .nan_value_counts(self.nan_value_counts)
            .lower_bounds(self.lower_bounds)
            .upper_bounds(self.upper_bounds);
    }
}

impl FileMetrics {
    /// Metrics of top-level columns (`None`: a column that gets none), in `truncate(16)`.
    #[cfg(test)]
    fn new(columns: impl IntoIterator<Item = Option<(i32, PrimitiveType)>>) -> Self {
        let columns = columns
            .into_iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.map(|(id, ty)| MetricColumn {
                    path: vec![i],
                    id,
                    ty,
                    mode: MetricsMode::Truncate(mode::DEFAULT_TRUNCATE),
                    metrics: Default::default(),
                })
            })
            .collect();
        FileMetrics { columns }
    }

    /// Metrics of every primitive field of `schema` outside lists and maps, each in the mode
    /// `config` gives it (columns in mode `none` are left out).
    pub fn for_schema(schema: &Schema, config: &MetricsConfig) -> Self {
        struct Walk<'a> {
            config: &'a MetricsConfig,
            path: Vec<usize>,
            names: Vec<&'a str>,
            position: usize,
            out: Vec<MetricColumn>,
        }
        fn walk<'a>(fields: &'a [NestedFieldRef], w: &mut Walk<'a>) {
            for (i, field) in fields.iter().enumerate() {
                w.path.push(i);
                w.names.push(&field.name);
                match field.field_type.as_ref() {
                    Type::Primitive(ty) => {
                        let mode = w.config.mode(&w.names.join("."), w.position);
                        w.position += 1;
                        if mode.counts() {
                            w.out.push(MetricColumn {
                                path: w.path.clone(),
                                id: field.id,
                                ty: ty.clone(),
                                mode,
                                metrics: ColumnMetrics::default(),
                            });
                        }
                    }
                    Type::Struct(strukt) => walk(strukt.fields(), w),
                    Type::List(_) | Type::Map(_) => {}
                }
                w.path.pop();
                w.names.pop();
            }
        }
        let mut w = Walk { config, path: Vec::new(), names: Vec::new(), position: 0, out: Vec::new() };
        walk(schema.as_struct().fields(), &mut w);
        FileMetrics { columns: w.out }
    }

    /// Adds a batch's columns (in the table's Arrow types, same order as the schema).
    pub fn update(&mut self, arrays: &[ArrayRef]) {
        for column in &mut self.columns {
            let Some(array) = field_values(arrays, &column.path) else { continue };
            let m = &mut column.metrics;
            m.values += array.len() as u64;
            m.nulls += array.null_count() as u64;
            match array.data_type() {
                DataType::Float32 => {
                    m.nans += array.as_primitive::<Float32Type>().iter().flatten().filter(|v| v.is_nan()).count() as u64
                }
                DataType::Float64 => {
                    m.nans += array.as_primitive::<Float64Type>().iter().flatten().filter(|v| v.is_nan()).count() as u64
                }
                _ => {}
            }
            if column.mode.bounds().is_none() {
                continue;
            }
            m.bounds = match (m.bounds.take(), array_bounds(&array)) {
                (None, b) | (b, None) => b,
                (Some(old), Some(new)) => Some(old.merge(new)),
            };
        }
    }

    /// The metrics of everything observed so far.
    pub fn finish(self) -> Metrics {
        let mut out = Metrics::default();
        for MetricColumn { id, ty, mode, metrics: m, .. } in self.columns {
            out.value_counts.insert(id, m.values);
            out.null_value_counts.insert(id, m.nulls);
            if matches!(ty, PrimitiveType::Float | PrimitiveType::Double) {
                out.nan_value_counts.insert(id, m.nans);
            }
            let (Some(bounds), Some(truncate)) = (m.bounds, mode.bounds()) else { continue };
            let (lower, upper) = bounds.into_bytes(&ty, truncate);
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

/// Bounds of one array's values; `None` for a type with no bounds here (a file without
/// bounds is only never pruned).
fn array_bounds(array: &ArrayRef) -> Option<Bounds> {
    match array.data_type() {
        DataType::Boolean => min_max(array.as_boolean().iter()).map(|(l, h)| Bounds::Bool(l, h)),
        DataType::Int32 => min_max(array.as_primitive::<Int32Type>().iter()).map(|(l, h)| Bounds::Int(l, h)),
        DataType::Date32 => min_max(array.as_primitive::<Date32Type>().iter()).map(|(l, h)| Bounds::Int(l, h)),
        DataType::Int64 => min_max(array.as_primitive::<Int64Type>().iter()).map(|(l, h)| Bounds::Long(l, h)),
        DataType::Time64(TimeUnit::Microsecond) => {
            min_max(array.as_primitive::<Time64MicrosecondType>().iter()).map(|(l, h)| Bounds::Long(l, h))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            min_max(array.as_primitive::<TimestampMicrosecondType>().iter()).map(|(l, h)| Bounds::Long(l, h))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            min_max(array.as_primitive::<TimestampNanosecondType>().iter()).map(|(l, h)| Bounds::Long(l, h))
        }
        DataType::Decimal128(_, _) => {
            min_max(array.as_primitive::<Decimal128Type>().iter()).map(|(l, h)| Bounds::Decimal(l, h))
        }
        DataType::Float32 => min_max(array.as_primitive::<Float32Type>().iter()).map(|(l, h)| Bounds::Float(l, h)),
        DataType::Float64 => min_max(array.as_primitive::<Float64Type>().iter()).map(|(l, h)| Bounds::Double(l, h)),
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
        _ => None,
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
