//! Parquet files without Iceberg field ids (added by Spark's `add_files` or `migrate`, written
//! by Hive or by hand): their columns are found through the table's
//! `schema.name-mapping.default`, at every nesting level, as Java's readers do.
//!
//! iceberg-rust maps only top-level columns by name, so children of structs, lists and maps in
//! such files would read as nulls, and a compaction would write those nulls for good. So these
//! files are read here: the mapping gives every field of the file's schema its id, batches are
//! rebuilt into the table schema by id, and identity-partition columns the file lacks (Hive
//! keeps them in folder names) come from the partition tuple. A file that cannot be read
//! faithfully (no mapping, or row-level deletes on it) is refused with the way out.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema as ArrowSchema, SchemaRef as ArrowSchemaRef};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use iceberg::arrow::ArrowFileReader;
use iceberg::io::FileMetadata;
use iceberg::scan::FileScanTask;
use iceberg::spec::{MappedField, PartitionSpec, Transform};
use iceberg::table::Table;
use parquet::arrow::PARQUET_FIELD_ID_META_KEY;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;

use super::{field_id, projected_arrow_schema, to_schema};
use crate::{Error, Result, partition_values};

/// Whether a file's own schema has no field ids at all.
pub(super) fn lacks_field_ids(file: &ArrowSchema) -> bool {
    file.fields().iter().all(|f| field_id(f).is_none())
}

/// Reads one file that has no field ids through the table's name mapping.
pub(super) async fn read(table: &Table, task: FileScanTask) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let path = task.data_file_path.clone();
    let refuse = |why: &str| Error::Metadata {
        table: table.identifier().to_string(),
        message: format!("{path} has no Iceberg field ids (a file added from another engine) and {why}"),
    };
    let Some(mapping) = task.name_mapping.clone() else {
        return Err(refuse(
            "the table has no schema.name-mapping.default to find its columns by name; set it (Spark's \
             add_files and migrate do) before compacting",
        ));
    };
    if !task.deletes.is_empty() {
        return Err(refuse(
            "row-level deletes apply to it; Icefall does not rewrite such files (Spark's rewrite_data_files does)",
        ));
    }
    let current = table.metadata().current_schema().clone();
    let target = projected_arrow_schema(&current, &task.project_field_ids).map_err(|e| refuse(&e))?;
    let context = || format!("read {path}");
    let input = table.file_io().new_input(&path).map_err(Error::iceberg(context()))?;
    let file = ArrowFileReader::new(
        FileMetadata { size: task.file_size_in_bytes },
        input.reader().await.map_err(Error::iceberg(context()))?,
    );
    let footer = ParquetRecordBatchStreamBuilder::new(file)
        .await
        .map_err(|e| refuse(&format!("its footer is unreadable: {e}")))?;
    let mapped = Arc::new(ArrowSchema::new_with_metadata(
        with_mapped_ids(footer.schema().fields(), &mapping.fields().iter().collect::<Vec<_>>()),
        footer.schema().metadata().clone(),
    ));
    let input = table.file_io().new_input(&path).map_err(Error::iceberg(context()))?;
    let file = ArrowFileReader::new(
        FileMetadata { size: task.file_size_in_bytes },
        input.reader().await.map_err(Error::iceberg(context()))?,
    );
    let options = ArrowReaderOptions::new().with_schema(Arc::clone(&mapped));
    let stream = ParquetRecordBatchStreamBuilder::new_with_options(file, options)
        .await
        .map_err(|e| refuse(&format!("its columns do not match the name mapping: {e}")))?
        .build()
        .map_err(|e| refuse(&e.to_string()))?;
    let in_file: Vec<i32> = mapped.fields().iter().filter_map(|f| field_id(f)).collect();
    let constants = PartitionConstants::for_task(table, &task, &in_file).await?.for_target(&target);
    let failed = move |message: String| Error::Metadata { table: path.clone(), message };
    Ok(stream
        .map_err({
            let failed = failed.clone();
            move |e| failed(e.to_string())
        })
        .and_then(move |batch| {
            let rebuilt = to_schema(&batch, &target).and_then(|b| constants.fill(b)).map_err(&failed);
            async move { rebuilt }
        })
        .boxed())
}

/// The file's fields with the ids the mapping gives them by name, at every level (list
/// elements under `element`, map keys and values under `key` and `value`, as Iceberg's name
/// mappings name them). Unmapped fields keep no id and are not read into any column.
fn with_mapped_ids(fields: &Fields, mapped: &[&MappedField]) -> Vec<FieldRef> {
    fields
        .iter()
        .map(|field| {
            let entry = mapped.iter().find(|m| m.names().iter().any(|n| n == field.name()));
            let children: Vec<&MappedField> =
                entry.map_or(Vec::new(), |m| m.fields().iter().map(Arc::as_ref).collect());
            let children = children.as_slice();
            let data_type = match field.data_type() {
                DataType::Struct(inner) => DataType::Struct(with_mapped_ids(inner, children).into()),
                DataType::List(element) => DataType::List(renamed_child(element, children, "element")),
                DataType::LargeList(element) => DataType::LargeList(renamed_child(element, children, "element")),
                DataType::Map(entries, sorted) => {
                    let DataType::Struct(kv) = entries.data_type() else { return Arc::clone(field) };
                    let kv: Vec<FieldRef> =
                        kv.iter().zip(["key", "value"]).map(|(f, name)| renamed_child(f, children, name)).collect();
                    let entries = Field::new(entries.name(), DataType::Struct(kv.into()), entries.is_nullable())
                        .with_metadata(entries.metadata().clone());
                    DataType::Map(Arc::new(entries), *sorted)
                }
                other => other.clone(),
            };
            let mut metadata = field.metadata().clone();
            if let Some(id) = entry.and_then(|m| m.field_id()) {
                metadata.insert(PARQUET_FIELD_ID_META_KEY.to_string(), id.to_string());
            }
            Arc::new(Field::new(field.name(), data_type, field.is_nullable()).with_metadata(metadata))
        })
        .collect()
}

