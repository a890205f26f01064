//! Manifests of a new snapshot: the ones listing new files (written once per commit) and the
//! base's manifests carried over, rewritten where a replace removes some of their entries.

use std::collections::{BTreeMap, BTreeSet};

use iceberg::spec::{
    DataContentType, DataFile, ManifestContentType, ManifestEntry, ManifestFile, ManifestStatus, ManifestWriter,
    ManifestWriterBuilder, PartitionSpec, Struct, UNASSIGNED_SEQUENCE_NUMBER,
};

use super::Change;
use crate::partition_values::entry_for_spec;
use crate::{Catalog, Error, LoadedTable, Result};

/// A merged rewritten manifest is closed at this many entries (about 8 MB, Iceberg's
/// `commit.manifest.target-size-bytes`, at a few hundred bytes an entry).
const MERGED_MANIFEST_ENTRIES: usize = 20_000;

/// Files a replace took out of the table, for the snapshot summary.
#[derive(Debug, Default)]
pub(super) struct Removed {
    pub data_files: u64,
    pub data_records: u64,
    pub data_bytes: u64,
    pub delete_files: u64,
    pub delete_bytes: u64,
    pub position_deletes: u64,
    pub equality_deletes: u64,
}

/// The base's manifests as the new snapshot keeps them.
pub(super) struct Carried {
    pub manifests: Vec<ManifestFile>,
    pub removed: Removed,
    /// Manifests written for this attempt (garbage if the attempt loses the race).
    pub written: Vec<String>,
}

impl Catalog {
    /// A manifest writer for a new manifest of this commit in the table's metadata folder.
    fn new_manifest(
        &self,
        base: &LoadedTable,
        snapshot_id: i64,
        spec: &PartitionSpec,
        deletes: bool,
    ) -> Result<(String, ManifestWriter)> {
        let path = format!("{}/{}-m.avro", crate::locations::metadata_dir(&base.metadata), uuid::Uuid::now_v7());
        let output = self.file_io().new_output(&path).map_err(Error::iceberg(format!("create {path}")))?;
        let builder =
            ManifestWriterBuilder::new(output, Some(snapshot_id), base.metadata.current_schema().clone(), spec.clone());
        let writer = if deletes { builder.build_v2_deletes() } else { builder.build_v2_data() };
        Ok((path, writer))
    }

    /// Writes the manifest listing the change's new files, once per commit. Entries inherit
    /// their sequence number from the manifest list, so the manifest stays valid across rebases.
    pub(super) async fn write_added_manifests(
        &self,
        base: &LoadedTable,
        snapshot_id: i64,
        change: &Change,
    ) -> Result<Vec<ManifestFile>> {
        let (files, spec_id, deletes): (&[DataFile], i32, bool) = match change {
            Change::Append { data_files, spec_id } => (data_files, *spec_id, false),
            Change::Replace { added, spec_id, .. } => (added, *spec_id, false),
            Change::AddDeletes { delete_files, spec_id } => (delete_files, *spec_id, true),
            Change::RewriteDeletes { added, spec_id, .. } => (added, *spec_id, true),
            Change::Expire { .. }
            | Change::RewriteManifests { .. }
            | Change::EvolveSchema { .. }
            | Change::SetStatistics { .. } => {
                return Ok(Vec::new());
            }
        };
        if files.is_empty() {
            return Ok(Vec::new());
        }
        // The spec the files were partitioned with, which stays valid when another engine
        // makes a new one the default (iceberg-rust's DataFile keeps its spec id private).
        let spec = base.metadata.partition_spec_by_id(spec_id).ok_or_else(|| Error::Rejected {
            table: base.name(),
            reason: format!("the partition spec {spec_id} these files were written with is no longer in the table"),
        })?;
        let (path, mut writer) = self.new_manifest(base, snapshot_id, spec, deletes)?;
        for file in files {
            if (file.content_type() == DataContentType::Data) == deletes {
                return Err(Error::Metadata {
                    table: base.name(),
                    message: format!("{} has the wrong content type for this change", file.file_path()),
                });
            }
            writer
                .add_file(file.clone(), UNASSIGNED_SEQUENCE_NUMBER)
                .map_err(Error::iceberg(format!("add {} to manifest", file.file_path())))?;
        }
        Ok(vec![writer.write_manifest_file().await.map_err(Error::iceberg(format!("write {path}")))?])
    }

