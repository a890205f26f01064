//! Column builders shaped by an Arrow type, that binary decoders (Protobuf, Avro) write into
//! directly, value by value, with no per-record intermediate tree.
//!
//! Unlike Arrow's own builders these can be cut back to an earlier row count
//! ([`Column::truncate`]): a record found bad half-way through is rolled back whole, so a batch
//! never holds half a row.

use std::sync::Arc;

use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int32Type, Int64Type, Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Decimal128Array, FixedSizeBinaryArray, LargeBinaryArray, LargeStringArray,
    ListArray, MapArray, PrimitiveArray, StringArray, StructArray,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Fields, TimeUnit};

mod batch;

#[cfg(test)]
use batch::Rows;
pub(crate) use batch::decode_batch;

/// One column under construction. Null slots hold a default value (Arrow ignores it).
#[derive(Debug)]
pub(crate) struct Column {
    data_type: DataType,
    valid: Vec<bool>,
    values: Values,
}

#[derive(Debug)]
enum Values {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    I128(Vec<i128>),
    /// Strings, binaries and fixed-size binaries: all bytes, and the end of each value.
    Bytes {
        data: Vec<u8>,
        ends: Vec<usize>,
    },
    List {
        ends: Vec<usize>,
        element: Box<Column>,
    },
    Map {
        ends: Vec<usize>,
        keys: Box<Column>,
        values: Box<Column>,
    },
    Struct(Vec<Column>),
}

impl Column {
    pub(crate) fn new(data_type: &DataType) -> Result<Self, ArrowError> {
        let values = match data_type {
            DataType::Boolean => Values::Bool(Vec::new()),
            DataType::Int32 | DataType::Date32 => Values::I32(Vec::new()),
            DataType::Int64
            | DataType::Time64(TimeUnit::Microsecond)
            | DataType::Timestamp(TimeUnit::Microsecond, _) => Values::I64(Vec::new()),
            DataType::Float32 => Values::F32(Vec::new()),
            DataType::Float64 => Values::F64(Vec::new()),
            DataType::Decimal128(_, _) => Values::I128(Vec::new()),
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::FixedSizeBinary(_) => Values::Bytes { data: Vec::new(), ends: Vec::new() },
            DataType::List(element) => {
                Values::List { ends: Vec::new(), element: Box::new(Column::new(element.data_type())?) }
            }
            DataType::Map(entries, _) => {
                let kv = map_fields(entries.data_type())?;
                Values::Map {
                    ends: Vec::new(),
                    keys: Box::new(Column::new(kv[0].data_type())?),
                    values: Box::new(Column::new(kv[1].data_type())?),
                }
            }
            DataType::Struct(fields) => {
                Values::Struct(fields.iter().map(|f| Column::new(f.data_type())).collect::<Result<_, _>>()?)
            }
            other => return Err(ArrowError::NotYetImplemented(format!("decoding into Arrow type {other}"))),
        };
        Ok(Column { data_type: data_type.clone(), valid: Vec::new(), values })
    }

    pub(crate) fn len(&self) -> usize {
        self.valid.len()
    }

    /// Room for `rows` more values (a struct's children too), so a batch's columns do not
    /// regrow and copy themselves while it is decoded.
    pub(crate) fn reserve(&mut self, rows: usize) {
        self.valid.reserve(rows);
        match &mut self.values {
            Values::Bool(v) => v.reserve(rows),
            Values::I32(v) => v.reserve(rows),
            Values::I64(v) => v.reserve(rows),
            Values::F32(v) => v.reserve(rows),
            Values::F64(v) => v.reserve(rows),
            Values::I128(v) => v.reserve(rows),
            Values::Bytes { ends, .. } | Values::List { ends, .. } | Values::Map { ends, .. } => ends.reserve(rows),
            Values::Struct(children) => children.iter_mut().for_each(|c| c.reserve(rows)),
        }
    }

