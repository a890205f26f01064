//! Merging a source schema into a table schema level by level: matching fields by key (then
//! by name for unmapped tables), widening types, adding, renaming, reordering and dropping
//! columns, each change recorded in words.

use std::collections::HashSet;

use iceberg::spec::{ListType, MapType, NestedField, NestedFieldRef, StructType, Type};

use super::{EvolveOptions, FieldIds, SourceField, SourceType, join, widens};
use crate::{Error, Result};

/// One merge of a source schema into a table schema: the ids it hands out and the changes it
/// makes, in words for the log.
pub(super) struct Ctx<'a> {
    pub(super) ids: &'a FieldIds,
    pub(super) new_ids: FieldIds,
    pub(super) next_id: i32,
    pub(super) creating: bool,
    /// Apply renames, reorders, additions and drops (false for an older source schema).
    pub(super) follow: bool,
    pub(super) changes: Vec<String>,
}

impl Ctx<'_> {
    pub(super) fn id(&mut self) -> i32 {
        self.next_id += 1;
        self.next_id
    }

    /// A field that is new to the table: fresh ids all the way down.
    pub(super) fn fresh(&mut self, field: &SourceField, prefix: &str) -> NestedField {
        let path = join(prefix, &field.key);
        let id = self.id();
        self.new_ids.insert(path.clone(), id);
        let ty = self.fresh_type(&field.ty, &path);
        let mut nested = NestedField::new(id, &field.name, ty, field.required && self.creating);
        nested.doc = field.doc.clone();
        nested
    }

    pub(super) fn fresh_type(&mut self, ty: &SourceType, path: &str) -> Type {
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
    pub(super) fn find<'t>(
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

    pub(super) fn merge_struct(
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

    pub(super) fn merge_field(
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

    pub(super) fn merge_type(&mut self, table: &Type, source: &SourceType, path: &str, shown: &str) -> Result<Type> {
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

fn describe(ty: &SourceType) -> String {
    match ty {
        SourceType::Primitive(p) => p.to_string(),
        SourceType::Struct(_) => "struct".into(),
        SourceType::List(_) => "list".into(),
        SourceType::Map(..) => "map".into(),
    }
}
