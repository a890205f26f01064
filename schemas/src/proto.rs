//! Protobuf: the message schema from a descriptor set or `.proto` files (compiled in-process),
//! and a decoder that reads the wire format straight into column builders, planned once from
//! the descriptor and the table schema (no per-record dynamic message).
//!
//! Mapping: `int32`/`sint32`/`sfixed32` → int; `int64`/`sint64`/`sfixed64` → long (or
//! timestamptz when configured as an epoch timestamp); `uint32`/`fixed32` → long;
//! `uint64`/`fixed64` → long (values past 2^63-1 are rejected); `float`, `double`, `bool`,
//! `string`; `bytes` → binary; enum → string (the value's name, an unknown number as its
//! number in text); `google.protobuf.Timestamp` → timestamptz; message → struct;
//! `repeated` → list; `map<K, V>` → map. Fields with presence (messages, `optional`, oneof
//! members, proto2) are null when absent; scalars without presence take their default.
//! Unknown fields are skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iceberg::spec::{NestedFieldRef, PrimitiveType, Schema, Type};
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

use crate::columns::Column;
use crate::evolve::{FieldIds, SourceField, SourceType, join, position_of};
use crate::json::EpochUnit;
use crate::{Error, RecordError, Result};

/// Deepest message nesting mapped to columns (a recursive message would never end).
const MAX_DEPTH: usize = 32;

const TIMESTAMP: &str = "google.protobuf.Timestamp";

/// Field numbers below this are looked up in a table rather than a hash map.
const SMALL_NUMBERS: usize = 256;

/// Protobuf settings beyond the message itself.
#[derive(Debug, Clone, Default)]
pub struct ProtoOptions {
    /// `int64` fields (dotted name paths, e.g. `event_time` or `header.sent_at`) holding epoch
    /// timestamps: they become `timestamptz` columns.
    pub timestamp_fields: Vec<String>,
    /// Unit of those timestamps.
    pub timestamp_unit: EpochUnit,
}

/// A Protobuf message type to decode.
#[derive(Debug, Clone)]
pub struct ProtoSchema {
    message: MessageDescriptor,
    options: ProtoOptions,
}

impl ProtoSchema {
    /// From a compiled descriptor set (`protoc --include_imports -o set.desc …`).
    pub fn from_descriptor_set(bytes: &[u8], message: &str, options: ProtoOptions) -> Result<Self> {
        let pool = DescriptorPool::decode(bytes)
            .map_err(|e| Error::Schema(format!("the descriptor set is not a valid FileDescriptorSet: {e}")))?;
        Self::from_pool(&pool, Some(message), options)
    }

    /// From `.proto` files, compiled now; imports are looked up in `include_paths` (and the
    /// well-known `google/protobuf/*.proto` types are built in).
    pub fn from_proto_files(
        files: &[PathBuf],
        include_paths: &[PathBuf],
        message: &str,
        options: ProtoOptions,
    ) -> Result<Self> {
        let includes: Vec<PathBuf> = if include_paths.is_empty() {
            files.iter().filter_map(|f| f.parent().map(Path::to_path_buf)).collect()
        } else {
            include_paths.to_vec()
        };
        let mut compiler = protox::Compiler::new(&includes)
            .map_err(|e| Error::Schema(format!("cannot use include paths {includes:?}: {e}")))?;
        compiler.include_imports(true);
        compiler.open_files(files).map_err(|e| Error::Schema(format!("compiling {files:?} failed: {e}")))?;
        Self::from_pool(&compiler.descriptor_pool(), Some(message), options)
    }

    /// From `.proto` source text (as a schema registry stores it). Without `message`, the
    /// file's first message.
    pub fn from_source(name: &str, source: &str, message: Option<&str>, options: ProtoOptions) -> Result<Self> {
        let file = protox::file::File::from_source(name, source)
            .map_err(|e| Error::Schema(format!("the Protobuf schema {name} does not parse: {e}")))?;
        let mut resolver = protox::file::ChainFileResolver::new();
        resolver.add(SingleFile(file));
        resolver.add(protox::file::GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true);
        compiler
            .open_file(name)
            .map_err(|e| Error::Schema(format!("the Protobuf schema {name} does not compile: {e}")))?;
        Self::from_pool(&compiler.descriptor_pool(), message, options)
    }

