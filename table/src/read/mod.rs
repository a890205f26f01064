//! Reading data files under the table's current schema, whatever schema they were written with.
//! ORC files are read by [`orc`], Parquet files without field ids by [`by_name`].
//!
//! iceberg-rust 0.10's reader evolves top-level columns by field id, but casts a struct column
//! to its current type by position or by name: a struct that gained, lost, renamed or
//! reordered children since a file was written fails to read ("Incorrect number of arrays")
//! or, worse, could pair the wrong children. Every table whose schema evolved inside a struct
//! hits this — our writer evolves nested fields, and so does Spark's `ALTER TABLE`.
//!
//! So for tables with nested columns each file is read in two steps: the reader gets a task
//! whose schema has the file's own struct shapes (the file's children, in the file's order,
//! under the current types), which it reads and widens without ambiguity; then every batch is
//! rebuilt into the current schema by field id, adding null children (and null list or map
//! columns, which the reader cannot make) the file lacks.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, ListArray, MapArray, RecordBatch, StructArray, new_null_array};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema as ArrowSchema, SchemaRef as ArrowSchemaRef};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use iceberg::arrow::{ArrowFileReader, schema_to_arrow_schema};
use iceberg::io::FileMetadata;
use iceberg::scan::FileScanTask;
use iceberg::spec::{DataFileFormat, NestedField, NestedFieldRef, Schema, Type};
use iceberg::table::Table;
use parquet::arrow::PARQUET_FIELD_ID_META_KEY;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;

use crate::{Error, Result};

mod by_name;
pub(crate) mod deletes;
pub mod orc;

pub(crate) use by_name::PartitionConstants;

/// Reads `tasks` (from a scan plan of `table`) in order; batches have the table's current
/// schema, projected to each task's columns, with deletes applied.
pub fn read_tasks(table: &Table, tasks: Vec<FileScanTask>) -> BoxStream<'static, Result<RecordBatch>> {
    let table = table.clone();
    let nested = table.metadata().current_schema().as_struct().fields().iter().any(|f| !f.field_type.is_primitive());
    let orc = tasks.iter().any(|t| t.data_file_format == DataFileFormat::Orc);
    // Files added from other engines may lack field ids: with a name mapping, each file's
    // footer tells (such files are read by name, see `by_name`).
    let foreign = table.metadata().properties().contains_key(NAME_MAPPING);
    if !nested && !orc && !foreign {
        // Top-level evolution is all the reader has to handle: read everything in one go.
        return read_parquet(&table, tasks);
    }
    futures::stream::iter(tasks)
        .then(move |task| {
            let table = table.clone();
            async move {
                match task.data_file_format {
                    DataFileFormat::Orc => orc::read_task(&table, task).await,
                    _ if nested || foreign => read_reshaped(&table, task).await,
                    _ => Ok(read_parquet(&table, vec![task])),
                }
            }
        })
        .try_flatten()
        .boxed()
}

/// The table property holding the name mapping of files without field ids.
const NAME_MAPPING: &str = "schema.name-mapping.default";

/// Parquet files through iceberg-rust's reader, which evolves top-level columns by id.
fn read_parquet(table: &Table, tasks: Vec<FileScanTask>) -> BoxStream<'static, Result<RecordBatch>> {
    let reader = table.reader_builder().build();
    let tasks = futures::stream::iter(tasks.into_iter().map(Ok)).boxed();
    match reader.read(tasks) {
        Ok(batches) => {
            let context = format!("read {}", table.identifier());
            batches.stream().map_err(move |e| Error::iceberg(&context)(e)).boxed()
        }
        Err(e) => futures::stream::once(async move { Err(Error::iceberg("read data files")(e)) }).boxed(),
    }
}

