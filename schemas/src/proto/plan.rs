//! Planning a Protobuf decoder once per (message, table schema): which column each field
//! number feeds, in which shape, through which conversion, so decoding never looks anything up
//! by name.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::spec::{NestedFieldRef, PrimitiveType, Schema, Type};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::{ProtoSchema, SMALL_NUMBERS, TIMESTAMP};
use crate::evolve::{FieldIds, join, position_of};
use crate::json::EpochUnit;
use crate::{Error, Result};

impl ProtoSchema {
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

fn mismatch(path: &str) -> Error {
    Error::Schema(format!("field {path}: the table column has a different shape than the Protobuf field"))
}

/// How one message's fields reach its columns.
#[derive(Debug)]
pub(crate) struct MessagePlan {
    pub(super) fields: Vec<FieldPlan>,
    /// Field index by field number, for small numbers (the common case): no hashing.
    pub(super) by_small_number: Vec<Option<usize>>,
    pub(super) by_number: HashMap<u32, usize>,
    /// Columns no field of this message feeds (null).
    pub(super) unfed: Vec<usize>,
}

#[derive(Debug)]
pub(super) struct FieldPlan {
    pub(super) name: String,
    pub(super) column: usize,
    pub(super) shape: Shape,
    pub(super) presence: bool,
}

#[derive(Debug)]
pub(super) enum Shape {
    Single(Conv),
    List(Conv),
    Map(Conv, Conv),
}

/// Wire value → column value.
#[derive(Debug)]
pub(super) enum Conv {
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
