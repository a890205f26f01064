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

use std::path::{Path, PathBuf};

use iceberg::spec::PrimitiveType;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

use crate::evolve::{SourceField, SourceType, join};
use crate::json::EpochUnit;
use crate::{Error, Result};

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
        Self::from_pool_in(&compiler.descriptor_pool(), Some(name), message, options)
    }

    /// Without `message`, the first message of `main_file` (the registered schema, not an import).
    fn from_pool(pool: &DescriptorPool, message: Option<&str>, options: ProtoOptions) -> Result<Self> {
        Self::from_pool_in(pool, None, message, options)
    }

    fn from_pool_in(
        pool: &DescriptorPool,
        main_file: Option<&str>,
        message: Option<&str>,
        options: ProtoOptions,
    ) -> Result<Self> {
        let descriptor = match message {
            Some(name) => pool.get_message_by_name(name.trim_start_matches('.')).ok_or_else(|| {
                let known: Vec<String> = pool.all_messages().map(|m| m.full_name().to_string()).take(20).collect();
                Error::Schema(format!("message {name} is not in the schema; it has: {}", known.join(", ")))
            })?,
            None => main_file
                .and_then(|name| pool.get_file_by_name(name))
                .or_else(|| pool.files().last())
                .and_then(|f| f.messages().next())
                .ok_or_else(|| Error::Schema("the Protobuf schema defines no message".into()))?,
        };
        let schema = ProtoSchema { message: descriptor, options };
        schema.fields()?; // unsupported shapes fail here, at start-up
        Ok(schema)
    }

    /// The full name of the message this schema decodes.
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

/// A file resolver serving one in-memory file.
struct SingleFile(protox::file::File);

impl protox::file::FileResolver for SingleFile {
    fn open_file(&self, name: &str) -> std::result::Result<protox::file::File, protox::Error> {
        if name == self.0.name() { Ok(self.0.clone()) } else { Err(protox::Error::file_not_found(name)) }
    }
}

mod plan;
mod wire;

pub(crate) use plan::MessagePlan;

pub(crate) use wire::{Scratch, decode_message};

#[cfg(test)]
mod tests;