async fn read_reshaped(table: &Table, mut task: FileScanTask) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let path = task.data_file_path.clone();
    let file_error = move |message: String| Error::Metadata { table: path.clone(), message };
    let current = table.metadata().current_schema().clone();
    let target = projected_arrow_schema(&current, &task.project_field_ids).map_err(&file_error)?;
    let file_schema = parquet_arrow_schema(table, &task).await?;
    if by_name::lacks_field_ids(&file_schema) {
        return by_name::read(table, task).await;
    }
    task.schema = Arc::new(file_shaped(&current, &file_schema).map_err(&file_error)?);
    // The reader cannot make a null list or map for a column the file lacks: leave such
    // columns out of its projection; `to_schema` adds them.
    let in_file: Vec<i32> = file_schema.fields().iter().filter_map(|f| field_id(f)).collect();
    task.project_field_ids
        .retain(|id| in_file.contains(id) || current.field_by_id(*id).is_none_or(|f| f.field_type.is_primitive()));
    let reader = table.reader_builder().build();
    let batches = reader
        .read(futures::stream::once(async { Ok(task) }).boxed())
        .map_err(Error::iceberg(format!("read {}", table.identifier())))?
        .stream();
    let context = format!("read {}", table.identifier());
    Ok(batches
        .map(move |batch| {
            let batch = batch.map_err(Error::iceberg(&context))?;
            to_schema(&batch, &target).map_err(&file_error)
        })
        .boxed())
}

/// The file's own Arrow schema (with field ids), from its Parquet footer.
async fn parquet_arrow_schema(table: &Table, task: &FileScanTask) -> Result<ArrowSchemaRef> {
    let context = || format!("read the footer of {}", task.data_file_path);
    let input = table.file_io().new_input(&task.data_file_path).map_err(Error::iceberg(context()))?;
    let file = ArrowFileReader::new(
        FileMetadata { size: task.file_size_in_bytes },
        input.reader().await.map_err(Error::iceberg(context()))?,
    );
    let builder = ParquetRecordBatchStreamBuilder::new(file).await.map_err(|e| Error::Metadata {
        table: task.data_file_path.clone(),
        message: format!("unreadable Parquet footer: {e}"),
    })?;
    Ok(builder.schema().clone())
}

pub(crate) fn field_id(field: &Field) -> Option<i32> {
    field.metadata().get(PARQUET_FIELD_ID_META_KEY).and_then(|id| id.parse().ok())
}

/// The arrow schema of `schema`'s top-level fields `ids`, in that order (all when empty).
pub(crate) fn projected_arrow_schema(schema: &Schema, ids: &[i32]) -> std::result::Result<ArrowSchemaRef, String> {
    let full = schema_to_arrow_schema(schema).map_err(|e| e.to_string())?;
    if ids.is_empty() {
        return Ok(Arc::new(full));
    }
    let by_id: HashMap<i32, &FieldRef> = full.fields().iter().filter_map(|f| field_id(f).map(|id| (id, f))).collect();
    let fields: Vec<FieldRef> = ids.iter().filter_map(|id| by_id.get(id).map(|f| Arc::clone(f))).collect();
    Ok(Arc::new(ArrowSchema::new_with_metadata(fields, full.metadata().clone())))
}

/// `current` with every struct shaped as the file has it: the file's children (those the
/// current schema still has), in the file's order, under the file's names, with current types.
/// Top-level fields keep the current shape: the reader maps those by id itself.
fn file_shaped(current: &Schema, file: &ArrowSchema) -> std::result::Result<Schema, String> {
    let file_fields: HashMap<i32, &FieldRef> =
        file.fields().iter().filter_map(|f| field_id(f).map(|id| (id, f))).collect();
    let fields: Vec<NestedFieldRef> = current
        .as_struct()
        .fields()
        .iter()
        .map(|field| match file_fields.get(&field.id) {
            Some(file_field) => {
                let mut shaped = NestedField::clone(field);
                shaped.field_type = Box::new(shape(&field.field_type, file_field.data_type()));
                Arc::new(shaped)
            }
            None => Arc::clone(field),
        })
        .collect();
    Schema::builder()
        .with_schema_id(current.schema_id())
        .with_identifier_field_ids(current.identifier_field_ids())
        .with_fields(fields)
        .build()
        .map_err(|e| format!("cannot shape the current schema to the file's: {e}"))
}

