//! Reading ORC data files into the table's current schema (iceberg-rust reads Parquet only).
//!
//! Columns are matched by Iceberg field id: from each ORC type's `iceberg.id` attribute (ours,
//! Spark's, Trino's), else by the table's `schema.name-mapping.default`, else by the current
//! column names (what Iceberg's own readers do for files without ids). Columns the file lacks
//! read as null; others are cast to the current type (dates, uuids, widened numbers). Nested
//! columns are rebuilt by the field ids of their children, like Parquet ones (`crate::read`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{RecordBatch, new_null_array};
use arrow_schema::SchemaRef as ArrowSchemaRef;
use futures::StreamExt;
use futures::stream::BoxStream;
use iceberg::scan::FileScanTask;
use iceberg::table::Table;
use orc_rust::projection::ProjectionMask;
use orc_rust::proto;

use super::deletes::RowDeletes;
use super::{field_id, projected_arrow_schema, reshape};
use crate::orc::field_ids::{footer_types, has_attributes, orc_field_ids, with_field_ids};
use crate::{Error, Result};

/// Reads one ORC data file of `table` (a task from its scan plan).
pub async fn read_task(table: &Table, task: FileScanTask) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let path = task.data_file_path.clone();
    let file_error = |message: String| Error::Metadata { table: path.clone(), message };
    if task.predicate.is_some() {
        return Err(file_error("filtered reads of ORC files are not supported: scan without a filter".into()));
    }
    let deletes = RowDeletes::load(table, &task).await?;
    let context = format!("read {path}");
    let input = table.file_io().new_input(&path).map_err(Error::iceberg(&context))?;
    let bytes = input.read().await.map_err(Error::iceberg(&context))?;

    let builder = orc_rust::ArrowReaderBuilder::try_new(bytes.clone())
        .map_err(|e| file_error(format!("unreadable ORC file: {e}")))?;
    let metadata = builder.file_metadata().clone();
    let root = metadata.root_data_type();
    let types = footer_types(&bytes, metadata.compression()).map_err(&file_error)?;
    let current = table.metadata().current_schema();
    let column_ids_by_index = orc_field_ids(&types, task.name_mapping.as_deref());
    let ids = column_ids(root, &column_ids_by_index, task.name_mapping.is_some(), current);
    // Hive-style files keep identity-partition columns in folder names only.
    let constants = if has_attributes(&types) {
        super::PartitionConstants::default()
    } else {
        super::PartitionConstants::for_task(table, &task, &ids.keys().copied().collect::<Vec<_>>()).await?
    };

    // Equality deletes compare columns the task may not project: read them too, drop them after.
    let mut wanted = task.project_field_ids.clone();
    let projected = wanted.len();
    if !wanted.is_empty() {
        wanted.extend(deletes.equality_ids().into_iter().filter(|id| !task.project_field_ids.contains(id)));
    }
    let target = projected_arrow_schema(current, &wanted).map_err(&file_error)?;
    let constants = constants.for_target(&target);
    // ORC column index of each target column the file has.
    let sources: Vec<Option<usize>> =
        target.fields().iter().map(|f| field_id(f).and_then(|id| ids.get(&id).copied())).collect();
    let mut read: Vec<usize> = sources.iter().flatten().copied().collect();
    if read.is_empty() {
        // No wanted column is in the file: read one anyway, for the row count.
        read.extend(root.children().first().map(|c| c.data_type().column_index()));
    }
    read.sort_unstable();
    read.dedup();
    // A task may cover part of the file (split at stripe offsets): read the stripes it covers.
    let range = task.start as usize..(task.start + task.length) as usize;
    // Position deletes count rows from the start of the file; this task's first row is after
    // the rows of the stripes before its range.
    let mut next_row: u64 = metadata
        .stripe_metadatas()
        .iter()
        .filter(|stripe| (stripe.offset() as usize) < range.start)
        .map(|stripe| stripe.number_of_rows())
        .sum();
    let reader =
        builder.with_file_byte_range(range).with_projection(ProjectionMask::roots(root, read.iter().copied())).build();
    let positions: Vec<Option<usize>> =
        sources.iter().map(|s| s.and_then(|index| read.iter().position(|r| *r == index))).collect();
    let stream = futures::stream::iter(reader).map(move |batch| {
        let failed = |message: String| Error::Metadata { table: path.clone(), message };
        let batch = batch.map_err(|e| failed(e.to_string()))?;
        let first_row = next_row;
        next_row += batch.num_rows() as u64;
        let batch = to_target(&batch, &target, &positions, &sources, (&types, &column_ids_by_index)).map_err(failed)?;
        let batch = constants.fill(batch).map_err(failed)?;
        let batch = deletes.apply(batch, first_row).map_err(failed)?;
        if projected > 0 && batch.num_columns() > projected {
            return batch.project(&(0..projected).collect::<Vec<_>>()).map_err(|e| failed(e.to_string()));
        }
        Ok(batch)
    });
    Ok(stream.boxed())
}

/// A batch as read into the target schema: columns by field id (nested children too), cast
/// to the current types, null where the file lacks them.
fn to_target(
    batch: &RecordBatch,
    target: &ArrowSchemaRef,
    positions: &[Option<usize>],
    sources: &[Option<usize>],
    (types, ids): (&[proto::Type], &HashMap<usize, i32>),
) -> std::result::Result<RecordBatch, String> {
    let columns = target
        .fields()
        .iter()
        .zip(positions.iter().zip(sources))
        .map(|(field, source)| match source {
            (Some(i), Some(index)) => reshape(&with_field_ids(batch.column(*i), types, ids, *index)?, field),
            _ => Ok(new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::clone(target), columns, &options).map_err(|e| e.to_string())
}

/// Iceberg field id → ORC column index of the file's top-level columns: by [`orc_field_ids`],
/// or, for a file without attributes on a table without a name mapping, by the current column
/// names (what Iceberg's own readers fall back to).
fn column_ids(
    root: &orc_rust::schema::RootDataType,
    by_index: &HashMap<usize, i32>,
    mapped: bool,
    current: &iceberg::spec::Schema,
) -> HashMap<i32, usize> {
    root.children()
        .iter()
        .filter_map(|c| {
            let index = c.data_type().column_index();
            let id = match by_index.get(&index) {
                Some(id) => *id,
                None if by_index.is_empty() && !mapped => current.field_by_name(c.name())?.id,
                None => return None,
            };
            Some((id, index))
        })
        .collect()
}
