//! Checkpoints: close the writers' files, journal them, commit them with the offsets they
//! cover (retrying while the catalog is away), or drop them and re-read from the table.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use iceberg::spec::DataFile;
use icefall_table::fault::{self, Safeguard};
use icefall_table::health::{SinceCompaction, since_compaction};
use icefall_table::reachable::delete_uncommitted;

use super::Pipeline;
use super::commit::{Committed, Landing};
use super::journal::settle_journals;
use super::setup::late_bound;
use crate::committer::Checkpoint;
use crate::config::{BackpressureConfig, DeadLetterPolicy};
use crate::dead_letter::DeadLetter;
use crate::metrics::CommittedCheckpoint;
use crate::source::SourceCommand;
use crate::{Error, Result};

impl Pipeline {
    /// Drops everything not yet committed and re-positions the source at the table's offsets.
    pub(super) async fn abort(&mut self, reason: &'static str) -> Result<()> {
        // The commit in flight may still land: where the re-read starts depends on it.
        if let Some(mut in_flight) = self.in_flight.take() {
            match in_flight.land().await? {
                Landing::Committed(committed) => self.finish_commit(*committed).await?,
                Landing::Dropped(earlier) => self.metrics.checkpoint_dropped(earlier),
            }
        }
        self.metrics.checkpoint_dropped(reason);
        self.checkpoint += 1;
        match self.pool.close_all(self.checkpoint + 1).await {
            Ok(written) => {
                delete_uncommitted(&self.file_io, written.data_files.iter().map(DataFile::file_path)).await;
            }
            Err(e) => tracing::debug!(error = %e, "closing files of an aborted checkpoint failed"),
        }
        self.adopt_next_spec().await?;
        self.lost_ranges.clear();
        let epoch = self.splitter.rewind();
        self.source.send(SourceCommand::Reseek { epoch });
        tracing::warn!(pipeline = %self.name, reason, "in-flight checkpoint dropped; re-reading from the table's offsets");
        Ok(())
    }

    /// Closes the writers' files and starts committing them with the offsets they cover; the
    /// writers go on with the next checkpoint's files meanwhile. Waits first for the previous
    /// checkpoint's commit (at most one in flight).
    pub(super) async fn checkpoint(&mut self) -> Result<()> {
        let stalled = Instant::now();
        let mut result = self.settle().await;
        if result.is_ok() {
            result = self.close_and_commit().await;
        }
        if result.is_ok() && !fault::enabled(Safeguard::PipelinedCommit) {
            result = self.settle().await;
        }
        self.metrics.checkpoint_stalled(stalled.elapsed());
        result
    }

    /// A checkpoint that has landed (or was dropped) when this returns, the writers holding no
    /// files: before a schema change, when partitions are revoked, at shutdown.
    pub(super) async fn checkpoint_now(&mut self) -> Result<()> {
        self.checkpoint().await?;
        let stalled = Instant::now();
        let result = self.settle().await;
        self.metrics.checkpoint_stalled(stalled.elapsed());
        result?;
        self.adopt_next_spec().await
    }

    /// Waits for the commit in flight, if any, and takes in its outcome.
    pub(super) async fn settle(&mut self) -> Result<()> {
        let Some(mut in_flight) = self.in_flight.take() else {
            return Ok(());
        };
        let landing = in_flight.land().await;
        self.take_landing(landing).await
    }

    /// Takes in how the commit in flight ended (it is no longer in flight).
    pub(super) async fn take_landing(&mut self, landing: Result<Landing>) -> Result<()> {
        self.in_flight = None;
        match landing? {
            Landing::Committed(committed) => self.finish_commit(*committed).await,
            Landing::Dropped(reason) => self.abort(reason).await,
        }
    }

    async fn close_and_commit(&mut self) -> Result<()> {
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
        self.splitter.closed(&ranges);
        let writers = self.pool.writer_count();
        self.apply_pending_shrink().await;
        let spec_id = self.spec_id();
        // The writers hold no files now: the next ones may take up a new spec.
        self.adopt_next_spec().await?;
        let mut dead_letters = self.apply_dead_letter_policy(written.dead_letters, &written.data_files).await?;
        dead_letters.append(&mut self.lost_ranges);
        let checkpoint = Checkpoint {
            number: self.checkpoint,
            data_files: written.data_files,
            spec_id,
            dead_letters,
            ranges,
            rows: written.rows,
            writers,
            times: written.times,
            interval: self.interval,
        };
        let location = self.table.metadata.location().to_string();
        self.in_flight = Some(self.commits.start(checkpoint, location, started));
        Ok(())
    }

    /// The dead letters to commit under `dead_letter_policy`: all (`table`), none (`drop`:
    /// counted and logged), or, with `fail`, an error naming the first bad record; then the
    /// checkpoint's `files` are deleted and nothing of it is committed, so a restart reads the
    /// record again.
    async fn apply_dead_letter_policy(
        &mut self,
        letters: Vec<DeadLetter>,
        files: &[DataFile],
    ) -> Result<Vec<DeadLetter>> {
        let Some(first) = letters.first() else { return Ok(letters) };
        match self.config.dead_letter_policy {
            DeadLetterPolicy::Table => Ok(letters),
            DeadLetterPolicy::Drop => {
                self.metrics.dead_letters_seen(&letters);
                tracing::warn!(pipeline = %self.name, dropped = letters.len(), first_topic = %first.topic,
                    first_partition = first.partition, first_offset = first.offset, first_error = %first.error,
                    "records that could not be decoded were dropped (dead_letter_policy = \"drop\")");
                Ok(Vec::new())
            }
            DeadLetterPolicy::Fail => {
                delete_uncommitted(&self.file_io, files.iter().map(DataFile::file_path)).await;
                Err(Error::DeadLetter(format!(
                    "pipeline {}: {}:{} offset {} cannot be decoded ({}: {}); dead_letter_policy = \"fail\" stops here, \
                     before committing it. Fix the producer or the schema, move the offsets past it \
                     (icefall-writer offsets set), or choose dead_letter_policy = \"table\"",
                    self.name, first.topic, first.partition, first.offset, first.error_kind, first.error
                )))
            }
        }
    }

    /// A checkpoint's commit landed: the table holds its offsets now.
    async fn finish_commit(&mut self, committed: Committed) -> Result<()> {
        let Committed { checkpoint, outcome, started, commit_duration } = committed;
        if outcome.table.metadata.default_partition_spec_id() != self.spec_id() {
            self.next_spec = Some(outcome.table.clone());
            // Nothing handed on since the last close: no writer holds a file, so the next records
            // already take up the new spec (else they do from the next close on).
            if self.splitter.ranges().is_empty() {
                self.adopt_next_spec().await?;
            }
        }
        self.late_before.store(late_bound(&self.config, &outcome.table), Ordering::Relaxed);
        let watermarks = icefall_table::freshness::table_watermarks(&outcome.table.metadata);
        self.adjust_interval(&outcome.table.metadata);
        if self.next_journal_settle.is_some_and(|at| Instant::now() >= at) || fault::settle_pause().is_some() {
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
            commit_duration,
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
