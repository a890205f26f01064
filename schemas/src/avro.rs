//! Avro: a record schema (from a file or a schema registry) and a decoder that reads Avro
//! binary straight into column builders, planned once per writer schema and table schema.
//!
//! Each writer schema gets its own plan, routed by field identity (name, or an alias for a
//! renamed field): no Avro reader-schema resolution is needed, and records of older and newer
//! writer schemas land in the same columns.
//!
//! Mapping: `boolean`, `int`, `long`, `float`, `double`, `string`; `bytes` → binary; `fixed` →
//! fixed; enum → string; record → struct; array → list; map → map<string, …>; a union of
//! `null` and one type → optional; logical types `date`, `time-millis`/`time-micros` → time,
//! `timestamp-millis`/`-micros` → timestamptz, `local-timestamp-*` → timestamp, `decimal` →
//! decimal, `uuid` (on string) → uuid.

use std::collections::HashMap;

use apache_avro::Schema as Avro;
use apache_avro::schema::{Name, RecordSchema};
use iceberg::spec::{NestedFieldRef, PrimitiveType, Schema, Type};

use crate::evolve::{FieldIds, SourceField, SourceType, join, position_of};
use crate::{Error, Result};

mod read;

pub(crate) use read::decode_record;

/// An Avro record schema to decode.
#[derive(Debug, Clone)]
pub struct AvroSchema {
    schema: Avro,
    /// Named types by full name, for `Ref`s.
    names: HashMap<Name, Avro>,
}

impl AvroSchema {
    /// Parses an Avro schema (JSON); the top level must be a record.
    pub fn parse(text: &str) -> Result<Self> {
        let schema =
            Avro::parse_str(text).map_err(|e| Error::Schema(format!("the Avro schema does not parse: {e}")))?;
        if !matches!(schema, Avro::Record(_)) {
            return Err(Error::Schema("the Avro schema must be a record at the top level".into()));
        }
        let mut names = HashMap::new();
        collect_names(&schema, &mut names);
        let parsed = AvroSchema { schema, names };
        parsed.fields()?;
        Ok(parsed)
    }

    fn resolve<'a>(&'a self, schema: &'a Avro) -> Result<&'a Avro> {
        match schema {
            Avro::Ref { name } => {
                self.names.get(name).ok_or_else(|| Error::Schema(format!("Avro type {name} is not defined")))
            }
            other => Ok(other),
        }
    }

    /// The record as source fields (key = field name; aliases = earlier names).
    pub fn fields(&self) -> Result<Vec<SourceField>> {
        let Avro::Record(record) = &self.schema else { return Err(Error::Schema("not a record".into())) };
        self.record_fields(record, "", 0)
    }

    fn record_fields(&self, record: &RecordSchema, path: &str, depth: usize) -> Result<Vec<SourceField>> {
        if depth > 32 {
            return Err(Error::Schema(format!("record {} nests too deep (recursive?)", record.name)));
        }
        record
            .fields
            .iter()
            .map(|f| {
                let shown = join(path, &f.name);
                let (ty, required) = self.source_type(&f.schema, &shown, depth)?;
                Ok(SourceField {
                    key: f.name.clone(),
                    aliases: f.aliases.clone().unwrap_or_default(),
                    name: f.name.clone(),
                    ty,
                    required,
                    doc: f.doc.clone(),
                })
            })
            .collect()
    }

