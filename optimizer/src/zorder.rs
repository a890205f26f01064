//! Z-order keys: the bits of several columns interleaved, so rows close in every one of them
//! sort close together and each output file covers a small range of each column (Spark's
//! `zorder(a, b)`). Each value is first mapped to 64 bits that keep its order (numbers, dates,
//! timestamps; strings and binary by their first 8 bytes; nulls lowest), then stretched over
//! the run's range, so a column whose values differ only in their low bits (ids 0..1000 next
//! to microsecond timestamps) still gets its share of the key.

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Float64Type, Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::DataType;

use crate::{Error, Result};

/// Columns z-ordered together at most.
pub const MAX_COLUMNS: usize = 8;

/// The z-order of some top-level columns of a batch.
#[derive(Debug, Clone)]
pub struct ZOrder {
    /// Column indexes in the batch.
    columns: Vec<usize>,
}

impl ZOrder {
    /// The z-order of `names` in batches of `schema`; every column must be a number, date,
    /// timestamp, time, boolean, string or binary.
    pub fn new(schema: &arrow_schema::Schema, names: &[String]) -> Result<ZOrder> {
        if names.len() < 2 || names.len() > MAX_COLUMNS {
            return Err(Error::Config(format!(
                "z-order needs 2 to {MAX_COLUMNS} columns, got {}: {names:?} (one column: use a sort order)",
                names.len()
            )));
        }
        let mut columns = Vec::new();
        for name in names {
            let index = schema.index_of(name).map_err(|_| {
                let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                Error::Config(format!("z-order column {name:?} is not a top-level column; the table has {known:?}"))
            })?;
            let data_type = schema.field(index).data_type();
            if !orderable(data_type) {
                return Err(Error::Config(format!(
                    "z-order column {name:?} is {data_type}: only numbers, dates, timestamps, times, booleans, \
                     strings and binary can be z-ordered"
                )));
            }
            columns.push(index);
        }
        Ok(ZOrder { columns })
    }

    /// `batch`'s rows in z-order.
    pub fn sort(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        let values: Vec<Vec<u64>> =
            self.columns.iter().map(|i| ordered_bits(batch.column(*i)).map(scaled)).collect::<Result<_>>()?;
        let width = 8 * values.len();
        let mut keys = vec![0u8; rows * width];
        let mut row_values = vec![0u64; values.len()];
        for (row, key) in keys.chunks_exact_mut(width).enumerate() {
            for (value, column) in row_values.iter_mut().zip(&values) {
                *value = column[row];
            }
            interleave(&row_values, key);
        }
        let mut order: Vec<u32> = (0..rows as u32).collect();
        order.sort_by(|a, b| {
            let key = |i: u32| &keys[i as usize * width..(i as usize + 1) * width];
            key(*a).cmp(key(*b))
        });
        arrow_select::take::take_record_batch(batch, &UInt32Array::from(order))
            .map_err(|e| Error::Config(format!("z-ordering compaction output: {e}")))
    }
}

fn orderable(data_type: &DataType) -> bool {
    data_type.is_integer()
        || data_type.is_floating()
        || matches!(
            data_type,
            DataType::Boolean
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Decimal128(..)
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
        )
}

/// Each value as 64 bits in the value's order (unsigned compare); nulls 0.
fn ordered_bits(array: &ArrayRef) -> Result<Vec<u64>> {
    let failed = |e: arrow_schema::ArrowError| Error::Config(format!("z-order key: {e}"));
    let data_type = array.data_type();
    let bits: Vec<Option<u64>> = if data_type.is_unsigned_integer() {
        let values = arrow_cast::cast(array, &DataType::UInt64).map_err(failed)?;
        values.as_primitive::<UInt64Type>().iter().collect()
    } else if data_type.is_floating() {
        let values = arrow_cast::cast(array, &DataType::Float64).map_err(failed)?;
        values.as_primitive::<Float64Type>().iter().map(|v| v.map(float_bits)).collect()
    } else if let DataType::Decimal128(..) = data_type {
        let values = array.as_primitive::<Decimal128Type>();
        values.iter().map(|v| v.map(|v| signed_bits(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64))).collect()
    } else if matches!(data_type, DataType::Boolean) {
        array.as_boolean().iter().map(|v| v.map(u64::from)).collect()
    } else if matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        let values = arrow_cast::cast(array, &DataType::Binary).map_err(failed)?;
        values.as_binary::<i32>().iter().map(|v| v.map(prefix_bits)).collect()
    } else if matches!(data_type, DataType::Binary | DataType::LargeBinary | DataType::BinaryView) {
        let values = arrow_cast::cast(array, &DataType::Binary).map_err(failed)?;
        values.as_binary::<i32>().iter().map(|v| v.map(prefix_bits)).collect()
    } else if let DataType::FixedSizeBinary(_) = data_type {
        array.as_fixed_size_binary().iter().map(|v| v.map(prefix_bits)).collect()
    } else {
        // Integers, dates, times and timestamps: their 64-bit integer value.
        let values = match data_type {
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Time32(_) => {
                let int = arrow_cast::cast(array, &DataType::Int64);
                int.or_else(|_| {
                    let step = match data_type {
                        DataType::Date32 | DataType::Time32(_) => DataType::Int32,
                        _ => DataType::Int64,
                    };
                    arrow_cast::cast(&arrow_cast::cast(array, &step)?, &DataType::Int64)
                })
                .map_err(failed)?
            }
            _ => arrow_cast::cast(array, &DataType::Int64).map_err(failed)?,
        };
        values.as_primitive::<Int64Type>().iter().map(|v| v.map(signed_bits)).collect()
    };
    // Nulls lowest: every value is moved up by one so none collides with them.
    Ok(bits.into_iter().map(|v| v.map_or(0, |v| v.saturating_add(1))).collect())
}

