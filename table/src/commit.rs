//! Our commit path: build a snapshot from public building blocks (manifests, manifest list,
//! snapshot, metadata) and swap it in with a compare-and-swap on the catalog.
//!
//! iceberg-rust's `Transaction` silently re-runs actions on a reloaded table, so a caller's
//! check ("these offsets are still where my checkpoint started") would not be enforced at commit
//! time. Here the caller's requirement is re-checked against *every* base a commit is built on,
//! data files are written once and reused when rebasing, and every commit carries a commit id so
//! a retry after an unknown outcome can tell whether it already landed.

use std::collections::HashMap;
use std::time::Duration;

use iceberg::MetadataLocation;
use iceberg::spec::{
    DataContentType, DataFile, FormatVersion, MAIN_BRANCH, ManifestContentType, ManifestFile, ManifestList,
    ManifestListWriter, ManifestWriterBuilder, Operation, Snapshot, Summary, TableMetadata, UNASSIGNED_SEQUENCE_NUMBER,
};
use std::str::FromStr;
use std::sync::Arc;

use crate::catalog::{SwapOutcome, display_ident};
use crate::{Catalog, Error, LoadedTable, Result, offsets};

/// What a commit changes.
#[derive(Debug, Clone)]
pub enum Change {
    /// Add data files; nothing is removed (a streaming checkpoint). May add no file at all when
    /// only the summary (offsets) moves.
    Append { data_files: Vec<DataFile> },
}

/// One logical commit, possibly applied to several bases before it lands.
#[derive(Debug, Clone)]
pub struct PendingCommit {
    pub change: Change,
    /// Extra summary properties (`icefall.*`).
    pub summary: HashMap<String, String>,
    /// Unique id, written as `icefall.commit-id`.
    pub commit_id: String,
}

impl PendingCommit {
    pub fn append(data_files: Vec<DataFile>, summary: HashMap<String, String>) -> Self {
        let commit_id = uuid::Uuid::now_v7().to_string();
        let mut summary = summary;
        summary.insert(offsets::COMMIT_ID.to_string(), commit_id.clone());
        PendingCommit { change: Change::Append { data_files }, summary, commit_id }
    }
}

/// How hard to try when other commits keep landing first.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 30, min_backoff: Duration::from_millis(20), max_backoff: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    /// Exponential backoff with jitter, so racing committers spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.min_backoff.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.max_backoff);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
        capped.mul_f64(0.5 + jitter / 2.0)
    }
}

