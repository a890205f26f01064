//! Checkpoint journals: precise cleanup after a crash, without listing the table.
//!
//! Before a writer commits a checkpoint it writes a small JSON object under
//! `<table location>/icefall-journal/` naming the checkpoint's data files and the offset ranges
//! they cover; after the commit (or after dropping the checkpoint) it removes it. A journal left
//! behind by a crash names exactly the files that may be uncommitted.
//!
//! Settling rule, safe for any process at any time (a live writer's journal included): a
//! checkpoint can commit only while the table's offset of each of its partitions still equals
//! the range start (the committer's fencing rule), and offsets only move forward. So once the
//! table's offset of any of its partitions differs from the start, the checkpoint has either
//! landed or never will: its files that no snapshot references are deleted, then the journal.
//! A journal whose partitions have not moved is left alone; its checkpoint may still land.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use iceberg::io::FileIO;
use serde::{Deserialize, Serialize};

use crate::fault::{self, CrashPoint, Safeguard};
use crate::offsets::{OffsetMap, committed_offsets, offset_of};
use crate::storage::{location_operator, normalize_path};
use crate::{Catalog, Error, LoadedTable, Result};

/// Directory of the journals, under the table location.
pub const DIR: &str = crate::contract::JOURNAL_DIR;

/// One checkpoint in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The configured writer id.
    pub writer_id: String,
    /// The writer process instance.
    pub instance: String,
    /// The checkpoint number within that instance.
    pub checkpoint: u64,
    /// When the journal was written, epoch milliseconds.
    pub written_at_ms: i64,
    /// The offsets the checkpoint covers.
    pub ranges: Vec<JournalRange>,
    /// Data files of the checkpoint, as the commit will reference them.
    pub files: Vec<String>,
}

/// `[start, end)` of one partition; `start` is `None` when the table had no offset for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRange {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The table's offset when the checkpoint started (`None`: none).
    pub start: Option<i64>,
    /// The next offset after the checkpoint.
    pub end: i64,
}

/// What settling the journals of a table found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Settled {
    /// Journals whose checkpoint landed or never will; removed (unless a dry run).
    pub journals_settled: usize,
    /// Journals whose checkpoint may still land; left alone.
    pub journals_pending: usize,
    /// Files of those journals: never orphans, whatever their age.
    pub files_pending: Vec<String>,
    /// Files of settled journals that no snapshot references: deleted (or, in a dry run, listed).
    pub files_deleted: Vec<String>,
    /// Files of settled journals kept because a snapshot references them (their commit landed).
    pub files_committed: usize,
    /// Journals that could not be read or parsed (a write torn by a crash on storage without
    /// atomic writes, or something else's file): left alone, since which files they meant is
    /// unknown. Their data files are orphans by age; `remove-orphans` deletes such a journal
    /// itself once it is older than its threshold.
    pub journals_unreadable: Vec<String>,
}

impl Journal {
    /// Where this journal lives for a table at `location`.
    pub fn path(&self, location: &str) -> String {
        format!("{}/{DIR}/{}-{:06}.json", location.trim_end_matches('/'), self.instance, self.checkpoint)
    }

    /// True when the checkpoint can no longer commit: the table moved one of its partitions.
    pub fn is_settled(&self, offsets: &OffsetMap) -> bool {
        self.ranges.iter().any(|r| offset_of(offsets, &r.topic, r.partition) != r.start)
    }

    /// Writes the journal (before the commit); returns its path.
    pub async fn write(&self, file_io: &FileIO, location: &str) -> Result<String> {
        let path = self.path(location);
        let json = serde_json::to_vec(self).map_err(|e| Error::Metadata {
            table: location.to_string(),
            message: format!("cannot serialise the checkpoint journal: {e}"),
        })?;
        let output = file_io.new_output(&path).map_err(Error::iceberg(format!("open journal {path}")))?;
        if crate::fault::crash_due(CrashPoint::DuringJournalWrite) {
            let torn = json[..json.len() / 2].to_vec();
            output.write(torn.into()).await.map_err(Error::iceberg(format!("write journal {path}")))?;
            crate::fault::crash(CrashPoint::DuringJournalWrite);
        }
        output.write(json.into()).await.map_err(Error::iceberg(format!("write journal {path}")))?;
        Ok(path)
    }

    async fn read(file_io: &FileIO, path: &str) -> Result<Journal> {
        let input = file_io.new_input(path).map_err(Error::iceberg(format!("open journal {path}")))?;
        let bytes = input.read().await.map_err(Error::iceberg(format!("read journal {path}")))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Metadata {
            table: path.to_string(),
            message: format!("unreadable checkpoint journal: {e}"),
        })
    }
}

/// Removes a journal after its checkpoint committed or was dropped.
pub async fn remove(file_io: &FileIO, path: &str) -> Result<()> {
    file_io.delete(path).await.map_err(Error::iceberg(format!("delete journal {path}")))
}

