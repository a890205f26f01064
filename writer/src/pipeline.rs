//! One pipeline: Kafka source → splitter → writer pool → checkpoint → committer.
//!
//! The pipeline is the splitter: it tracks, per partition, the offset the table holds
//! (`committed`) and the next offset it expects (`next`); every record it hands to the writers
//! advances `next`. A checkpoint covers exactly `[committed, next)` of every partition that
//! moved, and the files the writers close at that moment hold exactly those records.

mod journal;
mod lost;
mod setup;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use icefall_schemas::decode::confluent_schema_id;
use icefall_table::catalog::parse_ident;
use icefall_table::health::since_compaction;
use icefall_table::offsets::committed_offsets;
use icefall_table::{Catalog, CommitOutcome, LoadedTable, RetryPolicy};
use tokio::sync::watch;

use crate::budget::MemoryBudget;
use crate::committer::{Checkpoint, Committer, OffsetRange};
use crate::config::{Config, PipelineConfig};
use crate::evolution::{fit_table, plan_evolution};
use crate::formats::SourceSchemas;
use crate::metrics::{CommittedCheckpoint, PipelineMetrics};
use crate::pool::{WriterPool, delete_files};
use crate::scaling::{Decision, Scaler};
use crate::source::{KafkaSource, OffsetLoader, SourceCommand, SourceEvent, SourceSettings, TopicPartition};
use crate::{Error, Result, dead_letter};
use icefall_table::files::TableFiles;
use journal::settle_journals;
use setup::{checkpoint_ticker, late_bound, load_or_create, warn_on_format_drift, warn_on_schema_drift, write_setup};

/// How often the writer pool's load is measured and its size reconsidered.
const SCALING_INTERVAL: Duration = Duration::from_secs(1);

/// How often journals other processes left behind are looked at again while some are pending.
const JOURNAL_SETTLE_INTERVAL: Duration = Duration::from_secs(60);

/// How long the final checkpoint may keep retrying after a shutdown request.
const SHUTDOWN_COMMIT_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
struct PartitionState {
    /// The table's offset (`None`: the table has none for this partition).
    committed: Option<i64>,
    /// Next offset expected; `None` until the first record of a never-committed partition.
    next: Option<i64>,
}

