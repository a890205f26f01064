//! Sorting compaction output by the table's sort order or a z-order, in runs of bounded size:
//! a group that fits one run comes out fully sorted; a larger one as several sorted runs
//! (files), so memory stays bounded by the run size whatever the group size.

use arrow_array::RecordBatch;
use arrow_ord::sort::{SortColumn, lexsort_to_indices};
use arrow_schema::SortOptions;
use iceberg::spec::{NullOrder, SortDirection, TableMetadata, Transform};

use crate::zorder::ZOrder;
use crate::{Error, Result};

/// Rows sorted together at most.
pub const RUN_ROWS: usize = 1_000_000;

/// How to sort batches of one table; `None` for unsorted tables.
pub struct Sorter {
    order: Order,
    /// Every field of the table's sort order is applied (none was skipped): the output may
    /// say it follows that order.
    pub complete: bool,
}

enum Order {
    /// Column index in the batch and sort options.
    Keys(Vec<(usize, SortOptions)>),
    ZOrder(ZOrder),
}

impl Sorter {
    /// Sort keys of the table's default sort order, resolved to top-level batch columns.
    /// Fields with transforms that do not keep order (bucket, void) are skipped: sorting by the
    /// source column is right for identity and the monotonic time/truncate transforms.
    pub fn new(metadata: &TableMetadata, schema: &arrow_schema::Schema) -> Option<Sorter> {
        let order = metadata.default_sort_order();
        if order.is_unsorted() {
            return None;
        }
        let table_schema = metadata.current_schema();
        let keys: Vec<(usize, SortOptions)> = order
            .fields
            .iter()
            .filter(|f| !matches!(f.transform, Transform::Bucket(_) | Transform::Void | Transform::Unknown))
            .filter_map(|f| {
                let name = table_schema.name_by_field_id(f.source_id)?;
                let index = schema.index_of(name).ok()?;
                let options = SortOptions {
                    descending: f.direction == SortDirection::Descending,
                    nulls_first: f.null_order == NullOrder::First,
                };
                Some((index, options))
            })
            .collect();
        let complete = keys.len() == order.fields.len();
        if keys.is_empty() { None } else { Some(Sorter { order: Order::Keys(keys), complete }) }
    }

    /// Z-order of `columns` (not a table sort order: the output claims none).
    pub fn zorder(schema: &arrow_schema::Schema, columns: &[String]) -> Result<Sorter> {
        Ok(Sorter { order: Order::ZOrder(ZOrder::new(schema, columns)?), complete: false })
    }

    /// Sorts one run (the batches concatenated).
    pub fn sort(&self, batches: &[RecordBatch]) -> Result<RecordBatch> {
        let schema = batches.first().map(|b| b.schema()).ok_or_else(|| Error::Config("nothing to sort".into()))?;
        let run = arrow_select::concat::concat_batches(&schema, batches).map_err(arrow_error)?;
        let keys = match &self.order {
            Order::ZOrder(zorder) => return zorder.sort(&run),
            Order::Keys(keys) => keys,
        };
        let columns: Vec<SortColumn> = keys
            .iter()
            .map(|(i, options)| SortColumn { values: run.column(*i).clone(), options: Some(*options) })
            .collect();
        let indices = lexsort_to_indices(&columns, None).map_err(arrow_error)?;
        arrow_select::take::take_record_batch(&run, &indices).map_err(arrow_error)
    }
}

fn arrow_error(e: arrow_schema::ArrowError) -> Error {
    Error::Config(format!("sorting compaction output: {e}"))
}
