//! Every file a table's metadata references, walked from metadata (never by listing): what
//! snapshot expiry may delete and what orphan removal must keep.

use std::collections::BTreeSet;

use iceberg::io::FileIO;

use iceberg::spec::TableMetadata;

use crate::storage::normalize_path;
use crate::{Catalog, LoadedTable, Result, TableIdent};

/// Files referenced by a table, by kind.
#[derive(Debug, Default, Clone)]
pub struct Reachable {
    /// Metadata files (current and logged).
    pub metadata_files: BTreeSet<String>,
    /// Manifest lists of every snapshot.
    pub manifest_lists: BTreeSet<String>,
    /// Manifests of every snapshot.
    pub manifests: BTreeSet<String>,
    /// Data and delete files.
    pub content_files: BTreeSet<String>,
}

impl Reachable {
    /// Every reachable file.
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.metadata_files.iter().chain(&self.manifest_lists).chain(&self.manifests).chain(&self.content_files)
    }

    /// True when `path` is reachable.
    pub fn contains(&self, path: &str) -> bool {
        self.metadata_files.contains(path)
            || self.manifest_lists.contains(path)
            || self.manifests.contains(path)
            || self.content_files.contains(path)
    }

    /// How many files are reachable.
    pub fn len(&self) -> usize {
        self.metadata_files.len() + self.manifest_lists.len() + self.manifests.len() + self.content_files.len()
    }

    /// True when nothing is reachable.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Catalog {
    /// Files reachable from every snapshot in `metadata` (all refs, all kept snapshots), plus
    /// the metadata files it lists.
    pub async fn reachable(&self, metadata: &TableMetadata) -> Result<Reachable> {
        let mut out = Reachable::default();
        for log in metadata.metadata_log() {
            out.metadata_files.insert(log.metadata_file.clone());
        }
        for stats in metadata.statistics_iter() {
            out.metadata_files.insert(stats.statistics_path.clone());
        }
        for stats in metadata.partition_statistics_iter() {
            out.metadata_files.insert(stats.statistics_path.clone());
        }
        for snapshot in metadata.snapshots() {
            if !out.manifest_lists.insert(snapshot.manifest_list().to_string()) {
                continue;
            }
            let list = self.manifest_list(metadata, snapshot).await?;
            for manifest_file in list.entries() {
                if !out.manifests.insert(manifest_file.manifest_path.clone()) {
                    continue; // manifests are shared by many snapshots: read each once
                }
                let manifest = manifest_file
                    .load_manifest(self.file_io())
                    .await
                    .map_err(crate::Error::iceberg(format!("read manifest {}", manifest_file.manifest_path)))?;
                // A file marked deleted here is listed live by any older kept snapshot that
                // still needs it; otherwise nothing needs it any more.
                for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                    out.content_files.insert(entry.file_path().to_string());
                }
            }
        }
        Ok(out)
    }

    /// [`Catalog::reachable`] of a loaded table, including its current metadata file.
    pub async fn reachable_from(&self, table: &LoadedTable) -> Result<Reachable> {
        let mut out = self.reachable(&table.metadata).await?;
        out.metadata_files.insert(table.metadata_location.clone());
        Ok(out)
    }

    /// Data and delete files any snapshot of `table` references (under any ref), normalised
    /// ([`normalize_path`]) so one file spelled two ways is one entry.
    pub async fn referenced_content_files(&self, table: &LoadedTable) -> Result<BTreeSet<String>> {
        Ok(self.reachable_from(table).await?.content_files.iter().map(|p| normalize_path(p)).collect())
    }

    /// Deletes those of `files` (data, delete or statistics files of a commit that was given
    /// up) that the table's metadata does not reference, under any ref: an attempt whose
    /// outcome was unknown may have landed after all. Returns the files deleted; one that cannot be deleted is left for
    /// orphan removal. Fails, deleting nothing, when the table cannot be read.
    pub async fn delete_unreferenced(&self, ident: &TableIdent, files: &[String]) -> Result<Vec<String>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let table = self.load(ident).await?;
        let referenced: BTreeSet<String> =
            self.reachable_from(&table).await?.all().map(|p| normalize_path(p)).collect();
        let unreferenced: Vec<String> =
            files.iter().filter(|f| !referenced.contains(&normalize_path(f))).cloned().collect();
        Ok(delete_uncommitted(self.file_io(), unreferenced).await)
    }
}

/// Deletes files that no commit references, known not to have landed (written for a
/// checkpoint or rewrite that was dropped before or rejected at its commit). Returns the files
/// deleted; one that cannot be deleted is logged and left for orphan removal. When a commit's
/// outcome is unknown use [`Catalog::delete_unreferenced`] instead.
pub async fn delete_uncommitted<S: Into<String>>(file_io: &FileIO, files: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut deleted = Vec::new();
    for file in files.into_iter().map(Into::into) {
        match file_io.delete(&file).await {
            Ok(()) => deleted.push(file),
            Err(e) => tracing::debug!(file, error = %e, "could not delete an uncommitted file; orphan removal will"),
        }
    }
    deleted
}