impl PartitionState {
    fn range(&self) -> Option<OffsetRange> {
        match self.next {
            Some(next) if Some(next) != self.committed => Some(OffsetRange { start: self.committed, end: next }),
            _ => None,
        }
    }
}

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
    committer: Committer,
    partitions: HashMap<TopicPartition, PartitionState>,
    /// Waiting for the source to answer `Reseek { epoch }`; records before it are stale.
    awaiting_epoch: Option<u64>,
    epoch: u64,
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
    pub async fn start(
        config: &Config,
        p: &PipelineConfig,
        catalog: Catalog,
        instance: &str,
        metrics: PipelineMetrics,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self> {
        let ident = parse_ident(&p.table)?;
        let mut sources = SourceSchemas::load(config, p)?;
        // Topic-name strategy: the first topic's value subject describes new tables.
        let subject = format!("{}-value", p.topics[0]);
        let initial = sources.initial(&subject, &shutdown).await?;
        let mut table = match &initial {
            Some((_, source)) => {
                load_or_create(&catalog, &ident, &p.source_layout(&source.fields()?)?, &shutdown).await?
            }
            None if sources.registry().is_some() => catalog.load(&ident).await.map_err(|e| {
                Error::Config(format!(
                    "pipelines[{}]: table {} cannot be loaded ({e}) and subject {subject} has no schema in the \
                     registry to create it from; register the schema first",
                    p.name, p.table
                ))
            })?,
            None => load_or_create(&catalog, &ident, &p.layout()?, &shutdown).await?,
        };
        if let Some((schema_id, source)) = &initial {
            table = fit_table(&catalog, table, source, *schema_id, p).await?;
        }
        let dlq_ident = parse_ident(&p.dead_letter_table())?;
        let dlq = load_or_create(&catalog, &dlq_ident, &dead_letter::layout(), &shutdown).await?;

        if initial.is_none() {
            warn_on_schema_drift(p, table.metadata.current_schema());
        }
        warn_on_format_drift(p, &table);
        // Journals of a crash whose partitions have moved on are settled now; those still
        // pending (ours, before the crash) right after our first commit moves them.
        let next_journal_settle = settle_journals(&catalog, &table, &p.name).await.map(|_| Instant::now());
        let late_before = Arc::new(AtomicI64::new(late_bound(p, &table)));
        let setup = write_setup(p, &sources, &table, catalog.file_io(), &late_before)?;
        let (min_writers, max_writers) = p.writer_bounds();
        let pool = WriterPool::start(min_writers, setup, instance, 1);
        let committer = Committer {
            catalog: catalog.clone(),
            table: ident.clone(),
            dead_letter_table: dlq_ident,
            dead_letter_files: TableFiles::new(dlq.name(), dlq.metadata.clone(), catalog.file_io().clone(), None)?,
            dead_letter_decoder: Arc::new(dead_letter::decoder(dlq.metadata.current_schema().clone())?),
            writer_id: config.writer_id.clone(),
            instance: instance.to_string(),
            policy: RetryPolicy::default(),
        };

        let loader_catalog = catalog.clone();
        let handle = tokio::runtime::Handle::current();
        let loader_ident = ident.clone();
        let loader: OffsetLoader = Arc::new(move || {
            handle.block_on(async {
                let table = loader_catalog.load(&loader_ident).await.map_err(|e| e.to_string())?;
                committed_offsets(&table.metadata).map_err(|e| e.to_string())
            })
        });
        let source = KafkaSource::start(
            SourceSettings {
                pipeline: p.name.clone(),
                brokers: config.kafka.brokers.clone(),
                group_id: p.group_id(&config.kafka),
                topics: p.topics.clone(),
                properties: config.kafka.properties.clone(),
                max_batch: 4096,
                linger: Duration::from_millis(50),
                budget: MemoryBudget::new(p.max_buffered_bytes as usize),
                metrics: metrics.clone(),
            },
            loader,
        )?;
        metrics.writers_changed(min_writers);
        metrics.interval_changed(p.checkpoint_interval);
        tracing::info!(pipeline = %p.name, table = %table.name(), topics = ?p.topics, min_writers, max_writers,
            checkpoint_interval = ?p.checkpoint_interval, "pipeline started");
        Ok(Pipeline {
            name: p.name.clone(),
            config: p.clone(),
            catalog: catalog.clone(),
            table,
            sources,
            interval: p.checkpoint_interval,
            file_io: catalog.file_io().clone(),
            source,
            pool,
            scaler: Scaler::new(min_writers, max_writers),
            pending_shrink: None,
            committer,
            partitions: HashMap::new(),
            awaiting_epoch: None,
            epoch: 0,
            checkpoint: 0,
            next_journal_settle,
            lost_ranges: Vec::new(),
            late_before,
            metrics,
            shutdown,
        })
    }

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
                self.checkpoint().await
            }
            Err(e) => Err(e),
        };
        self.source.stop().await;
        self.pool.shutdown().await;
        result
    }

    async fn handle(&mut self, event: SourceEvent) -> Result<()> {
        match event {
            SourceEvent::Records(records, lease) => {
                if self.awaiting_epoch.is_some() {
                    return Ok(());
                }
                self.count_consumed(&records);
                let mut accepted = Vec::with_capacity(records.len());
                for record in records {
                    let Some(state) = self.partitions.get(&(record.topic.clone(), record.partition)) else {
                        continue; // not (or no longer) ours
                    };
                    if state.next.is_some_and(|next| record.offset < next) {
                        continue; // already handed to a writer or already in the table
                    }
                    if let Some(id) = self.unknown_schema_id(&record) {
                        // Everything before this record is written with the schema it came with.
                        self.pool.dispatch(std::mem::take(&mut accepted), None).await?;
                        self.adopt_schema(id).await?;
                        if self.awaiting_epoch.is_some() {
                            return Ok(()); // the checkpoint was fenced; the rest is read again
                        }
                    }
                    if let Some(state) = self.partitions.get_mut(&(record.topic.clone(), record.partition)) {
                        state.next = Some(record.offset + 1);
                    }
                    accepted.push(record);
                }
                self.pool.dispatch(accepted, Some(lease)).await
            }
            SourceEvent::Assigned { epoch, partitions, replace } => {
                if let Some(want) = self.awaiting_epoch {
                    if epoch < want {
                        return Ok(()); // the answer to our Reseek will list the whole assignment
                    }
                    self.awaiting_epoch = None;
                }
                if replace {
                    if self.in_flight() {
                        return self.abort("the assignment was replaced").await;
                    }
                    self.partitions.clear();
                }
                self.metrics.partitions_assigned(&partitions, replace, self.partitions.len() + partitions.len());
                for (tp, start) in partitions {
                    self.partitions.insert(tp, PartitionState { committed: start, next: start });
                }
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
                let committed = if self.in_flight() { self.checkpoint().await } else { Ok(()) };
                let had_in_flight = self.in_flight();
                for tp in &partitions {
                    self.partitions.remove(tp);
                }
                self.metrics.partitions_revoked(&partitions, self.partitions.len());
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

    /// The schema id of a Confluent-framed record the pipeline has not seen yet.
    fn unknown_schema_id(&self, record: &crate::source::SourceRecord) -> Option<u32> {
        let registry = self.sources.registry()?;
        let id = confluent_schema_id(record.payload.as_deref()?)?;
        (!registry.knows(id)).then_some(id)
    }

    /// Looks up a new schema id; if the table must change to hold its records, commits what
    /// was written so far, then the schema change, and writes on with the new schema.
    async fn adopt_schema(&mut self, id: u32) -> Result<()> {
        let source = self.sources.fetch(id, &self.shutdown).await?;
        if let Some(source) = source {
            let current = self.catalog.load(&self.table.ident).await?;
            let plan = match plan_evolution(&current, &source, Some(id), &self.config) {
                Ok(plan) => plan,
                Err(e) => {
                    // Keep what came before; the record of the new shape and all after it stay
                    // unread until the producer or the config is fixed.
                    self.checkpoint().await?;
                    return Err(e);
                }
            };
            let new_spec = current.metadata.default_partition_spec_id() != self.spec_id();
            if plan.is_some() || new_spec {
                // Data of the old shape (or partition spec) is committed before the writers
                // take up the new one: a checkpoint's files share one spec.
                self.checkpoint().await?;
                if self.awaiting_epoch.is_some() {
                    return Ok(());
                }
            }
            self.table = match plan {
                Some(_) => fit_table(&self.catalog, current, &source, Some(id), &self.config).await?,
                None => current,
            };
            tracing::info!(pipeline = %self.name, schema_id = id, table_schema_id = self.table.metadata.current_schema_id(),
                "new source schema adopted");
        }
        let setup = write_setup(&self.config, &self.sources, &self.table, &self.file_io, &self.late_before)?;
        self.pool.reconfigure(setup).await
    }

    /// The partition spec the writers write with: the default spec of the table they were set
    /// up for.
    fn spec_id(&self) -> i32 {
        self.table.metadata.default_partition_spec_id()
    }

    /// Takes up a partition spec another engine made the table's default (Spark's `ALTER TABLE
    /// … PARTITION FIELD`), right after a commit, while the writers hold no open file. Files
    /// written before keep their own spec, which stays valid.
    async fn adopt_new_spec(&mut self, table: &LoadedTable) -> Result<()> {
        if table.metadata.default_partition_spec_id() == self.spec_id() {
            return Ok(());
        }
        tracing::info!(pipeline = %self.name, from = self.spec_id(), to = table.metadata.default_partition_spec_id(),
            "the table has a new partition spec; new files follow it");
        self.table = table.clone();
        let setup = write_setup(&self.config, &self.sources, &self.table, &self.file_io, &self.late_before)?;
        self.pool.reconfigure(setup).await
    }

    /// Measures the last interval's load; grows the pool now or schedules a shrink.
    fn rescale(&mut self, elapsed: Duration) {
        if self.awaiting_epoch.is_some() {
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

    /// Counts a batch per topic (a batch mostly holds one topic: one label lookup per run).
    fn count_consumed(&self, records: &[crate::source::SourceRecord]) {
        let mut run: Option<(&str, u64, u64)> = None;
        for record in records {
            let bytes = (record.payload.as_ref().map_or(0, Vec::len) + record.key.as_ref().map_or(0, Vec::len)) as u64;
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

    fn in_flight(&self) -> bool {
        self.partitions.values().any(|s| s.range().is_some())
    }

    /// Drops everything not yet committed and re-positions the source at the table's offsets.
    async fn abort(&mut self, reason: &'static str) -> Result<()> {
        self.metrics.checkpoint_dropped(reason);
        self.checkpoint += 1;
        match self.pool.close_all(self.checkpoint + 1).await {
            Ok(written) => delete_files(&self.file_io, &written.data_files).await,
            Err(e) => tracing::debug!(error = %e, "closing files of an aborted checkpoint failed"),
        }
        for state in self.partitions.values_mut() {
            state.next = state.committed;
        }
        self.lost_ranges.clear();
        self.epoch += 1;
        self.awaiting_epoch = Some(self.epoch);
        self.source.send(SourceCommand::Reseek { epoch: self.epoch });
        tracing::warn!(pipeline = %self.name, reason, "in-flight checkpoint dropped; re-reading from the table's offsets");
        Ok(())
    }

    async fn checkpoint(&mut self) -> Result<()> {
        let ranges: BTreeMap<TopicPartition, OffsetRange> =
            self.partitions.iter().filter_map(|(tp, s)| s.range().map(|r| (tp.clone(), r))).collect();
        if ranges.is_empty() || self.awaiting_epoch.is_some() {
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
                delete_files(&self.file_io, &checkpoint.data_files).await;
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
        for (tp, range) in &checkpoint.ranges {
            if let Some(state) = self.partitions.get_mut(tp) {
                state.committed = Some(range.end);
            }
        }
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
        let limits = &self.config.backpressure;
        let health = since_compaction(metadata);
        let over = (limits.max_snapshots_since_compaction > 0
            && health.snapshots > limits.max_snapshots_since_compaction)
            || (limits.max_files_since_compaction > 0 && health.data_files_added > limits.max_files_since_compaction);
        let next = if over {
            (self.interval * 2).min(limits.max_checkpoint_interval)
        } else {
            self.config.checkpoint_interval
        };
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
        let mut delay = Duration::from_millis(500);
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
                    tracing::warn!(pipeline = %self.name, error = %e, retry_in = ?delay, "commit failed; retrying");
                    self.metrics.commit_retried();
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(e),
            }
        }
    }
}
