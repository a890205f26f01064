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
mod stage;
mod summary;

use std::collections::{BTreeSet, HashMap};

use iceberg::spec::{DataFile, FormatVersion, ManifestFile, Schema, StatisticsFile, TableMetadata};

use self::stage::Staged;
use crate::catalog::Published;
use crate::retry::RetryPolicy;
use crate::{Catalog, Error, LoadedTable, Result, offsets, state};

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
    /// Replace position delete files by `added` ones holding the same deletes (compacted,
    /// dangling rows dropped), partitioned by spec `spec_id`: the table's rows do not change.
    /// Rejected if a removed delete file is no longer live (a concurrent rewrite or compaction
    /// took it out).
    RewriteDeletes {
        /// The delete files rewritten or dropped.
        removed: BTreeSet<String>,
        /// The delete files written in their place.
        added: Vec<DataFile>,
        /// The partition spec `added` were written with.
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
    /// Register `statistics` (a Puffin file of column statistics) for its snapshot, in place of
    /// any the snapshot had (no new snapshot). Rejected if that snapshot is gone (expired
    /// meanwhile).
    SetStatistics {
        /// The statistics file and what its blobs hold.
        statistics: Box<StatisticsFile>,
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
        !matches!(self, Change::Expire { .. } | Change::EvolveSchema { .. } | Change::SetStatistics { .. })
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
            if let Some(id) = state::find_commit(&base.metadata, &pending.commit_id) {
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
                for (key, value) in state::carried_state(&base.metadata) {
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
