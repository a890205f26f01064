//! A batch under construction: the top-level columns of a schema, filled record by record,
//! a failed record rolled back whole.

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::{ArrowError, SchemaRef};

use super::Column;
use crate::RecordError;
use crate::decoded::Decoded;
use crate::error::Reason;

/// Decodes a batch record by record into `schema`'s columns: `decode_one` pushes one value into
/// every column or fails, and a failed record is rolled back whole and reported with its index.
pub(crate) fn decode_batch<'a>(
    schema: &SchemaRef,
    payloads: impl IntoIterator<Item = Option<&'a [u8]>>,
    mut decode_one: impl FnMut(&'a [u8], &mut [Column]) -> Result<(), RecordError>,
) -> crate::Result<Decoded> {
    let payloads = payloads.into_iter();
    let mut rows = Rows::new(schema.clone())?;
    let expected = payloads.size_hint().0;
    rows.columns.iter_mut().for_each(|c| c.reserve(expected));
    let mut good = Vec::with_capacity(expected);
    let mut errors = Vec::new();
    for (index, payload) in payloads.enumerate() {
        let result = match payload {
            None => Err(RecordError::new(Reason::Empty, "the record has no value")),
            Some(bytes) => decode_one(bytes, &mut rows.columns),
        };
        match result {
            Ok(()) => {
                rows.commit_row();
                good.push(index);
            }
            Err(e) => {
                rows.rollback_row();
                errors.push((index, e));
            }
        }
    }
    Ok(Decoded { batch: rows.finish()?, rows: good, errors })
}

/// The top-level columns of a batch under construction.
#[derive(Debug)]
pub(crate) struct Rows {
    schema: SchemaRef,
    pub(crate) columns: Vec<Column>,
    rows: usize,
}

impl Rows {
    pub(crate) fn new(schema: SchemaRef) -> Result<Self, ArrowError> {
        let columns = schema.fields().iter().map(|f| Column::new(f.data_type())).collect::<Result<_, _>>()?;
        Ok(Rows { schema, columns, rows: 0 })
    }

    /// Ends a row: every column holds exactly one more value than before the row began.
    pub(crate) fn commit_row(&mut self) {
        self.rows += 1;
    }

    /// Drops whatever a failed record pushed since the last complete row.
    pub(crate) fn rollback_row(&mut self) {
        let rows = self.rows;
        self.columns.iter_mut().for_each(|c| c.truncate(rows));
    }

    pub(crate) fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let arrays = self.columns.iter_mut().map(Column::finish).collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        RecordBatch::try_new_with_options(self.schema, arrays, &options)
    }
}
