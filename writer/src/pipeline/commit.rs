//! A checkpoint's commit, run beside the pipeline: its journal, the table commit (retried while
//! the catalog or storage is away) and the journal's removal. Meanwhile the pipeline goes on
//! handing records to the writers, whose files belong to the next checkpoint.
//!
//! At most one commit is in flight: the next checkpoint closes its files only after this one
//! has landed, so the table's offsets are where that checkpoint starts and fencing is unchanged.
//! A commit that is dropped (fenced) drops the checkpoint written behind it too
//! ([`super::Pipeline::abort`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use iceberg::spec::DataFile;
use icefall_table::CommitOutcome;
use icefall_table::fault::{self, CrashPoint};
use icefall_table::reachable::delete_uncommitted;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::SHUTDOWN_COMMIT_GRACE;
use crate::committer::{Checkpoint, Committer};
use crate::metrics::PipelineMetrics;
use crate::{Error, Result};

/// What a pipeline's commits need (shared by all of them).
pub(super) struct CommitContext {
    pub committer: Committer,
    pub pipeline: String,
    pub file_io: iceberg::io::FileIO,
    pub metrics: PipelineMetrics,
    pub shutdown: watch::Receiver<bool>,
}

/// A checkpoint in the table, with its offsets.
pub(super) struct Committed {
    pub checkpoint: Checkpoint,
    pub outcome: CommitOutcome,
    /// When the checkpoint began closing its files.
    pub started: Instant,
    /// The table commit alone, retries included.
    pub commit_duration: Duration,
}

/// How a checkpoint's commit ended.
pub(super) enum Landing {
    Committed(Box<Committed>),
    /// Not committed, and its files are gone: everything since is dropped and re-read.
    Dropped(&'static str),
}

/// The commit in flight.
pub(super) struct InFlight(JoinHandle<Result<Landing>>);

impl InFlight {
    /// Waits until the commit has landed or was dropped.
    pub(super) async fn land(&mut self) -> Result<Landing> {
        (&mut self.0).await.map_err(|e| Error::Internal(format!("a checkpoint's commit task failed: {e}")))?
    }

    /// Stops the commit where it is (its journal settles whatever it left).
    pub(super) fn cancel(self) {
        self.0.abort();
    }
}

impl CommitContext {
    /// Starts committing `checkpoint`, whose journal goes under `table_location`.
    pub(super) fn start(
        self: &Arc<Self>,
        checkpoint: Checkpoint,
        table_location: String,
        started: Instant,
    ) -> InFlight {
        let context = self.clone();
        InFlight(tokio::spawn(async move { context.land(checkpoint, &table_location, started).await }))
    }

    async fn land(&self, checkpoint: Checkpoint, table_location: &str, started: Instant) -> Result<Landing> {
        let journal_path = match self.write_journal(&checkpoint, table_location).await {
            Ok(path) => path,
            Err(e) => {
                tracing::warn!(pipeline = %self.pipeline, error = %e, "writing the checkpoint journal failed");
                delete_uncommitted(&self.file_io, checkpoint.data_files.iter().map(DataFile::file_path)).await;
                return Ok(Landing::Dropped("writing the checkpoint journal failed"));
            }
        };
        if let Some(pause) = fault::commit_pause() {
            tokio::time::sleep(pause).await;
        }
        let commit_started = Instant::now();
        let Some(outcome) = self.commit_with_retries(&checkpoint).await? else {
            // Fenced: only files no snapshot references go (an attempt of unknown outcome may
            // have landed). If the table cannot be read now, the journal stays and settles them.
            let paths: Vec<String> = checkpoint.data_files.iter().map(|f| f.file_path().to_string()).collect();
            let committer = &self.committer;
            match committer.catalog.delete_unreferenced(&committer.table, &paths).await {
                Ok(_) => self.remove_journal(journal_path.as_deref()).await,
                Err(e) => tracing::warn!(pipeline = %self.pipeline, error = %e,
                    "could not check the fenced checkpoint's files; its journal stays for settling"),
            }
            return Ok(Landing::Dropped("another writer committed these offsets"));
        };
        fault::crash_point(CrashPoint::AfterCommitBeforeJournalRemoved);
        self.remove_journal(journal_path.as_deref()).await;
        Ok(Landing::Committed(Box::new(Committed {
            checkpoint,
            outcome,
            started,
            commit_duration: commit_started.elapsed(),
        })))
    }

    /// Commits, retrying while the catalog or storage is unreachable. `Ok(None)`: fenced.
    async fn commit_with_retries(&self, checkpoint: &Checkpoint) -> Result<Option<CommitOutcome>> {
        let pending = self.committer.prepare(checkpoint);
        let mut backoff = icefall_table::Backoff::unavailable();
        let mut shutdown_at: Option<Instant> = None;
        loop {
            match self.committer.commit(checkpoint, &pending).await {
                Ok(outcome) => {
                    tracing::debug!(
                        snapshot_id = outcome.snapshot_id,
                        attempts = outcome.attempts,
                        "table commit landed"
                    );
                    return Ok(Some(outcome));
                }
                Err(Error::Table(icefall_table::Error::Rejected { reason, .. })) => {
                    tracing::warn!(pipeline = %self.pipeline, reason, "commit fenced");
                    self.metrics.commit_fenced();
                    return Ok(None);
                }
                Err(e) if e.is_retryable() => {
                    if *self.shutdown.borrow() {
                        let since = *shutdown_at.get_or_insert_with(Instant::now);
                        if since.elapsed() > SHUTDOWN_COMMIT_GRACE {
                            return Err(Error::Internal(format!(
                                "final checkpoint of pipeline {} not committed ({e}); nothing is lost: \
                                 its records are read again on the next start",
                                self.pipeline
                            )));
                        }
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(pipeline = %self.pipeline, error = %e, retry_in = ?delay, "commit failed; retrying");
                    self.metrics.commit_retried();
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
