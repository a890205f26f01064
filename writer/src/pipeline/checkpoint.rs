//! Checkpoints: close the writers' files, journal them, commit them with the offsets they
//! cover (retrying while the catalog is away), or drop them and re-read from the table.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use iceberg::spec::DataFile;
use icefall_table::health::{SinceCompaction, since_compaction};
use icefall_table::reachable::delete_uncommitted;
use icefall_table::{Backoff, CommitOutcome};

use super::journal::settle_journals;
use super::setup::late_bound;
use super::{Pipeline, SHUTDOWN_COMMIT_GRACE};
use crate::committer::Checkpoint;
use crate::config::BackpressureConfig;
use crate::metrics::CommittedCheckpoint;
use crate::source::SourceCommand;
use crate::{Error, Result};

impl Pipeline {
    /// Drops everything not yet committed and re-positions the source at the table's offsets.
    pub(super) async fn abort(&mut self, reason: &'static str) -> Result<()> {
        self.metrics.checkpoint_dropped(reason);
        self.checkpoint += 1;
        match self.pool.close_all(self.checkpoint + 1).await {
            Ok(written) => {
                delete_uncommitted(&self.file_io, written.data_files.iter().map(DataFile::file_path)).await;
            }
            Err(e) => tracing::debug!(error = %e, "closing files of an aborted checkpoint failed"),
        }
        self.lost_ranges.clear();
        let epoch = self.splitter.rewind();
        self.source.send(SourceCommand::Reseek { epoch });
        tracing::warn!(pipeline = %self.name, reason, "in-flight checkpoint dropped; re-reading from the table's offsets");
        Ok(())
    }

    /// Closes the writers' files and commits them with the offsets they cover.
    pub(super) async fn checkpoint(&mut self) -> Result<()> {
        let ranges = self.splitter.ranges();
        if ranges.is_empty() || self.splitter.repositioning() {
            // Nothing was handed to the writers since their files were last closed.
            if ranges.is_empty() {
                self.apply_pending_shrink().await;
                self.metrics.made_progress();
            }
            return Ok(());
        }
        let started = Instant::now();
        self.checkpoint += 1;
        let written = match self.pool.close_all(self.checkpoint + 1).await {
            Ok(w) => w,
            Err(e) if e.is_retryable() => {
                tracing::warn!(pipeline = %self.name, error = %e, "writing the checkpoint failed");
                return self.abort("writing data files failed").await;
            }
            Err(e) => return Err(e),
        };
        let writers = self.pool.writer_count();
        self.apply_pending_shrink().await;
        let mut dead_letters = written.dead_letters;
        dead_letters.append(&mut self.lost_ranges);
        let checkpoint = Checkpoint {
            number: self.checkpoint,
            data_files: written.data_files,
            spec_id: self.spec_id(),
            dead_letters,
            ranges,
            rows: written.rows,
            writers,
            times: written.times,
            interval: self.interval,
        };
        let journal_path = match self.write_journal(&checkpoint).await {
            Ok(path) => path,
            Err(e) => {
                tracing::warn!(pipeline = %self.name, error = %e, "writing the checkpoint journal failed");
                delete_uncommitted(&self.file_io, checkpoint.data_files.iter().map(DataFile::file_path)).await;
                return self.abort("writing the checkpoint journal failed").await;
            }
        };
        if let Some(pause) = icefall_table::fault::commit_pause() {
            tokio::time::sleep(pause).await;
        }
        let commit_started = Instant::now();
        let Some(outcome) = self.commit_with_retries(&checkpoint).await? else {
            // Fenced: only files no snapshot references go (an attempt of unknown outcome may
            // have landed). If the table cannot be read now, the journal stays and settles them.
            let paths: Vec<String> = checkpoint.data_files.iter().map(|f| f.file_path().to_string()).collect();
            match self.catalog.delete_unreferenced(&self.table.ident, &paths).await {
                Ok(_) => self.remove_journal(journal_path.as_deref()).await,
                Err(e) => tracing::warn!(pipeline = %self.name, error = %e,
                    "could not check the fenced checkpoint's files; its journal stays for settling"),
            }
            return self.abort("another writer committed these offsets").await;
        };
        icefall_table::fault::crash_point(icefall_table::fault::CrashPoint::AfterCommitBeforeJournalRemoved);
        self.remove_journal(journal_path.as_deref()).await;
        self.adopt_new_spec(&outcome.table).await?;
        self.late_before.store(late_bound(&self.config, &outcome.table), Ordering::Relaxed);
        let watermarks = icefall_table::freshness::table_watermarks(&outcome.table.metadata);
        self.adjust_interval(&outcome.table.metadata);
        if self.next_journal_settle.is_some_and(|at| Instant::now() >= at)
            || icefall_table::fault::settle_pause().is_some()
        {
            self.next_journal_settle = settle_journals(&self.catalog, &outcome.table, &self.name).await;
        }
        self.splitter.committed(&checkpoint.ranges);
        self.source.send(SourceCommand::CommitGroupOffsets(checkpoint.end_offsets()));
        let bytes = checkpoint.data_files.iter().map(|f| f.file_size_in_bytes()).sum::<u64>();
        self.metrics.checkpoint_committed(&CommittedCheckpoint {
            rows: checkpoint.rows,
            files: checkpoint.data_files.len() as u64,
            bytes,
            late_records: checkpoint.times.late_records,
            dead_letters: &checkpoint.dead_letters,
            writers: checkpoint.writers,
            duration: started.elapsed(),
            commit_duration: commit_started.elapsed(),
            conflicts: outcome.conflicts,
            offsets: checkpoint.ranges.iter().map(|(tp, r)| (tp.clone(), r.end)).collect(),
            event_watermark_us: watermarks.event,
            arrival_watermark_us: watermarks.arrival,
        });
        tracing::info!(
            pipeline = %self.name,
            checkpoint = checkpoint.number,
            rows = checkpoint.rows,
            dead_letters = checkpoint.dead_letters.len(),
            files = checkpoint.data_files.len(),
            bytes,
            partitions = checkpoint.ranges.len(),
            late_records = checkpoint.times.late_records,
            event_watermark = watermarks.event.map(icefall_table::freshness::format_micros),
            duration_ms = started.elapsed().as_millis() as u64,
            "checkpoint committed"
        );
        Ok(())
    }