/// Applies the settling rule to every journal of `table`. Lists only the journal directory.
///
/// The journals are listed first and the table is loaded *after*, and that one view decides
/// both whether a checkpoint landed and which files are referenced: a peer's journal written
/// after an older view was loaded starts from offsets that view has not seen, and judged by it
/// would look settled, deleting files the peer is about to commit.
pub async fn settle(catalog: &Catalog, table: &LoadedTable, dry_run: bool) -> Result<Settled> {
    let location = table.metadata.location();
    let (op, _) = location_operator(location, &catalog.storage_properties(location))?;
    // Only a test build that turned the safeguard off loads the table first (the old race).
    let loaded_first =
        if fault::enabled(Safeguard::SettleOrder) { None } else { Some(catalog.load(&table.ident).await?) };
    if loaded_first.is_some() {
        test_pause().await;
    }
    let mut paths = Vec::new();
    match op.lister_with(&format!("{DIR}/")).await {
        Ok(mut lister) => {
            while let Some(entry) = lister.try_next().await.map_err(Error::storage("list checkpoint journals"))? {
                if entry.path().ends_with(".json") {
                    // Spelled like the location, so FileIO resolves the same storage.
                    paths.push(format!("{}/{}", location.trim_end_matches('/'), entry.path().trim_start_matches('/')));
                }
            }
        }
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::storage("list checkpoint journals")(e)),
    }
    let mut out = Settled::default();
    if paths.is_empty() {
        return Ok(out);
    }
    if loaded_first.is_none() {
        test_pause().await;
    }
    let table = &match loaded_first {
        Some(table) => table,
        None => catalog.load(&table.ident).await?,
    };
    let offsets = committed_offsets(&table.metadata)?;
    let mut referenced: Option<BTreeSet<String>> = None;
    for path in paths {
        let journal = match Journal::read(catalog.file_io(), &path).await {
            Ok(j) => j,
            Err(_) if !catalog.file_io().exists(&path).await.unwrap_or(true) => {
                continue; // removed by its writer since the listing: its checkpoint is done
            }
            Err(e) => {
                // Written by something else, or cut short: never guess which files it meant.
                tracing::warn!(journal = %path, error = %e, "skipping an unreadable checkpoint journal");
                out.journals_unreadable.push(path);
                continue;
            }
        };
        if !journal.is_settled(&offsets) {
            out.journals_pending += 1;
            out.files_pending.extend(journal.files);
            continue;
        }
        // Walked once, and only when some journal needs it.
        let referenced = match referenced.take() {
            Some(set) => referenced.insert(set),
            None => referenced.insert(catalog.referenced_content_files(table).await?),
        };
        for file in &journal.files {
            if referenced.contains(&normalize_path(file)) {
                out.files_committed += 1;
                continue;
            }
            if !dry_run && let Err(e) = catalog.file_io().delete(file).await {
                tracing::warn!(journal = %path, file, error = %e, "could not delete an uncommitted file; remove-orphans will");
                continue;
            }
            out.files_deleted.push(file.clone());
        }
        if !dry_run {
            remove(catalog.file_io(), &path).await?;
        }
        out.journals_settled += 1;
    }
    Ok(out)
}

/// A test build's widening of the window between settling's two steps (listing the journals,
/// loading the table), whichever their order: see [`fault::settle_pause`].
async fn test_pause() {
    if let Some(pause) = fault::settle_pause() {
        tracing::info!(?pause, "TEST BUILD: journal settling paused between its two steps");
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(ranges: &[(&str, i32, Option<i64>, i64)]) -> Journal {
        Journal {
            writer_id: "w".into(),
            instance: "i".into(),
            checkpoint: 7,
            written_at_ms: 0,
            ranges: ranges
                .iter()
                .map(|(t, p, s, e)| JournalRange { topic: t.to_string(), partition: *p, start: *s, end: *e })
                .collect(),
            files: vec!["file:///w/t/data/a.parquet".into()],
        }
    }

    #[test]
    fn a_journal_settles_once_any_of_its_partitions_moved() {
        let mut offsets = OffsetMap::new();
        offsets.entry("t".into()).or_default().insert(0, 100);
        let pending = journal(&[("t", 0, Some(100), 150), ("t", 1, None, 5)]);
        assert!(!pending.is_settled(&offsets), "the table is where the checkpoint started");
        offsets.entry("t".into()).or_default().insert(1, 5);
        assert!(pending.is_settled(&offsets), "partition 1 was committed (by it or by another writer)");
        let committed = journal(&[("t", 0, Some(50), 100)]);
        assert!(committed.is_settled(&offsets));
    }

    #[test]
    fn journal_paths_are_per_instance_and_checkpoint() {
        let j = journal(&[]);
        assert_eq!(j.path("file:///w/t/"), "file:///w/t/icefall-journal/i-000007.json");
        let text = serde_json::to_string(&j).expect("serialise");
        assert_eq!(serde_json::from_str::<Journal>(&text).expect("parse"), j);
    }
}
