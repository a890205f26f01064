//! The data file format of a table's new files: Parquet through iceberg-rust's writer, ORC
//! through ours, behind one `FileWriterBuilder` so rolling, partitioning and data-file
//! bookkeeping stay iceberg-rust's for both. The metrics of both come from the rows written
//! ([`crate::column_stats`]), in the table's metrics modes.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use iceberg::io::OutputFile;
use iceberg::spec::{DataFileBuilder, DataFileFormat, Schema};
use iceberg::writer::CurrentFileStatus;
use iceberg::writer::file_writer::{FileWriter, FileWriterBuilder, ParquetWriter, ParquetWriterBuilder};
use parquet::file::properties::WriterProperties;

use crate::column_stats::{FileMetrics, MetricsConfig};
use crate::orc::{OrcCompression, OrcLayout, OrcWriter, OrcWriterBuilder};

/// ORC Java's default stripe size (`write.orc.stripe-size-bytes`).
const DEFAULT_STRIPE_BYTES: usize = 64 * 1024 * 1024;

/// The table's `write.format.default` (Parquet when unset).
pub fn table_format(props: &HashMap<String, String>) -> std::result::Result<DataFileFormat, String> {
    match props.get("write.format.default").map(|f| f.to_ascii_lowercase()).as_deref() {
        None | Some("parquet") => Ok(DataFileFormat::Parquet),
        Some("orc") => Ok(DataFileFormat::Orc),
        Some(other) => Err(format!(
            "write.format.default = {other:?}: Icefall writes parquet or orc files; set the pipeline's file_format"
        )),
    }
}

/// Whether files of `format` can hold every column of `schema`; the error names each column
/// that cannot be held and the way out.
pub fn check_columns(format: DataFileFormat, schema: &Schema) -> std::result::Result<(), String> {
    match format {
        DataFileFormat::Orc => OrcLayout::new(schema).map(drop).map_err(|columns| orc_refusal(&columns)),
        _ => Ok(()),
    }
}

fn orc_refusal(columns: &[String]) -> String {
    format!(
        "ORC data files cannot hold {}: Icefall's ORC files take every Iceberg type but nanosecond \
         timestamps (timestamp_ns, timestamptz_ns), at any depth. Write this table as Parquet (the \
         pipeline's file_format = \"parquet\", or the table property write.format.default = parquet), or \
         change these columns' types (see docs/formats.md)",
        columns.join(", ")
    )
}

/// Opens files of one format for one schema.
#[derive(Clone)]
pub struct FormatWriterBuilder {
    kind: Kind,
    /// The sort order the rows of these files follow (compaction sorts), recorded on each file.
    sort_order_id: Option<i32>,
}

// One per table writer (and one writer per open file): boxing would save nothing worth it.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Kind {
    Parquet { files: ParquetWriterBuilder, schema: Arc<Schema>, metrics: Arc<MetricsConfig> },
    Orc(OrcWriterBuilder),
}

impl FormatWriterBuilder {
    /// Files of `format` for `schema`, set up from the table properties (`write.parquet.*`,
    /// `write.orc.*`, `write.metadata.metrics.*`). Fails naming the property, or each column ORC
    /// cannot hold.
    pub fn new(
        format: DataFileFormat,
        props: &HashMap<String, String>,
        schema: &Arc<Schema>,
        parquet: WriterProperties,
    ) -> std::result::Result<Self, String> {
        let metrics = Arc::new(MetricsConfig::from_properties(props)?);
        let kind = match format {
            DataFileFormat::Parquet => Kind::Parquet {
                files: ParquetWriterBuilder::new(parquet, Arc::clone(schema)),
                schema: Arc::clone(schema),
                metrics,
            },
            DataFileFormat::Orc => {
                let layout = OrcLayout::new(schema).map_err(|columns| orc_refusal(&columns))?;
                let stripe_bytes = match props.get("write.orc.stripe-size-bytes") {
                    None => DEFAULT_STRIPE_BYTES,
                    Some(v) => v
                        .parse::<usize>()
                        .ok()
                        .filter(|v| *v > 0)
                        .ok_or_else(|| format!("write.orc.stripe-size-bytes = {v:?} must be a positive number"))?,
                };
                let compression = OrcCompression::from_properties(props)?;
                Kind::Orc(OrcWriterBuilder::new(Arc::new(layout), stripe_bytes, compression, metrics))
            }
            DataFileFormat::Avro | DataFileFormat::Puffin => {
                return Err(format!("{format:?} data files are not supported: write parquet or orc"));
            }
        };
        Ok(FormatWriterBuilder { kind, sort_order_id: None })
    }

