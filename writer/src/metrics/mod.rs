//! Prometheus metrics, recorded through named events.
//!
//! The pipeline and the source call one method per event ([`PipelineMetrics::checkpoint_committed`],
//! [`PipelineMetrics::records_consumed`], …); names and labels live only here. Every name is
//! `<namespace>_<name>_<unit>` (counters end in `_total`), and labels are bounded: pipeline, topic,
//! partition (of assigned partitions only), a dead letter's reason class, a commit's outcome.
//! The same handle keeps what `/readyz` needs (served by `http.rs`).

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineLabels {
    pipeline: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
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
type FloatCounter = Counter<f64, std::sync::atomic::AtomicU64>;

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
    checkpoint_stall: Family<PipelineLabels, FloatCounter>,
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
    ready: Family<PipelineLabels, Gauge>,
    paused_partitions: Family<PipelineLabels, Gauge>,
    buffered_bytes: Family<PipelineLabels, Gauge>,
}

/// The process's metrics registry.
pub struct Metrics {
    registry: Registry,
    families: Arc<Families>,
    catalog: Arc<OnceLock<icefall_table::Catalog>>,
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
            checkpoint_stall: Family::default(),
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
            ready: Family::default(),
            paused_partitions: Family::default(),
            buffered_bytes: Family::default(),
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
        registry.register_with_unit(
            "checkpoint_stall",
            "Time the pipeline took no records for checkpoints (closing files, waiting for the previous commit)",
            Unit::Seconds,
            f.checkpoint_stall.clone(),
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
        registry.register(
            "pipeline_ready",
            "1 while the pipeline passes every /readyz check (assigned, catalog answers, checkpoints recent)",
            f.ready.clone(),
        );
        registry.register_with_unit(
            "paused",
            "Assigned partitions whose fetching is paused because the memory budget is used up",
            Unit::Other("partitions".into()),
            f.paused_partitions.clone(),
        );
        registry.register_with_unit(
            "buffered",
            "Bytes of records read and not yet written (the part of max_buffered_bytes in use)",
            Unit::Bytes,
            f.buffered_bytes.clone(),
        );
        let build_info: Family<BuildLabels, Gauge> = Family::default();
        build_info.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").to_string() }).set(1);
        registry.register("build_info", "Always 1; the running version is its label", build_info);
        let catalog = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(catalog_requests::CatalogRequestsCollector { catalog: catalog.clone() }));
        Metrics { registry, families, catalog }
    }

    /// Where the process's catalog connection goes once made: its request counts are served
    /// from then on (and `/readyz` probes it).
    pub fn catalog(&self) -> &Arc<OnceLock<icefall_table::Catalog>> {
        &self.catalog
    }

    /// The events of one pipeline.
    pub fn pipeline(&self, name: &str) -> PipelineMetrics {
        PipelineMetrics::new(name, self.families.clone())
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

mod catalog_requests;
/// What the lag of one partition is computed from.
mod events;
#[cfg(test)]
mod tests;

pub use events::{CommittedCheckpoint, PipelineMetrics};
