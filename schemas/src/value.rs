//! A decoded record as a small typed tree, and the column builders that turn many of them into
//! Arrow arrays of exactly the types (and nested field metadata) the table's Arrow schema has.
//!
//! Decoding a record fully before touching any builder keeps a bad record from leaving half a
//! row behind: it is rejected whole, and the batch's columns stay aligned.

use std::sync::Arc;

use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int32Type, Int64Type, Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Decimal128Array, FixedSizeBinaryArray, LargeBinaryArray, LargeStringArray,
    ListArray, MapArray, PrimitiveArray, StringArray, StructArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{ArrowError, DataType, TimeUnit};

/// One decoded value. Dates are days, times and timestamps microseconds, decimals unscaled.
/// (Metadata columns use a few variants; JSON's reference decoder in the tests uses them all.)
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    Decimal(i128),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Val>),
    Map(Vec<(Val, Val)>),
    /// Children in the order of the struct type's fields.
    Struct(Vec<Val>),
}

static NULL: Val = Val::Null;

fn nulls(valid: &[bool]) -> Option<NullBuffer> {
    if valid.iter().all(|v| *v) { None } else { Some(NullBuffer::from(valid.to_vec())) }
}

fn primitive<T, F>(vals: &[&Val], get: F) -> PrimitiveArray<T>
where
    T: arrow_array::ArrowPrimitiveType,
    F: Fn(&Val) -> Option<T::Native>,
{
    vals.iter().map(|v| get(v)).collect()
}

/// Builds one Arrow array of type `data_type` from values (any non-matching value is null; the
/// decoder has already checked types and required fields).
pub(crate) fn build_array(data_type: &DataType, vals: &[&Val]) -> Result<ArrayRef, ArrowError> {
    Ok(match data_type {
        DataType::Boolean => {
            Arc::new(vals.iter().map(|v| if let Val::Bool(b) = v { Some(*b) } else { None }).collect::<BooleanArray>())
        }
        DataType::Int32 => {
            Arc::new(primitive::<Int32Type, _>(vals, |v| if let Val::Int(x) = v { Some(*x) } else { None }))
        }
        DataType::Int64 => {
            Arc::new(primitive::<Int64Type, _>(vals, |v| if let Val::Long(x) = v { Some(*x) } else { None }))
        }
        DataType::Float32 => {
            Arc::new(primitive::<Float32Type, _>(vals, |v| if let Val::Float(x) = v { Some(*x) } else { None }))
        }
        DataType::Float64 => {
            Arc::new(primitive::<Float64Type, _>(vals, |v| if let Val::Double(x) = v { Some(*x) } else { None }))
        }
        DataType::Date32 => {
            Arc::new(primitive::<Date32Type, _>(vals, |v| if let Val::Int(x) = v { Some(*x) } else { None }))
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            Arc::new(primitive::<Time64MicrosecondType, _>(
                vals,
                |v| if let Val::Long(x) = v { Some(*x) } else { None },
            ))
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
            primitive::<TimestampMicrosecondType, _>(vals, |v| if let Val::Long(x) = v { Some(*x) } else { None })
                .with_timezone_opt(tz.clone()),
        ),
        DataType::Decimal128(precision, scale) => Arc::new(
            vals.iter()
                .map(|v| if let Val::Decimal(x) = v { Some(*x) } else { None })
                .collect::<Decimal128Array>()
                .with_precision_and_scale(*precision, *scale)?,
        ),
        DataType::Utf8 => Arc::new(vals.iter().map(|v| as_str(v)).collect::<StringArray>()),
        DataType::LargeUtf8 => Arc::new(vals.iter().map(|v| as_str(v)).collect::<LargeStringArray>()),
        DataType::Binary => Arc::new(vals.iter().map(|v| as_bytes(v)).collect::<BinaryArray>()),
        DataType::LargeBinary => Arc::new(vals.iter().map(|v| as_bytes(v)).collect::<LargeBinaryArray>()),
        DataType::FixedSizeBinary(size) => {
            Arc::new(FixedSizeBinaryArray::try_from_sparse_iter_with_size(vals.iter().map(|v| as_bytes(v)), *size)?)
        }
        DataType::List(element) => {
            let mut offsets = Vec::with_capacity(vals.len() + 1);
            offsets.push(0i32);
            let mut children: Vec<&Val> = Vec::new();
            let mut valid = Vec::with_capacity(vals.len());
            for v in vals {
                if let Val::List(items) = v {
                    children.extend(items.iter());
                    valid.push(true);
                } else {
                    valid.push(false);
                }
                offsets.push(i32::try_from(children.len()).map_err(|_| overflow())?);
            }
            let child = build_array(element.data_type(), &children)?;
            Arc::new(ListArray::try_new(element.clone(), OffsetBuffer::new(offsets.into()), child, nulls(&valid))?)
        }
        DataType::Map(entries, sorted) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(ArrowError::SchemaError("map entries must be a struct".into()));
            };
            let mut offsets = Vec::with_capacity(vals.len() + 1);
            offsets.push(0i32);
            let (mut keys, mut values): (Vec<&Val>, Vec<&Val>) = (Vec::new(), Vec::new());
            let mut valid = Vec::with_capacity(vals.len());
            for v in vals {
                if let Val::Map(pairs) = v {
                    for (k, val) in pairs {
                        keys.push(k);
                        values.push(val);
                    }
                    valid.push(true);
                } else {
                    valid.push(false);
                }
                offsets.push(i32::try_from(keys.len()).map_err(|_| overflow())?);
            }
            let key_array = build_array(kv[0].data_type(), &keys)?;
            let value_array = build_array(kv[1].data_type(), &values)?;
            let entry_struct = StructArray::try_new(kv.clone(), vec![key_array, value_array], None)?;
            Arc::new(MapArray::try_new(
                entries.clone(),
                OffsetBuffer::new(offsets.into()),
                entry_struct,
                nulls(&valid),
                *sorted,
            )?)
        }
        DataType::Struct(fields) => {
            let valid: Vec<bool> = vals.iter().map(|v| matches!(v, Val::Struct(_))).collect();
            let mut children = Vec::with_capacity(fields.len());
            for (i, field) in fields.iter().enumerate() {
                let column: Vec<&Val> = vals
                    .iter()
                    .map(|v| if let Val::Struct(items) = v { items.get(i).unwrap_or(&NULL) } else { &NULL })
                    .collect();
                children.push(build_array(field.data_type(), &column)?);
            }
            if fields.is_empty() {
                Arc::new(StructArray::new_empty_fields(vals.len(), nulls(&valid)))
            } else {
                Arc::new(StructArray::try_new(fields.clone(), children, nulls(&valid))?)
            }
        }
        other => return Err(ArrowError::NotYetImplemented(format!("decoding into Arrow type {other}"))),
    })
}

fn as_str(v: &Val) -> Option<&str> {
    if let Val::Str(s) = v { Some(s.as_str()) } else { None }
}

fn as_bytes(v: &Val) -> Option<&[u8]> {
    if let Val::Bytes(b) = v { Some(b.as_slice()) } else { None }
}

fn overflow() -> ArrowError {
    ArrowError::ComputeError("a batch holds more than 2^31 list or map entries; lower the batch size".into())
}