    /// The base's manifests as they go into the new snapshot.
    pub(super) async fn carried_manifests(
        &self,
        base: &LoadedTable,
        snapshot_id: i64,
        existing: Vec<ManifestFile>,
        change: &Change,
    ) -> Result<Carried> {
        match change {
            Change::Append { .. }
            | Change::AddDeletes { .. }
            | Change::Expire { .. }
            | Change::EvolveSchema { .. }
            | Change::SetStatistics { .. } => {
                Ok(Carried { manifests: existing, removed: Removed::default(), written: Vec::new() })
            }
            Change::RewriteManifests { based_on_snapshot, replaced, entries_per_manifest } => {
                if base.metadata.current_snapshot_id() != Some(*based_on_snapshot) {
                    return Err(Error::Rejected {
                        table: base.name(),
                        reason: "the table changed while its manifests were planned".into(),
                    });
                }
                self.merge_manifests(base, snapshot_id, existing, replaced, *entries_per_manifest).await
            }
            Change::Replace { removed_data_files, removed_delete_files, planned_sequence_number, .. } => {
                self.rewrite_for_replace(
                    base,
                    snapshot_id,
                    existing,
                    removed_data_files,
                    removed_delete_files,
                    *planned_sequence_number,
                )
                .await
            }
            // No data file goes, so no newer delete file can have been missed.
            Change::RewriteDeletes { removed, .. } => {
                self.rewrite_for_replace(base, snapshot_id, existing, &BTreeSet::new(), removed, i64::MAX).await
            }
        }
    }

