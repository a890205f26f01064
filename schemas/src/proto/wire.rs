//! The Protobuf wire format, read straight into column builders by a [`MessagePlan`].

use crate::RecordError;
use crate::columns::Column;
use crate::error::Reason;

use super::SMALL_NUMBERS;
use super::plan::{Conv, MessagePlan, Shape};

/// One wire value, not yet interpreted.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
}

#[derive(Debug, Clone, Copy, Default)]
enum Slot<'a> {
    #[default]
    Absent,
    One(Wire<'a>),
    /// Occurrences of a repeated or map field are in [`Scratch::repeats`].
    Many,
}

/// Per-batch working memory of the decoder, used as a stack by nested messages, so that
/// decoding allocates nothing per record once it has warmed up.
#[derive(Debug, Default)]
pub(crate) struct Scratch<'a> {
    slots: Vec<Slot<'a>>,
    /// (field index, value) of repeated and map fields, in wire order.
    repeats: Vec<(usize, Wire<'a>)>,
}

impl Scratch<'_> {
    /// Forgets a failed record's state.
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.repeats.clear();
    }
}

fn bad(message: impl Into<String>) -> RecordError {
    RecordError::new(Reason::BadProtobuf, message)
}

fn read_varint(input: &mut &[u8]) -> std::result::Result<u64, RecordError> {
    let mut value = 0u64;
    for shift in 0..10 {
        let Some((&byte, rest)) = input.split_first() else {
            return Err(bad("the message ends inside a varint (truncated?)"));
        };
        *input = rest;
        value |= u64::from(byte & 0x7f) << (shift * 7);
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(bad("a varint is longer than 10 bytes"))
}

fn read_bytes<'a>(input: &mut &'a [u8], n: usize) -> std::result::Result<&'a [u8], RecordError> {
    if input.len() < n {
        return Err(bad(format!("the message ends {} bytes early (truncated?)", n - input.len())));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn read_wire<'a>(input: &mut &'a [u8], wire_type: u64) -> std::result::Result<Wire<'a>, RecordError> {
    Ok(match wire_type {
        0 => Wire::Varint(read_varint(input)?),
        1 => Wire::Fixed64(u64::from_le_bytes(read_bytes(input, 8)?.try_into().unwrap_or_default())),
        2 => {
            let len = usize::try_from(read_varint(input)?).map_err(|_| bad("a length does not fit in memory"))?;
            Wire::Len(read_bytes(input, len)?)
        }
        5 => Wire::Fixed32(u32::from_le_bytes(read_bytes(input, 4)?.try_into().unwrap_or_default())),
        3 | 4 => return Err(bad("groups (wire types 3 and 4) are not supported")),
        other => return Err(bad(format!("invalid wire type {other}"))),
    })
}

