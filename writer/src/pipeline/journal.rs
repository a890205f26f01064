//! The pipeline's side of checkpoint journals ([`icefall_table::journal`]): written before a
//! commit, removed after it, and settled for crashed checkpoints.

use std::time::Instant;

use icefall_table::fault::{self, Safeguard};
use icefall_table::journal::{self, Journal, JournalRange};
use icefall_table::{Catalog, LoadedTable};

use super::JOURNAL_SETTLE_INTERVAL;
use super::commit::CommitContext;
use crate::Result;
use crate::committer::Checkpoint;

impl CommitContext {
    /// Records the checkpoint's files before committing them, so that a crash from here on
    /// leaves cleanup that needs no listing ([`icefall_table::journal`]). `None`: no data files.
    pub(super) async fn write_journal(&self, checkpoint: &Checkpoint, table_location: &str) -> Result<Option<String>> {
        if checkpoint.data_files.is_empty() || !fault::enabled(Safeguard::Journal) {
            return Ok(None);
        }
        let journal = Journal {
            writer_id: self.committer.writer_id.clone(),
            instance: self.committer.instance.clone(),
            checkpoint: checkpoint.number,
            written_at_ms: chrono::Utc::now().timestamp_millis(),
            ranges: checkpoint
                .ranges
                .iter()
                .map(|((topic, partition), r)| JournalRange {
                    topic: topic.to_string(),
                    partition: *partition,
                    start: r.start,
                    end: r.end,
                })
                .collect(),
            files: checkpoint.data_files.iter().map(|f| f.file_path().to_string()).collect(),
        };
        Ok(Some(journal.write(&self.file_io, table_location).await?))
    }

    /// Removes a settled checkpoint's journal; a failure only leaves it for the next settling.
    pub(super) async fn remove_journal(&self, path: Option<&str>) {
        if let Some(path) = path
            && let Err(e) = journal::remove(&self.file_io, path).await
        {
            tracing::debug!(pipeline = %self.pipeline, journal = path, error = %e, "could not remove a checkpoint journal");
        }
    }
}

/// Settles the table's checkpoint journals (deleting the files of crashed checkpoints); returns
/// when to look again. Failures are logged: what is not settled now is settled later, or by
/// `icefall-optimizer remove-orphans --journals`.
pub(super) async fn settle_journals(catalog: &Catalog, table: &LoadedTable, pipeline: &str) -> Option<Instant> {
    match journal::settle(catalog, table, false).await {
        Ok(settled) => {
            if settled.journals_settled > 0 {
                tracing::info!(pipeline, table = %table.name(), journals = settled.journals_settled,
                    files_deleted = settled.files_deleted.len(), files_committed = settled.files_committed,
                    "checkpoint journals of a crash settled");
            }
            (settled.journals_pending > 0).then(|| Instant::now() + JOURNAL_SETTLE_INTERVAL)
        }
        Err(e) => {
            tracing::warn!(pipeline, table = %table.name(), error = %e, "cannot settle checkpoint journals; trying again later");
            Some(Instant::now() + JOURNAL_SETTLE_INTERVAL)
        }
    }
}
