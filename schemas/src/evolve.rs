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

use iceberg::spec::{NestedFieldRef, PrimitiveType, Schema};

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

mod merge;

use merge::Ctx;

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

/// Resolves source key paths to the position of their column at each level of `table`: what
/// decoders need to route a source field to its column.
pub(crate) fn position_of(fields: &[NestedFieldRef], id: i32) -> Option<usize> {
    fields.iter().position(|f| f.id == id)
}

#[cfg(test)]
mod tests;
