//! The standard snapshot summary fields engines show, plus the caller's properties.

use std::collections::HashMap;

use iceberg::spec::{DataContentType, ManifestContentType, ManifestFile, Operation, Summary};

use super::manifests::Removed;
use super::{Change, PendingCommit};

pub(super) fn build(
    pending: &PendingCommit,
    base_summary: HashMap<String, String>,
    all: &[ManifestFile],
    removed: &Removed,
    parent: Option<&Summary>,
) -> Summary {
    let mut props = pending.summary.clone();
    props.extend(base_summary);
    // Delete records added by this snapshot: (position, equality, bytes).
    let mut added_deletes = (0, 0, 0);
    let (operation, added) = match &pending.change {
        Change::Append { data_files, .. } => (Operation::Append, data_files.as_slice()),
        Change::Replace { added, .. } => (Operation::Replace, added.as_slice()),
        Change::AddDeletes { delete_files, .. } | Change::RewriteDeletes { added: delete_files, .. } => {
            for file in delete_files {
                match file.content_type() {
                    DataContentType::EqualityDeletes => added_deletes.1 += file.record_count(),
                    _ => added_deletes.0 += file.record_count(),
                }
                added_deletes.2 += file.file_size_in_bytes();
            }
            props.insert("added-delete-files".into(), delete_files.len().to_string());
            props.insert("added-position-deletes".into(), added_deletes.0.to_string());
            props.insert("added-equality-deletes".into(), added_deletes.1.to_string());
            let operation = if matches!(pending.change, Change::AddDeletes { .. }) {
                Operation::Delete
            } else {
                Operation::Replace
            };
            (operation, &[][..])
        }
        Change::RewriteManifests { .. }
        | Change::Expire { .. }
        | Change::EvolveSchema { .. }
        | Change::SetStatistics { .. } => (Operation::Replace, &[][..]),
    };
    let added_records: u64 = added.iter().map(|f| f.record_count()).sum();
    let added_size: u64 = added.iter().map(|f| f.file_size_in_bytes()).sum();
    props.insert("added-data-files".into(), added.len().to_string());
    props.insert("added-records".into(), added_records.to_string());
    // Sizes count delete files too, as Java's summaries do.
    props.insert("added-files-size".into(), (added_size + added_deletes.2).to_string());
    if removed.data_files > 0 || removed.delete_files > 0 {
        props.insert("deleted-data-files".into(), removed.data_files.to_string());
        props.insert("deleted-records".into(), removed.data_records.to_string());
        props.insert("removed-files-size".into(), (removed.data_bytes + removed.delete_bytes).to_string());
        props.insert("removed-delete-files".into(), removed.delete_files.to_string());
        props.insert("removed-position-deletes".into(), removed.position_deletes.to_string());
        props.insert("removed-equality-deletes".into(), removed.equality_deletes.to_string());
    }
    let live = |content: ManifestContentType, f: fn(&ManifestFile) -> u64| -> u64 {
        all.iter().filter(|m| m.content == content).map(f).sum()
    };
    let files =
        |m: &ManifestFile| u64::from(m.added_files_count.unwrap_or(0)) + u64::from(m.existing_files_count.unwrap_or(0));
    let rows = |m: &ManifestFile| m.added_rows_count.unwrap_or(0) + m.existing_rows_count.unwrap_or(0);
    props.insert("total-data-files".into(), live(ManifestContentType::Data, files).to_string());
    props.insert("total-records".into(), live(ManifestContentType::Data, rows).to_string());
    props.insert("total-delete-files".into(), live(ManifestContentType::Deletes, files).to_string());
    let parent_prop =
        |key: &str| parent.and_then(|s| s.additional_properties.get(key)).and_then(|v| v.parse::<u64>().ok());
    if let Some(size) = parent_prop("total-files-size").or(parent.is_none().then_some(0)) {
        let total = (size + added_size + added_deletes.2).saturating_sub(removed.data_bytes + removed.delete_bytes);
        props.insert("total-files-size".into(), total.to_string());
    }
    // Totals move by what this snapshot added and removed (engines' time travel counts rely
    // on total-records less total-position-deletes). A parent without the total (made by a
    // writer that did not keep it) leaves it unknown: omitted, as Java does, not restarted at 0.
    for (key, add, remove) in [
        ("total-position-deletes", added_deletes.0, removed.position_deletes),
        ("total-equality-deletes", added_deletes.1, removed.equality_deletes),
    ] {
        if let Some(before) = parent_prop(key).or(parent.is_none().then_some(0)) {
            props.insert(key.into(), (before + add).saturating_sub(remove).to_string());
        }
    }
    Summary { operation, additional_properties: props }
}
