//! Row-level deletes for the data files iceberg-rust's reader does not read (ORC): the
//! position and equality delete files a scan plan attached to one data file, loaded once and
//! applied batch by batch. Delete files may be Parquet or ORC, whatever the data file is —
//! Spark writes them in the table's `write.delete.format.default` (by default the data format).
//!
//! Which delete files apply to which data file (sequence numbers, partitions) is the plan's
//! business; this module only reads them and drops the rows they name.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_row::{RowConverter, SortField};
use bytes::Bytes;
use iceberg::io::FileIO;
use iceberg::scan::FileScanTask;
use iceberg::spec::{DataContentType, Schema};
use iceberg::table::Table;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{field_id, projected_arrow_schema};
use crate::{Error, Result};

/// The spec's reserved field ids and names of a position delete file's columns.
pub(crate) const FILE_PATH: (i32, &str) = (2147483546, "file_path");
pub(crate) const POS: (i32, &str) = (2147483545, "pos");

/// The deletes that apply to one data file.
#[derive(Default)]
pub(crate) struct RowDeletes {
    /// Deleted row positions in the data file, sorted, without duplicates.
    positions: Vec<u64>,
    equality: Vec<EqualityDeletes>,
}

/// The rows of one equality delete file (or several with the same columns), as row-format keys.
struct EqualityDeletes {
    field_ids: Vec<i32>,
    converter: RowConverter,
    keys: HashSet<Box<[u8]>>,
}

impl RowDeletes {
    /// Reads every delete file of `task` (a task over a data file of `table`).
    pub(crate) async fn load(table: &Table, task: &FileScanTask) -> Result<Self> {
        let mut deletes = RowDeletes::default();
        let current = table.metadata().current_schema();
        for file in &task.deletes {
            let failed = |message: String| Error::Metadata {
                table: task.data_file_path.clone(),
                message: format!("delete file {}: {message}", file.file_path),
            };
            match file.file_type {
                DataContentType::PositionDeletes => {
                    let batches = read_delete_file(table.file_io(), &file.file_path).await?;
                    deletes.add_positions(&batches, &task.data_file_path).map_err(failed)?;
                }
                DataContentType::EqualityDeletes => {
                    let ids = file.equality_ids.clone().unwrap_or_default();
                    if ids.is_empty() {
                        return Err(failed("an equality delete file without equality ids".into()));
                    }
                    let batches = read_delete_file(table.file_io(), &file.file_path).await?;
                    deletes.add_equality(&batches, &ids, current).map_err(failed)?;
                }
                DataContentType::Data => return Err(failed("a data file listed as a delete file".into())),
            }
        }
        deletes.positions.sort_unstable();
        deletes.positions.dedup();
        Ok(deletes)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.equality.is_empty()
    }

    /// The field ids equality deletes compare: a reader must read these columns too.
    pub(crate) fn equality_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.equality.iter().flat_map(|e| e.field_ids.iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn add_positions(&mut self, batches: &[RecordBatch], data_file: &str) -> std::result::Result<(), String> {
        for batch in batches {
            let paths = column(batch, FILE_PATH)?;
            let paths = arrow_cast::cast(&paths, &arrow_schema::DataType::Utf8).map_err(|e| e.to_string())?;
            let paths = paths.as_string::<i32>();
            let positions =
                arrow_cast::cast(&column(batch, POS)?, &arrow_schema::DataType::Int64).map_err(|e| e.to_string())?;
            let positions = positions.as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                if paths.is_valid(row) && paths.value(row) == data_file && positions.is_valid(row) {
                    let position = u64::try_from(positions.value(row)).map_err(|_| "a negative position")?;
                    self.positions.push(position);
                }
            }
        }
        Ok(())
    }

