//! Our own ORC column encoders, for what orc-rust's writer cannot encode: timestamps (with and
//! without time zone), decimals, and structs, lists and maps (with every primitive inside
//! them). Their streams are spliced into the stripes orc-rust encodes (see `write.rs`).
//!
//! They use ORC's original run-length encodings (`DIRECT`, RLE v1), which every ORC reader
//! supports, and follow ORC Java's writer value for value, so readers treat them exactly as
//! Java-written columns:
//! - timestamp: DATA = seconds since 2015-01-01 00:00:00 UTC (signed RLE; the stripe's writer
//!   time zone is UTC), SECONDARY = nanoseconds with trailing zeros folded (unsigned RLE);
//! - decimal: DATA = unscaled values as zigzag varints, SECONDARY = each value's scale (signed RLE);
//! - struct: PRESENT only, children hold values where the struct is present; list and map:
//!   LENGTH of each present row, the child (or key and value) holds their entries in order.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Float32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, BooleanArray, UInt64Array};
use arrow_buffer::NullBuffer;
use arrow_schema::DataType;
use orc_rust::proto;

/// Seconds from the Unix epoch to ORC's, 2015-01-01 00:00:00 UTC.
const ORC_EPOCH_SECONDS: i64 = 1_420_070_400;

/// A column we encode ourselves (with its children, for nested types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OwnEncoder {
    Boolean,
    /// int, long, date (days) and time (microseconds): signed integer runs.
    Integer,
    Float,
    Double,
    /// string, binary, uuid and fixed: the bytes, and each value's length.
    Bytes,
    /// Microseconds since the Unix epoch (Iceberg `timestamp` and `timestamptz`).
    TimestampMicros,
    /// Unscaled values of a `decimal(p, s)`.
    Decimal {
        scale: u32,
    },
    Struct(Vec<OwnEncoder>),
    List(Box<OwnEncoder>),
    /// Key and value.
    Map(Box<OwnEncoder>, Box<OwnEncoder>),
}

/// The streams of one column in one stripe.
pub(super) struct ColumnStreams {
    pub streams: Vec<(proto::stream::Kind, Vec<u8>)>,
    pub encoding: proto::ColumnEncoding,
}

impl OwnEncoder {
    /// Encodes a stripe's values of one column (all its batches' arrays, in order): the
    /// column's streams, then its children's, in ORC's pre-order.
    pub fn encode(&self, arrays: &[&ArrayRef]) -> std::result::Result<Vec<ColumnStreams>, String> {
        let array = match arrays {
            [one] => Arc::clone(one),
            many => {
                let many: Vec<&dyn Array> = many.iter().map(|a| a.as_ref()).collect();
                arrow_select::concat::concat(&many).map_err(|e| e.to_string())?
            }
        };
        let mut out = Vec::new();
        self.encode_array(&array, &mut out)?;
        Ok(out)
    }

