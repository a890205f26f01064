//! Helpers shared by the optimizer's table-level tests.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use iceberg::spec::DataFile;
use icefall_table::files::TableFiles;
use icefall_table::{Catalog, Change, LoadedTable, PendingCommit, RetryPolicy};

/// Writes `batch` as the table's data files (not committed).
pub async fn write(catalog: &Catalog, table: &LoadedTable, batch: RecordBatch, prefix: &str) -> (Vec<DataFile>, i32) {
    let files = TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None).expect("files");
    let mut writer = files.open(prefix.to_string()).expect("open");
    writer.write(batch).await.expect("write");
    (writer.close().await.expect("close"), files.spec_id())
}

/// Commits `batch` to `table` as one file (an appended snapshot), as a streaming writer would.
#[allow(dead_code)] // not every test binary appends this way
pub async fn append(catalog: &Catalog, table: LoadedTable, batch: RecordBatch, prefix: &str) -> LoadedTable {
    let (data, spec_id) = write(catalog, &table, batch, prefix).await;
    commit(catalog, table, Change::Append { data_files: data, spec_id }).await
}

/// Commits `change` on `table`, returning the table after it.
pub async fn commit(catalog: &Catalog, table: LoadedTable, change: Change) -> LoadedTable {
    let pending = PendingCommit::new(change, HashMap::new());
    catalog.commit(table, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default()).await.expect("commit").table
}