fn shape(current: &Type, file: &DataType) -> Type {
    match (current, file) {
        (Type::Struct(strukt), DataType::Struct(file_children)) => {
            let children: Vec<NestedFieldRef> = file_children
                .iter()
                .filter_map(|file_child| {
                    let child = strukt.field_by_id(field_id(file_child)?)?;
                    let mut shaped = NestedField::clone(child);
                    shaped.name = file_child.name().clone();
                    shaped.field_type = Box::new(shape(&child.field_type, file_child.data_type()));
                    Some(Arc::new(shaped))
                })
                .collect();
            if children.is_empty() {
                // Nothing of the struct is in the file: the reader reads it as null.
                return current.clone();
            }
            Type::Struct(iceberg::spec::StructType::new(children))
        }
        (Type::List(list), DataType::List(element) | DataType::LargeList(element)) => {
            let mut shaped = list.clone();
            let mut element_field = NestedField::clone(&list.element_field);
            element_field.field_type = Box::new(shape(&list.element_field.field_type, element.data_type()));
            shaped.element_field = Arc::new(element_field);
            Type::List(shaped)
        }
        (Type::Map(map), DataType::Map(entries, _)) => {
            let DataType::Struct(kv) = entries.data_type() else { return current.clone() };
            let mut shaped = map.clone();
            if let [key, value] = kv.iter().collect::<Vec<_>>()[..] {
                let mut key_field = NestedField::clone(&map.key_field);
                key_field.field_type = Box::new(shape(&map.key_field.field_type, key.data_type()));
                let mut value_field = NestedField::clone(&map.value_field);
                value_field.field_type = Box::new(shape(&map.value_field.field_type, value.data_type()));
                shaped.key_field = Arc::new(key_field);
                shaped.value_field = Arc::new(value_field);
            }
            Type::Map(shaped)
        }
        _ => current.clone(),
    }
}

/// Rebuilds `batch` into `target` by field id: children reordered and renamed, missing ones
/// null, types cast (widening).
fn to_schema(batch: &RecordBatch, target: &ArrowSchemaRef) -> std::result::Result<RecordBatch, String> {
    if batch.schema().fields() == target.fields() {
        return Ok(batch.clone());
    }
    let columns = reshape_children(batch.schema().fields(), batch.columns(), target.fields(), batch.num_rows())?;
    RecordBatch::try_new(Arc::clone(target), columns).map_err(|e| format!("rebuild a batch in the table schema: {e}"))
}

fn reshape_children(
    fields: &Fields,
    columns: &[ArrayRef],
    targets: &Fields,
    rows: usize,
) -> std::result::Result<Vec<ArrayRef>, String> {
    let by_id: HashMap<i32, usize> =
        fields.iter().enumerate().filter_map(|(i, f)| field_id(f).map(|id| (id, i))).collect();
    targets
        .iter()
        .map(|target| {
            let source = field_id(target).and_then(|id| by_id.get(&id).copied());
            match source {
                Some(i) => reshape(&columns[i], target),
                None => Ok(new_null_array(target.data_type(), rows)),
            }
        })
        .collect()
}