/// The result of a landed commit.
#[derive(Debug, Clone)]
pub struct CommitOutcome {
    /// The table as it is right after our commit.
    pub table: LoadedTable,
    pub snapshot_id: i64,
    pub attempts: u32,
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
        let table_name = base.name();
        let mut base = base;
        let mut added_manifests: Option<Vec<ManifestFile>> = None;
        let snapshot_id = new_snapshot_id(&base.metadata);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if let Some(id) = offsets::find_commit(&base.metadata, &pending.commit_id) {
                tracing::info!(table = %table_name, snapshot_id = id, "commit had already landed");
                return Ok(CommitOutcome { table: base, snapshot_id: id, attempts: attempt, already_committed: true });
            }
            let base_summary =
                check(&base.metadata).map_err(|reason| Error::Rejected { table: table_name.clone(), reason })?;
            if base.metadata.format_version() != FormatVersion::V2 {
                return Err(Error::Metadata {
                    table: table_name,
                    message: format!(
                        "format version {} is not supported for commits yet; use a format-version=2 table",
                        base.metadata.format_version()
                    ),
                });
            }
            if added_manifests.is_none() {
                added_manifests = Some(self.write_added_manifests(&base, snapshot_id, &pending.change).await?);
            }
            let ours = added_manifests.as_deref().unwrap_or_default();
            let staged = self.stage(&base, snapshot_id, ours, pending, base_summary, attempt).await?;
            match self.swap(&base.ident, &base.metadata_location, &staged.metadata_location).await {
                Ok(SwapOutcome::Swapped) => {
                    let table = LoadedTable {
                        ident: base.ident.clone(),
                        metadata_location: staged.metadata_location,
                        metadata: Arc::new(staged.metadata),
                    };
                    return Ok(CommitOutcome { table, snapshot_id, attempts: attempt, already_committed: false });
                }
                Ok(SwapOutcome::Conflict) => {
                    tracing::debug!(table = %table_name, attempt, "commit conflict; rebasing");
                    // Nobody references these files: they were never swapped in.
                    let _ = self.file_io().delete(&staged.metadata_location).await;
                    let _ = self.file_io().delete(&staged.manifest_list).await;
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

    /// Writes the manifests listing the change's new files, once per commit. Entries inherit
    /// their sequence number from the manifest list, so the manifests stay valid across rebases.
    async fn write_added_manifests(
        &self,
        base: &LoadedTable,
        snapshot_id: i64,
        change: &Change,
    ) -> Result<Vec<ManifestFile>> {
        let Change::Append { data_files } = change;
        if data_files.is_empty() {
            return Ok(Vec::new());
        }
        // Writers always write with the table's default spec (DataFile keeps its spec id private).
        let spec = base.metadata.default_partition_spec();
        let path = format!("{}/metadata/{}-m0.avro", base.metadata.location(), uuid::Uuid::now_v7());
        let output = self.file_io().new_output(&path).map_err(Error::iceberg(format!("create {path}")))?;
        let mut writer = ManifestWriterBuilder::new(
            output,
            Some(snapshot_id),
            base.metadata.current_schema().clone(),
            spec.as_ref().clone(),
        )
        .build_v2_data();
        for file in data_files {
            if file.content_type() != DataContentType::Data {
                return Err(Error::Metadata { table: base.name(), message: "append takes data files only".into() });
            }
            writer
                .add_file(file.clone(), UNASSIGNED_SEQUENCE_NUMBER)
                .map_err(Error::iceberg(format!("add {} to manifest", file.file_path())))?;
        }
        let manifests = vec![writer.write_manifest_file().await.map_err(Error::iceberg(format!("write {path}")))?];
        Ok(manifests)
    }

    /// Writes the manifest list and metadata file of one attempt on one base.
    async fn stage(
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
        let existing = match parent {
            Some(parent) => self.manifest_list(metadata, parent).await?.consume_entries().into_iter().collect(),
            None => Vec::new(),
        };
        let sequence_number = metadata.next_sequence_number();
        let location = metadata.location();
        let manifest_list = format!("{location}/metadata/snap-{snapshot_id}-{attempt}-{}.avro", uuid::Uuid::now_v7());
        let output =
            self.file_io().new_output(&manifest_list).map_err(Error::iceberg(format!("create {manifest_list}")))?;
        let sink = output.writer().await.map_err(Error::iceberg(format!("open {manifest_list}")))?;
        let mut writer = ManifestListWriter::v2(sink, snapshot_id, parent.map(|p| p.snapshot_id()), sequence_number);
        let all: Vec<ManifestFile> = added.iter().cloned().chain(existing).collect();
        writer.add_manifests(all.clone().into_iter()).map_err(Error::iceberg(format!("write {manifest_list}")))?;
        writer.close().await.map_err(Error::iceberg(format!("close {manifest_list}")))?;

        let summary = build_summary(pending, base_summary, &all, parent.map(|p| p.summary()));
        let snapshot = Snapshot::builder()
            .with_snapshot_id(snapshot_id)
            .with_parent_snapshot_id(parent.map(|p| p.snapshot_id()))
            .with_sequence_number(sequence_number)
            .with_timestamp_ms(chrono::Utc::now().timestamp_millis().max(metadata.last_updated_ms()))
            .with_manifest_list(manifest_list.clone())
            .with_summary(summary)
            .with_schema_id(metadata.current_schema_id())
            .build();
        let new_metadata = metadata
            .as_ref()
            .clone()
            .into_builder(Some(base.metadata_location.clone()))
            .set_branch_snapshot(snapshot, MAIN_BRANCH)
            .and_then(|b| b.build())
            .map_err(Error::iceberg(format!("build new metadata of {}", display_ident(&base.ident))))?
            .metadata;
        let location = next_metadata_location(&base.metadata_location, &new_metadata);
        new_metadata
            .write_to(self.file_io(), &location)
            .await
            .map_err(Error::iceberg(format!("write metadata of {}", display_ident(&base.ident))))?;
        Ok(Staged { metadata_location: location.to_string(), manifest_list, metadata: new_metadata })
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

struct Staged {
    metadata_location: String,
    manifest_list: String,
    metadata: TableMetadata,
}

/// The next `NNNNN-<uuid>.metadata.json` after the base's, in the same folder.
fn next_metadata_location(base_location: &str, new_metadata: &TableMetadata) -> MetadataLocation {
    match MetadataLocation::from_str(base_location) {
        Ok(base) => base.with_next_version().with_new_metadata(new_metadata),
        // A name another tool chose: start our own numbering in the table's metadata folder.
        Err(_) => MetadataLocation::new_with_metadata(new_metadata.location(), new_metadata).with_next_version(),
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

/// The standard summary fields engines show, plus the caller's properties.
fn build_summary(
    pending: &PendingCommit,
    base_summary: HashMap<String, String>,
    all: &[ManifestFile],
    parent: Option<&Summary>,
) -> Summary {
    let Change::Append { data_files } = &pending.change;
    let mut props = pending.summary.clone();
    props.extend(base_summary);
    let added_records: u64 = data_files.iter().map(|f| f.record_count()).sum();
    let added_size: u64 = data_files.iter().map(|f| f.file_size_in_bytes()).sum();
    props.insert("added-data-files".into(), data_files.len().to_string());
    props.insert("added-records".into(), added_records.to_string());
    props.insert("added-files-size".into(), added_size.to_string());
    let data: Vec<&ManifestFile> = all.iter().filter(|m| m.content == ManifestContentType::Data).collect();
    let count = |f: fn(&ManifestFile) -> u64| -> u64 { data.iter().map(|m| f(m)).sum() };
    props.insert(
        "total-data-files".into(),
        count(|m| u64::from(m.added_files_count.unwrap_or(0)) + u64::from(m.existing_files_count.unwrap_or(0)))
            .to_string(),
    );
    props.insert(
        "total-records".into(),
        count(|m| m.added_rows_count.unwrap_or(0) + m.existing_rows_count.unwrap_or(0)).to_string(),
    );
    let parent_prop =
        |key: &str| parent.and_then(|s| s.additional_properties.get(key)).and_then(|v| v.parse::<u64>().ok());
    if let Some(size) = parent_prop("total-files-size").or(parent.is_none().then_some(0)) {
        props.insert("total-files-size".into(), (size + added_size).to_string());
    }
    for key in ["total-delete-files", "total-position-deletes", "total-equality-deletes"] {
        props.insert(key.into(), parent_prop(key).unwrap_or(0).to_string());
    }
    Summary { operation: Operation::Append, additional_properties: props }
}
