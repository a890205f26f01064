//! Table health as metadata tells it, without reading a manifest: how much the writers added
//! since the table was last compacted. The writer slows its checkpoints down when this grows
//! past its limits; `icefall-optimizer status` prints it.

use iceberg::spec::{Operation, TableMetadata};
use serde::Serialize;

use crate::state::main_ancestry;

/// Commits and data files on main since the newest compaction (a `replace` snapshot), as far
/// back as metadata keeps snapshots.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SinceCompaction {
    /// Snapshots since the last compaction.
    pub snapshots: u64,
    /// Data files added since the last compaction.
    pub data_files_added: u64,
}

/// How much the table has grown since its last compaction.
pub fn since_compaction(metadata: &TableMetadata) -> SinceCompaction {
    let mut out = SinceCompaction::default();
    for snapshot in main_ancestry(metadata) {
        let summary = snapshot.summary();
        if summary.operation == Operation::Replace {
            break;
        }
        out.snapshots += 1;
        out.data_files_added +=
            summary.additional_properties.get("added-data-files").and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    out
}