pub(crate) fn reshape(array: &ArrayRef, target: &Field) -> std::result::Result<ArrayRef, String> {
    if array.data_type() == target.data_type() {
        return Ok(Arc::clone(array));
    }
    let failed = |e: arrow_schema::ArrowError| format!("column {}: {e}", target.name());
    match (array.data_type(), target.data_type()) {
        (DataType::Struct(fields), DataType::Struct(targets)) => {
            let strukt = array.as_struct();
            let children = reshape_children(fields, strukt.columns(), targets, strukt.len())?;
            Ok(Arc::new(StructArray::try_new(targets.clone(), children, strukt.nulls().cloned()).map_err(failed)?))
        }
        (DataType::List(_), DataType::List(element)) => {
            let list = array.as_list::<i32>();
            let values = reshape(list.values(), element)?;
            let rebuilt =
                ListArray::try_new(Arc::clone(element), list.offsets().clone(), values, list.nulls().cloned());
            Ok(Arc::new(rebuilt.map_err(failed)?))
        }
        (DataType::Map(_, _), DataType::Map(entries, sorted)) => {
            let map = array.as_map();
            let entries_array: ArrayRef = Arc::new(map.entries().clone());
            let reshaped = reshape(&entries_array, entries)?;
            let rebuilt = MapArray::try_new(
                Arc::clone(entries),
                map.offsets().clone(),
                reshaped.as_struct().clone(),
                map.nulls().cloned(),
                *sorted,
            );
            Ok(Arc::new(rebuilt.map_err(failed)?))
        }
        _ => arrow_cast::cast(array, target.data_type()).map_err(failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use iceberg::spec::{PrimitiveType, StructType};

    fn with_id(field: Field, id: i32) -> Field {
        field.with_metadata(HashMap::from([(PARQUET_FIELD_ID_META_KEY.to_string(), id.to_string())]))
    }

    /// Table: `meta struct<zone: string (4), site: string (2), level: long (3)>` (id 1): `site`
    /// was `place`, `level` was an int, `zone` was added and put first.
    fn current() -> Schema {
        let meta = StructType::new(vec![
            Arc::new(NestedField::optional(4, "zone", Type::Primitive(PrimitiveType::String))),
            Arc::new(NestedField::optional(2, "site", Type::Primitive(PrimitiveType::String))),
            Arc::new(NestedField::optional(3, "level", Type::Primitive(PrimitiveType::Long))),
        ]);
        Schema::builder()
            .with_fields(vec![Arc::new(NestedField::optional(1, "meta", Type::Struct(meta)))])
            .build()
            .expect("schema")
    }

    fn old_file_children() -> Fields {
        Fields::from(vec![
            with_id(Field::new("level", DataType::Int32, true), 3),
            with_id(Field::new("place", DataType::Utf8, true), 2),
        ])
    }

    #[test]
    fn file_shape_keeps_the_files_children_order_and_names_with_current_types() {
        let file = ArrowSchema::new(vec![with_id(Field::new("meta", DataType::Struct(old_file_children()), true), 1)]);
        let shaped = file_shaped(&current(), &file).expect("shape");
        let Type::Struct(meta) = shaped.field_by_id(1).expect("meta").field_type.as_ref().clone() else {
            panic!("struct")
        };
        let children: Vec<(i32, &str, String)> =
            meta.fields().iter().map(|f| (f.id, f.name.as_str(), f.field_type.to_string())).collect();
        assert_eq!(children, [(3, "level", "long".to_string()), (2, "place", "string".to_string())]);
    }

    #[test]
    fn batches_are_rebuilt_by_field_id_with_missing_children_null() {
        // What the reader yields for the old file under its shape: children in file order.
        let children = Fields::from(vec![
            with_id(Field::new("level", DataType::Int64, true), 3),
            with_id(Field::new("place", DataType::Utf8, true), 2),
        ]);
        let meta = StructArray::new(
            children.clone(),
            vec![Arc::new(Int64Array::from(vec![7, 8])), Arc::new(StringArray::from(vec!["a", "b"]))],
            None,
        );
        let batch = RecordBatch::try_new(
            Arc::new(ArrowSchema::new(vec![with_id(Field::new("meta", DataType::Struct(children), true), 1)])),
            vec![Arc::new(meta)],
        )
        .expect("batch");
        let target = projected_arrow_schema(&current(), &[]).expect("target");
        let rebuilt = to_schema(&batch, &target).expect("rebuild");
        let meta = rebuilt.column(0).as_struct();
        let names: Vec<&str> = meta.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["zone", "site", "level"]);
        assert_eq!(meta.column(0).null_count(), 2, "zone was not in the file");
        assert_eq!(meta.column(1).as_string::<i32>().value(1), "b");
        assert_eq!(meta.column(2).as_primitive::<arrow_array::types::Int64Type>().values().to_vec(), [7, 8]);
    }
}