    fn from_pool(pool: &DescriptorPool, message: Option<&str>, options: ProtoOptions) -> Result<Self> {
        let descriptor = match message {
            Some(name) => pool.get_message_by_name(name.trim_start_matches('.')).ok_or_else(|| {
                let known: Vec<String> = pool.all_messages().map(|m| m.full_name().to_string()).take(20).collect();
                Error::Schema(format!("message {name} is not in the schema; it has: {}", known.join(", ")))
            })?,
            None => pool
                .files()
                .last()
                .and_then(|f| f.messages().next())
                .ok_or_else(|| Error::Schema("the Protobuf schema defines no message".into()))?,
        };
        let schema = ProtoSchema { message: descriptor, options };
        schema.fields()?; // unsupported shapes fail here, at start-up
        Ok(schema)
    }

    pub fn message_name(&self) -> &str {
        self.message.full_name()
    }

    /// The Confluent message-index path of the message within its file (`[0]` for the first).
    pub fn message_indexes(&self) -> Vec<i64> {
        let mut path = Vec::new();
        let mut current = self.message.clone();
        loop {
            match current.parent_message() {
                Some(parent) => {
                    path.push(parent.child_messages().position(|m| m == current).unwrap_or(0) as i64);
                    current = parent;
                }
                None => {
                    path.push(current.parent_file().messages().position(|m| m == current).unwrap_or(0) as i64);
                    break;
                }
            }
        }
        path.reverse();
        path
    }

    /// The message as source fields (key = field number).
    pub fn fields(&self) -> Result<Vec<SourceField>> {
        self.message_fields(&self.message, "", 0)
    }

    fn message_fields(&self, message: &MessageDescriptor, names: &str, depth: usize) -> Result<Vec<SourceField>> {
        if depth > MAX_DEPTH {
            return Err(Error::Schema(format!(
                "message {} nests deeper than {MAX_DEPTH} levels (recursive?); it cannot be mapped to columns",
                message.full_name()
            )));
        }
        declared(message).iter().map(|f| self.source_field(f, names, depth)).collect()
    }

