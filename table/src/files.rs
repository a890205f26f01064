//! Data files for one table: Arrow batches → hidden partitioning → rolling Parquet or ORC files
//! with Iceberg metrics (bounds, counts, field ids), through iceberg-rust's layered writer
//! builders ([`format`] picks the file writer).

pub mod format;
mod one_partition;

use std::sync::Arc;

use arrow_array::RecordBatch;
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::io::FileIO;
use iceberg::spec::{DataFile, DataFileFormat, TableMetadata};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::location_generator::DefaultFileNameGenerator;
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use iceberg::writer::partitioning::unpartitioned_writer::UnpartitionedWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

use self::format::{FormatWriterBuilder, table_format};
use self::one_partition::OnePartition;
use crate::locations::DataLocations;
use crate::{Error, Result};

fn write_error(table: &str, source: iceberg::Error) -> Error {
    Error::Iceberg { context: format!("write data files of {table}"), source: Box::new(source) }
}

type Builder = DataFileWriterBuilder<FormatWriterBuilder, DataLocations, DefaultFileNameGenerator>;

const DEFAULT_TARGET_FILE_SIZE: u64 = 512 * 1024 * 1024;

/// Everything needed to open writers for one table; cheap to clone.
#[derive(Clone)]
pub struct TableFiles {
    table: String,
    metadata: Arc<TableMetadata>,
    file_io: FileIO,
    target_file_size: u64,
    files: FormatWriterBuilder,
}

impl TableFiles {
    /// Files in the table's own format (`write.format.default`, Parquet when unset).
    pub fn new(
        table: String,
        metadata: Arc<TableMetadata>,
        file_io: FileIO,
        target_file_size: Option<u64>,
    ) -> Result<Self> {
        Self::with_format(table, metadata, file_io, target_file_size, None)
    }

    /// Files in `format` (the table's `write.format.default` when `None`). Fails naming the
    /// table property that is wrong, or each column the format cannot hold.
    pub fn with_format(
        table: String,
        metadata: Arc<TableMetadata>,
        file_io: FileIO,
        target_file_size: Option<u64>,
        format: Option<DataFileFormat>,
    ) -> Result<Self> {
        let props = metadata.properties();
        let invalid = |message: String| Error::Metadata { table: table.clone(), message };
        let target_file_size = target_file_size
            .or_else(|| props.get("write.target-file-size-bytes").and_then(|v| v.parse().ok()))
            .unwrap_or(DEFAULT_TARGET_FILE_SIZE);
        let format = match format {
            Some(format) => format,
            None => table_format(props).map_err(invalid)?,
        };
        let schema = metadata.current_schema();
        let parquet = parquet_properties(props, schema).map_err(invalid)?;
        let files = FormatWriterBuilder::new(format, props, schema, parquet).map_err(invalid)?;
        Ok(TableFiles { table, metadata, file_io, target_file_size, files })
    }

    /// The same files, recording that their rows follow sort order `order_id` (the writer of
    /// these files must sort them so).
    pub fn sorted_by(self, order_id: i32) -> Self {
        TableFiles { files: self.files.sorted_by(order_id), ..self }
    }

    /// The id of the partition spec files are written with: the table's default spec when
    /// this was made. A commit of these files names it ([`crate::Change`]).
    pub fn spec_id(&self) -> i32 {
        self.metadata.default_partition_spec_id()
    }

    /// The format of the files this writes.
    pub fn format(&self) -> DataFileFormat {
        self.files.format()
    }

    /// The table metadata files are written for.
    pub fn metadata(&self) -> &Arc<TableMetadata> {
        &self.metadata
    }

    /// The Arrow schema of batches these files take (with Iceberg field ids).
    pub fn arrow_schema(&self) -> Result<arrow_schema::Schema> {
        iceberg::arrow::schema_to_arrow_schema(self.metadata.current_schema()).map_err(|e| self.error(e))
    }

    /// The storage files are written to.
    pub fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    /// Opens a writer whose file names start with `prefix` (unique per writer instance,
    /// checkpoint and attempt, so no retry ever overwrites a committed file).
    pub fn open(&self, prefix: String) -> Result<FileSetWriter> {
        let schema = self.metadata.current_schema().clone();
        let location = DataLocations::new(&self.metadata);
        let names = DefaultFileNameGenerator::new(prefix, None, self.files.format());
        let rolling = RollingFileWriterBuilder::new(
            self.files.for_new_file_set(),
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
            let one = OnePartition::new(&spec, &schema);
            let splitter =
                RecordBatchPartitionSplitter::try_new_with_computed_values(schema, spec).map_err(|e| self.error(e))?;
            Inner::Partitioned { splitter, one, writer: FanoutWriter::new(builder) }
        };
        Ok(FileSetWriter { table: self.table.clone(), inner, rows: 0, partitions: Default::default() })
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
    /// Table partitions with an open file (each holds a buffered row group in memory).
    partitions: std::collections::HashSet<String>,
}

// One per writer per checkpoint: the size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Unpartitioned(UnpartitionedWriter<Builder>),
    Partitioned { splitter: RecordBatchPartitionSplitter, one: Option<OnePartition>, writer: FanoutWriter<Builder> },
}