    /// Appends a null (and a null to every child of a struct, so children stay aligned).
    pub(crate) fn push_null(&mut self) {
        self.valid.push(false);
        match &mut self.values {
            Values::Bool(v) => v.push(false),
            Values::I32(v) => v.push(0),
            Values::I64(v) => v.push(0),
            Values::F32(v) => v.push(0.0),
            Values::F64(v) => v.push(0.0),
            Values::I128(v) => v.push(0),
            Values::Bytes { data, ends } => {
                if let DataType::FixedSizeBinary(size) = self.data_type {
                    data.resize(data.len() + size.max(0) as usize, 0);
                }
                ends.push(data.len());
            }
            Values::List { ends, element } => ends.push(element.len()),
            Values::Map { ends, keys, .. } => ends.push(keys.len()),
            Values::Struct(children) => children.iter_mut().for_each(Column::push_null),
        }
    }

    pub(crate) fn push_bool(&mut self, value: bool) {
        if let Values::Bool(v) = &mut self.values {
            v.push(value);
            self.valid.push(true);
        } else {
            self.push_null();
        }
    }

    pub(crate) fn push_i32(&mut self, value: i32) {
        match &mut self.values {
            Values::I32(v) => v.push(value),
            Values::I64(v) => v.push(i64::from(value)),
            _ => return self.push_null(),
        }
        self.valid.push(true);
    }

    pub(crate) fn push_i64(&mut self, value: i64) {
        if let Values::I64(v) = &mut self.values {
            v.push(value);
            self.valid.push(true);
        } else {
            self.push_null();
        }
    }

    pub(crate) fn push_f32(&mut self, value: f32) {
        match &mut self.values {
            Values::F32(v) => v.push(value),
            Values::F64(v) => v.push(f64::from(value)),
            _ => return self.push_null(),
        }
        self.valid.push(true);
    }

    pub(crate) fn push_f64(&mut self, value: f64) {
        if let Values::F64(v) = &mut self.values {
            v.push(value);
            self.valid.push(true);
        } else {
            self.push_null();
        }
    }

    pub(crate) fn push_i128(&mut self, value: i128) {
        if let Values::I128(v) = &mut self.values {
            v.push(value);
            self.valid.push(true);
        } else {
            self.push_null();
        }
    }

    /// Appends a string or binary value. The caller checked UTF-8 for string columns and the
    /// length for fixed-size ones.
    pub(crate) fn push_bytes(&mut self, value: &[u8]) {
        if let Values::Bytes { data, ends } = &mut self.values {
            data.extend_from_slice(value);
            ends.push(data.len());
            self.valid.push(true);
        } else {
            self.push_null();
        }
    }

    /// The element column of a list; push elements, then [`Column::end_list`].
    pub(crate) fn list_element(&mut self) -> Option<&mut Column> {
        if let Values::List { element, .. } = &mut self.values { Some(element) } else { None }
    }

    /// Closes a list or map value holding everything pushed into its children since the last one.
    pub(crate) fn end_nested(&mut self) {
        match &mut self.values {
            Values::List { ends, element } => ends.push(element.len()),
            Values::Map { ends, keys, .. } => ends.push(keys.len()),
            _ => return self.push_null(),
        }
        self.valid.push(true);
    }

    /// The key and value columns of a map; push pairs, then [`Column::end_nested`].
    pub(crate) fn map_entries(&mut self) -> Option<(&mut Column, &mut Column)> {
        if let Values::Map { keys, values, .. } = &mut self.values { Some((keys, values)) } else { None }
    }

    /// The children of a struct; push one value into each, then [`Column::end_struct`].
    pub(crate) fn struct_fields(&mut self) -> Option<&mut [Column]> {
        if let Values::Struct(children) = &mut self.values { Some(children) } else { None }
    }

    pub(crate) fn end_struct(&mut self) {
        self.valid.push(true);
    }