    fn source_field(&self, field: &FieldDescriptor, names: &str, depth: usize) -> Result<SourceField> {
        let path = join(names, field.name());
        let ty = if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                return Err(Error::Schema(format!("map field {path} has no entry message")));
            };
            let key = self.element(&entry.map_entry_key_field(), "key", &path, depth)?;
            let value = self.element(&entry.map_entry_value_field(), "value", &path, depth)?;
            SourceType::Map(Box::new(key), Box::new(value))
        } else if field.is_list() {
            SourceType::List(Box::new(self.element(field, "element", &path, depth)?))
        } else {
            self.kind_type(field, &path, depth)?
        };
        let required = field.is_list() || field.is_map() || !field.supports_presence();
        Ok(SourceField {
            key: field.number().to_string(),
            aliases: Vec::new(),
            name: field.name().to_string(),
            ty,
            required,
            doc: None,
        })
    }

    fn element(&self, field: &FieldDescriptor, key: &str, path: &str, depth: usize) -> Result<SourceField> {
        let ty = self.kind_type(field, path, depth)?;
        // Repeated elements and map keys are never null; an entry may omit a message value.
        let required = key != "value" || !matches!(field.kind(), Kind::Message(_));
        Ok(SourceField { key: key.into(), aliases: vec![], name: key.into(), ty, required, doc: None })
    }

    fn kind_type(&self, field: &FieldDescriptor, path: &str, depth: usize) -> Result<SourceType> {
        let p = |t| Ok(SourceType::Primitive(t));
        match field.kind() {
            Kind::Double => p(PrimitiveType::Double),
            Kind::Float => p(PrimitiveType::Float),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => p(PrimitiveType::Int),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 if self.options.timestamp_fields.iter().any(|t| t == path) => {
                p(PrimitiveType::Timestamptz)
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => p(PrimitiveType::Long),
            Kind::Uint32 | Kind::Fixed32 | Kind::Uint64 | Kind::Fixed64 => p(PrimitiveType::Long),
            Kind::Bool => p(PrimitiveType::Boolean),
            Kind::String | Kind::Enum(_) => p(PrimitiveType::String),
            Kind::Bytes => p(PrimitiveType::Binary),
            Kind::Message(m) if m.full_name() == TIMESTAMP => p(PrimitiveType::Timestamptz),
            Kind::Message(m) => Ok(SourceType::Struct(self.message_fields(&m, path, depth + 1)?)),
        }
    }

    /// A decoder writing this message into rows of `table`, routing fields by `ids`.
    pub(crate) fn plan(&self, table: &Schema, ids: &FieldIds) -> Result<MessagePlan> {
        self.message_plan(&self.message, table.as_struct().fields(), "", "", ids)
    }

    fn message_plan(
        &self,
        message: &MessageDescriptor,
        columns: &[NestedFieldRef],
        keys: &str,
        names: &str,
        ids: &FieldIds,
    ) -> Result<MessagePlan> {
        let mut fields = Vec::new();
        let mut by_number = HashMap::new();
        let mut fed = vec![false; columns.len()];
        for field in message.fields() {
            let key_path = join(keys, &field.number().to_string());
            let name_path = join(names, field.name());
            // A field the table has no column for (dropped by config) is skipped like an unknown one.
            let Some(column) = ids.get(&key_path).and_then(|id| position_of(columns, *id)) else { continue };
            fed[column] = true;
            let column_type = &columns[column].field_type;
            let shape = if field.is_map() {
                let (Kind::Message(entry), Type::Map(map)) = (field.kind(), column_type.as_ref()) else {
                    return Err(mismatch(&name_path));
                };
                let key = self.conv(
                    &entry.map_entry_key_field(),
                    &map.key_field.field_type,
                    &join(&key_path, "key"),
                    &name_path,
                    ids,
                )?;
                let value = self.conv(
                    &entry.map_entry_value_field(),
                    &map.value_field.field_type,
                    &join(&key_path, "value"),
                    &name_path,
                    ids,
                )?;
                Shape::Map(key, value)
            } else if field.is_list() {
                let Type::List(list) = column_type.as_ref() else { return Err(mismatch(&name_path)) };
                Shape::List(self.conv(
                    &field,
                    &list.element_field.field_type,
                    &join(&key_path, "element"),
                    &name_path,
                    ids,
                )?)
            } else {
                Shape::Single(self.conv(&field, column_type, &key_path, &name_path, ids)?)
            };
            by_number.insert(field.number(), fields.len());
            fields.push(FieldPlan { name: name_path, column, shape, presence: field.supports_presence() });
        }
        let unfed = (0..columns.len()).filter(|c| !fed[*c]).collect();
        let mut by_small_number = Vec::new();
        for (number, index) in &by_number {
            let n = *number as usize;
            if n < SMALL_NUMBERS {
                if by_small_number.len() <= n {
                    by_small_number.resize(n + 1, None);
                }
                by_small_number[n] = Some(*index);
            }
        }
        Ok(MessagePlan { fields, by_small_number, by_number, unfed })
    }

    fn conv(
        &self,
        field: &FieldDescriptor,
        column: &Type,
        key_path: &str,
        name_path: &str,
        ids: &FieldIds,
    ) -> Result<Conv> {
        Ok(match field.kind() {
            Kind::Double => Conv::Double,
            Kind::Float => Conv::Float,
            Kind::Int32 => Conv::Int32,
            Kind::Sint32 => Conv::Sint32,
            Kind::Sfixed32 => Conv::Sfixed32,
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64
                if matches!(column, Type::Primitive(PrimitiveType::Timestamptz | PrimitiveType::Timestamp)) =>
            {
                let raw = match field.kind() {
                    Kind::Sint64 => Conv::Sint64,
                    Kind::Sfixed64 => Conv::Sfixed64,
                    _ => Conv::Int64,
                };
                Conv::Epoch(Box::new(raw), self.options.timestamp_unit)
            }
            Kind::Int64 => Conv::Int64,
            Kind::Sint64 => Conv::Sint64,
            Kind::Sfixed64 => Conv::Sfixed64,
            Kind::Uint32 => Conv::Uint32,
            Kind::Fixed32 => Conv::Fixed32,
            Kind::Uint64 => Conv::Uint64,
            Kind::Fixed64 => Conv::Fixed64,
            Kind::Bool => Conv::Bool,
            Kind::String => Conv::String,
            Kind::Bytes => Conv::Bytes,
            Kind::Enum(e) => Conv::Enum(Arc::new(e.values().map(|v| (v.number(), v.name().to_string())).collect())),
            Kind::Message(m) if m.full_name() == TIMESTAMP => Conv::Timestamp,
            Kind::Message(m) => {
                let Type::Struct(s) = column else { return Err(mismatch(name_path)) };
                Conv::Message(Box::new(self.message_plan(&m, s.fields(), key_path, name_path, ids)?))
            }
        })
    }
}

