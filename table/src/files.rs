//! Data files for one table: Arrow batches → hidden partitioning → rolling Parquet files with
//! Iceberg metrics (bounds, counts, field ids), through iceberg-rust's layered writer builders.

use std::sync::Arc;

use arrow_array::RecordBatch;
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::io::FileIO;
use iceberg::spec::{DataFile, DataFileFormat, TableMetadata};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, DefaultLocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use iceberg::writer::partitioning::unpartitioned_writer::UnpartitionedWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::{Error, Result};

fn write_error(table: &str, source: iceberg::Error) -> Error {
    Error::Iceberg { context: format!("write data files of {table}"), source: Box::new(source) }
}

type Builder = DataFileWriterBuilder<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;

const DEFAULT_TARGET_FILE_SIZE: u64 = 512 * 1024 * 1024;

/// Everything needed to open writers for one table; cheap to clone.
#[derive(Clone)]
pub struct TableFiles {
    table: String,
    metadata: Arc<TableMetadata>,
    file_io: FileIO,
    target_file_size: u64,
    parquet: WriterProperties,
}

impl TableFiles {
    pub fn new(
        table: String,
        metadata: Arc<TableMetadata>,
        file_io: FileIO,
        target_file_size: Option<u64>,
    ) -> Result<Self> {
        let props = metadata.properties();
        let target_file_size = target_file_size
            .or_else(|| props.get("write.target-file-size-bytes").and_then(|v| v.parse().ok()))
            .unwrap_or(DEFAULT_TARGET_FILE_SIZE);
        let parquet = parquet_properties(props).map_err(|m| Error::Metadata { table: table.clone(), message: m })?;
        Ok(TableFiles { table, metadata, file_io, target_file_size, parquet })
    }

    pub fn metadata(&self) -> &Arc<TableMetadata> {
        &self.metadata
    }

    /// The Arrow schema of batches these files take (with Iceberg field ids).
    pub fn arrow_schema(&self) -> Result<arrow_schema::Schema> {
        iceberg::arrow::schema_to_arrow_schema(self.metadata.current_schema()).map_err(|e| self.error(e))
    }

    pub fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    /// Opens a writer whose file names start with `prefix` (unique per writer instance,
    /// checkpoint and attempt, so no retry ever overwrites a committed file).
    pub fn open(&self, prefix: String) -> Result<FileSetWriter> {
        let schema = self.metadata.current_schema().clone();
        let parquet = ParquetWriterBuilder::new(self.parquet.clone(), schema.clone());
        let location = DefaultLocationGenerator::new(&self.metadata).map_err(|e| self.error(e))?;
        let names = DefaultFileNameGenerator::new(prefix, None, DataFileFormat::Parquet);
        let rolling = RollingFileWriterBuilder::new(
            parquet,
            usize::try_from(self.target_file_size).unwrap_or(usize::MAX),
            self.file_io.clone(),
            location,
            names,
        );
        let builder = DataFileWriterBuilder::new(rolling);
        let spec = self.metadata.default_partition_spec().clone();
        let inner = if spec.is_unpartitioned() {
            Inner::Unpartitioned(UnpartitionedWriter::new(builder))
        } else {
            let splitter =
                RecordBatchPartitionSplitter::try_new_with_computed_values(schema, spec).map_err(|e| self.error(e))?;
            Inner::Partitioned { splitter, writer: FanoutWriter::new(builder) }
        };
        Ok(FileSetWriter { table: self.table.clone(), inner, rows: 0 })
    }

    fn error(&self, source: iceberg::Error) -> Error {
        write_error(&self.table, source)
    }
}

/// Open data files of one writer for one checkpoint.
pub struct FileSetWriter {
    table: String,
    inner: Inner,
    rows: u64,
}

// One per writer per checkpoint: the size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Unpartitioned(UnpartitionedWriter<Builder>),
    Partitioned { splitter: RecordBatchPartitionSplitter, writer: FanoutWriter<Builder> },
}

impl FileSetWriter {
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows() as u64;
        let table = &self.table;
        let err = |source| write_error(table, source);
        match &mut self.inner {
            Inner::Unpartitioned(w) => w.write(batch).await.map_err(err),
            Inner::Partitioned { splitter, writer } => {
                for (key, part) in splitter.split(&batch).map_err(err)? {
                    writer.write(key, part).await.map_err(err)?;
                }
                Ok(())
            }
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes every open file and returns them as Iceberg data files.
    pub async fn close(self) -> Result<Vec<DataFile>> {
        let table = self.table;
        let err = |source| write_error(&table, source);
        match self.inner {
            Inner::Unpartitioned(w) => w.close().await.map_err(err),
            Inner::Partitioned { writer, .. } => writer.close().await.map_err(err),
        }
    }
}

/// Parquet settings from the table's `write.parquet.*` properties; zstd by default.
fn parquet_properties(
    props: &std::collections::HashMap<String, String>,
) -> std::result::Result<WriterProperties, String> {
    let level: Option<i32> = match props.get("write.parquet.compression-level") {
        Some(v) => Some(v.parse().map_err(|_| format!("write.parquet.compression-level = {v:?} is not a number"))?),
        None => None,
    };
    let codec = props.get("write.parquet.compression-codec").map(|s| s.to_ascii_lowercase());
    let compression = match codec.as_deref().unwrap_or("zstd") {
        "zstd" => Compression::ZSTD(ZstdLevel::try_new(level.unwrap_or(3)).map_err(|e| e.to_string())?),
        "uncompressed" | "none" => Compression::UNCOMPRESSED,
        other => {
            return Err(format!(
                "write.parquet.compression-codec = {other:?} is not supported; use zstd or uncompressed"
            ));
        }
    };
    let mut builder = WriterProperties::builder().set_compression(compression);
    if let Some(v) = props.get("write.parquet.row-group-limit").and_then(|v| v.parse().ok()) {
        builder = builder.set_max_row_group_row_count(Some(v));
    }
    if let Some(v) = props.get("write.parquet.page-size-bytes").and_then(|v| v.parse().ok()) {
        builder = builder.set_data_page_size_limit(v);
    }
    Ok(builder.build())
}
