//! Setting a pipeline up: its table (loaded or created, retrying while the catalog is
//! unreachable), what its writers need for the table's current schema, and the warnings about
//! a config that differs from the table.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use icefall_schemas::evolve::field_ids_from_properties;
use icefall_schemas::json::JsonOptions;
use icefall_schemas::metadata::MetadataColumns;
use icefall_table::catalog::display_ident;
use icefall_table::files::TableFiles;
use icefall_table::{Backoff, Catalog, LoadedTable, TableIdent};
use tokio::sync::watch;

use crate::config::PipelineConfig;
use crate::freshness::EventTime;
use crate::pool::WriteSetup;
use crate::schema::sources::SourceSchemas;
use crate::{Error, Result};

/// Loads or creates a table, retrying while the catalog or storage is unreachable.
pub(super) async fn load_or_create(
    catalog: &Catalog,
    ident: &TableIdent,
    layout: &icefall_table::create::TableLayout,
    p: &PipelineConfig,
    shutdown: &watch::Receiver<bool>,
) -> Result<LoadedTable> {
    let mut backoff = Backoff::unavailable();
    loop {
        let opened = match p.auto_create {
            true => catalog.load_or_create(ident, layout).await,
            false => catalog.load(ident).await,
        };
        match opened {
            Ok(t) => return Ok(t),
            Err(icefall_table::Error::TableNotFound(table)) => {
                return Err(Error::Config(format!(
                    "pipelines[{}]: table {table} does not exist and auto_create = false: create it (e.g. with \
                     Spark), or set auto_create = true",
                    p.name
                )));
            }
            Err(e) if e.is_retryable() && !*shutdown.borrow() => {
                let delay = backoff.next_delay();
                tracing::warn!(table = %display_ident(ident), error = %e, retry_in = ?delay, "catalog unavailable; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Ticks every `interval`, the first one an interval from now.
pub(super) fn checkpoint_ticker(interval: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// Decoder, metadata filler and file factory for the table's current schema.
pub(super) fn write_setup(
    p: &PipelineConfig,
    sources: &SourceSchemas,
    table: &LoadedTable,
    file_io: &iceberg::io::FileIO,
    late_before: &Arc<AtomicI64>,
) -> Result<WriteSetup> {
    let schema = table.metadata.current_schema().clone();
    let mapping = p.metadata_columns.mapping();
    let metadata = MetadataColumns::new(&schema, &mapping)
        .map_err(|e| Error::Config(format!("pipelines[{}].metadata_columns: table {}: {e}", p.name, table.name())))?;
    let ids = field_ids_from_properties(table.metadata.properties())?;
    let json = JsonOptions { epoch_unit: p.epoch_unit, metadata_fields: MetadataColumns::names(&schema, &mapping) };
    let decoder = sources.decoder(&schema, &ids, json)?;
    let format = p.file_format.map(|f| f.data_file_format());
    let files = TableFiles::with_format(
        table.name(),
        table.metadata.clone(),
        file_io.clone(),
        p.target_file_size_bytes,
        format,
    )?;
    let event_time = match &p.event_time_column {
        Some(column) => Some(Arc::new(EventTime::new(&p.name, column, &schema, late_before.clone())?)),
        None => None,
    };
    Ok(WriteSetup {
        decoder: Arc::new(decoder),
        metadata: Arc::new(metadata),
        files,
        max_open_files: p.max_open_files_per_writer,
        event_time,
    })
}

/// The lateness bound for `table`'s current event watermark (µs; `i64::MIN`: none yet).
pub(super) fn late_bound(p: &PipelineConfig, table: &LoadedTable) -> i64 {
    let lateness = i64::try_from(p.allowed_lateness.as_micros()).unwrap_or(i64::MAX);
    icefall_table::freshness::table_watermarks(&table.metadata).event.map_or(i64::MIN, |w| w.saturating_sub(lateness))
}

/// The configured file format wins over the table's `write.format.default` (both are standard
/// Iceberg), but other writers and the optimizer follow the table: say so.
pub(super) fn warn_on_format_drift(p: &PipelineConfig, table: &LoadedTable) {
    let Some(format) = p.file_format else { return };
    let table_format = table.metadata.properties().get("write.format.default").map(|f| f.to_ascii_lowercase());
    if table_format.as_deref().unwrap_or("parquet") != format.name() {
        tracing::warn!(pipeline = %p.name, table = %table.name(), file_format = format.name(),
            write_format_default = table_format.as_deref().unwrap_or("parquet"),
            "the pipeline writes another file format than the table's write.format.default; \
             compaction rewrites files in the table's format (set it with ALTER TABLE … SET TBLPROPERTIES)");
    }
}

/// An existing table is authoritative; say so when the config declares something else.
pub(super) fn warn_on_schema_drift(p: &PipelineConfig, table_schema: &iceberg::spec::Schema) {
    if let Ok(declared) = p.declared_schema() {
        for field in declared.as_struct().fields() {
            if table_schema.field_by_name(&field.name).is_none() {
                tracing::warn!(pipeline = %p.name, column = %field.name,
                    "the config declares a column the existing table lacks; it is ignored (the table's schema decides)");
            }
        }
    }
}
