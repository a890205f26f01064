//! Kafka source: one consumer thread per pipeline.
//!
//! Partitions are positioned from the *table*, never from the consumer group: on every
//! assignment the rebalance callback loads the table's offsets and assigns each partition at
//! exactly that offset (or per `auto.offset.reset` if the table has none). Records and
//! assignment changes reach the pipeline through one ordered channel, so the pipeline always
//! knows which records belong to which assignment.

use std::collections::BTreeMap;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use icefall_table::Backoff;
use icefall_table::offsets::{OffsetMap, offset_of};
use rdkafka::client::OAuthToken;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

mod burst;
pub mod client;
mod consume;
pub mod msk_iam;
mod reposition;

use crate::budget::{Lease, MemoryBudget};
use crate::metrics::PipelineMetrics;
use crate::offset_reset::OffsetReset;
use crate::{Error, Result};
use consume::consume_loop;

/// How often librdkafka reports partition watermarks (for the lag metric).
const STATISTICS_INTERVAL_MS: &str = "5000";

pub use crate::record::{SourceRecord, TopicPartition};

/// What the source tells its pipeline, in order.
#[derive(Debug)]
pub enum SourceEvent {
    /// Records, and the budget lease of their bytes (drop it once they are written).
    Records(Vec<SourceRecord>, Lease),
    /// These partitions are now consumed from the given positions: `Some(offset)` = the
    /// table's offset, `None` = the table has none (started per `auto.offset.reset`).
    /// `replace` = this is the whole assignment (previous positions are void).
    Assigned { epoch: u64, partitions: Vec<(TopicPartition, Option<i64>)>, replace: bool },
    /// These partitions are being taken away. The consumer keeps them until `released` is
    /// answered (or dropped), so their in-flight records can be committed first; after
    /// [`revoke_timeout`] it lets them go anyway (fencing still protects the table).
    Revoked { partitions: Vec<TopicPartition>, released: std_mpsc::SyncSender<()> },
    /// Offsets `from..to` of a partition were gone from the broker before they were read; the
    /// partition continues at `to` (per `auto.offset.reset`, see [`crate::offset_reset`]).
    Skipped { partition: TopicPartition, from: i64, to: i64, policy: OffsetReset },
    /// The source cannot go on (a gone offset under `auto.offset.reset = "error"`).
    Failed(String),
}

/// What the pipeline asks of the source.
#[derive(Debug)]
pub enum SourceCommand {
    /// Re-position every assigned partition at the table's offsets and answer with
    /// `Assigned { epoch, replace: true }`.
    Reseek {
        epoch: u64,
    },
    /// Advisory: store these offsets in the consumer group so lag tools see progress.
    CommitGroupOffsets(OffsetMap),
    Stop,
}

/// How long a revocation waits for the pipeline to commit (or drop) the partitions' in-flight
/// records: 30 s, or half of `max.poll.interval.ms` if that is shorter — the whole group's
/// rebalance waits for this member meanwhile, and a member that does not poll for
/// `max.poll.interval.ms` is thrown out of the group.
pub fn revoke_timeout(properties: &BTreeMap<String, String>) -> Duration {
    let max_poll_ms = properties.get("max.poll.interval.ms").and_then(|v| v.parse::<u64>().ok()).unwrap_or(300_000);
    Duration::from_secs(30).min(Duration::from_millis(max_poll_ms / 2))
}

/// Loads the table's offsets (blocking; called on the consumer thread).
pub type OffsetLoader = Arc<dyn Fn() -> std::result::Result<OffsetMap, String> + Send + Sync>;