    fn add_equality(
        &mut self,
        batches: &[RecordBatch],
        ids: &[i32],
        current: &Schema,
    ) -> std::result::Result<(), String> {
        // Keys are compared in the current types (a delete file may predate a widening).
        let schema = projected_arrow_schema(current, ids)?;
        if schema.fields().len() != ids.len() {
            return Err(format!(
                "equality ids {ids:?} are not all top-level columns of the current schema: only top-level \
                 columns are supported"
            ));
        }
        let fields: Vec<SortField> = schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        let index = match self.equality.iter().position(|e| e.field_ids == ids) {
            Some(index) => index,
            None => {
                let converter = RowConverter::new(fields).map_err(|e| e.to_string())?;
                self.equality.push(EqualityDeletes { field_ids: ids.to_vec(), converter, keys: HashSet::new() });
                self.equality.len() - 1
            }
        };
        let equality = &mut self.equality[index];
        for batch in batches {
            let columns = ids
                .iter()
                .zip(schema.fields())
                .map(|(id, field)| {
                    let values = column(batch, (*id, field.name().as_str()))?;
                    arrow_cast::cast(&values, field.data_type()).map_err(|e| format!("column {}: {e}", field.name()))
                })
                .collect::<std::result::Result<Vec<ArrayRef>, String>>()?;
            let rows = equality.converter.convert_columns(&columns).map_err(|e| e.to_string())?;
            equality.keys.extend(rows.iter().map(|row| Box::<[u8]>::from(row.as_ref())));
        }
        Ok(())
    }

    /// `batch` without its deleted rows; `first_row` is the position of its first row in the
    /// data file, and its columns carry field ids (the equality columns among them).
    pub(crate) fn apply(&self, batch: RecordBatch, first_row: u64) -> std::result::Result<RecordBatch, String> {
        if self.is_empty() || batch.num_rows() == 0 {
            return Ok(batch);
        }
        let rows = batch.num_rows();
        let start = self.positions.partition_point(|p| *p < first_row);
        let end = self.positions.partition_point(|p| *p < first_row + rows as u64);
        let mut keep = vec![true; rows];
        for position in &self.positions[start..end] {
            keep[(position - first_row) as usize] = false;
        }
        for equality in &self.equality {
            let columns = equality
                .field_ids
                .iter()
                .map(|id| {
                    let index = batch
                        .schema()
                        .fields()
                        .iter()
                        .position(|f| field_id(f) == Some(*id))
                        .ok_or_else(|| format!("the equality column with field id {id} was not read"))?;
                    Ok(Arc::clone(batch.column(index)))
                })
                .collect::<std::result::Result<Vec<ArrayRef>, String>>()?;
            let keys = equality.converter.convert_columns(&columns).map_err(|e| e.to_string())?;
            for (row, key) in keys.iter().enumerate() {
                if keep[row] && equality.keys.contains(key.as_ref()) {
                    keep[row] = false;
                }
            }
        }
        if keep.iter().all(|k| *k) {
            return Ok(batch);
        }
        arrow_select::filter::filter_record_batch(&batch, &BooleanArray::from(keep)).map_err(|e| e.to_string())
    }
}

/// A column of a delete file by field id, else by name (files without ids).
pub(crate) fn column(batch: &RecordBatch, (id, name): (i32, &str)) -> std::result::Result<ArrayRef, String> {
    let fields = batch.schema().fields().clone();
    let index = fields
        .iter()
        .position(|f| field_id(f) == Some(id))
        .or_else(|| fields.iter().position(|f| f.name() == name))
        .ok_or_else(|| format!("no column {name} (field id {id})"))?;
    Ok(Arc::clone(batch.column(index)))
}

