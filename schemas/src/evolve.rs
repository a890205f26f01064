//! Source schemas (a Protobuf message, an Avro record) as a format-neutral tree, the stable
//! mapping from source fields to Iceberg field ids, and the schema change that makes a table
//! follow a newer source schema.
//!
//! Identity: every source field has a *key* that survives renames — the Protobuf field number,
//! the Avro field name (an Avro rename lists the old name in `aliases`). Keys of nested fields
//! are joined with `.` (`3.1`); list elements, map keys and values use `element`, `key`,
//! `value`. The table keeps `key path → field id` in the [`FIELD_IDS_PROPERTY`] table property,
//! so a renamed source field renames its column (same id) instead of dropping and adding one.

use std::collections::{BTreeMap, HashMap, HashSet};

use iceberg::spec::{ListType, MapType, NestedField, NestedFieldRef, PrimitiveType, Schema, StructType, Type};

use crate::{Error, Result};

/// Table property holding the source-field → Iceberg-field-id mapping (JSON object).
pub const FIELD_IDS_PROPERTY: &str = "icefall.field-ids";

/// A field of a source schema.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceField {
    /// Identity within its parent that survives renames (Protobuf number, Avro name).
    pub key: String,
    /// Earlier keys of the same field (Avro `aliases`).
    pub aliases: Vec<String>,
    /// Column name.
    pub name: String,
    /// The field's type at the source.
    pub ty: SourceType,
    /// Never null in the source (a new table gets a required column).
    pub required: bool,
    /// The field's documentation at the source, carried to the table column.
    pub doc: Option<String>,
}

/// Type of a source field, in Iceberg terms.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceType {
    /// A primitive value.
    Primitive(PrimitiveType),
    /// A record of fields.
    Struct(Vec<SourceField>),
    /// A list of elements.
    List(Box<SourceField>),
    /// A map of keys to values.
    Map(Box<SourceField>, Box<SourceField>),
}

/// `key path → Iceberg field id`.
pub type FieldIds = BTreeMap<String, i32>;

/// Reads the mapping from a table's properties (empty when the table has none yet).
pub fn field_ids_from_properties(properties: &HashMap<String, String>) -> Result<FieldIds> {
    match properties.get(FIELD_IDS_PROPERTY) {
        None => Ok(FieldIds::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            Error::Schema(format!("table property {FIELD_IDS_PROPERTY} is not a JSON object of field ids: {e}"))
        }),
    }
}

/// The mapping as the table property's value.
pub fn field_ids_to_property(ids: &FieldIds) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

/// What a table must become to hold records of a source schema.
#[derive(Debug, Clone)]
pub struct Evolution {
    /// The new table schema, or `None` when the current one already fits.
    pub schema: Option<Schema>,
    /// The mapping after the change (may differ even when the schema does not).
    pub field_ids: FieldIds,
    /// One line per change, for logs (`add column b (long)`, `rename a → c`, …).
    pub changes: Vec<String>,
}

/// Options for [`evolve`].
#[derive(Debug, Clone, Default)]
pub struct EvolveOptions {
    /// Drop columns whose source field disappeared (default: keep them, null from now on).
    pub drop_removed_fields: bool,
    /// Top-level columns the source never provides (Kafka metadata columns): always kept.
    pub keep_columns: Vec<String>,
    /// Columns that may not be dropped or changed incompatibly (partition sources).
    pub protected_ids: HashSet<i32>,
    /// The source schema is older than one the table already follows (an old producer still
    /// running): map its fields, widen or relax what its values need, but do not rename,
    /// reorder, add or drop columns after it — that would undo the newer schema's changes.
    pub older_source: bool,
}

