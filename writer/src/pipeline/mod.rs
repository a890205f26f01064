//! One pipeline: source (Kafka) → split → decode and write (the writer pool) → checkpoint →
//! commit (the committer: snapshot + offsets).
//!
//! Each step has its file: `start.rs` sets the pipeline up, `split.rs` keeps the splitter's
//! bookkeeping (what each partition has handed on since the table's offset), the writer pool
//! (`crate::pool`) decodes and writes, `checkpoint.rs` closes files and hands them with the
//! offsets they cover to `commit.rs`, which commits them while the writers go on, `schema.rs` follows schema and spec changes, `journal.rs` and `lost.rs`
//! keep crash cleanup and skipped ranges. This file holds the struct and its run loop.

mod checkpoint;
mod commit;
mod journal;
mod lost;
mod schema;
mod setup;
mod split;
mod start;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use icefall_schemas::json::infer::ShapeProbe;
use icefall_table::{Catalog, LoadedTable};
use tokio::sync::watch;

use crate::budget::Lease;
use crate::config::PipelineConfig;
use crate::metrics::PipelineMetrics;
use crate::pool::WriterPool;
use crate::record::SourceRecord;
use crate::scaling::{Decision, Scaler};
use crate::schema::sources::SourceSchemas;
use crate::source::{KafkaSource, SourceEvent};
use crate::{Error, Result};
use commit::{CommitContext, InFlight};
use setup::checkpoint_ticker;
use split::{Assignment, Splitter};

/// How often the writer pool's load is measured and its size reconsidered.
const SCALING_INTERVAL: Duration = Duration::from_secs(1);

/// How often journals other processes left behind are looked at again while some are pending.
const JOURNAL_SETTLE_INTERVAL: Duration = Duration::from_secs(60);

/// How long the final checkpoint may keep retrying after a shutdown request.
const SHUTDOWN_COMMIT_GRACE: Duration = Duration::from_secs(30);

pub struct Pipeline {
    name: String,
    config: PipelineConfig,
    catalog: Catalog,
    /// The table as of the last schema change we made or saw (the committer reloads it anyway).
    table: LoadedTable,
    sources: SourceSchemas,
    interval: Duration,
    file_io: iceberg::io::FileIO,
    source: KafkaSource,
    pool: WriterPool,
    scaler: Scaler,
    /// A writer to retire at the next checkpoint boundary, and why.
    pending_shrink: Option<String>,
    /// What commits need; shared with the commit in flight.
    commits: Arc<CommitContext>,
    /// The last checkpoint's commit, while the writers write the next one.
    in_flight: Option<InFlight>,
    /// A partition spec another engine made the default, seen in a commit while the writers
    /// held files: taken up when they next close them.
    next_spec: Option<LoadedTable>,
    /// What each partition has handed on since the table's offset.
    splitter: Splitter,
    /// JSON with `evolve = true`: finds fields records bring that the table lacks.
    json_probe: Option<ShapeProbe>,
    checkpoint: u64,
    /// Event times below this are late (shared with the writers; see [`EventTime`]).
    late_before: Arc<AtomicI64>,
    /// When to settle checkpoint journals next (after a commit); `None`: none are known pending.
    next_journal_settle: Option<Instant>,
    /// Ranges gone from the broker that this checkpoint skips (see [`lost`]).
    lost_ranges: Vec<crate::dead_letter::DeadLetter>,
    metrics: PipelineMetrics,
    shutdown: watch::Receiver<bool>,
}