    fn encode_array(&self, array: &ArrayRef, out: &mut Vec<ColumnStreams>) -> std::result::Result<(), String> {
        use proto::stream::Kind;
        let mut streams = Vec::new();
        if array.null_count() > 0 {
            let present: Vec<bool> = (0..array.len()).map(|i| array.is_valid(i)).collect();
            streams.push((Kind::Present, boolean_rle(&present)));
        }
        let wrong = || format!("{self:?} cannot encode {}", array.data_type());
        let index = out.len();
        out.push(ColumnStreams { streams: Vec::new(), encoding: direct() });
        match self {
            OwnEncoder::Boolean => {
                let values: Vec<bool> = array.as_boolean_opt().ok_or_else(wrong)?.iter().flatten().collect();
                streams.push((Kind::Data, boolean_rle(&values)));
            }
            OwnEncoder::Integer => {
                let longs = arrow_cast::cast(array, &DataType::Int64).map_err(|e| e.to_string())?;
                let mut data = IntRle::new(true);
                longs.as_primitive::<Int64Type>().iter().flatten().for_each(|v| data.push(v));
                streams.push((Kind::Data, data.finish()));
            }
            OwnEncoder::Float => {
                let values = array.as_primitive_opt::<Float32Type>().ok_or_else(wrong)?;
                streams.push((Kind::Data, values.iter().flatten().flat_map(f32::to_le_bytes).collect()));
            }
            OwnEncoder::Double => {
                let values = array.as_primitive_opt::<Float64Type>().ok_or_else(wrong)?;
                streams.push((Kind::Data, values.iter().flatten().flat_map(f64::to_le_bytes).collect()));
            }
            OwnEncoder::Bytes => {
                let mut data = Vec::new();
                let mut lengths = IntRle::new(false);
                for value in byte_values(array).ok_or_else(wrong)?.into_iter().flatten() {
                    data.extend_from_slice(value);
                    lengths.push(value.len() as i64);
                }
                streams.push((Kind::Data, data));
                streams.push((Kind::Length, lengths.finish()));
            }
            OwnEncoder::TimestampMicros => {
                let values = array.as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(wrong)?;
                let (mut seconds, mut nanos) = (IntRle::new(true), IntRle::new(false));
                for micros in values.iter().flatten() {
                    let (secs, n) = java_seconds_and_nanos(micros);
                    seconds.push(secs - ORC_EPOCH_SECONDS);
                    nanos.push(format_nanos(n));
                }
                streams.push((Kind::Data, seconds.finish()));
                streams.push((Kind::Secondary, nanos.finish()));
            }
            OwnEncoder::Decimal { scale } => {
                let values = array.as_primitive_opt::<Decimal128Type>().ok_or_else(wrong)?;
                let (mut data, mut scales) = (Vec::new(), IntRle::new(true));
                for unscaled in values.iter().flatten() {
                    write_signed_varint(&mut data, unscaled);
                    scales.push(i64::from(*scale));
                }
                streams.push((Kind::Data, data));
                streams.push((Kind::Secondary, scales.finish()));
            }
            OwnEncoder::Struct(children) => {
                let strukt = array.as_struct_opt().ok_or_else(wrong)?;
                for (child, encoder) in strukt.columns().iter().zip(children) {
                    // A child holds values only where its struct is present.
                    encoder.encode_array(&present_only(child, strukt.nulls())?, out)?;
                }
            }
            OwnEncoder::List(element) => {
                let (offsets, values) = match array.data_type() {
                    DataType::List(_) => {
                        let list = array.as_list::<i32>();
                        (list.offsets().iter().map(|o| i64::from(*o)).collect::<Vec<_>>(), Arc::clone(list.values()))
                    }
                    DataType::LargeList(_) => {
                        let list = array.as_list::<i64>();
                        (list.offsets().to_vec(), Arc::clone(list.values()))
                    }
                    _ => return Err(wrong()),
                };
                let (lengths, values) = present_entries(array, &offsets, &values)?;
                streams.push((Kind::Length, lengths));
                element.encode_array(&values, out)?;
            }
            OwnEncoder::Map(key, value) => {
                let map = array.as_map_opt().ok_or_else(wrong)?;
                let offsets: Vec<i64> = map.offsets().iter().map(|o| i64::from(*o)).collect();
                let entries: ArrayRef = Arc::new(map.entries().clone());
                let (lengths, entries) = present_entries(array, &offsets, &entries)?;
                streams.push((Kind::Length, lengths));
                let entries = entries.as_struct();
                key.encode_array(entries.column(0), out)?;
                value.encode_array(entries.column(1), out)?;
            }
        }
        out[index].streams = streams;
        Ok(())
    }
}

fn direct() -> proto::ColumnEncoding {
    proto::ColumnEncoding { kind: Some(proto::column_encoding::Kind::Direct as i32), ..Default::default() }
}

/// The values of `child` at the rows its parent is present.
fn present_only(child: &ArrayRef, parent: Option<&NullBuffer>) -> std::result::Result<ArrayRef, String> {
    match parent {
        Some(nulls) if nulls.null_count() > 0 => {
            let keep = BooleanArray::new(nulls.inner().clone(), None);
            arrow_select::filter::filter(child, &keep).map_err(|e| e.to_string())
        }
        _ => Ok(Arc::clone(child)),
    }
}