/// Decodes one message into `columns` (the children of its struct, or the table's columns):
/// exactly one value is pushed into each column. Pass 1 finds each field's value(s) on the
/// wire (last one wins for singular fields, as the spec says); pass 2 pushes them in column
/// order, so a field's position on the wire does not matter.
pub(crate) fn decode_message<'a>(
    plan: &MessagePlan,
    bytes: &'a [u8],
    columns: &mut [Column],
    scratch: &mut Scratch<'a>,
) -> std::result::Result<(), RecordError> {
    let base = scratch.slots.len();
    let repeats_base = scratch.repeats.len();
    scratch.slots.resize(base + plan.fields.len(), Slot::Absent);
    let mut input = bytes;
    while !input.is_empty() {
        let tag = read_varint(&mut input)?;
        let wire = read_wire(&mut input, tag & 7)?;
        let number = tag >> 3;
        let index = match plan.by_small_number.get(number as usize) {
            Some(found) => *found,
            None if number as usize >= SMALL_NUMBERS => {
                u32::try_from(number).ok().and_then(|n| plan.by_number.get(&n).copied())
            }
            None => None,
        };
        if let Some(i) = index {
            if let Shape::Single(_) = plan.fields[i].shape {
                scratch.slots[base + i] = Slot::One(wire);
            } else {
                scratch.slots[base + i] = Slot::Many;
                scratch.repeats.push((i, wire));
            }
        }
    }
    let repeats_end = scratch.repeats.len();
    for (i, field) in plan.fields.iter().enumerate() {
        let slot = scratch.slots[base + i];
        let column = &mut columns[field.column];
        match &field.shape {
            Shape::Single(conv) => match slot {
                Slot::One(wire) => push(conv, wire, column, &field.name, scratch)?,
                _ if field.presence || matches!(conv, Conv::Message(_) | Conv::Timestamp) => column.push_null(),
                _ => push_default(conv, column),
            },
            Shape::List(conv) => {
                let element = column.list_element().ok_or_else(|| internal(&field.name))?;
                if let Slot::Many = slot {
                    for k in repeats_base..repeats_end {
                        let (owner, wire) = scratch.repeats[k];
                        if owner != i {
                            continue;
                        }
                        match wire {
                            Wire::Len(mut packed) if conv.packable() => {
                                let wire_type = conv.packed_wire_type();
                                while !packed.is_empty() {
                                    push(conv, read_wire(&mut packed, wire_type)?, element, &field.name, scratch)?;
                                }
                            }
                            wire => push(conv, wire, element, &field.name, scratch)?,
                        }
                    }
                }
                column.end_nested();
            }
            Shape::Map(key_conv, value_conv) => {
                let (keys, values) = column.map_entries().ok_or_else(|| internal(&field.name))?;
                if let Slot::Many = slot {
                    for k in repeats_base..repeats_end {
                        let (owner, wire) = scratch.repeats[k];
                        if owner != i {
                            continue;
                        }
                        let Wire::Len(mut entry) = wire else {
                            return Err(bad(format!("map field {}: an entry is not length-delimited", field.name)));
                        };
                        let (mut key, mut value) = (None, None);
                        while !entry.is_empty() {
                            let tag = read_varint(&mut entry)?;
                            let w = read_wire(&mut entry, tag & 7)?;
                            match tag >> 3 {
                                1 => key = Some(w),
                                2 => value = Some(w),
                                _ => {}
                            }
                        }
                        match key {
                            Some(w) => push(key_conv, w, keys, &field.name, scratch)?,
                            None => push_default(key_conv, keys),
                        }
                        match value {
                            Some(w) => push(value_conv, w, values, &field.name, scratch)?,
                            None if matches!(value_conv, Conv::Message(_) | Conv::Timestamp) => values.push_null(),
                            None => push_default(value_conv, values),
                        }
                    }
                }
                column.end_nested();
            }
        }
    }
    for c in &plan.unfed {
        columns[*c].push_null();
    }
    scratch.slots.truncate(base);
    scratch.repeats.truncate(repeats_base);
    Ok(())
}

fn internal(field: &str) -> RecordError {
    RecordError::new(Reason::Internal, format!("field {field}: the column does not have the planned shape"))
}

impl Conv {
    fn packable(&self) -> bool {
        !matches!(self, Conv::String | Conv::Bytes | Conv::Message(_) | Conv::Timestamp)
    }

    fn packed_wire_type(&self) -> u64 {
        match self {
            Conv::Double | Conv::Fixed64 | Conv::Sfixed64 => 1,
            Conv::Float | Conv::Fixed32 | Conv::Sfixed32 => 5,
            Conv::Epoch(raw, _) => raw.packed_wire_type(),
            _ => 0,
        }
    }
}

fn push_default(conv: &Conv, column: &mut Column) {
    match conv {
        Conv::Double => column.push_f64(0.0),
        Conv::Float => column.push_f32(0.0),
        Conv::Int32 | Conv::Sint32 | Conv::Sfixed32 => column.push_i32(0),
        Conv::Bool => column.push_bool(false),
        Conv::String | Conv::Bytes => column.push_bytes(b""),
        Conv::Enum(names) => column.push_bytes(names.get(&0).map_or("0", String::as_str).as_bytes()),
        Conv::Message(_) | Conv::Timestamp => column.push_null(),
        _ => column.push_i64(0),
    }
}