/// Settings of one source.
pub struct SourceSettings {
    pub pipeline: String,
    pub brokers: String,
    pub group_id: String,
    pub topics: Vec<String>,
    pub properties: BTreeMap<String, String>,
    /// Amazon MSK IAM tokens, when the cluster asks for them.
    pub msk_iam: Option<crate::config::MskIamConfig>,
    /// A batch of records is sent once it holds this many (bursts of polled messages are not
    /// split, so it may hold a few more).
    pub max_batch: usize,
    /// How long a partial batch may wait before it is sent.
    pub linger: Duration,
    /// Buffered records' bytes; partitions are paused while it is used up.
    pub budget: MemoryBudget,
    /// librdkafka's prefetch queue limit (`queued.max.messages.kbytes`): half of its share of
    /// the pipeline's `max_buffered_bytes` ([`crate::budget::BufferShares`]).
    pub kafka_queue_kbytes: usize,
    /// Partition watermarks from librdkafka's statistics feed the lag metric.
    pub metrics: PipelineMetrics,
    /// Whether records carry their headers (only a headers metadata column needs them).
    pub read_headers: bool,
}

/// Handle to a running source thread.
pub struct KafkaSource {
    pub events: mpsc::Receiver<SourceEvent>,
    commands: std_mpsc::Sender<SourceCommand>,
    thread: Option<JoinHandle<()>>,
}

impl KafkaSource {
    pub fn start(settings: SourceSettings, loader: OffsetLoader) -> Result<KafkaSource> {
        let (events_tx, events) = mpsc::channel(64);
        let (commands, commands_rx) = std_mpsc::channel();
        let reset = OffsetReset::from_properties(&settings.properties);
        let context = SourceContext {
            events: events_tx,
            loader,
            reset,
            assigned_at: Mutex::new(BTreeMap::new()),
            pending: Mutex::new(Vec::new()),
            epoch: Mutex::new(0),
            pipeline: settings.pipeline.clone(),
            budget: settings.budget.clone(),
            revoke_timeout: revoke_timeout(&settings.properties),
            metrics: settings.metrics.clone(),
            tokens: msk_iam::TokenContext::new(settings.msk_iam.as_ref()),
        };
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &settings.brokers)
            .set("group.id", &settings.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // librdkafka's own prefetch queue is part of `max_buffered_bytes` too.
            .set("queued.max.messages.kbytes", settings.kafka_queue_kbytes.to_string())
            // librdkafka stops fetching for `fetch.queue.backoff.ms` (1 s by default) whenever its
            // queue is over its limits; a writer slower than the broker then drained the queue
            // and sat idle for the rest of that second (a third of the time in the benchmark).
            // Our own budget pauses partitions anyway; check again soon.
            .set("fetch.queue.backoff.ms", "50")
            // Partition watermarks for the lag metric (a user's own setting wins below).
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
            .set_log_level(RDKafkaLogLevel::Warning);
        for (k, v) in &settings.properties {
            config.set(k, v);
        }
        // librdkafka never jumps on its own: an out-of-range position comes back as an error
        // and `auto.offset.reset` is applied visibly (see `crate::offset_reset`).
        config.set("auto.offset.reset", "error");
        let consumer: BaseConsumer<SourceContext> = config
            .create_with_context(context)
            .map_err(Error::kafka(format!("create consumer for pipeline {}", settings.pipeline)))?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(Error::kafka(format!("subscribe to {topics:?}")))?;
        let thread = std::thread::Builder::new()
            .name(format!("source-{}", settings.pipeline))
            .spawn(move || {
                consume_loop(consumer, commands_rx, settings.max_batch, settings.linger, settings.read_headers)
            })
            .map_err(|e| Error::Internal(format!("spawn source thread: {e}")))?;
        Ok(KafkaSource { events, commands, thread: Some(thread) })
    }

    pub fn send(&self, command: SourceCommand) {
        // The thread only ends after Stop or when the pipeline is gone; nothing to report.
        let _ = self.commands.send(command);
    }