    /// The type of a value and whether it can never be null.
    fn source_type(&self, schema: &Avro, path: &str, depth: usize) -> Result<(SourceType, bool)> {
        let p = |t| Ok((SourceType::Primitive(t), true));
        match self.resolve(schema)? {
            Avro::Boolean => p(PrimitiveType::Boolean),
            Avro::Int => p(PrimitiveType::Int),
            Avro::Long => p(PrimitiveType::Long),
            Avro::Float => p(PrimitiveType::Float),
            Avro::Double => p(PrimitiveType::Double),
            Avro::Bytes => p(PrimitiveType::Binary),
            Avro::String | Avro::Enum(_) => p(PrimitiveType::String),
            Avro::Fixed(f) => p(PrimitiveType::Fixed(f.size as u64)),
            Avro::Uuid => p(PrimitiveType::Uuid),
            Avro::Date => p(PrimitiveType::Date),
            Avro::TimeMillis | Avro::TimeMicros => p(PrimitiveType::Time),
            Avro::TimestampMillis | Avro::TimestampMicros => p(PrimitiveType::Timestamptz),
            Avro::LocalTimestampMillis | Avro::LocalTimestampMicros => p(PrimitiveType::Timestamp),
            Avro::Decimal(d) => p(PrimitiveType::Decimal { precision: d.precision as u32, scale: d.scale as u32 }),
            Avro::Record(r) => Ok((SourceType::Struct(self.record_fields(r, path, depth + 1)?), true)),
            Avro::Array(a) => {
                let (ty, required) = self.source_type(&a.items, &join(path, "element"), depth + 1)?;
                let element = SourceField {
                    key: "element".into(),
                    aliases: vec![],
                    name: "element".into(),
                    ty,
                    required,
                    doc: None,
                };
                Ok((SourceType::List(Box::new(element)), true))
            }
            Avro::Map(m) => {
                let (ty, required) = self.source_type(&m.types, &join(path, "value"), depth + 1)?;
                let key = SourceField {
                    key: "key".into(),
                    aliases: vec![],
                    name: "key".into(),
                    ty: SourceType::Primitive(PrimitiveType::String),
                    required: true,
                    doc: None,
                };
                let value =
                    SourceField { key: "value".into(), aliases: vec![], name: "value".into(), ty, required, doc: None };
                Ok((SourceType::Map(Box::new(key), Box::new(value)), true))
            }
            Avro::Union(u) => {
                let non_null: Vec<&Avro> = u.variants().iter().filter(|v| !matches!(v, Avro::Null)).collect();
                match non_null.as_slice() {
                    [one] => Ok((self.source_type(one, path, depth)?.0, false)),
                    _ => Err(Error::Schema(format!(
                        "field {path}: unions other than [\"null\", T] cannot be mapped to a column"
                    ))),
                }
            }
            other => Err(Error::Schema(format!("field {path}: Avro type {other:?} is not supported"))),
        }
    }

    /// A decoder writing records of this schema into rows of `table`, routing fields by `ids`.
    pub(crate) fn plan(&self, table: &Schema, ids: &FieldIds) -> Result<RecordPlan> {
        let Avro::Record(record) = &self.schema else { return Err(Error::Schema("not a record".into())) };
        self.record_plan(record, Some(table.as_struct().fields()), "", "", ids)
    }

    /// `columns` is `None` when the record's values are read and dropped (no column).
    fn record_plan(
        &self,
        record: &RecordSchema,
        columns: Option<&[NestedFieldRef]>,
        keys: &str,
        names: &str,
        ids: &FieldIds,
    ) -> Result<RecordPlan> {
        let mut fields = Vec::with_capacity(record.fields.len());
        let mut fed = vec![false; columns.map_or(0, <[_]>::len)];
        for f in &record.fields {
            let key_path = join(keys, &f.name);
            let name_path = join(names, &f.name);
            let target = columns.and_then(|cols| {
                let id =
                    std::iter::once(&f.name).chain(f.aliases.iter().flatten()).find_map(|k| ids.get(&join(keys, k)))?;
                position_of(cols, *id).map(|i| (i, cols[i].field_type.as_ref()))
            });
            if let Some((i, _)) = target {
                fed[i] = true;
            }
            let node = self.node(&f.schema, target.map(|t| t.1), &key_path, &name_path, ids)?;
            fields.push((node, target.map(|t| t.0), f.name.clone()));
        }
        let unfed = (0..fed.len()).filter(|c| !fed[*c]).collect();
        Ok(RecordPlan { fields, unfed })
    }