    /// Rewrites the `replaced` data manifests into fewer, partition-clustered ones.
    async fn merge_manifests(
        &self,
        base: &LoadedTable,
        snapshot_id: i64,
        existing: Vec<ManifestFile>,
        replaced: &BTreeSet<String>,
        entries_per_manifest: usize,
    ) -> Result<Carried> {
        let mut carried = Carried { manifests: Vec::new(), removed: Removed::default(), written: Vec::new() };
        // spec id → (partition key → entries): clustering keeps a partition's files together.
        let mut entries: BTreeMap<i32, BTreeMap<String, Vec<ManifestEntry>>> = BTreeMap::new();
        for manifest_file in existing {
            if manifest_file.content != ManifestContentType::Data || !replaced.contains(&manifest_file.manifest_path) {
                carried.manifests.push(manifest_file);
                continue;
            }
            let manifest = manifest_file
                .load_manifest(self.file_io())
                .await
                .map_err(Error::iceberg(format!("read {}", manifest_file.manifest_path)))?;
            let by_partition = entries.entry(manifest_file.partition_spec_id).or_default();
            for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                let mut entry = entry.as_ref().clone();
                entry.sequence_number = entry.sequence_number.or(Some(manifest_file.sequence_number));
                entry.snapshot_id = entry.snapshot_id.or(Some(manifest_file.added_snapshot_id));
                by_partition.entry(format!("{:?}", entry.data_file().partition())).or_default().push(entry);
            }
        }
        for (spec_id, partitions) in entries {
            let spec = base.metadata.partition_spec_by_id(spec_id).ok_or_else(|| Error::Metadata {
                table: base.name(),
                message: format!("a manifest uses unknown partition spec {spec_id}"),
            })?;
            let all: Vec<ManifestEntry> = partitions.into_values().flatten().collect();
            for chunk in all.chunks(entries_per_manifest.max(1)) {
                let (path, mut writer) = self.new_manifest(base, snapshot_id, spec, false)?;
                for entry in chunk {
                    let sequence = entry.sequence_number.unwrap_or(0);
                    writer
                        .add_existing_file(
                            entry_for_spec(entry.data_file(), spec, base.metadata.current_schema()),
                            entry.snapshot_id.unwrap_or(snapshot_id),
                            sequence,
                            entry.file_sequence_number.or(Some(sequence)),
                        )
                        .map_err(Error::iceberg(format!("write {path}")))?;
                }
                carried
                    .manifests
                    .push(writer.write_manifest_file().await.map_err(Error::iceberg(format!("write {path}")))?);
                carried.written.push(path);
            }
        }
        Ok(carried)
    }

    /// Marks the removed files deleted in the manifests that list them, validating that each
    /// removed file is still live and that no delete file newer than the plan applies to a
    /// removed data file.
    async fn rewrite_for_replace(
        &self,
        base: &LoadedTable,
        snapshot_id: i64,
        existing: Vec<ManifestFile>,
        removed_data: &BTreeSet<String>,
        removed_deletes: &BTreeSet<String>,
        planned_sequence_number: i64,
    ) -> Result<Carried> {
        let reject = |reason: String| Error::Rejected { table: base.name(), reason };
        let mut carried = Carried { manifests: Vec::new(), removed: Removed::default(), written: Vec::new() };
        let mut found: BTreeSet<&str> = BTreeSet::new();
        // Delete files newer than the plan, and the partitions of the removed data files: a
        // newer delete that can apply to a removed file was not applied by the rewrite.
        let mut newer_deletes: Vec<(i32, Struct, Option<String>, String)> = Vec::new();
        let mut removed_partitions: Vec<(i32, Struct)> = Vec::new();
        let mut rewritten: BTreeMap<(i32, bool), (String, ManifestWriter, usize)> = BTreeMap::new();
        for manifest_file in existing {
            let manifest = manifest_file
                .load_manifest(self.file_io())
                .await
                .map_err(Error::iceberg(format!("read {}", manifest_file.manifest_path)))?;
            let deletes = manifest_file.content == ManifestContentType::Deletes;
            for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                if deletes && entry.sequence_number().is_some_and(|s| s > planned_sequence_number) {
                    let file = entry.data_file();
                    newer_deletes.push((
                        manifest_file.partition_spec_id,
                        file.partition().clone(),
                        file.referenced_data_file(),
                        file.file_path().to_string(),
                    ));
                }
                if !deletes && removed_data.contains(entry.file_path()) {
                    removed_partitions.push((manifest_file.partition_spec_id, entry.data_file().partition().clone()));
                }
            }
            let touched = manifest.entries().iter().any(|e| {
                e.is_alive() && (removed_data.contains(e.file_path()) || removed_deletes.contains(e.file_path()))
            });
            if !touched {
                carried.manifests.push(manifest_file);
                continue;
            }
            let spec =
                base.metadata.partition_spec_by_id(manifest_file.partition_spec_id).ok_or_else(|| Error::Metadata {
                    table: base.name(),
                    message: format!(
                        "manifest {} uses unknown spec {}",
                        manifest_file.manifest_path, manifest_file.partition_spec_id
                    ),
                })?;
            // Rewritten manifests of one spec and content share a writer: compacting N small
            // files from N manifests writes one manifest, not N (Java's merge does the same).
            let key = (manifest_file.partition_spec_id, deletes);
            let (_, writer, entries) = match rewritten.entry(key) {
                std::collections::btree_map::Entry::Occupied(open) => open.into_mut(),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    let (path, writer) = self.new_manifest(base, snapshot_id, spec, deletes)?;
                    slot.insert((path, writer, 0))
                }
            };
            for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                *entries += 1;
                let file = entry_for_spec(entry.data_file(), spec, base.metadata.current_schema());
                let sequence = entry.sequence_number().unwrap_or(manifest_file.sequence_number);
                let file_sequence = entry.file_sequence_number.or(Some(sequence));
                let path = entry.file_path();
                let result = if removed_data.contains(path) || removed_deletes.contains(path) {
                    if deletes {
                        carried.removed.delete_files += 1;
                        carried.removed.delete_bytes += entry.file_size_in_bytes();
                        match file.content_type() {
                            DataContentType::EqualityDeletes => {
                                carried.removed.equality_deletes += entry.record_count()
                            }
                            _ => carried.removed.position_deletes += entry.record_count(),
                        }
                        if let Some(listed) = removed_deletes.get(path) {
                            found.insert(listed.as_str());
                        }
                    } else {
                        if let Some(listed) = removed_data.get(path) {
                            found.insert(listed.as_str());
                        }
                        carried.removed.data_files += 1;
                        carried.removed.data_records += entry.record_count();
                        carried.removed.data_bytes += entry.file_size_in_bytes();
                    }
                    writer.add_delete_file(file, sequence, file_sequence)
                } else {
                    let added_by = entry.snapshot_id().unwrap_or(manifest_file.added_snapshot_id);
                    writer.add_existing_file(file, added_by, sequence, file_sequence)
                };
                result.map_err(Error::iceberg(format!("rewrite manifest {}", manifest_file.manifest_path)))?;
                debug_assert!(entry.status() != ManifestStatus::Deleted);
            }
            if *entries >= MERGED_MANIFEST_ENTRIES
                && let Some((path, writer, _)) = rewritten.remove(&key)
            {
                carried
                    .manifests
                    .push(writer.write_manifest_file().await.map_err(Error::iceberg(format!("write {path}")))?);
                carried.written.push(path);
            }
        }
        for (path, writer, _) in rewritten.into_values() {
            carried
                .manifests
                .push(writer.write_manifest_file().await.map_err(Error::iceberg(format!("write {path}")))?);
            carried.written.push(path);
        }
        let unpartitioned =
            |spec_id: i32| base.metadata.partition_spec_by_id(spec_id).is_none_or(|s| s.is_unpartitioned());
        // Tuples written before a partition source was widened compare promoted.
        let schema = base.metadata.current_schema();
        let promoted = |spec_id: i32, values: &Struct| match base.metadata.partition_spec_by_id(spec_id) {
            Some(spec) => match spec.partition_type(schema) {
                Ok(ty) if crate::partition_values::fits(values, &ty) => crate::partition_values::promote(values, &ty),
                _ => values.clone(),
            },
            None => values.clone(),
        };
        let removed_partitions: Vec<(i32, Struct)> =
            removed_partitions.iter().map(|(spec_id, values)| (*spec_id, promoted(*spec_id, values))).collect();
        for (spec_id, partition, referenced, path) in &newer_deletes {
            let applies = match referenced {
                Some(data_file) => removed_data.contains(data_file),
                None => {
                    unpartitioned(*spec_id)
                        || removed_partitions.iter().any(|(s, p)| s == spec_id && *p == promoted(*spec_id, partition))
                }
            };
            if applies {
                return Err(reject(format!(
                    "delete file {path} was added after the rewrite was planned and applies to its files; its deletes are not applied"
                )));
            }
        }
        if let Some(gone) = removed_data.iter().find(|p| !found.contains(p.as_str())) {
            return Err(reject(format!("data file {gone} is no longer live (a concurrent commit removed it)")));
        }
        if let Some(gone) = removed_deletes.iter().find(|p| !found.contains(p.as_str())) {
            return Err(reject(format!("delete file {gone} is no longer live (a concurrent commit removed it)")));
        }
        Ok(carried)
    }
}