    /// Cuts the column back to `rows` values (children to what those values hold).
    pub(crate) fn truncate(&mut self, rows: usize) {
        // Children are cut even when this column itself has no extra value: a failed record
        // may have pushed into a struct's children or a list's elements without closing it.
        let rows = rows.min(self.len());
        self.valid.truncate(rows);
        let end_before = |ends: &Vec<usize>| if rows == 0 { 0 } else { ends[rows - 1] };
        match &mut self.values {
            Values::Bool(v) => v.truncate(rows),
            Values::I32(v) => v.truncate(rows),
            Values::I64(v) => v.truncate(rows),
            Values::F32(v) => v.truncate(rows),
            Values::F64(v) => v.truncate(rows),
            Values::I128(v) => v.truncate(rows),
            Values::Bytes { data, ends } => {
                data.truncate(end_before(ends));
                ends.truncate(rows);
            }
            Values::List { ends, element } => {
                element.truncate(end_before(ends));
                ends.truncate(rows);
            }
            Values::Map { ends, keys, values } => {
                let keep = end_before(ends);
                keys.truncate(keep);
                values.truncate(keep);
                ends.truncate(rows);
            }
            Values::Struct(children) => children.iter_mut().for_each(|c| c.truncate(rows)),
        }
    }

    /// The finished Arrow array; the column is left empty.
    pub(crate) fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let valid = std::mem::take(&mut self.valid);
        let nulls = if valid.iter().all(|v| *v) { None } else { Some(NullBuffer::from(valid)) };
        Ok(match (&self.data_type, &mut self.values) {
            (DataType::Boolean, Values::Bool(v)) => {
                Arc::new(BooleanArray::new(std::mem::take(v).into_iter().collect(), nulls))
            }
            (DataType::Int32, Values::I32(v)) => Arc::new(PrimitiveArray::<Int32Type>::new(take(v), nulls)),
            (DataType::Date32, Values::I32(v)) => Arc::new(PrimitiveArray::<Date32Type>::new(take(v), nulls)),
            (DataType::Int64, Values::I64(v)) => Arc::new(PrimitiveArray::<Int64Type>::new(take(v), nulls)),
            (DataType::Time64(_), Values::I64(v)) => {
                Arc::new(PrimitiveArray::<Time64MicrosecondType>::new(take(v), nulls))
            }
            (DataType::Timestamp(_, tz), Values::I64(v)) => {
                Arc::new(PrimitiveArray::<TimestampMicrosecondType>::new(take(v), nulls).with_timezone_opt(tz.clone()))
            }
            (DataType::Float32, Values::F32(v)) => Arc::new(PrimitiveArray::<Float32Type>::new(take(v), nulls)),
            (DataType::Float64, Values::F64(v)) => Arc::new(PrimitiveArray::<Float64Type>::new(take(v), nulls)),
            (DataType::Decimal128(p, s), Values::I128(v)) => {
                Arc::new(Decimal128Array::new(take(v), nulls).with_precision_and_scale(*p, *s)?)
            }
            (data_type, Values::Bytes { data, ends }) => {
                let data = Buffer::from_vec(std::mem::take(data));
                let ends = std::mem::take(ends);
                match data_type {
                    DataType::FixedSizeBinary(size) => Arc::new(FixedSizeBinaryArray::try_new(*size, data, nulls)?),
                    DataType::Utf8 => Arc::new(StringArray::try_new(offsets32(&ends)?, data, nulls)?),
                    DataType::Binary => Arc::new(BinaryArray::try_new(offsets32(&ends)?, data, nulls)?),
                    DataType::LargeUtf8 => Arc::new(LargeStringArray::try_new(offsets64(&ends), data, nulls)?),
                    _ => Arc::new(LargeBinaryArray::try_new(offsets64(&ends), data, nulls)?),
                }
            }
            (DataType::List(field), Values::List { ends, element }) => {
                let offsets = offsets32(&std::mem::take(ends))?;
                Arc::new(ListArray::try_new(field.clone(), offsets, element.finish()?, nulls)?)
            }
            (DataType::Map(entries, sorted), Values::Map { ends, keys, values }) => {
                let offsets = offsets32(&std::mem::take(ends))?;
                let kv = map_fields(entries.data_type())?.clone();
                let entry_struct = StructArray::try_new(kv, vec![keys.finish()?, values.finish()?], None)?;
                Arc::new(MapArray::try_new(entries.clone(), offsets, entry_struct, nulls, *sorted)?)
            }
            (DataType::Struct(fields), Values::Struct(children)) => {
                let rows = children.first().map(Column::len);
                let arrays = children.iter_mut().map(Column::finish).collect::<Result<Vec<_>, _>>()?;
                if fields.is_empty() {
                    let len = nulls.as_ref().map_or(rows.unwrap_or(0), NullBuffer::len);
                    Arc::new(StructArray::new_empty_fields(len, nulls))
                } else {
                    Arc::new(StructArray::try_new(fields.clone(), arrays, nulls)?)
                }
            }
            (other, _) => return Err(ArrowError::NotYetImplemented(format!("decoding into Arrow type {other}"))),
        })
    }
}