    /// Stops the consumer (leaving the group) and waits for the thread.
    pub async fn stop(mut self) {
        self.send(SourceCommand::Stop);
        // Drain so a blocked send on the consumer thread can finish.
        self.events.close();
        while self.events.recv().await.is_some() {}
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

struct SourceContext {
    events: mpsc::Sender<SourceEvent>,
    loader: OffsetLoader,
    reset: OffsetReset,
    /// Where each partition was last positioned (until a record arrives librdkafka reports no
    /// position for it).
    assigned_at: Mutex<BTreeMap<TopicPartition, i64>>,
    /// Records polled but not yet sent; flushed before any assignment event to keep order.
    pending: Mutex<Vec<SourceRecord>>,
    epoch: Mutex<u64>,
    pipeline: String,
    budget: MemoryBudget,
    revoke_timeout: Duration,
    metrics: PipelineMetrics,
    tokens: msk_iam::TokenContext,
}

/// The memory a batch holds, its vector's unused capacity included, after a short batch (a
/// quiet topic) gave back the room it did not fill.
fn batch_memory(batch: &mut Vec<SourceRecord>) -> usize {
    if batch.capacity() > 2 * batch.len() {
        batch.shrink_to_fit();
    }
    let slack = (batch.capacity() - batch.len()) * std::mem::size_of::<SourceRecord>();
    slack + batch.iter().map(SourceRecord::memory_size).sum::<usize>()
}

impl SourceContext {
    fn flush(&self) {
        let mut batch = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.is_empty() {
                return;
            }
            // The next batch starts with room for this one's size and a burst more: a full batch
            // never regrows (doubling would leave up to half of it empty).
            let next = Vec::with_capacity(pending.len() + consume::BURST);
            std::mem::replace(&mut *pending, next)
        };
        let lease = self.budget.lease(batch_memory(&mut batch));
        let _ = self.events.blocking_send(SourceEvent::Records(batch, lease));
    }

    /// The table's offsets; retried until the catalog answers (never assign blindly).
    fn load_offsets(&self) -> OffsetMap {
        // The whole group's rebalance waits for this: shorter waits keep it moving.
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match (self.loader)() {
                Ok(offsets) => return offsets,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(pipeline = %self.pipeline, error = %e, retry_in = ?delay, "cannot read table offsets; retrying");
                    std::thread::sleep(delay);
                }
            }
        }
    }

    /// Sets each partition of `tpl` to its table offset; returns the positions.
    fn position(&self, tpl: &mut TopicPartitionList, offsets: &OffsetMap) -> Vec<(TopicPartition, Option<i64>)> {
        let mut positions = Vec::new();
        for elem in tpl.elements() {
            let topic: Arc<str> = Arc::from(elem.topic());
            positions.push(((topic, elem.partition()), offset_of(offsets, elem.topic(), elem.partition())));
        }
        let mut assigned_at = self.assigned_at.lock().unwrap_or_else(|e| e.into_inner());
        for ((topic, partition), start) in &positions {
            let offset = match (start, self.reset) {
                (Some(offset), _) => {
                    assigned_at.insert((topic.clone(), *partition), *offset);
                    Offset::Offset(*offset)
                }
                (None, OffsetReset::Earliest) => Offset::Beginning,
                (None, OffsetReset::Latest) => Offset::End,
                (None, OffsetReset::Error) => {
                    let _ = self.events.blocking_send(SourceEvent::Failed(format!(
                        "{topic}/{partition}: the table has no offset for this partition and auto.offset.reset = \
                         \"error\"; set it to \"earliest\" or \"latest\" for the first start"
                    )));
                    Offset::End
                }
            };
            if let Err(e) = tpl.set_partition_offset(topic, *partition, offset) {
                tracing::error!(pipeline = %self.pipeline, %topic, partition, error = %e, "cannot set start offset");
            }
        }
        positions
    }
}