/// The LENGTH stream of a list or map column and the entries of its present rows.
fn present_entries(
    array: &ArrayRef,
    offsets: &[i64],
    values: &ArrayRef,
) -> std::result::Result<(Vec<u8>, ArrayRef), String> {
    let mut lengths = IntRle::new(false);
    let mut indices: Vec<u64> = Vec::new();
    for row in 0..array.len() {
        if array.is_valid(row) {
            let (start, end) = (offsets[row], offsets[row + 1]);
            lengths.push(end - start);
            indices.extend(start as u64..end as u64);
        }
    }
    let first = offsets.first().copied().unwrap_or(0) as u64;
    let contiguous = indices.first().is_none_or(|i| *i == first)
        && indices.len() as u64 == offsets.last().copied().unwrap_or(0) as u64 - first;
    let entries = if contiguous {
        values.slice(first as usize, indices.len())
    } else {
        arrow_select::take::take(values, &UInt64Array::from(indices), None).map_err(|e| e.to_string())?
    };
    Ok((lengths.finish(), entries))
}

/// Each value of a string or binary array as bytes (`None` for other types).
fn byte_values(array: &ArrayRef) -> Option<Vec<Option<&[u8]>>> {
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().map(|v| v.map(str::as_bytes)).collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().map(|v| v.map(str::as_bytes)).collect(),
        DataType::Binary => array.as_binary::<i32>().iter().collect(),
        DataType::LargeBinary => array.as_binary::<i64>().iter().collect(),
        DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().iter().collect(),
        _ => return None,
    })
}

/// Seconds and nanoseconds as ORC Java's writer derives them from a `java.sql.Timestamp`:
/// whole seconds truncated toward zero from the millisecond time, nanoseconds of the floored
/// second (readers undo the truncation for times before 1970).
fn java_seconds_and_nanos(micros: i64) -> (i64, i64) {
    let floor_seconds = micros.div_euclid(1_000_000);
    let nanos = micros.rem_euclid(1_000_000) * 1_000;
    let millis = floor_seconds * 1_000 + nanos / 1_000_000;
    (millis / 1_000, nanos)
}

/// ORC's nanosecond folding: trailing decimal zeros (2 to 8 of them) are dropped and counted
/// in the low three bits.
fn format_nanos(nanos: i64) -> i64 {
    if nanos == 0 {
        return 0;
    }
    if nanos % 100 != 0 {
        return nanos << 3;
    }
    let mut n = nanos / 100;
    let mut zeros = 1;
    while n % 10 == 0 && zeros < 7 {
        n /= 10;
        zeros += 1;
    }
    (n << 3) | zeros
}

fn write_varint(out: &mut Vec<u8>, mut value: u128) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn write_signed_varint(out: &mut Vec<u8>, value: i128) {
    write_varint(out, ((value << 1) ^ (value >> 127)) as u128);
}

/// ORC's integer run-length encoding, version 1: runs of 3–130 values with a constant delta
/// (−128..=127), or up to 128 literal values; values as (zigzag, if signed) varints.
struct IntRle {
    signed: bool,
    out: Vec<u8>,
    pending: Vec<i64>,
}

impl IntRle {
    fn new(signed: bool) -> Self {
        IntRle { signed, out: Vec::new(), pending: Vec::new() }
    }

    fn push(&mut self, value: i64) {
        self.pending.push(value);
    }