fn take<T: arrow_buffer::ArrowNativeType>(v: &mut Vec<T>) -> ScalarBuffer<T> {
    ScalarBuffer::from(std::mem::take(v))
}

fn offsets32(ends: &[usize]) -> Result<OffsetBuffer<i32>, ArrowError> {
    // Ends only grow: when the last one fits, every one does (and the loop below vectorizes).
    if ends.last().is_some_and(|end| i32::try_from(*end).is_err()) {
        return Err(ArrowError::ComputeError(
            "a batch holds more than 2 GiB in one column; lower the batch size".into(),
        ));
    }
    let offsets: Vec<i32> = std::iter::once(0).chain(ends.iter().map(|end| *end as i32)).collect();
    Ok(OffsetBuffer::new(offsets.into()))
}

fn offsets64(ends: &[usize]) -> OffsetBuffer<i64> {
    let offsets: Vec<i64> = std::iter::once(0).chain(ends.iter().map(|e| *e as i64)).collect();
    OffsetBuffer::new(offsets.into())
}

fn map_fields(entries: &DataType) -> Result<&Fields, ArrowError> {
    match entries {
        DataType::Struct(kv) if kv.len() == 2 => Ok(kv),
        _ => Err(ArrowError::SchemaError("map entries must be a struct of key and value".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_schema::{Field, Schema};

    #[test]
    fn rollback_removes_a_half_written_nested_row() {
        let element = Arc::new(Field::new("element", DataType::Utf8, false));
        let inner = Fields::from(vec![Field::new("n", DataType::Int64, true)]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("tags", DataType::List(element), true),
            Field::new("s", DataType::Struct(inner), true),
        ]));
        let mut rows = Rows::new(schema).expect("columns");
        // Row 0: complete.
        rows.columns[0].push_i32(1);
        let tags = rows.columns[1].list_element().expect("list");
        tags.push_bytes(b"a");
        tags.push_bytes(b"b");
        rows.columns[1].end_nested();
        rows.columns[2].struct_fields().expect("struct")[0].push_i64(7);
        rows.columns[2].end_struct();
        rows.commit_row();
        // Row 1: fails after writing an id and a list element.
        rows.columns[0].push_i32(2);
        rows.columns[1].list_element().expect("list").push_bytes(b"zzz");
        rows.rollback_row();
        // Row 1 again: fails inside the struct, after one child got a value.
        rows.columns[0].push_i32(2);
        rows.columns[2].struct_fields().expect("struct")[0].push_i64(9);
        rows.rollback_row();
        // Row 2: complete, with nulls.
        rows.columns[0].push_i32(3);
        rows.columns[1].push_null();
        rows.columns[2].push_null();
        rows.commit_row();

        let batch = rows.finish().expect("batch");
        assert_eq!(batch.num_rows(), 2);
        let ids = batch.column(0).as_any().downcast_ref::<PrimitiveArray<Int32Type>>().expect("ints");
        assert_eq!(ids.values().to_vec(), vec![1, 3]);
        let tags = batch.column(1).as_any().downcast_ref::<ListArray>().expect("list");
        assert_eq!(tags.value(0).len(), 2);
        assert!(tags.is_null(1));
        assert!(batch.column(2).is_null(1));
    }
}
