//! Landing a rewrite (compaction, position delete rewrite, statistics): commit it through the shared
//! commit path, and if it does not land, delete the files it wrote — the one place the
//! optimizer decides which of its files are garbage.

use std::collections::HashMap;

use icefall_table::reachable::delete_uncommitted;
use icefall_table::{Catalog, Error as TableError, LoadedTable, PendingCommit, RetryPolicy, TableIdent};

use crate::Result;

/// Commits `pending` on `table` and returns the table as the commit left it; on failure
/// deletes `written` (the files the commit adds) where that is safe, and returns the error.
pub(crate) async fn commit_rewrite(
    catalog: &Catalog,
    ident: &TableIdent,
    table: LoadedTable,
    pending: &PendingCommit,
    written: Vec<String>,
) -> Result<LoadedTable> {
    let result = catalog.commit(table, pending, |_| Ok(HashMap::new()), &RetryPolicy::maintenance()).await;
    let e = match result {
        Ok(outcome) => return Ok(outcome.table),
        Err(e) => e,
    };
    // A rejected commit never landed: its files go now. After an unknown outcome the commit
    // may have landed, so only files no snapshot references go (none if the table cannot be
    // read: orphan removal decides later).
    match &e {
        TableError::Rejected { .. } | TableError::ConflictRetriesExhausted { .. } => {
            delete_uncommitted(catalog.file_io(), written).await;
        }
        _ => {
            if let Err(check) = catalog.delete_unreferenced(ident, &written).await {
                tracing::warn!(error = %check, "cannot tell whether the rewrite landed; its files stay for remove-orphans");
            }
        }
    }
    Err(e.into())
}