impl Pipeline {
    /// Runs until shutdown; the last act is a final checkpoint.
    pub async fn run(mut self) -> Result<()> {
        let mut ticker = checkpoint_ticker(self.interval);
        let mut shutdown = self.shutdown.clone();
        let mut scaling = tokio::time::interval_at(tokio::time::Instant::now() + SCALING_INTERVAL, SCALING_INTERVAL);
        scaling.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut measured_since = Instant::now();
        let result = loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break Ok(()),
                _ = ticker.tick() => {
                    if let Err(e) = self.checkpoint().await { break Err(e); }
                    if ticker.period() != self.interval {
                        ticker = checkpoint_ticker(self.interval);
                    }
                }
                landing = land(&mut self.in_flight), if self.in_flight.is_some() => {
                    if let Err(e) = self.take_landing(landing).await { break Err(e); }
                    if ticker.period() != self.interval {
                        ticker = checkpoint_ticker(self.interval);
                    }
                }
                _ = scaling.tick() => {
                    self.rescale(measured_since.elapsed());
                    measured_since = Instant::now();
                }
                event = self.source.events.recv() => match event {
                    Some(event) => if let Err(e) = self.handle(event).await { break Err(e); },
                    None => break Err(Error::Internal(format!("the Kafka source of pipeline {} stopped", self.name))),
                },
            }
        };
        let result = match result {
            Ok(()) => {
                tracing::info!(pipeline = %self.name, "shutting down: final checkpoint");
                self.checkpoint_now().await
            }
            Err(e) => {
                if let Some(in_flight) = self.in_flight.take() {
                    in_flight.cancel();
                }
                Err(e)
            }
        };
        self.source.stop().await;
        self.pool.shutdown().await;
        result
    }

    async fn handle(&mut self, event: SourceEvent) -> Result<()> {
        match event {
            SourceEvent::Records(records, lease) => {
                if self.splitter.repositioning() {
                    return Ok(());
                }
                self.count_consumed(&records);
                self.accept(records, lease).await
            }
            SourceEvent::Assigned { epoch, partitions, replace } => {
                match self.splitter.assign(epoch, &partitions, replace) {
                    Assignment::Stale => return Ok(()),
                    Assignment::NeedsAbort => return self.abort("the assignment was replaced").await,
                    Assignment::Applied => {}
                }
                self.metrics.partitions_assigned(&partitions, replace, self.splitter.len());
                // A partition may come from a crashed peer: settle its journal right after our
                // next commit moves it (not at a later time an earlier look scheduled).
                self.next_journal_settle = Some(Instant::now());
                Ok(())
            }
            SourceEvent::Skipped { partition, from, to, policy } => {
                self.record_lost_range(partition, from, to, policy);
                Ok(())
            }
            SourceEvent::Failed(message) => Err(Error::Source(message)),
            SourceEvent::Revoked { partitions, released } => {
                // Commit what was read of them while they are still ours: the next owner starts
                // from the table's offsets, so nothing is read twice.
                let committed = if self.splitter.in_flight() { self.checkpoint_now().await } else { Ok(()) };
                let had_in_flight = self.splitter.in_flight();
                self.splitter.revoke(&partitions);
                self.metrics.partitions_revoked(&partitions, self.splitter.len());
                if had_in_flight {
                    // Not committed (fenced, or waiting for a re-read): files mix partitions and
                    // cannot be split, so the checkpoint is dropped and the partitions we keep
                    // are re-read from the table.
                    self.abort("partitions were revoked").await?;
                }
                let _ = released.send(());
                committed
            }
        }
    }

    /// Measures the last interval's load; grows the pool now or schedules a shrink.
    fn rescale(&mut self, elapsed: Duration) {
        if self.splitter.repositioning() {
            return;
        }
        let load = self.pool.take_load(elapsed);
        match self.scaler.observe(load) {
            Decision::Keep => {}
            Decision::Grow(reason) => {
                self.pool.grow();
                self.metrics.writers_changed(self.pool.writer_count());
                self.pending_shrink = None;
                tracing::info!(pipeline = %self.name, writers = self.pool.writer_count(), reason, "writer pool grown");
            }
            Decision::Shrink(reason) => self.pending_shrink = Some(reason),
        }
    }

    /// Retires a writer if one is due; only when no writer holds open files.
    async fn apply_pending_shrink(&mut self) {
        if let Some(reason) = self.pending_shrink.take() {
            self.pool.shrink().await;
            self.metrics.writers_changed(self.pool.writer_count());
            tracing::info!(pipeline = %self.name, writers = self.pool.writer_count(), reason, "writer pool shrunk");
        }
    }

    /// Hands the new records of a batch to the writers. The batch is filtered in place: in the
    /// usual case every record is new and none moves (moving each was a copy per record).
    async fn accept(&mut self, mut records: Vec<SourceRecord>, lease: Lease) -> Result<()> {
        // `records[..kept]` are accepted; `records[i]` is the next to look at.
        let (mut kept, mut i) = (0, 0);
        while i < records.len() {
            if !self.splitter.is_new(&records[i]) {
                i += 1;
                continue; // not ours, already handed on, or already in the table
            }
            if self.config.route.as_ref().is_some_and(|route| !route.keeps(records[i].payload.as_deref())) {
                // Another route's record: read, so this table's offsets pass it.
                self.splitter.handed_on(&records[i]);
                i += 1;
                continue;
            }
            if let Some(id) = self.unknown_schema_id(&records[i]) {
                // Everything before this record is written with the schema it came with.
                self.pool.dispatch(take_accepted(&mut records, kept, i), None).await?;
                (kept, i) = (0, 0);
                self.adopt_schema(id).await?;
                if self.splitter.repositioning() {
                    return Ok(()); // the checkpoint was fenced; the rest is read again
                }
            }
            if let Some(shape) = self.new_json_fields(&records[i], &records[i + 1..]) {
                // The same for JSON fields the table lacks (`evolve = true`).
                self.pool.dispatch(take_accepted(&mut records, kept, i), None).await?;
                (kept, i) = (0, 0);
                self.adopt_json_fields(shape).await?;
                if self.splitter.repositioning() {
                    return Ok(());
                }
            }
            self.splitter.handed_on(&records[i]);
            if kept != i {
                records.swap(kept, i); // records[kept] was left behind
            }
            kept += 1;
            i += 1;
        }
        records.truncate(kept);
        self.pool.dispatch(records, Some(lease)).await
    }

    /// Counts a batch per topic (a batch mostly holds one topic: one label lookup per run).
    fn count_consumed(&self, records: &[SourceRecord]) {
        let mut run: Option<(&str, u64, u64)> = None;
        for record in records {
            let bytes = (record.payload_len() + record.key.as_ref().map_or(0, bytes::Bytes::len)) as u64;
            match &mut run {
                Some((topic, n, b)) if *topic == &*record.topic => {
                    *n += 1;
                    *b += bytes;
                }
                _ => {
                    if let Some((topic, n, b)) = run.take() {
                        self.metrics.records_consumed(topic, n, b);
                    }
                    run = Some((&record.topic, 1, bytes));
                }
            }
        }
        if let Some((topic, n, b)) = run {
            self.metrics.records_consumed(topic, n, b);
        }
    }
}

/// Takes the accepted `records[..kept]` out of the batch, leaving `records[at..]` to look at.
fn take_accepted(records: &mut Vec<SourceRecord>, kept: usize, at: usize) -> Vec<SourceRecord> {
    let rest = records.split_off(at);
    let mut accepted = std::mem::replace(records, rest);
    accepted.truncate(kept);
    accepted
}

/// The landing of the commit in flight (pending forever when there is none).
async fn land(in_flight: &mut Option<InFlight>) -> Result<commit::Landing> {
    match in_flight {
        Some(in_flight) => in_flight.land().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accepted_records_leave_and_the_rest_stays_to_look_at() {
        // Offsets 0 and 2 accepted (moved to the front), 1 left behind, 3.. not looked at yet.
        let mut records: Vec<SourceRecord> = [0, 2, 1, 3, 4].map(|o| SourceRecord::bare(0, o)).into();
        let accepted = take_accepted(&mut records, 2, 3);
        assert_eq!(accepted.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), [3, 4]);
    }
}
