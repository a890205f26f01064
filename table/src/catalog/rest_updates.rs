//! What a REST commit request asks: the requirements the table must still meet and the updates
//! that turn the base metadata into ours.

use std::collections::HashMap;

use iceberg::spec::{SnapshotReference, TableMetadata};
use iceberg::{TableRequirement, TableUpdate};

/// The table must still be the one we built on: same table, same main branch, same schema;
/// adding a schema also needs the same last assigned field id (as Java's schema commits).
pub(super) fn requirements(base: &TableMetadata, new: &TableMetadata) -> Vec<TableRequirement> {
    let mut requirements = vec![
        TableRequirement::UuidMatch { uuid: base.uuid() },
        TableRequirement::RefSnapshotIdMatch {
            r#ref: iceberg::spec::MAIN_BRANCH.to_string(),
            snapshot_id: base.current_snapshot_id(),
        },
        TableRequirement::CurrentSchemaIdMatch { current_schema_id: base.current_schema_id() },
    ];
    if new.schemas_iter().any(|s| base.schema_by_id(s.schema_id()).is_none()) {
        requirements.push(TableRequirement::LastAssignedFieldIdMatch { last_assigned_field_id: base.last_column_id() });
    }
    requirements
}

/// A table's branches and tags (iceberg-rust keeps them private; its JSON form has them).
fn refs(metadata: &TableMetadata) -> HashMap<String, SnapshotReference> {
    serde_json::to_value(metadata)
        .ok()
        .and_then(|mut v| v.get_mut("refs").map(serde_json::Value::take))
        .and_then(|refs| serde_json::from_value(refs).ok())
        .unwrap_or_default()
}

/// The updates that turn `base` into `new`, for the changes our commit path makes: snapshots
/// added and removed, refs set and removed, a new current schema, properties.
pub fn updates_between(base: &TableMetadata, new: &TableMetadata) -> Vec<TableUpdate> {
    let mut updates = Vec::new();
    for schema in new.schemas_iter() {
        if base.schema_by_id(schema.schema_id()).is_none() {
            updates.push(TableUpdate::AddSchema { schema: schema.as_ref().clone() });
        }
    }
    if new.current_schema_id() != base.current_schema_id() {
        // -1: the schema this request adds, whatever id the server gives it.
        let added = base.schema_by_id(new.current_schema_id()).is_none();
        updates.push(TableUpdate::SetCurrentSchema { schema_id: if added { -1 } else { new.current_schema_id() } });
    }
    for snapshot in new.snapshots() {
        if base.snapshot_by_id(snapshot.snapshot_id()).is_none() {
            updates.push(TableUpdate::AddSnapshot { snapshot: snapshot.as_ref().clone() });
        }
    }
    let removed: Vec<i64> =
        base.snapshots().map(|s| s.snapshot_id()).filter(|id| new.snapshot_by_id(*id).is_none()).collect();
    let (base_refs, new_refs) = (refs(base), refs(new));
    for (name, reference) in &new_refs {
        if base_refs.get(name) != Some(reference) {
            updates.push(TableUpdate::SetSnapshotRef { ref_name: name.clone(), reference: reference.clone() });
        }
    }
    for name in base_refs.keys() {
        if !new_refs.contains_key(name) {
            updates.push(TableUpdate::RemoveSnapshotRef { ref_name: name.clone() });
        }
    }
    if !removed.is_empty() {
        updates.push(TableUpdate::RemoveSnapshots { snapshot_ids: removed });
    }
    let changed: HashMap<String, String> = new
        .properties()
        .iter()
        .filter(|(k, v)| base.properties().get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !changed.is_empty() {
        updates.push(TableUpdate::SetProperties { updates: changed });
    }
    let gone: Vec<String> = base.properties().keys().filter(|k| !new.properties().contains_key(*k)).cloned().collect();
    if !gone.is_empty() {
        updates.push(TableUpdate::RemoveProperties { removals: gone });
    }
    updates
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schema change asks for the base's last assigned field id and makes the schema it adds
    /// current as `-1`, as Java's REST commits do (the server may number schemas itself).
    #[test]
    fn a_schema_commit_asserts_the_last_field_id_and_sets_the_added_schema() {
        let base: TableMetadata = serde_json::from_value(serde_json::json!({
            "format-version": 2, "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1", "location": "/t",
            "last-sequence-number": 0, "last-updated-ms": 1, "last-column-id": 1, "current-schema-id": 0,
            "schemas": [{"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "x", "required": false, "type": "long"}]}],
            "default-spec-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}], "last-partition-id": 999,
            "default-sort-order-id": 0, "sort-orders": [{"order-id": 0, "fields": []}], "properties": {}
        }))
        .expect("metadata");
        let wider = iceberg::spec::Schema::builder()
            .with_fields(vec![
                iceberg::spec::NestedField::optional(
                    1,
                    "x",
                    iceberg::spec::Type::Primitive(iceberg::spec::PrimitiveType::Long),
                )
                .into(),
                iceberg::spec::NestedField::optional(
                    2,
                    "y",
                    iceberg::spec::Type::Primitive(iceberg::spec::PrimitiveType::String),
                )
                .into(),
            ])
            .build()
            .expect("schema");
        let new =
            base.clone().into_builder(None).add_current_schema(wider).and_then(|b| b.build()).expect("evolve").metadata;
        let updates = serde_json::to_value(updates_between(&base, &new)).expect("json");
        assert!(
            updates
                .as_array()
                .expect("updates")
                .iter()
                .any(|u| u["action"] == "set-current-schema" && u["schema-id"] == -1),
            "{updates}"
        );
        let requirements = serde_json::to_value(requirements(&base, &new)).expect("json");
        assert!(
            requirements
                .as_array()
                .expect("requirements")
                .iter()
                .any(|r| r["type"] == "assert-last-assigned-field-id" && r["last-assigned-field-id"] == 1),
            "{requirements}"
        );
        assert_eq!(super::requirements(&base, &base).len(), 3, "no schema added: no field id assertion");
    }
}
