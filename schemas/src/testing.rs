//! Helpers for this crate's tests: render decoded rows as text to compare.

use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};

/// `column=value` pairs of one row, nulls shown as `null`.
pub(crate) fn row(batch: &RecordBatch, i: usize) -> Vec<String> {
    let options = FormatOptions::default().with_null("null");
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options).expect("formattable");
            format!("{}={}", field.name(), formatter.value(i))
        })
        .collect()
}
