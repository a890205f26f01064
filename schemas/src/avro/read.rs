//! Avro binary read straight into column builders by a record's plan ([`super::RecordPlan`]):
//! zig-zag varints, length-prefixed bytes and strings, blocks of arrays and maps, unions by
//! branch index. Errors name the field path and say what was wrong with the bytes.

use super::{Node, RecordPlan};
use crate::RecordError;
use crate::columns::Column;
use crate::error::Reason;

fn bad(message: impl Into<String>) -> RecordError {
    RecordError::new(Reason::BadAvro, message)
}

fn read_long(input: &mut &[u8]) -> std::result::Result<i64, RecordError> {
    let mut value = 0u64;
    for shift in 0..10 {
        let Some((&byte, rest)) = input.split_first() else {
            return Err(bad("the record ends inside a number (truncated, or not written with this schema?)"));
        };
        *input = rest;
        value |= u64::from(byte & 0x7f) << (shift * 7);
        if byte < 0x80 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(bad("a number is longer than 10 bytes"))
}

fn read_exact<'a>(input: &mut &'a [u8], n: usize) -> std::result::Result<&'a [u8], RecordError> {
    if input.len() < n {
        return Err(bad("the record ends early (truncated, or not written with this schema?)"));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn read_len<'a>(input: &mut &'a [u8]) -> std::result::Result<&'a [u8], RecordError> {
    let n = read_long(input)?;
    let n = usize::try_from(n).map_err(|_| bad(format!("negative length {n}")))?;
    read_exact(input, n)
}

/// Decodes one record into `columns` (one value pushed into each). Errors name the field path.
pub(crate) fn decode_record(
    plan: &RecordPlan,
    input: &mut &[u8],
    mut columns: Option<&mut [Column]>,
) -> std::result::Result<(), RecordError> {
    for (node, target, name) in &plan.fields {
        let column = match (&mut columns, target) {
            (Some(cols), Some(i)) => Some(&mut cols[*i]),
            _ => None,
        };
        read(node, input, column).map_err(|e| e.within(name))?;
    }
    if let Some(cols) = columns {
        for c in &plan.unfed {
            cols[*c].push_null();
        }
    }
    Ok(())
}

fn read(node: &Node, input: &mut &[u8], column: Option<&mut Column>) -> std::result::Result<(), RecordError> {
    match node {
        Node::Null => {
            if let Some(c) = column {
                c.push_null();
            }
        }
        Node::Bool => {
            let b = read_exact(input, 1)?[0] != 0;
            if let Some(c) = column {
                c.push_bool(b);
            }
        }
        Node::Int => {
            let v = read_long(input)?;
            let v = i32::try_from(v).map_err(|_| bad(format!("int {v} out of range")))?;
            if let Some(c) = column {
                c.push_i32(v);
            }
        }
        Node::Long => {
            let v = read_long(input)?;
            if let Some(c) = column {
                c.push_i64(v);
            }
        }
        Node::Millis32 | Node::Millis64 => {
            let v = read_long(input)?;
            let us = v.checked_mul(1000).ok_or_else(|| RecordError::new(Reason::OutOfRange, format!("{v} ms")))?;
            if let Some(c) = column {
                c.push_i64(us);
            }
        }
        Node::Float => {
            let v = f32::from_le_bytes(read_exact(input, 4)?.try_into().unwrap_or_default());
            if let Some(c) = column {
                c.push_f32(v);
            }
        }
        Node::Double => {
            let v = f64::from_le_bytes(read_exact(input, 8)?.try_into().unwrap_or_default());
            if let Some(c) = column {
                c.push_f64(v);
            }
        }
        Node::Bytes => {
            let v = read_len(input)?;
            if let Some(c) = column {
                c.push_bytes(v);
            }
        }
        Node::String => {
            let v = read_len(input)?;
            std::str::from_utf8(v).map_err(|_| bad("the string is not valid UTF-8"))?;
            if let Some(c) = column {
                c.push_bytes(v);
            }
        }
        Node::Uuid => {
            let v = read_len(input)?;
            let text = std::str::from_utf8(v).map_err(|_| bad("the uuid is not text"))?;
            let uuid = uuid::Uuid::parse_str(text).map_err(|e| bad(format!("not a uuid: {e}")))?;
            if let Some(c) = column {
                c.push_bytes(uuid.as_bytes());
            }
        }
        Node::Fixed(n) => {
            let v = read_exact(input, *n)?;
            if let Some(c) = column {
                c.push_bytes(v);
            }
        }
        Node::Enum(symbols) => {
            let i = read_long(input)?;
            let symbol = usize::try_from(i)
                .ok()
                .and_then(|i| symbols.get(i))
                .ok_or_else(|| bad(format!("enum index {i} is not in the schema")))?;
            if let Some(c) = column {
                c.push_bytes(symbol.as_bytes());
            }
        }
        Node::Decimal(fixed, max) => {
            let bytes = match fixed {
                Some(n) => read_exact(input, *n)?,
                None => read_len(input)?,
            };
            if bytes.len() > 16 {
                return Err(RecordError::new(Reason::OutOfRange, "decimal wider than 16 bytes"));
            }
            let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
            let mut buf = if negative { [0xffu8; 16] } else { [0u8; 16] };
            buf[16 - bytes.len()..].copy_from_slice(bytes);
            let value = i128::from_be_bytes(buf);
            if value.checked_abs().is_none_or(|v| v >= *max) {
                return Err(RecordError::new(Reason::OutOfRange, "decimal has more digits than its precision"));
            }
            if let Some(c) = column {
                c.push_i128(value);
            }
        }
        Node::Record(plan) => match column {
            Some(c) => {
                let children = c.struct_fields().ok_or_else(|| bad("the column is not a struct"))?;
                decode_record(plan, input, Some(children))?;
                c.end_struct();
            }
            None => decode_record(plan, input, None)?,
        },
        Node::Array(item) => {
            let mut column = column;
            loop {
                let count = block_count(input)?;
                if count == 0 {
                    break;
                }
                for _ in 0..count {
                    let element = column.as_deref_mut().and_then(Column::list_element);
                    read(item, input, element)?;
                }
            }
            if let Some(c) = column {
                c.end_nested();
            }
        }
        Node::Map(value) => {
            let mut column = column;
            loop {
                let count = block_count(input)?;
                if count == 0 {
                    break;
                }
                for _ in 0..count {
                    let key = read_len(input)?;
                    std::str::from_utf8(key).map_err(|_| bad("a map key is not valid UTF-8"))?;
                    match column.as_deref_mut().and_then(Column::map_entries) {
                        Some((keys, values)) => {
                            keys.push_bytes(key);
                            read(value, input, Some(values))?;
                        }
                        None => read(value, input, None)?,
                    }
                }
            }
            if let Some(c) = column {
                c.end_nested();
            }
        }
        Node::Union(branches) => {
            let i = read_long(input)?;
            let branch = usize::try_from(i)
                .ok()
                .and_then(|i| branches.get(i))
                .ok_or_else(|| bad(format!("union branch {i} is not in the schema")))?;
            read(branch, input, column)?;
        }
    }
    Ok(())
}

/// Items in the next array/map block (a negative count is followed by the block's size).
fn block_count(input: &mut &[u8]) -> std::result::Result<u64, RecordError> {
    let count = read_long(input)?;
    if count < 0 {
        read_long(input)?;
    }
    Ok(count.unsigned_abs())
}