/// Every row of a delete file, Parquet or ORC (told apart by their magic bytes), with the
/// field ids of its columns in their metadata.
pub(crate) async fn read_delete_file(file_io: &FileIO, path: &str) -> Result<Vec<RecordBatch>> {
    let context = format!("read delete file {path}");
    let input = file_io.new_input(path).map_err(Error::iceberg(&context))?;
    let bytes: Bytes = input.read().await.map_err(Error::iceberg(&context))?;
    let failed = |message: String| Error::Metadata { table: path.to_string(), message };
    if bytes.starts_with(b"ORC") {
        return crate::orc::field_ids::read_all(bytes).map_err(failed);
    }
    if !bytes.ends_with(b"PAR1") {
        return Err(failed("a delete file that is neither Parquet nor ORC".into()));
    }
    let unreadable = |e: parquet::errors::ParquetError| failed(format!("unreadable Parquet: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(unreadable)?.build().map_err(unreadable)?;
    reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| failed(format!("unreadable Parquet: {e}")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow_array::{Int32Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema as ArrowSchema};
    use iceberg::spec::{NestedField, PrimitiveType, Type};
    use parquet::arrow::PARQUET_FIELD_ID_META_KEY;

    use super::*;

    fn with_id(name: &str, data_type: DataType, id: i32) -> Field {
        Field::new(name, data_type, true)
            .with_metadata(HashMap::from([(PARQUET_FIELD_ID_META_KEY.to_string(), id.to_string())]))
    }

    fn data(ids: Vec<i64>, names: Vec<Option<&str>>) -> RecordBatch {
        let schema = ArrowSchema::new(vec![with_id("id", DataType::Int64, 1), with_id("name", DataType::Utf8, 2)]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names))],
        )
        .expect("batch")
    }

    fn ids(batch: &RecordBatch) -> Vec<i64> {
        batch.column(0).as_primitive::<Int64Type>().values().to_vec()
    }

    #[test]
    fn positions_count_from_the_first_row_of_each_batch_and_only_for_this_file() {
        let schema = ArrowSchema::new(vec![
            with_id("file_path", DataType::Utf8, FILE_PATH.0),
            with_id("pos", DataType::Int64, POS.0),
        ]);
        let deletes = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["a.orc", "a.orc", "b.orc", "a.orc", "a.orc"])),
                Arc::new(Int64Array::from(vec![4, 0, 1, 4, 6])),
            ],
        )
        .expect("deletes");
        let mut row_deletes = RowDeletes::default();
        row_deletes.add_positions(&[deletes], "a.orc").expect("positions");
        row_deletes.positions.sort_unstable();
        row_deletes.positions.dedup();
        let first = row_deletes.apply(data((0..5).collect(), vec![None; 5]), 0).expect("apply");
        assert_eq!(ids(&first), [1, 2, 3]);
        let second = row_deletes.apply(data((5..10).collect(), vec![None; 5]), 5).expect("apply");
        assert_eq!(ids(&second), [5, 7, 8, 9], "position 6 is the second batch's second row");
    }

    #[test]
    fn equality_deletes_match_in_current_types_and_null_matches_null() {
        let current = Schema::builder()
            .with_fields(vec![
                Arc::new(NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long))),
                Arc::new(NestedField::optional(2, "name", Type::Primitive(PrimitiveType::String))),
            ])
            .build()
            .expect("schema");
        // Written when `id` was still an int, and without field ids: matched by name.
        let schema =
            ArrowSchema::new(vec![Field::new("id", DataType::Int32, true), Field::new("name", DataType::Utf8, true)]);
        let deletes = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int32Array::from(vec![2, 3, 4])),
                Arc::new(StringArray::from(vec![Some("b"), None, Some("x")])),
            ],
        )
        .expect("deletes");
        let mut row_deletes = RowDeletes::default();
        row_deletes.add_equality(&[deletes], &[1, 2], &current).expect("equality");
        assert_eq!(row_deletes.equality_ids(), [1, 2]);
        let batch = data(vec![1, 2, 3, 4, 3], vec![Some("a"), Some("b"), None, Some("d"), Some("c")]);
        assert_eq!(ids(&row_deletes.apply(batch, 0).expect("apply")), [1, 4, 3]);

        let nested = row_deletes.add_equality(&[], &[7], &current).expect_err("not a top-level column");
        assert!(nested.contains("top-level"), "{nested}");
    }
}
