//! JSON schema evolution (`evolve = true`): finding what a record has that the table cannot
//! hold yet, and the table's fields with those additions as a source schema for
//! [`crate::evolve::evolve`].
//!
//! A record is probed without decoding it: known primitive values are skipped after a syntax
//! check; only the value under a new key is parsed, to infer its type. Inferred types: `true`/
//! `false` → boolean, integers → long (past the long range: double), other numbers → double,
//! strings → string, objects → struct (fields in key order), arrays → list of the first
//! element's type (objects' fields merged). A null, an empty object or an empty array says
//! nothing: the field is added when a record gives it a value. New columns are optional. An int
//! column given an integer past the int range is widened to long, as the Iceberg spec allows.

use iceberg::spec::{NestedField, PrimitiveType, StructType, Type};
use serde_json::Value;

use crate::evolve::{SourceField, SourceType};

mod probe;

pub use probe::{ShapeProbe, field_text};

/// One step from a struct to a nested value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// A struct's field, by name.
    Field(String),
    /// A list's elements.
    Element,
    /// A map's values.
    Value,
}

/// What records need that the table lacks, gathered over one or more records.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NewShape {
    /// New fields: the path of the struct they join, their name and inferred type, in the
    /// order they were met (the first type inferred for a path wins).
    pub additions: Vec<(Vec<Step>, String, SourceType)>,
    /// Int columns that need long.
    pub widen_to_long: Vec<Vec<Step>>,
}

impl NewShape {
    /// Nothing found.
    pub fn is_empty(&self) -> bool {
        self.additions.is_empty() && self.widen_to_long.is_empty()
    }

    fn add(&mut self, parent: &[Step], name: &str, ty: SourceType) {
        if !self.additions.iter().any(|(p, n, _)| p == parent && n == name) {
            self.additions.push((parent.to_vec(), name.to_string(), ty));
        }
    }

    fn widen(&mut self, path: Vec<Step>) {
        if !self.widen_to_long.contains(&path) {
            self.widen_to_long.push(path);
        }
    }

    /// The columns of `table` (metadata columns left out) with these changes applied, as source
    /// fields matched to the table by name: what [`crate::evolve::evolve`] needs to add the new
    /// fields and widen the columns.
    pub fn source_fields(&self, table: &StructType, metadata_fields: &[String]) -> Vec<SourceField> {
        let mut fields: Vec<SourceField> =
            table.fields().iter().filter(|f| !metadata_fields.contains(&f.name)).map(|f| source_field(f)).collect();
        for path in &self.widen_to_long {
            if let Some(field) = locate(&mut fields, path)
                && field.ty == SourceType::Primitive(PrimitiveType::Int)
            {
                field.ty = SourceType::Primitive(PrimitiveType::Long);
            }
        }
        for (parent, name, ty) in &self.additions {
            let parent_fields = match parent.as_slice() {
                [] => Some(&mut fields),
                path => locate(&mut fields, path).and_then(struct_fields),
            };
            if let Some(parent_fields) = parent_fields
                && !parent_fields.iter().any(|f| &f.name == name)
            {
                parent_fields.push(inferred_field(name, ty.clone()));
            }
        }
        fields
    }
}

/// A table's fields as source fields (keys are names).
pub fn source_fields_of(table: &StructType) -> Vec<SourceField> {
    table.fields().iter().map(|f| source_field(f)).collect()
}

fn inferred_field(name: &str, ty: SourceType) -> SourceField {
    SourceField { key: name.to_string(), aliases: vec![], name: name.to_string(), ty, required: false, doc: None }
}

fn source_field(field: &NestedField) -> SourceField {
    SourceField {
        key: field.name.clone(),
        aliases: vec![],
        name: field.name.clone(),
        ty: source_type(&field.field_type),
        required: field.required,
        doc: field.doc.clone(),
    }
}

fn source_type(ty: &Type) -> SourceType {
    match ty {
        Type::Primitive(p) => SourceType::Primitive(p.clone()),
        Type::Struct(s) => SourceType::Struct(s.fields().iter().map(|f| source_field(f)).collect()),
        Type::List(l) => SourceType::List(Box::new(SourceField {
            key: "element".into(),
            name: "element".into(),
            ..source_field(&l.element_field)
        })),
        Type::Map(m) => SourceType::Map(
            Box::new(SourceField { key: "key".into(), name: "key".into(), ..source_field(&m.key_field) }),
            Box::new(SourceField { key: "value".into(), name: "value".into(), ..source_field(&m.value_field) }),
        ),
    }
}

/// The field at `path` (a field step, then element/value steps, and so on).
fn locate<'a>(fields: &'a mut [SourceField], path: &[Step]) -> Option<&'a mut SourceField> {
    let (Step::Field(name), rest) = path.split_first()? else { return None };
    let mut field = fields.iter_mut().find(|f| &f.name == name)?;
    let mut rest = rest;
    loop {
        match rest.split_first() {
            None => return Some(field),
            Some((Step::Field(_), _)) => return locate(struct_fields(field)?, rest),
            Some((Step::Element, tail)) => {
                let SourceType::List(element) = &mut field.ty else { return None };
                field = element.as_mut();
                rest = tail;
            }
            Some((Step::Value, tail)) => {
                let SourceType::Map(_, value) = &mut field.ty else { return None };
                field = value.as_mut();
                rest = tail;
            }
        }
    }
}

fn struct_fields(field: &mut SourceField) -> Option<&mut Vec<SourceField>> {
    if let SourceType::Struct(fields) = &mut field.ty { Some(fields) } else { None }
}

/// The type a JSON value says a new field has (`None`: it says nothing yet).
pub fn infer(value: &Value) -> Option<SourceType> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some(SourceType::Primitive(PrimitiveType::Boolean)),
        Value::Number(n) if n.is_i64() => Some(SourceType::Primitive(PrimitiveType::Long)),
        Value::Number(_) => Some(SourceType::Primitive(PrimitiveType::Double)),
        Value::String(_) => Some(SourceType::Primitive(PrimitiveType::String)),
        Value::Array(items) => {
            let mut element: Option<SourceType> = None;
            for item in items {
                element = match (element, infer(item)) {
                    (None, found) => found,
                    (Some(SourceType::Struct(mut known)), Some(SourceType::Struct(more))) => {
                        for field in more {
                            if !known.iter().any(|f| f.name == field.name) {
                                known.push(field);
                            }
                        }
                        Some(SourceType::Struct(known))
                    }
                    (kept, _) => kept,
                };
            }
            let element = SourceField { key: "element".into(), ..inferred_field("element", element?) };
            Some(SourceType::List(Box::new(element)))
        }
        Value::Object(entries) => {
            let fields: Vec<SourceField> =
                entries.iter().filter_map(|(name, v)| Some(inferred_field(name, infer(v)?))).collect();
            (!fields.is_empty()).then_some(SourceType::Struct(fields))
        }
    }
}

#[cfg(test)]
#[path = "infer_tests.rs"]
mod tests;
