//! The named events the pipeline reports ([`PipelineMetrics`]): each updates its metric
//! families and the state `/readyz` reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::dead_letter::DeadLetter;
use crate::record::TopicPartition;

#[derive(Debug, Default, Clone, Copy)]
struct PartitionOffsets {
    committed: Option<i64>,
    low: Option<i64>,
    high: Option<i64>,
}

struct PipelineState {
    /// The group gave this process its assignment (possibly empty) at least once.
    assigned: AtomicBool,
    /// Last committed checkpoint, or last checkpoint tick with nothing to commit.
    last_progress: Mutex<Instant>,
    partitions: Mutex<HashMap<TopicPartition, PartitionOffsets>>,
}

/// One pipeline's metric events (cheap to clone; the source thread holds one too).
#[derive(Clone)]
pub struct PipelineMetrics {
    name: String,
    families: Arc<Families>,
    state: Arc<PipelineState>,
}

/// The figures of one committed checkpoint.
pub struct CommittedCheckpoint<'a> {
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub late_records: u64,
    pub dead_letters: &'a [DeadLetter],
    pub writers: usize,
    pub duration: Duration,
    pub commit_duration: Duration,
    pub conflicts: u32,
    /// The table's offsets of the checkpoint's partitions after the commit.
    pub offsets: Vec<(TopicPartition, i64)>,
    /// Table watermarks after the commit (µs since the epoch).
    pub event_watermark_us: Option<i64>,
    pub arrival_watermark_us: Option<i64>,
}

