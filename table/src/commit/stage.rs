//! Staging one commit attempt: the manifest list and new metadata a change makes on one base,
//! written before the compare-and-swap (and deleted again if the attempt loses it).

use std::collections::HashMap;

use iceberg::spec::{
    MAIN_BRANCH, ManifestFile, ManifestList, ManifestListWriter, Snapshot, SnapshotReference, SnapshotRetention,
    TableMetadata,
};

use super::{Change, PendingCommit, summary};
use crate::catalog::display_ident;
use crate::{Catalog, Error, LoadedTable, Result};

/// Files written for one attempt, deleted again if the attempt loses the race.
pub(super) struct Staged {
    pub(super) metadata_location: String,
    pub(super) metadata: TableMetadata,
    pub(super) attempt_files: Vec<String>,
}

impl Catalog {
    /// Writes the manifest list and metadata file of one attempt that makes a snapshot.
    pub(super) async fn stage_snapshot(
        &self,
        base: &LoadedTable,
        snapshot_id: i64,
        added: &[ManifestFile],
        pending: &PendingCommit,
        base_summary: HashMap<String, String>,
        attempt: u32,
    ) -> Result<Staged> {
        let metadata = &base.metadata;
        let parent = metadata.snapshot_for_ref(MAIN_BRANCH);
        let existing: Vec<ManifestFile> = match parent {
            Some(parent) => self.manifest_list(metadata, parent).await?.consume_entries().into_iter().collect(),
            None => Vec::new(),
        };
        let carried = self.carried_manifests(base, snapshot_id, existing, &pending.change).await?;
        let sequence_number = metadata.next_sequence_number();
        let dir = crate::locations::metadata_dir(metadata);
        let manifest_list = format!("{dir}/snap-{snapshot_id}-{attempt}-{}.avro", uuid::Uuid::now_v7());
        let output =
            self.file_io().new_output(&manifest_list).map_err(Error::iceberg(format!("create {manifest_list}")))?;
        let sink = output.writer().await.map_err(Error::iceberg(format!("open {manifest_list}")))?;
        let mut writer = ManifestListWriter::v2(sink, snapshot_id, parent.map(|p| p.snapshot_id()), sequence_number);
        let all: Vec<ManifestFile> = added.iter().cloned().chain(carried.manifests).collect();
        writer.add_manifests(all.clone().into_iter()).map_err(Error::iceberg(format!("write {manifest_list}")))?;
        writer.close().await.map_err(Error::iceberg(format!("close {manifest_list}")))?;

        let summary = summary::build(pending, base_summary, &all, &carried.removed, parent.map(|p| p.summary()));
        let snapshot = Snapshot::builder()
            .with_snapshot_id(snapshot_id)
            .with_parent_snapshot_id(parent.map(|p| p.snapshot_id()))
            .with_sequence_number(sequence_number)
            .with_timestamp_ms(chrono::Utc::now().timestamp_millis().max(metadata.last_updated_ms()))
            .with_manifest_list(manifest_list.clone())
            .with_summary(summary)
            .with_schema_id(metadata.current_schema_id())
            .build();
        let mut builder = metadata
            .as_ref()
            .clone()
            .into_builder(Some(base.metadata_location.clone()))
            .set_branch_snapshot(snapshot, MAIN_BRANCH);
        if let Some(tag) = &pending.tag {
            let reference = SnapshotReference::new(snapshot_id, SnapshotRetention::Tag { max_ref_age_ms: None });
            builder = builder.and_then(|b| b.set_ref(tag, reference));
        }
        let new_metadata = builder
            .and_then(|b| b.build())
            .map_err(Error::iceberg(format!("build new metadata of {}", display_ident(&base.ident))))?
            .metadata;
        let mut attempt_files = carried.written;
        attempt_files.push(manifest_list);
        self.write_metadata(base, new_metadata, attempt_files).await
    }

