//! Schema evolution as the writer applies it: the change a table needs to hold records of a
//! source schema (from `icefall_schemas::evolve`), committed through the table layer with the
//! schema id it was planned from as its requirement.

use std::collections::HashMap;

use iceberg::spec::Schema;
use icefall_schemas::decode::SourceSchema;
use icefall_schemas::evolve::{
    EvolveOptions, FIELD_IDS_PROPERTY, FieldIds, evolve, field_ids_from_properties, field_ids_to_property,
};
use icefall_schemas::json::infer::NewShape;
use icefall_table::commit::{Change, PendingCommit};
use icefall_table::retry::Replan;
use icefall_table::{Catalog, LoadedTable, RetryPolicy};

use crate::config::PipelineConfig;
use crate::{Error, Result};

pub use icefall_table::contract::SOURCE_SCHEMA_ID as SOURCE_SCHEMA_ID_PROPERTY;

fn evolve_options(p: &PipelineConfig, table: &LoadedTable, older_source: bool) -> EvolveOptions {
    let partition_sources = table.metadata.default_partition_spec().fields().iter().map(|f| f.source_id).collect();
    EvolveOptions {
        drop_removed_fields: p.drop_removed_fields,
        keep_columns: p.metadata_columns.mapping().into_keys().collect(),
        protected_ids: partition_sources,
        older_source,
    }
}

/// A schema change to commit.
pub struct SchemaChange {
    pub schema: Schema,
    /// The field-id mapping property.
    pub properties: HashMap<String, String>,
    /// What changes, for the log.
    pub changes: Vec<String>,
}

/// The schema change `table` needs for `source`, if any. Errors name the field that cannot follow.
/// `schema_id` is the source's registry id (`None` for a fixed schema, which is always followed).
pub fn plan_evolution(
    table: &LoadedTable,
    source: &SourceSchema,
    schema_id: Option<u32>,
    p: &PipelineConfig,
) -> Result<Option<SchemaChange>> {
    let metadata = &table.metadata;
    let ids = field_ids_from_properties(metadata.properties())?;
    let followed: Option<u32> = metadata.properties().get(SOURCE_SCHEMA_ID_PROPERTY).and_then(|v| v.parse().ok());
    let older = matches!((schema_id, followed), (Some(id), Some(newest)) if id < newest);
    let follows_new_id = !older && schema_id.is_some() && schema_id != followed;
    let evolution = evolve(
        metadata.current_schema(),
        metadata.last_column_id(),
        &ids,
        &source.fields()?,
        &evolve_options(p, table, older),
    )
    .map_err(|e| Error::Evolution(format!("pipeline {}, table {}: {e}", p.name, table.name())))?;
    if evolution.schema.is_none() && evolution.field_ids == ids && !follows_new_id {
        return Ok(None);
    }
    let schema = evolution.schema.unwrap_or_else(|| metadata.current_schema().as_ref().clone());
    check_file_format(table, &schema, p)?;
    let mut properties = HashMap::from([(FIELD_IDS_PROPERTY.to_string(), field_ids_to_property(&evolution.field_ids))]);
    if let (false, Some(id)) = (older, schema_id) {
        properties.insert(SOURCE_SCHEMA_ID_PROPERTY.to_string(), id.to_string());
    }
    Ok(Some(SchemaChange { schema, properties, changes: evolution.changes }))
}

/// A column the table's files cannot hold is refused before the schema changes.
fn check_file_format(table: &LoadedTable, schema: &Schema, p: &PipelineConfig) -> Result<()> {
    let format = match p.file_format {
        Some(format) => format.data_file_format(),
        None => icefall_table::files::format::table_format(table.metadata.properties())
            .map_err(|e| Error::Evolution(format!("pipeline {}, table {}: {e}", p.name, table.name())))?,
    };
    icefall_table::files::format::check_columns(format, schema).map_err(|e| {
        Error::Evolution(format!("pipeline {}, table {}: the new source schema: {e}", p.name, table.name()))
    })
}

/// The schema change a JSON table needs to hold what records brought (`evolve = true`):
/// `shape`'s new fields as optional columns, its int columns widened to long. `None` when the
/// table already has them (another writer, or another engine, added them first).
pub fn plan_json_evolution(table: &LoadedTable, shape: &NewShape, p: &PipelineConfig) -> Result<Option<SchemaChange>> {
    let metadata = &table.metadata;
    let options = evolve_options(p, table, false);
    let source = shape.source_fields(metadata.current_schema().as_struct(), &options.keep_columns);
    let evolution = evolve(metadata.current_schema(), metadata.last_column_id(), &FieldIds::new(), &source, &options)
        .map_err(|e| Error::Evolution(format!("pipeline {}, table {}: {e}", p.name, table.name())))?;
    let Some(schema) = evolution.schema else { return Ok(None) };
    check_file_format(table, &schema, p)?;
    // JSON fields are matched by name: no field-id mapping is kept.
    Ok(Some(SchemaChange { schema, properties: HashMap::new(), changes: evolution.changes }))
}

/// Makes `table` able to hold records of `source`: commits the schema change (and field-id
/// mapping) it needs, recomputing when another writer changed the schema first.
pub async fn fit_table(
    catalog: &Catalog,
    table: LoadedTable,
    source: &SourceSchema,
    schema_id: Option<u32>,
    p: &PipelineConfig,
) -> Result<LoadedTable> {
    commit_schema_change(catalog, table, p, |table| plan_evolution(table, source, schema_id, p)).await
}

/// Commits the schema change `plan` makes for `table`, planning again on the reloaded table
/// when another writer changed the schema first; returns the table as committed.
pub async fn commit_schema_change(
    catalog: &Catalog,
    table: LoadedTable,
    p: &PipelineConfig,
    plan: impl Fn(&LoadedTable) -> Result<Option<SchemaChange>>,
) -> Result<LoadedTable> {
    let mut table = table;
    let mut replan = Replan::new(table.name());
    loop {
        let Some(SchemaChange { schema, properties, changes }) = plan(&table)? else {
            return Ok(table);
        };
        let change = Change::EvolveSchema {
            schema: Box::new(schema),
            based_on_schema_id: table.metadata.current_schema_id(),
            properties,
        };
        let pending = PendingCommit::new(change, Default::default());
        match catalog.commit(table.clone(), &pending, |_| Ok(Default::default()), &RetryPolicy::default()).await {
            Ok(outcome) => {
                tracing::info!(pipeline = %p.name, table = %outcome.table.name(),
                    schema_id = outcome.table.metadata.current_schema_id(), changes = ?changes, "table schema evolved");
                return Ok(outcome.table);
            }
            Err(e) => {
                replan.again(e)?;
                table = catalog.load(&table.ident).await?;
            }
        }
    }
}