    fn node(&self, schema: &Avro, column: Option<&Type>, keys: &str, names: &str, ids: &FieldIds) -> Result<Node> {
        Ok(match self.resolve(schema)? {
            Avro::Null => Node::Null,
            Avro::Boolean => Node::Bool,
            Avro::Int => Node::Int,
            Avro::Long => Node::Long,
            Avro::Float => Node::Float,
            Avro::Double => Node::Double,
            Avro::Bytes => Node::Bytes,
            Avro::String => Node::String,
            Avro::Uuid => Node::Uuid,
            Avro::Fixed(f) => Node::Fixed(f.size),
            Avro::Enum(e) => Node::Enum(e.symbols.clone()),
            Avro::Date => Node::Int,
            Avro::TimeMillis => Node::Millis32,
            Avro::TimeMicros | Avro::TimestampMicros | Avro::LocalTimestampMicros => Node::Long,
            Avro::TimestampMillis | Avro::LocalTimestampMillis => Node::Millis64,
            Avro::Decimal(d) => {
                let max = 10i128.checked_pow(d.precision.min(38) as u32).unwrap_or(i128::MAX);
                match self.resolve(&d.inner)? {
                    Avro::Fixed(f) => Node::Decimal(Some(f.size), max),
                    _ => Node::Decimal(None, max),
                }
            }
            Avro::Record(r) => {
                let children = match column {
                    Some(Type::Struct(s)) => Some(s.fields()),
                    Some(_) => return Err(Error::Schema(format!("field {names}: the column is not a struct"))),
                    None => None,
                };
                Node::Record(Box::new(self.record_plan(r, children, keys, names, ids)?))
            }
            Avro::Array(a) => {
                let element = match column {
                    Some(Type::List(l)) => Some(l.element_field.field_type.as_ref()),
                    _ => None,
                };
                Node::Array(Box::new(self.node(&a.items, element, &join(keys, "element"), names, ids)?))
            }
            Avro::Map(m) => {
                let value = match column {
                    Some(Type::Map(m)) => Some(m.value_field.field_type.as_ref()),
                    _ => None,
                };
                Node::Map(Box::new(self.node(&m.types, value, &join(keys, "value"), names, ids)?))
            }
            Avro::Union(u) => Node::Union(
                u.variants().iter().map(|v| self.node(v, column, keys, names, ids)).collect::<Result<Vec<_>>>()?,
            ),
            other => return Err(Error::Schema(format!("field {names}: Avro type {other:?} is not supported"))),
        })
    }
}

fn collect_names(schema: &Avro, names: &mut HashMap<Name, Avro>) {
    match schema {
        Avro::Record(r) => {
            names.insert(r.name.clone(), schema.clone());
            r.fields.iter().for_each(|f| collect_names(&f.schema, names));
        }
        Avro::Enum(e) => {
            names.insert(e.name.clone(), schema.clone());
        }
        Avro::Fixed(f) => {
            names.insert(f.name.clone(), schema.clone());
        }
        Avro::Array(a) => collect_names(&a.items, names),
        Avro::Map(m) => collect_names(&m.types, names),
        Avro::Union(u) => u.variants().iter().for_each(|v| collect_names(v, names)),
        Avro::Decimal(d) => collect_names(&d.inner, names),
        _ => {}
    }
}

/// How one record's fields reach its columns.
#[derive(Debug)]
pub(crate) struct RecordPlan {
    /// In the writer schema's order: how to read the value, its column (if any), its name.
    fields: Vec<(Node, Option<usize>, String)>,
    unfed: Vec<usize>,
}

#[derive(Debug)]
enum Node {
    Null,
    Bool,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Uuid,
    Fixed(usize),
    Enum(Vec<String>),
    /// `time-millis` (int millis → micros).
    Millis32,
    /// `timestamp-millis` (long millis → micros).
    Millis64,
    /// Big-endian two's-complement unscaled value, in `fixed(n)` or `bytes`; its magnitude must
    /// stay below the second value (10^precision).
    Decimal(Option<usize>, i128),
    Record(Box<RecordPlan>),
    Array(Box<Node>),
    Map(Box<Node>),
    Union(Vec<Node>),
}

#[cfg(test)]
mod tests;
