//! Our commit path: build a snapshot from public building blocks (manifests, manifest list,
//! snapshot, metadata) and swap it in with a compare-and-swap on the catalog.
//!
//! iceberg-rust's `Transaction` silently re-runs actions on a reloaded table, so a caller's
//! check ("these offsets are still where my checkpoint started") would not be enforced at commit
//! time. Here the caller's check runs against *every* base a commit is built on, new data files
//! and their manifests are written once and reused when rebasing, and every snapshot carries a
//! commit id so a retry after an unknown outcome can tell whether it already landed.

mod cleanup;
mod manifests;
mod summary;

use std::collections::{BTreeSet, HashMap};

use iceberg::spec::{
    DataFile, FormatVersion, MAIN_BRANCH, ManifestFile, ManifestList, ManifestListWriter, Schema, Snapshot,
    SnapshotReference, SnapshotRetention, TableMetadata,
};

use crate::catalog::{Published, display_ident};
use crate::retry::RetryPolicy;
use crate::{Catalog, Error, LoadedTable, Result, offsets};

/// What a commit changes.
#[derive(Debug, Clone)]
pub enum Change {
    /// Add data files; nothing is removed (a streaming checkpoint). May add no file at all when
    /// only the summary (offsets) moves. `spec_id`: the partition spec the files were written
    /// with ([`crate::files::TableFiles::spec_id`]), which need not be the table's default by
    /// the time the commit lands (another engine may change it meanwhile).
    Append {
        /// The files to add.
        data_files: Vec<DataFile>,
        /// The partition spec they were written with.
        spec_id: i32,
    },
    /// Replace files without changing the table's rows (compaction): `removed` data files (and
    /// delete files that only applied to them) give way to `added`. Rejected if a removed data
    /// file is no longer live, or if a delete file newer than `planned_sequence_number` (the
    /// sequence number of the snapshot the rewrite read) exists: its deletes were not applied.
    Replace {
        /// Data files the rewrite read.
        removed_data_files: BTreeSet<String>,
        /// Delete files that only applied to them.
        removed_delete_files: BTreeSet<String>,
        /// The files written in their place.
        added: Vec<DataFile>,
        /// The partition spec `added` were written with.
        spec_id: i32,
        /// The sequence number of the snapshot the rewrite read.
        planned_sequence_number: i64,
    },
    /// Add delete files (row-level deletes, as engines' merge-on-read `DELETE` makes them),
    /// partitioned by spec `spec_id`.
    AddDeletes {
        /// Position or equality delete files.
        delete_files: Vec<DataFile>,
        /// The partition spec they were written with.
        spec_id: i32,
    },
    /// Remove snapshots, with their statistics files' entries, and `refs` (branches and tags)
    /// from metadata (no files are deleted here: the caller deletes what is no longer reachable
    /// after the commit lands). Idempotent.
    Expire {
        /// Snapshots to remove.
        snapshot_ids: BTreeSet<i64>,
        /// Branches and tags to remove.
        refs: BTreeSet<String>,
    },
    /// Merge the `replaced` data manifests of the current snapshot into new manifests of at
    /// most `entries_per_manifest` live entries each, clustered by partition. Same live files;
    /// rejected if main moved since `based_on_snapshot` (the caller plans again).
    RewriteManifests {
        /// The snapshot the plan was made on.
        based_on_snapshot: i64,
        /// Manifests to merge.
        replaced: BTreeSet<String>,
        /// Live entries per new manifest at most.
        entries_per_manifest: usize,
    },
    /// Make `schema` the current schema and set `properties` (no snapshot). Rejected if the
    /// current schema is no longer `based_on_schema_id`: the caller recomputes from the table.
    EvolveSchema {
        /// The new current schema.
        schema: Box<Schema>,
        /// The schema id the change was planned from.
        based_on_schema_id: i32,
        /// Table properties to set with it.
        properties: HashMap<String, String>,
    },
}

impl Change {
    /// Makes a new snapshot (everything but `Expire`).
    fn makes_snapshot(&self) -> bool {
        !matches!(self, Change::Expire { .. } | Change::EvolveSchema { .. })
    }
}

/// One logical commit, possibly applied to several bases before it lands.
#[derive(Debug, Clone)]
pub struct PendingCommit {
    /// What the commit changes.
    pub change: Change,
    /// Extra summary properties (`icefall.*`).
    pub summary: HashMap<String, String>,
    /// Unique id, written as `icefall.commit-id`.
    pub commit_id: String,
    /// A tag to move to the new snapshot (e.g. the writer's state tag, which keeps the
    /// snapshot holding the offsets safe from any engine's snapshot expiry).
    pub tag: Option<String>,
}