impl PipelineMetrics {
    pub(super) fn new(name: &str, families: Arc<Families>) -> Self {
        PipelineMetrics {
            name: name.to_string(),
            families,
            state: Arc::new(PipelineState {
                assigned: AtomicBool::new(false),
                last_progress: Mutex::new(Instant::now()),
                partitions: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn labels(&self) -> PipelineLabels {
        PipelineLabels { pipeline: self.name.clone() }
    }

    fn partition_labels(&self, (topic, partition): &TopicPartition) -> PartitionLabels {
        PartitionLabels { pipeline: self.name.clone(), topic: topic.to_string(), partition: partition.to_string() }
    }

    /// A batch of `records` from `topic`, `bytes` of keys and values.
    /// Offsets gone from the broker before they were read (retention), skipped.
    pub fn offsets_lost(&self, topic: &str, records: u64) {
        let labels = TopicLabels { pipeline: self.name.clone(), topic: topic.to_string() };
        self.families.lost_records.get_or_create(&labels).inc_by(records);
    }

    pub fn records_consumed(&self, topic: &str, records: u64, bytes: u64) {
        let labels = TopicLabels { pipeline: self.name.clone(), topic: topic.to_string() };
        self.families.consumed_records.get_or_create(&labels).inc_by(records);
        self.families.consumed_bytes.get_or_create(&labels).inc_by(bytes);
    }

    /// The group assigned partitions, starting at the table's offsets.
    pub fn partitions_assigned(&self, partitions: &[(TopicPartition, Option<i64>)], replace: bool, total: usize) {
        let mut known = self.state.partitions.lock().unwrap_or_else(|e| e.into_inner());
        if replace {
            for tp in known.keys() {
                self.families.consumer_lag.remove(&self.partition_labels(tp));
            }
            known.clear();
        }
        for (tp, start) in partitions {
            known.entry(tp.clone()).or_default().committed = *start;
        }
        self.state.assigned.store(true, Ordering::Relaxed);
        self.families.assigned_partitions.get_or_create(&self.labels()).set(total as i64);
    }

    /// Partitions were taken away: their series go (labels stay bounded by what is assigned).
    pub fn partitions_revoked(&self, partitions: &[TopicPartition], total: usize) {
        let mut known = self.state.partitions.lock().unwrap_or_else(|e| e.into_inner());
        for tp in partitions {
            known.remove(tp);
            self.families.consumer_lag.remove(&self.partition_labels(tp));
        }
        self.families.assigned_partitions.get_or_create(&self.labels()).set(total as i64);
    }

    /// librdkafka's statistics: a partition's low and high watermark in Kafka.
    pub fn partition_watermarks(&self, tp: &TopicPartition, low: i64, high: i64) {
        let mut known = self.state.partitions.lock().unwrap_or_else(|e| e.into_inner());
        // Only assigned partitions get a series.
        if let Some(offsets) = known.get_mut(tp) {
            offsets.low = (low >= 0).then_some(low);
            offsets.high = (high >= 0).then_some(high);
            self.update_lag(tp, offsets);
        }
    }

    fn update_lag(&self, tp: &TopicPartition, offsets: &PartitionOffsets) {
        let Some(high) = offsets.high else { return };
        // Never committed: everything Kafka still holds is pending.
        let Some(from) = offsets.committed.or(offsets.low) else { return };
        self.families.consumer_lag.get_or_create(&self.partition_labels(tp)).set((high - from).max(0));
    }

    /// A checkpoint landed in the table.
    pub fn checkpoint_committed(&self, figures: &CommittedCheckpoint<'_>) {
        let f = &self.families;
        let labels = self.labels();
        f.committed_records.get_or_create(&labels).inc_by(figures.rows);
        f.files_written.get_or_create(&labels).inc_by(figures.files);
        f.bytes_written.get_or_create(&labels).inc_by(figures.bytes);
        f.late_records.get_or_create(&labels).inc_by(figures.late_records);
        self.dead_letters_seen(figures.dead_letters);
        f.writers.get_or_create(&labels).set(figures.writers as i64);
        f.checkpoint_duration.get_or_create(&labels).observe(figures.duration.as_secs_f64());
        f.commit_duration.get_or_create(&labels).observe(figures.commit_duration.as_secs_f64());
        f.commits.get_or_create(&self.outcome("committed")).inc();
        f.commit_conflicts.get_or_create(&labels).inc_by(u64::from(figures.conflicts));
        let now = chrono::Utc::now().timestamp_micros();
        f.last_commit.get_or_create(&labels).set(now as f64 / 1e6);
        if let Some(w) = figures.event_watermark_us {
            f.event_watermark.get_or_create(&labels).set(w as f64 / 1e6);
        }
        if let Some(w) = figures.arrival_watermark_us {
            f.arrival_watermark.get_or_create(&labels).set(w as f64 / 1e6);
        }
        {
            let mut known = self.state.partitions.lock().unwrap_or_else(|e| e.into_inner());
            for (tp, offset) in &figures.offsets {
                if let Some(offsets) = known.get_mut(tp) {
                    offsets.committed = Some(*offset);
                    let snapshot = *offsets;
                    self.update_lag(tp, &snapshot);
                }
            }
        }
        self.made_progress();
    }

    /// A checkpoint tick found nothing to commit: the pipeline is up to date.
    pub fn made_progress(&self) {
        *self.state.last_progress.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Another writer owned the range: the checkpoint was fenced.
    pub fn commit_fenced(&self) {
        self.families.commits.get_or_create(&self.outcome("fenced")).inc();
    }

    /// The pipeline took no records for `time` while a checkpoint closed files or waited for
    /// the previous commit.
    pub fn checkpoint_stalled(&self, time: std::time::Duration) {
        self.families.checkpoint_stall.get_or_create(&self.labels()).inc_by(time.as_secs_f64());
    }

    /// The catalog or storage failed a commit; it is tried again.
    pub fn commit_retried(&self) {
        self.families.commit_retries.get_or_create(&self.labels()).inc();
    }

    /// An in-flight checkpoint was dropped (its records are read again). `reason` is a constant.
    pub fn checkpoint_dropped(&self, reason: &'static str) {
        self.families.dropped_checkpoints.get_or_create(&self.outcome(reason)).inc();
    }

    /// The pool grew or shrank.
    pub fn writers_changed(&self, writers: usize) {
        self.families.writers.get_or_create(&self.labels()).set(writers as i64);
    }

    /// The checkpoint interval in force changed (backpressure).
    pub fn interval_changed(&self, interval: Duration) {
        self.families.checkpoint_interval.get_or_create(&self.labels()).set(interval.as_secs_f64());
    }

    /// `/readyz` (or a scrape) checked the pipeline.
    pub fn readiness_checked(&self, ready: bool) {
        self.families.ready.get_or_create(&self.labels()).set(i64::from(ready));
    }

    /// The source paused (`paused` > 0) or resumed its partitions for the memory budget.
    pub fn partitions_paused(&self, paused: usize) {
        self.families.paused_partitions.get_or_create(&self.labels()).set(paused as i64);
    }

    /// Bytes of records read and not yet written.
    pub fn buffered(&self, bytes: usize) {
        self.families.buffered_bytes.get_or_create(&self.labels()).set(bytes as i64);
    }

    fn outcome(&self, outcome: &str) -> OutcomeLabels {
        OutcomeLabels { pipeline: self.name.clone(), outcome: outcome.to_string() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group gave this process an assignment at least once.
    pub fn is_assigned(&self) -> bool {
        self.state.assigned.load(Ordering::Relaxed)
    }

    /// Time since the last committed checkpoint (or the last tick with nothing to commit).
    pub fn since_progress(&self) -> Duration {
        self.state.last_progress.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }
}

impl PipelineMetrics {
    /// Records that could not be decoded, by topic and reason class (whatever the dead-letter
    /// policy did with them: committed to the dead-letter table, or dropped).
    pub fn dead_letters_seen(&self, letters: &[DeadLetter]) {
        for letter in letters {
            let reason = ReasonLabels {
                pipeline: self.name.clone(),
                topic: letter.topic.to_string(),
                reason: letter.error_kind.to_string(),
            };
            self.families.dead_letters.get_or_create(&reason).inc();
        }
    }
}