impl ClientContext for SourceContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> std::result::Result<OAuthToken, Box<dyn std::error::Error>> {
        self.tokens.generate_oauth_token(config)
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            let topic: Arc<str> = Arc::from(topic.as_str());
            // Partition -1 is librdkafka's internal "unassigned" partition.
            for (partition, p) in t.partitions.iter().filter(|(id, _)| **id >= 0) {
                self.metrics.partition_watermarks(&(topic.clone(), *partition), p.lo_offset, p.hi_offset);
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        self.flush();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let offsets = self.load_offsets();
                let partitions = self.position(tpl, &offsets);
                let result = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                if let Err(e) = result {
                    tracing::error!(pipeline = %self.pipeline, error = %e, "assign failed");
                }
                tracing::info!(pipeline = %self.pipeline, partitions = ?partitions, "partitions assigned at table offsets");
                let epoch = *self.epoch.lock().unwrap_or_else(|e| e.into_inner());
                let _ = self.events.blocking_send(SourceEvent::Assigned { epoch, partitions, replace: !cooperative });
            }
            _ => {
                let partitions: Vec<TopicPartition> =
                    tpl.elements().iter().map(|e| (Arc::from(e.topic()), e.partition())).collect();
                if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::error!(pipeline = %self.pipeline, ?err, "rebalance error; dropping the assignment");
                }
                tracing::info!(pipeline = %self.pipeline, partitions = ?partitions, "partitions revoked");
                let (released, wait) = std_mpsc::sync_channel(1);
                if self.events.blocking_send(SourceEvent::Revoked { partitions, released }).is_ok()
                    && let Err(std_mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(self.revoke_timeout)
                {
                    tracing::warn!(pipeline = %self.pipeline, timeout = ?self.revoke_timeout,
                        "in-flight records of revoked partitions not committed in time; releasing them (a later commit of them is fenced)");
                }
                let result = if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                if let Err(e) = result {
                    tracing::error!(pipeline = %self.pipeline, error = %e, "unassign failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::KafkaResult;

    /// The budget counts the batch vector's capacity, not only its records: a vector grown by
    /// doubling held up to half its room outside the budget.
    #[test]
    fn a_batch_leases_its_vector_capacity_and_a_short_one_gives_room_back() {
        let record = || {
            let mut r = SourceRecord::bare(0, 0);
            r.payload = Some(bytes::Bytes::from_static(&[b'x'; 100]));
            r
        };
        let size = std::mem::size_of::<SourceRecord>();
        let mut full = Vec::with_capacity(8);
        full.extend((0..6).map(|_| record()));
        assert_eq!(batch_memory(&mut full), 8 * size + 6 * 100, "two empty slots are held too");
        let mut short = Vec::with_capacity(64);
        short.extend((0..3).map(|_| record()));
        let held = batch_memory(&mut short);
        assert!(short.capacity() < 6, "the short batch was shrunk to {}", short.capacity());
        assert_eq!(held, short.capacity() * size + 3 * 100);
    }

    #[test]
    fn a_revocation_waits_at_most_half_the_poll_interval() {
        let mut properties = BTreeMap::new();
        assert_eq!(revoke_timeout(&properties), Duration::from_secs(30));
        properties.insert("max.poll.interval.ms".to_string(), "20000".to_string());
        assert_eq!(revoke_timeout(&properties), Duration::from_secs(10));
    }

    /// Managed Kafka needs TLS and SASL (PLAIN, SCRAM) and compressed topics need zstd: a
    /// librdkafka built without them refuses these settings when the client is created.
    #[test]
    fn the_kafka_client_speaks_tls_sasl_and_zstd() {
        for mechanism in ["PLAIN", "SCRAM-SHA-512"] {
            let created: KafkaResult<BaseConsumer> = ClientConfig::new()
                .set("bootstrap.servers", "127.0.0.1:1")
                .set("group.id", "build-features")
                .set("security.protocol", "SASL_SSL")
                .set("sasl.mechanisms", mechanism)
                .set("sasl.username", "u")
                .set("sasl.password", "p")
                .create();
            assert!(created.is_ok(), "SASL_SSL with {mechanism}: {:?}", created.err());
        }
        let zstd: KafkaResult<rdkafka::producer::BaseProducer> =
            ClientConfig::new().set("bootstrap.servers", "127.0.0.1:1").set("compression.codec", "zstd").create();
        assert!(zstd.is_ok(), "zstd: {:?}", zstd.err());
    }
}