/// A new table schema for a source schema: ids assigned depth-first from 1, required-ness as
/// the source says. Extra columns (metadata) go after the source's. Note that creating a table
/// from it may renumber the fields (Iceberg assigns fresh ids): record the mapping with
/// [`evolve`] against the created table, which matches an unmapped table by name.
pub fn create_schema(source: &[SourceField], extra: &[NestedFieldRef]) -> Result<(Schema, FieldIds)> {
    let mut ctx = Ctx {
        ids: &FieldIds::new(),
        new_ids: FieldIds::new(),
        next_id: 0,
        creating: true,
        follow: true,
        changes: vec![],
    };
    let mut fields: Vec<NestedFieldRef> =
        source.iter().map(|f| ctx.fresh(f, "")).collect::<Vec<_>>().into_iter().map(Into::into).collect();
    for field in extra {
        ctx.next_id += 1;
        let mut field = field.as_ref().clone();
        field.id = ctx.next_id;
        fields.push(field.into());
    }
    let schema = Schema::builder()
        .with_fields(fields)
        .build()
        .map_err(|e| Error::Iceberg { context: "build the table schema".into(), source: Box::new(e) })?;
    Ok((schema, ctx.new_ids))
}

/// The change that lets `table` (with `ids`, and `last_column_id` as the table metadata says)
/// hold records of `source`. Errors name the field whose change cannot be applied.
pub fn evolve(
    table: &Schema,
    last_column_id: i32,
    ids: &FieldIds,
    source: &[SourceField],
    options: &EvolveOptions,
) -> Result<Evolution> {
    let mut ctx = Ctx {
        ids,
        new_ids: FieldIds::new(),
        next_id: last_column_id.max(table.highest_field_id()),
        creating: false,
        follow: !options.older_source,
        changes: vec![],
    };
    let fields = ctx.merge_struct(table.as_struct().fields(), source, "", "", Some(options))?;
    // Mappings of fields that left the source stay: an older producer may still send them.
    let mut field_ids = ids.clone();
    field_ids.extend(ctx.new_ids);
    let changed = fields.as_slice() != table.as_struct().fields();
    let schema = if changed {
        Some(
            Schema::builder()
                .with_schema_id(table.schema_id() + 1)
                .with_fields(fields)
                .with_identifier_field_ids(table.identifier_field_ids())
                .build()
                .map_err(|e| Error::Iceberg {
                    context: "build the evolved table schema".into(),
                    source: Box::new(e),
                })?,
        )
    } else {
        None
    };
    Ok(Evolution { schema, field_ids, changes: ctx.changes })
}

struct Ctx<'a> {
    ids: &'a FieldIds,
    new_ids: FieldIds,
    next_id: i32,
    creating: bool,
    /// Apply renames, reorders, additions and drops (false for an older source schema).
    follow: bool,
    changes: Vec<String>,
}