    /// Metadata-only changes (expiry, schema evolution, statistics).
    pub(super) async fn stage_metadata_change(&self, base: &LoadedTable, change: &Change) -> Result<Staged> {
        if let Change::SetStatistics { statistics } = change {
            if base.metadata.snapshot_by_id(statistics.snapshot_id).is_none() {
                return Err(Error::Rejected {
                    table: base.name(),
                    reason: format!("snapshot {} of the statistics was expired meanwhile", statistics.snapshot_id),
                });
            }
            let new_metadata = base
                .metadata
                .as_ref()
                .clone()
                .into_builder(Some(base.metadata_location.clone()))
                .set_statistics(statistics.as_ref().clone())
                .build()
                .map_err(Error::iceberg(format!("register statistics of {}", base.name())))?
                .metadata;
            return self.write_metadata(base, new_metadata, Vec::new()).await;
        }
        if let Change::EvolveSchema { schema, based_on_schema_id, properties } = change {
            let current = base.metadata.current_schema_id();
            if current != *based_on_schema_id {
                return Err(Error::Rejected {
                    table: base.name(),
                    reason: format!(
                        "the schema changed since the evolution was planned ({based_on_schema_id} → {current})"
                    ),
                });
            }
            let new_metadata = base
                .metadata
                .as_ref()
                .clone()
                .into_builder(Some(base.metadata_location.clone()))
                .add_current_schema(schema.as_ref().clone())
                .and_then(|b| b.set_properties(properties.clone()))
                .and_then(|b| b.build())
                .map_err(Error::iceberg(format!("evolve the schema of {}", base.name())))?
                .metadata;
            return self.write_metadata(base, new_metadata, Vec::new()).await;
        }
        let Change::Expire { snapshot_ids, refs } = change else {
            return Err(Error::Metadata { table: base.name(), message: "not a metadata-only change".into() });
        };
        let current = base.metadata.current_snapshot_id();
        let present: Vec<i64> =
            snapshot_ids.iter().copied().filter(|id| base.metadata.snapshot_by_id(*id).is_some()).collect();
        if present.iter().any(|id| Some(*id) == current) {
            return Err(Error::Rejected {
                table: base.name(),
                reason: "the current snapshot cannot be expired".into(),
            });
        }
        let mut builder = base.metadata.as_ref().clone().into_builder(Some(base.metadata_location.clone()));
        for name in refs.iter().filter(|r| r.as_str() != MAIN_BRANCH) {
            builder = builder.remove_ref(name);
        }
        for id in &present {
            builder = builder.remove_statistics(*id).remove_partition_statistics(*id);
        }
        let new_metadata = builder
            .remove_snapshots(&present)
            .build()
            .map_err(Error::iceberg(format!("expire snapshots of {}", base.name())))?
            .metadata;
        self.write_metadata(base, new_metadata, Vec::new()).await
    }

    async fn write_metadata(
        &self,
        base: &LoadedTable,
        metadata: TableMetadata,
        attempt_files: Vec<String>,
    ) -> Result<Staged> {
        if self.is_rest() {
            // The server writes the metadata file when it applies our updates.
            return Ok(Staged { metadata_location: String::new(), metadata, attempt_files });
        }
        let location = next_metadata_location(&base.metadata_location, &metadata);
        let context = || format!("write metadata of {}", display_ident(&base.ident));
        let json = serde_json::to_vec(&metadata)
            .map_err(|e| Error::Metadata { table: base.name(), message: format!("serialize metadata: {e}") })?;
        let output = self.file_io().new_output(&location).map_err(Error::iceberg(context()))?;
        output.write(json.into()).await.map_err(Error::iceberg(context()))?;
        Ok(Staged { metadata_location: location, metadata, attempt_files })
    }

    /// Reads the manifest list of a snapshot.
    pub async fn manifest_list(&self, metadata: &TableMetadata, snapshot: &Snapshot) -> Result<ManifestList> {
        let path = snapshot.manifest_list();
        let bytes = self
            .file_io()
            .new_input(path)
            .map_err(Error::iceberg(format!("open {path}")))?
            .read()
            .await
            .map_err(Error::iceberg(format!("read {path}")))?;
        ManifestList::parse_with_version(&bytes, metadata.format_version())
            .map_err(Error::iceberg(format!("parse {path}")))
    }
}

/// `<metadata dir>/<version>-<uuid>.metadata.json`, as Java names them: the version after the
/// base's (1 when the base's name has none, e.g. one another tool chose), in the table's
/// metadata folder (`write.metadata.path` when set).
fn next_metadata_location(base_location: &str, new_metadata: &TableMetadata) -> String {
    let name = base_location.rsplit('/').next().unwrap_or_default();
    let version = name.split('-').next().and_then(|v| v.parse::<u64>().ok()).map_or(1, |v| v + 1);
    format!("{}/{version:05}-{}.metadata.json", crate::locations::metadata_dir(new_metadata), uuid::Uuid::new_v4())
}
