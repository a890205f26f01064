//! After a swap: the metadata files that fell off the table's metadata log (it keeps
//! `write.metadata.previous-versions-max` entries), deleted when the table's
//! `write.metadata.delete-after-commit.enabled` says so, as Java's commits do; otherwise a
//! streaming writer leaves a metadata file per checkpoint forever.

use std::collections::HashSet;

use crate::{Catalog, LoadedTable};

const DELETE_AFTER_COMMIT: &str = "write.metadata.delete-after-commit.enabled";

impl Catalog {
    /// Deletes `base`'s metadata files that `landed` no longer lists (best effort: one left
    /// behind is only an orphan for `remove-orphans`). A REST catalog's server does this itself.
    pub(super) async fn delete_dropped_metadata(&self, base: &LoadedTable, landed: &LoadedTable) {
        let enabled = landed
            .metadata
            .properties()
            .get(DELETE_AFTER_COMMIT)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if !enabled || self.is_rest() {
            return;
        }
        let kept: HashSet<&str> = landed
            .metadata
            .metadata_log()
            .iter()
            .map(|entry| entry.metadata_file.as_str())
            .chain([landed.metadata_location.as_str()])
            .collect();
        let previous = base.metadata.metadata_log().iter().map(|entry| entry.metadata_file.as_str());
        for file in previous.chain([base.metadata_location.as_str()]).filter(|f| !kept.contains(f)) {
            if let Err(e) = self.file_io().delete(file).await {
                tracing::debug!(file, error = %e, "could not delete an old metadata file");
            }
        }
    }
}