impl Ctx<'_> {
    fn id(&mut self) -> i32 {
        self.next_id += 1;
        self.next_id
    }

    /// A field that is new to the table: fresh ids all the way down.
    fn fresh(&mut self, field: &SourceField, prefix: &str) -> NestedField {
        let path = join(prefix, &field.key);
        let id = self.id();
        self.new_ids.insert(path.clone(), id);
        let ty = self.fresh_type(&field.ty, &path);
        let mut nested = NestedField::new(id, &field.name, ty, field.required && self.creating);
        nested.doc = field.doc.clone();
        nested
    }

    fn fresh_type(&mut self, ty: &SourceType, path: &str) -> Type {
        match ty {
            SourceType::Primitive(p) => Type::Primitive(p.clone()),
            SourceType::Struct(fields) => {
                let fields: Vec<NestedFieldRef> = fields.iter().map(|f| self.fresh(f, path).into()).collect();
                Type::Struct(StructType::new(fields))
            }
            SourceType::List(element) => {
                let element_path = join(path, "element");
                let id = self.id();
                self.new_ids.insert(element_path.clone(), id);
                let ty = self.fresh_type(&element.ty, &element_path);
                Type::List(ListType::new(NestedField::list_element(id, ty, element.required).into()))
            }
            SourceType::Map(key, value) => {
                let (key_path, value_path) = (join(path, "key"), join(path, "value"));
                let key_id = self.id();
                self.new_ids.insert(key_path.clone(), key_id);
                let key_ty = self.fresh_type(&key.ty, &key_path);
                let value_id = self.id();
                self.new_ids.insert(value_path.clone(), value_id);
                let value_ty = self.fresh_type(&value.ty, &value_path);
                Type::Map(MapType::new(
                    NestedField::map_key_element(key_id, key_ty).into(),
                    NestedField::map_value_element(value_id, value_ty, value.required).into(),
                ))
            }
        }
    }

    /// The table field a source field maps to: by recorded key (or an alias), else — for a
    /// table that has no mapping yet — by name.
    fn find<'t>(
        &self,
        table_fields: &'t [NestedFieldRef],
        field: &SourceField,
        prefix: &str,
        taken: &HashSet<i32>,
    ) -> Option<&'t NestedFieldRef> {
        let by_id = |id: i32| table_fields.iter().find(|f| f.id == id && !taken.contains(&f.id));
        for key in std::iter::once(&field.key).chain(&field.aliases) {
            if let Some(found) = self.ids.get(&join(prefix, key)).and_then(|id| by_id(*id)) {
                return Some(found);
            }
        }
        let mapped: HashSet<i32> = self.ids.values().copied().collect();
        table_fields.iter().find(|f| f.name == field.name && !mapped.contains(&f.id) && !taken.contains(&f.id))
    }

    fn merge_struct(
        &mut self,
        table_fields: &[NestedFieldRef],
        source: &[SourceField],
        prefix: &str,
        display: &str,
        top: Option<&EvolveOptions>,
    ) -> Result<Vec<NestedFieldRef>> {
        let mut taken = HashSet::new();
        let mut out = Vec::with_capacity(source.len());
        for field in source {
            let path = join(prefix, &field.key);
            let shown = join(display, &field.name);
            if top.is_some_and(|o| o.keep_columns.contains(&field.name)) {
                return Err(Error::Schema(format!(
                    "source field {shown} has the name of a metadata column; rename the metadata column in the config"
                )));
            }
            let merged = match self.find(table_fields, field, prefix, &taken) {
                Some(existing) => {
                    taken.insert(existing.id);
                    self.new_ids.insert(path.clone(), existing.id);
                    self.merge_field(existing, field, &path, &shown)?
                }
                None if !self.follow => continue, // no column: its values are skipped
                None => {
                    let fresh = self.fresh(field, prefix);
                    self.changes.push(format!("add column {shown} ({})", fresh.field_type));
                    fresh
                }
            };
            // Earlier names map to the same column, so records of an older schema that still
            // uses them (an old producer) find it even if the table never saw that schema.
            for alias in &field.aliases {
                let alias_path = join(prefix, alias);
                if !self.ids.contains_key(&alias_path) {
                    self.new_ids.entry(alias_path).or_insert(merged.id);
                }
            }
            out.push(NestedFieldRef::new(merged));
        }
        let keep = |f: &NestedFieldRef| top.is_some_and(|o| o.keep_columns.contains(&f.name));
        for field in table_fields.iter().filter(|f| !taken.contains(&f.id)) {
            let shown = join(display, &field.name);
            let protected = top.is_some_and(|o| o.protected_ids.contains(&field.id));
            if keep(field) {
                out.push(field.clone());
            } else if self.follow && top.is_some_and(|o| o.drop_removed_fields) && !protected {
                self.changes.push(format!("drop column {shown} (removed from the source)"));
            } else if field.required {
                self.changes.push(format!("make {shown} optional (removed from the source)"));
                let mut f = field.as_ref().clone();
                f.required = false;
                out.push(f.into());
            } else {
                out.push(field.clone());
            }
        }
        if !self.follow {
            out.sort_by_key(|f| table_fields.iter().position(|t| t.id == f.id));
        }
        let before: Vec<i32> = table_fields.iter().map(|f| f.id).filter(|id| out.iter().any(|f| f.id == *id)).collect();
        let after: Vec<i32> = out.iter().map(|f| f.id).filter(|id| before.contains(id)).collect();
        if before != after {
            let level = if display.is_empty() { "the table".to_string() } else { display.to_string() };
            self.changes.push(format!("reorder the columns of {level} as in the source"));
        }
        Ok(out)
    }

    fn merge_field(
        &mut self,
        existing: &NestedField,
        field: &SourceField,
        path: &str,
        shown: &str,
    ) -> Result<NestedField> {
        let mut merged = existing.clone();
        if existing.name != field.name && self.follow {
            self.changes.push(format!("rename {} → {}", existing.name, field.name));
            merged.name = field.name.clone();
        }
        if existing.required && !field.required {
            self.changes.push(format!("make {shown} optional"));
            merged.required = false;
        }
        merged.field_type = Box::new(self.merge_type(&existing.field_type, &field.ty, path, shown)?);
        Ok(merged)
    }

    fn merge_type(&mut self, table: &Type, source: &SourceType, path: &str, shown: &str) -> Result<Type> {
        let incompatible = |detail: String| {
            Error::Schema(format!(
                "field {shown}: the source changed its type incompatibly ({detail}); the column keeps its type. \
                 Fix the producer, or write the new shape to a new field"
            ))
        };
        match (table, source) {
            (Type::Primitive(t), SourceType::Primitive(s)) => {
                if t == s || widens(s, t) {
                    Ok(table.clone()) // same, or the source is narrower: values convert on write
                } else if widens(t, s) {
                    self.changes.push(format!("widen {shown} {t} → {s}"));
                    Ok(Type::Primitive(s.clone()))
                } else {
                    Err(incompatible(format!("column {t}, source now {s}")))
                }
            }
            (Type::Struct(t), SourceType::Struct(s)) => {
                Ok(Type::Struct(StructType::new(self.merge_struct(t.fields(), s, path, shown, None)?)))
            }
            (Type::List(t), SourceType::List(s)) => {
                let element_path = join(path, "element");
                self.new_ids.insert(element_path.clone(), t.element_field.id);
                let mut element = t.element_field.as_ref().clone();
                if element.required && !s.required {
                    self.changes.push(format!("make the elements of {shown} optional"));
                    element.required = false;
                }
                element.field_type = Box::new(self.merge_type(
                    &t.element_field.field_type,
                    &s.ty,
                    &element_path,
                    &join(shown, "element"),
                )?);
                Ok(Type::List(ListType::new(element.into())))
            }
            (Type::Map(t), SourceType::Map(sk, sv)) => {
                let (key_path, value_path) = (join(path, "key"), join(path, "value"));
                self.new_ids.insert(key_path.clone(), t.key_field.id);
                self.new_ids.insert(value_path.clone(), t.value_field.id);
                let key_ty = self.merge_type(&t.key_field.field_type, &sk.ty, &key_path, &join(shown, "key"))?;
                if key_ty != *t.key_field.field_type {
                    return Err(incompatible("map keys cannot change type".into()));
                }
                let mut value = t.value_field.as_ref().clone();
                if value.required && !sv.required {
                    self.changes.push(format!("make the values of {shown} optional"));
                    value.required = false;
                }
                value.field_type =
                    Box::new(self.merge_type(&t.value_field.field_type, &sv.ty, &value_path, &join(shown, "value"))?);
                Ok(Type::Map(MapType::new(t.key_field.clone(), value.into())))
            }
            (t, s) => Err(incompatible(format!("column {t}, source now {}", describe(s)))),
        }
    }
}

/// Whether values of `from` fit a column of `to` without loss (Iceberg's allowed promotions).
pub(crate) fn widens(from: &PrimitiveType, to: &PrimitiveType) -> bool {
    match (from, to) {
        (PrimitiveType::Int, PrimitiveType::Long) | (PrimitiveType::Float, PrimitiveType::Double) => true,
        (PrimitiveType::Decimal { precision: p1, scale: s1 }, PrimitiveType::Decimal { precision: p2, scale: s2 }) => {
            s1 == s2 && p1 < p2
        }
        _ => false,
    }
}

fn describe(ty: &SourceType) -> String {
    match ty {
        SourceType::Primitive(p) => p.to_string(),
        SourceType::Struct(_) => "struct".into(),
        SourceType::List(_) => "list".into(),
        SourceType::Map(..) => "map".into(),
    }
}

/// Resolves source key paths to the position of their column at each level of `table`: what
/// decoders need to route a source field to its column.
pub(crate) fn position_of(fields: &[NestedFieldRef], id: i32) -> Option<usize> {
    fields.iter().position(|f| f.id == id)
}

#[cfg(test)]
mod tests;