fn signed_bits(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

fn float_bits(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 { !bits } else { bits | (1 << 63) }
}

/// The first 8 bytes, big-endian, zero-padded: byte order is string order.
fn prefix_bits(bytes: &[u8]) -> u64 {
    let mut prefix = [0u8; 8];
    let n = bytes.len().min(8);
    prefix[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(prefix)
}

/// The values stretched linearly over the whole 64-bit range: each column then weighs the same
/// in the interleaved key, whatever its own range, and its first bit splits it in halves.
fn scaled(mut values: Vec<u64>) -> Vec<u64> {
    let (Some(min), Some(max)) = (values.iter().min().copied(), values.iter().max().copied()) else {
        return values;
    };
    let range = u128::from(max - min).max(1);
    for v in &mut values {
        *v = (u128::from(*v - min) * u128::from(u64::MAX) / range) as u64;
    }
    values
}

/// Writes the bits of `values` interleaved, most significant first, into `key`
/// (8 bytes per value).
fn interleave(values: &[u64], key: &mut [u8]) {
    let n = values.len();
    for bit in 0..64 {
        for (c, value) in values.iter().enumerate() {
            if (value >> (63 - bit)) & 1 == 1 {
                let position = bit * n + c;
                key[position / 8] |= 0x80 >> (position % 8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    #[test]
    fn value_bits_keep_the_value_order() {
        let mut ints = vec![i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        ints.sort_by_key(|v| signed_bits(*v));
        assert_eq!(ints, vec![i64::MIN, -5, -1, 0, 1, 7, i64::MAX]);
        let floats = [f64::NEG_INFINITY, -2.5, -0.0, 0.0, 1e-9, 3.0, f64::INFINITY];
        assert!(floats.windows(2).all(|w| float_bits(w[0]) <= float_bits(w[1])));
        assert!(prefix_bits(b"ab") < prefix_bits(b"abc") && prefix_bits(b"abc") < prefix_bits(b"b"));
        assert_eq!(scaled(vec![10, 12, 11]), vec![0, u64::MAX, u64::MAX / 2], "the range fills all the bits");
    }

    #[test]
    fn interleaving_alternates_the_bits_of_each_column() {
        let mut key = [0u8; 16];
        interleave(&[u64::MAX, 0], &mut key);
        assert!(key.iter().all(|b| *b == 0b1010_1010));
    }

    /// A 64×64 grid (ids by minutes) in shuffled order comes out so that each quarter of the rows is one
    /// quadrant of the grid: a range on either column touches half the quarters, not all.
    #[test]
    fn rows_close_in_both_columns_sort_together() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("y", DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("+00:00".into())), true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let cells: Vec<(i64, i64)> = (0..64 * 64).map(|i| ((i * 37 % 4096) % 64, (i * 37 % 4096) / 64)).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(cells.iter().map(|c| c.0).collect::<Vec<_>>())),
            Arc::new(
                TimestampMicrosecondArray::from(
                    cells.iter().map(|c| 1_793_491_200_000_000 + c.1 * 60_000_000).collect::<Vec<_>>(),
                )
                .with_timezone("+00:00"),
            ),
            Arc::new(StringArray::from(vec![Some("ü"); cells.len()])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        let names = vec!["x".to_string(), "y".to_string()];
        let sorted = ZOrder::new(&schema, &names).expect("z-order").sort(&batch).expect("sort");
        assert_eq!(sorted.num_rows(), 4096);
        let x = sorted.column(0).as_primitive::<Int64Type>();
        let y = sorted.column(1).as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        for quarter in 0..4 {
            let rows = quarter * 1024..(quarter + 1) * 1024;
            let xs: Vec<i64> = rows.clone().map(|r| x.value(r)).collect();
            let ys: Vec<i64> = rows.map(|r| y.value(r)).collect();
            let span = |v: &[i64]| v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0);
            assert_eq!((span(&xs), span(&ys)), (31, 31 * 60_000_000), "quarter {quarter} is one quadrant");
        }
        let e = ZOrder::new(&schema, &["x".to_string()]).expect_err("one column");
        assert!(e.to_string().contains("2 to 8 columns"), "{e}");
        let e = ZOrder::new(&schema, &["x".to_string(), "nope".to_string()]).expect_err("unknown");
        assert!(e.to_string().contains("\"name\""), "{e}");
    }
}