fn push<'a>(
    conv: &Conv,
    wire: Wire<'a>,
    column: &mut Column,
    field: &str,
    scratch: &mut Scratch<'a>,
) -> std::result::Result<(), RecordError> {
    let wrong = || bad(format!("field {field}: wire type does not match the field's type"));
    let int = |w: Wire<'_>| match w {
        Wire::Varint(v) | Wire::Fixed64(v) => Ok(v),
        Wire::Fixed32(v) => Ok(u64::from(v)),
        Wire::Len(_) => Err(wrong()),
    };
    match conv {
        Conv::Double => match wire {
            Wire::Fixed64(v) => column.push_f64(f64::from_bits(v)),
            _ => return Err(wrong()),
        },
        Conv::Float => match wire {
            Wire::Fixed32(v) => column.push_f32(f32::from_bits(v)),
            _ => return Err(wrong()),
        },
        Conv::Int32 | Conv::Sfixed32 => column.push_i32(int(wire)? as i32),
        Conv::Sint32 => {
            let v = int(wire)? as u32;
            column.push_i32(((v >> 1) as i32) ^ -((v & 1) as i32));
        }
        Conv::Int64 | Conv::Sfixed64 | Conv::Sint64 | Conv::Epoch(..) => {
            let raw = if let Conv::Epoch(raw, _) = conv { raw.as_ref() } else { conv };
            let v = int(wire)?;
            let n = match raw {
                Conv::Sint64 => ((v >> 1) as i64) ^ -((v & 1) as i64),
                _ => v as i64,
            };
            match conv {
                Conv::Epoch(_, unit) => match unit.int_to_micros(n) {
                    Some(us) => column.push_i64(us),
                    None => {
                        return Err(RecordError::new(
                            Reason::OutOfRange,
                            format!("field {field}: timestamp {n} is out of range"),
                        ));
                    }
                },
                _ => column.push_i64(n),
            }
        }
        Conv::Uint32 | Conv::Fixed32 => column.push_i64(i64::from(int(wire)? as u32)),
        Conv::Uint64 | Conv::Fixed64 => {
            let v = int(wire)?;
            let n = i64::try_from(v).map_err(|_| {
                RecordError::new(
                    Reason::OutOfRange,
                    format!("field {field}: {v} does not fit a long column (max 2^63-1)"),
                )
            })?;
            column.push_i64(n);
        }
        Conv::Bool => column.push_bool(int(wire)? != 0),
        Conv::String => {
            let Wire::Len(bytes) = wire else { return Err(wrong()) };
            std::str::from_utf8(bytes).map_err(|_| bad(format!("field {field}: the string is not valid UTF-8")))?;
            column.push_bytes(bytes);
        }
        Conv::Bytes => {
            let Wire::Len(bytes) = wire else { return Err(wrong()) };
            column.push_bytes(bytes);
        }
        Conv::Enum(names) => {
            let number = int(wire)? as i32;
            match names.get(&number) {
                Some(name) => column.push_bytes(name.as_bytes()),
                None => column.push_bytes(number.to_string().as_bytes()),
            }
        }
        Conv::Timestamp => {
            let Wire::Len(mut bytes) = wire else { return Err(wrong()) };
            let (mut seconds, mut nanos) = (0i64, 0i64);
            while !bytes.is_empty() {
                let tag = read_varint(&mut bytes)?;
                let w = read_wire(&mut bytes, tag & 7)?;
                match (tag >> 3, w) {
                    (1, Wire::Varint(v)) => seconds = v as i64,
                    (2, Wire::Varint(v)) => nanos = i64::from(v as i32),
                    _ => {}
                }
            }
            let micros = seconds.checked_mul(1_000_000).and_then(|s| s.checked_add(nanos.div_euclid(1_000)));
            match micros {
                Some(us) => column.push_i64(us),
                None => {
                    return Err(RecordError::new(Reason::OutOfRange, format!("field {field}: timestamp out of range")));
                }
            }
        }
        Conv::Message(plan) => {
            let Wire::Len(bytes) = wire else { return Err(wrong()) };
            let children = column.struct_fields().ok_or_else(|| internal(field))?;
            decode_message(plan, bytes, children, scratch)?;
            column.end_struct();
        }
    }
    Ok(())
}
