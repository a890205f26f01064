//! Planning a position delete rewrite from manifests only: the current snapshot's position
//! delete files by partition, those that can name no live data file (dropped unread), and
//! groups of small ones to merge.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use iceberg::spec::{DataContentType, DataFileFormat, ManifestContentType, PartitionKey, Struct};
use icefall_table::locations::partition_path;
use icefall_table::position_deletes::referenced_range;
use icefall_table::{Catalog, LoadedTable};

use crate::compact::{pack, within_budget};
use crate::{Error, Result};

/// Iceberg's default `write.delete.target-file-size-bytes`.
const DEFAULT_TARGET: u64 = 64 * 1024 * 1024;
const TARGET_PROPERTY: &str = "write.delete.target-file-size-bytes";

/// Settings of one position delete rewrite.
#[derive(Debug, Clone, Default)]
pub struct DeleteRewriteOptions {
    /// Merge a partition's delete files only when it has at least this many small ones.
    pub min_input_files: usize,
    /// Output size; default the table's `write.delete.target-file-size-bytes` or 64 MiB.
    pub target_file_size_bytes: Option<u64>,
    /// At most this many groups in one run.
    pub max_groups: Option<usize>,
    pub dry_run: bool,
}

/// One live position delete file, as its manifest entry describes it.
#[derive(Debug, Clone)]
pub struct DeleteFile {
    pub path: String,
    pub bytes: u64,
    pub records: u64,
    /// Its data sequence number: it applies to data files up to this one.
    pub sequence: i64,
}

/// Delete files of one partition merged into one.
#[derive(Debug, Clone)]
pub struct DeleteGroup {
    pub spec_id: i32,
    pub partition: Struct,
    /// The partition as a path, for reports.
    pub label: String,
    pub files: Vec<DeleteFile>,
    pub bytes: u64,
}

/// What a rewrite does, read from the current snapshot.
#[derive(Debug, Default)]
pub struct DeletePlan {
    pub groups: Vec<DeleteGroup>,
    /// Delete files whose bounds name no live data file, by partition spec: removed unread.
    pub dangling: BTreeMap<i32, Vec<DeleteFile>>,
    /// Live data files and their data sequence numbers: a delete row is kept only if its
    /// data file is here, no newer than the delete file.
    pub live_data: HashMap<String, i64>,
    pub notes: Vec<String>,
}

/// A delete file and the range of data file paths it can name (unknown: `None`).
type Candidate = (DeleteFile, Option<(String, String)>);

pub(super) fn target_size(table: &LoadedTable, options: &DeleteRewriteOptions) -> u64 {
    options
        .target_file_size_bytes
        .or_else(|| table.metadata.properties().get(TARGET_PROPERTY).and_then(|v| v.parse().ok()))
        .unwrap_or(DEFAULT_TARGET)
}

/// Plans from the current snapshot's manifests.
pub async fn plan(catalog: &Catalog, table: &LoadedTable, options: &DeleteRewriteOptions) -> Result<DeletePlan> {
    let Some(snapshot) = table.metadata.current_snapshot() else {
        return Ok(DeletePlan::default());
    };
    let list = catalog.manifest_list(&table.metadata, snapshot).await?;
    if !list.entries().iter().any(|m| m.content == ManifestContentType::Deletes) {
        return Ok(DeletePlan::default()); // the common case: nothing to read
    }
    let mut plan = DeletePlan::default();
    let mut by_partition: BTreeMap<(i32, String), (Struct, Vec<Candidate>)> = BTreeMap::new();
    let mut deletion_vectors = 0;
    for manifest_file in list.entries() {
        let manifest = manifest_file
            .load_manifest(catalog.file_io())
            .await
            .map_err(Error::iceberg(format!("read {}", manifest_file.manifest_path)))?;
        for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
            let sequence = entry.sequence_number().unwrap_or(manifest_file.sequence_number);
            let file = entry.data_file();
            match file.content_type() {
                DataContentType::Data => {
                    plan.live_data.insert(file.file_path().to_string(), sequence);
                }
                // Deletion vectors (format v3) are one per data file already: left as they are.
                DataContentType::PositionDeletes if file.file_format() == DataFileFormat::Puffin => {
                    deletion_vectors += 1;
                }
                DataContentType::PositionDeletes => {
                    let key = (manifest_file.partition_spec_id, format!("{:?}", file.partition()));
                    let delete = DeleteFile {
                        path: file.file_path().to_string(),
                        bytes: file.file_size_in_bytes(),
                        records: file.record_count(),
                        sequence,
                    };
                    let (_, files) = by_partition.entry(key).or_insert_with(|| (file.partition().clone(), Vec::new()));
                    files.push((delete, referenced_range(file)));
                }
                DataContentType::EqualityDeletes => {}
            }
        }
    }
    if deletion_vectors > 0 {
        plan.notes.push(format!("{deletion_vectors} deletion vectors (Puffin) are left as they are"));
    }

    let live: BTreeSet<&str> = plan.live_data.keys().map(String::as_str).collect();
    let target = target_size(table, options);
    let min_size = target / 4 * 3;
    let schema = table.metadata.current_schema();
    let mut groups = Vec::new();
    for ((spec_id, _), (partition, files)) in by_partition {
        let mut candidates = Vec::new();
        for (file, range) in files {
            match range {
                Some((low, high)) if live.range(low.as_str()..=high.as_str()).next().is_none() => {
                    plan.dangling.entry(spec_id).or_default().push(file);
                }
                _ if file.bytes < min_size => candidates.push(file),
                _ => {}
            }
        }
        if candidates.len() < options.min_input_files.max(2) {
            continue;
        }
        let label = match table.metadata.partition_spec_by_id(spec_id) {
            Some(spec) if !spec.is_unpartitioned() => {
                partition_path(&PartitionKey::new(spec.as_ref().clone(), schema.clone(), partition.clone()))
            }
            _ => String::new(),
        };
        for (bytes, files) in pack(candidates, |f| f.bytes, target) {
            if files.len() > 1 {
                groups.push(DeleteGroup { spec_id, partition: partition.clone(), label: label.clone(), files, bytes });
            }
        }
    }
    plan.groups = within_budget(groups, |g| g.bytes, None, options.max_groups);
    Ok(plan)
}