    fn value(&mut self, v: i64) {
        if self.signed {
            write_signed_varint(&mut self.out, i128::from(v));
        } else {
            write_varint(&mut self.out, u128::from(v as u64));
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let values = std::mem::take(&mut self.pending);
        let mut literals: Vec<i64> = Vec::new();
        let mut i = 0;
        while i < values.len() {
            // The longest constant-delta run starting here.
            let mut run = 1;
            if i + 1 < values.len() {
                let delta = values[i + 1].checked_sub(values[i]);
                if let Some(delta) = delta.filter(|d| (-128..=127).contains(d)) {
                    run = 2;
                    while i + run < values.len()
                        && run < 130
                        && values[i + run].checked_sub(values[i + run - 1]) == Some(delta)
                    {
                        run += 1;
                    }
                }
            }
            if run >= 3 {
                self.flush_literals(&mut literals);
                let delta = values[i + 1] - values[i];
                self.out.push((run - 3) as u8);
                self.out.push(delta as i8 as u8);
                self.value(values[i]);
                i += run;
            } else {
                literals.push(values[i]);
                if literals.len() == 128 {
                    self.flush_literals(&mut literals);
                }
                i += 1;
            }
        }
        self.flush_literals(&mut literals);
        self.out
    }

    fn flush_literals(&mut self, literals: &mut Vec<i64>) {
        if literals.is_empty() {
            return;
        }
        self.out.push((-(literals.len() as i16)) as i8 as u8);
        for v in std::mem::take(literals) {
            self.value(v);
        }
    }
}

/// ORC's byte run-length encoding: runs of 3–130 equal bytes, or up to 128 literal bytes.
fn byte_rle(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut literals: Vec<u8> = Vec::new();
    let flush = |out: &mut Vec<u8>, literals: &mut Vec<u8>| {
        if !literals.is_empty() {
            out.push((-(literals.len() as i16)) as i8 as u8);
            out.append(literals);
        }
    };
    let mut i = 0;
    while i < bytes.len() {
        let mut run = 1;
        while i + run < bytes.len() && run < 130 && bytes[i + run] == bytes[i] {
            run += 1;
        }
        if run >= 3 {
            flush(&mut out, &mut literals);
            out.push((run - 3) as u8);
            out.push(bytes[i]);
            i += run;
        } else {
            literals.push(bytes[i]);
            if literals.len() == 128 {
                flush(&mut out, &mut literals);
            }
            i += 1;
        }
    }
    flush(&mut out, &mut literals);
    out
}

/// Booleans packed eight to a byte, most significant bit first, then byte run-length encoded.
fn boolean_rle(values: &[bool]) -> Vec<u8> {
    let bytes: Vec<u8> = values
        .chunks(8)
        .map(|chunk| chunk.iter().enumerate().fold(0u8, |b, (i, v)| if *v { b | (0x80 >> i) } else { b }))
        .collect();
    byte_rle(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_fold_trailing_zeros_like_orc_java() {
        assert_eq!(format_nanos(0), 0);
        assert_eq!(format_nanos(123_456_789), 123_456_789 << 3);
        assert_eq!(format_nanos(1_000), (1 << 3) | 2); // 1 * 10^3: three zeros, stored as 2
        assert_eq!(format_nanos(250_000_000), (25 << 3) | 6);
        assert_eq!(format_nanos(100_000_000), (1 << 3) | 7);
    }

    #[test]
    fn seconds_truncate_toward_zero_like_orc_java() {
        assert_eq!(java_seconds_and_nanos(1_500_000), (1, 500_000_000));
        assert_eq!(java_seconds_and_nanos(-1_500_000), (-1, 500_000_000));
        assert_eq!(java_seconds_and_nanos(-2_000_001), (-2, 999_999_000));
    }

    #[test]
    fn run_length_encodings_match_the_spec_examples() {
        // ORC spec, byte RLE: 100 zeros → [0x61, 0x00]; [0x44, 0x45] → [0xfe, 0x44, 0x45].
        assert_eq!(byte_rle(&[0; 100]), [0x61, 0x00]);
        assert_eq!(byte_rle(&[0x44, 0x45]), [0xfe, 0x44, 0x45]);
        // Integer RLE v1: 100 sevens → [0x61, 0x00, 0x07]; 2,3,6,7,11 → [0xfb, 0x02, 0x03, 0x06, 0x07, 0x0b].
        let mut sevens = IntRle::new(false);
        (0..100).for_each(|_| sevens.push(7));
        assert_eq!(sevens.finish(), [0x61, 0x00, 0x07]);
        let mut literals = IntRle::new(false);
        [2, 3, 6, 7, 11].into_iter().for_each(|v| literals.push(v));
        assert_eq!(literals.finish(), [0xfb, 0x02, 0x03, 0x06, 0x07, 0x0b]);
        // Signed: a descending run keeps its negative delta; values are zigzag varints.
        let mut down = IntRle::new(true);
        [5, 4, 3, 2].into_iter().for_each(|v| down.push(v));
        assert_eq!(down.finish(), [0x01, 0xff, 0x0a]);
        assert_eq!(boolean_rle(&[true, false, true]), [0xff, 0b1010_0000]);
    }
}