impl PendingCommit {
    /// A commit of `change` with these summary properties and a fresh commit id.
    pub fn new(change: Change, summary: HashMap<String, String>) -> Self {
        let commit_id = uuid::Uuid::now_v7().to_string();
        let mut summary = summary;
        summary.insert(offsets::COMMIT_ID.to_string(), commit_id.clone());
        PendingCommit { change, summary, commit_id, tag: None }
    }

    /// Moves `tag` to the snapshot this commit makes.
    pub fn with_tag(mut self, tag: &str) -> Self {
        self.tag = Some(tag.to_string());
        self
    }

    /// Appends `data_files`, written with partition spec `spec_id`.
    pub fn append(data_files: Vec<DataFile>, spec_id: i32, summary: HashMap<String, String>) -> Self {
        Self::new(Change::Append { data_files, spec_id }, summary)
    }
}

/// The result of a landed commit.
#[derive(Debug, Clone)]
pub struct CommitOutcome {
    /// The table as it is right after our commit.
    pub table: LoadedTable,
    /// The new snapshot (for `Expire`: the current snapshot, unchanged).
    pub snapshot_id: i64,
    /// How many attempts the commit took.
    pub attempts: u32,
    /// Attempts that found the table moved by someone else and rebased.
    pub conflicts: u32,
    /// The commit had already landed in an earlier try whose outcome was unknown.
    pub already_committed: bool,
}

/// Files written for one attempt, deleted again if the attempt loses the race.
struct Staged {
    metadata_location: String,
    metadata: TableMetadata,
    attempt_files: Vec<String>,
}

impl Catalog {
    /// Commits `pending` on top of `base`. `check` runs against every base the commit is
    /// applied to: it returns the summary properties that depend on the base (e.g. the merged
    /// offset map) or the reason the commit must not happen, which ends it with `Rejected`.
    /// On a conflict it reloads and rebases without rewriting data files.
    pub async fn commit<F>(
        &self,
        base: LoadedTable,
        pending: &PendingCommit,
        check: F,
        policy: &RetryPolicy,
    ) -> Result<CommitOutcome>
    where
        F: Fn(&TableMetadata) -> std::result::Result<HashMap<String, String>, String>,
    {
        let mut added_manifests: Option<Vec<ManifestFile>> = None;
        let result = self.commit_attempts(base, pending, check, policy, &mut added_manifests).await;
        // A commit known not to have landed leaves its manifests to nobody. (After an unknown
        // outcome they stay: the commit may yet be the table's; orphan removal decides later.)
        if matches!(result, Err(Error::Rejected { .. } | Error::ConflictRetriesExhausted { .. })) {
            for manifest in added_manifests.iter().flatten() {
                let _ = self.file_io().delete(&manifest.manifest_path).await;
            }
        }
        result
    }