/// The fields in declaration order (the order columns follow), not field-number order.
fn declared(message: &MessageDescriptor) -> Vec<FieldDescriptor> {
    let proto = message.descriptor_proto();
    let mut fields: Vec<FieldDescriptor> =
        proto.field.iter().filter_map(|f| message.get_field_by_name(f.name())).collect();
    if fields.len() != message.fields().len() {
        fields = message.fields().collect(); // extensions or a descriptor we cannot line up
    }
    fields
}

fn mismatch(path: &str) -> Error {
    Error::Schema(format!("field {path}: the table column has a different shape than the Protobuf field"))
}

/// A file resolver serving one in-memory file.
struct SingleFile(protox::file::File);

impl protox::file::FileResolver for SingleFile {
    fn open_file(&self, name: &str) -> std::result::Result<protox::file::File, protox::Error> {
        if name == self.0.name() { Ok(self.0.clone()) } else { Err(protox::Error::file_not_found(name)) }
    }
}

/// How one message's fields reach its columns.
#[derive(Debug)]
pub(crate) struct MessagePlan {
    fields: Vec<FieldPlan>,
    /// Field index by field number, for small numbers (the common case): no hashing.
    by_small_number: Vec<Option<usize>>,
    by_number: HashMap<u32, usize>,
    /// Columns no field of this message feeds (null).
    unfed: Vec<usize>,
}

#[derive(Debug)]
struct FieldPlan {
    name: String,
    column: usize,
    shape: Shape,
    presence: bool,
}

#[derive(Debug)]
enum Shape {
    Single(Conv),
    List(Conv),
    Map(Conv, Conv),
}

/// Wire value → column value.
#[derive(Debug)]
enum Conv {
    Double,
    Float,
    Int32,
    Sint32,
    Sfixed32,
    Int64,
    Sint64,
    Sfixed64,
    Uint32,
    Fixed32,
    Uint64,
    Fixed64,
    Bool,
    String,
    Bytes,
    Enum(Arc<HashMap<i32, String>>),
    Timestamp,
    Epoch(Box<Conv>, EpochUnit),
    Message(Box<MessagePlan>),
}

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
    RecordError::new("bad_protobuf", message)
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
    RecordError::new("internal", format!("field {field}: the column does not have the planned shape"))
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
                            "out_of_range",
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
                RecordError::new("out_of_range", format!("field {field}: {v} does not fit a long column (max 2^63-1)"))
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
                None => return Err(RecordError::new("out_of_range", format!("field {field}: timestamp out of range"))),
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

#[cfg(test)]
mod tests;