/// Rows handed to the file writers at once: a file is rolled over to the next only between
/// writes, so a large batch (a sorted run of a million rows) goes in slices and its files stay
/// near the target size.
const SLICE_ROWS: usize = 8192;

impl FileSetWriter {
    /// Writes a batch into the files of its partitions.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = SLICE_ROWS.min(batch.num_rows() - offset);
            self.write_slice(batch.slice(offset, len)).await?;
            offset += len;
        }
        Ok(())
    }

    async fn write_slice(&mut self, batch: RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        let table = &self.table;
        let err = |source| write_error(table, source);
        match &mut self.inner {
            Inner::Unpartitioned(w) => w.write(batch).await.map_err(err),
            Inner::Partitioned { splitter, one, writer } => {
                let parts = if one.as_ref().is_some_and(|one| one.holds(&batch)) {
                    // One partition: the first row's key stands for the whole batch.
                    let key = splitter.split(&batch.slice(0, 1)).map_err(err)?.into_iter().map(|(key, _)| key);
                    key.map(|key| (key, batch.clone())).collect()
                } else {
                    splitter.split(&batch).map_err(err)?
                };
                for (key, part) in parts {
                    if !self.partitions.contains(&key.to_path()) {
                        self.partitions.insert(key.to_path());
                    }
                    writer.write(key, part).await.map_err(err)?;
                }
                Ok(())
            }
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// How many files are open: one per table partition written to (one if unpartitioned).
    pub fn open_files(&self) -> usize {
        self.partitions.len().max(1)
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

/// Parquet settings from the table's `write.parquet.*` properties (the names and defaults
/// Iceberg's Java writer uses, so Spark and Icefall write alike): zstd level 3, row groups
/// of 128 MiB, pages of 1 MiB or 20,000 rows, dictionaries up to 2 MiB per column chunk
/// (past that a column falls back to plain encoding). Dictionaries go where they pay: on
/// string and binary columns (and inside lists and maps); numbers, timestamps, dates, decimals
/// and uuids are mostly distinct (ids, times, amounts), so they are written plain, which
/// zstd then compresses better and faster (see docs/benchmarks.md).
fn parquet_properties(
    props: &std::collections::HashMap<String, String>,
    schema: &iceberg::spec::Schema,
) -> std::result::Result<WriterProperties, String> {
    fn number<T: std::str::FromStr>(
        props: &std::collections::HashMap<String, String>,
        key: &str,
    ) -> std::result::Result<Option<T>, String> {
        match props.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| format!("{key} = {v:?} is not a number")),
        }
    }
    let positive = |key: &str, default: usize| -> std::result::Result<usize, String> {
        match number::<usize>(props, key)? {
            Some(0) => Err(format!("{key} must be above 0")),
            v => Ok(v.unwrap_or(default)),
        }
    };
    let level: Option<i32> = number(props, "write.parquet.compression-level")?;
    let codec = props.get("write.parquet.compression-codec").map(|s| s.to_ascii_lowercase());
    let compression = match codec.as_deref().unwrap_or("zstd") {
        "zstd" => Compression::ZSTD(ZstdLevel::try_new(level.unwrap_or(3)).map_err(|e| e.to_string())?),
        "uncompressed" | "none" => Compression::UNCOMPRESSED,
        // Tables made by other engines: snappy is common, gzip was Iceberg's default before 1.4.
        "snappy" => Compression::SNAPPY,
        "gzip" => {
            let level = u32::try_from(level.unwrap_or(6))
                .map_err(|_| "write.parquet.compression-level must be 0-10 for gzip")?;
            Compression::GZIP(GzipLevel::try_new(level).map_err(|e| e.to_string())?)
        }
        other => {
            return Err(format!(
                "write.parquet.compression-codec = {other:?} is not supported; use zstd, snappy, gzip or uncompressed"
            ));
        }
    };
    let mut builder = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_bytes(Some(positive("write.parquet.row-group-size-bytes", 128 * 1024 * 1024)?))
        .set_data_page_size_limit(positive("write.parquet.page-size-bytes", 1024 * 1024)?)
        .set_data_page_row_count_limit(positive("write.parquet.page-row-limit", 20_000)?)
        .set_dictionary_page_size_limit(positive("write.parquet.dict-size-bytes", 1024 * 1024)?);
    for column in plain_columns(schema) {
        builder = builder.set_column_dictionary_enabled(column, false);
    }
    if let Some(rows) = number::<usize>(props, "write.parquet.row-group-limit")? {
        builder = builder.set_max_row_group_row_count(Some(rows.max(1)));
    }
    Ok(builder.build())
}

/// Parquet paths of the primitive columns written without a dictionary: everything but
/// strings, binaries and booleans, at the top level and inside structs.
fn plain_columns(schema: &iceberg::spec::Schema) -> Vec<parquet::schema::types::ColumnPath> {
    use iceberg::spec::{PrimitiveType, Type};
    fn walk(
        fields: &[iceberg::spec::NestedFieldRef],
        prefix: &[String],
        out: &mut Vec<parquet::schema::types::ColumnPath>,
    ) {
        for field in fields {
            let mut path = prefix.to_vec();
            path.push(field.name.clone());
            match field.field_type.as_ref() {
                Type::Struct(inner) => walk(inner.fields(), &path, out),
                Type::Primitive(PrimitiveType::String | PrimitiveType::Binary | PrimitiveType::Boolean) => {}
                Type::Primitive(_) => out.push(parquet::schema::types::ColumnPath::new(path)),
                Type::List(_) | Type::Map(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(schema.as_struct().fields(), &[], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn schema() -> iceberg::spec::Schema {
        use iceberg::spec::{NestedField, PrimitiveType, StructType, Type};
        let geo = StructType::new(vec![
            NestedField::optional(4, "lat", Type::Primitive(PrimitiveType::Double)).into(),
            NestedField::optional(5, "city", Type::Primitive(PrimitiveType::String)).into(),
        ]);
        iceberg::spec::Schema::builder()
            .with_fields(vec![
                NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::optional(2, "name", Type::Primitive(PrimitiveType::String)).into(),
                NestedField::optional(3, "geo", Type::Struct(geo)).into(),
            ])
            .build()
            .expect("schema")
    }

    fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parquet_defaults_follow_iceberg() {
        let p = parquet_properties(&HashMap::new(), &schema()).expect("defaults");
        let column = parquet::schema::types::ColumnPath::from("x");
        assert_eq!(p.compression(&column), Compression::ZSTD(ZstdLevel::try_new(3).expect("level")));
        assert_eq!(p.max_row_group_bytes(), Some(128 * 1024 * 1024));
        assert_eq!(p.data_page_size_limit(), 1024 * 1024);
        assert_eq!(p.data_page_row_count_limit(), 20_000);
        assert_eq!(p.dictionary_page_size_limit(), 1024 * 1024);
        // Dictionaries where they pay: strings (also nested), not ids, times or amounts.
        for (path, dictionary) in
            [(vec!["name"], true), (vec!["id"], false), (vec!["geo", "lat"], false), (vec!["geo", "city"], true)]
        {
            let path = parquet::schema::types::ColumnPath::new(path.into_iter().map(String::from).collect());
            assert_eq!(p.dictionary_enabled(&path), dictionary, "{path}");
        }
    }

    #[test]
    fn parquet_table_properties_apply_and_bad_ones_name_the_key() {
        let p = parquet_properties(
            &props(&[
                ("write.parquet.row-group-size-bytes", "1048576"),
                ("write.parquet.page-row-limit", "1000"),
                ("write.parquet.compression-codec", "uncompressed"),
            ]),
            &schema(),
        )
        .expect("valid");
        assert_eq!(p.max_row_group_bytes(), Some(1024 * 1024));
        assert_eq!(p.data_page_row_count_limit(), 1000);
        assert_eq!(p.compression(&parquet::schema::types::ColumnPath::from("x")), Compression::UNCOMPRESSED);
        for (key, value, needle) in [
            ("write.parquet.page-size-bytes", "big", "write.parquet.page-size-bytes = \"big\" is not a number"),
            ("write.parquet.row-group-size-bytes", "0", "write.parquet.row-group-size-bytes must be above 0"),
            ("write.parquet.compression-codec", "lzo", "use zstd, snappy, gzip or uncompressed"),
        ] {
            let err = parquet_properties(&props(&[(key, value)]), &schema()).expect_err("invalid");
            assert!(err.contains(needle), "{err}");
        }
    }
}