    /// The same builder for files whose rows follow sort order `order_id`.
    pub fn sorted_by(self, order_id: i32) -> Self {
        FormatWriterBuilder { sort_order_id: Some(order_id), ..self }
    }

    /// The same builder for one more set of open files (one writer's files of one checkpoint):
    /// ORC files of a set share a stripe budget.
    pub fn for_new_file_set(&self) -> Self {
        let kind = match &self.kind {
            Kind::Parquet { .. } => self.kind.clone(),
            Kind::Orc(builder) => Kind::Orc(builder.for_new_file_set()),
        };
        FormatWriterBuilder { kind, sort_order_id: self.sort_order_id }
    }

    /// The file format this builder writes.
    pub fn format(&self) -> DataFileFormat {
        match self.kind {
            Kind::Parquet { .. } => DataFileFormat::Parquet,
            Kind::Orc(_) => DataFileFormat::Orc,
        }
    }
}

impl FileWriterBuilder for FormatWriterBuilder {
    type R = FormatWriter;

    async fn build(&self, output: OutputFile) -> iceberg::Result<FormatWriter> {
        let writer = match &self.kind {
            Kind::Parquet { files, schema, metrics } => Writer::Parquet {
                writer: files.build(output).await?,
                metrics: FileMetrics::for_schema(schema, metrics),
            },
            Kind::Orc(b) => Writer::Orc(b.build(output).await?),
        };
        Ok(FormatWriter { writer, sort_order_id: self.sort_order_id })
    }
}

/// Writes one data file.
pub struct FormatWriter {
    writer: Writer,
    sort_order_id: Option<i32>,
}

#[allow(clippy::large_enum_variant)]
enum Writer {
    /// iceberg-rust's Parquet writer, whose metrics (from row-group statistics, which can be
    /// tighter than the data) are replaced by ours.
    Parquet {
        writer: ParquetWriter,
        metrics: FileMetrics,
    },
    Orc(OrcWriter),
}

impl FileWriter for FormatWriter {
    async fn write(&mut self, batch: &RecordBatch) -> iceberg::Result<()> {
        match &mut self.writer {
            Writer::Parquet { writer, metrics } => {
                metrics.update(batch.columns());
                writer.write(batch).await
            }
            Writer::Orc(w) => w.write(batch).await,
        }
    }

    async fn close(self) -> iceberg::Result<Vec<DataFileBuilder>> {
        let mut files = match self.writer {
            Writer::Parquet { writer, metrics } => {
                let mut files = writer.close().await?;
                // One Parquet writer makes at most one file.
                if let [file] = files.as_mut_slice() {
                    metrics.finish().set_on(file);
                }
                files
            }
            Writer::Orc(w) => w.close().await?,
        };
        if let Some(order) = self.sort_order_id {
            for file in &mut files {
                file.sort_order_id(order);
            }
        }
        Ok(files)
    }
}

impl CurrentFileStatus for FormatWriter {
    fn current_file_path(&self) -> String {
        match &self.writer {
            Writer::Parquet { writer, .. } => writer.current_file_path(),
            Writer::Orc(w) => w.current_file_path(),
        }
    }

    fn current_row_num(&self) -> usize {
        match &self.writer {
            Writer::Parquet { writer, .. } => writer.current_row_num(),
            Writer::Orc(w) => w.current_row_num(),
        }
    }

    fn current_written_size(&self) -> usize {
        match &self.writer {
            Writer::Parquet { writer, .. } => writer.current_written_size(),
            Writer::Orc(w) => w.current_written_size(),
        }
    }
}
