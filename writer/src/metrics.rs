//! Prometheus metrics, recorded through named events.
//!
//! The pipeline and the source call one method per event ([`PipelineMetrics::checkpoint_committed`],
//! [`PipelineMetrics::records_consumed`], …); names and labels live only here. Every name is
//! `<namespace>_<name>_<unit>` (counters end in `_total`), and labels are bounded: pipeline, topic,
//! partition (of assigned partitions only), a dead letter's reason class, a commit's outcome.
//! The same handle keeps what `/readyz` needs (see [`crate::http`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::dead_letter::DeadLetter;
use crate::record::TopicPartition;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineLabels {
    pipeline: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    pipeline: String,
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    pipeline: String,
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    pipeline: String,
    topic: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    pipeline: String,
    outcome: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

fn seconds_histogram() -> Histogram {
    // 10 ms … ~160 s: commits take tens of milliseconds, checkpoints up to minutes under load.
    Histogram::new(exponential_buckets(0.01, 2.0, 15))
}

struct Families {
    consumed_records: Family<TopicLabels, Counter>,
    consumed_bytes: Family<TopicLabels, Counter>,
    committed_records: Family<PipelineLabels, Counter>,
    dead_letters: Family<ReasonLabels, Counter>,
    lost_records: Family<TopicLabels, Counter>,
    late_records: Family<PipelineLabels, Counter>,
    consumer_lag: Family<PartitionLabels, Gauge>,
    assigned_partitions: Family<PipelineLabels, Gauge>,
    checkpoint_duration: Family<PipelineLabels, Histogram, fn() -> Histogram>,
    commit_duration: Family<PipelineLabels, Histogram, fn() -> Histogram>,
    commits: Family<OutcomeLabels, Counter>,
    commit_conflicts: Family<PipelineLabels, Counter>,
    commit_retries: Family<PipelineLabels, Counter>,
    dropped_checkpoints: Family<OutcomeLabels, Counter>,
    files_written: Family<PipelineLabels, Counter>,
    bytes_written: Family<PipelineLabels, Counter>,
    writers: Family<PipelineLabels, Gauge>,
    checkpoint_interval: Family<PipelineLabels, FloatGauge>,
    last_commit: Family<PipelineLabels, FloatGauge>,
    event_watermark: Family<PipelineLabels, FloatGauge>,
    arrival_watermark: Family<PipelineLabels, FloatGauge>,
}

/// The process's metrics registry.
pub struct Metrics {
    registry: Registry,
    families: Arc<Families>,
}

impl Metrics {
    /// A registry whose names all start with `namespace_`.
    pub fn new(namespace: &str) -> Metrics {
        let families = Arc::new(Families {
            consumed_records: Family::default(),
            consumed_bytes: Family::default(),
            committed_records: Family::default(),
            dead_letters: Family::default(),
            lost_records: Family::default(),
            late_records: Family::default(),
            consumer_lag: Family::default(),
            assigned_partitions: Family::default(),
            checkpoint_duration: Family::new_with_constructor(seconds_histogram),
            commit_duration: Family::new_with_constructor(seconds_histogram),
            commits: Family::default(),
            commit_conflicts: Family::default(),
            commit_retries: Family::default(),
            dropped_checkpoints: Family::default(),
            files_written: Family::default(),
            bytes_written: Family::default(),
            writers: Family::default(),
            checkpoint_interval: Family::default(),
            last_commit: Family::default(),
            event_watermark: Family::default(),
            arrival_watermark: Family::default(),
        });
        let mut registry = Registry::with_prefix(namespace);
        let f = &families;
        let records = || Unit::Other("records".into());
        registry.register_with_unit("consumed", "Records read from Kafka", records(), f.consumed_records.clone());
        registry.register_with_unit(
            "lost",
            "Offsets gone from the broker before they were read, skipped per auto.offset.reset",
            records(),
            f.lost_records.clone(),
        );
        registry.register_with_unit(
            "consumed",
            "Record bytes (key + value) read from Kafka",
            Unit::Bytes,
            f.consumed_bytes.clone(),
        );
        registry.register_with_unit(
            "committed",
            "Records decoded and committed to the table",
            records(),
            f.committed_records.clone(),
        );
        registry.register_with_unit(
            "dead_letter",
            "Records that could not be decoded, committed to the dead-letter table, by reason class",
            records(),
            f.dead_letters.clone(),
        );
        registry.register_with_unit(
            "late",
            "Committed records whose event time was older than the watermark minus allowed_lateness",
            records(),
            f.late_records.clone(),
        );
        registry.register_with_unit(
            "consumer_lag",
            "Records in the partition not yet committed to the table (high watermark minus table offset)",
            records(),
            f.consumer_lag.clone(),
        );
        registry.register_with_unit(
            "assigned",
            "Kafka partitions assigned to this process",
            Unit::Other("partitions".into()),
            f.assigned_partitions.clone(),
        );
        registry.register_with_unit(
            "checkpoint_duration",
            "Time from closing the writers' files to the committed snapshot",
            Unit::Seconds,
            f.checkpoint_duration.clone(),
        );
        registry.register_with_unit(
            "commit_duration",
            "Time of the table commit alone, retries included",
            Unit::Seconds,
            f.commit_duration.clone(),
        );
        registry.register("commits", "Checkpoint commits by outcome (committed, fenced)", f.commits.clone());
        registry.register(
            "commit_conflicts",
            "Commits that found the table moved and rebased (another writer or the optimizer committed)",
            f.commit_conflicts.clone(),
        );
        registry.register(
            "commit_retries",
            "Commit attempts repeated after the catalog or storage failed",
            f.commit_retries.clone(),
        );
        registry.register(
            "dropped_checkpoints",
            "Checkpoints dropped and re-read from the table's offsets, by reason",
            f.dropped_checkpoints.clone(),
        );
        registry.register_with_unit(
            "written",
            "Data files committed",
            Unit::Other("files".into()),
            f.files_written.clone(),
        );
        registry.register_with_unit("written", "Bytes of data files committed", Unit::Bytes, f.bytes_written.clone());
        registry.register("writers", "Writers in the pipeline's pool", f.writers.clone());
        registry.register_with_unit(
            "checkpoint_interval",
            "Checkpoint interval in force (longer than configured under table-health backpressure)",
            Unit::Seconds,
            f.checkpoint_interval.clone(),
        );
        registry.register_with_unit(
            "last_commit_timestamp",
            "Unix time of the pipeline's last committed checkpoint",
            Unit::Seconds,
            f.last_commit.clone(),
        );
        registry.register_with_unit(
            "event_watermark_timestamp",
            "The table's event-time watermark (oldest newest-event-time over partitions), Unix time",
            Unit::Seconds,
            f.event_watermark.clone(),
        );
        registry.register_with_unit(
            "arrival_watermark_timestamp",
            "The table's arrival-time watermark, Unix time",
            Unit::Seconds,
            f.arrival_watermark.clone(),
        );
        Metrics { registry, families }
    }

    /// The events of one pipeline.
    pub fn pipeline(&self, name: &str) -> PipelineMetrics {
        PipelineMetrics {
            name: name.to_string(),
            families: self.families.clone(),
            state: Arc::new(PipelineState {
                assigned: AtomicBool::new(false),
                last_progress: Mutex::new(Instant::now()),
                partitions: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// What the lag of one partition is computed from.
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
        for letter in figures.dead_letters {
            let reason = ReasonLabels {
                pipeline: self.name.clone(),
                topic: letter.topic.to_string(),
                reason: letter.error_kind.to_string(),
            };
            f.dead_letters.get_or_create(&reason).inc();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        (Arc::from(topic), partition)
    }

    #[test]
    fn names_follow_namespace_name_unit() {
        let metrics = Metrics::new("acme");
        let p = metrics.pipeline("orders");
        p.records_consumed("orders-topic", 3, 120);
        p.partitions_assigned(&[(tp("orders-topic", 0), Some(10))], true, 1);
        p.partition_watermarks(&tp("orders-topic", 0), 0, 25);
        let text = metrics.encode();
        assert!(text.contains(r#"acme_consumed_records_total{pipeline="orders",topic="orders-topic"} 3"#), "{text}");
        assert!(text.contains(r#"acme_consumed_bytes_total{pipeline="orders",topic="orders-topic"} 120"#), "{text}");
        assert!(
            text.contains(r#"acme_consumer_lag_records{pipeline="orders",topic="orders-topic",partition="0"} 15"#),
            "{text}"
        );
        assert!(text.contains(r#"acme_assigned_partitions{pipeline="orders"} 1"#), "{text}");
    }

    #[test]
    fn lag_follows_commits_and_revoked_partitions_leave() {
        let metrics = Metrics::new("icefall");
        let p = metrics.pipeline("t");
        p.partitions_assigned(&[(tp("a", 0), None), (tp("a", 1), Some(5))], true, 2);
        p.partition_watermarks(&tp("a", 0), 2, 10);
        p.partition_watermarks(&tp("a", 1), 0, 10);
        // An unassigned partition's statistics make no series.
        p.partition_watermarks(&tp("b", 0), 0, 99);
        let text = metrics.encode();
        assert!(text.contains(r#"icefall_consumer_lag_records{pipeline="t",topic="a",partition="0"} 8"#), "{text}");
        assert!(text.contains(r#"icefall_consumer_lag_records{pipeline="t",topic="a",partition="1"} 5"#), "{text}");
        assert!(!text.contains(r#"topic="b""#), "{text}");
        p.checkpoint_committed(&CommittedCheckpoint {
            rows: 13,
            files: 2,
            bytes: 2048,
            late_records: 1,
            dead_letters: &[],
            writers: 2,
            duration: Duration::from_millis(120),
            commit_duration: Duration::from_millis(30),
            conflicts: 1,
            offsets: vec![(tp("a", 0), 10), (tp("a", 1), 10)],
            event_watermark_us: Some(1_700_000_000_000_000),
            arrival_watermark_us: None,
        });
        p.partitions_revoked(&[tp("a", 1)], 1);
        let text = metrics.encode();
        assert!(text.contains(r#"icefall_consumer_lag_records{pipeline="t",topic="a",partition="0"} 0"#), "{text}");
        assert!(!text.contains(r#"partition="1""#), "a revoked partition keeps no series: {text}");
        assert!(text.contains(r#"icefall_committed_records_total{pipeline="t"} 13"#), "{text}");
        assert!(text.contains(r#"icefall_commit_conflicts_total{pipeline="t"} 1"#), "{text}");
        assert!(text.contains(r#"icefall_commits_total{pipeline="t",outcome="committed"} 1"#), "{text}");
        assert!(text.contains(r#"icefall_event_watermark_timestamp_seconds{pipeline="t"} 1700000000"#), "{text}");
        assert!(text.contains(r#"icefall_checkpoint_duration_seconds_count{pipeline="t"} 1"#), "{text}");
        assert!(p.is_assigned());
    }
}