    /// Table-health backpressure: the interval until the next checkpoint, from the table as our
    /// commit left it. Longer checkpoints mean fewer snapshots and fewer, larger files while
    /// the optimizer catches up; nothing is dropped.
    fn adjust_interval(&mut self, metadata: &iceberg::spec::TableMetadata) {
        let health = since_compaction(metadata);
        let (next, over) =
            next_interval(self.interval, self.config.checkpoint_interval, &self.config.backpressure, &health);
        if next == self.interval {
            return;
        }
        if over {
            tracing::warn!(pipeline = %self.name, snapshots_since_compaction = health.snapshots,
                files_since_compaction = health.data_files_added, checkpoint_interval = ?next,
                "table needs compaction: checkpoint interval lengthened until the optimizer catches up");
        } else {
            tracing::info!(pipeline = %self.name, checkpoint_interval = ?next, "table compacted: checkpoint interval restored");
        }
        self.interval = next;
        self.metrics.interval_changed(next);
    }

    /// Commits, retrying while the catalog or storage is unreachable. `Ok(None)`: fenced.
    async fn commit_with_retries(&mut self, checkpoint: &Checkpoint) -> Result<Option<CommitOutcome>> {
        let pending = self.committer.prepare(checkpoint);
        let mut backoff = Backoff::unavailable();
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
                    tracing::warn!(pipeline = %self.name, reason, "commit fenced");
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
                                self.name
                            )));
                        }
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(pipeline = %self.name, error = %e, retry_in = ?delay, "commit failed; retrying");
                    self.metrics.commit_retried();
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The checkpoint interval after a commit that left the table with `health`: doubled (up to
/// `max_checkpoint_interval`) while a backpressure limit is exceeded, else the configured one;
/// `true` with it while over a limit.
pub(super) fn next_interval(
    current: Duration,
    configured: Duration,
    limits: &BackpressureConfig,
    health: &SinceCompaction,
) -> (Duration, bool) {
    let over = (limits.max_snapshots_since_compaction > 0 && health.snapshots > limits.max_snapshots_since_compaction)
        || (limits.max_files_since_compaction > 0 && health.data_files_added > limits.max_files_since_compaction);
    let next = if over { (current * 2).min(limits.max_checkpoint_interval) } else { configured };
    (next, over)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::setup::checkpoint_ticker;

    const SECOND: Duration = Duration::from_secs(1);

    fn health(snapshots: u64, data_files_added: u64) -> SinceCompaction {
        SinceCompaction { snapshots, data_files_added }
    }

    #[test]
    fn the_interval_doubles_while_the_table_needs_compaction_and_returns_after() {
        let limits = BackpressureConfig {
            max_snapshots_since_compaction: 100,
            max_files_since_compaction: 1000,
            max_checkpoint_interval: 10 * SECOND,
        };
        let mut interval = SECOND;
        let mut seen = Vec::new();
        for snapshots in [50, 101, 102, 103, 104, 105] {
            (interval, _) = next_interval(interval, SECOND, &limits, &health(snapshots, 0));
            seen.push(interval.as_secs());
        }
        assert_eq!(seen, [1, 2, 4, 8, 10, 10], "doubling up to the cap");
        assert_eq!(next_interval(interval, SECOND, &limits, &health(0, 1001)), (10 * SECOND, true), "files count too");
        assert_eq!(next_interval(interval, SECOND, &limits, &health(3, 10)), (SECOND, false), "compacted: back");
        let off = BackpressureConfig { max_snapshots_since_compaction: 0, max_files_since_compaction: 0, ..limits };
        assert_eq!(next_interval(SECOND, SECOND, &off, &health(u64::MAX, u64::MAX)), (SECOND, false), "0: no limit");
    }

    /// The run loop's timing with the clock paused: the first checkpoint one interval after
    /// start, a slow checkpoint delays the next by one interval (no burst of catch-up ticks),
    /// and a changed interval takes effect from the next tick.
    #[tokio::test(start_paused = true)]
    async fn checkpoints_tick_one_interval_apart_even_after_a_slow_one() {
        let start = tokio::time::Instant::now();
        let mut ticker = checkpoint_ticker(2 * SECOND);
        ticker.tick().await;
        assert_eq!(start.elapsed(), 2 * SECOND, "the first checkpoint is one interval after start");
        tokio::time::sleep(7 * SECOND).await; // a commit that waited for the catalog
        ticker.tick().await;
        assert_eq!(start.elapsed(), 9 * SECOND, "a late tick fires once, at once");
        ticker.tick().await;
        assert_eq!(start.elapsed(), 11 * SECOND, "then one interval after it, not a burst");
        ticker = checkpoint_ticker(5 * SECOND); // backpressure lengthened the interval
        ticker.tick().await;
        assert_eq!(start.elapsed(), 16 * SECOND);
    }
}
