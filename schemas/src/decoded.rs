//! What every decoder returns for a batch of records: the rows that decoded, as one Arrow
//! batch, and the records that did not, each with its reason.

use arrow_array::RecordBatch;

use crate::RecordError;

/// The rows that decoded and the records that did not.
#[derive(Debug)]
pub struct Decoded {
    /// One row per good record, in input order.
    pub batch: RecordBatch,
    /// Input index of each row of `batch`.
    pub rows: Vec<usize>,
    /// Input index and reason of each bad record.
    pub errors: Vec<(usize, RecordError)>,
}