/// A list element or map key/value, mapped under its Iceberg name whatever the file calls it
/// (`element`, `item`, `array`, `key_value.key`, …).
fn renamed_child(child: &FieldRef, mapped: &[&MappedField], iceberg_name: &str) -> FieldRef {
    let as_named = Field::new(iceberg_name, child.data_type().clone(), child.is_nullable());
    let mut out = with_mapped_ids(&Fields::from(vec![as_named]), mapped);
    let field = out.pop().unwrap_or_else(|| Arc::clone(child));
    // Keep the file's own name: the reader matches the Parquet schema by it.
    Arc::new(
        Field::new(child.name(), field.data_type().clone(), child.is_nullable())
            .with_metadata(field.metadata().clone()),
    )
}

/// The values of identity-partition columns a file does not hold (Hive keeps them in folder
/// names), from the task's partition tuple, by source field id, as text.
#[derive(Debug, Default)]
pub(crate) struct PartitionConstants(Vec<(i32, Option<String>)>);

/// [`PartitionConstants`] placed at their columns of one target schema.
#[derive(Debug, Default)]
pub(crate) struct TargetConstants(HashMap<usize, Option<String>>);

impl PartitionConstants {
    /// The identity-partition values of `task`'s file for the source columns not `in_file`.
    pub(crate) async fn for_task(table: &Table, task: &FileScanTask, in_file: &[i32]) -> Result<Self> {
        let Some(spec) = partition_spec(table, task).await? else { return Ok(Self::default()) };
        let Some(partition) = &task.partition else { return Ok(Self::default()) };
        let schema = table.metadata().current_schema();
        let Ok(partition_type) = spec.partition_type(schema) else { return Ok(Self::default()) };
        if !partition_values::fits(partition, &partition_type) {
            return Ok(Self::default());
        }
        let partition = partition_values::promote(partition, &partition_type);
        let mut out = Vec::new();
        for (i, field) in spec.fields().iter().enumerate() {
            if field.transform != Transform::Identity || in_file.contains(&field.source_id) {
                continue;
            }
            let Some(source) = schema.field_by_id(field.source_id) else { continue };
            let value = partition.fields().get(i).and_then(Option::as_ref);
            out.push((
                field.source_id,
                value.map(|v| Transform::Identity.to_human_string(&source.field_type, Some(v))),
            ));
        }
        Ok(PartitionConstants(out))
    }

    pub(crate) fn for_target(&self, target: &ArrowSchemaRef) -> TargetConstants {
        let at = |id: i32| target.fields().iter().position(|f| field_id(f) == Some(id));
        TargetConstants(self.0.iter().filter_map(|(id, value)| Some((at(*id)?, value.clone()))).collect())
    }
}

impl TargetConstants {
    /// `batch` (of the target schema) with the partition columns filled in.
    pub(crate) fn fill(&self, batch: RecordBatch) -> std::result::Result<RecordBatch, String> {
        if self.0.is_empty() {
            return Ok(batch);
        }
        let rows = batch.num_rows();
        let schema = batch.schema();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for (index, value) in &self.0 {
            let ty = schema.field(*index).data_type();
            columns[*index] = match value {
                None => new_null_array(ty, rows),
                Some(text) => arrow_cast::cast(&StringArray::from(vec![text.as_str(); rows]), ty)
                    .map_err(|e| format!("partition value {text:?} as {ty}: {e}"))?,
            };
        }
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(schema, columns, &options).map_err(|e| format!("fill partition values: {e}"))
    }
}

/// The partition spec of a task's file. iceberg-rust's scan leaves it out: it is the one spec
/// whose partition type fits the task's partition tuple, or, where several fit, the one the
/// file's manifest names.
async fn partition_spec(table: &Table, task: &FileScanTask) -> Result<Option<Arc<PartitionSpec>>> {
    if let Some(spec) = &task.partition_spec {
        return Ok(Some(Arc::clone(spec)));
    }
    let Some(values) = &task.partition else { return Ok(None) };
    let metadata = table.metadata();
    let schema = metadata.current_schema();
    let fits = |spec: &PartitionSpec| spec.partition_type(schema).is_ok_and(|ty| partition_values::fits(values, &ty));
    let candidates: Vec<_> = metadata.partition_specs_iter().filter(|spec| fits(spec)).cloned().collect();
    if candidates.len() < 2 {
        return Ok(candidates.into_iter().next());
    }
    let context = || format!("find the partition spec of {}", task.data_file_path);
    let Some(snapshot) = metadata.current_snapshot() else { return Ok(None) };
    let list = table.manifest_list_reader(snapshot).load().await.map_err(Error::iceberg(context()))?;
    for manifest in list.entries() {
        let entries = manifest.load_manifest(table.file_io()).await.map_err(Error::iceberg(context()))?;
        if entries.entries().iter().any(|e| e.file_path() == task.data_file_path) {
            return Ok(metadata.partition_spec_by_id(manifest.partition_spec_id).cloned());
        }
    }
    Ok(None)
}