    async fn commit_attempts<F>(
        &self,
        base: LoadedTable,
        pending: &PendingCommit,
        check: F,
        policy: &RetryPolicy,
        added_manifests: &mut Option<Vec<ManifestFile>>,
    ) -> Result<CommitOutcome>
    where
        F: Fn(&TableMetadata) -> std::result::Result<HashMap<String, String>, String>,
    {
        let table_name = base.name();
        // The table's own `commit.retry.*` settings win over the caller's defaults.
        let policy = &policy.with_table_properties(&base.metadata)?;
        let mut base = base;
        let snapshot_id = new_snapshot_id(&base.metadata);
        let mut attempt = 0u32;
        let mut conflicts = 0u32;
        loop {
            attempt += 1;
            if let Some(id) = offsets::find_commit(&base.metadata, &pending.commit_id) {
                tracing::info!(table = %table_name, snapshot_id = id, "commit had already landed");
                return Ok(CommitOutcome {
                    table: base,
                    snapshot_id: id,
                    attempts: attempt,
                    conflicts,
                    already_committed: true,
                });
            }
            let mut base_summary =
                check(&base.metadata).map_err(|reason| Error::Rejected { table: table_name.clone(), reason })?;
            if pending.change.makes_snapshot() {
                // Every snapshot we make carries the writer's state (offsets, watermarks)
                // forward, so the newest snapshot always holds it whichever command commits;
                // unreadable offsets stop the commit rather than travel on.
                offsets::committed_offsets(&base.metadata)
                    .map_err(|e| Error::Rejected { table: table_name.clone(), reason: e.to_string() })?;
                for (key, value) in offsets::carried_state(&base.metadata) {
                    base_summary.entry(key).or_insert(value);
                }
            }
            if base.metadata.format_version() != FormatVersion::V2 {
                return Err(Error::Metadata {
                    table: table_name,
                    message: format!(
                        "format version {} is not supported for commits yet; use a format-version=2 table",
                        base.metadata.format_version()
                    ),
                });
            }
            let staged = if pending.change.makes_snapshot() {
                if added_manifests.is_none() {
                    *added_manifests = Some(self.write_added_manifests(&base, snapshot_id, &pending.change).await?);
                }
                let ours = added_manifests.as_deref().unwrap_or_default();
                self.stage_snapshot(&base, snapshot_id, ours, pending, base_summary, attempt).await?
            } else {
                self.stage_metadata_change(&base, &pending.change).await?
            };
            let Staged { metadata_location, metadata, attempt_files } = staged;
            if conflicts > 0 {
                crate::fault::crash_point(crate::fault::CrashPoint::DuringRebase);
            }
            match self.publish(&base, &metadata_location, metadata).await {
                Ok(Published::Committed(_)) if crate::fault::lose_commit_reply() => {
                    return Err(Error::Rest {
                        context: format!("commit to {table_name}"),
                        status: None,
                        message: "TEST BUILD: the reply to a landed commit was lost".into(),
                    });
                }
                Ok(Published::Committed(table)) => {
                    self.delete_dropped_metadata(&base, &table).await;
                    let landed_id = if pending.change.makes_snapshot() {
                        snapshot_id
                    } else {
                        table.metadata.current_snapshot_id().unwrap_or(snapshot_id)
                    };
                    return Ok(CommitOutcome {
                        table,
                        snapshot_id: landed_id,
                        attempts: attempt,
                        conflicts,
                        already_committed: false,
                    });
                }
                Ok(Published::Conflict) => {
                    tracing::debug!(table = %table_name, attempt, "commit conflict; rebasing");
                    conflicts += 1;
                    // Nobody references these files: they were never swapped in.
                    if !metadata_location.is_empty() {
                        let _ = self.file_io().delete(&metadata_location).await;
                    }
                    for file in &attempt_files {
                        let _ = self.file_io().delete(file).await;
                    }
                }
                Err(e) => {
                    // Unknown outcome: the statement may have been applied. Keep the staged files
                    // and look for our commit id in the reloaded table before anything else.
                    tracing::warn!(table = %table_name, error = %e, "commit outcome unknown; reloading to check");
                    if attempt >= policy.max_attempts {
                        return Err(e);
                    }
                }
            }
            if attempt >= policy.max_attempts {
                return Err(Error::ConflictRetriesExhausted { table: table_name, attempts: attempt });
            }
            tokio::time::sleep(policy.backoff(attempt)).await;
            base = self.load(&base.ident).await?;
        }
    }

    /// Writes the manifest list and metadata file of one attempt that makes a snapshot.
    async fn stage_snapshot(
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

    /// Metadata-only changes (expiry, schema evolution).
    async fn stage_metadata_change(&self, base: &LoadedTable, change: &Change) -> Result<Staged> {
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

/// The next `NNNNN-<uuid>.metadata.json` after the base's, in the same folder.
/// `<metadata dir>/<version>-<uuid>.metadata.json`, as Java names them: the version after the
/// base's (1 when the base's name has none, e.g. one another tool chose), in the table's
/// metadata folder (`write.metadata.path` when set).
fn next_metadata_location(base_location: &str, new_metadata: &TableMetadata) -> String {
    let name = base_location.rsplit('/').next().unwrap_or_default();
    let version = name.split('-').next().and_then(|v| v.parse::<u64>().ok()).map_or(1, |v| v + 1);
    format!("{}/{version:05}-{}.metadata.json", crate::locations::metadata_dir(new_metadata), uuid::Uuid::new_v4())
}

/// A random positive snapshot id not used by the table.
fn new_snapshot_id(metadata: &TableMetadata) -> i64 {
    loop {
        let id = (uuid::Uuid::new_v4().as_u128() >> 65) as i64;
        if id > 0 && metadata.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}
